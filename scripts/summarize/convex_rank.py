"""Summary of convex_rank: rank(Z*) at the ends of the beta path and where it
meets the teacher's 2 heads."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Summary, kv, outdir  # noqa: E402

BETAS = "1e-4 2e-4 5e-4 1e-3 2e-3 5e-3 1e-2 2e-2 5e-2 0.1 0.2 0.5 1 2".split()
d = outdir()
s = Summary('convex_rank')
for kind in ('linear', 'gated'):
    ranks = [int(kv(os.path.join(d, '%s_%d' % (kind, i), 'summary.txt'))['rank']) for i in range(len(BETAS))]
    s.add('%s_ranks' % kind, ' '.join(map(str, ranks)), 'non-increasing',
          '%s attention: rank(Z*) at beta = %s ... %s' % (kind, BETAS[0], BETAS[-1]))
    two = [b for b, r in zip(BETAS, ranks) if r == 2]
    s.add('%s_beta_rank2' % kind, ', '.join(two) if two else 'none', '-',
          '%s: the betas at which rank(Z*) equals the teacher\'s 2 heads' % kind)
s.write()
