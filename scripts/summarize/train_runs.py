"""Per-run quantities behind the README's "What we find" bullets of the
training experiments (train_digits, train_pointclouds), from every run's
epochs.dat: colsum_std and its null control, row entropy and the distance to
the Sinkhorn projection, per model, seed and epoch. Called by train.py (a helper, not an experiment: there is no out/train_runs)."""

# columns of epochs.dat (see README, 'Outputs')
TEST_ACC, COLSUM, NULL, ENTROPY, SK_DIST, NULL_SK_DIST = 4, 5, 7, 9, 12, 13
MID_EPOCH = 20  # the epoch the PyTorch numbers end at


def span(values, fmt='%.3f'):
    """'lo-hi' of values, one number when they agree, 'none' when empty."""
    if not values:
        return 'none'
    lo, hi = fmt % min(values), fmt % max(values)
    return lo if lo == hi else '%s-%s' % (lo, hi)


def mean(values):
    return sum(values) / len(values)


def epoch_ranges(epochs):
    """[3, 4, 5, 9] -> '3-5, 9'."""
    parts, start = [], None
    for i, e in enumerate(epochs):
        if start is None:
            start = e
        if i + 1 == len(epochs) or epochs[i + 1] != e + 1:
            parts.append('%d' % e if start == e else '%d-%d' % (start, e))
            start = None
    return ', '.join(parts)


def seeds_text(seeds):
    if not seeds:
        return 'none'
    if len(seeds) == 1:
        return 'seed %d' % seeds[0]
    return 'seeds ' + ', '.join('%d' % k for k in seeds[:-1]) + ' and %d' % seeds[-1]


def falls_back(run):
    """Whether colsum_std at the last epoch is below its epoch-1 value (the
    jump of the first epoch is undone, 'falls'); on digits these are the runs
    that learn, the others ('stays') lock their attention onto a few tokens."""
    return len(run) > 2 and run[-1][COLSUM] < run[1][COLSUM]


def transformer(s, runs):
    """runs: {seed: rows of epochs.dat} of the Transformer."""
    seeds = sorted(runs)
    last = min(len(runs[k]) for k in seeds) - 1
    mid = min(MID_EPOCH, last)
    falls = [k for k in seeds if falls_back(runs[k])]
    stays = [k for k in seeds if k not in falls]
    s.add('tf_mid_epoch', '%d' % mid, '-', 'epoch compared with the issue (%d, or the last one)' % MID_EPOCH)
    s.add('tf_last_epoch', '%d' % last, '-', 'last epoch of the Transformer runs')
    s.add('tf_falls_seeds', seeds_text(falls), '-',
          'Transformer seeds whose colsum_std at the last epoch is below that of epoch 1')
    s.add('tf_falls_n', '%d' % len(falls), '-', 'number of such runs')
    s.add('tf_stays_seeds', seeds_text(stays), '-', 'the other Transformer seeds (spread never falls back)')
    s.add('tf_stays_n', '%d' % len(stays), '-', 'number of such runs')
    for group, ks in (('falls', falls), ('stays', stays), ('all', seeds)):
        rows = [runs[k] for k in ks]
        for e, tag in ((0, 'e0'), (1, 'e1'), (mid, 'emid'), (last, 'elast')):
            if last < 1 and e > 0:
                continue
            s.add('tf_%s_colsum_%s' % (group, tag), span([r[e][COLSUM] for r in rows]), '-',
                  'Transformer %s runs: colsum_std at epoch %d, lowest-highest' % (group, e))
            s.add('tf_%s_null_%s' % (group, tag), span([r[e][NULL] for r in rows]), '-',
                  'Transformer %s runs: null-control colsum_std at epoch %d' % (group, e))
            s.add('tf_%s_entropy_%s' % (group, tag), span([r[e][ENTROPY] for r in rows]), '-',
                  'Transformer %s runs: row entropy / log T at epoch %d' % (group, e))
            s.add('tf_%s_skdist_%s' % (group, tag), span([r[e][SK_DIST] for r in rows]), '-',
                  'Transformer %s runs: distance to the Sinkhorn projection at epoch %d' % (group, e))
            s.add('tf_%s_null_skdist_%s' % (group, tag), span([r[e][NULL_SK_DIST] for r in rows]), '-',
                  'Transformer %s runs: the same for the null control' % group)
        s.add('tf_%s_acc' % group, span([r[-1][TEST_ACC] for r in rows]), '-',
              'Transformer %s runs: final test accuracy' % group)
    above = [k for k in falls if all(runs[k][e][COLSUM] >= runs[k][e][NULL] for e in range(1, mid + 1))]
    s.add('tf_falls_above_mid_n', '%d' % len(above), '-',
          'falling-back runs whose colsum_std is at or above the null control at every epoch 1-%d' % mid)
    below = []
    for k in falls:
        r = runs[k]
        es = [e for e in range(1, last + 1) if r[e][COLSUM] < r[e][NULL]]
        if es:
            below.append('seed %d at epoch%s %s (epoch %d: %.3f vs %.3f; distance to the Sinkhorn '
                         'projection %.3f vs %.3f)' % (k, 's' if len(es) > 1 else '', epoch_ranges(es), last,
                                                      r[last][COLSUM], r[last][NULL],
                                                      r[last][SK_DIST], r[last][NULL_SK_DIST]))
    both = [k for k in falls if runs[k][last][COLSUM] < runs[k][last][NULL]
            and runs[k][last][SK_DIST] < runs[k][last][NULL_SK_DIST]]
    s.add('tf_falls_both_below_n', '%d' % len(both), '-',
          'falling-back runs whose colsum_std and distance to the Sinkhorn projection are both below '
          'the null control at the last epoch')
    first = [min(e for e in range(1, last + 1) if runs[k][e][COLSUM] < runs[k][e][NULL]) for k in both]
    s.add('tf_falls_both_first', span(first, '%d'), '-',
          'those runs: first epoch with colsum_std below the null')
    s.add('tf_falls_below_n', '%d' % len(below), '-',
          'falling-back runs whose colsum_std goes below the null control at some epoch')
    s.add('tf_falls_below', '; '.join(below) if below else 'none', '-',
          'those runs: the epochs below the null, values at the last epoch')
    peak = [max(range(1, last + 1), key=lambda e: runs[k][e][COLSUM]) if last >= 1 else 0 for k in seeds]
    s.add('tf_peak_colsum', span([runs[k][e][COLSUM] for k, e in zip(seeds, peak)]), '-',
          'Transformer runs: largest colsum_std over the epochs, lowest-highest over seeds')
    s.add('tf_peak_epoch', span(peak, '%d'), '-', 'epochs at which those largest values occur')


def sinkformer(s, runs):
    """runs: {tag: {seed: rows}} of the Sinkformers (all n_it)."""
    allruns = [(tag, k, r) for tag in sorted(runs) for k, r in sorted(runs[tag].items())]
    last = min(len(r) for _, _, r in allruns) - 1
    s.add('sk_last_epoch', '%d' % last, '-', 'last epoch of the Sinkformer runs')
    s.add('sk_colsum_e0', span([r[0][COLSUM] for _, _, r in allruns]), '-',
          'Sinkformer runs: colsum_std before training')
    for col, key, what in ((COLSUM, 'colsum', 'colsum_std'), (NULL, 'null', 'null-control colsum_std'),
                           (ENTROPY, 'entropy', 'row entropy / log T'),
                           (SK_DIST, 'skdist', 'distance to the Sinkhorn projection')):
        s.add('sk_%s_last' % key, span([r[last][col] for _, _, r in allruns]), '-',
              'Sinkformer runs: %s at the last epoch, lowest-highest over runs' % what)
        s.add('sk_%s_last_means' % key,
              span([mean([r[last][col] for r in runs[tag].values()]) for tag in runs]), '-',
              'Sinkformer: %s at the last epoch, mean over seeds, lowest-highest over n_it' % what)
    above = [(tag, k) for tag, k, r in allruns if r[last][COLSUM] > r[last][NULL]]
    s.add('sk_above_null_n', '%d' % len(above), '-',
          'Sinkformer runs whose last-epoch colsum_std is above their null control')
    s.add('sk_n', '%d' % len(allruns), '-', 'Sinkformer runs')
    rest = ['n_it = %s seed %d (%.3f vs %.3f)' % (tag[2:], k, r[last][COLSUM], r[last][NULL])
            for tag, k, r in allruns if (tag, k) not in above]
    s.add('sk_below_null', '; '.join(rest) if rest else 'none', '-',
          'Sinkformer runs at or below their null control at the last epoch')
