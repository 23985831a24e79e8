#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-only
"""make scale (issue 14): the pool with 4 vCPUs; results/scale.json and scale.md.

One boot of the lean bench kernel with 4 vCPUs: strict and pool take turns within one
fio run as in the bench, read and write 4k with 1 and 4 jobs (the scaling 1 -> 4 of
each), then the bench's profiled runs with the pool's copies and zeroing profiled inside
its entry points (hib.pprof_copies=1: a 4k read's cost per mapping).  Two boots of the
lockstat kernel (the bench kernel with CONFIG_LOCK_STAT), 4 vCPUs, mode pool, read 4k
with 4 jobs, without the per-CPU slot caches (iommu.bounce_cpu_slots=0, "before") and
with their default ("after"): the pool's lock contentions per 1000 bounces.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hib import guest, kconfig, qemu, report, scale  # noqa: E402

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMP = 4
# Slots per class for SMP jobs at iodepth 64, all in flight at once (the Kconfig's rule:
# two NVMe queues at depth 64 need 128, the default): with fewer, the class runs full and
# what is measured is its fallbacks.
SLOTS = 64 * SMP
LOCK_BOOTS = (('before', 'iommu.bounce_cpu_slots=0'), ('after', ''))


def nr_cpus_problem(kernel):
    """Why the kernel cannot bring up SMP vCPUs, from the .config of its build; None."""
    cfg = os.path.join(os.path.dirname(kernel), '..', '..', '..', '.config')
    try:
        with open(cfg) as f:
            n = kconfig.parse(f.read()).get('CONFIG_NR_CPUS')
    except OSError:
        return None
    if n and n.isdigit() and int(n) < SMP:
        return ('%s was built with CONFIG_NR_CPUS=%s: a %d-vCPU guest would run on %s '
                '(harness/configs/bench.config asks for %d)' % (kernel, n, SMP, n, SMP))
    return None


def boot(a, name, kernel, append, timeout):
    """One boot with SMP vCPUs (or, with --from-log, the last one's logs): (its parsed
    guest output, its seconds, why it is not clean as messages, [] when it is)."""
    logs = [os.path.join(a.logs, name + x) for x in ('.console.log', '.results.log')]
    try:
        if a.from_log:
            run = qemu.Run(name, logs[0], logs[1], 0, False, 0)
        else:
            print('scale: %s: timeout %d s; logs in %s' % (name, timeout, a.logs), flush=True)
            run = qemu.boot(name, kernel, a.initrd, append, a.logs, timeout, smp=SMP,
                            pin=bool(a.pin_vcpus))
    except (qemu.RunFailed, guest.ParseError) as e:
        return guest.Output(), 0, ['%s: %s' % (logs[1], e)]
    p = run.problems() + guest.mode_problems(run.output.modes, 4096)
    if not run.output.cells:
        p.append('%s: the guest reported no fio cells' % run.results_log)
    return run.output, run.elapsed, p


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--kernel', default=os.path.join(TOP, 'build/obj-bench/arch/x86/boot/bzImage'))
    ap.add_argument('--lock-kernel',
                    default=os.path.join(TOP, 'build/obj-lockstat/arch/x86/boot/bzImage'))
    ap.add_argument('--initrd', default=os.path.join(TOP, 'build/initramfs.cpio'))
    ap.add_argument('--out', default=os.path.join(TOP, 'results'))
    ap.add_argument('--logs', default=os.path.join(TOP, 'build/logs'))
    ap.add_argument('--reps', type=int, default=6, help='repetitions of the throughput cells')
    ap.add_argument('--runtime', type=int, default=2,
                    help='seconds per mode in every throughput cell and repetition')
    ap.add_argument('--ramp', default='500ms', help='fio warm-up before each measured cell')
    ap.add_argument('--seg', type=int, default=50, help='ms per turn of strict and pool')
    ap.add_argument('--skip', type=int, default=15, help='ms at the start of a turn not counted')
    ap.add_argument('--prof', type=int, default=1, help='seconds of each profiled run')
    ap.add_argument('--lock-runtime', type=int, default=5,
                    help='seconds of the fio run in each lockstat boot')
    ap.add_argument('--lock-reps', type=int, default=1,
                    help='fio runs in each lockstat boot (their counts are summed)')
    ap.add_argument('--pin-vcpus', type=int, default=1, choices=(0, 1),
                    help='1: pin vCPU thread n to host CPU n modulo the host\'s CPUs '
                    '(hib/qemu.py pin_vcpus: with 4 vCPUs on 2 cores, two a core)')
    ap.add_argument('--extra', default='', help='more kernel command line, every boot')
    ap.add_argument('--from-log', action='store_true',
                    help='no guest: rebuild the report from the last runs\' result logs')
    a = ap.parse_args()
    if min(a.reps, a.runtime, a.prof, a.lock_runtime, a.lock_reps) < 1:
        ap.error('--reps, --runtime, --prof, --lock-runtime and --lock-reps: at least 1')
    if a.seg < 1 or not 0 <= a.skip < a.seg:
        ap.error('--seg must be at least 1 and --skip from 0 to below --seg')
    if not a.from_log:
        for k in (a.kernel, a.lock_kernel):
            p = nr_cpus_problem(k)
            if p:
                print('scale: FAILED: ' + p, file=sys.stderr)
                return 1

    probs, boots = [], {}
    scal = brk = None
    locks = {}

    # throughput 1 -> 4 jobs, and the 4k read's cost per mapping
    append = ('quiet iommu.strict=1 iommu.bounce_slots=%d hib.scenario=bench hib.reps=%d '
              'hib.runtime=%d hib.ramp=%s hib.prof=%d hib.pprof_copies=1 '
              'hib.modes=strict,pool hib.rw=read,write hib.bs=4k hib.jobs=1,%d hib.alt=1 '
              'hib.seg=%d hib.skip=%d %s'
              % (SLOTS, a.reps, a.runtime, a.ramp, a.prof, SMP, a.seg, a.skip,
                 a.extra)).strip()
    # as bench.py reckons, and 2 min more for booting 4 vCPUs under TCG
    timeout = 300 + a.reps * (8 * (a.runtime + 6) + 2 * 30) + 8 * (a.prof + 6)
    out, secs, p = boot(a, 'scale', a.kernel, append, timeout)
    if not p:
        try:
            cells = report.aggregate([out])
            scal = {rw: scale.scaling(cells, rw) for rw in ('read', 'write')}
        except guest.ParseError as e:
            p.append('scaling: %s' % e)
        try:
            brk = scale.read_breakdown(out)
        except guest.ParseError as e:
            p.append('4k read breakdown: %s' % e)
    probs += ['scale: %s' % m for m in p]
    how = report.method(True, a.runtime, a.seg, a.skip, out.alt_windows)
    boots['scale'] = {'kernel': out.begin[1] if out.begin and len(out.begin) > 1 else None,
                      'seconds': round(secs), 'cmdline': append, 'smp': SMP}

    # the pool's lock contentions, without and with the per-CPU slot caches
    for k, knob in LOCK_BOOTS:
        name = 'scale-lock-' + k
        append = ' '.join((
            'quiet iommu.strict=1 iommu.bounce_slots=%d %s hib.scenario=bench hib.reps=%d '
            'hib.runtime=%d hib.ramp=%s hib.prof=0 hib.modes=pool hib.rw=read hib.bs=4k '
            'hib.jobs=%d hib.alt=0 hib.lockstat=1 %s'
            % (SLOTS, knob, a.lock_reps, a.lock_runtime, a.ramp, SMP, a.extra)).split())
        out, secs, p = boot(a, name, a.lock_kernel, append,
                            420 + a.lock_reps * (a.lock_runtime + 30))
        if not p:
            try:
                locks[k] = scale.contention(out, k == 'before')
            except guest.ParseError as e:
                p.append(str(e))
        probs += ['%s: %s' % (name, m) for m in p]
        boots[name] = {'kernel': out.begin[1] if out.begin and len(out.begin) > 1 else None,
                       'seconds': round(secs), 'cmdline': append, 'smp': SMP}

    for m in probs:
        print('scale: FAILED: %s' % m, file=sys.stderr)
    if scal is None and brk is None and not locks:
        return 1
    doc = scale.scale_doc(scal, brk, {k: locks.get(k) for k, _ in LOCK_BOOTS})
    doc.update({
        'machine': report.machine('virtio', vcpus=SMP),
        'how': ('fio --direct=1 --ioengine=libaio --iodepth=64, 4k blocks, buffers in huge '
                'pages, null-co NVMe backend; job n on vCPU n; iommu.bounce_slots=%d in every '
                'boot (4 jobs x iodepth 64 in flight). Throughput: %d repetitions of '
                '%s, after a %s warm-up; scaling 1->4 is IOPS with 4 jobs over IOPS with 1 '
                'in the same repetition, pool / strict the ratio of the two modes\' scaling; '
                'median and 95 %% order-statistic interval (none below 6 pairs); the '
                'headline scaling_1_to_4 is that of reads. vCPU pinning: %s. The breakdown: '
                'the bench\'s profiled runs (numjobs 1, %d s) in the same boot, with '
                '`iobp_copy_phys*` and `iobp_zero*` profiled inside the pool\'s entry points '
                '(hib.pprof_copies=1). Lock contention: two boots of the lockstat kernel, '
                '%d fio run(s) of %d s each.'
                % (SLOTS, a.reps, how, a.ramp,
                   'vCPU thread n on host CPU n mod %d; on a host of fewer cores than vCPUs '
                   '4 jobs cannot reach 4 x 1 job\'s throughput, and the two modes\' '
                   'scaling against each other, not its size, is the figure'
                   % (os.cpu_count() or 1)
                   if a.pin_vcpus else 'off (the host scheduler places the vCPU threads)',
                   a.prof, a.lock_reps, a.lock_runtime)),
        'kernel': boots['scale']['kernel'], 'date': report.utc_now(),
        'harness': report.harness_commit(TOP), 'reps': a.reps, 'runtime_s': a.runtime,
        'pin_vcpus': bool(a.pin_vcpus), 'boots': boots, 'failed': probs})
    if a.from_log:
        report.keep_run_fields(a.out, 'scale', doc, ('date', 'boots'))
    md = scale.scale_md(doc)
    report.write_result(a.out, 'scale', doc, md)
    print(md)
    print('scale: wrote %s/scale.json and scale.md%s'
          % (a.out, ' (with parts that FAILED)' if probs else ''))
    return 1 if probs else 0


if __name__ == '__main__':
    sys.exit(main())
