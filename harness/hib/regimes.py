# SPDX-License-Identifier: GPL-2.0-only
"""The five IOMMU cost regimes of `make regimes`, and what results/regimes.json says.

Each regime is one boot of the lean bench kernel under one emulated IOMMU, running its
baseline (the normal dma-iommu path of its domain type), the same domain with the pool
bouncing every size its classes hold, and the same domain with the pool's measured
policy (iommu.bounce_threshold=auto), taking turns within one fio run.
"""
import collections
import math
import statistics

from . import report, untrusted

# name -> (QEMU IOMMU, guest baseline mode, guest pool mode, numjobs, domain type)
REGIMES = collections.OrderedDict([
    ('virtio-strict', ('virtio', 'strict', 'pool-all', '1,2', 'DMA')),
    ('virtio-lazy', ('virtio', 'lazy', 'lazy-pool-all', '1', 'DMA-FQ')),
    # caching mode: the guest invalidates after a map too, as under a hypervisor; the
    # VT-d driver then refuses deferred invalidation, so there is no lazy twin
    ('vtd-cm-strict', ('vtd-cm', 'strict', 'pool-all', '1', 'DMA')),
    ('vtd-strict', ('vtd', 'strict', 'pool-all', '1', 'DMA')),
    ('vtd-lazy', ('vtd', 'lazy', 'lazy-pool-all', '1', 'DMA-FQ')),
])

# The policy's mode beside each baseline: the pool on, threshold auto.
AUTO_MODE = {'strict': 'pool-auto', 'lazy': 'lazy-pool-auto'}

# regimes.json names the modes of every regime alike: "strict" for its baseline (no
# bouncing, in the regime's domain type), "pool-all" and "pool-auto".
OUT_MODE = {'strict': 'strict', 'lazy': 'strict', 'pool-all': 'pool-all',
            'lazy-pool-all': 'pool-all', 'pool-auto': 'pool-auto',
            'lazy-pool-auto': 'pool-auto'}

# pool-auto must reach this share of the better of strict and pool-all in every cell
AUTO_TARGET = 0.97


def modes_of(name):
    """The guest modes of a regime: baseline, pool-all, pool-auto."""
    _, base, pool, _, _ = REGIMES[name]
    return base, pool, AUTO_MODE[base]


def decision_of(policy, auto, rw, bs, nj):
    """The cost policy's decision for a cell, from the "HIB policy" lines reported
    after each of its repetitions: (the most frequent one, {decision: count})."""
    d = 'from_device' if rw == 'read' else 'to_device'
    got = collections.Counter(p['decision'] for p in policy
                              if auto in p['modes'] and p['rw'] == rw and p['bs'] == bs
                              and p['numjobs'] == nj and p['dir'] == d
                              and p['class'] >= bs and p['class'] < 2 * bs)
    if not got:
        return None, {}
    return got.most_common(1)[0][0], dict(got)


def to_best(cells, key, base, pool):
    """pool-auto against the better of baseline and pool-all: the one of the two with
    the higher median IOPS in the cell, paired with pool-auto by repetition.

    Returns (median, low, high, n, best mode).  (Taking the larger of the two in each
    repetition instead would divide by the noise's maximum and bias every ratio low.)"""
    mode, rw, bs, nj = key
    bc, pc = cells.get((base, rw, bs, nj)), cells.get((pool, rw, bs, nj))
    if not bc or not pc:
        return None, None, None, 0, None
    better = pool if pc['median']['iops'] > bc['median']['iops'] else base
    ref = {r['rep']: r['iops'] for r in (pc if better == pool else bc)['reps']}
    ratios = [r['iops'] / ref[r['rep']] for r in cells[key]['reps'] if ref.get(r['rep'])]
    med, lo, hi, _ = report.median_ci(ratios)
    return med, lo, hi, len(ratios), better


def _fit(points):
    """Least-squares line through (x, y) points: (intercept, slope), or None."""
    if len(points) < 2:
        return None
    mx = statistics.mean(p[0] for p in points)
    my = statistics.mean(p[1] for p in points)
    sxx = sum((p[0] - mx) ** 2 for p in points)
    if not sxx:
        return None
    slope = sum((p[0] - mx) * (p[1] - my) for p in points) / sxx
    return my - slope * mx, slope


def per_call(cell):
    """(map us, unmap us) per call over a cell's profiled runs, or (None, None)."""
    rs = report.profiled(cell)
    mc = sum(r.get('map_calls', 0) for r in rs)
    uc = sum(r.get('unmap_calls', 0) for r in rs)
    if not mc or not uc:
        return None, None
    return (sum(r['map_us'] for r in rs) / mc, sum(r['unmap_us'] for r in rs) / uc)


def cost_model(cells, base, pool):
    """The regime's costs per direction, from its profiled numjobs=1 runs.

    map_us/unmap_us: the baseline's time per call at the smallest block size;
    bounce_us_per_kib: the slope of the pool mode's map+unmap time per call against
    the block size (the copies, and for reads the clearing of the slot), and
    pool_fixed_us its intercept (the lookup); strict_us_per_kib and strict_fixed_us
    the same line for the baseline (a larger mapping costs more pages to map).
    """
    out = {}
    for rw in ('read', 'write'):
        b_pts, p_pts, small = [], [], None
        for (mode, r, bs, nj), c in sorted(cells.items(), key=lambda kv: kv[0][2]):
            if r != rw or nj != 1:
                continue
            m, u = per_call(c)
            if m is None:
                continue
            if mode == base:
                b_pts.append((bs / 1024.0, m + u))
                if small is None:
                    small = {'bs': bs, 'map_us': round(m, 2), 'unmap_us': round(u, 2)}
            elif mode == pool:
                p_pts.append((bs / 1024.0, m + u))
        bf, pf = _fit(b_pts), _fit(p_pts)
        d = dict(small or {})
        if bf and pf:
            d.update({'strict_fixed_us': round(bf[0], 2), 'strict_us_per_kib': round(bf[1], 3),
                      'pool_fixed_us': round(pf[0], 2), 'bounce_us_per_kib': round(pf[1], 3)})
            # where the two lines cross: below it a bounce is cheaper than a mapping
            if pf[1] > bf[1]:
                d['model_break_even'] = max(0, round((bf[0] - pf[0]) / (pf[1] - bf[1]) * 1024))
        out[rw] = d
    return out


def break_even(points):
    """The block size where the pool stops winning, from (bs, paired ratio) points.

    Returns (bytes, bound): bound 'crossing' when the ratio falls through 1 between two
    sizes (interpolated in log2 of the size), 'at_least' when the pool won at every size
    (bytes is the largest), 'below' when it lost at every size (bytes is the smallest).
    """
    pts = sorted(points)
    if not pts:
        return None, None
    if pts[0][1] < 1:
        return pts[0][0], 'below'
    for (b0, r0), (b1, r1) in zip(pts, pts[1:]):
        if r0 >= 1 > r1:
            t = (r0 - 1) / (r0 - r1)
            return int(round(2 ** (math.log2(b0) + t * (math.log2(b1) - math.log2(b0))))), \
                'crossing'
    return pts[-1][0], 'at_least'


def regime_rows(name, cells, policy=()):
    """The regimes.json rows of one regime's cells, and its break-even and cost model.

    A pool-auto row also carries its ratio to the better of strict and pool-all
    ("ratio_to_best", paired), the policy's decision for its size and direction
    ("decision": bounce or map), the faster of the two where strict and pool-all
    differ beyond pool-all's interval ("faster"), and whether it met AUTO_TARGET."""
    _, base, pool, _, dom = REGIMES[name]
    auto = AUTO_MODE[base]
    pr = report.paired(cells, base)
    rows = []
    for key in report.sorted_keys(cells):
        mode, rw, bs, nj = key
        if mode not in (base, pool, auto):
            continue
        p = pr.get(key)
        r4 = (lambda v: None if v is None else round(v, 4))
        rows.append({'regime': name, 'mode': OUT_MODE[mode], 'guest_mode': mode,
                     'domain': dom, 'rw': rw, 'bs': bs, 'numjobs': nj,
                     'iops': round(cells[key]['median']['iops']),
                     'ratio_to_strict': 1.0 if mode == base else r4(p and p['median']),
                     'ci_low': 1.0 if mode == base else r4(p and p['low']),
                     'ci_high': 1.0 if mode == base else r4(p and p['high']),
                     'pairs': len(cells[key]['reps']) if mode == base else (p and p['n'])})
        if mode == auto:
            med, lo, hi, n, better = to_best(cells, key, base, pool)
            dec, counts = decision_of(policy, auto, rw, bs, nj)
            pa = pr.get((pool, rw, bs, nj))
            faster = None
            if pa and pa['low'] is not None:
                faster = 'bounce' if pa['low'] > 1 else 'map' if pa['high'] < 1 else None
            rows[-1].update({'ratio_to_best': r4(med), 'best_ci_low': r4(lo),
                             'best_ci_high': r4(hi), 'best_pairs': n,
                             'best_mode': better and OUT_MODE[better],
                             'decision': dec, 'decisions': counts, 'faster': faster,
                             'decision_right': None if faster is None else dec == faster,
                             'ok': med is not None and med >= AUTO_TARGET})
    be, detail = {}, {}
    for rw in ('read', 'write'):
        pts = [(k[2], p['median']) for k, p in pr.items()
               if k[0] == pool and k[1] == rw and k[3] == 1 and p['median'] is not None]
        b, bound = break_even(pts)
        be[rw] = b
        detail[rw] = bound
    return rows, be, detail, cost_model(cells, base, pool)


def policy_break_even(rows, name):
    """Per direction, the largest numjobs=1 block size the policy bounced, with every
    smaller one bounced too ('none' if it bounced none of them)."""
    out = {}
    for rw in ('read', 'write'):
        rs = sorted((r for r in rows if r['regime'] == name and r['mode'] == 'pool-auto'
                     and r['rw'] == rw and r['numjobs'] == 1), key=lambda r: r['bs'])
        last = 'none'
        for r in rs:
            if r.get('decision') != 'bounce':
                break
            last = r['bs']
        out[rw] = last
    return out


def auto_summary(rows):
    """What the pool-auto rows show against the targets of the measured policy."""
    auto = [r for r in rows if r['mode'] == 'pool-auto']
    judged = [r for r in auto if r.get('decision_right') is not None]
    worst = min((r for r in auto if r.get('ratio_to_best') is not None),
                key=lambda r: r['ratio_to_best'], default=None)
    return {'cells': len(auto), 'target': AUTO_TARGET,
            'cells_at_target': sum(1 for r in auto if r.get('ok')),
            'decisions_judged': len(judged),
            'decisions_right': sum(1 for r in judged if r['decision_right']),
            'worst': worst and {k: worst[k] for k in ('regime', 'rw', 'bs', 'numjobs',
                                                      'ratio_to_best', 'best_ci_low',
                                                      'best_ci_high', 'decision')}}


def _sz(b):
    return report._size(b) if isinstance(b, int) else str(b)


def regimes_md(doc):
    """results/regimes.md: the break-even table, the cost models and the ratios."""
    lines = ['# Five IOMMU cost regimes: where bouncing pays', '',
             '%s' % doc['machine'], '',
             'Per regime one boot; its baseline (`strict`: the normal dma-iommu path in the '
             "regime's domain type, no bouncing), `pool-all` (the same domain, the pool "
             'bouncing every size its classes hold) and, where run, `pool-auto` (the pool '
             'on, its measured policy deciding) are measured in every cell, %d '
             'repetitions of %s. Ratios are paired by repetition: median and 95 %% '
             'order-statistic interval.'
             % (doc['reps'], doc.get('method', '%d s per mode' % doc['runtime'])), '',
             '## Break-even (numjobs=1): the pool wins below this block size', '',
             '| regime | read | write | map us | unmap us | bounce us/KiB read | '
             'bounce us/KiB write |', '|---|---|---|---|---|---|---|']

    def be(name, rw):
        b = doc['break_even'][name][rw]
        bound = doc['break_even_bound'][name][rw]
        if b is None:
            return 'n/a'
        s = report._size(b) if b % 1024 == 0 else '%.1fk' % (b / 1024.0)
        return {'crossing': s, 'at_least': '>= ' + s, 'below': '< ' + s}[bound]

    for name in doc['break_even']:
        cm = doc['cost_model'].get(name, {})
        r, w = cm.get('read', {}), cm.get('write', {})
        lines.append('| %s | %s | %s | %s | %s | %s | %s |' % (
            name, be(name, 'read'), be(name, 'write'),
            r.get('map_us', '-'), r.get('unmap_us', '-'),
            r.get('bounce_us_per_kib', '-'), w.get('bounce_us_per_kib', '-')))
    lines += ['', 'map/unmap us: the baseline\'s `iommu_dma_map_*`/`iommu_dma_unmap_*` time '
              'per call for 4k reads; bounce us/KiB: the slope of the pool\'s map+unmap time '
              'per call against the block size (its copies). Both from short runs under the '
              'function profiler, apart from the throughput runs.', '',
              '## pool-all / strict, paired IOPS ratios', '',
              '| regime | rw | numjobs | bs | strict IOPS | pool-all/strict [95 % interval] |',
              '|---|---|---|---|---|---|']
    base = {(r['regime'], r['rw'], r['bs'], r['numjobs']): r['iops']
            for r in doc['runs'] if r['mode'] == 'strict'}
    for r in doc['runs']:
        if r['mode'] != 'pool-all':
            continue
        iv = ('%.3f [%.3f-%.3f]' % (r['ratio_to_strict'], r['ci_low'], r['ci_high'])
              if r['ci_low'] is not None else
              ('%.3f' % r['ratio_to_strict'] if r['ratio_to_strict'] is not None else 'n/a'))
        lines.append('| %s | %s | %d | %s | %s | %s |' % (
            r['regime'], r['rw'], r['numjobs'], report._size(r['bs']),
            base.get((r['regime'], r['rw'], r['bs'], r['numjobs']), '-'), iv))
    auto = [r for r in doc['runs'] if r['mode'] == 'pool-auto']
    if auto:
        s = doc.get('auto') or auto_summary(doc['runs'])
        lines += ['', '## pool-auto: the measured policy (iommu.bounce_threshold=auto)', '',
                  'pool-auto / best: against the better of strict and pool-all (the higher '
                  'median IOPS of the cell), paired by repetition (target >= %.2f). '
                  'decision: what the policy said '
                  'for the size and direction at the end of the cell (most frequent over '
                  'repetitions); faster: bounce or map where pool-all/strict\'s interval '
                  'excludes 1.' % AUTO_TARGET, '',
                  '| regime | rw | numjobs | bs | pool-auto / strict | pool-auto / best '
                  '[95 %] | decision | faster |', '|---|---|---|---|---|---|---|---|']
        for r in auto:
            best = ('%.3f [%.3f-%.3f]' % (r['ratio_to_best'], r['best_ci_low'],
                                           r['best_ci_high'])
                    if r.get('best_ci_low') is not None else
                    ('%.3f' % r['ratio_to_best'] if r.get('ratio_to_best') else 'n/a'))
            lines.append('| %s | %s | %d | %s | %s | %s | %s | %s |' % (
                r['regime'], r['rw'], r['numjobs'], report._size(r['bs']),
                '%.3f' % r['ratio_to_strict'] if r['ratio_to_strict'] else 'n/a', best,
                r.get('decision') or '-', r.get('faster') or '-'))
        pb = doc.get('policy_break_even', {})
        lines += ['', '| regime | break-even read (sweep) | policy bounced reads up to | '
                  'break-even write (sweep) | policy bounced writes up to |',
                  '|---|---|---|---|---|']
        for name in doc['break_even']:
            p = pb.get(name, {})
            lines.append('| %s | %s | %s | %s | %s |' % (
                name, be(name, 'read'), _sz(p.get('read')), be(name, 'write'),
                _sz(p.get('write'))))
        w = s.get('worst') or {}
        lines += ['', '%d of %d cells at the target; decisions right in %d of the %d cells '
                  'where strict and pool-all differ; worst pool-auto / best %s (%s %s %s '
                  'numjobs %s).' % (s['cells_at_target'], s['cells'], s['decisions_right'],
                                    s['decisions_judged'], w.get('ratio_to_best'),
                                    w.get('regime'), w.get('rw'),
                                    _sz(w.get('bs')), w.get('numjobs'))]
    lines += ['', 'Produced by `make regimes` (harness/regimes.py); guest logs under '
              '`build/logs/regime-*`.']
    if doc.get('untrusted'):
        lines += [''] + untrusted.untrusted_md(
            doc['untrusted'], [r for r in doc['runs'] if r.get('regime') == 'untrusted']
        ).rstrip('\n').split('\n')
    return '\n'.join(lines) + '\n'
