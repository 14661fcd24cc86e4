"""Summary of heat_mixture: KDE L1 distance and sliced W2 to the PDE at 0 and T."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Summary, outdir, table  # noqa: E402

d = outdir()
s = Summary('heat_mixture')
for run, label in (('sinkhorn', 'Sinkhorn vs kappa = 1'), ('softmax', 'SoftMax-L2 vs kappa = 2'),
                   ('softmax_k1', 'SoftMax-L2 vs kappa = 1 (control)')):
    e = table(os.path.join(d, run, 'errors.dat'))
    s.add('l1_%s' % run, '%.3f -> %.3f' % (e[0][8], e[-1][8]), '-', '%s: L1(KDE, PDE) from t = 0 to T = %g' % (label, e[-1][0]))
    s.add('sw2_%s' % run, '%.3f -> %.3f' % (e[0][12], e[-1][12]), '-', '%s: sliced W2 from t = 0 to T' % label)
s.write()
