#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-only
"""make bench: boot the bench kernel once, run the fio matrix in the guest, report."""
import argparse
import datetime
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hib import guest, qemu, report  # noqa: E402

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def first_line(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True).stdout.splitlines()[0]
    except (OSError, IndexError):
        return 'unknown'


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--kernel', default=os.path.join(TOP, 'build/obj-bench/arch/x86/boot/bzImage'))
    ap.add_argument('--initrd', default=os.path.join(TOP, 'build/initramfs.cpio'))
    ap.add_argument('--out', default=os.path.join(TOP, 'results'))
    ap.add_argument('--logs', default=os.path.join(TOP, 'build/logs'))
    ap.add_argument('--modes', default='strict,pool,lazy,passthrough')
    ap.add_argument('--rw', default='read,write')
    ap.add_argument('--bs', default='4k,16k,64k,128k')
    ap.add_argument('--jobs', default='1,2')
    ap.add_argument('--reps', type=int, default=None,
                    help='repetitions (default 8; 16 with --aa)')
    ap.add_argument('--runtime', type=int, default=2,
                    help='seconds per mode in every cell and repetition')
    ap.add_argument('--ramp', default='500ms',
                    help='fio warm-up before each measured cell (fio time: 500ms, 1s, 0)')
    ap.add_argument('--alt', type=int, default=1, choices=(0, 1),
                    help='1: modes of one domain type take turns every --seg ms within one '
                    'fio run (harness/guest/alt.c); 0: a fio run per mode')
    ap.add_argument('--seg', type=int, default=50, help='ms per turn with --alt 1')
    ap.add_argument('--skip', type=int, default=15,
                    help='ms at the start of each turn not counted (the previous mode\'s '
                    'requests complete)')
    ap.add_argument('--aa', action='store_true',
                    help='the A/A run (make aa): modes strict,strict2, write aa.json and aa.md only')
    ap.add_argument('--prof', type=int, default=1,
                    help='seconds of each profiled run after the matrix (0: none)')
    ap.add_argument('--pin-vcpus', type=int, default=1, choices=(0, 1),
                    help='1: pin vCPU thread n to host CPU n (harness/hib/qemu.py pin_vcpus)')
    ap.add_argument('--extra', default='', help='more kernel command line')
    ap.add_argument('--iommu', default='virtio', choices=sorted(qemu.IOMMU_DEVICE),
                    help='the emulated IOMMU')
    ap.add_argument('--tcg', default='multi', choices=qemu.TCG_THREADS,
                    help='TCG threading: a host thread per vCPU, or one for all')
    ap.add_argument('--from-log', action='store_true',
                    help='no guest: rebuild the report from the last run\'s result log')
    a = ap.parse_args()

    if a.reps is None:
        a.reps = 16 if a.aa else 8
    if a.reps < 1 or a.runtime < 1:
        ap.error('--reps and --runtime must be at least 1')
    if a.seg < 1 or not 0 <= a.skip < a.seg:
        ap.error('--seg must be at least 1 and --skip from 0 to below --seg')
    if a.aa:
        a.modes, a.prof, name = 'strict,strict2', 0, 'aa'
    else:
        name = 'bench'
    modes = a.modes.split(',')
    ncell = len(modes) * len(a.rw.split(',')) * len(a.bs.split(',')) * len(a.jobs.split(','))
    nprof = ncell // len(a.jobs.split(',')) if a.prof else 0
    timeout = 180 + a.reps * (ncell * (a.runtime + 6) + len(modes) * 30) + nprof * (a.prof + 6)
    append = ('quiet iommu.strict=1 hib.scenario=bench hib.reps=%d hib.runtime=%d hib.ramp=%s '
              'hib.prof=%d hib.modes=%s hib.rw=%s hib.bs=%s hib.jobs=%s hib.alt=%d '
              'hib.seg=%d hib.skip=%d %s'
              % (a.reps, a.runtime, a.ramp, a.prof, a.modes, a.rw, a.bs, a.jobs,
                 a.alt, a.seg, a.skip, a.extra)).strip()
    if a.from_log:
        elapsed = 0
        detail, field = (('aa.json', 'guest_seconds') if a.aa else
                         ('bench-detail.json', 'guest_boot_seconds'))
        try:
            with open(os.path.join(a.out, detail)) as f:
                elapsed = json.load(f).get(field, 0)
        except (OSError, ValueError):
            pass
        run = qemu.Run(name, os.path.join(a.logs, name + '.console.log'),
                       os.path.join(a.logs, name + '.results.log'), elapsed, False, 0)
        try:
            with open(os.path.join(a.logs, name + '.cmd')) as f:
                append = f.read().split(' -append ')[1].split(' -serial ')[0]
        except (OSError, IndexError):
            print('bench: FAILED: no command line of the last run in %s' % a.logs,
                  file=sys.stderr)
            return 1
        # what the logged run used, not this command line's defaults
        for f in append.split():
            if f.startswith('hib.runtime='):
                a.runtime = int(f.split('=', 1)[1])
            elif f.startswith('hib.ramp='):
                a.ramp = f.split('=', 1)[1]
            elif f.split('=', 1)[0] in ('hib.alt', 'hib.seg', 'hib.skip'):
                setattr(a, f[4:].split('=', 1)[0], int(f.split('=', 1)[1]))
        if 'hib.alt=' not in append:
            a.alt = 0       # a log from before the alternating runs
    else:
        print('bench: %d cells x %d reps, %d s each; guest timeout %d s; logs in %s'
              % (ncell, a.reps, a.runtime, timeout, a.logs), flush=True)
        run = qemu.boot(name, a.kernel, a.initrd, append, a.logs, timeout,
                        iommu=a.iommu, tcg=a.tcg, pin=bool(a.pin_vcpus))
    probs = run.problems() + guest.mode_problems(
        run.output.modes, max(report.bs_bytes(b) for b in a.bs.split(',')))
    if probs:
        for p in probs:
            print('bench: FAILED: ' + p, file=sys.stderr)
        return 1
    out = run.output
    if not out.cells:
        print('bench: FAILED: the guest reported no fio cells (%s)' % run.results_log,
              file=sys.stderr)
        return 1
    cells = report.aggregate([out])
    how = report.method(a.alt, a.runtime, a.seg, a.skip, out.alt_windows)
    kernel = out.begin[1] if out.begin and len(out.begin) > 1 else 'unknown'
    fio_ver = 'unknown'
    with open(run.results_log) as f:
        for line in f:
            if line.startswith(('HIB fio ', 'HIB pfio ')):
                fio_ver = line.split()[7].split(';')[1].replace('fio-', '')
                break
    if fio_ver == 'unknown':
        # the initramfs carries the host's own fio binary (mkinitramfs.sh)
        fio_ver = first_line(['fio', '--version']).replace('fio-', '')
    qemu_ver = first_line([qemu.QEMU, '--version']).replace('QEMU emulator version ', '')
    # when the guest finished: the result log's last write
    date = datetime.datetime.fromtimestamp(os.path.getmtime(run.results_log),
                                           datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')
    doc = report.bench_json(cells, kernel, qemu_ver, fio_ver, date)
    cost = report.cost_model(cells)
    threshold = next((f.split('=', 1)[1] for m in out.modes if m[0] == 'pool'
                      for f in m if f.startswith('threshold=')), None)
    pcost = report.pool_cost(cells, cost, threshold)
    own = report.pool_own_time(out, cells)
    doc['pool_own_time'] = own
    machine = report.machine(a.iommu)
    os.makedirs(a.out, exist_ok=True)
    written = []
    aa_doc = None
    try:
        with open(os.path.join(a.out, 'aa.json')) as f:
            aa_doc = json.load(f)
    except (OSError, ValueError):
        pass
    if not a.aa:
        md = report.write(a.out, doc, cells, cost, machine,
                          {'guest_boot_seconds': round(run.elapsed), 'cmdline': append,
                           'alt_windows_ms': out.alt_windows,
                           'harness': report.harness_commit(TOP),
                           'pool_stats': {k: v for k, v in out.stats.items()
                                          if 'pool' in k.split()[0]}},
                          pcost, aa_doc, how, own)
        written += ['bench.json', 'bench.md', 'bench.png']
    aa = report.aa(cells)
    if aa:
        # the A/A control (mode strict2)
        aa.update({'machine': machine, 'kernel': kernel, 'qemu': qemu_ver, 'fio': fio_ver,
                   'date': date, 'reps': max(len(c['reps']) for c in cells.values()),
                   'runtime_s': a.runtime, 'ramp': a.ramp, 'cmdline': append,
                   'alternating': bool(a.alt), 'segment_ms': a.seg, 'skip_ms': a.skip,
                   'method': how, 'harness': report.harness_commit(TOP),
                   'pin_vcpus': bool(a.pin_vcpus),
                   'guest_seconds': round(run.elapsed)})
        with open(os.path.join(a.out, 'aa.json'), 'w') as f:
            json.dump(aa, f, indent=1)
            f.write('\n')
        written.append('aa.json')
        if a.aa:
            md = ('# A/A run: strict against strict\n\n%s\n\nKernel %s, QEMU %s, fio %s, %s; '
                  '%d repetitions of %s after a %s warm-up; the guest ran %.0f s.\n\n'
                  % (machine, kernel, qemu_ver, fio_ver, date, aa['reps'],
                     how, a.ramp,
                     run.elapsed) + '\n'.join(report.aa_md(aa)) +
                  '\nProduced by `make aa` (harness/bench.py --aa).\n')
            with open(os.path.join(a.out, 'aa.md'), 'w') as f:
                f.write(md)
            written.append('aa.md')
    elif a.aa:
        print('bench: FAILED: the A/A run has no strict2/strict pairs', file=sys.stderr)
        return 1
    print(md)
    print('bench: wrote %s: %s (guest ran %.0f s)' % (a.out, ', '.join(written), run.elapsed))
    return 0


if __name__ == '__main__':
    sys.exit(main())
