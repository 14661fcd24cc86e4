# Shared by plots/train_digits.gp and plots/train_pointclouds.gp (set name,
# task and ntok first). Reads out/<name>/{tf,sk3,sk5,sk9}_s{1,2,3}/,
# writes out/figures/<name>.{png,pdf}: four panels.
#   (a) sorted column sums of the held-out SoftMax attention per epoch (the
#       Sinkformers paper's picture), Transformer, seed 1;
#   (b) their spread (std over columns) beside the row-permuted null control,
#       each seed on its own (a stuck seed and learning seeds are different
#       runs: no mean across them);
#   (c) test accuracy per epoch, Transformer vs Sinkformer n_it = 3, 5, 9;
#   (d) spread of the column sums of the attention each model uses;
#   (e) distance of the Transformer's attention to its Sinkhorn projection,
#       beside the same for the null control;
#   (f) row entropy of the attention each model uses.
dir = 'out/'.name.'/'
tags = "tf sk3 sk5 sk9"
labels = "'Transformer (SoftMax)' 'Sinkformer n_{it} = 3' 'Sinkformer n_{it} = 5' 'Sinkformer n_{it} = 9'"
col(i) = word("#1f77b4 #ff7f0e #2ca02c #d62728", i)
# median, min and max over the three seeds of column c of epochs.dat (14
# columns): the median, not the mean, so that one stuck seed does not drag a
# curve that no run follows
agg(tag, c) = sprintf("< paste %s%s_s1/epochs.dat %s%s_s2/epochs.dat %s%s_s3/epochs.dat | grep -v '^#' | awk '{a=$(%d);b=$(14+%d);c=$(28+%d);lo=a;hi=a;if(b<lo)lo=b;if(c<lo)lo=c;if(b>hi)hi=b;if(c>hi)hi=c; print $1, a+b+c-lo-hi, lo, hi}'", dir, tag, dir, tag, dir, tag, c, c, c)
seedcol(s) = word("#08306b #4292c6 #9ecae1", s)
# final test accuracy of Transformer seed s (for the key)
facc(s) = real(system(sprintf("grep -v '^#' %stf_s%d/epochs.dat | tail -n 1 | awk '{print $5}'", dir, s)))
nep = int(system("grep -v '^#' ".dir."tf_s1/epochs.dat | wc -l")) - 1
# epochs drawn in panel (a): 0, 1, then every nep/5
step = (nep >= 5 ? int(nep / 5) : 1)
ep(k) = (k == 0 ? 0 : (k == 1 ? 1 : (k - 1) * step))
nshow = 2 + int(nep / step)

do for [term = 1:2] {
  if (term == 1) { set terminal pngcairo size 2000,1250 font ",12"; set output 'out/figures/'.name.'.png' }
  else { set terminal pdfcairo size 20in,12.5in font ",11"; set output 'out/figures/'.name.'.pdf' }
  set multiplot layout 2,3 title sprintf("Does SoftMax attention drift toward doubly stochastic? %s (held-out data, 3 seeds)", task)
  set grid
  set key inside top left font ",9" opaque box
  set colorbox


  # (a) sorted column sums per epoch
  set title sprintf("(a) Transformer (seed 1): sorted column sums, epochs 0, 1, %d, %d, ...", step, 2*step)
  set xlabel sprintf("column rank (sorted ascending, %d tokens)", ntok)
  set ylabel "column sum c_j (mean over held-out matrices)"
  set xrange [0:ntok - 1]
  set autoscale y
  # log axis only where the sums span decades (100 tokens, mean pooling)
  if (exists("colsum_log") && colsum_log) { set logscale y } else { unset logscale y }
  set key inside top left font ",10" opaque box
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
  set bmargin 9
  set key outside below center horizontal font ",10" 

  # (b) spread vs null control, each seed
  set title "(b) Transformer: spread of column sums vs the null control"
  set xlabel "epoch (0 = before training)" offset 0,0.3
  set ylabel "s = std over columns of the column sums"
  set xrange [0:nep]
  if (nep <= 10) { set xtics 1 } else { set xtics autofreq }
  set key maxrows 3
  plot for [s = 1:3] dir.sprintf('tf_s%d/epochs.dat', s) u 1:6 w lp pt 7 ps 0.5 lw 2 lc rgb seedcol(s) \
         t sprintf('seed %d (final accuracy %.2f)', s, facc(s)), \
       for [s = 1:3] dir.sprintf('tf_s%d/epochs.dat', s) u 1:8 w l lw 1.5 dt 2 lc rgb seedcol(s) \
         t sprintf('seed %d: null control (rows permuted)', s)

  # (c) accuracy
  set title "(c) test accuracy (median of 3 seeds, min-max band)"
  set ylabel "test accuracy"
  set yrange [0:1]
  set key maxrows 2
  plot for [i = 1:4] agg(word(tags, i), 5) u 1:3:4 w filledcurves lc rgb col(i) fs transparent solid 0.12 noborder t '', \
       for [i = 1:4] agg(word(tags, i), 5) u 1:2 w lp pt 7 ps 0.5 lw 2 lc rgb col(i) t word(labels, i)
  set autoscale y

  # (d) spread of the attention each model uses
  set title "(d) spread of the column sums, each model (median of 3 seeds)"
  set ylabel "s = std over columns of the column sums"
  set key maxrows 3
  plot for [i = 1:4] agg(word(tags, i), 6) u 1:2 w lp pt 7 ps 0.5 lw 2 lc rgb col(i) t word(labels, i), \
       for [i = 1:4] agg(word(tags, i), 8) u 1:2 w l dt 2 lw 1 lc rgb col(i) t (i == 1 ? 'dashed: their null controls' : '')

  # (e) distance to the Sinkhorn projection
  set title "(e) Transformer: distance to its Sinkhorn projection"
  set ylabel "D = (1/T) Σ_{ij} |A - P|_{ij},  P = Sinkhorn(A)"
  set key maxrows 3
  plot for [s = 1:3] dir.sprintf('tf_s%d/epochs.dat', s) u 1:13 w lp pt 7 ps 0.5 lw 2 lc rgb seedcol(s) t sprintf('seed %d', s), \
       for [s = 1:3] dir.sprintf('tf_s%d/epochs.dat', s) u 1:14 w l lw 1.5 dt 2 lc rgb seedcol(s) t sprintf('seed %d: null control', s)

  # (f) row entropy per model
  set title "(f) row entropy, each model (median of 3 seeds)"
  set ylabel "H / log T (row entropy; 1 = uniform rows)"
  set key maxrows 2
  plot for [i = 1:4] agg(word(tags, i), 10) u 1:2 w lp pt 7 ps 0.5 lw 2 lc rgb col(i) t word(labels, i)
  unset xrange
  unset multiplot
}
