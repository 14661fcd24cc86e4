# Heat-diffusion limit beyond the variance: density snapshots of a Gaussian
# mixture. Reads out/heat_mixture/{sinkhorn,softmax,softmax_k1}/{snapshots,errors}.dat
# (experiments/heat_mixture.ini), writes out/figures/heat_mixture.png and .pdf.
# snapshots.dat: blocks t = 0, T/2, T; columns x1 x2 kde pde_smoothed pde.
# errors.dat (d = 2): 1 t, ..., 9 l1, 13 sw2.
dir = 'out/heat_mixture/'
times = '0 0.125 0.25'
do for [out in 'png pdf'] {
  if (out eq 'png') {
    set terminal pngcairo size 1400,1350 font 'Sans,11'
  } else {
    set terminal pdfcairo size 10.5in,10in font 'Sans,9'
  }
  set output 'out/figures/heat_mixture.'.out
  set multiplot layout 3,3 title "The Sinkhorn token cloud follows the heat equation in shape, not only in variance\n{/*0.85 3-component Gaussian mixture in 2-D, n = 2000 tokens, L2 scores ε = 0.05, v_i = -(2/ε)(Σ_j K_{ij} x_j - x_i), Euler h = 0.005;}\n{/*0.85 PDE solved by FFT from the same mixture; both smoothed by the same Gaussian kernel (bandwidth from Silverman's rule)}" font ',13'
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
  do for [k=0:2] {
    set title sprintf('particles (Sinkhorn): KDE at t = %s', word(times, k+1))
    splot dir.'sinkhorn/snapshots.dat' index k using 1:2:3 with pm3d notitle
  }
  do for [k=0:2] {
    set title sprintf('heat equation (κ = 1), same smoothing, t = %s', word(times, k+1))
    splot dir.'sinkhorn/snapshots.dat' index k using 1:2:4 with pm3d notitle
  }
  unset view
  set size noratio
  set autoscale xy
  set cbrange [*:*]
  set key top left Left reverse font ',9' samplen 2
  set grid

  set title 'profile along x_2 at x_1 = 0, t = 0.25'
  set xlabel 'x_2'
  set ylabel 'density'
  set xrange [-5:5]
  plot dir.'sinkhorn/snapshots.dat' index 2 using ($1 == 0 ? $2 : 1/0):3 with lines lw 2 lc rgb '#1f77b4' title 'Sinkhorn cloud (KDE)', \
       ''                           index 2 using ($1 == 0 ? $2 : 1/0):4 with lines lw 2 dt 2 lc rgb '#08306b' title 'heat equation κ = 1', \
       dir.'softmax/snapshots.dat' index 2 using ($1 == 0 ? $2 : 1/0):3 with lines lw 2 lc rgb '#d62728' title 'SoftMax-L2 cloud (KDE)', \
       ''                          index 2 using ($1 == 0 ? $2 : 1/0):4 with lines lw 2 dt 2 lc rgb '#67000d' title 'κ = 2'

  set title 'L1 distance between KDE and smoothed PDE'
  set xlabel 't'
  set ylabel 'L1'
  set xrange [0:0.25]
  set yrange [0:*]
  plot dir.'sinkhorn/errors.dat' using 1:9 with linespoints pt 7 ps 0.6 lw 2 lc rgb '#1f77b4' title 'Sinkhorn vs κ = 1', \
       dir.'softmax/errors.dat' using 1:9 with linespoints pt 5 ps 0.6 lw 2 lc rgb '#d62728' title 'SoftMax-L2 vs κ = 2', \
       dir.'softmax_k1/errors.dat' using 1:9 with linespoints pt 9 ps 0.6 lw 2 lc rgb '#ff9896' title 'SoftMax-L2 vs κ = 1 (control)'

  set title 'sliced W_2 between cloud and PDE'
  set ylabel 'sliced W_2'
  set yrange [0:*]
  plot dir.'sinkhorn/errors.dat' using 1:13 with linespoints pt 7 ps 0.6 lw 2 lc rgb '#1f77b4' title 'Sinkhorn vs κ = 1', \
       dir.'softmax/errors.dat' using 1:13 with linespoints pt 5 ps 0.6 lw 2 lc rgb '#d62728' title 'SoftMax-L2 vs κ = 2', \
       dir.'softmax_k1/errors.dat' using 1:13 with linespoints pt 9 ps 0.6 lw 2 lc rgb '#ff9896' title 'SoftMax-L2 vs κ = 1 (control)'
  unset multiplot
}
