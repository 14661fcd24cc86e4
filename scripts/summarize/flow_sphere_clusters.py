"""Summary of flow_sphere_clusters: clusters left at T, and the first merge
time of USA against its time scale n e^-beta."""
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Summary, outdir, table  # noqa: E402

d = outdir()
s = Summary('flow_sphere_clusters')
CL = 8  # clusters column (0-based) for d = 3
for kind in ('sa', 'usa'):
    s.add('clusters_%s' % kind, ' '.join('%d' % table(os.path.join(d, '%s_beta%d.obs' % (kind, b)))[-1][CL] for b in (1, 4, 9)),
          '-', '%s: clusters at t = 30 for beta = 1, 4, 9' % kind.upper())
for b in (1, 4, 9):
    obs = table(os.path.join(d, 'usa_beta%d.obs' % b))
    if b == 9:
        obs = table(os.path.join(d, 'usa_beta9_early.obs')) + obs
    first = next((r[0] for r in obs if r[CL] < 32), float('nan'))
    s.add('usa_first_merge_beta%d' % b, '%.2g' % first, '%.2g' % (32 * math.exp(-b)),
          'USA, beta = %d: first time with fewer than 32 clusters (theory column: n e^-beta)' % b)
s.write()
