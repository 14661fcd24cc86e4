"""Summary of gradflow_energy: the gradient-flow identity dF/dt = -(1/n) sum |T|^2
along both flows, and the Jacobian asymmetry."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Summary, outdir, table  # noqa: E402

d = outdir()
e = table(os.path.join(d, 'energy.dat'))
rel = lambda a, b: abs(a - b) / abs(b)  # noqa: E731
s = Summary('gradflow_energy')
s.add('rate_err_sinkhorn', '%.1e' % max(rel(r[2], r[3]) for r in e), '0',
      'Sinkhorn: max relative difference of dF/dt and -(1/n) sum |T_i|^2')
dev = [rel(r[5], r[6]) for r in e]
s.add('rate_err_softmax', '%.2f-%.2f' % (min(dev), max(dev)), '-',
      'SoftMax: relative difference of dF/dt and -(1/n) sum |T_i|^2 (no gradient flow)')
j = table(os.path.join(d, 'jacobian.dat'))
for col, key, theory, label in ((1, 'asym_sinkhorn', '0', 'Sinkhorn, W_V = A/eps'), (2, 'asym_softmax', '-', 'SoftMax'),
                                (3, 'asym_skew', '-', 'Sinkhorn, skewed W_V')):
    v = [r[col] for r in j]
    s.add(key, '%.2g-%.2g' % (min(v), max(v)), theory, 'Jacobian asymmetry |J - J^T|/|J|, %s, n = %d-%d' % (label, j[0][0], j[-1][0]))
s.write()
