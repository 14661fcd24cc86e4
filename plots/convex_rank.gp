# rank(Z*) (the number of heads needed) against beta, and the singular
# values of Z* along the regularisation path. Reads out/convex_rank/,
# writes out/figures/convex_rank.{png,pdf}.
dir = 'out/convex_rank/'
betas = "1e-4 2e-4 5e-4 1e-3 2e-3 5e-3 1e-2 2e-2 5e-2 0.1 0.2 0.5 1 2"
nb = words(betas)
get(kind, i, key) = real(system(sprintf("awk '$1==\"%s\"{print $2}' %s%s_%d/summary.txt", key, dir, kind, i)))
sv(kind, i, j) = real(system(sprintf("awk '!/^#/ && NR>0 {k++; if (k==%d) print $3}' %s%s_%d/singular_values.dat", j, dir, kind, i)))

# tables: beta rank objective (per kind), and the linear singular-value paths
set print dir.'rank_table.dat'
print "# columns: beta rank_linear rank_gated objective_linear objective_gated"
do for [i=0:nb-1] {
  print sprintf("%s %d %d %.10g %.10g", word(betas, i+1), get('linear', i, 'rank'), get('gated', i, 'rank'), \
                get('linear', i, 'objective'), get('gated', i, 'objective'))
}
set print dir.'sv_paths.dat'
print "# columns: beta sigma_1 ... sigma_12 (linear attention, d = 4, c = 3)"
do for [i=0:nb-1] {
  line = word(betas, i+1)
  do for [j=1:12] { line = line . sprintf(" %.10g", sv('linear', i, j)) }
  print line
}
unset print

do for [term = 1:2] {
  if (term == 1) { set terminal pngcairo size 1400,560 font ",11"; set output 'out/figures/convex_rank.png' }
  else { set terminal pdfcairo size 14in,5.6in font ",10"; set output 'out/figures/convex_rank.pdf' }
  set multiplot layout 1,2 title "Heads needed by the convex program: synthetic data (teacher with 2 heads + noise), N = 200 matrices, n = 8, d = 4, c = 3"
  unset logscale y
  set format y "%g"
  set logscale x
  set format x "10^{%L}"
  set grid
  set xlabel "weight decay β"
  set ylabel "heads needed = rank(Z*)"
  set title "rank of the certified optimum (relative gap < 1e-8)"
  set key top right
  set yrange [0:*]
  plot dir.'rank_table.dat' u 1:2 w lp pt 7 ps 1.2 lw 2 lc rgb '#1f77b4' t 'linear attention', \
       '' u 1:3 w lp pt 5 ps 1.2 lw 2 lc rgb '#d62728' t 'gated-ReLU attention, 4 gates (sum over gates)', \
       2 w l dt 2 lc rgb 'gray30' t 'teacher heads (2)'
  set yrange [1e-3:20]
  set logscale y
  set format y "10^{%L}"
  set ylabel "singular value σ_j(Z*)"
  set title "linear attention: singular values of Z* along the path (zero ones not drawn)"
  # twelve curves, twelve distinct colours (gnuplot's default cycle repeats after 8)
  svcol(j) = word("#1f77b4 #ff7f0e #2ca02c #d62728 #9467bd #8c564b #e377c2 #7f7f7f #bcbd22 #17becf #000000 #aec7e8", j)
  set key outside right top vertical font ",9" title "σ_j, j ="
  plot for [j=2:13] dir.'sv_paths.dat' u 1:(column(j) > 0 ? column(j) : 1/0) w lp pt 7 ps 0.8 lw 1.5 lc rgb svcol(j-1) t sprintf("%d", j-1)
  unset multiplot
  unset output
}
