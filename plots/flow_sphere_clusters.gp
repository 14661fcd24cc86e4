# Experiment 2 (issue 4): clustering of tokens on the sphere S^2, SA vs USA.
# Reads out/flow_sphere_clusters/{sa,usa}_beta{1,4,9}.obs and *_beta9_ends.traj
# (experiments/flow_sphere_clusters.ini); writes out/figures/flow_sphere_clusters.{png,pdf}.
dir = 'out/flow_sphere_clusters/'
betas = '1 4 9'
col(b) = b eq '1' ? '#1b9e77' : b eq '4' ? '#d95f02' : '#7570b3'

do for [out in 'png pdf'] {
  if (out eq 'png') {
    set terminal pngcairo size 1200,1000 font 'Sans,11'
  } else {
    set terminal pdfcairo size 8in,6.7in font 'Sans,9'
  }
  set output 'out/figures/flow_sphere_clusters.'.out
  set multiplot title "Clustering on the sphere: n = 32 tokens uniform on S^2, Q = K = V = I, tangent-projected SoftMax attention\n{/*0.9 SA: Z_i = Σ_k e^{β<x_i,x_k>}; USA: Z_i = n (Geshkovski et al.). Clusters: tokens closer than 10^{-3}}" font ',13'

  # top row: clusters against time
  set size 0.5, 0.5
  set logscale x
  set xrange [1e-4:30]
  set yrange [0.8:40]
  set logscale y
  set ytics (1, 2, 3, 4, 5, 8, 16, 32)
  set xlabel 'time t (log scale; t = 0 not drawn)'
  set ylabel 'number of clusters N_c(t)'
  set key bottom left box opaque font ',10'
  # USA: time scale of the field n e^{-β} (the field is e^β / n times that of β = 0)
  tstar(b) = 32 * exp(-real(b))
  set grid
  do for [k = 0:1] {
    kind = k == 0 ? 'sa' : 'usa'
    set origin k * 0.5, 0.45
    set title (k == 0 ? 'SA (row-normalised SoftMax)' : 'USA (divided by n): the field scales like e^β / n')
    if (k == 0) {
      plot for [b in betas] dir.kind.'_beta'.b.'.obs' using 1:9 with steps lw 2.5 lc rgb col(b) title 'β = '.b
    } else {
      set arrow 1 from tstar(1), 0.8 to tstar(1), 40 nohead dt 2 lw 1.5 lc rgb col('1') front
      set arrow 2 from tstar(4), 0.8 to tstar(4), 40 nohead dt 2 lw 1.5 lc rgb col('4') front
      set arrow 3 from tstar(9), 0.8 to tstar(9), 40 nohead dt 2 lw 1.5 lc rgb col('9') front
      plot for [b in betas] dir.kind.'_beta'.b.'.obs' using ($1 >= 0.01 || b ne '9' ? $1 : 1/0):9 with steps lw 2.5 lc rgb col(b) title 'β = '.b, \
           dir.'usa_beta9_early.obs' using ($1 > 0 ? $1 : 1/0):9 with steps lw 2.5 lc rgb col('9') notitle, \
           NaN with lines dt 2 lw 1.5 lc rgb 'gray30' title 'dashed: t = n e^{-β}'
      unset arrow
    }
  }

  # bottom row: start and end configurations for beta = 9
  unset logscale; unset grid
  set xrange [-1.05:1.05]; set yrange [-1.05:1.05]; set zrange [-1.05:1.05]
  set xtics 1; set ytics 1; set ztics 1
  set view equal xyz
  set view 60, 30
  set xyplane at -1.05
  set xlabel 'x_1'; set ylabel 'x_2'; set zlabel 'x_3'
  set parametric
  set urange [0:2*pi]; set vrange [-pi/2:pi/2]
  set isosamples 13, 9
  set key top left
  do for [k = 0:1] {
    kind = k == 0 ? 'sa' : 'usa'
    set origin k * 0.5, 0.0
    set size 0.5, 0.46
    set title (k == 0 ? 'SA, β = 9: start (grey) and t = 30 (red)' : 'USA, β = 9: start (grey) and t = 30 (red)')
    f = dir.kind.'_beta9_ends.traj'
    splot cos(u)*cos(v), sin(u)*cos(v), sin(v) with lines lc rgb '#dddddd' notitle, \
          f index 0 using 3:4:5 with points pt 6 ps 0.9 lc rgb '#777777' title 'start', \
          f index 1 using 3:4:5 with points pt 7 ps 1.6 lc rgb '#d62728' title 'end (merged tokens overlap)'
  }
  unset parametric
  unset multiplot
}
