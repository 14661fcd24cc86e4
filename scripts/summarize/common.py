"""Shared helpers of the per-experiment summarizers (scripts/summarize/NAME.py).

A summarizer reads out/NAME/ and prints summary.dat: '#' lines, then one line
per headline number, tab-separated:
    key <TAB> measured <TAB> theory <TAB> description
measured and theory are strings as they should be printed (README tables and
the gallery copy them verbatim); theory is '-' where the theory says nothing.
"""
import math
import os
import sys


def table(path):
    """Rows (lists of floats) of a whitespace table, '#' lines skipped; a blank
    line ends nothing (blocks are concatenated)."""
    rows = []
    with open(path) as fp:
        for line in fp:
            if line.startswith('#') or not line.strip():
                continue
            rows.append([float(v) for v in line.split()])
    return rows


def blocks(path):
    """gnuplot index blocks (separated by two blank lines) as lists of rows."""
    out, cur, blank = [], [], 0
    with open(path) as fp:
        for line in fp:
            if line.startswith('#'):
                continue
            if not line.strip():
                blank += 1
                continue
            if blank >= 2 and cur:
                out.append(cur)
                cur = []
            blank = 0
            cur.append([float(v) for v in line.split()])
    if cur:
        out.append(cur)
    return out


def mean_sd(values):
    """Mean and population standard deviation."""
    m = sum(values) / len(values)
    return m, math.sqrt(sum((v - m) ** 2 for v in values) / len(values))


def slope(xs, ys):
    """Least-squares slope of log y against log x."""
    lx = [math.log(x) for x in xs]
    ly = [math.log(y) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sum((a - mx) ** 2 for a in lx)


class Summary:
    def __init__(self, name):
        self.name = name
        self.lines = []

    def add(self, key, measured, theory='-', description=''):
        self.lines.append((key, measured, theory, description))

    def write(self, fp=sys.stdout):
        fp.write('# headline numbers of %s (scripts/summarize/%s.py)\n' % (self.name, self.name))
        fp.write('# columns: key measured theory description (tab-separated)\n')
        for k, m, t, d in self.lines:
            fp.write('%s\t%s\t%s\t%s\n' % (k, m, t, d))


def outdir():
    if len(sys.argv) != 2 or not os.path.isdir(sys.argv[1]):
        sys.exit('usage: %s out/NAME' % sys.argv[0])
    return sys.argv[1]


def kv(path):
    """'key value' lines of a convex summary.txt (or runtime.txt) as strings."""
    out = {}
    with open(path) as fp:
        for line in fp:
            if line.startswith('#') or not line.strip():
                continue
            k, _, v = line.strip().partition(' ')
            out[k] = v
    return out


def meta(path, key):
    """Value of a '# key: value' header line, or None."""
    with open(path) as fp:
        for line in fp:
            if line.startswith('# %s:' % key):
                return line.split(':', 1)[1].strip()
    return None


def euler_limit(sinkhorn, eps, dt, T, s0=1.0):
    """Variance increment at T of the Gaussian mean-field flow (L2 scores,
    start N(0, s0 I)) under Euler steps of dt, the last one short
    (af_attention_gaussian_variance_euler, heat.h): s <- s (1 + h (2 / eps)
    (1 - r(s)))^2, r the barycentre slope of N(0, s). Particle runs with
    Euler steps converge to this as n -> infinity, not to the dt -> 0 value."""
    s, t = s0, 0.0
    while T - t > 1e-12 * T:
        h = min(dt, T - t)
        if sinkhorn:
            k = s / eps
            one_minus_r = 2.0 / (2 * k + 1 + math.sqrt(1 + 4 * k * k))
        else:
            one_minus_r = eps / (s + eps)
        s *= (1 + h * (2 / eps) * one_minus_r) ** 2
        t += h
    return s - s0


def euler_limit_checked(path, sinkhorn, eps, dt, T):
    """euler_limit, checked against the '# var_inc_mf_euler:' line that
    compare writes into an Euler n sweep's header (runs made before that
    line existed have none: then the value computed here)."""
    mine = euler_limit(sinkhorn, eps, dt, T)
    written = meta(path, 'var_inc_mf_euler')
    if written is not None and abs(float(written.split(':')[0]) - mine) > 1e-9:
        sys.exit('%s: var_inc_mf_euler %s, summary %.10g' % (path, written.split(':')[0], mine))
    return mine
