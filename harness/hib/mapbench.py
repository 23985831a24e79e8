# SPDX-License-Identifier: GPL-2.0-only
"""The map+unmap microbenchmark of `make mapbench`: what results/mapbench.json says.

The guest (scenario "mapbench", harness/guest/mapbench.sh) times dma_map_single() plus
dma_unmap_single() of one buffer, 1 to 32 pages, in both directions, with no I/O in
flight, through QEMU's edu device and the harness's edu_dma module.  Each repetition
runs every mode once per size and direction, so modes are paired by repetition.
"""
import collections
import statistics

from . import report

# pool-auto may cost at most this much more per map+unmap pair than strict
AUTO_LIMIT = 1.03
DIRS = {0: 'to_device', 1: 'from_device'}


def rows(lines, policy=(), base='strict'):
    """The results rows of a boot's "HIB mapbench" lines: one per size, direction and
    mode other than base, with the paired ratio of its time per pair to base's.

    Repetition 0 is the warm-up and is left out.  A row's 'decision' is what the cost
    policy of the edu device's domain said for that class and direction at the end
    (from the "HIB policy" lines), where it reported one."""
    ns = collections.defaultdict(dict)   # (pages, dir, mode) -> {rep: ns}
    for rep, pages, d, mode, t in lines:
        if rep > 0:
            ns[(pages, d, mode)][rep] = t
    dec = {(p['class'], p['dir']): p['decision'] for p in policy}
    out = []
    for (pages, d, mode) in sorted(ns):
        if mode == base:
            continue
        b = ns.get((pages, d, base), {})
        ratios = [t / b[r] for r, t in sorted(ns[(pages, d, mode)].items()) if b.get(r)]
        med, lo, hi, _ = report.median_ci(ratios)
        r4 = (lambda v: None if v is None else round(v, 4))
        row = {'pages': pages, 'bytes': pages * 4096, 'dir': DIRS[d], 'mode': mode,
               'ns_per_pair': round(statistics.median(ns[(pages, d, mode)].values())),
               'strict_ns_per_pair': round(statistics.median(b.values())) if b else None,
               'time_ratio_to_strict': r4(med), 'ci_low': r4(lo), 'ci_high': r4(hi),
               'pairs': len(ratios)}
        if mode.endswith('pool-auto'):
            row['decision'] = dec.get((pages * 4096, DIRS[d]))
            row['ok'] = med is not None and med <= AUTO_LIMIT
        out.append(row)
    return out


def summary(rs):
    """The worst pool-auto time ratio and whether every pool-auto row met AUTO_LIMIT."""
    auto = [r for r in rs if r['mode'].endswith('pool-auto')]
    if not auto:
        return {'rows': 0, 'all_ok': False, 'worst': None}
    worst = max(auto, key=lambda r: r['time_ratio_to_strict'] or 0)
    return {'rows': len(auto), 'all_ok': all(r['ok'] for r in auto),
            'worst': {k: worst[k] for k in ('pages', 'dir', 'time_ratio_to_strict',
                                            'ci_low', 'ci_high', 'decision')},
            'limit': AUTO_LIMIT}


# The lean-kernel policy check of make check (check.py policy_boot): classes whose
# right path is not in doubt under a strict virtio-iommu domain in this emulator, the
# decision the policy must reach for each, and the bound on pool-auto's time per pair
# over strict's.  One page: pool-all took 0.26 (to the device) and 0.47 (from it) of
# strict in make mapbench; 32 pages: 4.1 and 11.4 times strict.
CLEAR_CLASSES = {1: ('bounce', 0.8), 32: ('map', 1.5)}
# a class whose right path is clear changes its decision at most this often (a class
# starts mapped: a first decision to bounce counts as one change, one to map as none)
CLEAR_SWITCHES = 3


def policy_verdicts(rs, policy, clear=None, min_pairs=1):
    """The lean kernel's policy check: (name, ok, why) per clear class and direction.

    rs: rows() of a mapbench boot with modes strict and pool-auto; policy: its
    "HIB policy" lines, those after the warm-up (repetition 0, hib.policy0=1) and
    those at the end (the highest repetition).  For each size of clear (pages ->
    (decision, bound)) and each direction, the verdict holds when the policy decided
    as given, its own estimates agree (a bounced class's copies cheaper than its maps,
    a mapped class's dearer), it timed maps of the path not taken after the warm-up
    (it explores), it changed its decision at most CLEAR_SWITCHES times, and
    pool-auto's median time per pair over at least min_pairs repetitions is at most
    bound times strict's."""
    clear = CLEAR_CLASSES if clear is None else clear
    rows_by = {(r['pages'], r['dir']): r for r in rs if r['mode'] == 'pool-auto'}
    warm, end = {}, {}
    for p in policy:
        k = (p['class'], p['dir'])
        if p['rep'] == 0:
            warm[k] = p
        elif k not in end or p['rep'] >= end[k]['rep']:
            end[k] = p
    out = []
    for pages, (want, bound) in sorted(clear.items()):
        other = 'iommu' if want == 'bounce' else 'pool'
        for d in sorted(DIRS.values()):
            name = ('lean kernel, cost policy: %dk %s is %s, its estimates agree, the other '
                    'path explored, pool-auto at most %.2f of strict'
                    % (pages * 4, d, 'bounced' if want == 'bounce' else 'mapped', bound))
            k = (pages * 4096, d)
            r, p, w = rows_by.get((pages, d)), end.get(k), warm.get(k)
            missing = [what for what, x in (('mapbench row', r), ('policy line at the end', p),
                                            ('policy line after the warm-up', w)) if x is None]
            if missing:
                out.append((name, False, 'no ' + ', no '.join(missing)))
                continue
            ratio = r['time_ratio_to_strict']
            why = []
            if p['decision'] != want:
                why.append('decision %s' % p['decision'])
            cheaper = p['pool_ns'] < p['iommu_ns']
            if cheaper != (want == 'bounce'):
                why.append('estimates pool %d ns, iommu %d ns' % (p['pool_ns'], p['iommu_ns']))
            explored = p[other + '_timed'][0] - w[other + '_timed'][0]
            if explored <= 0:
                why.append('no timed %s map after the warm-up (%d, then %d)'
                           % (other, w[other + '_timed'][0], p[other + '_timed'][0]))
            if p['switches'] > CLEAR_SWITCHES:
                why.append('%d decision changes' % p['switches'])
            if r['pairs'] < min_pairs:
                why.append('%d repetitions, %d wanted' % (r['pairs'], min_pairs))
            if ratio is None or ratio > bound:
                why.append('pool-auto / strict %s' % ratio)
            out.append(('%s (%s, %s/%s ns, %d timed %s maps after the warm-up, %d changes, '
                        'ratio %s)' % (name, p['decision'], p['pool_ns'], p['iommu_ns'],
                                       explored, other, p['switches'], ratio),
                        not why, '; '.join(why)))
    return out


def copy_fit(rs, mode='pool-all'):
    """Where a bounced pair's time goes, without a profiler: per direction, the least
    squares line through `mode`'s time per pair against the buffer's size.  Its slope
    is what each KiB costs (every pass over the data: the copies, and for a mapping
    the device writes the clearing of its slot too), its intercept what a pair costs
    whatever its size (the DMA API's calls, the pool's bookkeeping).  At one page: the
    pair's time, the copies' share (slope x 4 KiB) and their ratio."""
    out = {}
    for d in sorted({r['dir'] for r in rs}):
        pts = sorted((r['bytes'] / 1024, r['ns_per_pair']) for r in rs
                     if r['dir'] == d and r['mode'] == mode)
        if len(pts) < 3:
            continue
        mx = statistics.fmean(x for x, _ in pts)
        my = statistics.fmean(y for _, y in pts)
        slope = (sum((x - mx) * (y - my) for x, y in pts) /
                 sum((x - mx) ** 2 for x, _ in pts))
        total = dict(pts).get(4.0)
        row = {'ns_per_kib': round(slope, 1), 'fixed_ns': round(my - slope * mx),
               'sizes_kib': [x for x, _ in pts]}
        if total is not None and slope > 0:
            row['at_4k'] = {'pair_ns': total, 'copies_ns': round(4 * slope),
                            'ratio_to_copies': round(total / (4 * slope), 3)}
        out[d] = row
    return out


def mapped_cost(rs):
    """What the policy costs where it maps: over the rows whose pool-auto decision was
    "map", the mean of the row medians (time per pair over strict's) of pool-auto, of
    pool-none (the pool on, bouncing nothing: its hooks without the policy) and of
    strict2 (the A/A control), where the run had them.  pool-auto less pool-none is the
    policy's own share: its sampling, decisions and exploration runs.  None without
    such rows."""
    by = {(r['pages'], r['dir'], r['mode']): r['time_ratio_to_strict'] for r in rs}
    keys = [(r['pages'], r['dir']) for r in rs
            if r['mode'] == 'pool-auto' and r.get('decision') == 'map'
            and r['time_ratio_to_strict'] is not None]
    if not keys:
        return None
    out = {'rows': len(keys)}
    for mode in ('pool-auto', 'pool-none', 'strict2'):
        vals = [by.get(k + (mode,)) for k in keys]
        if all(v is not None for v in vals):
            out[mode] = round(statistics.fmean(vals), 4)
    return out


def clear_split(fit, limit=1.2):
    """Issue 14's 4k read target against the guarantee that a write-only slot is
    cleared when its mapping ends (the IOMMU may let the device read it while it is
    cached): from the two lines of copy_fit(), a from_device pass costs a fill and a
    copy back, one to_device copy each (the to_device slope), plus the clear (the rest
    of the from_device slope).  At 4 KiB: the two copies, the clear, the pair as
    measured, and the lowest pair / copies any bookkeeping could reach (the copies and
    the clear alone, no fixed cost) against `limit`.  None without both lines."""
    rd, wr = fit.get('from_device'), fit.get('to_device')
    if not rd or not wr or wr['ns_per_kib'] <= 0:
        return None
    copies = 2 * 4 * wr['ns_per_kib']
    clear = 4 * (rd['ns_per_kib'] - 2 * wr['ns_per_kib'])
    pair = (rd.get('at_4k') or {}).get('pair_ns')
    floor = (copies + max(clear, 0)) / copies
    return {'copies_ns': round(copies), 'clear_ns': round(clear),
            'clear_per_copies': round(clear / copies, 3),
            'pair_ns': pair, 'pair_per_copies': round(pair / copies, 3) if pair else None,
            'floor_per_copies': round(floor, 3), 'limit': limit,
            'reachable': floor <= limit}


def mapbench_md(doc):
    """results/mapbench.md from the document mapbench.py writes."""
    s = doc['summary']
    lines = ['# map+unmap alone: the policy against strict, no I/O in flight', '',
             doc['machine'], '',
             'dma_map_single() + dma_unmap_single() of one page-aligned buffer through '
             'QEMU\'s edu device behind virtio-iommu in a strict domain; per repetition '
             '%d turns of %d pairs per mode, the modes interleaved in a rotated order; '
             '%d repetitions after a warm-up, paired by repetition (median time ratio '
             'and 95 %% order-statistic interval). '
             '`pool-auto`: iommu.bounce=on, iommu.bounce_threshold=auto; `pool-all`: every '
             'size bounced. Target: pool-auto at most %.2f times strict\'s time in every row.'
             % (doc.get('turns', 1), doc['calls'], doc['reps'], AUTO_LIMIT), '',
             '`strict2` is strict again, the A/A control: how far a ratio moves by noise '
             'alone. `pool-none`: iommu.bounce=on, iommu.bounce_threshold=0, the pool '
             'on but bouncing nothing: what its hooks alone cost the normal path.', '',
             '| bytes | dir | strict ns/pair | strict2 / strict [95 %] | pool-none / strict '
             '[95 %] | pool-auto / strict [95 %] | decision | pool-all / strict [95 %] |',
             '|---|---|---|---|---|---|---|---|']
    by = {(r['pages'], r['dir'], r['mode']): r for r in doc['rows']}

    def iv(r):
        if not r or r['time_ratio_to_strict'] is None:
            return '-'
        if r['ci_low'] is None:
            return '%.3f' % r['time_ratio_to_strict']
        return '%.3f [%.3f-%.3f]' % (r['time_ratio_to_strict'], r['ci_low'], r['ci_high'])

    for (pages, d) in sorted({(r['pages'], r['dir']) for r in doc['rows']}):
        a, p = by.get((pages, d, 'pool-auto')), by.get((pages, d, 'pool-all'))
        aa, nn = by.get((pages, d, 'strict2')), by.get((pages, d, 'pool-none'))
        ref = a or p
        lines.append('| %s | %s | %s | %s | %s | %s | %s | %s |' % (
            report._size(pages * 4096), d, ref['strict_ns_per_pair'] if ref else '-',
            iv(aa), iv(nn), iv(a), (a or {}).get('decision') or '-', iv(p)))
    w = s.get('worst') or {}
    lines += ['', 'Worst pool-auto row: %s pages %s, %s. Target met in every row: %s.'
              % (w.get('pages'), w.get('dir'), w.get('time_ratio_to_strict'),
                 'yes' if s['all_ok'] else 'no'), '']
    mc = doc.get('mapped_cost') or mapped_cost(doc['rows'])
    if mc:
        lines += ['Where pool-auto maps (%d rows), the mean of the row medians over strict: '
                  'pool-auto %s, pool-none %s, strict2 %s. pool-auto less pool-none is what '
                  'the policy\'s sampling, decisions and exploration runs cost the mappings '
                  'it does not bounce; pool-none less strict2, the pool\'s hooks.' % (
                      mc['rows'], mc.get('pool-auto', '-'), mc.get('pool-none', '-'),
                      mc.get('strict2', '-')), '']
    fit = doc.get('copy_fit') or copy_fit(doc['rows'])
    if fit:
        lines += ['## Where a bounced pair\'s time goes (pool-all, no profiler)', '',
                  'Least squares over the sizes, per direction: the slope is the cost of '
                  'every pass over the data (the copies; for from_device also the clearing '
                  'of the write-only slot), the intercept what a pair costs whatever its '
                  'size (the DMA API\'s calls and the pool\'s bookkeeping). The last column '
                  'divides the 4k pair by all its passes; issue 14\'s target, at most 1.2, '
                  'is against the two copies alone: see below.', '',
                  '| dir | ns per KiB | fixed ns | 4k pair ns | 4k passes ns | pair / passes |',
                  '|---|---|---|---|---|---|']
        for d, r in sorted(fit.items()):
            k = r.get('at_4k', {})
            lines.append('| %s | %.1f | %d | %s | %s | %s |' % (
                d, r['ns_per_kib'], r['fixed_ns'], k.get('pair_ns', '-'),
                k.get('copies_ns', '-'), k.get('ratio_to_copies', '-')))
        lines.append('')
        cs = doc.get('clear_split') or clear_split(fit)
        if cs:
            lines += ['4k read, the clear apart: the from_device slope less two to_device '
                      'copies is the clearing of the write-only slot when its mapping ends '
                      '(kept: the IOMMU may let the device read a write-only slot while it '
                      'is cached). Two copies %d ns, the clear %d ns (%.3f of the copies), '
                      'the pair %s ns (%s of the copies). With no fixed cost at all the pair '
                      'would still be %.3f times its copies: issue 14\'s %.1f is %s while '
                      'the clear stays.' % (
                          cs['copies_ns'], cs['clear_ns'], cs['clear_per_copies'],
                          cs['pair_ns'] if cs['pair_ns'] is not None else '-',
                          cs['pair_per_copies'] if cs['pair_per_copies'] is not None else '-',
                          cs['floor_per_copies'], cs['limit'],
                          'within reach' if cs['reachable'] else 'out of reach'), '']
    lines += [
              'Produced by `make mapbench` (harness/mapbench.py); guest log under '
              '`build/logs/mapbench.*`.']
    return '\n'.join(lines) + '\n'
