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
# theory's rates, anchored at the last point of each fitted set
stats dir.'n/sweep.dat' index 1 using 1 nooutput prefix 'NN'
nmax = NN_max
do for [out in 'png pdf'] {
  if (out eq 'png') {
    set terminal pngcairo size 1500,1000 font 'Sans,11'
  } else {
    set terminal pdfcairo size 12in,8in font 'Sans,9'
  }
  set output 'out/figures/heat_sweep.'.out
  set multiplot layout 2,3 title "Sinkhorn attention flow vs the heat equation: final-time error (T = 0.5, tokens drawn from N(0, I) in 2-D, L2 scores; means over 2 seeds)\n{/*0.85 solid lines: least-squares fits in log-log (slope in the key); dotted: the theory's rate; n → ∞: the exact mean-field value at that ε}" font ',13'
  set grid
  set logscale xy
  set format y '%g'
  set key top right Left reverse font ',9' samplen 2 box opaque

  # ---- row 1: the variance ----
  f = dir.'n/sweep.dat'
  set title '(a) variance shortfall against n (ε = 0.05, h = 0.005)'
  set xlabel 'number of tokens n'
  set ylabel 'shortfall δ = 1 - (var(T) - var(0)) / 2T'
  set xrange [80:1000]
  set xtics (100, 200, 400, 800)
  set yrange [0.003:3]
  set ytics (0.003, 0.01, 0.03, 0.1, 0.3, 1, 3)
  plot f index 1 using 1:(-$2) with points pt 7 ps 1.3 lc rgb '#1f77b4' title 'δ, measured', \
       f index 1 using 1:(-$2 + $6) with points pt 6 ps 1.3 lc rgb '#08519c' title 'δ - δ_∞ (finite-n part)', \
       exp(a1) * x**b1 with lines lc rgb '#08519c' title sprintf('fit: slope %.2f', b1), \
       exp(a1) * nmax**b1 * (x / nmax)**(-1) with lines dt 3 lw 2 lc rgb 'black' title 'theory: n^{-1}', \
       f index 1 using 1:(-$6) with lines dt 2 lc rgb '#6baed6' title 'δ_∞ (n → ∞, the O(ε) bias)'

  f = dir.'eps/sweep.dat'
  set title '(b) variance shortfall against ε (n = 400, h = 0.005)'
  set xlabel 'kernel bandwidth ε'
  set xrange [0.02:0.25]
  set xtics (0.025, 0.05, 0.1, 0.2)
  set yrange [0.003:3]
  plot f index 1 using 1:(-$2) with linespoints pt 7 ps 1.3 lc rgb '#1f77b4' title 'δ, measured (n = 400)', \
       f index 1 using 1:(-$6) with points pt 6 ps 1.3 lc rgb '#6baed6' title 'δ_∞ (n → ∞): the O(ε) bias', \
       exp(a4) * x**b4 with lines lc rgb '#6baed6' title sprintf('fit to δ_∞: slope %.2f', b4), \
       exp(a4) * 0.2**b4 * (x / 0.2) with lines dt 3 lw 2 lc rgb 'black' title 'theory: ε^1'

  f = dir.'dt/sweep.dat'
  set title '(c) time-stepping error against h (n = 400, ε = 0.05)'
  set xlabel 'Euler step h'
  set ylabel 'e_h = |Δvar(h) - Δvar(h_0)|,  h_0 = 0.003125'
  set ytics autofreq
  set xrange [0.003:0.15]
  set xtics autofreq
  set yrange [0.0003:1]
  set key top left
  # e_h = C (h - h0) for a first-order method: the fit of C(h - h0) with slope b5
  plot f index 1 every ::1 using 1:7 with points pt 7 ps 1.3 lc rgb '#9467bd' title 'e_h, same clouds as h_0', \
       (x > h0 ? exp(a5) * (x - h0)**b5 : 1/0) with lines lc rgb '#9467bd' title sprintf('fit C (h - h_0)^p: p = %.2f', b5), \
       (x > h0 ? exp(a5) * (x - h0) : 1/0) with lines dt 3 lw 2 lc rgb 'black' title 'theory (Euler): C (h - h_0)'

  # ---- row 2: distances to the PDE solution ----
  set key top right
  f = dir.'n/sweep.dat'
  set title '(d) KDE against the PDE (smoothed alike), against n'
  set xlabel 'number of tokens n'
  set ylabel 'L_1 distance ‖ρ_{KDE} - ρ_{PDE}‖_1'
  set xrange [80:1000]
  set xtics (100, 200, 400, 800)
  set yrange [0.02:0.5]
  set ytics (0.02, 0.03, 0.05, 0.1, 0.2, 0.3, 0.5)
  plot f index 1 using 1:4 with points pt 5 ps 1.2 lc rgb '#d62728' title 'L_1, measured', \
       exp(a2) * x**b2 with lines lc rgb '#d62728' title sprintf('fit: slope %.2f', b2), \
       exp(a2) * nmax**b2 * (x / nmax)**(-0.5) with lines dt 3 lw 2 lc rgb 'black' title 'sampling rate n^{-1/2}'

  set title '(e) sliced Wasserstein distance to the PDE, against n'
  set ylabel 'sliced W_2(cloud, ρ_{PDE})'
  plot f index 1 using 1:5 with points pt 9 ps 1.3 lc rgb '#2ca02c' title 'sliced W_2, measured', \
       exp(a3) * x**b3 with lines lc rgb '#2ca02c' title sprintf('fit: slope %.2f', b3), \
       exp(a3) * nmax**b3 * (x / nmax)**(-0.5) with lines dt 3 lw 2 lc rgb 'black' title 'sampling rate n^{-1/2}'

  f = dir.'eps/sweep.dat'
  set title '(f) sliced W_2 to the PDE, against ε (n = 400)'
  set xlabel 'kernel bandwidth ε'
  set xrange [0.02:0.25]
  set xtics (0.025, 0.05, 0.1, 0.2)
  set yrange [0.02:0.5]
  plot f index 1 using 1:5 with linespoints pt 9 ps 1.3 lc rgb '#2ca02c' title 'sliced W_2 (n = 400)'
  unset multiplot
}
