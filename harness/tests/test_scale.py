# SPDX-License-Identifier: GPL-2.0-only
"""Unit tests of make scale (hib.scale): /proc/lock_stat's format, the contentions per
1000 bounces, the scaling 1 -> 4 jobs, the 4k read's cost per mapping, the report."""
import os
import re
import subprocess
import tempfile
import unittest

import scale as scale_py
from hib import guest, report, scale

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'test_data')
TERSE = '3;fio-3.33;cell;0;0;' + ';'.join(['0'] * 200)
TAG = 'pool read 4k 4 1'


def lock_stat():
    """A /proc/lock_stat in the kernel's format (lockstat.rst, lockdep_proc.c seq_stats)."""
    with open(os.path.join(DATA, 'lock_stat.txt')) as f:
        return f.read()


INIT = os.path.join(os.path.dirname(DATA), '..', 'guest', 'lib.sh')


def guest_dump(text):
    """What the guest's lock_dump prints of text: its awk program, taken from
    harness/guest/lib.sh and run on text here, each line as `read -r` and out give it."""
    with open(INIT) as f:
        prog = re.search(r"^lock_dump\(\) \{.*?\n\tawk '([^']*)'", f.read(), re.S | re.M)
    assert prog, 'no awk program in lock_dump() of harness/guest/lib.sh'
    kept = subprocess.run(['awk', prog.group(1)], input=text, capture_output=True,
                          text=True, check=True).stdout
    return ['HIB lockstat %s %s' % (TAG, line.strip()) for line in kept.splitlines()]


def lock_boot(slots='8', text=None, before=1000, after=201000, drop=()):
    lines = ['HIB begin bench 6.12.117 x', 'HIB knob-boot bounce_cpu_slots %s' % slots,
             'HIB mode pool group=0 type=DMA dev=/dev/nvme0n1 bounce=auto threshold=auto '
             'group_bounce=on',
             'HIB stat %s before bounced %d' % (TAG, before)]
    lines += guest_dump(lock_stat() if text is None else text)
    lines += ['HIB stat %s bounced %d' % (TAG, after), 'HIB fio %s %s' % (TAG, TERSE),
              'HIB end']
    return guest.parse('\n'.join(l for l in lines if not any(d in l for d in drop)))


def alt(rw, nj, rep, strict, pool):
    """An alternating 4k run in which strict and pool did these IOPS (1 s each)."""
    return ('HIB alt %s 4k %d %d strict,pool %d 1000000000 20 %d 1000000000 20 15 50'
            % (rw, nj, rep, strict * 8, pool * 8))


def throughput(reps=6, jobs=(1, 4)):
    lines = []
    for rw in ('read', 'write'):
        for r in range(1, reps + 1):
            if 1 in jobs:
                lines.append(alt(rw, 1, r, 10000, 12000))
            if 4 in jobs:
                # strict scales 1.5 x (1 + r/100), pool 1.8 x (1 + 2r/100)
                lines.append(alt(rw, 4, r, round(15000 * (1 + r / 100.0)),
                                 round(21600 * (1 + 2 * r / 100.0))))
    return report.aggregate([guest.parse('\n'.join(lines))])


PPROF = [
    'HIB pprof pool read 4k 1 0 cpu=0 io_buffer_pool_map_page 600 5400 us 9 us 0 us',
    'HIB pprof pool read 4k 1 0 cpu=1 io_buffer_pool_map_page 400 3600 us 9 us 0 us',
    'HIB pprof pool read 4k 1 0 cpu=0 io_buffer_pool_unmap_page 1000 6 ms 6 us 0 us',
    'HIB pprof pool read 4k 1 0 cpu=0 iobp_copy_phys 2000 14000 us 7 us 0 us',
    'HIB pprof pool read 4k 1 0 cpu=0 iobp_zero.constprop.0 500 1000 us 2 us 0 us',
    'HIB ppfio pool read 4k 1 0 ' + TERSE,
    'HIB policy pprof:pool read 4k 1 0 0000:00:02.0 class=4096 dir=from_device '
    'decision=bounce pool_ns=1+2 iommu_ns=3+4 pool_timed=8+8 iommu_timed=9+9 switches=0',
    'HIB pprof strict read 4k 1 0 cpu=0 io_buffer_pool_map_page 1000 300 us 0.3 us 0 us',
    'HIB pprof strict read 4k 1 0 cpu=0 io_buffer_pool_unmap_page 1000 250 us 0.25 us 0 us',
    'HIB ppfio strict read 4k 1 0 ' + TERSE,
]


def pprof(drop=()):
    return guest.parse('\n'.join(l for l in PPROF if not any(d in l for d in drop)))


class LockStat(unittest.TestCase):
    def test_kernel_format(self):
        c = scale.parse_lock_stat(lock_stat())
        self.assertEqual(set(c), {'iobp_class_lock', '&rq->__lock', 'iobp_pcp_lock', '&mm->mmap_lock-W',
                                  '&mm->mmap_lock-R', '&n->list_lock', '&sc->lock'})
        cl = c['iobp_class_lock']
        self.assertEqual((cl['con_bounces'], cl['contentions'], cl['acq_bounces'],
                          cl['acquisitions']), (1490, 1532, 90512, 402211))
        self.assertAlmostEqual(cl['wait_total_us'], 2810.64)
        self.assertAlmostEqual(cl['hold_total_us'], 151933.70)
        self.assertEqual(cl['waiters'], [(1101, 'iobp_slot_get+0x4c/0x210'),
                                         (431, 'iobp_slot_put+0x2e/0x1c0')])
        self.assertEqual(cl['holders'], [(917, 'iobp_slot_put+0x2e/0x1c0'),
                                         (615, 'iobp_slot_get+0x4c/0x210')])
        # a read/write lock: its points carry the name without -W/-R
        self.assertEqual(c['&mm->mmap_lock-R']['waiters'],
                         [(4, 'lock_mm_and_find_vma+0x2f/0x2a0')])
        self.assertEqual(c['&sc->lock']['waiters'], [])

    def test_pool_classes_by_exact_name(self):
        p = scale.pool_locks(scale.parse_lock_stat(lock_stat()))
        self.assertEqual(sorted(p), ['iobp_class_lock', 'iobp_pcp_lock'])     # not &sc->lock
        self.assertEqual(p['iobp_pcp_lock']['contentions'], 12)

    def test_twin_names_are_refused(self):
        for twin in ('iobp_class_lock#2', 'iobp_pcp_lock/1'):
            text = lock_stat().replace('&sc->lock:', twin + ':')
            with self.assertRaises(guest.ParseError):
                scale.pool_locks(scale.parse_lock_stat(text))

    def test_lockdep_off_is_refused(self):
        text = lock_stat().replace(
            'lock_stat version 0.4\n', 'lock_stat version 0.4\n*WARNING* lock debugging '
            'disabled!! - possibly due to a lockdep warning\n')
        with self.assertRaises(guest.ParseError):
            scale.parse_lock_stat(text)
        with self.assertRaises(guest.ParseError):
            scale.contention(lock_boot(text=text), False)

    def test_bad_number_is_refused(self):
        with self.assertRaises(guest.ParseError):
            scale.parse_lock_stat(lock_stat().replace('402211', '40x211'))


class Contention(unittest.TestCase):
    def test_after(self):
        r = scale.contention(lock_boot(), False)
        self.assertEqual((r['bounce_cpu_slots'], r['bounces'], r['contentions']),
                         (8, 200000, 1544))
        self.assertAlmostEqual(r['per_1000_bounces'], 7.72)
        self.assertEqual(r['classes']['iobp_pcp_lock']['contentions'], 12)
        self.assertNotIn('&sc->lock', r['classes'])

    def test_before_needs_the_class_lock(self):
        text = lock_stat().replace('iobp_pcp_lock', 'iobp_xyz_lock')
        r = scale.contention(lock_boot('0', text), True)
        self.assertEqual(r['contentions'], 1532)
        self.assertAlmostEqual(r['per_1000_bounces'], 7.66)
        text = lock_stat().replace('iobp_class_lock', 'iobp_xyz_lock')
        with self.assertRaises(guest.ParseError):
            scale.contention(lock_boot('0', text), True)

    def test_after_without_the_cpu_lock_fails(self):
        # e.g. the per-CPU lock initialised under another name: its contentions uncounted
        text = lock_stat().replace('iobp_pcp_lock', '&per_cpu_ptr(c->pcp, cpu)->lock')
        with self.assertRaises(guest.ParseError):
            scale.contention(lock_boot(text=text), False)

    def test_wrong_or_missing_knob_fails(self):
        with self.assertRaises(guest.ParseError):
            scale.contention(lock_boot('8'), True)
        with self.assertRaises(guest.ParseError):
            scale.contention(lock_boot('0'), False)
        with self.assertRaises(guest.ParseError):
            scale.contention(lock_boot('none'), False)

    def test_missing_lines_fail(self):
        for drop in ('before bounced', 'HIB stat %s bounced' % TAG, 'HIB fio'):
            with self.assertRaises(guest.ParseError, msg=drop):
                scale.contention(lock_boot(drop=(drop,)), False)
        with self.assertRaises(guest.ParseError):
            scale.contention(lock_boot(after=1000), False)      # nothing bounced
        with self.assertRaises(guest.ParseError):
            guest.parse('HIB lockstat pool read 4k 4')


class Scaling(unittest.TestCase):
    def test_paired_by_repetition(self):
        s = scale.scaling(throughput(), 'read')
        want = {'strict': [1.5 * (1 + r / 100.0) for r in range(1, 7)],
                'pool': [1.8 * (1 + 2 * r / 100.0) for r in range(1, 7)]}
        for m, w in want.items():
            self.assertEqual(s[m]['pairs'], 6)
            self.assertAlmostEqual(s[m]['median'], (w[2] + w[3]) / 2, places=3)
            # 6 pairs: the interval of the median is their whole range (96.9 %)
            self.assertAlmostEqual(s[m]['low'], w[0], places=3)
            self.assertAlmostEqual(s[m]['high'], w[5], places=3)
            self.assertAlmostEqual(s[m]['coverage'], 0.9688, places=4)
        ratio = [want['pool'][i] / want['strict'][i] for i in range(6)]
        self.assertAlmostEqual(s['pool_vs_strict']['median'], (ratio[2] + ratio[3]) / 2, places=3)
        self.assertEqual(s['iops']['strict']['1'], [10000] * 6)

    def test_few_reps_have_no_interval(self):
        s = scale.scaling(throughput(reps=4), 'write')
        self.assertIsNone(s['pool']['low'])
        self.assertEqual(s['pool']['pairs'], 4)

    def test_missing_numjobs_fails(self):
        with self.assertRaises(guest.ParseError):
            scale.scaling(throughput(jobs=(1,)), 'read')


class Breakdown(unittest.TestCase):
    def test_per_mapping(self):
        b = scale.read_breakdown(pprof())
        self.assertEqual((b['map'], b['unmap'], b['copies'], b['zero']), (9.0, 6.0, 14.0, 1.0))
        self.assertEqual((b['copies_per_mapping'], b['copy_per_call']), (2.0, 7.0))
        self.assertEqual(b['control'], {'map': 0.3, 'unmap': 0.25, 'map_calls': 1000,
                                        'unmap_calls': 1000})
        self.assertEqual(b['decision'], 'bounce')
        t = scale.targets(None, b)['map_unmap_at_most_1.2x_copies']
        self.assertTrue(t['met'])                   # 15 us <= 1.2 x 14 us
        self.assertAlmostEqual(t['ratio_to_copies'], 15 / 14.0, places=4)

    def test_target_missed(self):
        out = guest.parse('\n'.join(PPROF).replace('unmap_page 1000 6 ms', 'unmap_page 1000 9 ms'))
        t = scale.targets(None, scale.read_breakdown(out))['map_unmap_at_most_1.2x_copies']
        self.assertFalse(t['met'])                  # 18 us > 16.8 us

    def test_no_copies_fails(self):
        # the pool did not bounce, or the guest did not profile the copies
        with self.assertRaises(guest.ParseError):
            scale.read_breakdown(pprof(drop=('iobp_copy_phys',)))

    def test_no_control_fails(self):
        with self.assertRaises(guest.ParseError):
            scale.read_breakdown(pprof(drop=('pprof strict',)))
        with self.assertRaises(guest.ParseError):
            scale.read_breakdown(pprof(drop=('pprof pool',)))


class Doc(unittest.TestCase):
    def test_schema_and_report(self):
        scal = {rw: scale.scaling(throughput(), rw) for rw in ('read', 'write')}
        brk = scale.read_breakdown(pprof())
        before = scale.contention(lock_boot('0', lock_stat().replace('iobp_pcp_lock', '&x->lock')),
                                  True)
        locks = {'before': before, 'after': scale.contention(lock_boot(), False)}
        doc = scale.scale_doc(scal, brk, locks)
        self.assertEqual(doc['contentions_per_1000_bounces'], {'before': 7.66, 'after': 7.72})
        self.assertEqual(set(doc['scaling_1_to_4']), {'strict', 'pool'})
        self.assertEqual(doc['scaling_1_to_4']['strict'], scal['read']['strict']['median'])
        self.assertEqual(doc['read_4k_us'], {'map': 9.0, 'unmap': 6.0, 'copies': 14.0})
        self.assertTrue(doc['targets']['pool_scaling_at_least_strict']['met'])
        md = scale.scale_md(doc)
        self.assertIn('| read | 10000 |', md)
        self.assertIn('| before | 0 | 200000 | 1532 (1532, -) | 7.66 |', md)
        self.assertIn('| after | 8 | 200000 | 1544 (1532, 12) | 7.72 |', md)
        self.assertNotIn('NOT met', md)

    def test_failed_parts_are_null(self):
        doc = scale.scale_doc(None, None, {'before': None, 'after': None})
        self.assertEqual(doc['contentions_per_1000_bounces'], {'before': None, 'after': None})
        self.assertEqual(doc['scaling_1_to_4'], {'strict': None, 'pool': None})
        self.assertEqual(doc['read_4k_us'], {'map': None, 'unmap': None, 'copies': None})
        self.assertIn('n/a (the boot failed)', scale.scale_md(doc))

    def test_kernel_with_too_few_cpus(self):
        with tempfile.TemporaryDirectory() as d:
            boot = os.path.join(d, 'arch', 'x86', 'boot')
            os.makedirs(boot)
            with open(os.path.join(d, '.config'), 'w') as f:
                f.write('CONFIG_SMP=y\nCONFIG_NR_CPUS=2\n')
            self.assertIn('CONFIG_NR_CPUS=2', scale_py.nr_cpus_problem(os.path.join(boot, 'bzImage')))
            with open(os.path.join(d, '.config'), 'w') as f:
                f.write('CONFIG_NR_CPUS=4\n')
            self.assertIsNone(scale_py.nr_cpus_problem(os.path.join(boot, 'bzImage')))


if __name__ == '__main__':
    unittest.main()
