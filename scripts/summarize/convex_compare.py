"""Summary of convex_compare: the certified optimum, and how close Adam gets
with m heads (best of 3 seeds), against rank(Z*)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Summary, kv, outdir  # noqa: E402

d = outdir()
c = kv(os.path.join(d, 'convex', 'summary.txt'))
P = float(c['objective'])
s = Summary('convex_compare')
s.add('P_star', '%.10f' % P, '-', 'certified optimum P* of the convex program')
s.add('rank', c['rank'], '-', 'rank(Z*): heads the optimum needs')
s.add('gap', '%.1e' % float(c['gap']), '<= 1e-11', 'relative duality gap at the stop (certificate)')
s.add('convex_seconds', '%.2f' % float(c['seconds']), '-', 'convex solve time (s), %s FISTA iterations' % c['iterations'])
for m in (1, 2, 3, 4, 8):
    best = min(float(kv(os.path.join(d, 'm%d_s%d' % (m, k), 'summary.txt'))['objective']) for k in (1, 2, 3))
    theory = '> 0 (m < rank)' if m < int(c['rank']) else '-> 0'
    s.add('adam_m%d' % m, '%.1e' % ((best - P) / P), theory,
          'Adam, m = %d heads: best relative suboptimality of 3 seeds after 1500 steps' % m)
s.write()
