"""Summary of sinkhorn_convergence: measured geometric rate of the column
error per full iteration (last decade before the tolerance) beside the sharp
rate sigma_2^2 and the Birkhoff-Hopf rate; runs that stopped short marked."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Summary, meta, outdir, table  # noqa: E402

d = outdir()
s = Summary('sinkhorn_convergence')
for n in ('100', '400'):
    for eps in ('0.1', '0.3', '1', '3', '10'):
        f = os.path.join(d, 'n%s_eps%s.dat' % (n, eps))
        rows = [r for r in table(f) if int(r[0]) % 2 == 1]  # after each row step: column error
        errs = [(int(r[0] + 1) // 2, r[2]) for r in rows if r[2] > 1e-11]
        k1, e1 = errs[max(0, len(errs) - 1 - max(1, len(errs) // 3))]
        k2, e2 = errs[-1]
        rate = (e2 / e1) ** (1.0 / (k2 - k1)) if k2 > k1 else float('nan')
        tol = 1e-12
        done = max(float(meta(f, 'row_err')), float(meta(f, 'col_err'))) <= tol
        s.add('rate_n%s_eps%s' % (n, eps), '%.3g%s' % (rate, '' if done else ' (NOT converged)'),
              '%.3g' % float(meta(f, 'sharp_rate')),
              'n = %s, eps = %s: column-error rate per iteration (theory: sigma_2^2; Birkhoff-Hopf %.3g)'
              % (n, eps, float(meta(f, 'bh_rate'))))
s.write()
