#!/bin/sh
# Runs experiments/NAME.ini with the CLI, then plots/NAME.gp with gnuplot.
# Data lands in out/NAME/, figures in out/figures/.
# QUICK=1: an INI line '; quick: OPTIONS' gives the options (overriding every
# section, e.g. fewer epochs) of a smaller configuration of a long experiment;
# experiments without that line run in full. Afterwards
#   out/NAME/runtime.txt  the wall time of the run, its mode and the command
#                         that regenerates it (read by the gallery);
#   out/NAME/summary.dat  the headline numbers, written by
#                         scripts/summarize/NAME.py when it exists (read by the
#                         README renderer and the gallery).
set -eu
cli=$1; name=$2
ini="experiments/$name.ini"
quick=$(sed -n 's/^; *quick: *//p' "$ini" | head -n 1)
mode=full; extra=""
if [ "${QUICK:-0}" = 1 ] && [ -n "$quick" ]; then mode=quick; extra=$quick; fi
mkdir -p "out/$name" out/figures
echo "== experiment $name ($mode)"
start=$(date +%s.%N)
# $extra is a list of options: word splitting wanted
# shellcheck disable=SC2086
"$cli" run "$ini" $extra
end=$(date +%s.%N)
# the summary first: a plot may quote its numbers
summ="scripts/summarize/$name.py"
if [ -f "$summ" ]; then
  ${PYTHON:-/usr/bin/python3} "$summ" "out/$name" > "out/$name/summary.dat.tmp"
  mv "out/$name/summary.dat.tmp" "out/$name/summary.dat"
fi
gnuplot "plots/$name.gp"
cmd="make figure NAME=$name"; [ $mode = quick ] && cmd="$cmd QUICK=1"
{ echo "# how out/$name was made (scripts/run_experiment.sh)"
  echo "mode $mode"
  echo "command $cmd"
  echo "cli $cli run $ini $extra"
  echo "seconds $(awk "BEGIN{printf \"%.1f\", $end - $start}")"
  echo "load $(cut -d' ' -f1 /proc/loadavg)"
  echo "date $(date -u +%Y-%m-%dT%H:%MZ)"; } > "out/$name/runtime.txt"
echo "   figure: out/figures/$name.png ($(sed -n 's/^seconds //p' "out/$name/runtime.txt") s)"
