"""Summary of convex_transfer: test accuracy of convex and Adam heads on the
frozen digits backbone's token features (classes it never saw), mean and half
range over the backbone seeds; solve seconds, the largest certified relative
gap and rank(Z*) (= heads) of each head."""
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Summary, kv, outdir  # noqa: E402

HEADS = [
    ('linear', 'linear (logistic regression, pooled tokens)'),
    ('linear_long', 'linear, 20000 FISTA steps'),
    ('mlp', 'convex gated MLP (pooled tokens, 8 gates)'),
    ('mlp_long', 'convex gated MLP, 20000 FISTA steps'),
    ('sa_lin', 'convex self-attention, linear'),
    ('sa_gated', 'convex self-attention, gated'),
    ('mixer_lin', 'convex MLP-Mixer, linear'),
    ('mixer_gated', 'convex MLP-Mixer, gated'),
    ('fno_lin', 'convex FNO, linear'),
    ('fno_gated', 'convex FNO, gated'),
    ('bfno_lin', 'convex B-FNO (B = 5), linear'),
    ('bfno_gated', 'convex B-FNO (B = 5), gated'),
    ('adam_sa_lin', 'Adam self-attention, linear'),
    ('adam_sa_gated', 'Adam self-attention, gated'),
    ('adam_mixer_lin', 'Adam MLP-Mixer, linear'),
    ('adam_mixer_gated', 'Adam MLP-Mixer, gated'),
    ('adam_fno_lin', 'Adam FNO, linear'),
    ('adam_fno_gated', 'Adam FNO, gated'),
    ('adam_bfno_lin', 'Adam B-FNO, linear'),
    ('adam_bfno_gated', 'Adam B-FNO, gated'),
]
SEEDS = (1, 2, 3)


def seconds(v):
    """Tenths below 10 s, whole seconds above (a loaded machine)."""
    return '%.0f' % v if v >= 10 else '%.1f' % v


def gap(v):
    """0.29, 0.013, 2.8e-4, 1e-6."""
    if v >= 1e-3:
        return '%.2g' % v
    m, e = ('%.1e' % v).split('e')
    m = m.rstrip('0').rstrip('.')
    return '%se%d' % (m, int(e))


def rank(v):
    return ('%.1f' % v).rstrip('0').rstrip('.')


d = outdir()
runs = {}
for h, _ in HEADS:
    runs[h] = [kv(os.path.join(d, 's%d' % k, h, 'summary.txt')) for k in SEEDS
               if os.path.exists(os.path.join(d, 's%d' % k, h, 'summary.txt'))]
    if not runs[h]:
        sys.exit('%s: no summary.txt of head %s' % (d, h))


def acc(h):
    a = [float(r['test_accuracy']) for r in runs[h]]
    return sum(a) / len(a), (max(a) - min(a)) / 2


best = max((h for h, _ in HEADS), key=lambda h: acc(h)[0])
s = Summary('convex_transfer')
s.add('seeds', '%d' % min(len(runs[h]) for h, _ in HEADS), '-', 'backbone seeds per head')
for h, what in HEADS:
    m, half = acc(h)
    text = '%.3f ± %.3f' % (m, half)
    s.add('acc_' + h, '**%s**' % text if h == best else text, '-',
          '%s: test accuracy on the unseen classes, mean ± half range over seeds%s'
          % (what, ' (best head)' if h == best else ''))
    s.add('sec_' + h, seconds(sum(float(r['seconds']) for r in runs[h]) / len(runs[h])), '-',
          '%s: solve seconds, mean (loaded shared machine)' % what)
    if not h.startswith('adam_'):
        s.add('gap_' + h, gap(max(float(r['gap']) for r in runs[h])), '-',
              '%s: largest certified relative duality gap at the stop' % what)
        s.add('rank_' + h, rank(sum(float(r['rank']) for r in runs[h]) / len(runs[h])), '-',
              '%s: rank(Z*) = heads, mean' % what)
# linear FNO averaged over tokens is a linear function of the token mean:
# it can match, not beat, the linear model (only the per-token loss differs)
s.add('fno_lin_minus_linear', '%+.3f' % (acc('fno_lin')[0] - acc('linear')[0]), '~ 0',
      'linear FNO minus the linear model: test accuracy (the same function class after pooling)')
s.write()
