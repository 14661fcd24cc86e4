# Sinkhorn convergence: column error after each row normalisation against
# the full-iteration index, one curve per eps, with the Birkhoff-Hopf bound
# (dashed, from the first point) and the sharp rate sigma_2^2 (dotted,
# through the last point). Data: out/sinkhorn_convergence/n<N>_eps<E>.dat,
# written by experiments/sinkhorn_convergence.ini.
dir = 'out/sinkhorn_convergence/'
epss = '0.1 0.3 1 3 10'
N = words(epss)
file(n, i) = sprintf('%sn%s_eps%s.dat', dir, n, word(epss, i))
meta(f, key) = real(system(sprintf("awk '/^# %s:/{print $3; exit}' %s", key, f)))
first_err(f) = real(system(sprintf("awk '!/^#/{print $3; exit}' %s", f)))
# last row step (odd iteration): "k err"
last_row(f) = system(sprintf("awk '!/^#/ && $1%%2==1 {k=($1+1)/2; e=$3} END{print k, e}' %s", f))

array E1[N]; array BH[N]; array KL[N]; array EL[N]; array SR[N]; array CV[N]
# converged: max(row_err, col_err) <= tol of the run (from its '# command:' line)
conv(f) = int(system(sprintf("awk '/^# command:/{for(i=1;i<NF;i++) if($i==\"--tol\") t=$(i+1)} /^# row_err:/{r=$3} /^# col_err:/{c=$3} END{print ((r>c?r:c) <= t) ? 1 : 0}' %s", f)))

set logscale y
set format y '10^{%T}'
set yrange [1e-13:1e2]
set xrange [1:200]   # eps = 0.1 runs on past the right edge (3000 normalisations, not converged): said in the key
set xlabel 'full iteration k (one row + one column normalisation)'
set ylabel 'column error e_k = max_j |col_j - 1|'
set key outside right top box Left reverse font ',10'
set grid
set style line 1 lc rgb '#1b9e77' lw 2
set style line 2 lc rgb '#d95f02' lw 2
set style line 3 lc rgb '#7570b3' lw 2
set style line 4 lc rgb '#e7298a' lw 2
set style line 5 lc rgb '#66a61e' lw 2
set samples 400

do for [term in 'png pdf'] {
  if (term eq 'png') { set terminal pngcairo size 1500,600 font ',11'; set output 'out/figures/sinkhorn_convergence.png' }
  else { set terminal pdfcairo size 13in,5.2in font ',10'; set output 'out/figures/sinkhorn_convergence.pdf' }
  set multiplot layout 1,2 title "Sinkhorn convergence, 2-D Gaussian cloud, scores x_i^T x_j / eps\nsolid: measured;  dashed: Birkhoff-Hopf bound tanh({/Symbol D}/4)^{2k};  dotted: sharp rate {/Symbol s}_2(K_{/Symbol \245})^{2k}"
  do for [n in '100 400'] {
    do for [i=1:N] {
      f = file(n, i)
      E1[i] = first_err(f); BH[i] = meta(f, 'bh_rate'); SR[i] = meta(f, 'sharp_rate')
      KL[i] = real(word(last_row(f), 1)); EL[i] = real(word(last_row(f), 2))
      CV[i] = conv(f)
    }
    set title sprintf('n = %s tokens', n)
    # gnuplot over-counts the width of UTF-8 text: trim the key by hand
    nc = 0; do for [i=1:N] { nc = nc + (CV[i] ? 0 : 1) }
    if (nc > 0) { set key width -12 } else { set key width 0 }
    plot for [i=1:N] file(n, i) every 2 using (($1+1)/2):3 with lines ls i \
           title sprintf('ε = %s%s', word(epss, i), CV[i] ? '' : sprintf(' (NOT converged, stopped at k = %d)', int(KL[i]))), \
         for [i=1:N] E1[i] * BH[i]**(x-1) with lines ls i dt 2 lw 1 notitle, \
         for [i=1:N] EL[i] * SR[i]**(x-KL[i]) with lines ls i dt 3 lw 1.5 notitle
  }
  unset multiplot
}
