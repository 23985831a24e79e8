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


def cv(values):
    return statistics.stdev(values) / statistics.mean(values) if len(values) > 1 else None


def blocks(v, k):
    return [sum(v[i:i + k]) for i in range(0, len(v) - k + 1, k)]


def aa_spread(v, turn, length):
    """sd of log(A/B) where A and B take turns of `turn` windows within `length` windows
    (turn = length / 2: one after the other)."""
    logs = []
    for s in range(0, len(v) - length + 1, length):
        w = v[s:s + length]
        a = sum(x for i, x in enumerate(w) if (i // turn) % 2 == 0)
        b = sum(x for i, x in enumerate(w) if (i // turn) % 2 == 1)
        if a and b:
            logs.append(math.log(a / b))
    return statistics.stdev(logs) if len(logs) > 1 else None


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--seconds', type=float, default=60)
    ap.add_argument('--window', type=int, default=50, help='ms per window')
    ap.add_argument('--out', default=os.path.join(TOP, 'results'))
    a = ap.parse_args()
    if a.window < 1 or a.seconds * 1000 < 8 * a.window:
        ap.error('need --window of at least 1 ms and --seconds of at least 8 windows')
    w = a.window / 1000.0
    v = spin(w, int(a.seconds / w))
    doc = {'machine': report.machine('no'), 'window_ms': a.window, 'windows': len(v),
           'cv_by_block_ms': {}, 'aa_log_sd': {}}
    for ms in (a.window, 200, 500, 1000, 2000):
        k = max(1, ms // a.window)
        c = cv(blocks(v, k))
        doc['cv_by_block_ms'][str(k * a.window)] = round(c, 4) if c is not None else None
    doc['min_over_median'] = round(min(v) / statistics.median(v), 3)
    per_mode = max(1, 2000 // a.window)      # 2 s of each mode, as the bench
    for name, turn in (('one_after_the_other', per_mode), ('turns_of_%d_ms' % a.window, 1)):
        sd = aa_spread(v, turn, 2 * per_mode)
        doc['aa_log_sd'][name] = round(sd, 4) if sd is not None else None
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, 'hostnoise.json'), 'w') as f:
        json.dump(doc, f, indent=1)
        f.write('\n')
    print(doc['machine'])
    print('busy loop, %d windows of %d ms; the slowest window ran at %.0f %% of the median'
          % (len(v), a.window, 100 * doc['min_over_median']))
    for ms, c in doc['cv_by_block_ms'].items():
        print('  coefficient of variation over %5s ms blocks: %s'
              % (ms, '%.1f %%' % (100 * c) if c is not None else 'n/a (too few)'))
    for name, sd in doc['aa_log_sd'].items():
        print('  A/A log-ratio sd, 2 s per mode, %s: %s' % (
            name.replace('_', ' '), '%.3f' % sd if sd is not None else 'n/a'))
    print('hostnoise: wrote %s' % os.path.join(a.out, 'hostnoise.json'))
    return 0


if __name__ == '__main__':
    sys.exit(main())
