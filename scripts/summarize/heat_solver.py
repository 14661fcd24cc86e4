"""Summary of heat_solver: max error to the exact solution at the last time,
started from the closed-form spectrum and from node values."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Summary, blocks, outdir  # noqa: E402

d = outdir()
s = Summary('heat_solver')
for run, theory, label in (('spectrum', 'wrap only', 'closed-form spectrum'), ('nodes', 'O(dx)', 'node values')):
    last = blocks(os.path.join(d, run + '.dat'))[-1]
    s.add('max_err_%s' % run, '%.1e' % max(abs(r[1] - r[2]) for r in last), theory,
          'max |rho - exact| at the last time, started from the %s' % label)
s.write()
