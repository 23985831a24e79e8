# SPDX-License-Identifier: GPL-2.0-only
"""Unit tests of the pool's own time per call (report.pool_own_time), from guest lines."""
import unittest

from hib import guest, report

TERSE = '3;fio-3.33;cell;0;0;' + ';'.join(['0'] * 200)


def output(decision):
    lines = [
        'HIB prof strict read 64k 1 0 cpu=0 iommu_dma_map_page 100 3000 us 30 us 0 us',
        'HIB prof strict read 64k 1 0 cpu=0 iommu_dma_unmap_page 100 1500 us 15 us 0 us',
        'HIB fio strict read 64k 1 1 ' + TERSE,
        'HIB pfio strict read 64k 1 0 ' + TERSE,
        'HIB pprof pool read 64k 1 0 cpu=0 io_buffer_pool_map_page 60 30 us 0.5 us 0 us',
        'HIB pprof pool read 64k 1 0 cpu=1 io_buffer_pool_map_page 40 30 us 0.75 us 0 us',
        'HIB pprof pool read 64k 1 0 cpu=0 io_buffer_pool_unmap_page 100 45 us 0.45 us 0 us',
        'HIB ppfio pool read 64k 1 0 ' + TERSE,
        'HIB policy pprof:pool read 64k 1 0 0000:00:02.0 class=65536 dir=from_device '
        'decision=%s pool_ns=1+2 iommu_ns=3+4 pool_timed=8+8 iommu_timed=9+9 switches=0'
        % decision,
        'HIB policy pprof:pool read 64k 1 0 0000:00:02.0 class=65536 dir=to_device '
        'decision=bounce pool_ns=1+2 iommu_ns=3+4 pool_timed=8+8 iommu_timed=9+9 switches=0',
    ]
    return guest.parse('\n'.join(lines))


class OwnTime(unittest.TestCase):
    def test_per_call_and_share(self):
        out = output('map')
        cells = report.aggregate([out])
        rows = report.pool_own_time(out, cells)
        self.assertEqual(len(rows), 1)
        r = rows[0]
        self.assertEqual((r['mode'], r['rw'], r['bs'], r['decision']), ('pool', 'read', 65536, 'map'))
        self.assertEqual(r['map_ns'], 600)       # 60 us over 100 calls, both CPUs
        self.assertEqual(r['unmap_ns'], 450)
        self.assertEqual(r['strict_map_unmap_us'], 45.0)
        self.assertAlmostEqual(r['share_of_strict'], 1.05 / 45, places=4)
        md = '\n'.join(report.pool_own_md(rows))
        self.assertIn('| pool | read | 64k | map | 600 | 450 | 45.0 | 2.3 % |', md)
        self.assertIn('Where the policy maps: its own time is 2.3-2.3 %', md)

    def test_decision_of_its_direction(self):
        out = output('bounce')
        rows = report.pool_own_time(out, report.aggregate([out]))
        self.assertEqual(rows[0]['decision'], 'bounce')
        self.assertNotIn('Where the policy maps', '\n'.join(report.pool_own_md(rows)))

    def test_no_profile_no_rows(self):
        out = guest.parse('HIB pfio strict read 64k 1 0 ' + TERSE)
        self.assertEqual(report.pool_own_time(out, {}), [])
        self.assertEqual(report.pool_own_md([]), [])


if __name__ == '__main__':
    unittest.main()
