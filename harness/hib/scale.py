# SPDX-License-Identifier: GPL-2.0-only
"""make scale (issue 14): the pool with 4 vCPUs, from the guest's "HIB ..." lines.

Three figures (harness/scale.py runs the boots):
  scaling_1_to_4  IOPS with 4 fio jobs over IOPS with 1, per mode, paired by repetition
                  (strict and pool take turns within one fio run), and the pool's
                  scaling over strict's in the same repetition;
  read_4k_us      per mapping of a 4k read in mode pool, under the function profiler:
                  the time of its entry points per call and, inside them, of the copies
                  between the caller's buffer and the slot and of the zeroing of slots;
  contentions_per_1000_bounces  the contentions /proc/lock_stat counts on the pool's
                  locks in a 4-job read, per 1000 mappings bounced, without the per-CPU
                  slot caches (iommu.bounce_cpu_slots=0, "before") and with them.
"""
import re
import statistics

from . import guest, report

# The lockdep classes of the pool's spinlocks as /proc/lock_stat names them: the shared
# lock of a size class and a CPU's slot cache's, which drivers/iommu/io-buffer-pool.c
# names with lockdep_set_class_and_name() (spin_lock_init() alone would name them after
# the text of its argument, "&c->lock", which other code uses too).  Only lines whose name
# is exactly one of these are counted, and a run in which one of them also appears with a
# "#N" or "/N" (subclass) suffix is refused (pool_locks()): the pool's lock would be split.
LOCK_CLASSES = ('iobp_class_lock', 'iobp_pcp_lock')
_TWIN = re.compile(r'^(?:%s)(?:[#/]\d+)+$' % '|'.join(re.escape(n) for n in LOCK_CLASSES))

# The targets: the pool's scaling 1 -> 4 jobs at least strict's (the median of
# the paired ratio, in every rw), and a 4k read's map + unmap per call at most this many
# times its copies.
SCALING_AT_LEAST = 1.0
COPIES_AT_MOST = 1.2


def parse_lock_stat(lines):
    """The class lines of /proc/lock_stat (Documentation/locking/lockstat.rst) as
    {name: {'con_bounces', 'contentions', 'wait_total_us', 'acq_bounces', 'acquisitions',
    'hold_total_us', 'waiters', 'holders'}}.

    A class line is its name, a colon and 12 numbers: con-bounces, contentions, the
    wait's min, max, total and average, acq-bounces, acquisitions, the hold's min, max,
    total and average (times in us).  Below it, after a line of dashes, up to 4 call
    sites that waited for the lock ("waiters": [(contentions, symbol)]), and after a
    second one up to 4 that held it meanwhile ("holders"), then a line of dots.  lines:
    a list of lines (whitespace may be collapsed, other classes' entries left out) or
    one text.  Lockdep's warning that it stopped (debug_locks off) raises ParseError:
    what the file holds then is not the whole run."""
    if isinstance(lines, str):
        lines = lines.splitlines()
    classes = {}
    cur = part = None
    for line in lines:
        s = line.strip()
        if '*WARNING*' in s:
            raise guest.ParseError('lock_stat: %s' % s)
        f = s.split()
        if len(f) >= 13 and f[-13].endswith(':'):
            name = ' '.join(f[:-12])[:-1]
            try:
                n = [float(x) for x in f[-12:]]
                ints = [int(f[i]) for i in (-12, -11, -6, -5)]
            except ValueError as e:
                raise guest.ParseError('bad lock_stat class line: %r' % s) from e
            if name in classes:
                raise guest.ParseError('lock_stat: class %s twice' % name)
            cur = classes[name] = {
                'con_bounces': ints[0], 'contentions': ints[1], 'wait_total_us': n[4],
                'acq_bounces': ints[2], 'acquisitions': ints[3], 'hold_total_us': n[10],
                'waiters': [], 'holders': []}
            # its contention points name it without a read/write lock's -W or -R
            part, point = None, re.sub(r'-[WR]$', '', name)
        elif cur is None or not s:
            continue
        elif set(s) == {'-'}:
            part = 'waiters' if part is None else 'holders'
        elif set(s) == {'.'}:
            cur = None
        elif part and len(f) >= 4 and f[0] == point and f[1].isdigit() and f[2].startswith('[<'):
            cur[part].append((int(f[1]), ' '.join(f[3:])))
    return classes


def pool_locks(classes):
    """The pool's classes (LOCK_CLASSES) of a parse_lock_stat() result; ParseError when
    one of their names also appears with a suffix (see LOCK_CLASSES)."""
    twins = sorted(n for n in classes if _TWIN.match(n))
    if twins:
        raise guest.ParseError(
            'lock_stat has %s next to the pool\'s %s: the names are not unique, so which '
            'class is the pool\'s is unknown (give its locks names of their own)'
            % (', '.join(twins), ', '.join(LOCK_CLASSES)))
    return {n: classes[n] for n in LOCK_CLASSES if n in classes}


def lock_runs(out):
    """Each fio run of a lockstat boot (hib.lockstat=1, hib.alt=0): [{'key', 'locks':
    pool_locks() of its lock_stat lines, 'bounced': mappings the pool bounced in it,
    'iops'}]."""
    runs = []
    for key, fio in out.cells:
        if fio.error:
            raise guest.ParseError('fio reported error %d in %s' % (fio.error, key))
        tag = '%s %s %s %d %d' % key
        b0 = out.stats.get(tag + ' before', {}).get('bounced')
        b1 = out.stats.get(tag, {}).get('bounced')
        if b0 is None or b1 is None:
            raise guest.ParseError('no bounced counter before and after the fio run %s' % tag)
        runs.append({'key': key, 'locks': pool_locks(parse_lock_stat(out.lockstat.get(key, []))),
                     'bounced': b1 - b0, 'iops': fio.read_iops + fio.write_iops})
    if not runs:
        raise guest.ParseError('the lockstat boot reported no fio run')
    return runs


def contention(out, before):
    """The pool's lock contentions in one lockstat boot, per 1000 mappings bounced.

    before: the boot ran without the per-CPU slot caches (iommu.bounce_cpu_slots=0, its
    maps and unmaps take their class's iobp_class_lock); else with them (iobp_pcp_lock).
    The boot must say it ran so (HIB knob-boot bounce_cpu_slots), and every run must
    have bounced and have taken that lock.  Sums over the boot's runs."""
    slots = out.knob_boot.get('bounce_cpu_slots')
    if slots is None or not slots.isdigit():
        raise guest.ParseError('the boot did not say iommu.bounce_cpu_slots (%s): a kernel '
                               'without the per-CPU slot caches?' % slots)
    slots = int(slots)
    if (slots == 0) != before:
        raise guest.ParseError('iommu.bounce_cpu_slots=%d in the %s boot'
                               % (slots, 'before' if before else 'after'))
    need = 'iobp_pcp_lock' if slots else 'iobp_class_lock'
    runs = lock_runs(out)
    classes = {}
    for r in runs:
        tag = '%s %s %s %d %d' % r['key']
        if r['bounced'] <= 0:
            raise guest.ParseError('the pool bounced nothing in %s' % tag)
        if need not in r['locks']:
            raise guest.ParseError(
                'lock_stat shows no %s in %s (bounce_cpu_slots=%d): that lock was never '
                'taken, or its class has another name (the harness counts %s)'
                % (need, tag, slots, ', '.join(LOCK_CLASSES)))
        for n, s in r['locks'].items():
            c = classes.setdefault(n, {'contentions': 0, 'acquisitions': 0,
                                       'wait_total_us': 0.0, 'waiters': [], 'holders': []})
            for k in ('contentions', 'acquisitions', 'wait_total_us'):
                c[k] += s[k]
            c['waiters'] += s['waiters']
            c['holders'] += s['holders']
    bounces = sum(r['bounced'] for r in runs)
    cont = sum(c['contentions'] for c in classes.values())
    for c in classes.values():
        c['wait_total_us'] = round(c['wait_total_us'], 2)
    return {'bounce_cpu_slots': slots, 'bounces': bounces, 'contentions': cont,
            'per_1000_bounces': round(1000.0 * cont / bounces, 3), 'classes': classes,
            'runs': [{'rep': r['key'][4], 'bounced': r['bounced'], 'iops': round(r['iops']),
                      'contentions': sum(s['contentions'] for s in r['locks'].values())}
                     for r in runs]}


def _interval(values):
    med, lo, hi, cov = report.median_ci(values)

    def r4(v):
        return None if v is None else round(v, 4)
    return {'median': r4(med), 'low': r4(lo), 'high': r4(hi), 'coverage': r4(cov),
            'pairs': len(values), 'ratios': [round(v, 4) for v in values]}


def scaling(cells, rw, bs=4096, jobs=(1, 4), modes=('strict', 'pool')):
    """IOPS with jobs[1] fio jobs over IOPS with jobs[0] in each mode, paired by
    repetition, and the second mode's scaling over the first's in each repetition.

    cells: report.aggregate() of the boot.  Returns {mode: iv, 'pool_vs_strict': iv,
    'iops': {mode: {'NUMJOBS': [IOPS by repetition]}}}, iv = {'median', 'low', 'high',
    'coverage', 'pairs', 'ratios'}: the median and its 95 % order-statistic interval
    (report.median_ci; none below 6 pairs)."""
    per, iops = {}, {}
    for m in modes:
        lo, hi = cells.get((m, rw, bs, jobs[0])), cells.get((m, rw, bs, jobs[1]))
        if not lo or not hi:
            raise guest.ParseError('no %s %s %d-byte runs with numjobs %d and %d'
                                   % (m, rw, bs, jobs[0], jobs[1]))
        base = {r['rep']: r['iops'] for r in lo['reps']}
        per[m] = {r['rep']: r['iops'] / base[r['rep']] for r in hi['reps'] if base.get(r['rep'])}
        if not per[m]:
            raise guest.ParseError('%s %s: no repetition ran with both numjobs' % (m, rw))
        iops[m] = {str(nj): [round(r['iops']) for r in sorted(c['reps'], key=lambda r: r['rep'])]
                   for nj, c in zip(jobs, (lo, hi))}
    out = {m: _interval([per[m][k] for k in sorted(per[m])]) for m in modes}
    both = sorted(k for k in set(per[modes[0]]) & set(per[modes[1]]) if per[modes[0]][k])
    if not both:
        raise guest.ParseError('%s: no repetition with both modes\' scaling' % rw)
    out['pool_vs_strict'] = _interval([per[modes[1]][k] / per[modes[0]][k] for k in both])
    out['iops'] = iops
    return out


def read_breakdown(out, bs='4k'):
    """us per mapping of a bs read in mode pool, from the profiled run of its entry
    points with, inside them, its copies and zeroing (hib.pprof_copies=1, numjobs 1).

    map and unmap: the time of io_buffer_pool_map_* and _unmap_* per call; copies: of
    iobp_copy_phys per map call (a bounced read fills the slot at map and copies it back
    at unmap: copies_per_mapping says how many); zero: of iobp_zero* per map call.
    control: strict's entry points (the pool off: they return at once; what is left is
    the profiler's own cost and interrupts taken inside), as in report.pool_own_time().
    The entry points' times include the copies' and the zeroing's (graph-time)."""
    pool = out.pprof.get(('pool', 'read', bs, 1, 0))
    strict = out.pprof.get(('strict', 'read', bs, 1, 0))
    if not pool:
        raise guest.ParseError('no profile of the pool\'s entry points in a %s read' % bs)
    m_us, m_n = guest.iommu_time(pool, 'io_buffer_pool_map_')
    u_us, u_n = guest.iommu_time(pool, 'io_buffer_pool_unmap_')
    c_us, c_n = guest.iommu_time(pool, 'iobp_copy_phys')
    z_us, z_n = guest.iommu_time(pool, 'iobp_zero')
    if not m_n or not u_n:
        raise guest.ParseError('pool %s read: %d map and %d unmap calls profiled' % (bs, m_n, u_n))
    size = guest.bs_bytes(bs)
    want = ('from_device', report._class_of(size))
    dec = next((p['decision'] for p in out.policy
                if p['modes'] == ['pprof:pool'] and p['rw'] == 'read' and p['bs'] == size
                and (p['dir'], p['class']) == want), None)
    if not c_n:
        raise guest.ParseError('pool %s read: no iobp_copy_phys call profiled: the pool did '
                               'not bounce (policy: %s), or the guest ran without '
                               'hib.pprof_copies=1' % (bs, dec or 'unknown'))
    if not strict:
        raise guest.ParseError('no profile of strict\'s entry points (the control) in a %s '
                               'read' % bs)
    sm_us, sm_n = guest.iommu_time(strict, 'io_buffer_pool_map_')
    su_us, su_n = guest.iommu_time(strict, 'io_buffer_pool_unmap_')
    if not sm_n or not su_n:
        raise guest.ParseError('strict %s read: %d map and %d unmap calls profiled'
                               % (bs, sm_n, su_n))
    r = {'map': m_us / m_n, 'unmap': u_us / u_n, 'copies': c_us / m_n, 'zero': z_us / m_n,
         'copy_per_call': c_us / c_n}
    r = {k: round(v, 3) for k, v in r.items()}
    r.update({'copies_per_mapping': round(c_n / float(m_n), 3), 'map_calls': m_n,
              'unmap_calls': u_n, 'copy_calls': c_n, 'zero_calls': z_n, 'decision': dec,
              'control': {'map': round(sm_us / sm_n, 3), 'unmap': round(su_us / su_n, 3),
                          'map_calls': sm_n, 'unmap_calls': su_n}})
    return r


def targets(scal, brk):
    """The issue's two verdicts from scaling() per rw and read_breakdown(); a part
    missing (None) gives a verdict of None."""
    t = {}
    if scal:
        by = {rw: s['pool_vs_strict']['median'] for rw, s in sorted(scal.items())}
        t['pool_scaling_at_least_strict'] = {
            'at_least': SCALING_AT_LEAST, 'pool_vs_strict': by,
            'met': all(v >= SCALING_AT_LEAST for v in by.values())}
    else:
        t['pool_scaling_at_least_strict'] = {'at_least': SCALING_AT_LEAST, 'met': None}
    if brk:
        pair = brk['map'] + brk['unmap']
        t['map_unmap_at_most_1.2x_copies'] = {
            'at_most': COPIES_AT_MOST, 'map_unmap_us': round(pair, 3),
            'ratio_to_copies': round(pair / brk['copies'], 4) if brk['copies'] else None,
            'met': pair <= COPIES_AT_MOST * brk['copies']}
    else:
        t['map_unmap_at_most_1.2x_copies'] = {'at_most': COPIES_AT_MOST, 'met': None}
    return t


def scale_doc(scal, brk, locks):
    """results/scale.json's figures: scal {rw: scaling()}, brk read_breakdown(), locks
    {'before': contention(), 'after': contention()}; any part may be None (its boot
    failed).  The headline scaling_1_to_4 is that of reads."""
    rd = (scal or {}).get('read')
    locks = locks or {}
    return {
        'contentions_per_1000_bounces': {
            k: locks[k]['per_1000_bounces'] if locks.get(k) else None
            for k in ('before', 'after')},
        'scaling_1_to_4': {m: rd[m]['median'] if rd else None for m in ('strict', 'pool')},
        'read_4k_us': {k: brk[k] if brk else None for k in ('map', 'unmap', 'copies')},
        'targets': targets(scal, brk),
        'scaling': scal, 'read_4k': brk, 'lock': dict(locks, classes=list(LOCK_CLASSES))}


def _met(v):
    return 'n/a (the boot failed)' if v is None else 'met' if v else 'NOT met'


def scale_md(doc):
    """results/scale.md: the three tables and the targets."""
    t = doc['targets']
    lines = ['# Scaling: 4 vCPUs, the pool\'s per-CPU slot caches (issue 14)', '',
             '%s Kernel %s, %s, harness %s.' % (doc.get('machine', ''), doc.get('kernel', '?'),
                                                doc.get('date', '?'), doc.get('harness', '?')),
             '', doc.get('how', ''), '']
    lines += ['## Throughput, numjobs 1 -> 4', '',
              '| rw | strict IOPS 1 job | 4 jobs | strict 1->4 [95 %] | pool IOPS 1 job | '
              '4 jobs | pool 1->4 [95 %] | pool / strict scaling [95 %] |',
              '|---|---|---|---|---|---|---|---|']
    for rw, s in sorted((doc.get('scaling') or {}).items()):
        def med(m, nj):
            return '%.0f' % statistics.median(s['iops'][m][str(nj)])
        lines.append('| %s | %s | %s | %s | %s | %s | %s | %s |' % (
            rw, med('strict', 1), med('strict', 4), report._iv(s['strict']), med('pool', 1),
            med('pool', 4), report._iv(s['pool']), report._iv(s['pool_vs_strict'])))
    ts = t['pool_scaling_at_least_strict']
    lines += ['', 'Target: the pool\'s scaling at least strict\'s (median of the paired ratio '
              'at least %.2f in every rw): %s.' % (ts['at_least'], _met(ts['met'])), '']
    b = doc.get('read_4k')
    lines += ['## 4k read, per mapping (function profiler, numjobs 1)', '']
    if b:
        c = b['control']
        lines += ['| us per mapping | pool | strict (control) |', '|---|---|---|',
                  '| map (`io_buffer_pool_map_*`, per call) | %.3f | %.3f |' % (b['map'], c['map']),
                  '| unmap (`io_buffer_pool_unmap_*`, per call) | %.3f | %.3f |'
                  % (b['unmap'], c['unmap']),
                  '| copies (`iobp_copy_phys`, %.2f per mapping) | %.3f | - |'
                  % (b['copies_per_mapping'], b['copies']),
                  '| zero (`iobp_zero*`) | %.3f | - |' % b['zero'], '',
                  '%d mappings profiled; the policy\'s decision for 4k reads: %s. The entry '
                  'points\' times include the copies and the zeroing inside them, and the '
                  'profiler\'s cost of those nested calls; strict\'s entry points return at '
                  'once: what they still take is the profiler\'s own share.'
                  % (b['map_calls'], b['decision'] or 'unknown')]
    else:
        lines.append('No breakdown (the boot failed).')
    tc = t['map_unmap_at_most_1.2x_copies']
    lines += ['', 'Target: map + unmap per call at most %.1f x the copies: %s%s.'
              % (tc['at_most'], _met(tc['met']),
                 ' (%.3f us against %.3f us, %.2f x)' % (tc['map_unmap_us'], b['copies'],
                                                         tc['ratio_to_copies'])
                 if b and tc.get('ratio_to_copies') else ''), '']
    lines += ['## Lock contention, pool, read 4k, numjobs 4', '',
              'The lockstat kernel (the bench kernel with CONFIG_LOCK_STAT): /proc/lock_stat '
              'cleared right before the fio run; contentions of the classes %s (exact names) '
              'over the pool\'s bounced counter in the same run.'
              % ', '.join('`%s`' % n for n in LOCK_CLASSES), '',
              '| boot | iommu.bounce_cpu_slots | bounces | contentions (%s) | per 1000 bounces |'
              % ', '.join(LOCK_CLASSES), '|---|---|---|---|---|']
    for k in ('before', 'after'):
        r = doc['lock'].get(k)
        if not r:
            lines.append('| %s | - | - | - | (the boot failed) |' % k)
            continue
        lines.append('| %s | %d | %d | %d (%s) | %.2f |' % (
            k, r['bounce_cpu_slots'], r['bounces'], r['contentions'],
            ', '.join('%d' % r['classes'][n]['contentions'] if n in r['classes'] else '-'
                      for n in LOCK_CLASSES), r['per_1000_bounces']))
    lb, la = doc['lock'].get('before'), doc['lock'].get('after')
    if lb and la:
        lines += ['', 'With the per-CPU caches: %.2f contentions per 1000 bounces against %.2f '
                  'without.' % (la['per_1000_bounces'], lb['per_1000_bounces'])]
    if doc.get('failed'):
        lines += ['', 'FAILED: ' + '; '.join(doc['failed'])]
    lines += ['', 'Produced by `make scale` (harness/scale.py); guest logs under `build/logs/` '
              '(scale*, scale-lock-*).', '']
    return '\n'.join(lines)
