"""Summary of heat_pm_limit: final-time KDE L1 and sliced W2 of the mixture
case against n (the n sweep, 1e3 ... 1e5, and the last line of the n = 1e6
panels run) with their log-log slopes over all four, as plots/heat_pm_limit.gp
fits them; the variance increment of the Gaussian sweep beside the runs'
own n -> infinity value, the limit for their Euler steps
(af_attention_gaussian_variance_euler, the header's var_inc_mf_euler), the
dt -> 0 value (af_attention_gaussian_variance) and the PDE value."""
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Summary, blocks, euler_limit_checked, outdir, slope, table  # noqa: E402

# sweep.dat block 0: 1 value, 6 var_inc, 7 var_inc_pde, 9 l1, 13 sw2,
# 16 sk_iters, 17 seconds, 18 var_inc_mf; panels/errors.dat: 1 t, 9 l1,
# 13 sw2, 16 sk_iters (per evaluation since the previous line)
d = outdir()
s = Summary('heat_pm_limit')
mix = blocks(os.path.join(d, 'n', 'sweep.dat'))[0]
err = table(os.path.join(d, 'panels', 'errors.dat'))
rows = [(r[0], r[8], r[12], r[16]) for r in mix] + [(1e6, err[-1][8], err[-1][12], None)]


def tag(n):
    return '1e%d' % round(math.log10(n))


for n, l1, sw, sec in rows:
    s.add('l1_%s' % tag(n), '%.4f' % l1, '0', 'mixture: KDE L1 to the smoothed PDE at T, n = %s' % tag(n))
    s.add('sw2_%s' % tag(n), '%.4f' % sw, '0', 'mixture: sliced W2 to the PDE at T, n = %s' % tag(n))
    if sec is not None:
        s.add('seconds_%s' % tag(n), '%.1f' % sec, '-', 'mixture: wall seconds of the run at n = %s' % tag(n))
ns = [r[0] for r in rows]
s.add('slope_l1', '%.2f' % slope(ns, [r[1] for r in rows]), '-', 'KDE L1 against n, n = 1e3 ... 1e6')
s.add('slope_sw2', '%.2f' % slope(ns, [r[2] for r in rows]), '-', 'sliced W2 against n, n = 1e3 ... 1e6')
# Euler: one velocity evaluation per step; sk_iters is the mean since the previous line
steps = [round((b[0] - a[0]) / 0.005) for a, b in zip(err, err[1:])]
iters = sum(k * r[15] for k, r in zip(steps, err[1:])) / sum(steps)
s.add('steps_1e6', '%d' % sum(steps), '-', 'Euler steps of the n = 1e6 run')
s.add('sk_iters_1e6', '%.1f' % iters, '-', 'Sinkhorn iterations per step, n = 1e6 run')
gpath = os.path.join(d, 'gauss', 'sweep.dat')
gauss = blocks(gpath)[0]
mf = gauss[0][17]
# the runs' own n -> infinity value: the same limit for their Euler steps
lim = euler_limit_checked(gpath, True, gauss[0][3], gauss[0][4], 0.5)
s.add('gauss_mf', '%.4f' % mf, '%.4f' % mf, 'Gaussian start: exact n -> infinity increment at this eps (dt -> 0)')
s.add('gauss_bias', '%.4f' % (gauss[0][6] - mf), '-', 'Gaussian start: O(eps) bias, PDE value minus the n -> infinity value')
s.add('gauss_mf_euler', '%.4f' % lim, '%.4f' % lim,
      "Gaussian start: n -> infinity increment for Euler steps of dt = %g (the runs' own limit)" % gauss[0][4])
s.add('gauss_dt_bias', '%+.4f' % (lim - mf), '-', 'Gaussian start: O(dt) bias, the Euler-step limit minus the dt -> 0 limit')
s.add('gauss_inc', ', '.join('%.4f' % r[5] for r in gauss), '%.4f' % lim,
      'Gaussian start: increment at T for n = %s' % ', '.join(tag(r[0]) for r in gauss))
for r in (gauss[0], gauss[-1]):
    s.add('gauss_short_%s' % tag(r[0]), '%+.2g' % (lim - r[5]), '0',
          'Gaussian start: Euler-step limit minus the increment at n = %s (signed)' % tag(r[0]))
s.add('gauss_above', '%d' % sum(r[5] >= lim for r in gauss), '0',
      'Gaussian start: runs at or above the Euler-step limit')
s.add('gauss_slope_dev', '%.2f' % slope([r[0] for r in gauss], [abs(lim - r[5]) for r in gauss]), '-1',
      'Gaussian start: |Euler-step limit - increment| against n')
s.write()
