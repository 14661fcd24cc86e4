# Token clustering by the heads of Z* (2-D tokens). Reads
# out/convex_clusters/clusters.dat and summary.dat (scripts/summarize/
# convex_clusters.py: purity against a permutation null), writes
# out/figures/convex_clusters.{png,pdf}.
f = 'out/convex_clusters/clusters.dat'
S = 'out/convex_clusters/summary.dat'
rank = int(system("awk '$1==\"rank\"{print $2}' out/convex_clusters/summary.txt"))
beta = real(system("awk '$2==\"beta:\"{print $3; exit}' out/convex_clusters/summary.txt"))
val(key) = system(sprintf("awk -F'\t' '$1==\"%s\"{print $2}' %s", key, S))
# per matrix: tokens dominated by head 2
h2(i) = int(system(sprintf("awk '!/^#/ && NF && $1==%d && $6==2{k++} END{print k+0}' %s", i, f)))
do for [term = 1:2] {
  if (term == 1) { set terminal pngcairo size 1400,1050 font ",11"; set output 'out/figures/convex_clusters.png' }
  else { set terminal pdfcairo size 14in,10in font ",10"; set output 'out/figures/convex_clusters.pdf' }
  set multiplot layout 2,3 title sprintf("Implicit token clustering: linear attention solved by the convex program (rank(Z*) = %d heads, β = %g).\nColour: share of head 2 in the token's output |f_h(X)_t|. Symbol: the token's planted cluster within its own matrix (● ■ ◆; clusters do not correspond across matrices).\nWithin a matrix the dominant head follows the cluster: purity %s of the tokens share their cluster's majority head (random cluster labels: %s, p = %s);\nhead 2 dominates %s tokens, and only in %s matrices: in the others head 1 carries every token.", rank, beta, val('purity'), val('purity_null'), val('p_value'), val('head2_tokens'), val("matrices_both_heads")) font ",11" margins 0.05,0.93,0.07,0.85 spacing 0.07,0.1
  set palette defined (0 '#1f77b4', 0.5 '#dddddd', 1 '#d62728')
  set cbrange [0:1]
  set cblabel "share of head 2 (0 = head 1 only)"
  set size square
  set grid
  set xtics rotate by 30 right font ",9"
  set xlabel "x_1"
  set ylabel "x_2"
  unset key
  set tmargin 2
  do for [i=0:5] {
    set title sprintf("token matrix %d: head 2 dominates %d of 12", i+1, h2(i+1))
    if (i == 5) { set colorbox } else { unset colorbox }
    set offsets graph 0.08, graph 0.08, graph 0.08, graph 0.08
    plot f index i u ($5==1 ? $3 : 1/0):4:8 w p pt 7 ps 2.2 lc palette, \
         f index i u ($5==2 ? $3 : 1/0):4:8 w p pt 5 ps 2.2 lc palette, \
         f index i u ($5==3 ? $3 : 1/0):4:8 w p pt 13 ps 2.6 lc palette, \
         f index i u ($5==1 ? $3 : 1/0):4 w p pt 6 ps 2.2 lc rgb 'black', \
         f index i u ($5==2 ? $3 : 1/0):4 w p pt 4 ps 2.2 lc rgb 'black', \
         f index i u ($5==3 ? $3 : 1/0):4 w p pt 12 ps 2.6 lc rgb 'black'
  }
  unset multiplot
  unset output
}
