"""Summary of a training experiment (train_digits, train_pointclouds): final
test accuracy per model over seeds 1-3, and the Transformer's column-sum
spread (colsum_std, null control) at selected epochs."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Summary, mean_sd, outdir, table  # noqa: E402
import train_runs  # noqa: E402

MODELS = [('tf', 'Transformer'), ('sk3', 'Sinkformer n_it = 3'),
          ('sk5', 'Sinkformer n_it = 5'), ('sk9', 'Sinkformer n_it = 9')]
EPOCHS = [0, 1, 5, 10, 20, 30]


def main(name):
    d = outdir()
    s = Summary(name)
    tf1 = table(os.path.join(d, 'tf_s1', 'epochs.dat'))
    s.add('epochs', '%d' % int(tf1[-1][0]), '-', 'epochs trained')
    finals, per_model = {}, {}
    for tag, label in MODELS:
        runs = [table(os.path.join(d, '%s_s%d' % (tag, k), 'epochs.dat')) for k in (1, 2, 3)]
        acc = [r[-1][4] for r in runs]
        finals[tag] = acc
        per_model[tag] = dict(enumerate(runs, 1))
        m, sd = mean_sd(acc)
        s.add('acc_%s' % tag, '%.3f +- %.3f' % (m, sd), '-', '%s: final test accuracy, mean +- sd over seeds 1-3' % label)
        s.add('acc_%s_seeds' % tag, ' '.join('%.3f' % a for a in acc), '-', '%s: final test accuracy of seeds 1, 2, 3' % label)
        s.add('acc_%s_min' % tag, '%.3f' % min(acc), '-', '%s: lowest seed' % label)
        s.add('acc_%s_max' % tag, '%.3f' % max(acc), '-', '%s: highest seed' % label)
        if tag == 'tf':
            for k, r in enumerate(runs, 1):
                for e in EPOCHS:
                    if e < len(r):
                        s.add('colsum_s%d_e%d' % (k, e), '%.3f (%.3f)' % (r[e][5], r[e][7]), '-',
                              'Transformer seed %d, epoch %d: colsum_std (null control)' % (k, e))
    tf, sk = finals['tf'], finals['sk3'] + finals['sk5'] + finals['sk9']
    s.add('gap_sk_tf', '%+.3f' % (sum(sk) / len(sk) - sum(tf) / len(tf)), '-',
          'mean accuracy of the 9 Sinkformer runs minus that of the 3 Transformer runs')
    s.add('sk_range', '%.3f-%.3f' % (min(sk), max(sk)), '-', 'Sinkformer runs: lowest-highest final accuracy')
    s.add('tf_range', '%.3f-%.3f' % (min(tf), max(tf)), '-', 'Transformer runs: lowest-highest final accuracy')
    s.add('ranges', 'overlap' if max(sk) >= min(tf) and max(tf) >= min(sk) else 'do not overlap', '-',
          'whether the Sinkformer and Transformer accuracy ranges overlap')
    train_runs.transformer(s, per_model['tf'])
    train_runs.sinkformer(s, {tag: per_model[tag] for tag in per_model if tag != 'tf'})
    s.write()
