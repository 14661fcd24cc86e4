# Token clustering by the heads of Z* (2-D tokens). Reads
# out/convex_clusters/clusters.dat, writes out/figures/convex_clusters.{png,pdf}.
f = 'out/convex_clusters/clusters.dat'
rank = int(system("awk '$1==\"rank\"{print $2}' out/convex_clusters/summary.txt"))
beta = real(system("awk '$2==\"beta:\"{print $3; exit}' out/convex_clusters/summary.txt"))
do for [term = 1:2] {
  if (term == 1) { set terminal pngcairo size 1400,900 font ",11"; set output 'out/figures/convex_clusters.png' }
  else { set terminal pdfcairo size 14in,9in font ",10"; set output 'out/figures/convex_clusters.pdf' }
  set multiplot layout 2,3 title sprintf("Implicit token clustering: linear attention solved by the convex program (rank(Z*) = %d heads, beta = %g).\nColour = share of head 2 in the token's output |f_h(X)_t|; symbol = planted cluster of the token", rank, beta)
  set palette defined (0 '#1f77b4', 0.5 '#dddddd', 1 '#d62728')
  set cbrange [0:1]
  set cblabel "share of head 2 (0 = head 1 only)"
  set size square
  set grid
  set xtics rotate by 30 right font ",9"
  set xlabel "x_1"
  set ylabel "x_2"
  set key top left font ",9" opaque box
  do for [i=0:5] {
    set title sprintf("token matrix %d", i+1)
    if (i == 5) { set colorbox } else { unset colorbox }
    plot f index i u ($5==1 ? $3 : 1/0):4:8 w p pt 7 ps 2.2 lc palette notitle, \
         f index i u ($5==2 ? $3 : 1/0):4:8 w p pt 5 ps 2.2 lc palette notitle, \
         f index i u ($5==3 ? $3 : 1/0):4:8 w p pt 9 ps 2.6 lc palette notitle, \
         f index i u ($5==1 ? $3 : 1/0):4 w p pt 6 ps 2.2 lc rgb 'black' t 'cluster 1', \
         f index i u ($5==2 ? $3 : 1/0):4 w p pt 4 ps 2.2 lc rgb 'black' t 'cluster 2', \
         f index i u ($5==3 ? $3 : 1/0):4 w p pt 8 ps 2.6 lc rgb 'black' t 'cluster 3'
  }
  unset multiplot
  unset output
}
