# Transfer to unseen digit classes: test accuracy of convex and Adam heads on
# the frozen backbone's token features. Reads out/convex_transfer/s*/,
# writes out/convex_transfer/table.dat (mean and spread over the backbone
# seeds) and out/figures/convex_transfer.{png,pdf}.
dir = 'out/convex_transfer/'
seeds = "1 2 3"
heads = "linear linear_long mlp mlp_long sa_lin sa_gated mixer_lin mixer_gated fno_lin fno_gated bfno_lin bfno_gated adam_sa_lin adam_sa_gated adam_mixer_lin adam_mixer_gated adam_fno_lin adam_fno_gated adam_bfno_lin adam_bfno_gated"
nh = words(heads)
# mean, half range and max of one summary key over the seeds that have it
stat(h, key, what) = real(system(sprintf("for s in %s; do f=%ss$s/%s/summary.txt; [ -f $f ] && awk '$1==\"%s\"{print $2}' $f; done | awk 'NR==1{mn=$1;mx=$1} {s+=$1; mn=$1<mn?$1:mn; mx=$1>mx?$1:mx} END{if (\"%s\"==\"n\") print NR; else if (NR==0) print \"NaN\"; else if (\"%s\"==\"mean\") print s/NR; else if (\"%s\"==\"half\") print (mx-mn)/2; else if (\"%s\"==\"max\") print mx}'", seeds, dir, h, key, what, what, what, what)))

set print dir.'table.dat'
print "# columns: head test_acc_mean test_acc_halfrange seconds_mean rel_gap_max rank_mean heads_mean beta_mean seeds"
do for [i=1:nh] {
  h = word(heads, i)
  print sprintf("%s %.4f %.4f %.3g %.2g %.1f %.1f %.2g %d", h, stat(h, 'test_accuracy', 'mean'), \
                stat(h, 'test_accuracy', 'half'), stat(h, 'seconds', 'mean'), stat(h, 'gap', 'max'), \
                stat(h, 'rank', 'mean'), stat(h, 'heads', 'mean'), stat(h, 'beta', 'mean'), \
                stat(h, 'test_accuracy', 'n'))
}
unset print

do for [term = 1:2] {
  if (term == 1) { set terminal pngcairo size 1300,560 font ",11"; set output 'out/figures/convex_transfer.png' }
  else { set terminal pdfcairo size 13in,5.6in font ",10"; set output 'out/figures/convex_transfer.pdf' }
  set title "Digits 5-9 on a backbone trained on 0-4 (frozen): test accuracy, mean and half range over backbone seeds"
  set style data histograms
  set style histogram errorbars gap 1 lw 1.5
  set style fill solid 0.8 border -1
  set boxwidth 0.9
  set yrange [0.3:1]
  set termoption noenhanced
  set ylabel "test accuracy"
  set grid ytics
  set xtics rotate by -35 font ",9"
  unset key
  plot dir.'table.dat' u 2:3:xtic(1) lc rgb '#1f77b4'
}
