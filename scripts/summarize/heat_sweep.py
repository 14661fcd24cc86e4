"""Summary of heat_sweep: the log-log slopes of the quantities plotted in
plots/heat_sweep.gp (block 1 of each sweep.dat: means over seeds), beside the
theory's rates."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Summary, blocks, outdir, slope  # noqa: E402

d = outdir()
s = Summary('heat_sweep')
# columns: 1 value, 2 mean_rel_inc_err, 3 mean_abs_rel_inc_err, 4 mean_l1,
# 5 mean_w (sliced W2), 6 mf_rel_inc_err, 7 mean_abs_delta_inc
n = blocks(os.path.join(d, 'n', 'sweep.dat'))[1]
eps = blocks(os.path.join(d, 'eps', 'sweep.dat'))[1]
dt = blocks(os.path.join(d, 'dt', 'sweep.dat'))[1]
ns = [r[0] for r in n]
s.add('n_range', '%d-%d' % (ns[0], ns[-1]), '-', 'token counts of the n sweep')
s.add('slope_finite_n', '%.2f' % slope(ns, [-r[1] + r[5] for r in n]), '-1',
      'variance shortfall minus its n -> infinity part, against n')
s.add('slope_l1', '%.2f' % slope(ns, [r[3] for r in n]), '-',
      'L1(KDE, PDE smoothed alike) against n')
s.add('slope_sw2', '%.2f' % slope(ns, [r[4] for r in n]), '-', 'sliced W2(cloud, PDE) against n')
s.add('slope_bias_eps', '%.2f' % slope([r[0] for r in eps], [-r[5] for r in eps]), '1',
      'n -> infinity shortfall (the O(eps) bias) against eps')
h0 = dt[0][0]
s.add('slope_euler', '%.2f' % slope([r[0] - h0 for r in dt[1:]], [r[6] for r in dt[1:]]), '1',
      '|increment(h) - increment(h0)| against h - h0 (Euler: C (h - h0))')
s.add('shortfall_n', ', '.join('%.3f' % -r[1] for r in n), '-', 'variance shortfall at each n (eps = 0.05)')
s.add('shortfall_eps', ', '.join('%.3f' % -r[1] for r in eps), '-', 'variance shortfall at each eps (n = 400)')
s.write()
