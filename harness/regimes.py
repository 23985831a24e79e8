#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-only
"""make regimes: the pool against the normal path under five IOMMU cost models.

One boot of the lean bench kernel per regime (see hib/regimes.py); writes
results/regimes.json and regimes.md.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hib import guest, qemu, regimes, report  # noqa: E402

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def append_for(name, a):
    jobs = regimes.REGIMES[name][3]
    modes = regimes.modes_of(name)[:2 if a.no_auto else 3]
    return ('quiet iommu.strict=1 hib.scenario=bench hib.reps=%d hib.runtime=%d hib.prof=%d '
            'hib.modes=%s hib.rw=read,write hib.bs=%s hib.jobs=%s hib.alt=1 hib.seg=%d '
            'hib.skip=%d %s'
            % (a.reps, a.runtime, a.prof, ','.join(modes), a.bs, jobs, a.seg, a.skip,
               a.extra)).strip()


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--kernel', default=os.path.join(TOP, 'build/obj-bench/arch/x86/boot/bzImage'))
    ap.add_argument('--initrd', default=os.path.join(TOP, 'build/initramfs.cpio'))
    ap.add_argument('--out', default=os.path.join(TOP, 'results'))
    ap.add_argument('--logs', default=os.path.join(TOP, 'build/logs'))
    ap.add_argument('--regimes', default=','.join(regimes.REGIMES))
    ap.add_argument('--bs', default='4k,16k,64k,128k')
    ap.add_argument('--reps', type=int, default=6)
    ap.add_argument('--runtime', type=int, default=2,
                    help='seconds per mode in every cell and repetition')
    ap.add_argument('--seg', type=int, default=50,
                    help='ms per turn: the two modes take turns within one fio run')
    ap.add_argument('--skip', type=int, default=15,
                    help='ms at the start of each turn not counted')
    ap.add_argument('--prof', type=int, default=1,
                    help='seconds of each profiled run (the cost model)')
    ap.add_argument('--pin-vcpus', type=int, default=1, choices=(0, 1),
                    help='1: pin vCPU thread n to host CPU n (harness/hib/qemu.py pin_vcpus)')
    ap.add_argument('--extra', default='', help='more kernel command line')
    ap.add_argument('--no-auto', action='store_true',
                    help='leave out pool-auto (the measured policy): strict and pool-all only')
    ap.add_argument('--from-log', action='store_true',
                    help='no guest: rebuild the report from the last runs\' result logs')
    a = ap.parse_args()
    names = a.regimes.split(',')
    for n in names:
        if n not in regimes.REGIMES:
            ap.error('unknown regime %r (known: %s)' % (n, ', '.join(regimes.REGIMES)))
    if a.reps < 1 or a.runtime < 1 or a.prof < 1:
        ap.error('--reps, --runtime and --prof must be at least 1')
    if a.seg < 1 or not 0 <= a.skip < a.seg:
        ap.error('--seg must be at least 1 and --skip from 0 to below --seg')

    doc = {'machine': report.machine("the regime's") +
           ' fio --direct=1 --ioengine=libaio --iodepth=64, buffers in huge pages, null-co '
           'NVMe backend.', 'reps': a.reps, 'runtime': a.runtime,
           'runs': [],
           'break_even': {}, 'break_even_bound': {}, 'cost_model': {}, 'boots': {}}
    nbs = len(a.bs.split(','))
    failed = False
    windows = []
    for name in names:
        iommu, _, _, jobs, _ = regimes.REGIMES[name]
        append = append_for(name, a)
        nmodes = 2 if a.no_auto else 3
        runs = nmodes * 2 * nbs * len(jobs.split(','))
        timeout = 240 + a.reps * runs * (a.runtime + 6) + nmodes * 2 * nbs * (a.prof + 6)
        tag = 'regime-' + name
        if a.from_log:
            run = qemu.Run(tag, os.path.join(a.logs, tag + '.console.log'),
                           os.path.join(a.logs, tag + '.results.log'), 0, False, 0)
        else:
            print('regimes: %s (%s IOMMU): %d fio runs x %d reps, %d s each; timeout %d s'
                  % (name, iommu, runs, a.reps, a.runtime, timeout), flush=True)
            run = qemu.boot(tag, a.kernel, a.initrd, append, a.logs, timeout, iommu=iommu,
                            pin=bool(a.pin_vcpus))
        probs = run.problems() + guest.mode_problems(
            run.output.modes, max(report.bs_bytes(b) for b in a.bs.split(',')))
        if not run.output.cells:
            probs.append('%s: the guest reported no fio cells' % run.results_log)
        if probs:
            for p in probs:
                print('regimes: %s FAILED: %s' % (name, p), file=sys.stderr)
            failed = True
            continue
        cells = report.aggregate([run.output])
        windows += run.output.alt_windows
        rows, be, bound, cost = regimes.regime_rows(name, cells, run.output.policy)
        doc['runs'] += rows
        doc.setdefault('policy_break_even', {})[name] = regimes.policy_break_even(rows, name)
        doc['break_even'][name] = be
        doc['break_even_bound'][name] = bound
        doc['cost_model'][name] = cost
        doc['boots'][name] = {'iommu': qemu.IOMMU_DEVICE[iommu], 'kernel': run.output.begin[1],
                              'pin_vcpus': bool(a.pin_vcpus),
                              'seconds': round(run.elapsed), 'cmdline': append}
        print('regimes: %s: break-even read %s (%s), write %s (%s)'
              % (name, be['read'], bound['read'], be['write'], bound['write']), flush=True)
    if not doc['runs']:
        return 1
    if any(r['mode'] == 'pool-auto' for r in doc['runs']):
        doc['auto'] = regimes.auto_summary(doc['runs'])
    doc['method'] = report.method(bool(windows), a.runtime, a.seg, a.skip, windows)
    doc['harness'] = report.harness_commit(TOP)
    doc['date'] = report.utc_now()
    if a.from_log:
        # the date: when the guests ran; boots: for the regimes read again
        keep = dict(doc['boots'])
        report.keep_run_fields(a.out, 'regimes', doc, ('date', 'boots'))
        doc['boots'] = {n: doc['boots'].get(n, b) for n, b in keep.items()}
    # the untrusted regime comes from make bench (harness/untrusted_bench.py): kept
    old = report.load_result(a.out, 'regimes')
    if old.get('untrusted'):
        doc['runs'] += [r for r in old.get('runs', []) if r.get('regime') == 'untrusted']
        doc['untrusted'] = old['untrusted']
    md = regimes.regimes_md(doc)
    report.write_result(a.out, 'regimes', doc, md)
    print(md)
    print('regimes: wrote %s/regimes.json and regimes.md%s'
          % (a.out, ' (without the regimes that FAILED)' if failed else ''))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
