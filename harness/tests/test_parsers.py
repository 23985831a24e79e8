# SPDX-License-Identifier: GPL-2.0-only
"""Unit tests of the harness stages, on recorded guest output in test_data/."""
import contextlib
import io
import json
import os
import socket
import tempfile
import threading
import unittest

from hib import console, guest, kconfig, ktap, qemu, reliability, report

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'test_data')


def data(name):
    with open(os.path.join(DATA, name)) as f:
        return f.read()


class FioTerse(unittest.TestCase):
    def test_read(self):
        f = guest.parse_terse(data('fio-terse-read.txt'))
        self.assertEqual(f.read_kib, 32768)
        self.assertEqual(f.read_bw_kib, 1213629)
        self.assertEqual(f.read_iops, 303407)
        self.assertEqual(f.write_kib, 0)
        self.assertEqual(f.error, 0)

    def test_write(self):
        f = guest.parse_terse(data('fio-terse-write.txt'))
        self.assertEqual(f.read_kib, 0)
        self.assertEqual(f.write_kib, 16384)
        self.assertGreater(f.write_iops, 0)

    def test_truncated_line_is_rejected(self):
        line = data('fio-terse-read.txt')
        with self.assertRaises(guest.ParseError):
            guest.parse_terse(line[:len(line) // 3])

    def test_other_version_is_rejected(self):
        with self.assertRaises(guest.ParseError):
            guest.parse_terse('2' + data('fio-terse-read.txt')[1:])

    def test_garbage_number_is_rejected(self):
        f = data('fio-terse-read.txt').split(';')
        f[6] = 'fast'
        with self.assertRaises(guest.ParseError):
            guest.parse_terse(';'.join(f))


class Profiler(unittest.TestCase):
    def test_line(self):
        p = guest.parse_prof('cpu=1 iommu_dma_map_page 1234 35801.23 us 29.012 us 1.0 us'.split())
        self.assertEqual((p.cpu, p.function, p.hits), (1, 'iommu_dma_map_page', 1234))
        self.assertAlmostEqual(p.time_us, 35801.23)

    def test_units(self):
        p = guest.parse_prof('cpu=0 f 1 2.5 ms 2.5 ms 0 us'.split())
        self.assertAlmostEqual(p.time_us, 2500.0)

    def test_bad_unit(self):
        with self.assertRaises(guest.ParseError):
            guest.parse_prof('cpu=0 f 1 2.5 parsecs'.split())

    def test_missing_cpu(self):
        with self.assertRaises(guest.ParseError):
            guest.parse_prof('f 1 2.5 us 2.5 us'.split())


class GuestOutput(unittest.TestCase):
    def setUp(self):
        self.o = guest.parse(data('bench-results.log'))

    def test_structure(self):
        self.assertTrue(self.o.ended)
        self.assertEqual(self.o.begin[0], 'bench')
        self.assertEqual(len(self.o.cells), 3)
        self.assertEqual(self.o.cells[0][0], ('strict', 'read', '4k', 1, 1))
        self.assertEqual(len(self.o.prof[('strict', 'read', '4k', 1, 1)]), 3)

    def test_profile_summed_over_cpus(self):
        t, n = guest.iommu_time(self.o.prof[('strict', 'read', '4k', 1, 1)], 'iommu_dma_map_')
        self.assertAlmostEqual(t, 60000.0)
        self.assertEqual(n, 2000)

    def test_missing_end(self):
        text = data('bench-results.log').replace('HIB end\n', '')
        self.assertFalse(guest.parse(text).ended)

    def test_verify_and_stats(self):
        terse = data('fio-terse-write.txt').strip()
        text = ('HIB stat pool before bounced 10\n'
                'HIB stat pool before fallback_class_full 0\n'
                'HIB verify pool 4096 rc=0 %s\n'
                'HIB verify pool mix rc=1 %s\n'
                'HIB verify-error pool mix fio: verify failed at offset 4096\n'
                'HIB stat pool after bounced 1234\n'
                'HIB stat strict read 4k 1 2 slots_mapped 7\n' % (terse, terse))
        o = guest.parse(text)
        self.assertEqual([(m, b, rc) for m, b, rc, _ in o.verify],
                         [('pool', '4096', 0), ('pool', 'mix', 1)])
        self.assertEqual(o.verify[0][3].write_kib, 16384)
        self.assertEqual(o.verify_errors[('pool', 'mix')], 'fio: verify failed at offset 4096')
        self.assertEqual(o.stats['pool before'], {'bounced': 10, 'fallback_class_full': 0})
        self.assertEqual(o.stats['pool after']['bounced'], 1234)
        self.assertEqual(o.stats['strict read 4k 1 2']['slots_mapped'], 7)

    def test_failed_fio_is_a_result_not_a_crash(self):
        o = guest.parse('HIB verify pool-all 131072 rc=1 fio: pid=123, err=5/file:io_u.c\n')
        self.assertEqual(o.verify, [('pool-all', '131072', 1, None)])
        with self.assertRaises(guest.ParseError):   # but a run that passed must parse
            guest.parse('HIB verify pool-all 131072 rc=0 fio: pid=123\n')

    def test_top_of_space_verdict(self):
        import check
        key = ('pool-all after', '0000:00:02.0')
        fixed = {key: [(131072, 0xfffffffffff80000, check.TOP_SLOTS)]}
        self.assertEqual(check.top_range_ok(fixed, 'pool-all after'),
                         (True, 0xfffffffffffc0000))
        # the old layout: two 128 KiB slots ending exactly at 2^64
        self.assertFalse(check.top_range_ok({key: [(131072, 0xfffffffffffc0000, 2)]},
                                            'pool-all after')[0])
        self.assertFalse(check.top_range_ok({key: [(131072, 0x100000, 2)]},
                                            'pool-all after')[0])
        # a class with other than the boot's slot count
        self.assertFalse(check.top_range_ok({key: [(131072, 0xfffffffffff80000, 8)]},
                                            'pool-all after')[0])
        # a class whose slot count was not shown
        self.assertFalse(check.top_range_ok({key: [(131072, 0xfffffffffff80000, None)]},
                                            'pool-all after')[0])

    def test_top_slots_used(self):
        import check
        b = {'bounced': 7, 'fallback_class_full': 0, 'slots_mapped': 2}
        # the class ran full: both slots in flight at once
        self.assertTrue(check.top_used(b, {'bounced': 263, 'fallback_class_full': 4,
                                           'slots_mapped': 1})[0])
        # never full, but both slots hold a mapping at the end
        self.assertTrue(check.top_used(b, {'bounced': 263, 'fallback_class_full': 0,
                                           'slots_mapped': 2})[0])
        # one slot only: the topmost may never have served
        self.assertFalse(check.top_used(b, {'bounced': 263, 'fallback_class_full': 0,
                                            'slots_mapped': 1})[0])
        # nothing bounced
        self.assertFalse(check.top_used(b, {'bounced': 7, 'fallback_class_full': 3,
                                            'slots_mapped': 2})[0])
        self.assertEqual(check.top_range_ok({}, 'pool-all after'), (False, 0))

    def test_debug_boots_without_la57(self):
        import check
        self.assertEqual(check.boot_append('test', 'hib.scenario=verify').split(),
                         ['no5lvl', 'hib.scenario=verify'])
        self.assertEqual(check.boot_append('bench', 'hib.scenario=bench'), 'hib.scenario=bench')

    def test_classes_sized(self):
        import check
        n = 128
        good = {('pool after', 'nvme'): [(4096, 0xfff00000, n), (8192, 0xffe00000, n)],
                ('strict after', 'nvme'): []}
        self.assertEqual(check.classes_sized(good, '128', 128), (True, 2, []))
        # what CI saw: a class set up while the KUnit suite had set 8 slots
        bad = dict(good)
        bad[('pool after', 'nvme')] = [(4096, 0xfff00000, 8), (8192, 0xffe00000, n)]
        self.assertFalse(check.classes_sized(bad, '128', 128)[0])
        # no class at all
        self.assertFalse(check.classes_sized({('strict after', 'nvme'): []}, '128', 128)[0])
        # the boot's knob is not what the kernel was built with, or was not reported
        self.assertFalse(check.classes_sized(good, '64', 128)[0])
        self.assertFalse(check.classes_sized(good, None, 128)[0])
        self.assertFalse(check.classes_sized(good, 'none', 128)[0])
        self.assertFalse(check.classes_sized(good, '128', None)[0])
        # classes and knob agree with each other, but not with the build
        small = {('pool after', 'nvme'): [(4096, 0xfff00000, 64)]}
        self.assertFalse(check.classes_sized(small, '64', 128)[0])

    def test_kernel_slots(self):
        import check
        import tempfile
        with tempfile.TemporaryDirectory() as d:
            boot = os.path.join(d, 'arch', 'x86', 'boot')
            os.makedirs(boot)
            kernel = os.path.join(boot, 'bzImage')
            self.assertIsNone(check.kernel_slots(kernel))
            with open(os.path.join(d, '.config'), 'w') as f:
                f.write('CONFIG_IOMMU_IO_BUFFER=y\nCONFIG_IOMMU_IO_BUFFER_SLOTS=256\n')
            self.assertEqual(check.kernel_slots(kernel), 256)
            with open(os.path.join(d, '.config'), 'w') as f:
                f.write('# CONFIG_IOMMU_IO_BUFFER is not set\n')
            self.assertIsNone(check.kernel_slots(kernel))
            with open(os.path.join(d, '.config'), 'w') as f:
                f.write('CONFIG_IOMMU_IO_BUFFER_SLOTS=128\n')
            # the check as make check runs it: the guest's lines and the kernel's build
            o = guest.parse('HIB knob-boot bounce_slots 128\n'
                            'HIB ranges pool after 0000:00:02.0 4096x128@0xfff00000\n')
            t = check.Tally()
            with contextlib.redirect_stdout(io.StringIO()) as said:
                self.assertTrue(check.record_classes_sized(t, 'x', o, kernel))
                o = guest.parse('HIB ranges pool after 0000:00:02.0 4096x128@0xfff00000\n')
                self.assertFalse(check.record_classes_sized(t, 'x', o, kernel))
            self.assertIn('boot iommu.bounce_slots=None', said.getvalue())
            self.assertEqual((t.passed, len(t.failed)), (1, 1))

    def test_ranges(self):
        o = guest.parse('HIB ranges pool-all after 0000:00:02.0 131072x2@0xfffffffffffc0000,'
                        '4096x128@0xfffffffffff00000\n'
                        'HIB ranges pool-all after 0000:00:03.0 none\n')
        self.assertEqual(o.ranges[('pool-all after', '0000:00:02.0')],
                         [(131072, 0xfffffffffffc0000, 2), (4096, 0xfffffffffff00000, 128)])
        self.assertEqual(o.ranges[('pool-all after', '0000:00:03.0')], [])
        for bad in ('HIB ranges x dev 4096\n', 'HIB ranges x dev 4096@zz\n', 'HIB ranges x\n',
                    'HIB ranges x dev 4096xq@0x1000\n',
                    # a class without its slot count, as kernels before patch 18 showed it
                    'HIB ranges x dev 4096@0x1000\n'):
            with self.assertRaises(guest.ParseError):
                guest.parse(bad)

    def test_bad_verify_and_stat_lines(self):
        with self.assertRaises(guest.ParseError):
            guest.parse('HIB verify pool 4096 0\n')
        with self.assertRaises(guest.ParseError):
            guest.parse('HIB stat pool bounced lots\n')

    def test_error_line(self):
        o = guest.parse('HIB begin bench x y\nHIB error no NVMe controller found\n')
        self.assertEqual(o.errors, ['no NVMe controller found'])


class RecordedGuestRun(unittest.TestCase):
    """A real result log from the bench kernel: 3 modes, reads at 4k and 128k."""

    def test_recorded(self):
        o = guest.parse(data('bench-results-recorded.log'))
        self.assertTrue(o.ended)
        self.assertEqual(o.errors, [])
        self.assertEqual([m[0] for m in o.modes], ['strict', 'lazy', 'passthrough'])
        self.assertEqual(len(o.cells), 6)
        cells = report.aggregate([o])
        strict = cells[('strict', 'read', 4096, 1)]['median']
        self.assertGreater(strict['map_us_per_gib'], 0)
        self.assertGreater(strict['unmap_us_per_gib'], 0)
        pt = cells[('passthrough', 'read', 4096, 1)]['median']
        self.assertEqual(pt['map_us_per_gib'], 0)   # identity domain: dma-direct
        big = cells[('strict', 'read', 131072, 1)]['reps'][0]
        # 128k reads go through both map_page (single segment) and map_sg
        self.assertEqual(big['map_calls'], 12818 + 2096 + 42 + 236)


class Aggregate(unittest.TestCase):
    def test_per_gib_and_medians(self):
        cells = report.aggregate([guest.parse(data('bench-results.log'))])
        c = cells[('strict', 'read', 4096, 1)]
        gib = 32768 * 1024 / float(1 << 30)
        self.assertAlmostEqual(c['median']['map_us_per_gib'], 60000.0 / gib)
        self.assertAlmostEqual(c['median']['unmap_us_per_gib'], 52000.0 / gib)
        self.assertEqual(cells[('passthrough', 'read', 4096, 1)]['median']['map_us_per_gib'], 0)
        w = cells[('strict', 'write', 65536, 2)]
        self.assertAlmostEqual(w['median']['map_us_per_gib'], 1500.0 / (16384 * 1024 / float(1 << 30)))

    def test_median_of_three(self):
        text = data('bench-results.log')
        outs = [guest.parse(text) for _ in range(3)]
        for i, o in enumerate(outs):
            key, fio = o.cells[0]
            o.cells[0] = (key, fio._replace(read_bw_kib=[100, 300, 200][i]))
        cells = report.aggregate(outs)
        self.assertEqual(cells[('strict', 'read', 4096, 1)]['median']['bw_kib'], 200)

    def test_json_schema(self):
        cells = report.aggregate([guest.parse(data('bench-results.log'))])
        doc = report.bench_json(cells, '6.12.117', '7.2', '3.33', '2026-01-01')
        self.assertEqual(set(doc), {'kernel', 'qemu', 'fio', 'date', 'runs'})
        want = {'mode', 'rw', 'bs', 'iodepth', 'numjobs', 'reps', 'bw_kib', 'iops',
                'map_us_per_gib', 'unmap_us_per_gib'}
        paired = {'vs_strict_median', 'vs_strict_ci_low', 'vs_strict_ci_high',
                  'vs_strict_ci_coverage', 'vs_strict_pairs'}
        for r in doc['runs']:
            has_strict = any(x['mode'] == 'strict' and x['rw'] == r['rw'] and
                             x['bs'] == r['bs'] and x['numjobs'] == r['numjobs']
                             for x in doc['runs'])
            extra = paired if r['mode'] != 'strict' and has_strict else set()
            self.assertEqual(set(r), want | extra)
            self.assertIsInstance(r['bs'], int)
        self.assertEqual(len(doc['runs']), 3)

    def test_markdown_has_paired_table(self):
        def cell(iops):
            return {'reps': [{'rep': i + 1, 'iops': v, 'bw_kib': v * 4, 'map_us_per_gib': 0,
                              'unmap_us_per_gib': 0} for i, v in enumerate(iops)],
                    'median': {'bw_kib': 4 * sorted(iops)[len(iops) // 2], 'iops': 1,
                               'map_us_per_gib': 0, 'unmap_us_per_gib': 0}}
        cells = {('strict', 'read', 4096, 1): cell([100, 200, 300, 400, 500, 600]),
                 ('strict2', 'read', 4096, 1): cell([110, 180, 300, 400, 500, 660])}
        doc = report.bench_json(cells, '6.12.117', '7.2', '3.33', '2026-01-01')
        cost = {'map_us_per_call': None}
        md = report.bench_md(doc, cells, cost, 'machine')
        self.assertIn('| read | 1 | 4k | 1.000 [0.900-1.100] | 10.0 % | 6 | no |', md)
        self.assertIn('0 of 1 cells within target (0 %): target NOT met', md)

    def test_aa_verdict(self):
        def cell(iops):
            return {'reps': [{'rep': i + 1, 'iops': v} for i, v in enumerate(iops)],
                    'median': {}}
        base = [100, 200, 300, 400, 500, 600, 700, 800, 900, 1000]
        near = [v * f for v, f in zip(base, (1.0, 1.01, 0.99, 1.02, 0.98, 1.0, 1.01, 0.99,
                                             1.0, 1.0))]
        far = [v * f for v, f in zip(base, (1.0, 1.1, 0.9, 1.2, 0.8, 1.0, 1.1, 0.9, 1.0, 1.0))]
        cells = {('strict', 'read', 4096, 1): cell(base),
                 ('strict2', 'read', 4096, 1): cell(near),
                 ('strict', 'read', 8192, 1): cell(base),
                 ('strict2', 'read', 8192, 1): cell(far)}
        a = report.aa(cells)
        ok = {r['bs']: r['ok'] for r in a['cells']}
        self.assertEqual(ok, {4096: True, 8192: False})
        self.assertEqual(a['summary']['within_target'], 1)
        self.assertFalse(a['summary']['target_met'])
        self.assertEqual(set(a['cells'][0]), {'rw', 'bs', 'numjobs', 'ratio', 'ci_low',
                                              'ci_high', 'half_width', 'pairs', 'ok'})
        self.assertIsNone(report.aa({('strict', 'read', 4096, 1): cell(base)}))

    def test_markdown_names_the_noise_floor(self):
        cells = report.aggregate([guest.parse(data('bench-results.log'))])
        doc = report.bench_json(cells, '6.12.117', '7.2', '3.33', '2026-01-01')
        aa_doc = {'date': '2026-11-25', 'reps': 16, 'summary': {'median_half_width': 0.068},
                  'cells': [{'half_width': 0.03}, {'half_width': 0.137}, {'half_width': None}]}
        md = report.bench_md(doc, cells, report.cost_model(cells), 'm', aa_doc=aa_doc)
        self.assertIn('half-width of 6.8 % in the median cell and up to 13.7 % in the worst', md)
        self.assertNotIn('Noise floor', report.bench_md(doc, cells, report.cost_model(cells), 'm'))

    def test_lazy_pool_pairs_with_lazy(self):
        def cell(iops):
            return {'reps': [{'rep': i + 1, 'iops': v} for i, v in enumerate(iops)],
                    'median': {}}
        cells = {('strict', 'read', 4096, 1): cell([100] * 6),
                 ('lazy', 'read', 4096, 1): cell([200] * 6),
                 ('lazy-pool-all', 'read', 4096, 1): cell([300] * 6)}
        p = report.paired(cells)
        self.assertEqual(p[('lazy', 'read', 4096, 1)]['median'], 2.0)
        self.assertEqual(p[('lazy-pool-all', 'read', 4096, 1)]['base'], 'lazy')
        self.assertEqual(p[('lazy-pool-all', 'read', 4096, 1)]['median'], 1.5)

    def test_profiled_runs_apart_from_the_reps(self):
        R = data('fio-terse-read.txt').strip()
        text = ('HIB fio strict read 4k 1 1 %s\nHIB fio strict read 4k 1 2 %s\n'
                'HIB prof strict read 4k 1 0 cpu=0 iommu_dma_map_page 100 1000.0 us 10 us 1 us\n'
                'HIB prof strict read 4k 1 0 cpu=1 iommu_dma_unmap_page 100 500.0 us 5 us 1 us\n'
                'HIB pfio strict read 4k 1 0 %s\nHIB end\n' % (R, R, R))
        o = guest.parse(text)
        self.assertIn(('strict', 'read', '4k', 1, 0), o.pcells)
        cells = report.aggregate([o])
        c = cells[('strict', 'read', 4096, 1)]
        self.assertEqual(len(c['reps']), 2)     # the profiled run is not a repetition
        self.assertEqual(len(c['prof_reps']), 1)
        self.assertAlmostEqual(c['median']['map_us_per_gib'], 1000.0 / c['prof_reps'][0]['gib'])
        cost = report.cost_model(cells)
        self.assertAlmostEqual(cost['map_us_per_call'], 10.0)
        self.assertAlmostEqual(cost['unmap_us_per_call'], 5.0)

    def test_median_ci_order_statistics(self):
        # below 6 values no order-statistic interval reaches 95 %
        self.assertEqual(report.median_ci([1.0, 2.0, 3.0, 4.0, 5.0])[1:], (None, None, None))
        med, lo, hi, cov = report.median_ci([5, 1, 4, 2, 3, 6])
        self.assertEqual((med, lo, hi), (3.5, 1, 6))
        self.assertAlmostEqual(cov, 1 - 2 / 64.0)
        # 9 values: [x(2), x(8)], coverage 1 - 2 * 10/512
        med, lo, hi, cov = report.median_ci(list(range(1, 10)))
        self.assertEqual((med, lo, hi), (5, 2, 8))
        self.assertAlmostEqual(cov, 1 - 20 / 512.0)
        self.assertEqual(report.median_ci([]), (None, None, None, None))

    def test_paired_ratios_by_repetition(self):
        def cell(iops):
            return {'reps': [{'rep': i + 1, 'iops': v} for i, v in enumerate(iops)],
                    'median': {}}
        # the repetitions drift together: paired ratios stay at 2 where medians
        # of the modes alone would not tell
        cells = {('strict', 'read', 4096, 1): cell([100, 200, 300, 400, 500, 600]),
                 ('pool', 'read', 4096, 1): cell([200, 400, 600, 800, 1000, 1200]),
                 ('strict2', 'read', 4096, 1): cell([110, 180, 300, 400, 500, 660])}
        p = report.paired(cells)
        self.assertNotIn(('strict', 'read', 4096, 1), p)
        pool = p[('pool', 'read', 4096, 1)]
        self.assertEqual((pool['n'], pool['median'], pool['low'], pool['high']), (6, 2, 2, 2))
        self.assertEqual(pool['half_width'], 0)
        aa = p[('strict2', 'read', 4096, 1)]
        self.assertAlmostEqual(aa['median'], 1.0)
        self.assertAlmostEqual(aa['low'], 0.9)
        self.assertAlmostEqual(aa['high'], 1.1)
        self.assertAlmostEqual(aa['half_width'], 0.1)

    def test_fio_error_is_refused(self):
        o = guest.parse(data('bench-results.log'))
        key, fio = o.cells[0]
        o.cells[0] = (key, fio._replace(error=5))
        with self.assertRaises(guest.ParseError):
            report.aggregate([o])

    def test_cost_model(self):
        cells = report.aggregate([guest.parse(data('bench-results.log'))])
        c = report.cost_model(cells)    # numjobs=1 cells only
        self.assertAlmostEqual(c['map_us_per_call'], 60000.0 / 2000)
        self.assertAlmostEqual(c['unmap_us_per_call'], 26.0)
        c2 = report.cost_model(cells, numjobs=2)
        self.assertAlmostEqual(c2['map_us_per_call'], 150.0)
        self.assertIsNone(c2['unmap_us_per_call'])

    def test_pool_cost_model(self):
        text = data('bench-results.log').replace('HIB end\n', '')
        R = data('fio-terse-read.txt').strip()
        text += ('HIB prof pool read 4k 1 1 cpu=0 iommu_dma_map_page 1000 12000.0 us 12.0 us 1 us\n'
                 'HIB prof pool read 4k 1 1 cpu=0 iommu_dma_unmap_page 1000 14000.0 us 14.0 us 1 us\n'
                 'HIB fio pool read 4k 1 1 %s\nHIB end\n' % R)
        cells = report.aggregate([guest.parse(text)])
        strict = {'map_us_per_call': 25.0, 'unmap_us_per_call': 13.0}
        c = report.pool_cost(cells, strict, '4096')
        self.assertEqual(c['bs'], 4096)
        self.assertAlmostEqual(c['copy_us_per_kib'], (12.0 + 14.0) / 2 / 4)
        self.assertAlmostEqual(c['break_even_read_kib'], 38.0 / (2 * 3.25))
        self.assertAlmostEqual(c['break_even_write_kib'], 38.0 / 3.25)
        md = report.bench_md(report.bench_json(cells, 'k', 'q', 'f', 'd'), cells,
                             report.cost_model(cells), 'm', c)
        self.assertIn('3.25 us per KiB', md)
        self.assertIn('regimes.md', md)
        self.assertIn('iommu.bounce_threshold=4096', md)
        self.assertIn('pool/strict', md)
        self.assertIsNone(report.pool_cost({}, strict, '4096'))

    def test_markdown_has_ratios(self):
        cells = report.aggregate([guest.parse(data('bench-results.log'))])
        doc = report.bench_json(cells, '6.12.117', '7.2', '3.33', '2026-01-01')
        md = report.bench_md(doc, cells, report.cost_model(cells), 'test machine')
        self.assertIn('passthrough/strict', md)
        self.assertIn('| 4k | ', md)
        self.assertIn('1.00', md)   # same fio line for both modes: ratio 1

    def test_bs_bytes(self):
        self.assertEqual(report.bs_bytes('4k'), 4096)
        self.assertEqual(report.bs_bytes('512'), 512)
        self.assertEqual(report.bs_bytes('1M'), 1 << 20)
        with self.assertRaises(ValueError):
            report.bs_bytes('lots')


class Console(unittest.TestCase):
    def test_reports_found_in_order(self):
        r = console.reports(data('console-kasan.log'))
        self.assertEqual(len(r), 4)
        self.assertIn('BUG: KASAN: slab-use-after-free', r[0][1])
        self.assertEqual(r[0][0], 7)
        self.assertIn('WARNING: CPU: 1', r[1][1])
        self.assertIn('device driver frees DMA memory', r[2][1])
        self.assertIn('3 new suspected memory leaks', r[3][1])

    def test_benign_debug_lines(self):
        self.assertEqual(console.reports(data('console-clean.log')), [])

    def test_lockdep(self):
        self.assertEqual(len(console.reports(
            '[ 1.0] WARNING: possible circular locking dependency detected\n')), 1)

    def test_strip_stamp(self):
        self.assertEqual(console.strip_stamp('[   12.500100] BUG: x'), 'BUG: x')

    # console-expected-warning.log: the KUnit driver-bug case's announcement and the
    # one warning it provokes, recorded from the debug kernel.
    def test_expected_warning_is_not_a_report(self):
        seen = []
        self.assertEqual(console.reports(data('console-expected-warning.log'), seen), [])
        self.assertEqual(len(seen), 1)
        self.assertEqual(seen[0][1], 'iobp_test_driver_bugs')
        self.assertIn('io-buffer-pool.c', seen[0][2])

    def _warning_lines(self):
        return [l for l in data('console-expected-warning.log').splitlines()
                if 'WARNING: ' in l]

    def test_unannounced_warning_is_a_report(self):
        text = '\n'.join(l for l in data('console-expected-warning.log').splitlines()
                         if 'expect a WARNING' not in l)
        self.assertEqual(len(console.reports(text)), 1)

    def test_one_announcement_covers_one_warning(self):
        text = data('console-expected-warning.log') + self._warning_lines()[0] + '\n'
        self.assertEqual(len(console.reports(text)), 1)

    def test_warning_from_another_file_is_a_report(self):
        text = data('console-expected-warning.log').replace(
            'drivers/iommu/io-buffer-pool.c:', 'drivers/iommu/dma-iommu.c:')
        self.assertEqual(len(console.reports(text)), 1)

    def test_warning_from_another_function_is_a_report(self):
        text = data('console-expected-warning.log').replace(
            'iobp_driver_bug+', 'io_buffer_pool_destroy+')
        self.assertEqual(len(console.reports(text)), 1)

    def test_announcement_expires(self):
        lines = data('console-expected-warning.log').splitlines()
        i = next(n for n, l in enumerate(lines) if 'expect a WARNING' in l)
        lines[i + 1:i + 1] = ['[ 1.0] filler'] * (console.EXPECT_WINDOW + 1)
        self.assertEqual(len(console.reports('\n'.join(lines))), 1)


class Ktap(unittest.TestCase):
    def test_mixed(self):
        cases, problems = ktap.parse(data('ktap-mixed.log'))
        self.assertEqual(problems, [])
        got = [(c.suite, c.name, c.status) for c in cases]
        self.assertEqual(got, [
            ('io-buffer-pool', 'classes_are_powers_of_granule', 'pass'),
            ('io-buffer-pool', 'partial_write_keeps_original', 'fail'),
            ('io-buffer-pool', 'highmem_page', 'skip'),
            ('second-suite', 'param_case', 'pass'),
            ('second-suite', 'plain_case', 'pass')])

    def test_crash_inside_suite(self):
        cases, problems = ktap.parse(data('ktap-crashed.log'))
        self.assertEqual(len(cases), 1)
        self.assertEqual(len(problems), 1)
        self.assertIn('planned 4 cases, reported 1', problems[0])


class Kconfig(unittest.TestCase):
    CONFIG = ('CONFIG_64BIT=y\nCONFIG_KASAN=y\n# CONFIG_SLUB_TINY is not set\n'
              'CONFIG_NR_CPUS=2\n')

    def test_all_present(self):
        frag = 'CONFIG_KASAN=y\n# CONFIG_SLUB_TINY is not set\nCONFIG_NR_CPUS=2\n'
        self.assertEqual(kconfig.missing(self.CONFIG, [frag]), [])

    def test_dropped_option_named(self):
        frag = 'CONFIG_KASAN=y\nCONFIG_PROVE_LOCKING=y\n'
        self.assertEqual(kconfig.missing(self.CONFIG, [frag]),
                         [('CONFIG_PROVE_LOCKING', 'y', 'n')])

    def test_unset_request_violated(self):
        self.assertEqual(kconfig.missing('CONFIG_SLUB_TINY=y\n', ['# CONFIG_SLUB_TINY is not set']),
                         [('CONFIG_SLUB_TINY', 'n', 'y')])

    def test_value_mismatch(self):
        self.assertEqual(kconfig.missing(self.CONFIG, ['CONFIG_NR_CPUS=4']),
                         [('CONFIG_NR_CPUS', '4', '2')])

    def test_main_exit_code(self):
        import contextlib
        import io
        import tempfile
        with tempfile.TemporaryDirectory() as d:
            cfg, frag = os.path.join(d, 'c'), os.path.join(d, 'f')
            with open(cfg, 'w') as f:
                f.write(self.CONFIG)
            with open(frag, 'w') as f:
                f.write('CONFIG_DMA_API_DEBUG=y\n')
            err = io.StringIO()
            with contextlib.redirect_stderr(err):
                self.assertEqual(kconfig.main(['x', cfg, frag]), 1)
            self.assertIn('CONFIG_DMA_API_DEBUG: wanted y, got unset', err.getvalue())
            with open(frag, 'w') as f:
                f.write('CONFIG_KASAN=y\n')
            self.assertEqual(kconfig.main(['x', cfg, frag]), 0)


if __name__ == '__main__':
    unittest.main()


def _fio_json(jobs):
    return json.dumps({'fio version': 'fio-3.33', 'jobs': [
        {'jobname': 'j', 'error': e, 'read': {'io_bytes': r, 'total_ios': r // 4096},
         'write': {'io_bytes': w, 'total_ios': w // 4096}} for r, w, e in jobs]})


class ReliabilityLines(unittest.TestCase):
    def test_fio_json_summed_over_jobs(self):
        text = _fio_json([(8192, 4096, 0), (4096, 4096, 0)]).replace(' ', '')
        r = guest.parse_fio_json(0, text)
        self.assertEqual((r.read_bytes, r.write_bytes, r.ios, r.jobs, r.error),
                         (12288, 8192, 5, 2, 0))

    def test_fio_json_first_error(self):
        r = guest.parse_fio_json(1, 'note: x\n' + _fio_json([(0, 0, 0), (0, 0, 84)]))
        self.assertEqual(r.error, 84)

    def test_fio_json_garbage(self):
        for bad in ('', '{"jobs": 3}', '{"jobs": [{"read": {}}]}', 'fio: no such file'):
            with self.assertRaises(guest.ParseError):
                guest.parse_fio_json(0, bad)

    def test_corrupted_bytes(self):
        lines = ['crc32c: verify failed at file /dev/nvme0n1 offset 1048576, length 4096 '
                 '(requested block: offset=1048576, length=4096)',
                 'verify: bad magic header 0, wanted acca at file /dev/nvme0n1 offset 0, '
                 'length 512 (requested block: offset=0, length=512)',
                 'fio: pid=1, err=84/file:io_u.c:2000, func=io_u_queued_complete']
        self.assertEqual(guest.corrupted_bytes(lines), (4608, 2))
        self.assertEqual(guest.corrupted_bytes(['Starting 1 process']), (0, 0))

    def test_lines(self):
        o = guest.parse('\n'.join([
            'HIB case fault-map-10',
            'HIB rfio fault-map-10 rc=0 ' + _fio_json([(4096, 4096, 0)]).replace(' ', ''),
            'HIB rfio-err fault-map-10 crc32c: verify failed ... length 4096',
            'HIB rfio broken rc=1',
            'HIB knob bounce value= want=rej rc=1 before=Y after=Y expect=Y',
            'HIB knob-boot bounce_slots 4096',
            "HIB knob-log [ 0.8] Booting kernel: `0' invalid for parameter `iommu.bounce_slots'",
            'HIB ask unplug', 'HIB ask plug', 'HIB hotplug-group 3 type=DMA',
            'HIB hog steps=2 free_kb=9 min_kb=5 low_kb=7 stop_kb=6 hog_kb=100']))
        self.assertEqual(o.cases, ['fault-map-10'])
        self.assertEqual(o.rfio['fault-map-10'].read_bytes, 4096)
        self.assertEqual(o.rfio['broken'].error, -1)
        self.assertEqual(o.rfio_err['fault-map-10'], ['crc32c: verify failed ... length 4096'])
        self.assertEqual(o.knobs[0], guest.Knob('bounce', '', 'rej', 1, 'Y', 'Y', 'Y'))
        self.assertEqual(o.knob_boot, {'bounce_slots': '4096'})
        self.assertEqual(len(o.knob_log), 1)
        self.assertEqual(o.asks, ['unplug', 'plug'])
        self.assertEqual(o.hotplug_group, ('3', 'DMA'))
        self.assertEqual(o.hog['hog_kb'], 100)
        self.assertEqual(o.hog['stop_kb'], 6)

    def test_bad_knob_line(self):
        with self.assertRaises(guest.ParseError):
            guest.parse('HIB knob bounce value=1 want=ok rc=0')


class Reliability(unittest.TestCase):
    """The verdicts on a recorded reliability run, and on that run made to go wrong."""
    LOG = 'reliability-results.log'

    def rows(self, text=None, edit=None):
        text = text or data(self.LOG)
        if edit:
            text = edit(text)
        return {r['name']: r for r in reliability.evaluate(guest.parse(text))}

    def test_recorded_run_passes(self):
        rows = self.rows()
        self.assertEqual(list(rows), reliability.CASES)
        for name, r in rows.items():
            self.assertTrue(r['passed'], '%s: %s' % (name, r['failures']))
            self.assertEqual(r['bytes_corrupted'], 0)
            self.assertEqual(r['leaks'], 0)
        self.assertEqual(rows['fault-alloc-100']['faults_injected'],
                         rows['fault-alloc-100']['fallbacks'])
        self.assertGreater(rows['fault-map-100']['faults_injected'], 0)
        self.assertGreater(rows['concurrent']['bytes_verified'], 0)

    def _stat(self, text, tag, counter, value):
        old = [l for l in text.splitlines() if l.startswith('HIB stat %s %s ' % (tag, counter))]
        self.assertEqual(len(old), 1)
        return text.replace(old[0], 'HIB stat %s %s %d' % (tag, counter, value))

    def test_cpu_offline_with_slots_left_fails(self):
        def edit(t):
            # the offline CPU kept its cached slots: the hotplug callback did nothing
            return self._stat(t, 'cpu-offline down', 'cpu1_cached', 28)
        r = self.rows(edit=edit)['cpu-offline']
        self.assertFalse(r['passed'])
        self.assertIn('still holds', ' '.join(r['failures']))

    def test_cpu_offline_losing_slots_fails(self):
        def edit(t):
            return self._stat(t, 'cpu-offline down', 'slots_cached', 24)
        r = self.rows(edit=edit)['cpu-offline']
        self.assertFalse(r['passed'])
        self.assertIn('slots_cached changed', ' '.join(r['failures']))

    def _event_count(self, t, key):
        old = [l for l in t.splitlines() if l.startswith('HIB stat trace events %s ' % key)]
        self.assertEqual(len(old), 1)
        return old[0], int(old[0].split()[-1])

    def test_trace_event_count_off_by_one_fails(self):
        # one bounce counted that fired no event (or the other way round)
        def edit(t):
            line, n = self._event_count(t, 'iobp_bounce_map')
            return t.replace(line, 'HIB stat trace events iobp_bounce_map %d' % (n + 1))
        r = self.rows(edit=edit)['trace']
        self.assertFalse(r['passed'])
        self.assertIn('trace: iobp_bounce_map', ' '.join(r['failures']))

    def test_trace_lost_events_fail(self):
        def edit(t):
            line, n = self._event_count(t, 'entries_written')
            return t.replace(line, 'HIB stat trace events entries_written %d' % (n + 5))
        r = self.rows(edit=edit)['trace']
        self.assertFalse(r['passed'])
        self.assertIn('lost events', ' '.join(r['failures']))

    def test_trace_line_without_its_fields_fails(self):
        def edit(t):
            old = [l for l in t.splitlines() if l.startswith('HIB trace-line iobp_fallback ')]
            self.assertEqual(len(old), 1)
            return t.replace(old[0], 'HIB trace-line iobp_fallback pool=0000:00:02.0')
        r = self.rows(edit=edit)['trace']
        self.assertFalse(r['passed'])
        self.assertIn('iobp_fallback line', ' '.join(r['failures']))

    def test_trace_counter_moving_at_the_switch_fails(self):
        def edit(t):
            before = [l for l in t.splitlines() if l.startswith('HIB stat trace before bounced ')]
            self.assertEqual(len(before), 1)
            return self._stat(t, 'trace on', 'bounced', int(before[0].split()[-1]) + 1)
        r = self.rows(edit=edit)['trace']
        self.assertFalse(r['passed'])
        self.assertIn('being switched', ' '.join(r['failures']))

    def test_fallback_mismatch_fails(self):
        def edit(t):
            # fewer fallbacks than faults: a failed fill that did not fall back
            return self._stat(t, 'fault-map-10 after', 'fallback_map_failed', 0)
        r = self.rows(edit=edit)['fault-map-10']
        self.assertFalse(r['passed'])
        self.assertIn('fallbacks', ' '.join(r['failures']))

    def test_fault_case_without_faults_fails(self):
        # fault-map-1 with no fault injected (and so no fallback): it tested nothing
        def edit(t):
            for c in ('faults_injected', 'fallback_map_failed'):
                before = [l for l in t.splitlines()
                          if l.startswith('HIB stat fault-map-1 before %s ' % c)][0]
                t = self._stat(t, 'fault-map-1 after', c, int(before.split()[-1]))
            return t
        r = self.rows(edit=edit)['fault-map-1']
        self.assertFalse(r['passed'])
        self.assertEqual(r['faults_injected'], 0)
        self.assertIn('did not exercise', ' '.join(r['failures']))

    def test_leaked_slot_fails(self):
        def edit(t):
            return self._stat(t, 'concurrent after', 'slots_mapped', 10 ** 6)
        r = self.rows(edit=edit)['concurrent']
        self.assertFalse(r['passed'])
        self.assertGreater(r['leaks'], 0)

    def test_leak_still_there_after_settling_fails(self):
        # the guest waited its 3 s for the counts to agree: 2 slots stayed mapped uncached
        def edit(t):
            line = [l for l in t.splitlines()
                    if l.startswith('HIB stat memory-hog after slots_cached ')][0]
            cached = int(line.split()[-1])
            t = self._stat(t, 'memory-hog after', 'slots_mapped', cached + 2)
            return t + '\nHIB stat memory-hog after settle_waits 30\n'
        r = self.rows(edit=edit)['memory-hog']
        self.assertFalse(r['passed'])
        self.assertEqual(r['leaks'], 2)
        self.assertEqual(r['figures']['settle_waits after'], 30)

    def test_idle_slots_fail(self):
        def edit(t):
            t = self._stat(t, 'idle after', 'slots_mapped', 3)
            return self._stat(t, 'idle after', 'slots_cached', 3)
        self.assertFalse(self.rows(edit=edit)['idle']['passed'])

    def test_corruption_fails_and_counts(self):
        def edit(t):
            return t + ('\nHIB rfio-err hotplug crc32c: verify failed at file /dev/nvme0n1 '
                        'offset 0, length 8192 (requested block: offset=0, length=8192)\n')
        r = self.rows(edit=edit)['hotplug']
        self.assertFalse(r['passed'])
        self.assertEqual(r['bytes_corrupted'], 8192)

    def test_accepted_garbage_fails(self):
        def edit(t):
            return t.replace('value=garbage want=rej rc=1', 'value=garbage want=rej rc=0')
        self.assertFalse(self.rows(edit=edit)['bad-input']['passed'])

    def test_missing_case_fails(self):
        def edit(t):
            return '\n'.join(l for l in t.splitlines() if 'shrinker' not in l)
        self.assertFalse(self.rows(edit=edit)['shrinker']['passed'])

    def _unchanged(self, case, counter, since, then, why):
        """Make counter at snapshot CASE then equal CASE since: the case must fail."""
        def edit(t):
            old = 'HIB stat %s %s %s ' % (case, since, counter)
            n = [l for l in t.splitlines() if l.startswith(old)][0].split()[-1]
            return self._stat(t, '%s %s' % (case, then), counter, int(n))
        r = self.rows(edit=edit)[case]
        self.assertFalse(r['passed'])
        self.assertIn(why, ' '.join(r['failures']))

    def test_hog_that_frees_nothing_fails(self):
        self._unchanged('memory-hog', 'slots_shrunk', 'busy', 'pressed', 'no cached slot shrunk')

    def test_idle_load_before_unplug_fails(self):
        self._unchanged('hotplug', 'bounced', 'before', 'unplugged', 'pool was not in use')

    def test_idle_load_before_unbind_fails(self):
        self._unchanged('unbind', 'bounced', 'before', 'unbound', 'pool was not in use')

    def test_kmemleak_counts_as_leak(self):
        def edit(t):
            return t.replace('HIB kmemleak 0', 'HIB kmemleak 2')
        r = self.rows(edit=edit)['leak-check']
        self.assertFalse(r['passed'])
        self.assertEqual(r['leaks'], 2)

    def test_report_files(self):
        rows = list(self.rows().values())
        with tempfile.TemporaryDirectory() as d:
            reliability.write(rows, '6.12.117', d)
            with open(os.path.join(d, 'reliability.json')) as f:
                doc = json.load(f)
            with open(os.path.join(d, 'reliability.md')) as f:
                md = f.read()
        self.assertEqual(doc['kernel'], '6.12.117')
        keys = {'name', 'faults_injected', 'fallbacks', 'ios', 'bytes_verified',
                'bytes_corrupted', 'leaks', 'passed'}
        for c in doc['cases']:
            self.assertLessEqual(keys, set(c))
        self.assertEqual(md.count('\n| '), len(rows) + 1)

    def test_kunit_rows(self):
        cases = [ktap.Case('io-buffer-pool', n, 'pass') for n in reliability.KUNIT]
        cases[0] = ktap.Case('io-buffer-pool', cases[0].name, 'fail')
        rows = reliability.kunit_rows(cases[:-1])
        self.assertEqual(len(rows), len(reliability.KUNIT))
        self.assertEqual([r['passed'] for r in rows],
                         [False] + [True] * (len(rows) - 2) + [False])
        self.assertEqual(rows[0]['name'], 'kunit-dma_mask')


class _FakeQMP:
    def __init__(self, deleted=True):
        self.calls, self.deleted = [], deleted

    def execute(self, command, **args):
        self.calls.append((command, args))

    def wait_event(self, name, timeout, **data):
        self.calls.append((name, data))
        return {'event': name, 'data': data} if self.deleted else None


class Hotplug(unittest.TestCase):
    def test_command_line(self):
        cmd = qemu.command('k', 'i', 'a', 'c', 'r', disk='d.img', monitor='/tmp/q',
                           hotplug=True)
        line = ' '.join(cmd)
        self.assertIn('pcie-root-port,id=rp1', line)
        self.assertIn('nvme,id=nvme0,bus=rp1,drive=nvm,serial=hib0001', line)
        self.assertIn('filename=d.img', line)
        self.assertIn('-qmp unix:/tmp/q,server=on,wait=off', line)
        self.assertNotIn('-drive', cmd)

    def test_hotplug_needs_a_disk(self):
        with self.assertRaises(ValueError):
            qemu.command('k', 'i', 'a', 'c', 'r', hotplug=True)

    def test_unplug_waits_for_deletion(self):
        q = _FakeQMP()
        self.assertIn('deleted', qemu.hotplug_request(q, 'unplug'))
        self.assertEqual(q.calls, [('device_del', {'id': 'nvme0'}),
                                   ('DEVICE_DELETED', {'device': 'nvme0'})])
        self.assertIn('no DEVICE_DELETED', qemu.hotplug_request(_FakeQMP(False), 'unplug'))

    def test_plug_and_unknown(self):
        q = _FakeQMP()
        qemu.hotplug_request(q, 'plug')
        self.assertEqual(q.calls[0][0], 'device_add')
        self.assertEqual(q.calls[0][1]['bus'], 'rp1')
        self.assertIn('unknown', qemu.hotplug_request(q, 'reboot'))
        self.assertEqual(len(q.calls), 1)

    def test_qmp_protocol(self):
        """QMP framing against a fake QEMU: greeting, capabilities, an event that
        arrives before the command's return, an error reply."""
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, 'qmp.sock')
            srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            srv.bind(path)
            srv.listen(1)
            seen = []

            def fake_qemu():
                conn, _ = srv.accept()
                f = conn.makefile('rwb', buffering=0)
                f.write(b'{"QMP": {"version": {}, "capabilities": []}}\n')
                for line in f:
                    cmd = json.loads(line)['execute']
                    seen.append(cmd)
                    if cmd == 'device_del':
                        f.write(b'{"event": "DEVICE_DELETED", "data": {"path": "/x"}}\n'
                                b'{"return": {}}\n'
                                b'{"event": "DEVICE_DELETED", "data": {"device": "nvme0"}}\n')
                    elif cmd == 'device_add':
                        f.write(b'{"error": {"class": "GenericError", '
                                b'"desc": "Duplicate device ID"}}\n')
                    else:
                        f.write(b'{"return": {}}\n')
                conn.close()

            th = threading.Thread(target=fake_qemu, daemon=True)
            th.start()
            q = qemu.QMP(path, timeout=5)
            self.assertIn('deleted', qemu.hotplug_request(q, 'unplug'))
            with self.assertRaises(OSError) as e:
                qemu.hotplug_request(q, 'plug')
            self.assertIn('Duplicate', str(e.exception))
            q.close()
            th.join(5)
            srv.close()
        self.assertEqual(seen, ['qmp_capabilities', 'device_del', 'device_add'])
