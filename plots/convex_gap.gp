# Certificate against iteration (log scale). Reads out/convex_gap/, writes
# out/figures/convex_gap.{png,pdf}.
dir = 'out/convex_gap/'
runs = "linear_squared linear_ce gated_squared gated_ce linear_squared_norestart linear_squared_noaccel"
labels = "'linear, squared' 'linear, cross-entropy' 'gated-ReLU (4 gates), squared' 'gated-ReLU (4 gates), cross-entropy' 'linear, squared, no restart' 'linear, squared, no momentum (ISTA)'"
colours = "#1f77b4 #ff7f0e #2ca02c #d62728 #9467bd #7f7f7f"
dts = "1 1 1 1 2 3"
# runs that hit --max-iter before the gap tolerance say so in the key
conv(r) = int(system(sprintf("awk '$1==\"converged\"{print $2}' %s%s/summary.txt", dir, r)))
its(r) = int(system(sprintf("awk '$1==\"iterations\"{print $2}' %s%s/summary.txt", dir, r)))
lab(i) = word(labels, i) . (conv(word(runs, i)) ? '' : sprintf(' (NOT converged: stopped at k = %d)', its(word(runs, i))))
do for [term = 1:2] {
  if (term == 1) { set terminal pngcairo size 1400,680 font ",11"; set output 'out/figures/convex_gap.png' }
  else { set terminal pdfcairo size 14in,6.8in font ",10"; set output 'out/figures/convex_gap.pdf' }
  set multiplot layout 1,2 title "Optimality certificate of the convex attention program along FISTA (beta = 0.01, N = 200, n = 8, d = 4, c = 3; stop at relative gap 1e-12)"
  set logscale y
  set format y "10^{%L}"
  set logscale x
  set xrange [1:5000]
  set grid
  set xlabel "iteration"
  # below the panel: the converged runs end in the lower left, where a key would sit
  set key outside below center Left reverse maxrows 3 font ",9" width -8
  set yrange [1e-13:2]
  set ylabel "relative duality gap (P(Z_k) - D(theta_k)) / P(Z_k)"
  set title "duality gap: an upper bound on the relative suboptimality"
  plot for [i=1:6] dir.word(runs,i).'/iterations.dat' u ($1+1):4 w l lw 2 dt int(word(dts,i)) lc rgb word(colours,i) t lab(i)
  set yrange [1e-12:1e4]
  set ylabel "| max_g |grad_g L(Z_k)|_2 / beta - 1 |"
  set title "spectral certificate: |grad|_2 <= beta is necessary at the optimum"
  plot for [i=1:6] dir.word(runs,i).'/iterations.dat' u ($1+1):(abs($9 - 1)) w l lw 2 dt int(word(dts,i)) lc rgb word(colours,i) t lab(i)
  unset multiplot
  unset output
}
