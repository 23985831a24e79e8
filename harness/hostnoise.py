#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-only
"""make hostnoise: how steadily this host supplies CPU time, and what that does to a ratio.

A busy loop counts its iterations in windows of --window ms for --seconds; the spread of
those counts over windows and over longer blocks is the noise every guest run inherits
(QEMU's vCPU threads are busy loops too).  From the same series it derives what an A/A
ratio would spread by under the bench's two ways of measuring: two modes measured one
after the other (a run each) and two modes taking turns every few windows in one run.
Writes results/hostnoise.json and prints a table.
"""
import argparse
import json
import math
import os
import random
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hib import report  # noqa: E402

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def spin(window_s, n):
    """Iterations of a busy loop in each of n windows of window_s seconds."""
    counts = []
    clock = time.perf_counter
    for _ in range(n):
        end = clock() + window_s
        k = 0
        while clock() < end:
            k += 1
        counts.append(k)
    return counts


def steal():
    """The steal column of /proc/stat's cpu line, or None."""
    try:
        with open('/proc/stat') as f:
            return int(f.readline().split()[8])
    except (OSError, IndexError, ValueError):
        return None


def cv(values):
    return statistics.stdev(values) / statistics.mean(values) if len(values) > 1 else None


def blocks(v, k):
    return [sum(v[i:i + k]) for i in range(0, len(v) - k + 1, k)]


def aa_pairs(v, turn, length, gap=0, shuffle=False, seed=1):
    """log(A/B) per pair, where A and B take turns of `turn` windows within `length`
    windows (turn = length / 2: one after the other, with `gap` windows lost between
    them, as a fio start-up and warm-up are); shuffle: the order of A and B is drawn
    anew for every cycle of two turns, as hib-alt does."""
    rng = random.Random(seed)
    logs = []
    span = length + gap
    for s in range(0, len(v) - span + 1, span):
        a = b = 0
        if turn * 2 >= length:
            a = sum(v[s:s + turn])
            b = sum(v[s + turn + gap:s + 2 * turn + gap])
        else:
            for c in range(s, s + length - 2 * turn + 1, 2 * turn):
                first, second = v[c:c + turn], v[c + turn:c + 2 * turn]
                if shuffle and rng.random() < 0.5:
                    first, second = second, first
                a += sum(first)
                b += sum(second)
        if a and b:
            logs.append(math.log(a / b))
    return logs


def aa_spread(v, turn, length, gap=0, shuffle=False):
    """sd of aa_pairs(), or None with fewer than two pairs."""
    logs = aa_pairs(v, turn, length, gap, shuffle)
    return statistics.stdev(logs) if len(logs) > 1 else None


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--seconds', type=float, default=120)
    ap.add_argument('--window', type=int, default=50, help='ms per window')
    ap.add_argument('--out', default=os.path.join(TOP, 'results'))
    a = ap.parse_args()
    if a.window < 1 or a.seconds * 1000 < 8 * a.window:
        ap.error('need --window of at least 1 ms and --seconds of at least 8 windows')
    w = a.window / 1000.0
    steal0 = steal()
    v = spin(w, int(a.seconds / w))
    steal1 = steal()
    doc = {'machine': report.machine('no').split(';')[0] + '.', 'window_ms': a.window,
           'windows': len(v),
           'cv_by_block_ms': {}, 'aa_log_sd': {}}
    for ms in (a.window, 200, 500, 1000, 2000):
        k = max(1, ms // a.window)
        c = cv(blocks(v, k))
        doc['cv_by_block_ms'][str(k * a.window)] = round(c, 4) if c is not None else None
    doc['min_over_median'] = round(min(v) / statistics.median(v), 3)
    # what the kernel here says the hypervisor took meanwhile (USER_HZ ticks, all CPUs)
    doc['steal_ticks'] = (steal1 - steal0) if None not in (steal0, steal1) else None
    per_mode = max(1, 2000 // a.window)      # 2 s of each mode, as the bench
    gap = max(1, 1000 // a.window)           # fio's start and warm-up between two runs
    doc['aa_mean_log'] = {}
    for name, turn, g, sh in (('one_after_the_other', per_mode, gap, False),
                              ('turns_of_%d_ms_shuffled' % a.window, 1, 0, True)):
        logs = aa_pairs(v, turn, 2 * per_mode, g, sh)
        sd = statistics.stdev(logs) if len(logs) > 1 else None
        doc['aa_log_sd'][name] = round(sd, 4) if sd is not None else None
        doc['aa_mean_log'][name] = round(statistics.mean(logs), 4) if logs else None
    doc['aa_pairs'] = len(v) // (2 * per_mode + gap)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, 'hostnoise.json'), 'w') as f:
        json.dump(doc, f, indent=1)
        f.write('\n')
    print(doc['machine'])
    print('busy loop, %d windows of %d ms; the slowest window ran at %.0f %% of the median'
          % (len(v), a.window, 100 * doc['min_over_median']))
    print('  steal time counted by the kernel meanwhile: %s ticks' % doc['steal_ticks'])
    for ms, c in doc['cv_by_block_ms'].items():
        print('  coefficient of variation over %5s ms blocks: %s'
              % (ms, '%.1f %%' % (100 * c) if c is not None else 'n/a (too few)'))
    for name, sd in doc['aa_log_sd'].items():
        mean = doc['aa_mean_log'][name]
        print('  A/A log ratio, 2 s per mode, %s: sd %s, mean %s (about %d pairs)' % (
            name.replace('_', ' '), '%.3f' % sd if sd is not None else 'n/a',
            '%+.3f' % mean if mean is not None else 'n/a', doc['aa_pairs']))
    print('hostnoise: wrote %s' % os.path.join(a.out, 'hostnoise.json'))
    return 0


if __name__ == '__main__':
    sys.exit(main())
