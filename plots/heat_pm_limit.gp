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
# final-time errors (the run seconds of the sweep are in summary.dat, not
# drawn: the load changed between runs); the sweep (n = 1e3 ... 1e5) and the last line of the n = 1e6 run
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
# the runs' own n -> infinity value: the limit for their Euler steps, which
# compare writes into the header (af_attention_gaussian_variance_euler)
ES = real(system("sed -n 's/^# var_inc_mf_euler: *\\([^:]*\\):.*/\\1/p' ".g))
fit a3 + b3*x g index 0 using (log($1)):(log(abs(ES - $6))) via a3, b3
stats g index 0 using 18 name 'MF' nooutput
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

  set title '(a) density error at T = 0.5, 3-component mixture'
  set xlabel 'number of tokens n'
  set ylabel 'L1(KDE of the cloud, PDE smoothed alike)'
  set yrange [0.003:0.1]
  plot $N using 1:2 with points pt 5 ps 1.3 lc rgb '#d62728' title 'runs (n = 10^6: the panels run)', \
       exp(a1) * x**b1 with lines lc rgb '#a50f15' title sprintf('fit: slope %.2f', b1)

  set title '(b) transport distance at T = 0.5, 3-component mixture'
  set ylabel 'sliced W_2(cloud, PDE)'
  plot $N using 1:3 with points pt 9 ps 1.4 lc rgb '#2ca02c' title 'runs (n = 10^6: the panels run)', \
       exp(a2) * x**b2 with lines lc rgb '#006d2c' title sprintf('fit: slope %.2f', b2)

  # the claim: the particle error |Δvar_∞,h - Δvar| (against the runs' own
  # limit, that of their Euler steps) falls below the O(ε) bias 1 - Δvar_∞
  # and the O(h) bias Δvar_∞,h - Δvar_∞ by n = 10^5; theory's rate is n^-1
  set title "(c) Gaussian start: distance to the n → ∞ increment\n{/*0.85 of the runs' own Euler steps (h = 0.005)}"
  set ylabel '|Δvar_{∞,h} - Δvar|, Δvar = var(T) - var(0)'
  set yrange [1e-4:0.1]
  set key bottom left font ',8'
  # short key entries: the key sits below the runs' diagonal
  plot g index 0 using 1:(abs(ES - $6)) with points pt 7 ps 1.3 lc rgb '#1f77b4' title sprintf('runs (Δvar_{∞,h} = %.4f)', ES), \
       exp(a3) * x**b3 with lines lc rgb '#08519c' title sprintf('fit: slope %.2f', b3), \
       30.0/x with lines dt 4 lc rgb 'black' title 'theory rate n^{-1}', \
       1 - MF_mean with lines dt 2 lw 2 lc rgb '#fd8d3c' title sprintf('O(ε) bias 1 - Δvar_∞ = %.4f', 1 - MF_mean), \
       ES - MF_mean with lines dt 3 lw 2 lc rgb '#31a354' title sprintf('O(h) bias Δvar_{∞,h} - Δvar_∞ = %.4f', ES - MF_mean)

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
  # one colour per curve: KDE dark, PDE light shade of the same hue per time
  kde_c = "#08519c #a50f15 #006d2c"
  pde_c = "#6baed6 #fb6a4a #74c476"
  plot for [k=0:2] p index k using ($1 == 0 ? $2 : 1/0):3 with lines lw 2 lc rgb word(kde_c, k+1) title sprintf('KDE t = %s', word(times, k+1)), \
       for [k=0:2] p index k using ($1 == 0 ? $2 : 1/0):4 with lines lw 2 dt 2 lc rgb word(pde_c, k+1) title sprintf('PDE t = %s', word(times, k+1))
  unset multiplot
}
