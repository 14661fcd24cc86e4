# Mean-field limit in n: the variance increment of the heat reference case
# (T = 0.5) against n for Sinkhorn and SoftMax-L2 attention, with the exact
# n -> infinity value at this eps (the O(eps) bias below the PDE value), the
# same limit for the runs' Euler steps of h = 0.005 (their own limit: the
# O(h) bias above it), the PDE value, the fitted finite-n law var_inc =
# lim_h - c/n^a, and the seconds each run took. Reads out/heat_n_limit/{sinkhorn,softmax}_{small,large}/
# sweep.dat, {sinkhorn,softmax}_{xl,xxl}/sweep.dat and the tiled backend's
# {sinkhorn,softmax}_tiled/sweep.dat and sinkhorn_tiled_xl/sweep.dat
# (experiments/heat_n_limit.ini);
# block 0 columns: 3 n, 6 var_inc,
# 7 var_inc_pde, 17 seconds, 18 var_inc_mf. Writes
# out/figures/heat_n_limit.png and .pdf.
dir = 'out/heat_n_limit/'
runs(norm) = sprintf("< cd %s && awk 'NF == 19 && $1 !~ /^#/' %s_small/sweep.dat %s_large/sweep.dat %s_xl/sweep.dat %s_xxl/sweep.dat %s_tiled/sweep.dat %s_tiled_xl/sweep.dat 2>/dev/null", dir, norm, norm, norm, norm, norm, norm)
set fit quiet
set fit logfile '/dev/null'
# the Euler-step limit (af_attention_gaussian_variance_euler; the summary
# checks the same map against the header of new runs): s <- s (1 + h (2/eps)
# (1 - r(s)))^2 from s = 1, 100 steps of h = 0.005, eps = 0.05
eps = 0.05; h = 0.005
s = 1.0
do for [k = 1:100] { kk = s / eps; s = s * (1 + h * (2 / eps) * 2.0 / (2 * kk + 1 + sqrt(1 + 4 * kk * kk)))**2 }
ES = s - 1
s = 1.0
do for [k = 1:100] { s = s * (1 + h * (2 / eps) * eps / (s + eps))**2 }
EM = s - 1
# finite-n shortfall against the runs' own limit: ES - var_inc = c / n^a
# (least squares in log-log)
cs = 30.0; as = 1.0; cm = 30.0; am = 1.0
fit log(cs) - as*x runs('sinkhorn') using (log($3)):(log(ES - $6)) via cs, as
fit log(cm) - am*x runs('softmax') using (log($3)):(log(EM - $6)) via cm, am
stats runs('sinkhorn') using 18 name 'MS' nooutput
stats runs('softmax') using 18 name 'MM' nooutput
# panel (c) plots the shortfall mf - var_inc itself on log-log axes, where
# the fit is a line and the theory's finite-n rate n^-1 can be drawn
do for [out in 'png pdf'] {
  if (out eq 'png') {
    set terminal pngcairo size 1400,1000 font 'Sans,11'
  } else {
    set terminal pdfcairo size 11in,7.9in font 'Sans,9'
  }
  set output 'out/figures/heat_n_limit.'.out
  set multiplot layout 2,2 title "Heat reference case (x_i drawn from N(0, I), 2-D, L2 scores, ε = 0.05, Euler h = 0.005, T = 0.5): variance increment against n\n{/*0.85 points: runs (3 seeds up to n = 800, 1 beyond); dashed: n → ∞ at this ε and h → 0; dash-dot: n → ∞ for Euler h = 0.005 (the runs' own limit);}\n{/*0.85 dotted: PDE; line: fitted limit - c/n^a}" font ',13'
  set grid
  set logscale x
  set xrange [70:200000]
  set xlabel 'number of tokens n'
  set key bottom right
  set title '(a) Sinkhorn attention (PDE: κ = 1)'
  set ylabel 'variance increment Δvar = var(T) - var(0)'
  set yrange [0.65:1.02]
  plot runs('sinkhorn') using 3:6 with points pt 7 ps 0.8 lc rgb '#1f77b4' title 'runs', \
       MS_mean with lines dt 2 lc rgb 'black' title sprintf('n → ∞, h → 0: %.4f', MS_mean), \
       ES with lines dt 4 lc rgb '#08519c' title sprintf('n → ∞, h = 0.005: %.4f', ES), \
       1 with lines dt 3 lc rgb 'gray40' title 'PDE: 1', \
       ES - cs/x**as with lines lw 2 lc rgb '#08519c' title sprintf('fit: %.4f - %.1f / n^{%.2f}', ES, cs, as)
  set title '(b) SoftMax-L2 attention (PDE: κ = 2)'
  set yrange [0.8:2.04]
  plot runs('softmax') using 3:6 with points pt 7 ps 0.8 lc rgb '#d62728' title 'runs', \
       MM_mean with lines dt 2 lc rgb 'black' title sprintf('n → ∞, h → 0: %.4f', MM_mean), \
       EM with lines dt 4 lc rgb '#a50f15' title sprintf('n → ∞, h = 0.005: %.4f', EM), \
       2 with lines dt 3 lc rgb 'gray40' title 'PDE: 2', \
       EM - cm/x**am with lines lw 2 lc rgb '#a50f15' title sprintf('fit: %.4f - %.1f / n^{%.2f}', EM, cm, am)
  set title "(c) finite-n shortfall to the runs' own limit, against the O(ε) and O(h) biases"
  set logscale y
  set yrange [2e-4:1.5]
  set format y '%g'
  set ylabel 'shortfall Δvar_∞(h) - Δvar(n)'
  set key bottom left Left reverse font ',10' samplen 2
  plot runs('sinkhorn') using 3:(ES - $6) with points pt 7 ps 0.8 lc rgb '#1f77b4' title 'Sinkhorn runs', \
       cs/x**as with lines lw 2 lc rgb '#08519c' title sprintf('Sinkhorn fit: %.1f / n^{%.2f}', cs, as), \
       runs('softmax') using 3:(EM - $6) with points pt 5 ps 0.8 lc rgb '#d62728' title 'SoftMax-L2 runs', \
       cm/x**am with lines lw 2 lc rgb '#a50f15' title sprintf('SoftMax-L2 fit: %.1f / n^{%.2f}', cm, am), \
       30.0/x with lines dt 4 lc rgb 'black' title 'theory rate n^{-1} (Sinkhorn)', \
       1 - MS_mean with lines dt 2 lc rgb '#6baed6' lw 2 title sprintf('Sinkhorn O(ε) bias 1 - Δvar_∞ = %.4f', 1 - MS_mean), \
       2 - MM_mean with lines dt 2 lc rgb '#fc9272' lw 2 title sprintf('SoftMax-L2 O(ε) bias 2 - Δvar_∞ = %.4f', 2 - MM_mean), \
       ES - MS_mean with lines dt 4 lc rgb '#6baed6' lw 1 title sprintf('Sinkhorn O(h) bias = %.4f', ES - MS_mean), \
       EM - MM_mean with lines dt 4 lc rgb '#fc9272' lw 1 title sprintf('SoftMax-L2 O(h) bias = %.4f', EM - MM_mean)
  set title "(d) seconds per run (dense to n = 12800, tiled beyond; loaded 2-core machine)"
  set autoscale y
  set ylabel 'wall time per run, seconds'
  set key top left Left reverse
  plot runs('sinkhorn') using 3:17 with points pt 7 ps 1.1 lc rgb '#1f77b4' title 'Sinkhorn', \
       runs('softmax') using 3:17 with points pt 5 ps 1.1 lc rgb '#d62728' title 'SoftMax-L2'
  unset multiplot
  unset logscale y
  unset format
}
