# The FFTW heat solver against the exact solution for a discontinuous start.
# Reads out/heat_solver/{spectrum,nodes}.dat (experiments/heat_solver.ini),
# writes out/figures/heat_solver.png and .pdf. Columns: x rho exact; blocks
# t = 0, 0.05, 0.1, 0.15, 0.2.
dir = 'out/heat_solver/'
times = '0 0.05 0.1 0.15 0.2'
set style line 1 lc rgb '#08306b' lw 2
set style line 2 lc rgb '#2171b5' lw 2
set style line 3 lc rgb '#4292c6' lw 2
set style line 4 lc rgb '#6baed6' lw 2
set style line 5 lc rgb '#9ecae1' lw 2
do for [out in 'png pdf'] {
  if (out eq 'png') {
    set terminal pngcairo size 1300,600 font 'Sans,11'
  } else {
    set terminal pdfcairo size 10in,4.46in font 'Sans,9'
  }
  set output 'out/figures/heat_solver.'.out
  set multiplot layout 1,2 title "FFTW heat solver, ∂_tρ = Δρ on a periodic box [-4, 4) with 512 nodes, from the uniform density on [-1, 1]\n{/*0.85 every Fourier mode is multiplied by exp(-|ξ|^2 t): exact per mode; the initial spectrum decides the accuracy}" font ',13'
  set grid
  set xlabel 'x'

  set title '(a) solution (lines, from the closed-form spectrum) and exact solution (points)'
  set ylabel 'ρ(x, t)'
  set xrange [-3:3]
  set key top right font ',9'
  plot for [k=1:4] dir.'spectrum.dat' index k using 1:2 with lines ls k+1 title 't = '.word(times, k+1), \
       for [k=1:4] dir.'spectrum.dat' index k every 12 using 1:3 with points pt 6 ps 0.8 lc rgb 'black' notitle, \
       dir.'spectrum.dat' index 0 using 1:3 with lines dt 2 lc rgb 'gray40' title 't = 0 (exact)'

  set title "(b) error |numerical - exact| at t = 0.05 and 0.2\n{/*0.85 rise toward the box edges: the periodic wrap (5e-7 at t = 0.2, as heat reports)}" 
  set ylabel 'absolute error |ρ_{num}(x, t) - ρ(x, t)|'
  set logscale y
  set format y '10^{%L}'
  set yrange [1e-19:1]
  set key below horizontal maxrows 2 font ',9'
  set bmargin 6
  set xrange [-4:4]
  plot dir.'nodes.dat' index 1 using 1:(abs($2 - $3)) with lines lw 1.5 lc rgb '#d62728' title 'node-value start, t = 0.05', \
       dir.'nodes.dat' index 4 using 1:(abs($2 - $3)) with lines lw 1.5 lc rgb '#ff9896' title 'node-value start, t = 0.2', \
       dir.'spectrum.dat' index 1 using 1:(abs($2 - $3)) with lines lw 1.5 lc rgb '#08306b' title 'closed-form spectrum, t = 0.05', \
       dir.'spectrum.dat' index 4 using 1:(abs($2 - $3)) with lines lw 1.5 lc rgb '#6baed6' title 'closed-form spectrum, t = 0.2'
  unset multiplot
}
