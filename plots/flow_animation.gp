# Experiment 4 (issue 4): animated GIF of a SoftMax and a Sinkhorn flow of the
# same cloud, side by side. Reads out/flow_animation/{softmax,sinkhorn}.{traj,obs}
# (experiments/flow_animation.ini); writes out/figures/flow_animation.gif and
# the last frame as out/figures/flow_animation.{png,pdf}.
dir = 'out/flow_animation/'
S = dir.'softmax.traj'; K = dir.'sinkhorn.traj'
set autoscale xy
stats S using 3:4 nooutput prefix 'SS'
stats K using 3:4 nooutput prefix 'KK'
stats S using 1 nooutput prefix 'B'
nframes = B_blocks
xlo = (SS_min_x < KK_min_x ? SS_min_x : KK_min_x) - 0.3; xhi = (SS_max_x > KK_max_x ? SS_max_x : KK_max_x) + 0.3
ylo = (SS_min_y < KK_min_y ? SS_min_y : KK_min_y) - 0.3; yhi = (SS_max_y > KK_max_y ? SS_max_y : KK_max_y) + 0.3
set xrange [xlo:xhi]; set yrange [ylo:yhi]
# the claim: the Sinkhorn mean follows m(t) = exp(t W_V) m(0) exactly; with
# W_V = -0.3 I + J (J = rotation by 90 degrees) in closed form
stats dir.'sinkhorn.obs' using 2 every ::0::0 nooutput prefix 'M0X'
stats dir.'sinkhorn.obs' using 3 every ::0::0 nooutput prefix 'M0Y'
m0x = M0X_min; m0y = M0Y_min
refx(t) = exp(-0.3*t) * (cos(t)*m0x - sin(t)*m0y)
refy(t) = exp(-0.3*t) * (sin(t)*m0x + cos(t)*m0y)
set size ratio -1
set xlabel 'x_1'; set ylabel 'x_2'
set key below horizontal font ',11'
set grid

# One frame: panel = SoftMax | Sinkhorn, grey trails of the frames so far,
# blue tokens now, red token mean with its path.
# frame k is t = 0.05 k (dt 0.01, save-every 5 in the ini)
do for [out in 'gif png pdf'] {
  if (out eq 'gif') {
    set terminal gif animate delay 8 loop 0 size 1000,520 font 'Sans,11'
    first = 0
  } else {
    if (out eq 'png') { set terminal pngcairo size 1000,520 font 'Sans,11' } else { set terminal pdfcairo size 7in,3.64in font 'Sans,9' }
    first = nframes - 1
  }
  set output 'out/figures/flow_animation.'.out
  do for [k = first:nframes-1] {
    tk = k * 0.05
    set multiplot layout 1,2 title sprintf("Token flow under self-attention, A = I, W_V = [-0.3 -1; 1 -0.3]   t = %.2f", tk) font ',13'
    do for [m = 0:1] {
      f = m == 0 ? S : K
      o = m == 0 ? dir.'softmax.obs' : dir.'sinkhorn.obs'
      set title (m == 0 ? 'SoftMax (rows sum to 1)' : 'Sinkhorn (rows and columns sum to 1)')
      set parametric
      set trange [0:tk > 0 ? tk : 1e-9]
      set samples 200
      plot f index 0:k using 3:4 with points pt 7 ps 0.12 lc rgb '#bdbdbd' notitle, \
           NaN, NaN with points pt 7 ps 0.8 lc rgb '#bdbdbd' title 'paths so far', \
           f index k using 3:4 with points pt 7 ps 0.9 lc rgb '#08519c' title 'tokens now', \
           o every ::0::k using 2:3 with lines lw 4 lc rgb '#fb6a4a' title 'token mean m(t)', \
           refx(t), refy(t) with lines lw 2 dt (5,3) lc rgb 'black' title 'exp(t W_V) m(0)'
      unset parametric
    }
    unset multiplot
  }
}
