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


# A test that provokes a warning on purpose (the io-buffer-pool KUnit case that feeds the
# pool a driver's bad unmap) first prints "# CASE: expect a WARNING at FILE in FUNCTION".
# The next WARNING line, if it comes from FUNCTION in FILE and follows within
# EXPECT_WINDOW lines, belongs to the test and is not a report.  One announcement covers
# one warning: a second one, one from elsewhere, or one without an announcement is still
# a report.
EXPECT = re.compile(r'# (\w+): expect a WARNING at (\S+) in (\w+)')
EXPECT_WINDOW = 40


def _expected(line, armed):
    """True when line is the WARNING that the announcement armed announced."""
    if not armed or not strip_stamp(line).startswith('WARNING: '):
        return False
    return re.search(r' at (\S*/)?%s:\d+ %s\+' % (re.escape(armed[1]), re.escape(armed[3])),
                     line) is not None


def reports(text, expected=None):
    """Return [(line number, line)] of the kernel reports in text, in order.

    expected, a list, receives (line number, case, line) for each announced warning."""
    found = []
    armed = None        # (line number of the announcement, file, case)
    for no, line in enumerate(text.splitlines(), 1):
        if armed and no - armed[0] > EXPECT_WINDOW:
            armed = None
        m = EXPECT.search(line)
        if m:
            armed = (no, m.group(2), m.group(1), m.group(3))
            continue
        if any(b.search(line) for b in BENIGN):
            continue
        if _expected(line, armed):
            if expected is not None:
                expected.append((no, armed[2], line.rstrip()))
            armed = None
            continue
        if any(r.search(line) for r in REPORT):
            found.append((no, line.rstrip()))
    return found
