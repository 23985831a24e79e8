# SPDX-License-Identifier: GPL-2.0-only
"""Find kernel reports in a guest console log: the lines that fail a run."""
import re

# A line that means something went wrong.  Debug kernels also print benign lines that
# share words with these (see BENIGN); a report needs the exact shape below.
REPORT = [re.compile(p) for p in (
    r'\bWARNING: ',
    r'\bBUG: ',
    r'\bKASAN: ',
    r'\bUBSAN: ',
    r'Kernel panic',
    r'\bOops\b',
    r'general protection fault',
    r'possible recursive locking',
    r'possible circular locking',
    r'inconsistent lock state',
    r'suspicious RCU usage',
    r'kmemleak: \d+ new suspected memory leaks',
    r'DMA-API: .*(device driver|out of memory|disabling)',
    r'INFO: task .* blocked for more than',
    r'rcu: INFO: .* detected stalls',
)]
BENIGN = [re.compile(p) for p in (
    r'DMA-API: preallocated \d+ debug entries',
    r'DMA-API: debugging enabled by kernel config',
    r'kmemleak: Kernel memory leak detector initialized',
    r'vgaarb: bridge control possible',
)]

_STAMP = re.compile(r'^\[\s*\d+\.\d+\]\s?')


def strip_stamp(line):
    """Drop a printk time stamp ('[    1.234567] ') from the front of a line."""
    return _STAMP.sub('', line)


def reports(text):
    """Return [(line number, line)] of the kernel reports in text, in order."""
    found = []
    for no, line in enumerate(text.splitlines(), 1):
        if any(b.search(line) for b in BENIGN):
            continue
        if any(r.search(line) for r in REPORT):
            found.append((no, line.rstrip()))
    return found
