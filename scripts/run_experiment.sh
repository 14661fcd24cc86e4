#!/bin/sh
# Runs experiments/NAME.ini with the CLI, then plots/NAME.gp with gnuplot.
# Data lands in out/NAME/, figures in out/figures/.
set -eu
cli=$1; name=$2
mkdir -p "out/$name" out/figures
echo "== experiment $name"
"$cli" run "experiments/$name.ini"
gnuplot "plots/$name.gp"
echo "   figure: out/figures/$name.png"
