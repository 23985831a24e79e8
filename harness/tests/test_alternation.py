# SPDX-License-Identifier: GPL-2.0-only
"""The bench's alternating measurement: hib-alt (harness/guest/alt.c) and its lines."""
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from hib import guest, qemu, report

import hostnoise

ALT_C = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                     'guest', 'alt.c')


class AltLines(unittest.TestCase):
    def test_read_line(self):
        (ka, fa), (kb, fb) = guest.parse_alt(
            'read 4k 1 3 strict,pool 8000 500000000 10 24000 500000000 10 15 50'.split())[0]
        self.assertEqual(ka, ('strict', 'read', '4k', 1, 3))
        self.assertEqual(kb[0], 'pool')
        self.assertAlmostEqual(fa.read_iops, 2000.0)       # 8000 sectors = 1000 I/Os
        self.assertAlmostEqual(fb.read_iops, 6000.0)
        self.assertAlmostEqual(fb.read_kib, 3000 * 4.0)
        self.assertAlmostEqual(fb.read_bw_kib, 6000 * 4.0)
        self.assertEqual(fa.write_iops, 0)

    def test_write_line_and_windows(self):
        cells, windows = guest.parse_alt(
            'write 128k 2 1 strict,strict2 2560 1000000000 4 5120 1000000000 4 30 90'.split())
        f = cells[0][1]
        self.assertEqual((f.read_iops, f.write_iops, f.write_kib), (0.0, 10.0, 1280.0))
        self.assertEqual(windows, (30, 90))

    def test_bad_lines(self):
        for line in ('read 4k 1 1 strict,pool 1 2 3 4 5 6',         # no skip and segment
                     'read 4k 1 1 strict,pool 1 2 3 4 5 x 15 50',   # not a number
                     'read 4k 1 1 strict,pool 1 0 3 4 5 6 15 50',   # no time measured
                     'read 4k 1'):
            with self.assertRaises(guest.ParseError, msg=line):
                guest.parse_alt(line.split())

    def test_pairs_within_the_line(self):
        text = ('HIB begin bench 6.12.117 x\n'
                'HIB alt read 4k 1 1 strict,strict2 8000 1000000000 20 8800 1000000000 20 15 50\n'
                'HIB alt read 4k 1 2 strict2,strict 7920 1000000000 20 7200 1000000000 20 15 50\n'
                'HIB end\n')
        out = guest.parse(text)
        cells = report.aggregate([out])
        p = report.paired(cells)[('strict2', 'read', 4096, 1)]
        self.assertEqual(sorted(round(r, 3) for r in p['ratios']), [1.1, 1.1])
        self.assertEqual(out.alt_windows, [(15, 50), (15, 50)])

    def test_method_named(self):
        self.assertIn('turns of 50-90 ms', report.method(1, 2, 50, 15, [(15, 50), (30, 90)]))
        self.assertIn('turns of 90-135 ms', report.method(1, 2, 50, 15, [(30, 90), (45, 135)]))
        self.assertIn('first 15 ms', report.method(1, 2, 50, 15))
        self.assertIn('run of 2 s per mode', report.method(0, 2, 50, 15))


class PinVcpus(unittest.TestCase):
    def test_named_thread_pinned(self):
        """A process with a thread named as QEMU names a vCPU thread gets it pinned to
        CPU 0, and its main thread left free."""
        prog = ('import threading, time, os\n'
                'def f():\n'
                '    open("/proc/self/task/%d/comm" % threading.get_native_id(), "w")'
                '.write("CPU 0/TCG")\n'
                '    time.sleep(10)\n'
                'threading.Thread(target=f, daemon=True).start()\n'
                'time.sleep(10)\n')
        p = subprocess.Popen([sys.executable, '-c', prog])
        self.addCleanup(p.wait)
        self.addCleanup(p.kill)
        got = qemu.pin_vcpus(p.pid, timeout=5)
        self.assertEqual(list(got.values()), [0])
        (tid,) = got
        self.assertEqual(os.sched_getaffinity(tid), {0})
        self.assertEqual(os.sched_getaffinity(p.pid), os.sched_getaffinity(0))


class HostNoise(unittest.TestCase):
    def test_slow_drift_cancels_in_turns(self):
        # a host whose speed swings by 30 % over 150 windows
        v = [100 + 30 * math.sin(2 * math.pi * i / 150) for i in range(1600)]
        self.assertGreater(hostnoise.aa_spread(v, 40, 80), 0.2)
        self.assertLess(hostnoise.aa_spread(v, 1, 80), 0.01)

    def test_blocks_and_cv(self):
        self.assertEqual(hostnoise.blocks([1, 2, 3, 4, 5], 2), [3, 7])
        self.assertEqual(hostnoise.cv([5, 5, 5]), 0)
        self.assertIsNone(hostnoise.cv([5]))


@unittest.skipUnless(shutil.which('gcc'), 'needs gcc')
class AltHelper(unittest.TestCase):
    """hib-alt itself, on a fake block-device stat file and fake knobs."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix='hib-alt-test.')
        cls.exe = os.path.join(cls.dir, 'hib-alt')
        subprocess.run(['gcc', '-O2', '-Wall', '-Wextra', '-Werror', '-o', cls.exe, ALT_C],
                       check=True)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir)

    def run_alt(self, *args, timeout=30):
        return subprocess.run([self.exe] + [str(a) for a in args], capture_output=True,
                              text=True, timeout=timeout)

    def test_bad_arguments(self):
        stat = os.path.join(self.dir, 'nostat')
        for args in ((), (stat, 50, 15, 0, 100, 0, 0),                  # no mode
                     (stat, 50, 50, 0, 100, 0, 0, '-'),                 # skip not below seg
                     (stat, 'x', 15, 0, 100, 0, 0, '-'),
                     (stat, 50, 15, 0, 100, 0, 0, 'nothing'),           # not PATH=VALUE
                     (stat, 50, 15, 0, 100, 0, 0, '=1'),
                     (stat, 50, 15, 0, 100, 0, 0, '/a=1,/b=')):
            r = self.run_alt(*args)
            self.assertEqual(r.returncode, 2, args)
            self.assertIn('hib-alt', r.stderr)

    def test_missing_stat_file(self):
        r = self.run_alt(os.path.join(self.dir, 'nostat'), 50, 15, 0, 100, 0, 0, '-')
        self.assertEqual(r.returncode, 1)
        self.assertIn('cannot read', r.stderr)

    def test_bad_knob_is_an_error(self):
        stat = os.path.join(self.dir, 'stat0')
        with open(stat, 'w') as f:
            f.write('0 0 0 0 0 0 0 0\n')
        r = self.run_alt(stat, 50, 15, 0, 100, 0, 0, os.path.join(self.dir, 'no/such=1'))
        self.assertEqual(r.returncode, 1)
        self.assertIn('cannot open', r.stderr)

    def device(self, name, rates, lag, writes=(), info=None):
        """A fake device: its stat file gains rates[v] sectors a millisecond (written
        sectors for the values in writes, read ones otherwise) while its knob has read v
        for lag seconds (requests in flight keep the old mode).  Returns the stat and
        knob paths and the list of (value, seconds) turns the knob went through.  A
        dict info gets 'stop' (stops the device) and 'max_gap' (the longest time in
        seconds the device went without updating its stat file: the host's stalls)."""
        stat = os.path.join(self.dir, name + '.stat')
        knob = os.path.join(self.dir, name + '.knob')
        with open(stat, 'w') as f:
            f.write('0 0 0 0 0 0 0 0\n')
        with open(knob, 'w') as f:
            f.write('A')
        stop = threading.Event()

        turns = []
        if info is None:
            info = {}
        info['max_gap'] = 0.0

        def run():
            rd = wr = 0.0
            hist, last = [], time.monotonic()
            while not stop.is_set():
                now = time.monotonic()
                info['max_gap'] = max(info['max_gap'], now - last)
                try:
                    with open(knob) as f:
                        v = f.read(1)
                    hist.append((now, v))
                    if not turns or turns[-1][0] != v:
                        turns.append([v, now])
                except OSError:
                    pass
                while len(hist) > 1 and hist[1][0] <= now - lag:
                    hist.pop(0)
                cur = hist[0][1]
                n = rates.get(cur, 0) * (now - last) * 1000
                if cur in writes:
                    wr += n
                else:
                    rd += n
                last = now
                tmp = stat + '.tmp'
                with open(tmp, 'w') as f:
                    f.write('0 0 %d 0 0 0 %d 0\n' % (rd, wr))
                os.rename(tmp, stat)
                time.sleep(0.0005)

        t = threading.Thread(target=run)
        t.start()

        def halt():
            stop.set()
            t.join()
        info['stop'] = halt
        self.addCleanup(halt)
        return stat, knob, turns

    def rates(self, out, n):
        f = [int(x) for x in out.split()]
        self.assertEqual(len(f), 3 * n + 2)
        return [(f[3 * i] / f[3 * i + 1], f[3 * i + 1], f[3 * i + 2]) for i in range(n)], f[-2:]

    def test_rates_per_mode(self):
        """B writes at three times A's read rate: with a skip longer than the device's
        lag, hib-alt must find 3, in equal numbers of turns of the length asked, in an
        order that changes from cycle to cycle."""
        # a fake device in real time: the host can stall it (a stat file that lags is
        # what hib-alt then measures), so a run that misses is tried again, four times
        # at most, each on its own device, the previous one stopped (each miss is
        # printed with the device's longest stall); 1.2 s of turns, about 8 per mode
        for attempt in range(5):
            info = {}
            stat, knob, turns = self.device('two%d' % attempt, {'A': 8, 'B': 24}, 0.006,
                                            writes='B', info=info)
            r = self.run_alt(stat, 40, 12, 20, 1200, 1, 0, knob + '=A', knob + '=B')
            info['stop']()
            self.assertEqual(r.returncode, 0, r.stderr)
            (ra, ns_a, segs_a), (rb, _, segs_b) = self.rates(r.stdout, 2)[0]
            miss = [why for ok, why in (
                (segs_a == segs_b, 'turns %d and %d' % (segs_a, segs_b)),
                (segs_a >= 7, '%d turns' % segs_a),
                (abs(ns_a / segs_a / 1e6 - (40 - 12)) <= 8, 'turns of %.1f ms'
                 % (ns_a / segs_a / 1e6)),
                (2.5 < rb / ra < 3.5, 'rate ratio %.3f' % (rb / ra))) if not ok]
            if not miss:
                break
            print('test_rates_per_mode: attempt %d missed: %s (the fake device stalled up '
                  'to %.1f ms)' % (attempt + 1, ', '.join(miss), info['max_gap'] * 1e3))
        self.assertEqual(miss, [])
        # shuffled cycles: some turns of one mode follow each other (AB BA: a double
        # turn of A), and some do not
        lengths = [b[1] - a[1] for a, b in zip(turns[1:], turns[2:])]
        self.assertTrue(any(x > 0.065 for x in lengths), lengths)
        self.assertTrue(any(x < 0.050 for x in lengths), lengths)

    def test_mode_without_transfers(self):
        stat, knob, _ = self.device('zero', {'A': 8, 'B': 0}, 0)
        r = self.run_alt(stat, 40, 10, 0, 300, 0, 0, knob + '=A', knob + '=B')
        self.assertEqual(r.returncode, 1)
        self.assertIn('nothing transferred in mode 1', r.stderr)

    def test_without_skip_the_lag_shows(self):
        """The control of the test above: no skip, and the lag blurs the ratio."""
        stat, knob, _ = self.device('noskip', {'A': 8, 'B': 24}, 0.010)
        r = self.run_alt(stat, 30, 0, 20, 600, 1, 0, knob + '=A', knob + '=B')
        self.assertEqual(r.returncode, 0, r.stderr)
        (ra, _, _), (rb, _, _) = self.rates(r.stdout, 2)[0]
        self.assertLess(rb / ra, 2.5)

    def test_three_modes_and_drain(self):
        """Three modes take equal turns; the skip grows to three drain times of the
        sectors in flight (80 sectors at 8 a ms: 10 ms, so a skip of 30 and turns of 90)."""
        # the fake device runs in real time: a stall of it during the warm-up makes
        # the drain look long (a skip of 151 ms once), so a run that misses is tried
        # again, four times at most, as in test_rates_per_mode
        for attempt in range(5):
            info = {}
            stat, knob, _ = self.device('three%d' % attempt, {'A': 8, 'B': 16, 'C': 24},
                                        0.004, info=info)
            r = self.run_alt(stat, 20, 5, 100, 900, 7, 80,
                             knob + '=A', knob + '=B', knob + '=C')
            info['stop']()
            self.assertEqual(r.returncode, 0, r.stderr)
            modes, (skip, seg) = self.rates(r.stdout, 3)
            rb, rc = modes[1][0] / modes[0][0], modes[2][0] / modes[0][0]
            miss = [why for ok, why in (
                (24 <= skip <= 40, 'skip %d ms' % skip),
                (abs(seg - 3 * skip) <= 3, 'turns of %d ms for a skip of %d' % (seg, skip)),
                (len({m[2] for m in modes}) == 1, 'turns %s' % [m[2] for m in modes]),
                (1.7 < rb < 2.3, 'B/A %.3f' % rb),
                (2.6 < rc < 3.4, 'C/A %.3f' % rc)) if not ok]
            if not miss:
                break
            print('test_three_modes_and_drain: attempt %d missed: %s (the fake device '
                  'stalled up to %.1f ms)' % (attempt + 1, ', '.join(miss),
                                              info['max_gap'] * 1e3))
        self.assertEqual(miss, [])

    def test_knob_read_back(self):
        """A knob that does not keep what was written is refused: /dev/null takes
        every write and reads back empty."""
        stat, knob, _ = self.device('back', {'A': 8}, 0)
        r = self.run_alt(stat, 40, 10, 0, 200, 0, 0, knob + '=A', '/dev/null=Y')
        self.assertEqual(r.returncode, 1)
        self.assertIn('reads ""', r.stderr)


if __name__ == '__main__':
    unittest.main()
