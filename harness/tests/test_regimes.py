# SPDX-License-Identifier: GPL-2.0-only
"""Unit tests of the cost-regime report (hib/regimes.py) and the QEMU IOMMU choice."""
import unittest

from hib import guest, qemu, regimes, report


def cell(iops, prof=None):
    """A cell of repetitions with the given IOPS; prof = (bs, map us, unmap us) per call."""
    c = {'reps': [{'rep': i + 1, 'iops': v} for i, v in enumerate(iops)],
         'median': {'iops': sorted(iops)[len(iops) // 2]}, 'prof_reps': []}
    if prof:
        c['prof_reps'] = [{'rep': 0, 'map_us': prof[0] * 100, 'map_calls': 100,
                           'unmap_us': prof[1] * 100, 'unmap_calls': 100}]
    return c


class BreakEven(unittest.TestCase):
    def test_crossing_interpolated_in_log_size(self):
        # 1.2 at 4k, 0.8 at 16k: halfway in log2, 8k
        self.assertEqual(regimes.break_even([(16384, 0.8), (4096, 1.2)]), (8192, 'crossing'))

    def test_first_crossing_counts(self):
        pts = [(4096, 1.5), (16384, 1.0), (65536, 0.9), (131072, 1.1)]
        b, bound = regimes.break_even(pts)
        self.assertEqual(bound, 'crossing')
        self.assertEqual(b, 16384)   # even at 16k; lost at 64k

    def test_always_wins_or_loses(self):
        self.assertEqual(regimes.break_even([(4096, 1.3), (131072, 1.01)]), (131072, 'at_least'))
        self.assertEqual(regimes.break_even([(4096, 0.9), (131072, 0.5)]), (4096, 'below'))
        self.assertEqual(regimes.break_even([]), (None, None))


class RegimeRows(unittest.TestCase):
    def cells(self, lazy=False):
        base, pool = ('lazy', 'lazy-pool-all') if lazy else ('strict', 'pool-all')
        c = {}
        for bs, ratio, pmap in ((4096, 2.0, 4.0), (16384, 1.5, 10.0), (65536, 0.5, 34.0)):
            for rw in ('read', 'write'):
                c[(base, rw, bs, 1)] = cell([1000] * 6, (10.0 + bs / 8192.0, 10.0))
                c[(pool, rw, bs, 1)] = cell([1000 * ratio] * 6, (pmap, 1.0))
        return c

    def test_rows_schema_and_names(self):
        rows, be, bound, cost = regimes.regime_rows('virtio-lazy', self.cells(lazy=True))
        self.assertEqual({r['mode'] for r in rows}, {'strict', 'pool-all'})
        self.assertEqual({r['guest_mode'] for r in rows}, {'lazy', 'lazy-pool-all'})
        need = {'regime', 'mode', 'rw', 'bs', 'numjobs', 'iops', 'ratio_to_strict', 'ci_low',
                'ci_high'}
        for r in rows:
            self.assertTrue(need <= set(r), r)
            self.assertEqual(r['domain'], 'DMA-FQ')
        pool = [r for r in rows if r['mode'] == 'pool-all' and r['bs'] == 4096]
        self.assertEqual(pool[0]['ratio_to_strict'], 2.0)
        self.assertEqual((pool[0]['ci_low'], pool[0]['ci_high']), (2.0, 2.0))
        # 1.5 at 16k, 0.5 at 64k: crosses 1 halfway in log2, at 32k
        self.assertEqual(be, {'read': 32768, 'write': 32768})
        self.assertEqual(bound, {'read': 'crossing', 'write': 'crossing'})

    def test_cost_model(self):
        _, _, _, cost = regimes.regime_rows('virtio-strict', self.cells())
        r = cost['read']
        self.assertEqual((r['bs'], r['map_us'], r['unmap_us']), (4096, 10.5, 10.0))
        # the pool's map+unmap: 5, 11, 35 us at 4, 16, 64 KiB: 0.5 us per KiB, 3 us fixed
        self.assertAlmostEqual(r['bounce_us_per_kib'], 0.5)
        self.assertAlmostEqual(r['pool_fixed_us'], 3.0)
        self.assertAlmostEqual(r['strict_us_per_kib'], 1 / 8.0)
        self.assertAlmostEqual(r['strict_fixed_us'], 20.0)
        # 20 + k/8 = 3 + k/2 at k = 45.33 KiB
        self.assertEqual(r['model_break_even'], round(17 / 0.375 * 1024))

    def test_markdown(self):
        rows, be, bound, cost = regimes.regime_rows('vtd-strict', self.cells())
        doc = {'machine': 'm', 'reps': 6, 'runtime': 2, 'runs': rows,
               'break_even': {'vtd-strict': be}, 'break_even_bound': {'vtd-strict': bound},
               'cost_model': {'vtd-strict': cost}}
        md = regimes.regimes_md(doc)
        self.assertIn('| vtd-strict | 32k | 32k | 10.5 | 10.0 | 0.5 | 0.5 |', md)
        self.assertIn('| vtd-strict | read | 1 | 4k | 1000 | 2.000 [2.000-2.000] |', md)


class ModeLines(unittest.TestCase):
    def line(self, text):
        return guest.parse('HIB mode %s\nHIB end\n' % text).modes

    def test_modes_as_asked(self):
        modes = self.line('strict group=0 type=DMA dev=/dev/nvme0n1 bounce=off threshold=auto')
        modes += self.line('pool-all group=0 type=DMA dev=/dev/nvme0n1 bounce=on threshold=131072')
        modes += self.line('lazy-pool-all group=0 type=DMA-FQ dev=x bounce=on threshold=131072')
        modes += self.line('pool-auto group=0 type=DMA dev=x bounce=on threshold=auto')
        modes += self.line('pool group=0 type=DMA dev=x bounce=auto threshold=auto')
        modes += self.line('passthrough group=0 type=identity dev=x bounce=none threshold=none')
        self.assertEqual(guest.mode_problems(modes, 131072), [])

    def test_a_mode_that_did_not_take_is_refused(self):
        # the knob write lost: pool-all ran at the boot threshold, 64k blocks unbounced
        p = guest.mode_problems(self.line('pool-all group=0 type=DMA dev=x bounce=on '
                                          'threshold=8192'), 65536)
        self.assertEqual(len(p), 1)
        self.assertIn('threshold=8192', p[0])
        # pool-auto at a fixed threshold is not the policy
        p = guest.mode_problems(self.line('pool-auto group=0 type=DMA dev=x bounce=on '
                                          'threshold=8192'), 4096)
        self.assertEqual(len(p), 1)
        self.assertIn('not auto', p[0])
        # pool-auto with the pool following the IOMMU's default is not "on"
        self.assertTrue(guest.mode_problems(self.line('pool-auto group=0 type=DMA dev=x '
                                                      'bounce=auto threshold=auto'), 4096))
        # lazy left in a strict domain, or strict with the pool still on
        self.assertTrue(guest.mode_problems(self.line('lazy group=0 type=DMA dev=x bounce=off '
                                                      'threshold=8192'), 4096))
        self.assertTrue(guest.mode_problems(self.line('strict group=0 type=DMA dev=x bounce=on '
                                                      'threshold=8192'), 4096))
        self.assertTrue(guest.mode_problems(self.line('fast group=0 type=DMA'), 4096))
        # the group file overrides the knob: a pool mode whose group is off did not bounce
        self.assertTrue(guest.mode_problems(self.line('pool-auto group=0 type=DMA dev=x '
                                                      'bounce=on threshold=auto '
                                                      'group_bounce=off'), 4096))
        self.assertTrue(guest.mode_problems(self.line('strict group=0 type=DMA dev=x '
                                                      'bounce=off threshold=auto '
                                                      'group_bounce=on'), 4096))
        self.assertEqual(guest.mode_problems(self.line('pool group=0 type=DMA dev=x '
                                                       'bounce=auto threshold=auto '
                                                       'group_bounce=off'), 4096), [])


class QemuIommu(unittest.TestCase):
    def cmd(self, **kw):
        return qemu.command('k', 'i', 'quiet', 'c.log', 'r.log', **kw)

    def test_virtio_default(self):
        c = self.cmd()
        self.assertIn('virtio-iommu-pci', c)
        self.assertNotIn('intel_iommu=on', c[c.index('-append') + 1])
        self.assertIn('tcg,thread=multi', c)

    def test_vtd_caching_mode(self):
        c = self.cmd(iommu='vtd-cm')
        self.assertIn('intel-iommu,caching-mode=on,intremap=off', c)
        self.assertIn('intel_iommu=on', c[c.index('-append') + 1].split())
        # the IOMMU comes before the devices behind it
        self.assertLess(c.index('intel-iommu,caching-mode=on,intremap=off'),
                        c.index('nvme,serial=hib0001,drive=nvm'))
        self.assertIn('intel-iommu,caching-mode=off,intremap=off', self.cmd(iommu='vtd'))

    def test_bad_choices(self):
        with self.assertRaises(ValueError):
            self.cmd(iommu='amd')
        with self.assertRaises(ValueError):
            self.cmd(tcg='many')


if __name__ == '__main__':
    unittest.main()
