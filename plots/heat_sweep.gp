# Heat-diffusion limit: error of the Sinkhorn flow against the heat equation
# as n grows and eps, h shrink. Reads out/heat_sweep/{n,eps,dt}/sweep.dat
# (experiments/heat_sweep.ini), writes out/figures/heat_sweep.png and .pdf.
# sweep.dat block 1 (means over seeds): 1 value, 2 mean_rel_inc_err,
# 3 mean_abs_rel_inc_err, 4 mean_l1, 5 mean_w (sliced W2), 6 mf_rel_inc_err
# (n -> infinity at this eps: the O(eps) bias), 7 mean_abs_delta_inc.
dir = 'out/heat_sweep/'
set fit quiet
set fit logfile '/dev/null'
# log-log least squares fits y = exp(a) x^b (before any range is set)
h0 = 0.003125
f = dir.'n/sweep.dat'
fit a1 + b1*x f index 1 using (log($1)):(log(-$2 + $6)) via a1, b1
fit a2 + b2*x f index 1 using (log($1)):(log($4)) via a2, b2
fit a3 + b3*x f index 1 using (log($1)):(log($5)) via a3, b3
f = dir.'eps/sweep.dat'
fit a4 + b4*x f index 1 using (log($1)):(log(-$6)) via a4, b4
f = dir.'dt/sweep.dat'
fit a5 + b5*x f index 1 every ::1 using (log($1 - h0)):(log($7)) via a5, b5
do for [out in 'png pdf'] {
  if (out eq 'png') {
    set terminal pngcairo size 1500,560 font 'Sans,11'
  } else {
    set terminal pdfcairo size 12in,4.5in font 'Sans,9'
  }
  set output 'out/figures/heat_sweep.'.out
  set multiplot layout 1,3 title "Sinkhorn attention flow vs the heat equation: final-time error (T = 0.5, tokens drawn from N(0, I) in 2-D, L2 scores; means over 2 seeds)\n{/*0.85 shortfall = 1 - (var(T) - var(0)) / 2T; lines: least-squares fits in log-log, slope in the legend; n → ∞: the exact mean-field shortfall at that ε}" font ',13'
  set grid
  set logscale xy
  set format y '%g'

  # ---- (a) against n ----
  f = dir.'n/sweep.dat'
  set title '(a) against n (ε = 0.05, h = 0.005)'
  set xlabel 'number of tokens n'
  set ylabel 'error'
  set xrange [80:1000]
  set xtics (100, 200, 400, 800)
  set yrange [0.004:5]
  set ytics (0.01, 0.03, 0.1, 0.3)
  set key top right Left reverse font ',9' samplen 2
  plot f index 1 using 1:(-$2) with points pt 7 ps 1.3 lc rgb '#1f77b4' title 'variance shortfall', \
       f index 1 using 1:(-$2 + $6) with points pt 6 ps 1.3 lc rgb '#08519c' title 'its finite-n part (minus the n → ∞ shortfall)', \
       exp(a1) * x**b1 with lines lc rgb '#08519c' title sprintf('  fit: slope %.2f', b1), \
       f index 1 using 1:(-$6) with lines dt 2 lc rgb '#6baed6' title 'n → ∞ shortfall (O(ε) bias)', \
       f index 1 using 1:4 with points pt 5 ps 1.2 lc rgb '#d62728' title 'L1(KDE, PDE smoothed alike)', \
       exp(a2) * x**b2 with lines lc rgb '#d62728' title sprintf('  fit: slope %.2f', b2), \
       f index 1 using 1:5 with points pt 9 ps 1.3 lc rgb '#2ca02c' title 'sliced W_2(cloud, PDE)', \
       exp(a3) * x**b3 with lines lc rgb '#2ca02c' title sprintf('  fit: slope %.2f', b3)

  # ---- (b) against eps ----
  f = dir.'eps/sweep.dat'
  set title '(b) against ε (n = 400, h = 0.005)'
  set xlabel 'kernel bandwidth ε'
  set xrange [0.02:0.25]
  set xtics (0.025, 0.05, 0.1, 0.2)
  set ytics autofreq
  set key top right Left reverse font ',9' samplen 2
  set yrange [0.003:2]
  plot f index 1 using 1:(-$2) with linespoints pt 7 ps 1.3 lc rgb '#1f77b4' title 'variance shortfall (n = 400)', \
       f index 1 using 1:(-$6) with points pt 6 ps 1.3 lc rgb '#6baed6' title 'n → ∞ shortfall: the O(ε) bias', \
       exp(a4) * x**b4 with lines lc rgb '#6baed6' title sprintf('  fit: slope %.2f', b4), \
       f index 1 using 1:4 with linespoints pt 5 ps 1.2 lc rgb '#d62728' title 'L1(KDE, PDE)', \
       f index 1 using 1:5 with linespoints pt 9 ps 1.3 lc rgb '#2ca02c' title 'sliced W_2(cloud, PDE)'

  # ---- (c) against h ----
  f = dir.'dt/sweep.dat'
  set title '(c) against the step h (n = 400, ε = 0.05)'
  set xlabel 'h - h_0  (h_0 = 0.003125, the finest step)'
  set xrange [0.002:0.15]
  set xtics autofreq
  set yrange [0.0005:1]
  set key top left Left reverse font ',9'
  plot f index 1 every ::1 using ($1 - h0):7 with points pt 7 ps 1.3 lc rgb '#9467bd' title '|increment(h) - increment(h_0)|, same clouds', \
       exp(a5) * x**b5 with lines lc rgb '#9467bd' title sprintf('  fit: slope %.2f (Euler, order 1)', b5), \
       f index 1 every ::1 using ($1 - h0):(-$2) with linespoints pt 6 ps 1.2 lc rgb '#1f77b4' title 'variance shortfall (n = 400)'
  unset multiplot
}
