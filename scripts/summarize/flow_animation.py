"""Summary of flow_animation: distance of each token mean at T from
exp(T W_V) m(0) (W_V = -0.3 I + J)."""
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Summary, outdir, table  # noqa: E402

d = outdir()
s = Summary('flow_animation')
for run, theory in (('sinkhorn', '0'), ('softmax', '-')):
    obs = table(os.path.join(d, run + '.obs'))
    x0, y0 = obs[0][1], obs[0][2]
    dev = 0.0
    for r in obs:
        t = r[0]
        ex = math.exp(-0.3 * t) * (math.cos(t) * x0 - math.sin(t) * y0)
        ey = math.exp(-0.3 * t) * (math.sin(t) * x0 + math.cos(t) * y0)
        dev = max(dev, math.hypot(r[1] - ex, r[2] - ey))
    s.add('mean_dev_%s' % run, '%.1e' % dev, theory,
          '%s: max over t <= %g of |m(t) - exp(t W_V) m(0)|' % (run, obs[-1][0]))
s.write()
