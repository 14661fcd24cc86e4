# Mean-field limit in n: the variance increment of the heat reference case
# (T = 0.5) against n for Sinkhorn and SoftMax-L2 attention, with the exact
# n -> infinity value at this eps (the O(eps) bias below the PDE value) and
# the PDE value, the fitted finite-n law var_inc = mf - c/n^a, and the seconds
# each run took. Reads out/heat_n_limit/{sinkhorn,softmax}_{small,large}/
# sweep.dat and {sinkhorn,softmax}_{xl,xxl}/sweep.dat (experiments/heat_n_limit.ini); block 0 columns: 3 n, 6 var_inc,
# 7 var_inc_pde, 17 seconds, 18 var_inc_mf. Writes
# out/figures/heat_n_limit.png and .pdf.
dir = 'out/heat_n_limit/'
runs(norm) = sprintf("< cd %s && awk 'NF == 19 && $1 !~ /^#/' %s_small/sweep.dat %s_large/sweep.dat %s_xl/sweep.dat %s_xxl/sweep.dat 2>/dev/null", dir, norm, norm, norm, norm)
set fit quiet
set fit logfile '/dev/null'
# finite-n shortfall against the exact mean-field value: mf - var_inc = c / n^a
# (least squares in log-log)
cs = 30.0; as = 1.0; cm = 30.0; am = 1.0
fit log(cs) - as*x runs('sinkhorn') using (log($3)):(log($18 - $6)) via cs, as
fit log(cm) - am*x runs('softmax') using (log($3)):(log($18 - $6)) via cm, am
stats runs('sinkhorn') using 18 name 'MS' nooutput
stats runs('softmax') using 18 name 'MM' nooutput
do for [out in 'png pdf'] {
  if (out eq 'png') {
    set terminal pngcairo size 1500,520 font 'Sans,11'
  } else {
    set terminal pdfcairo size 12in,4.2in font 'Sans,9'
  }
  set output 'out/figures/heat_n_limit.'.out
  set multiplot layout 1,3 title "Heat reference case (x_i drawn from N(0, I), 2-D, L2 scores, ε = 0.05, Euler h = 0.005, T = 0.5): variance increment against n\n{/*0.85 points: runs (3 seeds up to n = 800, 1 beyond); dashed: exact n → ∞ value of the flow at this ε; dotted: PDE; line: fitted mf - c/n^a}" font ',13'
  set grid
  set logscale x
  set xlabel 'number of tokens n'
  set key bottom right
  set title 'Sinkhorn attention (PDE: κ = 1)'
  set ylabel 'var(T) - var(0)'
  set yrange [0.65:1.02]
  plot runs('sinkhorn') using 3:6 with points pt 7 ps 0.8 lc rgb '#1f77b4' title 'runs', \
       MS_mean with lines dt 2 lc rgb 'black' title sprintf('n → ∞: %.4f', MS_mean), \
       1 with lines dt 3 lc rgb 'gray40' title 'PDE: 1', \
       MS_mean - cs/x**as with lines lw 2 lc rgb '#1f77b4' title sprintf('fit: %.1f / n^{%.2f}', cs, as)
  set title 'SoftMax-L2 attention (PDE: κ = 2)'
  set yrange [0.8:2.04]
  plot runs('softmax') using 3:6 with points pt 7 ps 0.8 lc rgb '#d62728' title 'runs', \
       MM_mean with lines dt 2 lc rgb 'black' title sprintf('n → ∞: %.4f', MM_mean), \
       2 with lines dt 3 lc rgb 'gray40' title 'PDE: 2', \
       MM_mean - cm/x**am with lines lw 2 lc rgb '#d62728' title sprintf('fit: %.1f / n^{%.2f}', cm, am)
  set title 'seconds per run (shared, loaded 2-core machine)'
  set autoscale y
  set logscale y
  set ylabel 'seconds'
  set key top left
  plot runs('sinkhorn') using 3:17 with linespoints pt 7 lc rgb '#1f77b4' title 'Sinkhorn', \
       runs('softmax') using 3:17 with linespoints pt 5 lc rgb '#d62728' title 'SoftMax'
  unset multiplot
  unset logscale y
}
