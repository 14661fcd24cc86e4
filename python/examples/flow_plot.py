#!/usr/bin/env python3
"""A token cloud under SoftMax and under Sinkhorn attention, side by side.

Both flows start from the same Gaussian cloud (A = I, W_V = I, RK4). With
Sinkhorn the mean moves exactly as m(t) = e^t m(0) (columns sum to 1); with
SoftMax it does not. The figure is drawn with matplotlib if it is
installed, else with gnuplot (Debian: gnuplot-nox); the data always goes to
OUT.dat in the format of `attnflow flow --out`.

usage: flow_plot.py [OUT] [n] [T]
"""
import shutil
import subprocess
import sys

import numpy as np

import attnflow

out = sys.argv[1] if len(sys.argv) > 1 else "flow_plot"
n = int(sys.argv[2]) if len(sys.argv) > 2 else 200
T = float(sys.argv[3]) if len(sys.argv) > 3 else 1.0

X0 = attnflow.init_cloud("gaussian", n=n, d=2, seed=1, mean=[0.5, 0.0], cov=0.25)
runs = {}
for norm in ("softmax", "sinkhorn"):
    flow = attnflow.Flow(n, 2, norm=norm, eps=1.0)
    times, traj = flow.trajectory(X0, T, 0.01, save_every=10)
    runs[norm] = traj
    m = traj[-1].mean(axis=0)
    print(f"{norm:8s}: mean at T {m.round(6)}, exp(T) m0 {(np.exp(T) * X0.mean(axis=0)).round(6)}, "
          f"variance {traj[-1].var(axis=0).mean():.4f}, evaluations {flow.stats['evaluations']}")

with open(out + ".dat", "w") as f:
    f.write(f"# attnflow {attnflow.__version__}\n# command: flow_plot.py {out} {n} {T}\n")
    f.write("# blocks: 0 softmax, 1 sinkhorn (final time)\n# columns: x1 x2 x1_0 x2_0\n")
    for k, norm in enumerate(runs):
        if k:
            f.write("\n\n")
        for x, x0 in zip(runs[norm][-1], X0):
            f.write(f"{x[0]!r} {x[1]!r} {x0[0]!r} {x0[1]!r}\n")

try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.5), sharex=True, sharey=True)
    for ax, (norm, traj) in zip(axes, runs.items()):
        ax.scatter(*X0.T, s=4, c="0.7", label="t = 0")
        ax.scatter(*traj[-1].T, s=4, label=f"t = {T:g}")
        ax.set_title(norm)
        ax.legend()
    fig.savefig(out + ".png", dpi=120)
    print("figure:", out + ".png (matplotlib)")
except ImportError:
    if shutil.which("gnuplot"):
        script = (f"set terminal pngcairo size 900,450; set output '{out}.png'; set multiplot layout 1,2;"
                  f"set title 'softmax'; plot '{out}.dat' index 0 u 3:4 w p pt 7 ps 0.3 lc 'gray' t 't = 0',"
                  f" '' index 0 u 1:2 w p pt 7 ps 0.3 t 't = {T:g}';"
                  f"set title 'sinkhorn'; plot '{out}.dat' index 1 u 3:4 w p pt 7 ps 0.3 lc 'gray' t 't = 0',"
                  f" '' index 1 u 1:2 w p pt 7 ps 0.3 t 't = {T:g}'; unset multiplot")
        subprocess.run(["gnuplot", "-e", script], check=True)
        print("figure:", out + ".png (gnuplot)")
    else:
        print("no matplotlib or gnuplot: data in", out + ".dat")
