# Shared by plots/train_digits.gp and plots/train_pointclouds.gp (set name,
# task and ntok first). Reads out/<name>/{tf,sk3,sk5,sk9}_s{1,2,3}/,
# writes out/figures/<name>.{png,pdf}: four panels.
#   (a) sorted column sums of the held-out SoftMax attention per epoch (the
#       Sinkformers paper's picture), Transformer, seed 1;
#   (b) their spread (std over columns) beside the row-permuted null control,
#       each seed and the mean, and the row entropy;
#   (c) test accuracy per epoch, Transformer vs Sinkformer n_it = 3, 5, 9;
#   (d) spread of the column sums of the attention each model uses;
#   (e) distance of the Transformer's attention to its Sinkhorn projection,
#       beside the same for the null control;
#   (f) row entropy of the attention each model uses.
dir = 'out/'.name.'/'
tags = "tf sk3 sk5 sk9"
labels = "'Transformer (SoftMax)' 'Sinkformer n_{it} = 3' 'Sinkformer n_{it} = 5' 'Sinkformer n_{it} = 9'"
col(i) = word("#1f77b4 #ff7f0e #2ca02c #d62728", i)
# mean, min and max over the three seeds of column c of epochs.dat (14 columns)
agg(tag, c) = sprintf("< paste %s%s_s1/epochs.dat %s%s_s2/epochs.dat %s%s_s3/epochs.dat | grep -v '^#' | awk '{m=0;lo=1e300;hi=-1e300;for(k=0;k<3;k++){v=$(k*14+%d);m+=v;if(v<lo)lo=v;if(v>hi)hi=v} print $1, m/3, lo, hi}'", dir, tag, dir, tag, dir, tag, c)
nep = int(system("grep -v '^#' ".dir."tf_s1/epochs.dat | wc -l")) - 1
# epochs drawn in panel (a): 0, 1, then every nep/5
step = (nep >= 5 ? int(nep / 5) : 1)
ep(k) = (k == 0 ? 0 : (k == 1 ? 1 : (k - 1) * step))
nshow = 2 + int(nep / step)

do for [term = 1:2] {
  if (term == 1) { set terminal pngcairo size 2000,1000 font ",11"; set output 'out/figures/'.name.'.png' }
  else { set terminal pdfcairo size 20in,10in font ",10"; set output 'out/figures/'.name.'.pdf' }
  set multiplot layout 2,3 title sprintf("Does SoftMax attention drift toward doubly stochastic? %s (held-out data, 3 seeds)", task)
  set grid
  set key inside top left font ",9" opaque box
  set colorbox


  # (a) sorted column sums per epoch
  set title "(a) sorted column sums of the Transformer's attention, one curve per epoch (seed 1)"
  set logscale y
  set xlabel sprintf("column rank (sorted ascending, %d tokens)", ntok)
  set ylabel "column sum (mean over held-out matrices)"
  set xrange [0:ntok - 1]
  set autoscale y
  set palette defined (0 '#fde725', 0.5 '#21918c', 1 '#440154')
  set cbrange [0:nep]
  set cblabel "epoch"
  plot for [k = 0:nshow - 1] dir.'tf_s1/colsums.dat' index ep(k) u 2:3 w lp pt 7 ps 0.4 lw 1.6 lc palette cb ep(k) \
         t (k == 0 || k == nshow - 1 ? sprintf('epoch %d', ep(k)) : ''), \
       dir.'tf_s1/colsums.dat' index nep u 2:4 w l dt 2 lw 1.5 lc rgb 'gray40' t sprintf('null control, epoch %d', nep), \
       1 w l lw 1 lc rgb 'black' dt 3 t 'doubly stochastic (all 1)'
  unset colorbox
  unset logscale y
  unset xrange

  # (b) spread vs null control, each seed
  set title "(b) Transformer: spread of column sums vs the row-permuted null control"
  set xlabel "epoch (0 = before training)"
  set ylabel "std of column sums over columns"
  set y2label "row entropy / log T (mean over seeds)"
  set y2tics
  set ytics nomirror
  set xrange [0:nep]
  set key outside below maxrows 3
  plot for [s = 1:3] dir.sprintf('tf_s%d/epochs.dat', s) u 1:6 w l lw 1 lc rgb col(1) t (s == 1 ? 'colsum\_std, each seed' : ''), \
       for [s = 1:3] dir.sprintf('tf_s%d/epochs.dat', s) u 1:8 w l lw 1 dt 2 lc rgb 'gray40' t (s == 1 ? 'null control (rows permuted), each seed' : ''), \
       agg('tf', 6) u 1:2 w lp pt 7 ps 0.6 lw 3 lc rgb col(1) t 'colsum\_std, mean of 3 seeds', \
       agg('tf', 8) u 1:2 w lp pt 5 ps 0.6 lw 3 dt 2 lc rgb 'gray20' t 'null control, mean', \
       agg('tf', 10) u 1:2 axes x1y2 w l lw 2 dt 4 lc rgb '#9467bd' t 'row entropy (right axis)'
  unset y2tics
  unset y2label
  set ytics mirror

  # (c) accuracy
  set title "(c) test accuracy: Transformer vs Sinkformer (mean, min-max band)"
  set ylabel "test accuracy"
  set yrange [0:1]
  set key outside below maxrows 2
  plot for [i = 1:4] agg(word(tags, i), 5) u 1:3:4 w filledcurves lc rgb col(i) fs transparent solid 0.12 noborder t '', \
       for [i = 1:4] agg(word(tags, i), 5) u 1:2 w lp pt 7 ps 0.5 lw 2 lc rgb col(i) t word(labels, i)
  set autoscale y

  # (d) spread of the attention each model uses
  set title "(d) std of column sums of the attention each model uses (mean over seeds)"
  set ylabel "std of column sums over columns"
  set key outside below maxrows 3
  plot for [i = 1:4] agg(word(tags, i), 6) u 1:2 w lp pt 7 ps 0.5 lw 2 lc rgb col(i) t word(labels, i), \
       for [i = 1:4] agg(word(tags, i), 8) u 1:2 w l dt 2 lw 1 lc rgb col(i) t (i == 1 ? 'dashed: null controls' : '')

  # (e) distance to the Sinkhorn projection
  set title "(e) Transformer: distance to the Sinkhorn projection vs null control"
  set ylabel "(1/T) sum_{ij} |A - P|_{ij}, P = Sinkhorn(A)"
  set key outside below maxrows 2
  plot for [s = 1:3] dir.sprintf('tf_s%d/epochs.dat', s) u 1:13 w l lw 1 lc rgb col(1) t (s == 1 ? 'attention, each seed' : ''), \
       for [s = 1:3] dir.sprintf('tf_s%d/epochs.dat', s) u 1:14 w l lw 1 dt 2 lc rgb 'gray40' t (s == 1 ? 'null control, each seed' : ''), \
       agg('tf', 13) u 1:2 w lp pt 7 ps 0.6 lw 3 lc rgb col(1) t 'attention, mean', \
       agg('tf', 14) u 1:2 w lp pt 5 ps 0.6 lw 3 dt 2 lc rgb 'gray20' t 'null control, mean'

  # (f) row entropy per model
  set title "(f) row entropy of the attention each model uses (mean over seeds)"
  set ylabel "row entropy / log T (1 = uniform rows)"
  set key outside below maxrows 2
  plot for [i = 1:4] agg(word(tags, i), 10) u 1:2 w lp pt 7 ps 0.5 lw 2 lc rgb col(i) t word(labels, i)
  unset xrange
  unset multiplot
}
