#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-only
"""make mapbench: map+unmap alone, no I/O in flight, strict against the cost policy.

One boot of the lean bench kernel with QEMU's edu device behind virtio-iommu (strict
domain); the harness's edu_dma module times dma_map_single() + dma_unmap_single() of
1 to 32 pages in both directions (see hib/mapbench.py).  Writes results/mapbench.json
and mapbench.md.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hib import mapbench, qemu, report  # noqa: E402
import check  # noqa: E402  (initrd(): the initramfs with the bench kernel's modules)

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--kernel', default=os.path.join(TOP, 'build/obj-bench/arch/x86/boot/bzImage'))
    ap.add_argument('--out', default=os.path.join(TOP, 'results'))
    ap.add_argument('--logs', default=os.path.join(TOP, 'build/logs'))
    ap.add_argument('--reps', type=int, default=16,
                    help='paired repetitions (8 left the A/A medians 6 %% apart)')
    ap.add_argument('--calls', type=int, default=2000, help='map+unmap pairs per turn')
    ap.add_argument('--turns', type=int, default=10,
                    help='turns per mode in every repetition, the modes interleaved')
    ap.add_argument('--modes', default='strict,strict2,pool-none,pool-auto,pool-all',
                    help='strict first; pool-none is the pool on bouncing nothing')
    ap.add_argument('--pages', default='1,2,4,8,16,32', help='buffer sizes in pages')
    ap.add_argument('--pin-vcpus', type=int, default=1, choices=(0, 1))
    ap.add_argument('--from-log', action='store_true',
                    help="no guest: rebuild the report from the last run's result log")
    a = ap.parse_args()
    if a.reps < 6:
        ap.error('--reps below 6 gives no 95 % interval')
    if not 1 <= a.calls <= 1000000 or a.turns < 1:
        ap.error('--calls must be from 1 to 1000000, --turns at least 1')
    try:
        pages = [int(p) for p in a.pages.split(',')]
    except ValueError:
        pages = []
    if not pages or any(not 1 <= p <= 32 for p in pages):
        ap.error('--pages must list sizes from 1 to 32 pages, comma-separated')
    append = ('quiet iommu.strict=1 hib.scenario=mapbench hib.reps=%d hib.calls=%d '
              'hib.turns=%d hib.modes=%s hib.pages=%s'
              % (a.reps, a.calls, a.turns, a.modes, ','.join(map(str, pages))))
    if a.from_log:
        run = qemu.Run('mapbench', os.path.join(a.logs, 'mapbench.console.log'),
                       os.path.join(a.logs, 'mapbench.results.log'), 0, False, 0)
    else:
        run = qemu.boot('mapbench', a.kernel, check.initrd('bench'), append, a.logs,
                        600 + a.reps * 60, edu=True, pin=bool(a.pin_vcpus))
    probs = run.problems()
    if not run.output.mapbench:
        probs.append('%s: no mapbench lines' % run.results_log)
    if probs:
        for p in probs:
            print('mapbench FAILED: %s' % p, file=sys.stderr)
        return 1
    rows = mapbench.rows(run.output.mapbench, run.output.policy)
    fit = mapbench.copy_fit(rows)
    doc = {'machine': report.machine('virtio'), 'reps': a.reps, 'calls': a.calls,
           'turns': a.turns,
           'kernel': run.output.begin[1], 'seconds': round(run.elapsed), 'cmdline': append,
           'rows': rows, 'summary': mapbench.summary(rows), 'policy': run.output.policy,
           'copy_fit': fit, 'clear_split': mapbench.clear_split(fit),
           'mapped_cost': mapbench.mapped_cost(rows),
           'harness': report.harness_commit(TOP), 'date': report.utc_now()}
    if a.from_log:
        report.keep_run_fields(a.out, 'mapbench', doc,
                               ('seconds', 'date', 'cmdline', 'reps', 'calls', 'turns'))
    md = mapbench.mapbench_md(doc)
    report.write_result(a.out, 'mapbench', doc, md)
    print(md)
    return 0 if doc['summary']['all_ok'] else 2


if __name__ == '__main__':
    sys.exit(main())
