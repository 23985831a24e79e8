# SPDX-License-Identifier: GPL-2.0-only
"""Aggregate benchmark cells and write results/bench.json, bench.md and bench.png."""
import collections
import datetime
import json
import math
import os
import platform
import statistics

from . import guest

GIB = float(1 << 30)
# strict2 is strict again under another name: an A/A control in the same rotation
MODE_ORDER = ['strict', 'strict2', 'pool', 'pool-auto', 'pool-all', 'lazy', 'passthrough']


bs_bytes = guest.bs_bytes


def write_result(outdir, name, doc, md):
    """Write results/NAME.json (doc) and NAME.md (md) under outdir."""
    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(outdir, name + '.json'), 'w') as f:
        json.dump(doc, f, indent=1)
        f.write('\n')
    with open(os.path.join(outdir, name + '.md'), 'w') as f:
        f.write(md)


def load_result(outdir, name):
    """The last results/NAME.json, {} if there is none or it does not parse."""
    try:
        with open(os.path.join(outdir, name + '.json')) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def keep_run_fields(outdir, name, doc, keys):
    """For a report rebuilt from guest logs (--from-log): take from the last
    results/NAME.json what only the run knew (doc[k] for k in keys: its date, its
    boot times), and say in doc['analysis'] that the rows were recomputed."""
    old = load_result(outdir, name)
    for k in keys:
        if k in old:
            doc[k] = old[k]
    doc['analysis'] = ('rows recomputed from the guest logs (--from-log) at harness %s'
                       % doc.get('harness', 'unknown'))


def utc_now():
    """The time now, as the results files write it."""
    return datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def machine(iommu, mem='2 GiB', vcpus=2):
    """One line naming the host and the emulated guest (its RAM mem, its vCPUs), for
    every report."""
    cpu = 'unknown CPU'
    try:
        with open('/proc/cpuinfo') as f:
            cpu = next(l.split(':', 1)[1].strip() for l in f if l.startswith('model name'))
    except (OSError, StopIteration):
        pass
    return ('Host: %s, %d cores, %s; guest: QEMU TCG (no KVM), q35, -cpu max, %d vCPUs, '
            '%s, %s IOMMU.' % (cpu, os.cpu_count(), platform.release(), vcpus, mem, iommu))


def _order(mode):
    return MODE_ORDER.index(mode) if mode in MODE_ORDER else len(MODE_ORDER)


def _entry(out, key, fio):
    """One fio run's figures, with the profile of the same key if it has one."""
    if fio.error:
        raise guest.ParseError('fio reported error %d in %s' % (fio.error, key))
    kib = fio.read_kib + fio.write_kib
    gib = kib * 1024 / GIB
    profs = out.prof.get(key, [])
    map_us, map_n = guest.iommu_time(profs, 'iommu_dma_map_')
    unmap_us, unmap_n = guest.iommu_time(profs, 'iommu_dma_unmap_')
    return {'rep': key[4],
            'bw_kib': fio.read_bw_kib + fio.write_bw_kib,
            'iops': fio.read_iops + fio.write_iops,
            'gib': gib,
            'map_us': map_us, 'map_calls': map_n,
            'unmap_us': unmap_us, 'unmap_calls': unmap_n,
            'map_us_per_gib': map_us / gib if gib else 0.0,
            'unmap_us_per_gib': unmap_us / gib if gib else 0.0}


def aggregate(outputs):
    """Group the cells of one or more guest Outputs by (mode, rw, bs, numjobs).

    Returns {key: cell} where cell holds the per-repetition values ('reps'), the
    profiled runs of repetition 0 ('prof_reps', none in logs that profiled every cell)
    and their medians.  map/unmap times are summed over CPUs and over the _page and
    _sg variants and divided by the GiB fio moved in the profiled run.
    """
    reps = collections.defaultdict(list)
    preps = collections.defaultdict(list)
    for out in outputs:
        for key, fio in out.cells:
            reps[key[:4]].append(_entry(out, key, fio))
        for key, fio in out.pcells.items():
            preps[key[:4]].append(_entry(out, key, fio))
    cells = {}
    for k, rs in reps.items():
        key = (k[0], k[1], bs_bytes(k[2]), k[3])
        med = {f: statistics.median(r[f] for r in rs) for f in ('bw_kib', 'iops')}
        ps = preps.get(k) or rs
        for f in ('map_us_per_gib', 'unmap_us_per_gib'):
            med[f] = statistics.median(r[f] for r in ps)
        cells[key] = {'reps': rs, 'prof_reps': preps.get(k, []), 'median': med}
    return cells


def profiled(cell):
    """The runs of a cell that carry profiles: the separate ones if any, else all."""
    return cell.get('prof_reps') or cell['reps']


def median_ci(values, level=0.95):
    """(median, low, high, coverage) of values, the interval from order statistics.

    Distribution-free: [x(k), x(n-k+1)] covers the true median with probability
    1 - 2 P(Binomial(n, 1/2) < k); k is the largest rank whose coverage is still at least
    level.  With fewer than 6 values no such interval reaches 95 %: low and high are
    None."""
    x = sorted(values)
    n = len(x)
    if not n:
        return None, None, None, None
    med = statistics.median(x)
    best = None
    tail = 0.0
    for k in range(1, n // 2 + 1):
        # tail = P(B <= k - 1); coverage of [x(k), x(n-k+1)] is 1 - 2 * tail
        tail += math.comb(n, k - 1) / 2.0 ** n
        cov = 1 - 2 * tail
        if cov < level:
            break
        best = (k, cov)
    if best is None:
        return med, None, None, None
    k, cov = best
    return med, x[k - 1], x[n - k], cov


def harness_commit(top):
    """The commit of the harness that made a result, '-dirty' with changes not committed;
    'unknown' outside git."""
    import subprocess
    try:
        head = subprocess.run(['git', '-C', top, 'rev-parse', '--short', 'HEAD'],
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(['git', '-C', top, 'status', '--porcelain', '--', 'harness',
                                'Makefile'], capture_output=True, text=True,
                               check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return 'unknown'
    return head + ('-dirty' if dirty else '')


def method(alt, runtime, seg, skip, windows=None):
    """How one repetition measured its modes, in words for the reports.

    windows: the (skip, segment) ms pairs the alternating runs used (hib-alt lengthens
    both where the queue takes long to drain); without them, the settings."""
    if not alt:
        return 'a fio run of %d s per mode' % runtime

    def span(vals):
        lo, hi = min(vals), max(vals)
        return '%d' % lo if lo == hi else '%d-%d' % (lo, hi)
    sk = span([w[0] for w in windows] if windows else [skip])
    sg = span([w[1] for w in windows] if windows else [seg])
    return ('one fio run per domain type, in which its modes take turns of %s ms in an '
            'order shuffled per cycle, the first %s ms of each turn not counted (at least '
            '%d ms and three times the queue\'s drain time), %d s per mode'
            % (sg, sk, skip, runtime))


def base_of(mode):
    """The mode a mode is paired with: its own domain type without the pool.

    A lazy-pool mode is the pool of a DMA-FQ domain, compared with lazy; every other
    mode (lazy itself included) is compared with strict."""
    return 'lazy' if mode.startswith('lazy-') else 'strict'


def paired(cells, base=None):
    """Each mode against its base (base_of(), or base) in the same repetition of a cell.

    Returns {key: {'base', 'n', 'ratios', 'median', 'low', 'high', 'coverage',
    'half_width'}} for every key that is not its own base and whose base was run;
    half_width is the larger distance from the median to an end of the interval,
    relative to the median (None without one)."""
    out = {}
    for key, c in cells.items():
        mode, rw, bs, nj = key
        bm = base or base_of(mode)
        b = cells.get((bm, rw, bs, nj))
        if mode == bm or not b:
            continue
        bi = {r['rep']: r['iops'] for r in b['reps']}
        ratios = [r['iops'] / bi[r['rep']] for r in c['reps'] if bi.get(r['rep'])]
        med, lo, hi, cov = median_ci(ratios)
        hw = (max(med - lo, hi - med) / med) if lo is not None and med else None
        out[key] = {'base': bm, 'n': len(ratios), 'ratios': ratios, 'median': med,
                    'low': lo, 'high': hi, 'coverage': cov, 'half_width': hw}
    return out


# The A/A target of the benchmark: strict2/strict within these bounds, and the
# interval's half-width at most AA_HALF_WIDTH, in at least AA_SHARE of the cells.
AA_BOUNDS = (0.97, 1.03)
AA_HALF_WIDTH = 0.04
AA_SHARE = 0.9


def aa(cells, control='strict2'):
    """The A/A run: the control mode against strict, per cell, and the target's verdict.

    Returns {'cells': [{rw, bs, numjobs, ratio, ci_low, ci_high, half_width, pairs,
    ok}], 'summary': {...}} or None when the control mode was not run."""
    pr = paired(cells, 'strict')
    rows = []
    for key in sorted((k for k in pr if k[0] == control and pr[k]['median'] is not None),
                      key=lambda k: (k[1], k[3], k[2])):
        p = pr[key]
        ok = (p['low'] is not None and AA_BOUNDS[0] <= p['median'] <= AA_BOUNDS[1] and
              p['half_width'] <= AA_HALF_WIDTH)
        rows.append({'rw': key[1], 'bs': key[2], 'numjobs': key[3],
                     'ratio': round(p['median'], 4),
                     'ci_low': None if p['low'] is None else round(p['low'], 4),
                     'ci_high': None if p['high'] is None else round(p['high'], 4),
                     'half_width': None if p['half_width'] is None else round(p['half_width'], 4),
                     'pairs': p['n'], 'ok': ok})
    if not rows:
        return None
    n_ok = sum(r['ok'] for r in rows)
    hws = [r['half_width'] for r in rows if r['half_width'] is not None]
    return {'cells': rows,
            'summary': {'cells': len(rows), 'within_target': n_ok,
                        'share_within_target': round(n_ok / len(rows), 4),
                        'target': {'ratio_within': list(AA_BOUNDS),
                                   'half_width_at_most': AA_HALF_WIDTH,
                                   'share_of_cells': AA_SHARE},
                        'target_met': n_ok >= AA_SHARE * len(rows),
                        'median_half_width': round(statistics.median(hws), 4) if hws else None,
                        'max_abs_deviation': round(max(abs(r['ratio'] - 1) for r in rows), 4)}}


def sorted_keys(cells):
    return sorted(cells, key=lambda k: (k[1], k[3], k[2], _order(k[0])))


def bench_json(cells, kernel, qemu, fio, date):
    """The schema of design.md section 4: one object per cell, medians of the reps."""
    runs = []
    pr = paired(cells)
    for key in sorted_keys(cells):
        mode, rw, bs, nj = key
        c = cells[key]
        run = {'mode': mode, 'rw': rw, 'bs': bs, 'iodepth': 64, 'numjobs': nj,
               'reps': len(c['reps']),
               'bw_kib': round(c['median']['bw_kib']),
               'iops': round(c['median']['iops']),
               'map_us_per_gib': round(c['median']['map_us_per_gib'], 1),
               'unmap_us_per_gib': round(c['median']['unmap_us_per_gib'], 1)}
        if key in pr:
            # IOPS of this mode / strict's, paired by repetition: median and the
            # order-statistic interval of the median (null below 6 repetitions)
            p = pr[key]

            def r4(v):
                return None if v is None else round(v, 4)
            run.update({'vs_strict_median': r4(p['median']), 'vs_strict_ci_low': r4(p['low']),
                        'vs_strict_ci_high': r4(p['high']),
                        'vs_strict_ci_coverage': r4(p['coverage']),
                        'vs_strict_pairs': p['n']})
        runs.append(run)
    return {'kernel': kernel, 'qemu': qemu, 'fio': fio, 'date': date, 'runs': runs}


def cost_model(cells, mode='strict', numjobs=1):
    """us per map and per unmap call in one mode, over its cells with that many jobs.

    Only numjobs=1 by default: with two jobs the calls queue on the IOMMU driver's
    lock and the time per call measures contention, not the cost of a mapping.
    """
    t = collections.Counter()
    for key, c in cells.items():
        if key[0] != mode or key[3] != numjobs:
            continue
        for r in profiled(c):
            t['map_us'] += r['map_us']
            t['map_calls'] += r['map_calls']
            t['unmap_us'] += r['unmap_us']
            t['unmap_calls'] += r['unmap_calls']
    return {'map_us_per_call': t['map_us'] / t['map_calls'] if t['map_calls'] else None,
            'unmap_us_per_call': t['unmap_us'] / t['unmap_calls'] if t['unmap_calls'] else None,
            'map_calls': t['map_calls'], 'unmap_calls': t['unmap_calls']}


def pool_cost(cells, strict, threshold):
    """The cost model of the pool, measured in this run.

    In mode pool, the profiled map of a bounced read fills the slot and its
    unmap copies back and clears it; copy_us_per_kib is their sum per KiB in
    the smallest read cell, a rough figure: regimes.cost_model() fits the
    cost per KiB over block sizes and directions instead.
    """
    keys = sorted(k for k in cells if k[0] == 'pool' and k[1] == 'read' and k[3] == 1)
    if not keys or strict['map_us_per_call'] is None:
        return None
    bs = keys[0][2]
    t = collections.Counter()
    for r in profiled(cells[keys[0]]):
        for f in ('map_us', 'map_calls', 'unmap_us', 'unmap_calls'):
            t[f] += r[f]
    if not t['map_calls'] or not t['unmap_calls']:
        return None
    map_call = t['map_us'] / t['map_calls']
    unmap_call = t['unmap_us'] / t['unmap_calls']
    copy_kib = (map_call + unmap_call) / 2 / (bs / 1024.0)
    strict_pair = strict['map_us_per_call'] + strict['unmap_us_per_call']
    return {'bs': bs, 'pool_map_us_per_call': map_call, 'pool_unmap_us_per_call': unmap_call,
            'copy_us_per_kib': copy_kib, 'strict_map_unmap_us': strict_pair,
            'break_even_read_kib': strict_pair / (2 * copy_kib) if copy_kib else None,
            'break_even_write_kib': strict_pair / copy_kib if copy_kib else None,
            'threshold': threshold}


def _size(b):
    return '%dk' % (b // 1024) if b >= 1024 and b % 1024 == 0 else str(b)


def _ratio(a, b):
    return '%.2f' % (a / b) if b else 'n/a'


def _iv(p):
    """'1.40 [1.35-1.44]' for a paired entry, the median alone without an interval."""
    if p is None:
        return '-'
    if p['low'] is None:
        return '%.3f' % p['median']
    return '%.3f [%.3f-%.3f]' % (p['median'], p['low'], p['high'])


def _ms_per_gib(cell):
    if cell is None or not any(r.get('map_calls') for r in profiled(cell)):
        return '-'
    m = cell['median']
    return '%.0f' % ((m['map_us_per_gib'] + m['unmap_us_per_gib']) / 1000)


def aa_md(doc):
    """The A/A table and its verdict, from aa()'s result."""
    sm = doc['summary']
    lines = ['## A/A control: strict2 / strict', '',
             '`strict2` is `strict` under another name, measured as the bench measures '
             '`pool` against `strict` (see the method above): its paired '
             'ratio shows what a difference must exceed to mean anything. Target: ratio '
             'within %.2f-%.2f and interval half-width at most %.0f %% in at least %.0f %% '
             'of the cells.' % (sm['target']['ratio_within'][0], sm['target']['ratio_within'][1],
                                100 * sm['target']['half_width_at_most'],
                                100 * sm['target']['share_of_cells']), '',
             '| rw | numjobs | bs | strict2/strict [95 % interval] | half-width | pairs | '
             'within target |', '|---|---|---|---|---|---|---|']
    for r in doc['cells']:
        hw = '%.1f %%' % (100 * r['half_width']) if r['half_width'] is not None else 'n/a'
        iv = ('%.3f [%.3f-%.3f]' % (r['ratio'], r['ci_low'], r['ci_high'])
              if r['ci_low'] is not None else '%.3f' % r['ratio'])
        lines.append('| %s | %d | %s | %s | %s | %d | %s |'
                     % (r['rw'], r['numjobs'], _size(r['bs']), iv, hw, r['pairs'],
                        'yes' if r['ok'] else 'no'))
    lines += ['', '%d of %d cells within target (%.0f %%): target %s; median half-width '
              '%s, largest deviation of a ratio from 1: %.1f %%.'
              % (sm['within_target'], sm['cells'], 100 * sm['share_within_target'],
                 'met' if sm['target_met'] else 'NOT met',
                 '%.1f %%' % (100 * sm['median_half_width'])
                 if sm['median_half_width'] is not None else 'n/a',
                 100 * sm['max_abs_deviation']), '']
    return lines


def bench_md(doc, cells, cost, machine, pcost=None, aa_doc=None, how=None):
    """The tables a person reads: one per rw and numjobs, ratios paired by repetition.

    aa_doc, the last A/A run's aa.json (make aa), names the noise floor; how says how a
    repetition measured its modes (method())."""
    modes = sorted({k[0] for k in cells}, key=_order)
    reps = max(len(c['reps']) for c in cells.values())
    lines = ['# Benchmark: fio through virtio-iommu under QEMU TCG', '',
             'Kernel %s, QEMU %s, fio %s, %s. %s' % (doc['kernel'], doc['qemu'], doc['fio'],
                                                    doc['date'], machine), '',
             'fio `--direct=1 --ioengine=libaio`, iodepth 64 unless `hib.iodepth` said '
             'otherwise, null-co NVMe backend, %d '
             'repetitions in one boot, every cell running all modes in a rotated order; '
             'each repetition: %s.%s' % (reps, how or 'a fio run per mode',
                                          ' Ratios between modes of one domain type '
                                          '(`pool/strict`) are measured within one run; '
                                          '`lazy/strict` and `passthrough/strict` pair '
                                          'runs made one after the other and carry the '
                                          'host\'s slow drift.'
                                          if how and how.startswith('one fio run') else ''),
             '',
             'Modes: ' + ', '.join('`%s`' % m for m in modes) + ' (`strict`: DMA domain, '
             'strict invalidation; `strict2`: the same again, an A/A control; `pool`: strict '
             'with the pool\'s defaults, `iommu.bounce=auto` (on where the IOMMU says its '
             'maps are costly) and the boot threshold, `auto` (the measured policy) unless '
             'the command line says otherwise; `pool-auto`: the pool on, the measured '
             'policy; `pool-all`: the pool bouncing every size its classes hold; `lazy`: '
             'DMA-FQ; `passthrough`: identity domain, no protection, the ceiling).', '',
             '`X/strict` is the median over repetitions of X\'s IOPS divided by strict\'s in '
             'the same repetition, with its distribution-free 95 % interval (order '
             'statistics; none below 6 repetitions). map+unmap is the time in '
             '`iommu_dma_{map,unmap}_{page,sg}` per GiB moved, from separate runs under the '
             'function profiler (numjobs=1 only).', '']
    if aa_doc and aa_doc.get('summary', {}).get('median_half_width') is not None:
        sm = aa_doc['summary']
        lines += ['Noise floor: in the last A/A run (`aa.md`, %s, %s repetitions, %s) the '
                  'interval of strict2/strict had a half-width of %.1f %% in the median cell '
                  'and up to %.1f %% in the worst; differences smaller than that are not '
                  'resolved%s.'
                  % (aa_doc.get('date', '?'), aa_doc.get('reps', '?'),
                     aa_doc.get('method', 'a fio run per mode'),
                     100 * sm['median_half_width'],
                     100 * max(c['half_width'] for c in aa_doc['cells']
                               if c['half_width'] is not None),
                     ' in ratios measured within one run (`pool/strict`)'
                     if aa_doc.get('alternating') else ''), '']
    pr = paired(cells)
    groups = collections.OrderedDict()
    for key in sorted_keys(cells):
        groups.setdefault((key[1], key[3]), set()).add(key[2])
    others = [m for m in modes if m not in ('strict', 'strict2')]
    timed = [m for m in ('strict', 'pool') if m in modes]
    for (rw, nj), sizes in groups.items():
        lines += ['## %s, numjobs=%d' % (rw, nj), '']
        head = ['bs', 'strict IOPS'] + ['%s/%s' % (m, base_of(m)) for m in others]
        head += ['%s map+unmap ms/GiB' % m for m in timed]
        lines.append('| ' + ' | '.join(head) + ' |')
        lines.append('|' + '---|' * len(head))
        for bs in sorted(sizes):
            st = cells.get(('strict', rw, bs, nj))
            row = [_size(bs), '%.0f' % st['median']['iops'] if st else '-']
            row += [_iv(pr.get((m, rw, bs, nj))) for m in others]
            row += [_ms_per_gib(cells.get((m, rw, bs, nj))) for m in timed]
            lines.append('| ' + ' | '.join(row) + ' |')
        lines.append('')
    a = aa(cells)
    if a:
        lines += aa_md(a)
    lines.append('## Cost model (numjobs=1, profiled runs, summed over CPUs)')
    lines.append('')
    if cost['map_us_per_call'] is not None:
        lines.append('- `iommu_dma_map_page/_sg`: %.1f us per call (%d calls)'
                     % (cost['map_us_per_call'], cost['map_calls']))
        lines.append('- `iommu_dma_unmap_page/_sg`: %.1f us per call (%d calls)'
                     % (cost['unmap_us_per_call'], cost['unmap_calls']))
    else:
        lines.append('- no strict-mode calls were profiled')
    if pcost:
        lines.append('- pool, %s reads: map %.1f us (the fill of the slot), unmap %.1f us (the copy '
                     'back and the clear of the write-only slot) per call, %.2f us per KiB of '
                     'the two together' % (_size(pcost['bs']), pcost['pool_map_us_per_call'],
                                            pcost['pool_unmap_us_per_call'],
                                            pcost['copy_us_per_kib']))
        lines.append('- a rough break-even from these figures alone: reads below %.1f KiB, writes '
                     'below %.1f KiB, against %.1f us for a strict map + unmap; the measured '
                     'sweep, per direction and IOMMU, is `make regimes` (`regimes.md`)'
                     % (pcost['break_even_read_kib'], pcost['break_even_write_kib'],
                        pcost['strict_map_unmap_us']))
        if str(pcost['threshold']) == 'auto':
            lines.append('- threshold used: iommu.bounce_threshold=auto (the default: the '
                         'measured policy decides per class and direction)')
        else:
            lines.append('- threshold used: iommu.bounce_threshold=%s bytes'
                         % pcost['threshold'])
    lines.append('')
    lines.append('Produced by `make bench` (harness/bench.py); raw per-repetition values '
                 'in `bench-detail.json`, guest logs under `build/logs/`.')
    return '\n'.join(lines) + '\n'


def plot(cells, path):
    """Each mode's paired ratio to its base by block size, with its 95 % interval as
    error bars; one panel per rw/numjobs."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    pr = paired(cells)
    groups = sorted({(k[1], k[3]) for k in cells})
    modes = sorted({k[0] for k in pr}, key=_order)
    fig, axes = plt.subplots(1, len(groups), figsize=(4.2 * len(groups), 3.8), squeeze=False)
    for ax, (rw, nj) in zip(axes[0], groups):
        for i, m in enumerate(modes):
            pts = sorted((k[2], p) for k, p in pr.items()
                         if k[0] == m and k[1] == rw and k[3] == nj)
            if not pts:
                continue
            x = [j + 0.06 * (i - len(modes) / 2.0) for j in range(len(pts))]
            y = [p['median'] for _, p in pts]
            lo = [p['median'] - p['low'] if p['low'] is not None else 0 for _, p in pts]
            hi = [p['high'] - p['median'] if p['high'] is not None else 0 for _, p in pts]
            ax.errorbar(x, y, yerr=[lo, hi], marker='o', capsize=3,
                        label='%s/%s' % (m, base_of(m)))
            ax.set_xticks(range(len(pts)))
            ax.set_xticklabels([_size(b) for b, _ in pts])
        ax.axhline(1.0, color='grey', linewidth=0.8)
        ax.set_title('%s, numjobs=%d' % (rw, nj))
        ax.set_xlabel('block size')
        ax.set_ylabel('IOPS ratio, paired (log scale)')
        ax.set_yscale('log')
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _class_of(bs):
    """The pool's class (slot size) for a page-aligned block of bs bytes."""
    c = 4096
    while c < bs:
        c *= 2
    return c


def pool_own_time(out, cells):
    """The pool's own time per call, from the runs that profiled its entry points alone
    (guest Output.pprof): per pool mode, rw and block size, ns per map and per unmap
    call in io_buffer_pool_{map,unmap}_{page,sg}, the policy's decision for that size
    and direction after the run, and the share of strict's map+unmap time per call
    (same rw and size, numjobs 1) that the two are.  Where the decision is "map", that
    is what the policy's sampling and decision cost on top of the normal path."""
    rows = []
    for key in sorted(out.pprof, key=lambda k: (_order(k[0]), k[1], bs_bytes(k[2]))):
        mode, rw, bs = key[0], key[1], bs_bytes(key[2])
        profs = out.pprof[key]
        m_us, m_n = guest.iommu_time(profs, 'io_buffer_pool_map_')
        u_us, u_n = guest.iommu_time(profs, 'io_buffer_pool_unmap_')
        if not m_n or not u_n:
            continue
        want = ('from_device' if 'read' in rw else 'to_device', _class_of(bs))
        dec = next((p['decision'] for p in out.policy
                    if p['modes'] == ['pprof:' + mode] and p['rw'] == rw and p['bs'] == bs
                    and (p['dir'], p['class']) == want), None)
        strict = cells.get(('strict', rw, bs, 1))
        pair = None
        if strict:
            t = collections.Counter()
            for r in profiled(strict):
                for f in ('map_us', 'map_calls', 'unmap_us', 'unmap_calls'):
                    t[f] += r[f]
            if t['map_calls'] and t['unmap_calls']:
                pair = t['map_us'] / t['map_calls'] + t['unmap_us'] / t['unmap_calls']
        own = m_us / m_n + u_us / u_n
        if mode == 'strict':
            dec = 'none'    # the control: the pool off, its entry points return at once
        rows.append({'mode': mode, 'rw': rw, 'bs': bs, 'decision': dec,
                     'map_ns': round(1000 * m_us / m_n), 'unmap_ns': round(1000 * u_us / u_n),
                     'map_calls': m_n, 'unmap_calls': u_n,
                     'strict_map_unmap_us': round(pair, 2) if pair else None,
                     'share_of_strict': round(own / pair, 4) if pair else None})
    return rows


def pool_own_md(rows):
    """bench.md's section on the pool's own time per call."""
    if not rows:
        return []
    lines = ['', '## The pool\'s own time per call', '',
             'Its entry points alone under the function profiler, in short runs of their own '
             '(numjobs 1): where the policy maps, the time of its sampling and decision on top '
             'of the normal path; where it bounces, the whole bounce. share: of strict\'s '
             'map+unmap time per call (profiled, same size and direction).', '',
             '| mode | rw | bs | decision | pool map ns | pool unmap ns | strict map+unmap us '
             '| share |', '|---|---|---|---|---|---|---|---|']
    for r in rows:
        lines.append('| %s | %s | %s | %s | %d | %d | %s | %s |' % (
            r['mode'], r['rw'], _size(r['bs']), r['decision'] or '-', r['map_ns'],
            r['unmap_ns'], r['strict_map_unmap_us'] or '-',
            '%.1f %%' % (100 * r['share_of_strict']) if r['share_of_strict'] else '-'))
    maps = [r['share_of_strict'] for r in rows if r['decision'] == 'map' and r['share_of_strict']]
    if maps:
        lines += ['', 'Where the policy maps: its own time is %.1f-%.1f %% of a map+unmap '
                  '(median %.1f %%, %d cells).' % (100 * min(maps), 100 * max(maps),
                                                   100 * statistics.median(maps), len(maps))]
    ctl = [r['share_of_strict'] for r in rows if r['decision'] == 'none' and r['share_of_strict']]
    if ctl:
        lines += ['', 'The control, strict (the pool off: its entry points return at once): '
                  '%.1f-%.1f %% (median %.1f %%), what the profiler and interrupts taken '
                  'inside them add.' % (100 * min(ctl), 100 * max(ctl),
                                        100 * statistics.median(ctl))]
    return lines


def write(outdir, doc, cells, cost, machine, detail_extra=None, pcost=None, aa_doc=None,
          how=None, own=None):
    """Write bench.json, bench-detail.json, bench.md and bench.png into outdir."""
    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(outdir, 'bench.json'), 'w') as f:
        json.dump(doc, f, indent=1)
        f.write('\n')
    detail = {'cost_model_strict': cost, 'cost_model_pool': pcost,
              'cells': [{'mode': k[0], 'rw': k[1], 'bs': k[2], 'numjobs': k[3],
                         'reps': cells[k]['reps']} for k in sorted_keys(cells)]}
    detail.update(detail_extra or {})
    with open(os.path.join(outdir, 'bench-detail.json'), 'w') as f:
        json.dump(detail, f, indent=1)
        f.write('\n')
    md = bench_md(doc, cells, cost, machine, pcost, aa_doc, how)
    if own:
        tail = 'Produced by'
        extra = '\n'.join(pool_own_md(own)) + '\n'
        at = md.rfind('\n' + tail)
        md = md[:at + 1] + extra.lstrip('\n') + '\n' + md[at + 1:] if at >= 0 else md + extra
    with open(os.path.join(outdir, 'bench.md'), 'w') as f:
        f.write(md)
    plot(cells, os.path.join(outdir, 'bench.png'))
    return md
