# SPDX-License-Identifier: GPL-2.0-only
"""Check that every option a kconfig fragment requests survived into .config.

merge_config.sh and olddefconfig silently drop an option whose dependencies are not
met (KASAN under SLUB_TINY, say).  A kernel built from such a config tests less than it
claims, so the harness stops and names the options that did not make it.
"""
import re
import sys

_SET = re.compile(r'^(CONFIG_[A-Za-z0-9_]+)=(.*)$')
_UNSET = re.compile(r'^# (CONFIG_[A-Za-z0-9_]+) is not set$')


def parse(text):
    """Return {option: value} from .config or fragment text; unset options map to 'n'."""
    opts = {}
    for line in text.splitlines():
        line = line.strip()
        m = _SET.match(line)
        if m:
            opts[m.group(1)] = m.group(2)
            continue
        m = _UNSET.match(line)
        if m:
            opts[m.group(1)] = 'n'
    return opts


def missing(config_text, fragment_texts):
    """List (option, wanted, got) for each requested value the config does not have."""
    have = parse(config_text)
    want = {}
    for frag in fragment_texts:
        want.update(parse(frag))
    bad = []
    for opt, val in want.items():
        got = have.get(opt, 'n')
        if got != val:
            bad.append((opt, val, got))
    return bad


def main(argv):
    if len(argv) < 3:
        print('usage: python3 -m hib.kconfig .config FRAGMENT...', file=sys.stderr)
        return 2
    with open(argv[1]) as f:
        cfg = f.read()
    frags = []
    for path in argv[2:]:
        with open(path) as f:
            frags.append(f.read())
    bad = missing(cfg, frags)
    if bad:
        print('kconfig: %s lacks %d requested option(s):' % (argv[1], len(bad)),
              file=sys.stderr)
        for opt, val, got in bad:
            print('  %s: wanted %s, got %s' % (opt, val, 'unset' if got == 'n' else got),
                  file=sys.stderr)
        print('kconfig: fix the fragment (a dependency is probably off)', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
