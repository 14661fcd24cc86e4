"""Summary of flow_rank_collapse: the relative residual after a few layers."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Summary, outdir, table  # noqa: E402

d = outdir()
s = Summary('flow_rank_collapse')
RES = 20  # rank_res column (0-based) for d = 16
for run, layers, theory, label in (('softmax_pure', (3, 4), '-> round-off', 'SoftMax, pure attention'),
                                   ('sinkhorn_pure', (4, 30), '-> round-off', 'Sinkhorn, pure attention'),
                                   ('softmax_skip1', (30,), 'O(1)', 'SoftMax, skip, h = 1'),
                                   ('sinkhorn_skip1', (30,), 'O(1)', 'Sinkhorn, skip, h = 1')):
    obs = table(os.path.join(d, run + '.obs'))
    for l in layers:
        s.add('r_%s_%d' % (run, l), '%.2g' % obs[l][RES], theory, '%s: relative residual after %d layers' % (label, l))
s.write()
