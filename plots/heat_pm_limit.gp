# Heat-diffusion limit at large n with the particle-mesh backend. Reads
# out/heat_pm_limit/{n,gauss}/sweep.dat and panels/{snapshots,errors}.dat
# (experiments/heat_pm_limit.ini), writes out/figures/heat_pm_limit.png/.pdf.
# sweep.dat block 0: 1 value ... 6 var_inc 7 var_inc_pde 9 l1 13 sw2
# 17 seconds 18 var_inc_mf; block 1: 1 value 4 mean_l1 5 mean_w.
# panels/errors.dat (d = 2): 1 t, 9 l1, 13 sw2; snapshots.dat: blocks
# t = 0, T/2, T, columns x1 x2 kde pde_smoothed pde.
dir = 'out/heat_pm_limit/'
set fit quiet
set fit logfile '/dev/null'
f = dir.'n/sweep.dat'
e = dir.'panels/errors.dat'
# final-time errors: the sweep (n = 1e3 ... 1e5) and the last line of the n = 1e6 run
stats e using 1 nooutput
last = STATS_records - 1
stats e every ::last::last using 9 nooutput
l1_6 = STATS_max
stats e every ::last::last using 13 nooutput
sw_6 = STATS_max
set table $N
plot f index 1 using 1:4:5 with table
unset table
set print $N append
print sprintf("1000000 %.17g %.17g", l1_6, sw_6)
unset print
fit a1 + b1*x $N using (log($1)):(log($2)) via a1, b1
fit a2 + b2*x $N using (log($1)):(log($3)) via a2, b2
g = dir.'gauss/sweep.dat'
fit a3 + b3*x g index 0 using (log($1)):(log(abs($6 - $18))) via a3, b3
times = '0 0.25 0.5'
do for [out in 'png pdf'] {
  if (out eq 'png') {
    set terminal pngcairo size 1500,1000 font 'Sans,11'
  } else {
    set terminal pdfcairo size 12in,8in font 'Sans,9'
  }
  set output 'out/figures/heat_pm_limit.'.out
  set multiplot layout 2,3 title "Sinkhorn attention flow vs the heat equation up to n = 10^6 tokens (particle-mesh backend, tol 10^{-8})\n{/*0.85 L2 scores ε = 0.05, v_i = -(2/ε)(Σ_j K_{ij} x_j - x_i), Euler h = 0.005, T = 0.5; one seed per n}" font ',13'
  set grid
  set logscale xy
  set format x '10^{%L}'
  set format y '%g'
  set xrange [500:2e6]
  set key top right Left reverse font ',9' samplen 2

  set title '(a) final-time error, 3-component mixture'
  set xlabel 'number of tokens n'
  set ylabel 'error at T = 0.5'
  plot $N using 1:2 with points pt 5 ps 1.3 lc rgb '#d62728' title 'L1(KDE, PDE smoothed alike)', \
       exp(a1) * x**b1 with lines lc rgb '#d62728' title sprintf('  fit: slope %.2f', b1), \
       $N using 1:3 with points pt 9 ps 1.4 lc rgb '#2ca02c' title 'sliced W_2(cloud, PDE)', \
       exp(a2) * x**b2 with lines lc rgb '#2ca02c' title sprintf('  fit: slope %.2f', b2)

  set title '(b) variance increment, tokens drawn from N(0, I)'
  set ylabel 'var(T) - var(0)'
  unset logscale y
  set format y '%.3f'
  set yrange [0.955:1.005]
  set key bottom right
  plot g index 0 using 1:6 with linespoints pt 7 ps 1.3 lc rgb '#1f77b4' title 'particles', \
       g index 0 using 1:18 with lines dt 2 lw 2 lc rgb '#08519c' title 'exact n → ∞ value at this ε', \
       g index 0 using 1:7 with lines lw 1 lc rgb '#888888' title 'heat equation 2κT'

  set title '(c) |increment - n → ∞ value| and run time'
  set autoscale y
  set logscale y
  set format y '%g'
  set ylabel 'deviation / seconds'
  set key top left
  plot g index 0 using 1:(abs($6 - $18)) with points pt 7 ps 1.3 lc rgb '#1f77b4' title '|Δvar - Δvar_{∞}|', \
       exp(a3) * x**b3 with lines lc rgb '#1f77b4' title sprintf('  fit: slope %.2f', b3), \
       f index 0 using 1:17 with linespoints pt 4 ps 1.2 lc rgb '#9467bd' title 'seconds per run (mixture, 100 steps)'

  unset logscale
  set format x '%g'
  set format y '%g'
  set view map
  set size ratio -1
  set xrange [-4:4]
  set yrange [-4:4]
  set cbrange [0:0.2]
  set palette defined (0 'white', 0.15 '#c6dbef', 0.4 '#6baed6', 0.7 '#2171b5', 1 '#08306b')
  set xlabel 'x_1'
  set ylabel 'x_2'
  set tics out
  unset key
  unset grid
  p = dir.'panels/snapshots.dat'
  set title 'n = 10^6 particles: KDE at t = 0.5'
  splot p index 2 using 1:2:3 with pm3d notitle
  set title 'heat equation (κ = 1), same smoothing, t = 0.5'
  splot p index 2 using 1:2:4 with pm3d notitle
  unset view
  set size noratio
  set grid
  set xrange [-5:5]
  set autoscale y
  set key top left Left reverse font ',9' samplen 2
  set title 'profile along x_2 at x_1 = 0 (n = 10^6)'
  set xlabel 'x_2'
  set ylabel 'density'
  plot for [k=0:2] p index k using ($1 == 0 ? $2 : 1/0):3 with lines lw 2 lc k+1 title sprintf('KDE t = %s', word(times, k+1)), \
       for [k=0:2] p index k using ($1 == 0 ? $2 : 1/0):4 with lines lw 2 dt 2 lc k+1 title sprintf('PDE t = %s', word(times, k+1))
  unset multiplot
}
