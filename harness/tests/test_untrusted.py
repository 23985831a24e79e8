# SPDX-License-Identifier: GPL-2.0-only
"""Unit tests of make check's verdicts on the untrusted device (hib.untrusted), on a
recorded run of the guest's untrusted scenario and on edits of it that must fail."""
import os
import unittest

from hib import guest, qemu, regimes, report, untrusted

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'test_data')


def recorded():
    with open(os.path.join(DATA, 'untrusted-results.log')) as f:
        return guest.parse(f.read())


# the kernel's two messages the verdicts look for on the console
CONSOLE = ('[    0.037501] %s   HIB- EXTPORT]\n[   11.2] nvme 0000:01:00.0: %s\n'
           % (untrusted.SSDT_LOG, untrusted.PROTECT_LOG))


def failed(out, console=CONSOLE):
    return [n for n, ok, _ in untrusted.verdicts(out, console) if not ok]


def bump(out, tag, name, by):
    out.stats[tag + ' after'][name] += by


class Verdicts(unittest.TestCase):
    def test_recorded_run_passes(self):
        out = recorded()
        v = untrusted.verdicts(out, CONSOLE)
        self.assertEqual(failed(out), [])
        # every run has its data check and its counter check, and both modes ran
        self.assertEqual(sum(1 for n, _, _ in v if n.startswith('untrusted pool: ')), 24)
        self.assertEqual(sum(1 for n, _, _ in v if n.startswith('untrusted swiotlb: ')), 8)

    def test_device_not_untrusted_fails(self):
        for field, value in (('port', 'none'), ('removable', 'fixed'), ('type', 'DMA-FQ'),
                             ('bounce', 'none'), ('bdf', '0000:02:00.0')):
            out = recorded()
            out.untrusted_dev[field] = value
            self.assertEqual(len(failed(out)), 1, field)
        for gone in (untrusted.SSDT_LOG, untrusted.PROTECT_LOG):
            self.assertEqual(len(failed(recorded(), CONSOLE.replace(gone, ''))), 1, gone)

    def test_pool_that_never_serves_fails(self):
        # every mapping "while a class was set up": a class whose setup never ends
        out = recorded()
        tag = 'u pool 512 512'
        n = untrusted.delta(out, tag, 'untrusted_bounced')
        for k, by in (('untrusted_bounced', -n), ('bounced', -n), ('untrusted_swiotlb', n),
                      ('fallback_class_setup', n), ('swiotlb_traced', n)):
            bump(out, tag, k, by)
        self.assertEqual(len(failed(out)), 1)

    def test_other_fallback_fails(self):
        # what CI saw once: swiotlb took some blocks, for none of the expected reasons
        # (the class had 8 slots, from the KUnit suite's settings): each reason fails
        for k in untrusted.OTHER_FALLBACKS:
            out = recorded()
            tag = 'u pool 512 0'
            for name, by in (('untrusted_bounced', -72), ('bounced', -72),
                             ('untrusted_swiotlb', 72), ('swiotlb_traced', 72), (k, 72)):
                bump(out, tag, name, by)
            self.assertEqual(failed(out), ['untrusted pool: fio verify bs=512 at offset 0: '
                                           'the pool bounced every block (%d mappings), '
                                           'swiotlb only 72 while a class was set up'
                                           % untrusted.delta(out, tag, 'untrusted_bounced')],
                             k)

    def test_cost_bouncing_in_untrusted_domain_fails(self):
        out = recorded()
        bump(out, 'u pool 4096 0', 'bounced', 1024)
        self.assertEqual(len(failed(out)), 1)
        out = recorded()
        bump(out, 'u pool 65536 512', 'policy_mapped', 1)
        self.assertEqual(len(failed(out)), 1)

    def test_lost_trace_events_fail(self):
        out = recorded()
        bump(out, 'u swiotlb 512 0', 'trace_overrun', 5)
        self.assertEqual(len(failed(out)), 1)

    def test_swiotlb_mode_without_swiotlb_slots_fails(self):
        out = recorded()
        out.stats['u swiotlb 512 512 after']['swiotlb_hiwater'] = 0
        self.assertEqual(len(failed(out)), 1)

    def test_missing_run_fails(self):
        out = recorded()
        out.verify = [v for v in out.verify if v[:2] != ('u-swiotlb', '16896@512')]
        self.assertEqual(len(failed(out)), 1)

    def test_swiotlb_in_pool_mode_fails(self):
        # a block the pool holds went to swiotlb for no counted reason
        out = recorded()
        bump(out, 'u pool 512 512', 'untrusted_swiotlb', 1)
        bump(out, 'u pool 512 512', 'swiotlb_traced', 1)
        self.assertEqual(len(failed(out)), 1)

    def test_untraced_swiotlb_fails(self):
        out = recorded()
        bump(out, 'u pool 131072 512', 'swiotlb_traced', 1)
        self.assertEqual(len(failed(out)), 1)

    def test_pool_bouncing_when_off_fails(self):
        out = recorded()
        bump(out, 'u swiotlb 16896 512', 'untrusted_bounced', 1)
        self.assertEqual(len(failed(out)), 1)

    def test_aligned_block_bounced_fails(self):
        out = recorded()
        bump(out, 'u pool 65536 0', 'untrusted_bounced', 1)
        self.assertEqual(len(failed(out)), 1)

    def test_too_few_bounces_fail(self):
        # fewer bounces than I/Os: some block took neither the pool nor swiotlb
        out = recorded()
        tag = 'u pool 3584 0'
        ios = sum(int((f.write_kib + f.read_kib) * 1024 // 3584)
                  for m, bs, _, f in out.verify if (m, bs) == ('u-pool', '3584@0'))
        n = untrusted.delta(out, tag, 'untrusted_bounced')
        bump(out, tag, 'untrusted_bounced', ios - 1 - n)
        self.assertEqual(len(failed(out)), 1)

    def test_bad_data_fails(self):
        out = recorded()
        m, bs, rc, fio = out.verify[0]
        out.verify[0] = (m, bs, rc, fio._replace(error=84))
        self.assertEqual(len(failed(out)), 1)

    def test_missing_counters_fail(self):
        out = recorded()
        del out.stats['u pool 512 0 after']['untrusted_bounced']
        self.assertEqual(len(failed(out)), 1)

    def test_no_runs_fail(self):
        out = recorded()
        out.verify = []
        self.assertEqual(failed(out), ['untrusted: every fio verify run asked for reported (0)'])

    def test_bounce_rule(self):
        self.assertFalse(untrusted.must_bounce(4096, 0))
        self.assertFalse(untrusted.must_bounce(131072, 0))
        self.assertTrue(untrusted.must_bounce(512, 0))
        self.assertTrue(untrusted.must_bounce(4096, 512))
        self.assertTrue(untrusted.pool_holds(131072 - 512, 512))
        self.assertFalse(untrusted.pool_holds(131072, 512))


class Command(unittest.TestCase):
    def test_untrusted_port_and_memory(self):
        cmd = qemu.command('k', 'i', 'a', 'c', 'r', untrusted=True)
        self.assertIn(qemu.UNTRUSTED_PORT, cmd)
        self.assertIn('addr=0x4', qemu.UNTRUSTED_PORT)
        self.assertEqual(cmd[cmd.index('-m') + 1], qemu.UNTRUSTED_MEM)
        self.assertIn('nvme,serial=hib0001,drive=nvm,bus=rp1', cmd)

    def test_not_with_hotplug(self):
        with self.assertRaises(ValueError):
            qemu.command('k', 'i', 'a', 'c', 'r', disk='d', untrusted=True, hotplug=True)


if __name__ == '__main__':
    unittest.main()


def bench_boot():
    """The recorded make bench boot at offset 512 (swiotlb and pool taking turns)."""
    with open(os.path.join(DATA, 'untrusted-bench-512.results.log')) as f:
        return guest.parse(f.read())


class Bench(unittest.TestCase):
    def rows(self, out=None):
        out = out or bench_boot()
        cells = report.aggregate([out])
        return untrusted.bench_rows(cells, untrusted.cell_counts(out.stats), 512,
                                    report.paired(cells, 'swiotlb'))

    def test_cell_counts_are_changes_per_run(self):
        out = bench_boot()
        counts = untrusted.cell_counts(out.stats)
        # every cell and repetition, in either mode order
        self.assertEqual(len(counts), 6 * 6)
        tags = [t for t in out.stats if t.split()[0] in ('swiotlb,pool', 'pool,swiotlb')]
        self.assertIn('swiotlb,pool', {t.split()[0] for t in tags})
        self.assertIn('pool,swiotlb', {t.split()[0] for t in tags})
        total = sum(c['untrusted_bounced'] for c in counts.values())
        self.assertEqual(total, out.stats[tags[-1]]['untrusted_bounced'])

    def test_counts_start_after_boot(self):
        out = bench_boot()
        first = next(t for t in out.stats if t.split()[0] in ('swiotlb,pool', 'pool,swiotlb'))
        out.stats = {'start': {k: v - 1 for k, v in out.stats[first].items()}, **out.stats}
        c = untrusted.cell_counts(out.stats)
        f = out.stats[first]
        key = (f and first.split()[1], guest.bs_bytes(first.split()[2]),
               int(first.split()[3]), int(first.split()[4]))
        self.assertEqual(c[key]['untrusted_bounced'], 1)

    def test_rows(self):
        rows = self.rows()
        self.assertEqual(len(rows), 12)
        pool = [r for r in rows if r['mode'] == 'pool']
        self.assertTrue(all(r['bounced'] and r['offset'] == 512 for r in pool))
        self.assertTrue(all(r['ok'] for r in pool))
        self.assertTrue(all(r['ratio_to_swiotlb'] == 1.0 for r in rows if r['mode'] == 'swiotlb'))
        for r in pool:
            self.assertGreater(r['ci_low'], 1.0)
            self.assertGreater(r['pool_mappings'], 0)
            self.assertGreater(r['swiotlb_mappings'], 0)
        self.assertEqual(untrusted.bench_problems(rows), [])

    def test_target_needs_the_interval_above_one(self):
        rows = self.rows()
        r = next(r for r in rows if r['mode'] == 'pool')
        cells = {('pool', r['rw'], r['bs'], 1): None}
        paired = {k: {'median': 1.2, 'low': 0.99, 'high': 1.3, 'n': 6} for k in cells}
        out = bench_boot()
        c = report.aggregate([out])
        again = untrusted.bench_rows(c, untrusted.cell_counts(out.stats), 512, paired)
        hit = next(x for x in again if x['mode'] == 'pool' and x['rw'] == r['rw']
                   and x['bs'] == r['bs'])
        self.assertFalse(hit['ok'])

    def test_aligned_cell_with_bounces_is_a_problem(self):
        rows = self.rows()
        for r in rows:
            r['bounced'] = False
        self.assertEqual(len(untrusted.bench_problems(rows)), 6)

    def test_bounced_cell_without_pool_is_a_problem(self):
        rows = self.rows()
        rows[1]['pool_mappings'] = 0
        self.assertEqual(len(untrusted.bench_problems(rows)), 1)

    def test_md_and_regimes_md(self):
        rows = self.rows()
        md = untrusted.untrusted_md({'how': 'HOW'}, rows)
        self.assertIn('met in 6 of 6 cells', md)
        self.assertEqual(md.count('| met |'), 6)
        doc = {'machine': 'M', 'reps': 6, 'runtime': 2, 'runs': rows, 'break_even': {},
               'break_even_bound': {}, 'cost_model': {}, 'untrusted': {'how': 'HOW'}}
        self.assertIn('## untrusted: the NVMe device', regimes.regimes_md(doc))
        rows[1]['ci_low'] = None
        self.assertIn('n/a', untrusted.untrusted_md({'how': 'HOW'}, rows))
