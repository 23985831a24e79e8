# SPDX-License-Identifier: GPL-2.0-only
"""Turn the KUnit KTAP output in a console log into typed results.

KUnit prints one top-level KTAP document per boot; each suite is a subtest indented by
four spaces ("    # Subtest: NAME", "    1..N", "    ok 1 case"), closed by a top-level
"ok N NAME".  Parameterised cases nest deeper; their parent case line carries the verdict.
"""
import collections
import re

from . import console

Case = collections.namedtuple('Case', 'suite name status')

_RESULT = re.compile(r'^( *)(ok|not ok) \d+\s*(?:- )?(.*?)\s*(?:#\s*(SKIP|TODO)\b.*)?$')
_SUBTEST = re.compile(r'^ {4}# Subtest: (\S+)')
_PLAN = re.compile(r'^ {4}1\.\.(\d+)$')


def parse(text):
    """Return (cases, problems).

    cases: one Case per test case, status 'pass', 'fail' or 'skip'.
    problems: what does not add up, such as a suite that planned more cases than it
    reported or never closed (the kernel died or hung inside it).
    """
    cases, problems = [], []
    suite, planned, seen = None, None, 0

    def close(reason):
        if planned is not None and seen < planned:
            problems.append('suite %s planned %d cases, reported %d%s'
                            % (suite, planned, seen, reason))

    for raw in text.splitlines():
        line = console.strip_stamp(raw.rstrip())
        m = _SUBTEST.match(line)
        if m:
            if suite:
                close(' before the next suite began')
            suite, planned, seen = m.group(1), None, 0
            continue
        m = _PLAN.match(line)
        if m and suite:
            planned = int(m.group(1))
            continue
        m = _RESULT.match(line)
        if not m or not suite:
            continue
        indent, verdict, name, directive = len(m.group(1)), m.group(2), m.group(3), m.group(4)
        status = 'skip' if directive == 'SKIP' else ('pass' if verdict == 'ok' else 'fail')
        if indent == 4:
            cases.append(Case(suite, name, status))
            seen += 1
        elif indent == 0:
            close('')
            suite, planned, seen = None, None, 0
    if suite:
        close(', and the suite never finished')
        if planned is None:
            problems.append('suite %s never finished' % suite)
    return cases, problems
