"""Summary of convex_gap: iterations to the 1e-12 relative gap per variant."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Summary, kv, outdir  # noqa: E402

d = outdir()
s = Summary('convex_gap')
for run, label in (('linear_squared', 'linear, squared'), ('linear_ce', 'linear, cross-entropy'),
                   ('gated_squared', 'gated-ReLU, squared'), ('gated_ce', 'gated-ReLU, cross-entropy'),
                   ('linear_squared_norestart', 'linear, squared, no restart'),
                   ('linear_squared_noaccel', 'linear, squared, ISTA (no momentum)')):
    c = kv(os.path.join(d, run, 'summary.txt'))
    ok = c['converged'] == '1'
    s.add('iters_%s' % run, '%s%s' % (c['iterations'], '' if ok else ' (not converged)'), '-',
          '%s: iterations to relative gap 1e-12 (final gap %.1e)' % (label, float(c['gap'])))
s.write()
