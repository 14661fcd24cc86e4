"""Summary of convex_clusters: does the head that dominates a token follow the
token's planted cluster? Purity = fraction of tokens whose dominant head is
the majority head of their cluster (within their own matrix), against the
same purity for cluster labels permuted at random within each matrix (the
null: what the head split alone gives)."""
import os
import random
import sys
from collections import Counter, defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Summary, outdir, table  # noqa: E402


def purity(groups):
    """groups: {matrix: [(cluster, head), ...]}"""
    hit = tot = 0
    for toks in groups.values():
        by = defaultdict(Counter)
        for c, h in toks:
            by[c][h] += 1
        hit += sum(cnt.most_common(1)[0][1] for cnt in by.values())
        tot += len(toks)
    return hit / tot


d = outdir()
rows = table(os.path.join(d, 'clusters.dat'))  # sample token x1 x2 cluster group head1 head2
groups = defaultdict(list)
for r in rows:
    groups[int(r[0])].append((int(r[4]), int(r[5])))
p = purity(groups)
rng = random.Random(1)
null = []
for _ in range(2000):
    shuffled = {}
    for m, toks in groups.items():
        cl = [c for c, _ in toks]
        rng.shuffle(cl)
        shuffled[m] = [(c, h) for c, (_, h) in zip(cl, toks)]
    null.append(purity(shuffled))
null_mean = sum(null) / len(null)
p_value = (1 + sum(1 for v in null if v >= p)) / (1 + len(null))
both = sum(1 for toks in groups.values() if len({h for _, h in toks}) > 1)
h2 = sum(1 for toks in groups.values() for _, h in toks if h == 2)
with open(os.path.join(d, 'summary.txt')) as fp:
    rank = next(line.split()[1] for line in fp if line.startswith('rank '))
s = Summary('convex_clusters')
s.add('rank', rank, '-', 'heads of the certified optimum, rank(Z*)')
s.add('purity', '%.3f' % p, '1', 'tokens whose dominant head is their cluster\'s majority head')
s.add('purity_null', '%.3f' % null_mean, '-', 'the same with cluster labels permuted within each matrix (mean of 2000)')
s.add('p_value', '%.2g' % p_value, '-', 'share of permutations at least as pure')
s.add('head2_tokens', '%d of %d' % (h2, len(rows)), '-', 'tokens dominated by head 2')
s.add('matrices_both_heads', '%d of %d' % (both, len(groups)), '-', 'matrices in which both heads dominate some token')
s.write()
