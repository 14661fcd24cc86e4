"""Summary of heat_n_limit: the variance increment of the heat reference case
against n (block 0 of every sweep.dat: one line per run) beside the exact
n -> infinity values of the flow at this eps (0.9913 Sinkhorn, 1.946 SoftMax,
af_attention_gaussian_variance) and the PDE values; the finite-n law
mf - var_inc = c / n^a fitted in log-log over all runs (as plots/heat_n_limit.gp
does); the seconds each run took.

The runs take Euler steps of dt = 0.005, and their own n -> infinity value
is not var_inc_mf (dt -> 0) but the same limit for those Euler steps,
af_attention_gaussian_variance_euler (compare writes it into the header as
var_inc_mf_euler; common.euler_limit is the same map, for runs made before
that line existed, and is checked against the header where it is there).
The finite-n law is fitted against that limit; the difference of the two
limits is the O(dt) time-stepping bias."""
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Summary, blocks, euler_limit, euler_limit_checked, outdir, slope  # noqa: E402

# block 0 columns: 3 n, 6 var_inc, 7 var_inc_pde, 16 sk_iters, 17 seconds, 18 var_inc_mf
N, INC, PDE, ITERS, SEC, MF = 2, 5, 6, 15, 16, 17
PARTS = ('small', 'large', 'xl', 'xxl', 'tiled', 'tiled_xl')


def runs(d, norm):
    rows = []
    for part in PARTS:
        path = os.path.join(d, '%s_%s' % (norm, part), 'sweep.dat')
        if part == 'tiled_xl' and (norm != 'sinkhorn' or not os.path.exists(path)):
            continue  # Sinkhorn only; hours here, so a summary may precede it
        block = blocks(path)[0]
        rows += block
        euler_limit_checked(path, norm == 'sinkhorn', block[0][3], block[0][4], 0.5)
    return sorted(rows, key=lambda r: (r[N], r[1]))


def fit(rows, lim):
    """c and a of lim - var_inc = c / n^a (least squares of the logs), lim
    the runs' own n -> infinity value (Euler steps), over the runs whose
    shortfall is positive (a log cannot take the others; the *_above keys
    count them)."""
    rows = [r for r in rows if lim - r[INC] > 0]
    xs = [r[N] for r in rows]
    ys = [lim - r[INC] for r in rows]
    a = -slope(xs, ys)
    c = math.exp(sum(math.log(y) + a * math.log(x) for x, y in zip(xs, ys)) / len(xs))
    return c, a


def secs(v):
    return '%.1f' % v if v < 1 else '%.0f' % v


d = outdir()
s = Summary('heat_n_limit')
total = 0.0
for norm, label in (('sinkhorn', 'Sinkhorn'), ('softmax', 'SoftMax-L2')):
    rows = runs(d, norm)
    total += sum(r[SEC] for r in rows)
    mf, pde = rows[0][MF], rows[0][PDE]
    lim = euler_limit(norm == 'sinkhorn', rows[0][3], rows[0][4], 0.5)
    big = [r for r in rows if r[N] == rows[-1][N]]
    s.add('%s_n_range' % norm, '%d-%d' % (rows[0][N], rows[-1][N]), '-', '%s: token counts' % label)
    s.add('%s_mf' % norm, '%.4f' % mf, '%.4f' % mf, '%s: exact n -> infinity increment at this eps' % label)
    s.add('%s_bias' % norm, '%.4f' % (pde - mf), '-', '%s: O(eps) bias, PDE value %g minus the n -> infinity value' % (label, pde))
    s.add('%s_mf_euler' % norm, '%.4f' % lim, '%.4f' % lim,
          '%s: n -> infinity increment for Euler steps of dt = %g (the runs\' own limit)' % (label, rows[0][4]))
    s.add('%s_dt_bias' % norm, '%+.4f' % (lim - mf), '-',
          '%s: O(dt) bias, the Euler-step limit minus the dt -> 0 limit' % label)
    c, a = fit(rows, lim)
    s.add('%s_fit_c' % norm, '%.1f' % c, '-', '%s: c of mf - var_inc = c / n^a, all runs' % label)
    s.add('%s_fit_a' % norm, '%.2f' % a, '1' if norm == 'sinkhorn' else '-', '%s: a of mf - var_inc = c / n^a, all runs' % label)
    upto = [r for r in rows if r[N] <= 6400]
    c, a = fit(upto, lim)
    s.add('%s_fit_c_6400' % norm, '%.1f' % c, '-', '%s: c of the same fit up to n = 6400' % label)
    s.add('%s_fit_a_6400' % norm, '%.2f' % a, '-', '%s: a of the same fit up to n = 6400' % label)
    above = [r for r in rows if lim - r[INC] <= 0]
    s.add('%s_above' % norm, '%d' % len(above), '-',
          '%s: runs whose increment is at or above the Euler-step limit (left out of the fits)' % label)
    for n in sorted({int(r[N]) for r in rows if r[N] > 12800}):
        r = [q for q in rows if q[N] == n]
        inc = sum(q[INC] for q in r) / len(r)
        digits = 5 if norm == 'sinkhorn' else 4
        s.add('%s_inc_%d' % (norm, n), '%.*f' % (digits, inc), '%.4f' % lim, '%s: increment at n = %d (tiled backend)' % (label, n))
        s.add('%s_short_%d' % (norm, n), '%.5f' % (lim - inc), '0', '%s: Euler-step limit minus the increment at n = %d (signed)' % (label, n))
        if norm == 'sinkhorn':
            steps = round(0.5 / r[0][4])
            s.add('%s_iters_%d' % (norm, n), '%.1f' % (sum(q[ITERS] for q in r) / len(r) / steps), '-',
                  '%s: normalisations per step at n = %d (%d steps)' % (label, n, steps))
        s.add('%s_short_mf_%d' % (norm, n), '%+.5f' % (mf - inc), '-', '%s: dt -> 0 limit minus the increment at n = %d (signed)' % (label, n))
    for n in (3200, 6400, 12800):
        r = [q for q in rows if q[N] == n]
        inc = sum(q[INC] for q in r) / len(r)
        digits = 4 if norm == 'sinkhorn' else 3
        s.add('%s_inc_%d' % (norm, n), '%.*f' % (digits, inc), '%.4f' % lim, '%s: increment at n = %d' % (label, n))
        s.add('%s_short_%d' % (norm, n), '%.4f' % (lim - inc), '0', '%s: Euler-step limit minus the increment at n = %d' % (label, n))
    s.add('%s_short_max' % norm, '%.5f' % (lim - sum(q[INC] for q in big) / len(big)), '0',
          '%s: shortfall to the Euler-step limit at the largest n' % label)
    def seconds(lo, hi):
        v = [r[SEC] for r in rows if lo <= r[N] <= hi]
        return secs(v[0]) if len(v) == 1 else '%s-%s' % (secs(min(v)), secs(max(v)))
    for lo, hi in ((100, 200), (400, 800)):
        s.add('%s_seconds_%d_%d' % (norm, lo, hi), seconds(lo, hi), '-',
              '%s: seconds per run at n = %d-%d, min-max over runs (loaded machine)' % (label, lo, hi))
    for n in sorted({int(r[N]) for r in rows if r[N] > 800}):
        s.add('%s_seconds_%d' % (norm, n), seconds(n, n), '-', '%s: seconds of the run at n = %d (loaded machine)' % (label, n))
    s.add('%s_seconds_range' % norm, '%s-%s' % (secs(min(r[SEC] for r in rows)), secs(max(r[SEC] for r in rows))), '-',
          '%s: seconds per run, fastest to slowest' % label)
s.add('total_minutes', '%.0f' % (total / 60), '-', 'sum of the runs\' seconds, in minutes')
s.write()
