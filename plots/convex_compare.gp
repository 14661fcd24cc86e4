# Objective against time and iterations: convex program vs nonconvex heads.
# Reads out/convex_compare/, writes out/figures/convex_compare.{png,pdf}.
dir = 'out/convex_compare/'
Pstar = real(system("awk '$1==\"objective\"{print $2}' " . dir . "convex/summary.txt"))
rank  = int(system("awk '$1==\"rank\"{print $2}' " . dir . "convex/summary.txt"))
ms = "1 2 3 4 8"
col(i) = word("#d62728 #ff7f0e #bcbd22 #2ca02c #1f77b4", i)
rel(y) = (y - Pstar) / Pstar

do for [term = 1:2] {
  if (term == 1) { set terminal pngcairo size 1400,560 font ",11"; set output 'out/figures/convex_compare.png' }
  else { set terminal pdfcairo size 14in,5.6in font ",10"; set output 'out/figures/convex_compare.pdf' }
  set multiplot layout 1,2 title sprintf("Linear attention, squared loss, beta = 0.01: convex optimum P* = %.10f, rank(Z*) = %d (needs m >= %d heads)", Pstar, rank, rank)
  set logscale y
  set format y "10^{%L}"
  set yrange [1e-11:10]
  set grid
  set key bottom left font ",9" spacing 0.9 opaque box
  set ylabel "relative suboptimality (objective - P*) / P*"

  set logscale x
  set format x "10^{%L}"
  set xrange [3e-3:30]
  set xlabel "wall time (s)"
  set title "against time"
  plot dir.'convex/iterations.dat' u 2:(rel($3)) w l lw 3 lc rgb 'black' t 'convex (FISTA): objective', \
       '' u 2:4 w l lw 2 dt 2 lc rgb 'gray40' t 'convex: certified gap (P - D)/P', \
       for [i=1:5] for [s=1:3] dir.sprintf('m%s_s%d/iterations.dat', word(ms,i), s) u 2:(rel($3)) w l lw 1.3 lc rgb col(i) \
           t (s == 1 ? sprintf('Adam, m = %s heads (3 seeds)', word(ms,i)) : '')

  unset logscale x
  set format x "%g"
  set logscale x
  set xrange [1:3000]
  set xlabel "iteration (Adam: full-batch step; convex: FISTA step)"
  set title "against iterations"
  plot dir.'convex/iterations.dat' u ($1+1):(rel($3)) w l lw 3 lc rgb 'black' t 'convex (FISTA): objective', \
       '' u ($1+1):4 w l lw 2 dt 2 lc rgb 'gray40' t 'convex: certified gap (P - D)/P', \
       for [i=1:5] for [s=1:3] dir.sprintf('m%s_s%d/iterations.dat', word(ms,i), s) u ($1+1):(rel($3)) w l lw 1.3 lc rgb col(i) \
           t (s == 1 ? sprintf('Adam, m = %s heads (3 seeds)', word(ms,i)) : '')
  unset multiplot
  unset output
}
