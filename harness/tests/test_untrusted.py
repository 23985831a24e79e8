# SPDX-License-Identifier: GPL-2.0-only
"""Unit tests of make check's verdicts on the untrusted device (hib.untrusted), on a
recorded run of the guest's untrusted scenario and on edits of it that must fail."""
import os
import unittest

from hib import guest, qemu, untrusted

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'test_data')


def recorded():
    with open(os.path.join(DATA, 'untrusted-results.log')) as f:
        return guest.parse(f.read())


def failed(out):
    return [n for n, ok, _ in untrusted.verdicts(out) if not ok]


def bump(out, tag, name, by):
    out.stats[tag + ' after'][name] += by


class Verdicts(unittest.TestCase):
    def test_recorded_run_passes(self):
        out = recorded()
        v = untrusted.verdicts(out)
        self.assertEqual(failed(out), [])
        # every run has its data check and its counter check, and both modes ran
        self.assertEqual(sum(1 for n, _, _ in v if n.startswith('untrusted pool: ')), 24)
        self.assertEqual(sum(1 for n, _, _ in v if n.startswith('untrusted swiotlb: ')), 8)

    def test_device_not_untrusted_fails(self):
        for field, value in (('port', 'none'), ('removable', 'fixed'), ('type', 'DMA-FQ'),
                             ('bounce', 'none'), ('ssdt', '0'), ('protect', '0')):
            out = recorded()
            out.untrusted_dev[field] = value
            self.assertEqual(len(failed(out)), 1, field)

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
        ios = sum(int(round((f.write_kib + f.read_kib) * 1024 / 3584))
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
        self.assertEqual(failed(out), ['untrusted: fio verify runs reported'])

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
