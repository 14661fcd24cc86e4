#!/usr/bin/env python3
"""Renders the README's result tables from the experiments' summaries.

Every block of the README between
    <!-- numbers:BLOCK begin -->   and   <!-- numbers:BLOCK end -->
is replaced by scripts/readme_tables/BLOCK.md with each {{EXPERIMENT.KEY}}
substituted by the measured value of KEY in out/EXPERIMENT/summary.dat
(written by scripts/summarize/EXPERIMENT.py after each run). A block whose
experiments have no summary yet, or whose summary comes from a QUICK=1 run
(out/EXPERIMENT/runtime.txt: mode quick), is left as it is. --check changes
nothing and fails if any block differs from its rendering or cannot be
rendered. An unknown key is an error.
"""
import argparse
import os
import re
import sys

BLOCK = re.compile(r'(<!-- numbers:([\w.-]+) begin -->\n)(.*?)(<!-- numbers:\2 end -->)', re.S)
FIELD = re.compile(r'\{\{([\w-]+)\.([\w-]+)\}\}')


class Skip(Exception):
    """The block cannot be rendered from what is in out/ (reason in args)."""


def load_summary(out, exp, cache):
    if exp in cache:
        return cache[exp]
    path = os.path.join(out, exp, 'summary.dat')
    if not os.path.exists(path):
        raise Skip('%s missing (run: make figure NAME=%s)' % (path, exp))
    runtime = os.path.join(out, exp, 'runtime.txt')
    if os.path.exists(runtime):
        with open(runtime) as fp:
            if any(line.split()[:2] == ['mode', 'quick'] for line in fp if line.strip()):
                raise Skip('%s comes from a QUICK=1 run' % path)
    values = {}
    with open(path) as fp:
        for line in fp:
            if line.startswith('#') or not line.strip():
                continue
            parts = line.rstrip('\n').split('\t')
            values[parts[0]] = parts[1]
    cache[exp] = values
    return values


def render(template, out, cache):
    def value(m):
        exp, key = m.group(1), m.group(2)
        values = load_summary(out, exp, cache)
        if key not in values:
            raise KeyError('%s has no key %s' % (os.path.join(out, exp, 'summary.dat'), key))
        return values[key]
    return FIELD.sub(value, template)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--readme', default='README.md')
    ap.add_argument('--out', default='out')
    ap.add_argument('--templates', default=os.path.join(os.path.dirname(os.path.abspath(__file__)), 'readme_tables'))
    ap.add_argument('--check', action='store_true')
    a = ap.parse_args()
    with open(a.readme) as fp:
        text = fp.read()
    cache, problems, skipped, rendered = {}, [], [], []

    def replace(m):
        name, old = m.group(2), m.group(3)
        tpath = os.path.join(a.templates, name + '.md')
        try:
            with open(tpath) as fp:
                new = render(fp.read(), a.out, cache)
        except OSError:
            problems.append('block %s: no template %s' % (name, tpath))
            return m.group(0)
        except KeyError as e:
            problems.append('block %s: %s' % (name, e.args[0]))
            return m.group(0)
        except Skip as e:
            skipped.append('block %s: %s' % (name, e.args[0]))
            return m.group(0)
        if new != old:
            (problems if a.check else rendered).append('block %s: %s' % (name, 'differs from the measured numbers' if a.check else 'updated'))
        return m.group(1) + new + m.group(4)

    new_text = BLOCK.sub(replace, text)
    for line in skipped:
        print('readme-numbers: not rendered, %s' % line, file=sys.stderr)
    for line in rendered:
        print('readme-numbers: %s' % line)
    if problems:
        for line in problems:
            print('readme-numbers: %s' % line, file=sys.stderr)
        sys.exit(1)
    if a.check:
        if skipped:
            sys.exit(1)
        print('readme-numbers: %s matches out/*/summary.dat' % a.readme)
        return
    if new_text != text:
        tmp = a.readme + '.tmp'
        with open(tmp, 'w') as fp:
            fp.write(new_text)
        os.replace(tmp, a.readme)


if __name__ == '__main__':
    main()
