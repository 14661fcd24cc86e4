"""Summary of flow_softmax_vs_sinkhorn: distance of the token mean from
exp(t W_V) m(0) for each case, SoftMax and Sinkhorn."""
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Summary, outdir, table  # noqa: E402

# W_V = a I + b J (J: rotation by 90 degrees), as in the INI file
CASES = {'a': (1.0, 0.0), 'b': (-1.0, 0.0), 'c': (-0.3, 1.0)}
d = outdir()
s = Summary('flow_softmax_vs_sinkhorn')
for case, (a, b) in CASES.items():
    for run, theory in (('sinkhorn', '0'), ('softmax', '-')):
        obs = table(os.path.join(d, '%s_%s.obs' % (run, case)))
        x0, y0 = obs[0][1], obs[0][2]
        dev = 0.0
        for r in obs:
            t = r[0]
            ex = math.exp(a * t) * (math.cos(b * t) * x0 - math.sin(b * t) * y0)
            ey = math.exp(a * t) * (math.sin(b * t) * x0 + math.cos(b * t) * y0)
            dev = max(dev, math.hypot(r[1] - ex, r[2] - ey))
        s.add('mean_dev_%s_%s' % (run, case), '%.1e' % dev, theory,
              'case (%s), %s: max_t |m(t) - exp(t W_V) m(0)|' % (case, run))
s.write()
