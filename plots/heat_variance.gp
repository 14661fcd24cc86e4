# Heat-diffusion limit, reference case (docs/theory.md 5). Reads
# out/heat_variance/{sinkhorn,softmax,dot}/errors.dat (experiments/heat_variance.ini),
# writes out/figures/heat_variance.png and .pdf.
# errors.dat columns (d = 2): 1 t, 2-3 mean, 4-5 var, 6 var_inc, 7 var_inc_pde,
# 8 var_inc_mf, 9 l1, 10 l2, 11 w1, 12 w2, 13 sw2, 14 energy, 15 outside, 16 sk_iters.
dir = 'out/heat_variance/'
do for [out in 'png pdf'] {
  if (out eq 'png') {
    set terminal pngcairo size 1500,520 font 'Sans,11'
  } else {
    set terminal pdfcairo size 12in,4.2in font 'Sans,9'
  }
  set output 'out/figures/heat_variance.'.out
  set multiplot layout 1,3 title "Attention flows as diffusions: n = 800 tokens from N(0, I) in 2-D, v_i = -(2/ε)(Σ_j K_{ij} x_j - x_i), ε = 0.05, Euler h = 0.005\n{/*0.85 Sinkhorn follows the heat equation ∂_tρ = Δρ (variance + 2t), SoftMax with L2 scores ∂_tρ = 2Δρ (+ 4t as n → ∞, ε → 0), dot-product SoftMax neither}" font ',13'
  set grid
  set xlabel 't'

  set title '(a) variance increment per coordinate'
  set ylabel 'var(t) - var(0)'
  set key top left Left reverse font ',9'
  set yrange [-1:2.2]
  plot 2*x with lines dt 2 lw 1.5 lc rgb '#1f77b4' title 'heat equation, κ = 1: 2t', \
       4*x with lines dt 2 lw 1.5 lc rgb '#d62728' title 'κ = 2: 4t', \
       dir.'sinkhorn/errors.dat' using 1:6 with linespoints pt 7 ps 0.6 lw 2 lc rgb '#1f77b4' title 'Sinkhorn, L2 scores', \
       dir.'softmax/errors.dat' using 1:6 with linespoints pt 5 ps 0.6 lw 2 lc rgb '#d62728' title 'SoftMax, L2 scores', \
       dir.'dot/errors.dat' using 1:6 with linespoints pt 9 ps 0.6 lw 2 lc rgb '#2ca02c' title 'SoftMax, dot-product scores', \
       dir.'sinkhorn/errors.dat' using 1:8 with lines lw 1 lc rgb '#6baed6' title 'Sinkhorn, n → ∞ at this ε (O(ε) bias only)', \
       dir.'softmax/errors.dat' using 1:8 with lines lw 1 lc rgb '#fc9272' title 'SoftMax-L2, n → ∞ at this ε'
  set autoscale y

  set title '(b) distance to the PDE solution'
  set ylabel 'sliced W_2(cloud, ρ(t))'
  set logscale y
  set key bottom right Left reverse font ',9'
  plot dir.'sinkhorn/errors.dat' using 1:13 with linespoints pt 7 ps 0.6 lw 2 lc rgb '#1f77b4' title 'Sinkhorn vs heat (κ = 1)', \
       dir.'softmax/errors.dat' using 1:13 with linespoints pt 5 ps 0.6 lw 2 lc rgb '#d62728' title 'SoftMax-L2 vs κ = 2', \
       dir.'dot/errors.dat' using 1:13 with linespoints pt 9 ps 0.6 lw 2 lc rgb '#2ca02c' title 'dot SoftMax vs heat (κ = 1)'
  unset logscale y

  set title '(c) Sinkhorn: the energy the heat flow dissipates'
  set ylabel 'E = -2 F_n (L2 cost, bandwidth ε)'
  set key top right font ',9'
  plot dir.'sinkhorn/errors.dat' using 1:14 with linespoints pt 7 ps 0.6 lw 2 lc rgb '#1f77b4' title 'E along the Sinkhorn flow (decreasing)'
  unset multiplot
}
