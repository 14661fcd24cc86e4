# Experiment 1 (issue 4): SoftMax vs Sinkhorn particle flows of one 2-D cloud.
# Reads out/flow_softmax_vs_sinkhorn/{softmax,sinkhorn}_{a,b,c}.{traj,obs}
# (from experiments/flow_softmax_vs_sinkhorn.ini), writes
# out/figures/flow_softmax_vs_sinkhorn.png and .pdf.
dir = 'out/flow_softmax_vs_sinkhorn/'
rows = 'a b c'
label(r) = r eq 'a' ? '(a) A = I, W_V = I, T = 1' : \
           r eq 'b' ? '(b) A = I, W_V = -I, T = 3' : \
                      '(c) A = diag(1, 1/4), W_V = [-0.3 -1; 1 -0.3], T = 3'

# W_V = wa I + wb J (J = rotation by 90 degrees): exp(t W_V) m0 in closed form
wa(r) = r eq 'a' ? 1 : r eq 'b' ? -1 : -0.3
wb(r) = r eq 'c' ? 1 : 0
ex(t, r) = exp(wa(r)*t) * (cos(wb(r)*t)*m0x - sin(wb(r)*t)*m0y)
ey(t, r) = exp(wa(r)*t) * (sin(wb(r)*t)*m0x + cos(wb(r)*t)*m0y)

do for [out in 'png pdf'] {
  if (out eq 'png') {
    set terminal pngcairo size 1200,1540 font 'Sans,11'
  } else {
    set terminal pdfcairo size 8in,10.4in font 'Sans,9'
  }
  set output 'out/figures/flow_softmax_vs_sinkhorn.'.out
  set multiplot layout 3,2 title "The same 2-D cloud (n = 60 tokens) under SoftMax and under Sinkhorn attention\n{/*0.9 dots: positions over time (colour = t); open circles: start; black: end; red line: token mean}\n{/*0.9 dashed: exp(t W_V) m(0), which the Sinkhorn mean follows exactly (columns sum to 1) and the SoftMax mean does not}" font ',14'
  set palette defined (0 '#bdd7e7', 0.5 '#3182bd', 1 '#08306b')
  set cblabel 't'
  set key below horizontal font ',10'
  set xlabel 'x_1'
  set ylabel 'x_2'
  do for [r in rows] {
    # common ranges for the row, so that the two normalisations compare directly
    # (stats only sees points inside the current ranges: reset them first)
    set autoscale xy
    stats dir.'softmax_'.r.'.obs' using 2 every ::0::0 nooutput prefix 'MX'
    stats dir.'softmax_'.r.'.obs' using 3 every ::0::0 nooutput prefix 'MY'
    m0x = MX_min; m0y = MY_min
    stats dir.'softmax_'.r.'.traj' using 1 nooutput prefix 'BS'
    stats dir.'sinkhorn_'.r.'.traj' using 1 nooutput prefix 'BK'
    stats dir.'softmax_'.r.'.traj' using 3:4 nooutput prefix 'S'
    stats dir.'sinkhorn_'.r.'.traj' using 3:4 nooutput prefix 'K'
    xlo = (S_min_x < K_min_x ? S_min_x : K_min_x); xhi = (S_max_x > K_max_x ? S_max_x : K_max_x)
    ylo = (S_min_y < K_min_y ? S_min_y : K_min_y); yhi = (S_max_y > K_max_y ? S_max_y : K_max_y)
    mx = 0.05 * (xhi - xlo); my = 0.05 * (yhi - ylo)
    set xrange [xlo - mx : xhi + mx]
    set yrange [ylo - my : yhi + my]
    do for [norm in 'softmax sinkhorn'] {
      f = dir.norm.'_'.r.'.traj'
      last = (norm eq 'softmax' ? BS_blocks : BK_blocks) - 1
      set title label(r).' — '.(norm eq 'softmax' ? 'SoftMax' : 'Sinkhorn') font ',12'
      plot f using 3:4:1 with points pt 7 ps 0.25 lc palette notitle, \
           f index 0 using 3:4 with points pt 6 ps 0.8 lc rgb '#888888' title 'start', \
           f index last using 3:4 with points pt 7 ps 0.8 lc rgb 'black' title 'end', \
           dir.norm.'_'.r.'.obs' using 2:3 with lines lw 3 lc rgb '#d62728' title 'mean', \
           dir.norm.'_'.r.'.obs' using (ex($1, r)):(ey($1, r)) with lines lw 2 dt (4,4) lc rgb 'black' title 'exp(t W_V) m(0)'
    }
  }
  unset multiplot
}
