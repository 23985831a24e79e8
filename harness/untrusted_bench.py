#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-only
"""make bench's untrusted regime: the NVMe device behind a root port that an SSDT calls
external-facing, so that the kernel makes it untrusted; its sub-granule mappings bounce
through swiotlb (mode swiotlb: the pool off, today's path) or through its domain's pool
(mode pool), the two taking turns within one fio run.  Per buffer offset (fio
--iomem_align) one boot of the lean kernel.  Writes the rows (regime "untrusted") into
results/regimes.json, keeping the other regimes' rows, and regimes.md.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hib import guest, qemu, regimes, report, untrusted  # noqa: E402

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--kernel', default=os.path.join(TOP, 'build/obj-bench/arch/x86/boot/bzImage'))
    ap.add_argument('--out', default=os.path.join(TOP, 'results'))
    ap.add_argument('--logs', default=os.path.join(TOP, 'build/logs'))
    ap.add_argument('--bs', default='512,4k,16k')
    ap.add_argument('--offsets', default='0,512',
                    help='buffer offsets into a page, one boot each')
    ap.add_argument('--reps', type=int, default=6)
    ap.add_argument('--runtime', type=int, default=2, help='seconds per mode per cell')
    ap.add_argument('--seg', type=int, default=50)
    ap.add_argument('--skip', type=int, default=15)
    ap.add_argument('--from-log', action='store_true',
                    help='no guest: rebuild the rows from the last runs\' result logs')
    a = ap.parse_args()
    if a.reps < 1 or a.runtime < 1 or a.seg < 1 or not 0 <= a.skip < a.seg:
        ap.error('--reps and --runtime at least 1, --skip from 0 to below --seg')
    try:
        offsets = [int(x) for x in a.offsets.split(',')]
    except ValueError:
        ap.error('--offsets: whole numbers of bytes, e.g. 0,512')
    if any(o < 0 or o % 512 or o >= 4096 for o in offsets):
        ap.error('--offsets: multiples of 512 below 4096 (O_DIRECT wants sector alignment)')
    rd = None if a.from_log else qemu.cat_initrd(
        os.path.join(TOP, 'build', 'initramfs-untrusted.cpio'),
        [os.path.join(TOP, 'build', p) for p in ('acpi-untrusted.cpio', 'initramfs.cpio')])
    rows, boots, windows, probs = [], {}, [], []
    nbs = len(a.bs.split(','))
    for off in offsets:
        append = ('quiet hib.scenario=bench hib.reps=%d hib.runtime=%d hib.prof=0 '
                  'hib.modes=%s hib.rw=read,write hib.bs=%s hib.jobs=1 hib.alt=1 '
                  'hib.seg=%d hib.skip=%d hib.align=%d'
                  % (a.reps, a.runtime, ','.join(untrusted.BENCH_MODES), a.bs, a.seg,
                     a.skip, off))
        tag = 'untrusted-%d' % off
        timeout = 240 + a.reps * 2 * nbs * (2 * a.runtime + 8)
        if a.from_log:
            run = qemu.Run(tag, os.path.join(a.logs, tag + '.console.log'),
                           os.path.join(a.logs, tag + '.results.log'), 0, False, 0)
        else:
            print('untrusted: offset %d: %d cells x %d reps, %d s per mode; timeout %d s'
                  % (off, 2 * nbs, a.reps, a.runtime, timeout), flush=True)
            run = qemu.boot(tag, a.kernel, rd, append, a.logs, timeout, untrusted=True,
                            pin=True)
        out = run.output
        p = run.problems() + guest.mode_problems(out.modes, 0)
        if not out.cells:
            p.append('%s: the guest reported no fio cells' % run.results_log)
        cells = report.aggregate([out]) if out.cells else {}
        rs = untrusted.bench_rows(cells, untrusted.cell_counts(out.stats), off,
                                  report.paired(cells, 'swiotlb'))
        p += untrusted.bench_problems(rs)
        if p:
            probs += ['offset %d: %s' % (off, m) for m in p]
            continue
        rows += rs
        windows += out.alt_windows
        boots[str(off)] = {'kernel': out.begin[1], 'seconds': round(run.elapsed),
                           'cmdline': append, 'memory': qemu.UNTRUSTED_MEM,
                           'port': qemu.UNTRUSTED_PORT}
    for m in probs:
        print('untrusted: FAILED: %s' % m, file=sys.stderr)
    if not rows:
        return 1
    doc = report.load_result(a.out, 'regimes') or {'machine': report.machine('virtio'), 'reps': a.reps,
                         'runtime': a.runtime, 'runs': [], 'break_even': {},
                         'break_even_bound': {}, 'cost_model': {}, 'boots': {}}
    doc['runs'] = [r for r in doc['runs'] if r.get('regime') != 'untrusted'] + rows
    doc['untrusted'] = {
        'how': ('%s (An x86 guest with no RAM above 4 GiB has no swiotlb.) The NVMe '
                'device sits behind `%s`, which harness/acpi/extport.asl (an SSDT the '
                'kernel installs from the initramfs) calls external-facing, so the kernel '
                'marks it untrusted and forces its domain to strict DMA. Modes: `swiotlb` '
                '(iommu.bounce=off: its sub-granule mappings bounce through swiotlb and are '
                'mapped and unmapped in the IOMMU, 6.12\'s path) and `pool` (iommu.bounce='
                'auto: through pre-mapped slots of its domain\'s pool), %d repetitions of %s; '
                'fio buffers in huge pages (--iomem_align=OFFSET), '
                'numjobs 1, iodepth 64 (fio puts its first buffer OFFSET bytes into a page '
                'and buffer i at i x bs after it: with 512 B blocks the buffers cycle through '
                'the offsets of a page, so both offsets bounce every block). Paired ratios: '
                'median and 95 %% order-statistic interval.'
                % (report.machine('virtio', '3 GiB'), qemu.UNTRUSTED_PORT, a.reps,
                   report.method(True, a.runtime, a.seg, a.skip, windows))),
        'boots': boots, 'date': report.utc_now(), 'harness': report.harness_commit(TOP),
        'failed': probs}
    if a.from_log:
        old = report.load_result(a.out, 'regimes')
        for k in ('date', 'boots'):
            if k in old.get('untrusted', {}):
                doc['untrusted'][k] = old['untrusted'][k]
    md = regimes.regimes_md(doc)
    report.write_result(a.out, 'regimes', doc, md)
    print(untrusted.untrusted_md(doc['untrusted'], rows))
    print('untrusted: wrote %s/regimes.json and regimes.md%s'
          % (a.out, ' (without the offsets that FAILED)' if probs else ''))
    return 1 if probs else 0


if __name__ == '__main__':
    sys.exit(main())
