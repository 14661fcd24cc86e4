# Objective against time and iterations: convex program vs nonconvex heads.
# Reads out/convex_compare/, writes out/figures/convex_compare.{png,pdf}.
dir = 'out/convex_compare/'
Pstar = real(system("awk '$1==\"objective\"{print $2}' " . dir . "convex/summary.txt"))
rank  = int(system("awk '$1==\"rank\"{print $2}' " . dir . "convex/summary.txt"))
ms = "1 2 3 4 8"
col(i) = word("#d62728 #ff7f0e #bcbd22 #2ca02c #1f77b4", i)
rel(y) = (y - Pstar) / Pstar

do for [term = 1:2] {
  if (term == 1) { set terminal pngcairo size 1400,640 font ",11"; set output 'out/figures/convex_compare.png' }
  else { set terminal pdfcairo size 14in,6.4in font ",10"; set output 'out/figures/convex_compare.pdf' }
  set multiplot layout 1,2 title sprintf("Linear attention, squared loss, beta = 0.01: convex optimum P* = %.10f, rank(Z*) = %d (needs m >= %d heads)", Pstar, rank, rank)
  set logscale y
  set format y "10^{%L}"
  set yrange [1e-18:10]
  set grid
  # legend below the panels: the certified-gap tail down to the 1e-11 stop is the headline
  # below the 1e-11 stop nothing but the vertical drop of the convex objective: room for the key
  set key bottom right Left reverse font ",9" samplen 2.5 spacing 1.05 opaque box
  set ylabel "relative suboptimality δ = (objective - P*) / P*"
  tol = 1e-11

  set logscale x
  set format x "10^{%L}"
  set xrange [3e-3:10]
  set xlabel "wall time t (s)"
  set title "against time"
  plot dir.'convex/iterations.dat' u 2:(rel($3)) w l lw 3 lc rgb 'black' t 'convex (FISTA): objective', \
       '' u 2:4 w l lw 2 dt 2 lc rgb 'gray40' t 'convex: certified gap (P - D)/P ≥ δ', \
       tol w l lw 1 dt 3 lc rgb 'black' t 'stop: gap ≤ 10^{-11}', \
       for [i=1:5] for [s=1:3] dir.sprintf('m%s_s%d/iterations.dat', word(ms,i), s) u 2:(rel($3)) w l lw 1.3 lc rgb col(i) \
           t (s == 1 ? sprintf('Adam, m = %s head%s (3 seeds)', word(ms,i), i == 1 ? '' : 's') : '')

  unset logscale x
  set format x "%g"
  set logscale x
  set xrange [1:4e5]   # room right of the data for the key
  set xlabel "iteration k (Adam: full-batch step; convex: FISTA step)"
  set title "against iterations"
  plot dir.'convex/iterations.dat' u ($1+1):(rel($3)) w l lw 3 lc rgb 'black' t 'convex (FISTA): objective', \
       '' u ($1+1):4 w l lw 2 dt 2 lc rgb 'gray40' t 'convex: certified gap (P - D)/P ≥ δ', \
       tol w l lw 1 dt 3 lc rgb 'black' t 'stop: gap ≤ 10^{-11}', \
       for [i=1:5] for [s=1:3] dir.sprintf('m%s_s%d/iterations.dat', word(ms,i), s) u ($1+1):(rel($3)) w l lw 1.3 lc rgb col(i) \
           t (s == 1 ? sprintf('Adam, m = %s head%s (3 seeds)', word(ms,i), i == 1 ? '' : 's') : '')
  unset multiplot
  unset output
}
