# SPDX-License-Identifier: GPL-2.0-only
"""Judge the guest's "reliability" scenario case by case (issue 4).

Every case becomes one row of results/reliability.json:
  name, faults_injected, fallbacks, ios, bytes_verified, bytes_corrupted, leaks, passed
plus "failures", the checks that did not hold (empty when passed), and "figures", the
counters the checks looked at.  The figures are deltas of the pool's debugfs counters
between the "HIB stat CASE TAG" snapshots the guest took; fallbacks are the fallbacks a
failed slot fill causes (fallback_no_memory + fallback_map_failed).  A slot is leaked
when it is mapped but neither in flight nor in the cache: with no I/O running the pool's
slots_mapped must equal slots_cached.
"""
import json
import os
import re

from . import guest

MIN_FAULTS = 2     # a fault case passes only when at least this many faults landed
FAULT_CASES = ['fault-%s-%d' % (k, p) for k in ('alloc', 'map') for p in (1, 10, 100)]
CASES = ['bad-input'] + FAULT_CASES + ['idle', 'shrinker', 'memory-hog', 'trace',
                                       'concurrent', 'cpu-offline', 'unbind', 'hotplug',
                                       'leak-check']

# What the boot command line of the reliability run gives each knob, in order: valid
# boundary values first, then values that must be refused (and leave the valid one).
BOOT_KNOBS = [
    ('bounce', 'maybe', False),
    ('bounce_threshold', '524288', True),
    ('bounce_threshold', '524289', False),
    ('bounce_threshold', 'garbage', False),
    ('bounce_slots', '4096', True),
    ('bounce_slots', '4097', False),
    ('bounce_slots', '0', False),
    ('bounce_slots', '99999999999', False),
    ('bounce_classes', '0', False),
    ('bounce_classes', '256', False),
    ('bounce_classes', '0x', False),
    ('bounce_idle_ms', '600000', True),
    ('bounce_idle_ms', '600001', False),
    ('bounce_idle_ms', '9', False),
    ('bounce_idle_ms', '-1', False),
]
# ... and what each knob must read after boot: the last accepted value, or the default.
BOOT_EXPECT = {'bounce': 'auto', 'bounce_threshold': '524288', 'bounce_slots': '4096',
               'bounce_classes': '63', 'bounce_idle_ms': '600000'}


def boot_append():
    """The kernel command line words that give the knobs of BOOT_KNOBS."""
    return ' '.join('iommu.%s=%s' % (k, v) for k, v, _ in BOOT_KNOBS)


class _Case:
    def __init__(self, o, name):
        self.o = o
        self.row = {'name': name, 'faults_injected': 0, 'fallbacks': 0, 'ios': 0,
                    'bytes_verified': 0, 'bytes_corrupted': 0, 'leaks': 0, 'passed': False,
                    'failures': [], 'figures': {}}
        if name not in o.cases and name != 'leak-check':
            self.fail('the guest never ran this case')

    def fail(self, why):
        self.row['failures'].append(why)

    def check(self, ok, why):
        if not ok:
            self.fail(why)
        return ok

    def stats(self, tag):
        s = self.o.stats.get(tag)
        if s is None:
            self.fail('no pool counters "%s"' % tag)
            return {}
        return s

    def delta(self, a, b, counter):
        """counter in snapshot b minus snapshot a (tags), recorded in figures."""
        sa, sb = self.stats(a), self.stats(b)
        if counter not in sa or counter not in sb:
            self.fail('no counter %s in "%s" or "%s"' % (counter, a, b))
            return 0
        d = sb[counter] - sa[counter]
        self.row['figures']['%s %s..%s' % (counter, a.split()[-1], b.split()[-1])] = d
        return d

    def value(self, tag, counter):
        v = self.stats(tag).get(counter)
        if v is None:
            self.fail('no counter %s in "%s"' % (counter, tag))
            return 0
        self.row['figures']['%s %s' % (counter, tag.split()[-1])] = v
        return v

    def no_leak(self, tag):
        """No slot mapped that is not cached once I/O stopped; counts into leaks.  The
        guest takes such a snapshot once an idle eviction under way has unmapped its
        victims (leak_stats, harness/guest/lib.sh), and says how many 0.1 s waits that
        took (settle_waits, recorded in figures when there)."""
        waits = self.o.stats.get(tag, {}).get('settle_waits')
        if waits is not None:
            self.row['figures']['settle_waits %s' % tag.split()[-1]] = waits
        mapped, cached = self.value(tag, 'slots_mapped'), self.value(tag, 'slots_cached')
        if mapped != cached:
            self.row['leaks'] += abs(mapped - cached)
            self.fail('"%s": %d slots mapped but %d cached' % (tag, mapped, cached))

    def fio(self, run, jobs=1):
        """A verified fio run: it must have written, read everything back, found no error."""
        r = self.o.rfio.get(run)
        if r is None:
            self.fail('no fio result for %s' % run)
            return
        bad, complaints = guest.corrupted_bytes(self.o.rfio_err.get(run, []))
        self.row['ios'] += r.ios
        self.row['bytes_verified'] += r.read_bytes
        self.row['bytes_corrupted'] += bad
        self.check(r.rc == 0 and r.error == 0, 'fio %s: exit %d, error %d: %s'
                   % (run, r.rc, r.error, '; '.join(self.o.rfio_err.get(run, []))[:300]))
        self.check(complaints == 0, 'fio %s: %d verify complaints (%d bytes)'
                   % (run, complaints, bad))
        self.check(r.write_bytes > 0 and r.read_bytes >= r.write_bytes,
                   'fio %s: wrote %d bytes, verified %d' % (run, r.write_bytes, r.read_bytes))
        self.check(r.jobs == jobs, 'fio %s: %d jobs, wanted %d' % (run, r.jobs, jobs))

    def served(self, run, since, jobs=1):
        """fio run `run` verified its data through the pool (bounced between snapshot
        `since` and "CASE after"), and "CASE after" shows no leaked slot."""
        self.fio(run, jobs)
        after = self.row['name'] + ' after'
        self.check(self.delta(since, after, 'bounced') > 0,
                   'nothing bounced since "%s"' % since)
        self.no_leak(after)

    def shrunk(self, busy, pressed):
        """Slots were cached at snapshot `busy` (idle time 600 s) and the shrinker, not
        the idle sweep, freed some by snapshot `pressed`; returns (cached, shrunk)."""
        cached = self.value(busy, 'slots_cached')
        self.check(cached > 0, 'no slot cached after the I/O (bounce_idle_ms=600000)')
        n = self.delta(busy, pressed, 'slots_shrunk')
        self.check(n > 0, 'no cached slot shrunk: %s' % self.o.hog)
        self.check(self.delta(busy, pressed, 'slots_evicted') == 0,
                   'slots evicted as idle: the shrinker did not do it')
        return cached, n

    def loaded(self, before, during):
        """The unverified load before a teardown went through the pool."""
        self.check(self.delta(before, during, 'bounced') > 0,
                   'the load before the teardown bounced nothing: the pool was not in use')

    def done(self):
        self.row['passed'] = not self.row['failures']
        return self.row


def _fault(o, name):
    """fault-KIND-PCT: every (100 / PCT)th slot fill fails (page allocation or IOMMU
    map) during a verified fio run, while drop_caches empties the cache 20 times a
    second so that fills go on all along.  At least MIN_FAULTS faults landed (a case
    that injected none did not test its subject), every failure falls back (fallback
    counters move by at least faults_injected; by more only if a real GFP_NOWAIT fill
    failed too), no byte is corrupted, at 100% nothing is bounced at all, and no slot is left mapped outside the cache."""
    c = _Case(o, name)
    pct = int(name.rsplit('-', 1)[1])
    b, a = name + ' before', name + ' after'
    c.fio(name)
    faults = c.delta(b, a, 'faults_injected')
    fb = c.delta(b, a, 'fallback_no_memory') + c.delta(b, a, 'fallback_map_failed')
    c.row['faults_injected'], c.row['fallbacks'] = faults, fb
    c.check(fb >= faults, '%d faults injected but %d fallbacks' % (faults, fb))
    c.check(faults >= MIN_FAULTS, 'only %d fault(s) injected at %d%%: the case did not '
            'exercise the fallback' % (faults, pct))
    filled, bounced = c.delta(b, a, 'slots_filled'), c.delta(b, a, 'bounced')
    if pct == 100:
        c.check(filled == 0 and bounced == 0,
                'every fill fails, yet %d slots filled, %d mappings bounced' % (filled, bounced))
    else:
        c.check(bounced > 0, 'nothing bounced: the pool was not in use')
    c.no_leak(a)
    return c.done()


def _idle(o):
    """idle: with bounce_idle_ms=100 the pool is back to zero mapped slots 2 s after
    the last I/O (set at run time, after boot left it at its 600000 maximum)."""
    c = _Case(o, 'idle')
    c.fio('idle')
    c.check(c.delta('idle before', 'idle busy', 'bounced') > 0, 'nothing bounced')
    c.check(c.value('idle after', 'slots_mapped') == 0,
            'slots still mapped 2 s after the I/O, with bounce_idle_ms=100')
    c.check(c.delta('idle before', 'idle after', 'slots_evicted') > 0, 'no slot evicted')
    c.no_leak('idle after')
    return c.done()


def _shrinker(o):
    """shrinker: slots cached after I/O (idle time 600 s) are all freed by
    drop_caches, which reaches the pool's shrinker, not by the idle sweep."""
    c = _Case(o, 'shrinker')
    c.fio('shrinker')
    cached, shrunk = c.shrunk('shrinker busy', 'shrinker after')
    c.check(shrunk >= cached, 'the shrinker freed %d slots of %d cached' % (shrunk, cached))
    c.check(c.value('shrinker after', 'slots_mapped') == 0,
            'slots still mapped after drop_caches')
    c.no_leak('shrinker after')
    return c.done()


def _memory_hog(o):
    """memory-hog: slots cached after I/O (idle time 600 s); a tmpfs fills memory until
    kswapd reclaims and reaches the shrinker, which frees cached slots (how many is
    reclaim's choice) before free memory gets near the min watermark; verified I/O goes
    through the pool afterwards."""
    c = _Case(o, 'memory-hog')
    c.fio('memory-hog')
    c.shrunk('memory-hog busy', 'memory-hog pressed')
    for k in ('hog_kb', 'free_kb', 'low_kb'):
        c.row['figures'][k] = o.hog.get(k)
    c.check(bool(o.hog), 'no hog figures')
    c.served('memory-hog-after', 'memory-hog pressed')
    return c.done()


# The fallback counters: each counted fallback fires one iobp_fallback event.
FALLBACKS = ['fallback_too_big', 'fallback_class_full', 'fallback_no_memory',
             'fallback_map_failed', 'fallback_dma_mask', 'fallback_sg_layout',
             'fallback_device_memory', 'fallback_class_setup', 'fallback_off']
# What one line of each event must look like (include/trace/events/io_buffer_pool.h).
TRACE_LINES = {
    'iobp_bounce_map': r'device=\S+ dma_addr=[0-9a-f]+ size=[1-9]\d* '
                       r'dir=(TO_DEVICE|FROM_DEVICE|BIDIRECTIONAL) (single|sg) '
                       r'for=(cost|protection)$',
    'iobp_fallback': r'pool=\S+ reason=fallback_[a-z_]+$',
    'iobp_slot_fill': r'pool=\S+ slot_size=[1-9]\d* iova=[0-9a-f]+ prot=0x[0-9a-f]+( remap)?$',
    'iobp_slot_release': r'pool=\S+ slot_size=[1-9]\d* nr=[1-9]\d* reason=(evicted|shrunk)$',
}


def _trace(o):
    """trace: with the pool's trace events on, verified I/O fills slots and bounces, a
    shrink frees slots, more I/O caches slots that then go idle and are evicted, and
    injected page allocation failures make fills fall back.
    Each event fired exactly as often as its counter moved (bounces, fills, fallbacks,
    and the released slots by reason), each at least once, and its lines carry the
    fields the event declares."""
    c = _Case(o, 'trace')
    if 'trace' not in o.cases:
        return c.done()
    c.fio('trace')
    c.fio('trace-evict')
    c.fio('trace-fault')
    ev = c.stats('trace events')
    a, b = 'trace before', 'trace after'
    # nothing counted while the events were being switched on or off
    for x, y in (('trace before', 'trace on'), ('trace end', 'trace after')):
        sx, sy = c.stats(x), c.stats(y)
        moved = sorted(k for k in ['bounced', 'slots_filled', 'slots_shrunk', 'slots_evicted']
                       + FALLBACKS if sx.get(k) != sy.get(k))
        c.check(not moved, 'trace: %s moved between "%s" and "%s" (the events were being '
                'switched): the counts cannot be compared' % (', '.join(moved), x, y))
    c.check(ev.get('entries_written') is not None and
            ev.get('entries_in_buffer') == ev.get('entries_written'),
            'trace: the ring buffer lost events (%s in it, %s written)'
            % (ev.get('entries_in_buffer'), ev.get('entries_written')))
    want = {
        'iobp_bounce_map': c.delta(a, b, 'bounced'),
        'iobp_slot_fill': c.delta(a, b, 'slots_filled'),
        'iobp_fallback': sum(c.delta(a, b, k) for k in FALLBACKS),
        'released_shrunk': c.delta(a, b, 'slots_shrunk'),
        'released_evicted': c.delta(a, b, 'slots_evicted'),
    }
    c.row['faults_injected'] = c.delta(a, b, 'faults_injected')
    c.row['fallbacks'] = want['iobp_fallback']
    for k, n in sorted(want.items()):
        got = ev.get(k)
        c.row['figures']['trace %s' % k] = got
        c.check(got == n, 'trace: %s %s, counters moved by %d' % (k, got, n))
        c.check(n > 0, 'trace: no %s to show (counters moved by 0)' % k)
    c.check(ev.get('iobp_slot_release', 0) > 0, 'trace: no iobp_slot_release event')
    for e, pat in sorted(TRACE_LINES.items()):
        line = o.trace_lines.get(e)
        c.check(line is not None and re.match(pat, line) is not None,
                'trace: %s line %r is not %s' % (e, line, pat))
    return c.done()


def _concurrent(o):
    """concurrent: four fio jobs of mixed sizes at once, each verifying its own range."""
    c = _Case(o, 'concurrent')
    c.served('concurrent', 'concurrent before', jobs=4)
    return c.done()


def _cpu_offline(o):
    """cpu-offline: after two verifying jobs, CPU 1 holds slots in its per-CPU caches;
    taking it offline moves them to the class lists (none freed, none lost: as many
    mapped and cached as before), and verified I/O goes through the pool on CPU 0."""
    c = _Case(o, 'cpu-offline')
    c.fio('cpu-offline-fill', jobs=2)
    held = c.value('cpu-offline before', 'cpu1_cached')
    c.check(held > 0, 'CPU 1 cached no slot before it went offline: nothing to show')
    c.check(c.value('cpu-offline down', 'cpu1_cached') == 0,
            'CPU 1 still holds cached slots once offline')
    for k in ('slots_mapped', 'slots_cached'):
        c.check(c.delta('cpu-offline before', 'cpu-offline down', k) == 0,
                '%s changed when CPU 1 went offline' % k)
    c.no_leak('cpu-offline before')
    c.no_leak('cpu-offline down')
    c.served('cpu-offline', 'cpu-offline down')
    return c.done()


def _unbind(o):
    """unbind: the NVMe driver is unbound under fio load through the pool and bound
    again; no slot is left in flight, and verified I/O goes through the pool again."""
    c = _Case(o, 'unbind')
    c.loaded('unbind before', 'unbind unbound')
    c.no_leak('unbind unbound')
    c.served('unbind', 'unbind unbound')
    return c.done()


def _hotplug(o):
    """hotplug: QMP device_del of the NVMe device under fio load through the pool, then
    device_add.
    The unplugged device's domain and pool go away, a new one comes with the device,
    and verified I/O goes through it."""
    c = _Case(o, 'hotplug')
    c.check(o.asks[:2] == ['unplug', 'plug'], 'monitor requests %s' % o.asks)
    c.loaded('hotplug before', 'hotplug unplugged')
    c.no_leak('hotplug unplugged')
    pools = c.value('hotplug before', 'pools')
    c.check(c.value('hotplug unplugged', 'pools') == pools - 1,
            'the unplugged device\'s domain kept its pool')
    c.check(c.value('hotplug after', 'pools') == pools, 'no pool after re-plug')
    c.check(o.hotplug_group is not None and o.hotplug_group[1] == 'DMA',
            'IOMMU group after re-plug: %s' % (o.hotplug_group,))
    c.served('hotplug', 'hotplug unplugged')
    return c.done()


def _bad_input(o):
    """bad-input: the boot command line gives every knob boundary and bad values
    (BOOT_KNOBS): the valid ones take, the bad ones are refused with a log line and
    leave the knob as it was; then run-time writes of garbage, out-of-range, overflow
    and boundary values, each refused without a change or taken exactly; then the
    pool still serves verified I/O."""
    c = _Case(o, 'bad-input')
    n = 0
    for name, want in BOOT_EXPECT.items():
        got = o.knob_boot.get(name)
        c.check(got == want, 'boot: iommu.%s reads %s, wanted %s' % (name, got, want))
        n += 1
    log = '\n'.join(o.knob_log)
    for name, value, ok in BOOT_KNOBS:
        said = ("`%s' invalid for parameter `iommu.%s'" % (value, name)) in log
        c.check(said != ok, 'boot: iommu.%s=%s %s' % (
            name, value, 'refused' if said else 'accepted without a message'))
        n += 1
    for k in o.knobs:
        if k.want == 'rej':
            c.check(k.rc != 0 and k.after == k.before,
                    'run time: %s=%r accepted (exit %d, %s -> %s)'
                    % (k.name, k.value, k.rc, k.before, k.after))
        else:
            c.check(k.rc == 0 and k.after == k.expect,
                    'run time: %s=%r gave exit %d, reads %s, wanted %s'
                    % (k.name, k.value, k.rc, k.after, k.expect))
        n += 1
    c.check(len(o.knobs) >= 20, 'only %d run-time knob writes reported' % len(o.knobs))
    c.row['figures']['knob values tried'] = n
    c.fio('after-bad-input')
    return c.done()


def _leak_check(o):
    """leak-check: after the driver is unbound at the end, DMA-API debug counts no
    error (no mapping outstanding), kmemleak finds no unreferenced object, and every
    mapped slot is a cached one."""
    c = _Case(o, 'leak-check')
    c.no_leak('final')
    for what, v in (('DMA-API debug errors', o.dma_api_errors),
                    ('kmemleak unreferenced objects', o.kmemleak)):
        c.row['figures'][what] = v
        if v is None:
            c.fail('no %s count' % what)
        elif v:
            c.row['leaks'] += v
            c.fail('%d %s' % (v, what))
    return c.done()


def evaluate(o):
    """The rows of every case from one guest.Output, in CASES order."""
    rows = [_bad_input(o)] + [_fault(o, n) for n in FAULT_CASES]
    rows += [_idle(o), _shrinker(o), _memory_hog(o), _trace(o), _concurrent(o),
             _cpu_offline(o), _unbind(o), _hotplug(o), _leak_check(o)]
    return rows


# KUnit cases (io-buffer-pool-test.c, run in the same boot) that belong to the report:
# what the NVMe device cannot show.
KUNIT = {
    'iobp_test_dma_mask': 'a 32-bit DMA mask never gets an IOVA above it (mock device)',
    'iobp_test_concurrent': 'kthreads map and unmap on one pool at once',
    'iobp_test_fault_injection': 'each injected fill failure falls back, nothing mapped',
    'iobp_test_shrink': 'the shrinker frees cached slots, never one in flight',
    'iobp_test_idle_knob': 'a lowered bounce_idle_ms applies to the queued sweep',
    'iobp_test_teardown': 'destroying a pool unmaps every slot, gives its IOVA back',
}


def kunit_rows(cases):
    """Rows for the KUNIT cases from ktap.parse() cases; a missing case fails."""
    rows = []
    got = {c.name: c.status for c in cases}
    for name, what in KUNIT.items():
        status = got.get(name, 'missing')
        rows.append({'name': 'kunit-' + name[len('iobp_test_'):], 'faults_injected': 0,
                     'fallbacks': 0, 'ios': 0, 'bytes_verified': 0, 'bytes_corrupted': 0,
                     'leaks': 0, 'passed': status == 'pass',
                     'failures': [] if status == 'pass' else ['KUnit %s: %s' % (name, status)],
                     'figures': {'checks': what}})
    return rows


def kernel(o):
    return o.begin[1] if o.begin and len(o.begin) > 1 else 'unknown'


def write(rows, kern, outdir, note='', prefix='reliability'):
    """outdir/PREFIX.json and PREFIX.md from the evaluated rows."""
    os.makedirs(outdir, exist_ok=True)
    doc = {'kernel': kern, 'cases': rows}
    if note:
        doc['note'] = note
    with open(os.path.join(outdir, prefix + '.json'), 'w') as f:
        json.dump(doc, f, indent=1)
        f.write('\n')
    lines = ['# Reliability of the io-buffer-pool', '',
             'Written by `make check` (harness/check.py, harness/hib/reliability.py) from one '
             'boot of the test kernel `%s` (KASAN, lockdep, kmemleak, DMA-API debug) under '
             'QEMU/TCG with virtio-iommu. %s' % (kern, note), '',
             '| case | passed | faults injected | fallbacks | I/Os | bytes verified '
             '| bytes corrupted | leaks | figures (counter deltas between snapshots) |',
             '|---|---|---:|---:|---:|---:|---:|---:|---|']
    for r in rows:
        figs = '; '.join('%s: %s' % kv for kv in r.get('figures', {}).items())
        lines.append('| %s | %s | %d | %d | %d | %d | %d | %d | %s |' % (
            r['name'], 'yes' if r['passed'] else '**no**', r['faults_injected'],
            r['fallbacks'], r['ios'], r['bytes_verified'], r['bytes_corrupted'], r['leaks'],
            figs.replace('|', '/')))
    lines += ['', 'What each case asserts: see the docstrings of harness/hib/reliability.py. '
              'Failed checks, if any:', '']
    bad = [(r['name'], w) for r in rows for w in r['failures']]
    lines += ['- %s: %s' % b for b in bad] or ['- none']
    with open(os.path.join(outdir, prefix + '.md'), 'w') as f:
        f.write('\n'.join(lines) + '\n')
