# SPDX-License-Identifier: GPL-2.0-only
"""Aggregate benchmark cells and write results/bench.json, bench.md and bench.png."""
import collections
import json
import math
import statistics

from . import guest

GIB = float(1 << 30)
# strict2 is strict again under another name: an A/A control in the same rotation
MODE_ORDER = ['strict', 'strict2', 'pool', 'lazy', 'passthrough']
_BS_UNITS = {'k': 1 << 10, 'm': 1 << 20}


def bs_bytes(bs):
    """'4k' -> 4096, '512' -> 512."""
    s = str(bs).strip().lower()
    if s and s[-1] in _BS_UNITS:
        return int(s[:-1]) * _BS_UNITS[s[-1]]
    return int(s)


def _order(mode):
    return MODE_ORDER.index(mode) if mode in MODE_ORDER else len(MODE_ORDER)


def aggregate(outputs):
    """Group the cells of one or more guest Outputs by (mode, rw, bs, numjobs).

    Returns {key: cell} where cell holds the per-repetition values and their medians.
    map/unmap times are summed over CPUs and over the _page and _sg variants and divided
    by the GiB fio moved in that repetition.
    """
    reps = collections.defaultdict(list)
    for out in outputs:
        for key, fio in out.cells:
            mode, rw, bs, nj, rep = key
            if fio.error:
                raise guest.ParseError('fio reported error %d in %s' % (fio.error, key))
            kib = fio.read_kib + fio.write_kib
            gib = kib * 1024 / GIB
            profs = out.prof.get(key, [])
            map_us, map_n = guest.iommu_time(profs, 'iommu_dma_map_')
            unmap_us, unmap_n = guest.iommu_time(profs, 'iommu_dma_unmap_')
            reps[(mode, rw, bs_bytes(bs), nj)].append({
                'rep': rep,
                'bw_kib': fio.read_bw_kib + fio.write_bw_kib,
                'iops': fio.read_iops + fio.write_iops,
                'gib': gib,
                'map_us': map_us, 'map_calls': map_n,
                'unmap_us': unmap_us, 'unmap_calls': unmap_n,
                'map_us_per_gib': map_us / gib if gib else 0.0,
                'unmap_us_per_gib': unmap_us / gib if gib else 0.0,
            })
    cells = {}
    for key, rs in reps.items():
        med = {f: statistics.median(r[f] for r in rs)
               for f in ('bw_kib', 'iops', 'map_us_per_gib', 'unmap_us_per_gib')}
        cells[key] = {'reps': rs, 'median': med}
    return cells


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


def paired(cells, base='strict'):
    """Each mode against base in the same repetition of the same cell.

    Returns {key: {'n', 'ratios', 'median', 'low', 'high', 'coverage', 'half_width'}}
    for every key whose mode is not base; half_width is the larger distance from the
    median to an end of the interval, relative to the median (None without one)."""
    out = {}
    for key, c in cells.items():
        mode, rw, bs, nj = key
        b = cells.get((base, rw, bs, nj))
        if mode == base or not b:
            continue
        bi = {r['rep']: r['iops'] for r in b['reps']}
        ratios = [r['iops'] / bi[r['rep']] for r in c['reps'] if bi.get(r['rep'])]
        med, lo, hi, cov = median_ci(ratios)
        hw = (max(med - lo, hi - med) / med) if lo is not None and med else None
        out[key] = {'n': len(ratios), 'ratios': ratios, 'median': med, 'low': lo,
                    'high': hi, 'coverage': cov, 'half_width': hw}
    return out


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
        for r in c['reps']:
            t['map_us'] += r['map_us']
            t['map_calls'] += r['map_calls']
            t['unmap_us'] += r['unmap_us']
            t['unmap_calls'] += r['unmap_calls']
    return {'map_us_per_call': t['map_us'] / t['map_calls'] if t['map_calls'] else None,
            'unmap_us_per_call': t['unmap_us'] / t['unmap_calls'] if t['unmap_calls'] else None,
            'map_calls': t['map_calls'], 'unmap_calls': t['unmap_calls']}


def spread(cells):
    """Median over cells of max/min IOPS across repetitions: the run's noise."""
    r = [max(x['iops'] for x in c['reps']) / min(x['iops'] for x in c['reps'])
         for c in cells.values() if len(c['reps']) > 1 and min(x['iops'] for x in c['reps'])]
    return statistics.median(r) if r else None


def pool_cost(cells, strict, threshold):
    """The cost model of the pool, measured in this run.

    In mode pool, the profiled map and unmap of a bounced read are a copy
    each (fill at map, copy back at unmap) plus the slot lookup, so the
    smallest read cell gives the copy cost per KiB.  Reads pay two copies
    against one strict map+unmap: they break even at
    (strict map + unmap us) / (2 x copy us per KiB) KiB.
    """
    keys = sorted(k for k in cells if k[0] == 'pool' and k[1] == 'read' and k[3] == 1)
    if not keys or strict['map_us_per_call'] is None:
        return None
    bs = keys[0][2]
    t = collections.Counter()
    for r in cells[keys[0]]['reps']:
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


def bench_md(doc, cells, cost, machine, pcost=None):
    """The table a person reads."""
    modes = sorted({k[0] for k in cells}, key=_order)
    lines = ['# Benchmark: fio through virtio-iommu under QEMU TCG', '',
             'Kernel %s, QEMU %s, fio %s, %s. %s' % (doc['kernel'], doc['qemu'], doc['fio'],
                                                    doc['date'], machine), '',
             'fio `--direct=1 --ioengine=libaio --iodepth=64`, null-co NVMe backend. Each '
             'value is the median of %d interleaved repetitions in one boot.'
             % max(len(c['reps']) for c in cells.values()), '',
             'Modes: ' + ', '.join('`%s`' % m for m in modes) + ' (`strict`: DMA domain, '
             'strict invalidation; `strict2`: the same again, an A/A control; `pool`: strict '
             'with the bounce pool on; `lazy`: DMA-FQ; `passthrough`: identity domain, no '
             'protection, the ceiling).', '']
    noise = spread(cells)
    if noise:
        lines += ['Noise: in the median cell the fastest repetition was %.2fx the slowest. '
                  'Ratios closer to 1 than that are not resolved by this run; in cells the '
                  'pool does not bounce (above the threshold) pool and strict run the same '
                  'code.' % noise, '']
    groups = collections.OrderedDict()
    for key in sorted_keys(cells):
        groups.setdefault((key[1], key[3]), set()).add(key[2])
    others = [m for m in modes if m != 'strict']
    for (rw, nj), sizes in groups.items():
        lines.append('## %s, numjobs=%d' % (rw, nj))
        lines.append('')
        head = ['bs'] + ['%s MiB/s' % m for m in modes] + ['%s IOPS' % m for m in modes]
        head += ['%s/strict' % m for m in others]
        if 'passthrough' in modes:
            head += ['%s/passthrough' % m for m in modes if m != 'passthrough']
        head += ['%s map+unmap ms/GiB' % m for m in modes if m != 'passthrough']
        lines.append('| ' + ' | '.join(head) + ' |')
        lines.append('|' + '---|' * len(head))
        for bs in sorted(sizes):
            med = {m: cells[(m, rw, bs, nj)]['median'] for m in modes if (m, rw, bs, nj) in cells}
            row = [_size(bs)]
            row += ['%.1f' % (med[m]['bw_kib'] / 1024) if m in med else '-' for m in modes]
            row += ['%.0f' % med[m]['iops'] if m in med else '-' for m in modes]
            st = med.get('strict', {}).get('bw_kib', 0)
            row += [_ratio(med[m]['bw_kib'], st) if m in med else '-' for m in others]
            if 'passthrough' in modes:
                pt = med.get('passthrough', {}).get('bw_kib', 0)
                row += [_ratio(med[m]['bw_kib'], pt) if m in med else '-'
                        for m in modes if m != 'passthrough']
            row += ['%.0f' % ((med[m]['map_us_per_gib'] + med[m]['unmap_us_per_gib']) / 1000)
                    if m in med else '-' for m in modes if m != 'passthrough']
            lines.append('| ' + ' | '.join(row) + ' |')
        lines.append('')
    pr = paired(cells)
    if pr:
        lines.append('## Paired ratios (IOPS of each mode / strict in the same repetition)')
        lines.append('')
        lines.append('Median of the per-repetition ratios and the order-statistic interval of '
                     'that median (its coverage, at least 95 %; none below 6 repetitions). '
                     '`strict2` is strict under another name: its ratio is the noise floor.')
        lines.append('')
        lines.append('| rw | numjobs | bs | mode | median | interval | coverage | pairs |')
        lines.append('|---|---|---|---|---|---|---|---|')
        for key in sorted(pr, key=lambda k: (k[1], k[3], k[2], _order(k[0]))):
            p = pr[key]
            iv = ('%.3f - %.3f (+-%.1f %%)' % (p['low'], p['high'], 100 * p['half_width'])
                  if p['low'] is not None else 'n/a')
            cov = '%.1f %%' % (100 * p['coverage']) if p['coverage'] else 'n/a'
            lines.append('| %s | %d | %s | %s | %.3f | %s | %s | %d |'
                         % (key[1], key[3], _size(key[2]), key[0], p['median'], iv, cov,
                            p['n']))
        lines.append('')
    lines.append('## Cost model (numjobs=1 cells, ftrace function profiler, summed over CPUs)')
    lines.append('')
    if cost['map_us_per_call'] is not None:
        lines.append('- `iommu_dma_map_page/_sg`: %.1f us per call (%d calls)'
                     % (cost['map_us_per_call'], cost['map_calls']))
        lines.append('- `iommu_dma_unmap_page/_sg`: %.1f us per call (%d calls)'
                     % (cost['unmap_us_per_call'], cost['unmap_calls']))
    else:
        lines.append('- no strict-mode calls were profiled')
    if pcost:
        lines.append('- pool, %s reads: map %.1f us, unmap %.1f us per call; each is one copy of '
                     'the buffer plus the slot lookup, so a copy costs %.2f us per KiB in this '
                     'guest' % (_size(pcost['bs']), pcost['pool_map_us_per_call'],
                                pcost['pool_unmap_us_per_call'], pcost['copy_us_per_kib']))
        lines.append('- break-even: a bounced read (two copies) wins below %.1f KiB, a bounced '
                     'write (one copy) below %.1f KiB, against %.1f us for a strict map + unmap'
                     % (pcost['break_even_read_kib'], pcost['break_even_write_kib'],
                        pcost['strict_map_unmap_us']))
        lines.append('- threshold used: iommu.bounce_threshold=%s bytes (the default, '
                     'CONFIG_IOMMU_IO_BUFFER_THRESHOLD)' % pcost['threshold'])
    lines.append('')
    lines.append('Produced by `make bench` (harness/bench.py); raw per-repetition values '
                 'in `bench-detail.json`, guest logs under `build/logs/`.')
    return '\n'.join(lines) + '\n'


def plot(cells, path):
    """Bandwidth by block size, one line per mode, one panel per rw/numjobs."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    groups = sorted({(k[1], k[3]) for k in cells})
    modes = sorted({k[0] for k in cells}, key=_order)
    fig, axes = plt.subplots(1, len(groups), figsize=(4.2 * len(groups), 3.8), squeeze=False)
    for ax, (rw, nj) in zip(axes[0], groups):
        for m in modes:
            pts = sorted((k[2], c['median']['bw_kib'] / 1024) for k, c in cells.items()
                         if k[0] == m and k[1] == rw and k[3] == nj)
            if pts:
                ax.plot([_size(b) for b, _ in pts], [v for _, v in pts], marker='o', label=m)
        ax.set_title('%s, numjobs=%d' % (rw, nj))
        ax.set_xlabel('block size')
        ax.set_ylabel('MiB/s (median, log scale)')
        ax.set_yscale('log')
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write(outdir, doc, cells, cost, machine, detail_extra=None, pcost=None):
    """Write bench.json, bench-detail.json, bench.md and bench.png into outdir."""
    import os
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
    md = bench_md(doc, cells, cost, machine, pcost)
    with open(os.path.join(outdir, 'bench.md'), 'w') as f:
        f.write(md)
    plot(cells, os.path.join(outdir, 'bench.png'))
    return md
