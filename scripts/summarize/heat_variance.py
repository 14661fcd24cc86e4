"""Summary of heat_variance: variance increment at T of each cloud beside the
heat equation's 2 kappa T and the n -> infinity value at this eps."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Summary, outdir, table  # noqa: E402

d = outdir()
s = Summary('heat_variance')
for run, label, theory in (('sinkhorn', 'Sinkhorn, L2 scores (heat, kappa = 1)', '1'),
                           ('softmax', 'SoftMax, L2 scores (kappa = 2)', '2'),
                           ('dot', 'SoftMax, dot scores', '-')):
    last = table(os.path.join(d, run, 'errors.dat'))[-1]
    s.add('inc_%s' % run, '%.3f' % last[5], theory, 'variance increment var(T) - var(0) at T = %g, %s' % (last[0], label))
    if run != 'dot':
        s.add('inc_mf_%s' % run, '%.3f' % last[7], theory, 'n -> infinity increment at this eps, %s' % label)
        s.add('sw2_%s' % run, '%.3g' % last[12], '0', 'sliced W2 to its PDE at T, %s' % label)
s.add('shortfall_sinkhorn', '%.1f %%' % (100 * (1 - table(os.path.join(d, 'sinkhorn', 'errors.dat'))[-1][5])), '0 %',
      'Sinkhorn: 1 - increment / 2T')
s.write()
