# Sinkhorn attention as a Wasserstein gradient flow (docs/theory.md 4).
# Reads out/gradflow_energy/{energy,jacobian}.dat (experiments/gradflow_energy.ini),
# writes out/figures/gradflow_energy.png and .pdf.
dir = 'out/gradflow_energy/'
do for [out in 'png pdf'] {
  if (out eq 'png') {
    set terminal pngcairo size 1500,520 font 'Sans,11'
  } else {
    set terminal pdfcairo size 12in,4.2in font 'Sans,9'
  }
  set output 'out/figures/gradflow_energy.'.out
  set multiplot layout 1,3 title "Sinkhorn attention is the Wasserstein gradient flow of the OT energy F_n = OT_1(µ,µ)/2; SoftMax attention is not\n{/*0.85 n = 64 tokens in 2-D, tokens drawn from N(0, I), scores x^T A y with A = I, W_V = A, RK4 dt = 0.01; both flows start from the same cloud}" font ',13'
  set grid
  set key bottom left Left reverse font ',10'

  set title '(a) F_n along each flow'
  set xlabel 't'
  set ylabel 'F_n(X(t))'
  plot dir.'energy.dat' using 1:2 with lines lw 2 lc rgb '#1f77b4' title 'along the Sinkhorn flow', \
       ''               using 1:5 with lines lw 2 lc rgb '#d62728' title 'along the SoftMax flow'

  set title "(b) rate dF_n/dt: measured vs gradient-flow value"
  set ylabel 'dF_n/dt'
  set key bottom left Left reverse font ',9'
  plot dir.'energy.dat' every 8 using 1:3 with points pt 6 ps 1.2 lc rgb '#1f77b4' title 'Sinkhorn, measured', \
       ''               using 1:4 with lines lw 1.5 lc rgb '#1f77b4' title 'Sinkhorn, -(1/n) Σ|T_i|^2', \
       ''               every 8 using 1:6 with points pt 4 ps 1.2 lc rgb '#d62728' title 'SoftMax, measured', \
       ''               using 1:7 with lines lw 1.5 dt 2 lc rgb '#d62728' title 'SoftMax, -(1/n) Σ|T_i|^2 (not its rate)', \
       ''               using 1:8 with lines lw 1 lc rgb '#ff9896' title 'SoftMax, chain rule ∇F_n·T'

  set title '(c) asymmetry of the field Jacobian dT/dX'
  set xlabel 'number of tokens n'
  set ylabel '|J - J^T|_F / |J|_F'
  set logscale y
  set format y '10^{%L}'
  set yrange [1e-12:5]
  set xrange [0:100]
  set key center right Left reverse font ',9' box opaque
  plot dir.'jacobian.dat' using 1:2 with linespoints pt 7 lw 2 lc rgb '#1f77b4' title 'Sinkhorn, W_V = A (symmetric)', \
       ''                 using 1:3 with linespoints pt 5 lw 2 lc rgb '#d62728' title 'SoftMax, W_V = A', \
       ''                 using 1:4 with linespoints pt 9 lw 2 lc rgb '#2ca02c' title 'Sinkhorn, W_V = A + skew', \
       ''                 using 1:5 with lines dt 3 lw 1.5 lc rgb 'gray40' title 'finite-difference error estimate'
  unset logscale y
  set format y '%g'
  unset multiplot
}
