#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-only
"""make check: every test of the project, one verdict each, "N passed, N failed" last.

Stages: the harness's own unit tests; checkpatch --strict on every patch of the series;
the test kernel build (KASAN, lockdep, kmemleak, DMA-API debug, KUnit); every patch built
on its own with W=1 and run through sparse and kernel-doc, the series' new C files through
coccicheck at its last patch, and each of these checkers fed a patch that breaks its
rule; one boot of the test kernel with a disk image that runs the KUnit suites and fio
--verify=crc32c writes and reads over every block size, followed by DMA-API and kmemleak
leak checks and a scan of the console for kernel reports; a second boot of it, the
reliability run (harness/hib/reliability.py): injected faults, memory pressure, unbind,
hot-unplug, concurrency and bad knob values, which writes results/reliability.json and
.md.  The harness's edu_dma module drives QEMU's edu device through the DMA API with
syncs, as a network driver does, in the verify boot and in a boot of the lean bench
kernel, which has no DMA-API debug (that option forces every dma_sync_*() call
through and would hide a sync that never reaches the pool).
Two more boots of the lean kernel: a 128 KiB class at the top of the device's address
space, and the cost policy on map+unmap of 1 and 32 pages (policy_boot), whose
decisions must follow the costs where the right path is not in doubt.
--soak (make soak) runs only the reliability boot, with every fio run eight times longer,
into results/reliability-soak.*.
"""
import argparse
import os
import subprocess
import sys
import time
import unittest

HARNESS = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HARNESS)
sys.path.insert(0, HARNESS)
from hib import guest, kconfig, ktap, mapbench, qemu, reliability, untrusted  # noqa: E402


class Tally:
    def __init__(self):
        self.passed = 0
        self.failed = []

    def record(self, name, ok, why=''):
        if ok:
            self.passed += 1
            print('PASS %s' % name, flush=True)
        else:
            self.failed.append(name)
            print('FAIL %s%s' % (name, ': ' + why if why else ''), flush=True)
        return ok


class _Result(unittest.TextTestResult):
    def __init__(self, tally, *a, **kw):
        super().__init__(*a, **kw)
        self.tally = tally

    def addSuccess(self, test):
        super().addSuccess(test)
        self.tally.record('unit: ' + test.id(), True)

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self.tally.record('unit: ' + test.id(), False, self._exc_info_to_string(err, test))

    def addError(self, test, err):
        super().addError(test, err)
        self.tally.record('unit: ' + test.id(), False, self._exc_info_to_string(err, test))


def unit_tests(t):
    suite = unittest.defaultTestLoader.discover(os.path.join(HARNESS, 'tests'),
                                                top_level_dir=HARNESS)
    n = suite.countTestCases()
    with open(os.devnull, 'w') as null:
        runner = unittest.TextTestRunner(stream=null, verbosity=0,
                                         resultclass=lambda *a, **kw: _Result(t, *a, **kw))
        runner.run(suite)
    t.record('unit: the harness has unit tests', n > 0, 'none found')


def run(cmd, cwd=TOP, env=None):
    """cmd's exit status and its output, stderr with stdout."""
    # Debian's python3 first: checkpatch's spdxcheck.py needs python3-ply and -git
    e = dict(os.environ, PATH='/usr/bin:/bin:' + os.environ.get('PATH', ''), **(env or {}))
    p = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, env=e)
    return p.returncode, p.stdout


def step(t, name, cmd, cwd=TOP, env=None):
    print('... %s' % name, flush=True)
    t0 = time.monotonic()
    rc, out = run(cmd, cwd, env)
    tail = '\n'.join(out.strip().splitlines()[-15:])
    ok = t.record('%s (%.0f s)' % (name, time.monotonic() - t0), rc == 0,
                  'exit %d:\n%s' % (rc, tail))
    return ok


def series():
    path = os.path.join(TOP, 'patches', 'series')
    with open(path) as f:
        return [l.strip() for l in f if l.strip() and not l.startswith('#')]


def checkpatch(t):
    for p in series():
        step(t, 'checkpatch --strict %s' % p,
             ['scripts/checkpatch.pl', '--strict', '-q', os.path.join(TOP, 'patches', p)],
             cwd=os.path.join(TOP, 'build', 'linux'))


# One patch per checker that breaks its rule, appended to the end of the pool's file on
# top of the series: (checker, what it breaks, code, a phrase of the checker's report).
# Each checker must fail on its patch, or its pass on the series shows nothing.
BROKEN = [
    ('checkpatch', 'trailing whitespace',
     'int iobp_broken(void);\nint iobp_broken(void)\n{\n\treturn 0; \n}\n',
     'trailing whitespace'),
    ('W=1', 'an unused constant, which only W=1 reports',
     'static const int iobp_broken = 1;\n', "defined but not used [-Wunused-const-variable"),
    ('sparse', 'a plain integer as a NULL pointer',
     'int iobp_broken(void);\nint iobp_broken(void)\n{\n\tchar *p = 0;\n\n\treturn !p;\n}\n',
     'Using plain integer as NULL pointer'),
    ('coccicheck', 'a NULL check before kfree()',
     'void iobp_broken(void *p);\nvoid iobp_broken(void *p)\n{\n\tif (p)\n\t\tkfree(p);\n}\n',
     'NULL check before some freeing functions is not needed'),
    ('kernel-doc', 'a parameter documented under another name',
     '/**\n * iobp_broken() - add one\n * @q: the number\n *\n * Return: @p plus one\n */\n'
     'int iobp_broken(int p);\nint iobp_broken(int p)\n{\n\treturn p + 1;\n}\n',
     "Excess function parameter 'q'"),
]
BROKEN_FILE = 'drivers/iommu/io-buffer-pool.c'


def broken_patches(t):
    """Each checker of the series (checkpatch, W=1, sparse, coccicheck, kernel-doc)
    rejects a patch made to break its rule: a commit on top of the series, in a worktree
    of its own, that the real steps (kernel.sh patchwise, kernel.sh checkers,
    checkpatch.pl) are given as a one-patch range."""
    src = os.path.join(TOP, 'build', 'linux')
    wt = os.path.join(TOP, 'build', 'broken')
    git = ['git', '-C', src, '-c', 'user.name=hib', '-c', 'user.email=hib@localhost']
    run(git + ['worktree', 'prune'])
    if not os.path.exists(os.path.join(wt, '.git')):
        run(git + ['worktree', 'add', '-q', '--detach', wt, 'HEAD'])
    gwt = ['git', '-C', wt, '-c', 'user.name=hib', '-c', 'user.email=hib@localhost']
    for checker, what, code, phrase in BROKEN:
        name = '%s rejects a broken patch (%s)' % (checker, what)
        print('... %s' % name, flush=True)
        t0 = time.monotonic()
        rc, out = run(gwt + ['checkout', '-q', '-f', '--detach', run(git + ['rev-parse', 'HEAD'])[1].strip()])
        if rc:
            t.record(name, False, 'no worktree at HEAD: %s' % out)
            continue
        with open(os.path.join(wt, BROKEN_FILE), 'a') as f:
            f.write('\n' + code)
        rc, out = run(gwt + ['commit', '-q', '-a', '-s', '-m', 'iommu: broken for the %s check' % checker,
                             '-m', 'It breaks the rule: %s.' % what])
        if rc:
            t.record(name, False, 'cannot commit: %s' % out)
            continue
        rev = run(gwt + ['rev-parse', 'HEAD'])[1].strip()
        if checker == 'checkpatch':
            patch = os.path.join(wt, 'broken.patch')
            with open(patch, 'w') as f:
                f.write(run(gwt + ['format-patch', '-1', '--stdout', rev])[1])
            rc, out = run(['scripts/checkpatch.pl', '--strict', '-q', patch], cwd=src)
            os.unlink(patch)
        elif checker == 'W=1':
            rc, out = run(['harness/kernel.sh', 'patchwise', '%s^..%s' % (rev, rev)])
        else:
            rc, out = run(['harness/kernel.sh', 'checkers', '%s^..%s' % (rev, rev)],
                          env={'CHECKERS': checker})
        t.record('%s (%.0f s)' % (name, time.monotonic() - t0), rc != 0 and phrase in out,
                 'exit %d, %s in its report: %s' % (rc, 'and "%s"' % phrase if phrase in out
                                                    else 'no "%s"' % phrase,
                                                    '\n'.join(out.strip().splitlines()[-8:])))
    run(gwt + ['checkout', '-q', '-f', '--detach', run(git + ['rev-parse', 'HEAD'])[1].strip()])


def initrd(flavour, acpi=False):
    """build/initramfs.cpio with the flavour's modules appended as a second segment;
    with acpi, build/acpi-untrusted.cpio (the SSDT) in front, where the kernel's ACPI
    table upgrade looks for tables."""
    path = os.path.join(TOP, 'build', 'initramfs-%s%s.cpio' % (flavour, '-acpi' if acpi else ''))
    parts = [os.path.join(TOP, 'build', 'acpi-untrusted.cpio')] if acpi else []
    parts += [os.path.join(TOP, 'build', 'initramfs.cpio'),
              os.path.join(TOP, 'build', 'obj-' + flavour, 'hib-modules.cpio')]
    return qemu.cat_initrd(path, parts)


EDU_CHECKS = (('cpu', 'map once DMA_FROM_DEVICE, device writes, sync for the CPU, read'),
              ('dev', 'map DMA_TO_DEVICE, CPU writes, sync for the device, device reads'),
              ('ring', 'one mapping, 4 rounds of device write / sync for CPU / sync for device'),
              ('remask', 'a mapping that outlives a new dma_set_mask(), device writes, sync'))


def record_edu(t, prefix, out):
    """The edu_dma module's checks of one boot: every check reads what the device
    wrote, with the pool on (and the checks bounced) and off."""
    if not out.edu:
        t.record('%s: edu DMA sync checks ran' % prefix, False, 'no "HIB edu" line')
        return
    w = out.edu_warmup
    t.record('%s: edu pool warm-up run (the class set up meanwhile): every check reads '
             'what the device wrote' % prefix,
             w is not None and all(w.get(k) == 'ok' for k, _ in EDU_CHECKS), str(w))
    for mode in ('pool', 'strict'):
        r = out.edu.get(mode)
        if r is None:
            t.record('%s: edu checks, %s' % (prefix, mode), False, 'no result')
            continue
        for key, what in EDU_CHECKS:
            t.record('%s: edu %s, %s: %s' % (prefix, mode, key, what), r.get(key) == 'ok',
                     '%s=%s (STALE: the driver read its own buffer, not what the device '
                     'wrote)' % (key, r.get(key)))
        b = out.stats.get('edu %s before' % mode, {})
        a = out.stats.get('edu %s after' % mode, {})
        bounced = a.get('bounced', 0) - b.get('bounced', 0)
        setup = a.get('fallback_class_setup', 0) - b.get('fallback_class_setup', 0)
        maps = int(r.get('maps', '0'))
        if mode == 'pool':
            # the counters are global, but nothing else maps while the checks run; a
            # warm-up run before them had the domain's 4 KiB class set up, so none
            # of these may wait for it (fallback_class_setup)
            t.record('%s: edu pool: the checks went through the pool (%d of the module\'s %d '
                     'mappings bounced, %d while the class was set up)'
                     % (prefix, bounced, maps, setup),
                     maps > 0 and setup == 0 and bounced >= maps,
                     'stats %s -> %s' % (b, a))
            # a coherent device, whose syncs the DMA API would skip but for the pool: the
            # warm-up run's first bounce cleared dma_skip_sync, and it stays 0 across
            # the counted checks, dma_set_mask() included: the configuration where a
            # pool that the sync wrappers do not reach fails
            t.record('%s: edu pool: coherent device, syncs not skipped (dma_skip_sync %s '
                     'before the checks, %s after)' % (prefix, r.get('skip_sync_before'),
                                                      r.get('skip_sync_after')),
                     r.get('coherent') == '1' and r.get('skip_sync_before') == '0'
                     and r.get('skip_sync_after') == '0', str(r))
        else:
            t.record('%s: edu strict: nothing bounced with the pool off (%d)' % (prefix, bounced),
                     bounced == 0, 'stats %s -> %s' % (b, a))


# The debug (KASAN) kernel boots with 4-level page tables.  Under QEMU's -cpu max the
# guest has LA57, and generic KASAN on x86 with 5-level paging can report a false
# "wild-memory-access" in do_raw_spin_lock() from the first interrupts of the boot,
# before anything of ours runs (make check saw it once, on 2026-12-02; upstream:
# "kasan: Fix false-positive wild-memory-access on x86 under 5-level paging", June 2026).
# The lean kernels the benchmarks use keep the CPU's paging as it is.
DEBUG_APPEND = 'no5lvl'


def boot_append(flavour, append):
    """The kernel command line for a boot of flavour ('test' is the debug kernel)."""
    return '%s %s' % (DEBUG_APPEND, append) if flavour == 'test' else append


def booted(t, label, name, kernel, flavour, append, timeout, **kw):
    """Boot kernel with initrd(flavour) (with the SSDT for untrusted=True); record that
    the guest ran to its end with a clean console and no init error, under label.
    Returns the run, or None when it could not boot at all (recorded as a failure)."""
    try:
        run = qemu.boot(name, kernel, initrd(flavour, acpi=kw.get('untrusted', False)),
                        boot_append(flavour, append), os.path.join(TOP, 'build', 'logs'),
                        timeout, **kw)
    except (qemu.RunFailed, guest.ParseError) as e:
        t.record('%s: boot' % label, False, str(e))
        return None
    out = run.output
    t.record('%s: guest completes and powers off (%.0f s)' % (label, run.elapsed),
             out.ended and not run.timed_out, '; '.join(run.problems()) or 'no "HIB end"')
    t.record('%s: console has no kernel report (WARNING/BUG/KASAN/lockdep/DMA-API)' % label,
             not run.reports, '; '.join(p for p in run.problems() if 'kernel report' in p))
    for e in out.errors:
        t.record('%s: init error' % label, False, e)
    return run


def edu_boot(t, a):
    """The lean bench kernel (no DMA-API debug), scenario "edu": the sync checks as
    users run them."""
    append = 'iommu.strict=1 hib.scenario=edu ' + os.environ.get('HIB_EXTRA', '')
    print('... booting the lean bench kernel (edu DMA sync checks, no DMA-API debug)', flush=True)
    run = booted(t, 'lean kernel', 'check-edu', a.bench_kernel, 'bench', append, a.timeout,
                 edu=True)
    if run is None:
        return
    out = run.output
    record_edu(t, 'lean kernel', out)


TOP_SLOTS = 2
TOP_CLASS = 131072


def top_range_ok(ranges, tag):
    """(ok, end): the guest's ranges (guest.Output.ranges) at tag hold one TOP_CLASS
    class, in the top 4 GiB, whose slots end (exclusive) below 2^64; end 0: none."""
    found = [base for (tg, _), rs in ranges.items() if tg == tag
             for size, base, slots in rs if size == TOP_CLASS and slots == TOP_SLOTS]
    if len(found) != 1:
        return False, 0
    end = found[0] + TOP_SLOTS * TOP_CLASS
    return (1 << 64) - (4 << 30) <= found[0] and end < 1 << 64, end


def top_used(before, after):
    """(ok, bounced, full) of the top-of-space run's counters: it bounced, and both
    slots of the class served mappings, the topmost one too.  Both did if the class ran
    full (a mapping found both in flight), or if both hold a mapping of their own at the
    end (the cache hands out the slot put back last, so with one mapping in flight at a
    time only one slot would ever be used)."""
    bounced = after.get('bounced', 0) - before.get('bounced', 0)
    full = after.get('fallback_class_full', 0) - before.get('fallback_class_full', 0)
    both = full > 0 or after.get('slots_mapped', 0) >= TOP_SLOTS
    return bounced > 0 and both, bounced, full


def top_boot(t, a):
    """The lean kernel, one class of 128 KiB with 2 slots, fio --verify at 128 KiB, 16
    in flight: both slots are in use at once, the last one of the range too.  Under
    virtio-iommu the device's space reaches 2^64 and the class lies at its top; a slot
    that ended at 2^64 (address plus length wrapping to 0) made QEMU's NVMe fail its
    SGL with Data SGL Length Invalid, an I/O error that make bench once met."""
    img = os.path.join(TOP, 'build', 'top.img')
    with open(img, 'wb') as f:
        f.truncate(64 << 20)
    append = ('iommu.strict=1 iommu.bounce_classes=%d iommu.bounce_slots=%d '
              'hib.scenario=verify hib.modes=pool-all hib.bs=%d hib.mib=16 hib.iodepth=16'
              % (TOP_CLASS // 4096, TOP_SLOTS, TOP_CLASS))
    print('... booting the lean bench kernel (the top of the device address space)',
          flush=True)
    run = booted(t, 'top of the space', 'check-top', a.bench_kernel, 'bench', append,
                 a.timeout, disk=img)
    if run is None:
        return
    out = run.output
    got = {(m, bs): (rc, fio) for m, bs, rc, fio in out.verify}
    rc, fio = got.get(('pool-all', str(TOP_CLASS)), (None, None))
    t.record('top of the space: fio verify at 128 KiB through 2 slots, no I/O error '
             '(read back and checked %d KiB)' % (fio.read_kib if fio else 0),
             rc == 0 and fio is not None and fio.error == 0 and fio.write_kib > 0
             and fio.read_kib >= fio.write_kib,
             out.verify_errors.get(('pool-all', str(TOP_CLASS)), 'rc=%s' % rc))
    before, after = out.stats.get('pool-all before', {}), out.stats.get('pool-all after', {})
    ok, bounced, full = top_used(before, after)
    t.record('top of the space: the run bounced (%d mappings) through both slots, the '
             'topmost too (%d fallbacks with both in flight, %d slots mapped after)'
             % (bounced, full, after.get('slots_mapped', 0)),
             ok, 'stats before %s, after %s' % (before, after))
    ok, end = top_range_ok(out.ranges, 'pool-all after')
    pool_debugfs(t, 'top of the space (bench kernel)', out, ['pool-all'])
    t.record('top of the space: the class lies in the top 4 GiB and ends below 2^64 '
             '(%s)' % ('ends at 0x%x' % end if end else 'no range'), ok,
             'ranges %s' % out.ranges)


# The lean policy boot: sizes and run length (see policy_boot)
POLICY_PAGES = (1, 32)
POLICY_REPS = 6
POLICY_ARGS = ('hib.reps=%d hib.calls=2000 hib.turns=4 hib.modes=strict,pool-auto '
               'hib.policy0=1' % POLICY_REPS)


def policy_boot(t, a):
    """The lean kernel (no KUnit, no debug option), the cost policy as users run it:
    the map+unmap microbenchmark (scenario "mapbench", strict against pool-auto through
    the edu device, strict domain, iommu.bounce_threshold=auto, the default)
    at 1 and 32 pages, where the right path is not in doubt.  The policy must bounce
    the one and map the other, in both directions, with its own estimates agreeing,
    the other path explored after the warm-up and no flapping, at a time per pair
    near the right path's
    (hib/mapbench.py policy_verdicts)."""
    append = ('iommu.strict=1 hib.scenario=mapbench %s hib.pages=%s'
              % (POLICY_ARGS, ','.join(map(str, POLICY_PAGES))))
    print('... booting the lean bench kernel (the cost policy: map+unmap, 1 and 32 pages)',
          flush=True)
    run = booted(t, 'lean policy', 'check-policy', a.bench_kernel, 'bench', append,
                 a.timeout, edu=True, pin=True)
    if run is None:
        return
    out = run.output
    rows = mapbench.rows(out.mapbench, out.policy)
    for name, ok, why in mapbench.policy_verdicts(rows, out.policy, min_pairs=POLICY_REPS):
        t.record(name, ok, why or 'ok')


def kernel_slots(kernel):
    """CONFIG_IOMMU_IO_BUFFER_SLOTS of the kernel image's build (the .config beside
    arch/x86/boot/bzImage in its O= directory), an int, or None if it cannot be read."""
    try:
        with open(os.path.join(os.path.dirname(os.path.abspath(kernel)),
                               '..', '..', '..', '.config')) as f:
            v = kconfig.parse(f.read()).get('CONFIG_IOMMU_IO_BUFFER_SLOTS')
    except OSError:
        return None
    try:
        return int(v, 0) if v is not None else None
    except ValueError:
        return None


def classes_sized(ranges, boot, built):
    """(ok, classes, bad) of the guest's ranges (guest.Output.ranges): the boot's
    iommu.bounce_slots (boot, as the guest read it; these boots set none) is the kernel's
    CONFIG_IOMMU_IO_BUFFER_SLOTS (built), every class the devices' pools set up has that
    many slots, and there is at least one.  The KUnit suite runs at boot beside them with
    pools of 1 to 16 slots a class, its own."""
    got = [(tag, dev, size, slots) for (tag, dev), rs in sorted(ranges.items())
           for size, _, slots in rs]
    try:
        want = int(boot)
    except (TypeError, ValueError):
        return False, len(got), []
    bad = [g for g in got if g[3] != want]
    return want == built and bool(got) and not bad, len(got), bad


def record_classes_sized(t, label, out, kernel):
    boot, built = out.knob_boot.get('bounce_slots'), kernel_slots(kernel)
    ok, n, bad = classes_sized(out.ranges, boot, built)
    return t.record('%s: every class of the devices\' pools has iommu.bounce_slots=%s slots, '
                    'the kernel\'s CONFIG_IOMMU_IO_BUFFER_SLOTS=%s, whatever the KUnit suite '
                    'beside them set (%d classes seen)' % (label, boot, built, n), ok,
                    'boot iommu.bounce_slots=%s, CONFIG_IOMMU_IO_BUFFER_SLOTS=%s; classes of '
                    'other sizes: %s' % (boot, built, bad or 'none seen'))


def pool_debugfs(t, label, out, modes):
    """The NVMe domain's own debugfs directory (under iommu/ in the test kernel, which
    has CONFIG_IOMMU_DEBUGFS; at the top in the bench kernel, as users build it)
    counts what the summed files count while only that domain does I/O."""
    for mode in modes:
        pb, pa = out.stats.get('%s before pool' % mode), out.stats.get('%s after pool' % mode)
        gb, ga = out.stats.get('%s before' % mode, {}), out.stats.get('%s after' % mode, {})
        if pb is None or pa is None:
            t.record('%s, debugfs: the NVMe pool has its own directory (%s)' % (label, mode),
                     False, 'no "%s before/after pool" counters: %s' % (mode, out.errors[-3:]))
            continue
        d = {k: (pa.get(k, 0) - pb.get(k, 0), ga.get(k, 0) - gb.get(k, 0))
             for k in ('bounced', 'slots_filled', 'policy_mapped')}
        t.record('%s, debugfs: the NVMe pool\'s own stats match the summed ones in mode %s '
                 '(bounced %d, slots filled %d)'
                 % (label, mode, d['bounced'][0], d['slots_filled'][0]),
                 all(x == y for x, y in d.values()) and
                 (not mode.startswith('pool') or d['bounced'][0] > 0),
                 'pool, summed: %s' % d)


def verify_boot(t, a):
    img = os.path.join(TOP, 'build', 'disk.img')
    with open(img, 'wb') as f:
        f.truncate(a.disk_mib << 20)
    # Every size through the pool: the threshold at the largest default class.
    append = ('iommu.strict=1 iommu.bounce_threshold=131072 hib.scenario=verify '
              'hib.modes=%s hib.mib=%d' % (a.modes, a.mib))
    print('... booting the test kernel (fio verify, KUnit); console in build/logs/', flush=True)
    run = booted(t, 'debug kernel', 'check-verify', a.kernel, 'test', append, a.timeout, disk=img,
                 edu=True)
    if run is None:
        return
    out = run.output
    want = ['512', '4096', '16384', '65536', '131072', 'mix']
    got = {(mode, bs): (rc, fio) for mode, bs, rc, fio in out.verify}
    for mode in a.modes.split(','):
        for bs in want:
            name = 'fio verify %s bs=%s' % (mode, bs)
            if (mode, bs) not in got:
                t.record(name, False, 'no result (guest stopped early?)')
                continue
            rc, fio = got[(mode, bs)]
            ok = rc == 0 and fio is not None and fio.error == 0 and fio.write_kib > 0 \
                and fio.read_kib >= fio.write_kib
            why = out.verify_errors.get((mode, bs), 'rc=%d' % rc)
            t.record('%s (wrote %d KiB, read back and checked %d KiB)'
                     % (name, fio.write_kib if fio else 0, fio.read_kib if fio else 0), ok, why)
    if 'pool' in a.modes.split(','):
        before, after = out.stats.get('pool before', {}), out.stats.get('pool after', {})
        bounced = after.get('bounced', 0) - before.get('bounced', 0)
        t.record('pool: the verify run went through the pool (%d mappings bounced)' % bounced,
                 bounced > 0, 'stats before %s, after %s' % (before, after))
    pool_debugfs(t, 'debug kernel', out, a.modes.split(','))
    record_classes_sized(t, 'debug kernel', out, a.kernel)
    t.record('DMA-API debug: no errors after unbinding the NVMe driver (%s)'
             % out.dma_api_errors, out.dma_api_errors == 0,
             'error_count %s' % out.dma_api_errors)
    t.record('kmemleak: no unreferenced objects (%s)' % out.kmemleak, out.kmemleak == 0,
             'count %s; see /sys/kernel/debug/kmemleak in the guest' % out.kmemleak)
    record_edu(t, 'debug kernel', out)
    cases, problems = ktap.parse(run.console)
    for c in cases:
        t.record('kunit: %s.%s' % (c.suite, c.name), c.status != 'fail', c.status)
    for p in problems:
        t.record('kunit: suites complete', False, p)
    if cases:
        print('... %d KUnit cases parsed from %s' % (len(cases), run.console_log))


def untrusted_boot(t, a):
    """The debug kernel, the NVMe device made untrusted by an SSDT (guest scenario
    "untrusted"): fio verify over sizes and buffer offsets with the pool on and off,
    the counters saying who bounced (harness/hib/untrusted.py)."""
    img = os.path.join(TOP, 'build', 'untrusted.img')
    with open(img, 'wb') as f:
        f.truncate(untrusted.disk_mib() << 20)
    print('... booting the test kernel (an untrusted NVMe device, fio verify through the '
          'pool and swiotlb)', flush=True)
    run = booted(t, 'untrusted', 'check-untrusted', a.kernel, 'test', untrusted.guest_args(),
                 a.timeout, disk=img, untrusted=True)
    if run is None:
        return
    out = run.output
    for name, ok, why in untrusted.verdicts(out, run.console):
        t.record(name, ok, why)
    record_classes_sized(t, 'untrusted', out, a.kernel)
    t.record('untrusted: DMA-API debug: no errors after unbinding the NVMe driver (%s)'
             % out.dma_api_errors, out.dma_api_errors == 0,
             'error_count %s' % out.dma_api_errors)
    t.record('untrusted: kmemleak: no unreferenced objects (%s)' % out.kmemleak,
             out.kmemleak == 0, 'count %s' % out.kmemleak)


def reliability_boot(t, a):
    """The pool under injected faults, memory pressure, unbind, hot-unplug, concurrency
    and bad knob values (guest scenario "reliability"); writes results/reliability.*"""
    img = os.path.join(TOP, 'build', 'reliability.img')
    with open(img, 'wb') as f:
        f.truncate(a.disk_mib << 20)
    append = ('iommu.strict=1 hib.scenario=reliability hib.scale=%d hib.rdisk=%d %s'
              % (a.scale, a.disk_mib - 32, reliability.boot_append()))
    name = 'reliability-soak' if a.soak else 'reliability'
    print('... booting the test kernel (%s: faults, memory pressure, unbind, hot-plug, '
          'bad input); console in build/logs/' % name, flush=True)
    run = booted(t, name, 'check-' + name, a.kernel, 'test', append, a.timeout, disk=img,
                 hotplug=True)
    if run is None:
        return
    out = run.output
    rows = reliability.evaluate(out)
    for r in rows:
        t.record('%s: %s (%d faults, %d fallbacks, %d I/Os, %d bytes verified, %d corrupted, '
                 '%d leaks)' % (name, r['name'], r['faults_injected'], r['fallbacks'],
                                r['ios'], r['bytes_verified'], r['bytes_corrupted'],
                                r['leaks']),
                 r['passed'], '; '.join(r['failures']))
    cases, problems = ktap.parse(run.console)
    bad = [c for c in cases if c.status == 'fail'] + problems
    t.record('%s: KUnit suites pass in this boot too (%d cases)' % (name, len(cases)),
             bool(cases) and not bad, '; '.join(str(b) for b in bad) or 'no KUnit output')
    rows += reliability.kunit_rows(cases)
    clean = not run.reports and out.ended and not run.timed_out and not out.errors
    note = ('Console: %s.' % ('no kernel report' if clean else
                              'NOT CLEAN: ' + '; '.join(run.problems())))
    if a.soak:
        note += ' Soak run: every fio size times %d.' % a.scale
    outdir = os.path.join(TOP, 'results')
    prefix = 'reliability-soak' if a.soak else 'reliability'
    reliability.write(rows, reliability.kernel(out), outdir, note, prefix=prefix)
    print('... wrote results/%s.json and .md' % prefix)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--kernel', default=os.path.join(TOP, 'build/obj-test/arch/x86/boot/bzImage'))
    ap.add_argument('--bench-kernel',
                    default=os.path.join(TOP, 'build/obj-bench/arch/x86/boot/bzImage'))
    ap.add_argument('--mib', type=int, default=8, help='MiB written and verified per block size')
    ap.add_argument('--modes', default='strict,pool', help='modes of the verify run')
    ap.add_argument('--disk-mib', type=int, default=512)
    ap.add_argument('--timeout', type=int, default=1800)
    ap.add_argument('--unit-only', action='store_true', help='only the harness unit tests')
    ap.add_argument('--soak', action='store_true',
                    help='only the reliability boot, --scale times longer (make soak)')
    ap.add_argument('--scale', type=int, default=None,
                    help='fio size factor of the reliability run (1; 8 with --soak)')
    a = ap.parse_args()
    if a.scale is None:
        a.scale = 8 if a.soak else 1
    if a.soak:
        a.timeout = max(a.timeout, 3600)
        a.disk_mib = max(a.disk_mib, 1024)

    t = Tally()
    t0 = time.monotonic()
    unit_tests(t)
    if not a.unit_only:
        if step(t, 'prepare build/linux (git am patches/series)',
                ['harness/kernel.sh', 'prepare']):
            if not a.soak:
                checkpatch(t)
            built = step(t, 'build the test kernel', ['harness/kernel.sh', 'build', 'test'])
            if built and series() and not a.soak:
                step(t, 'every patch builds on its own, W=1 clean (drivers/iommu/, kernel/dma/, test and users\' configs)',
                     ['harness/kernel.sh', 'patchwise'])
                step(t, 'every patch: sparse (no new warnings) and kernel-doc clean; '
                     'the last: coccicheck clean on the series\' new C files',
                     ['harness/kernel.sh', 'checkers'])
                broken_patches(t)
            built = step(t, 'build the test modules for the test kernel (W=1)',
                         ['harness/kernel.sh', 'modules', 'test']) and built
            built = step(t, 'build the initramfs', ['make', '-s', 'build/initramfs.cpio']) and built
            if built and not a.soak:
                verify_boot(t, a)
                if step(t, 'build the SSDT that makes a root port external-facing',
                        ['make', '-s', 'build/acpi-untrusted.cpio']):
                    untrusted_boot(t, a)
            if built:
                reliability_boot(t, a)
            if not a.soak and step(t, 'build the lean bench kernel',
                                   ['harness/kernel.sh', 'build', 'bench']) \
                    and step(t, 'build the test modules for the bench kernel (W=1)',
                             ['harness/kernel.sh', 'modules', 'bench']) and built:
                edu_boot(t, a)
                top_boot(t, a)
                policy_boot(t, a)
    print('check: %.0f s' % (time.monotonic() - t0))
    if t.failed:
        print('failed:\n  ' + '\n  '.join(t.failed))
    print('%d passed, %d failed' % (t.passed, len(t.failed)))
    return 1 if t.failed else 0


if __name__ == '__main__':
    sys.exit(main())
