#!/bin/sh
# Part of make test (a few seconds): the figure pipeline on a small
# configuration. In a scratch folder it runs train_digits with one epoch per
# run (its '; quick:' line replaced), then checks that
#   - scripts/summarize/train_digits.py reports the final accuracies of
#     epochs.dat (mean and population sd recomputed here with awk) and the
#     findings ranges at epoch 1 (recomputed with awk); every key of the
#     README's findings blocks (train_findings, train_bullets) exists;
#   - scripts/readme_numbers.py renders them into a README block, --check
#     passes on the result and fails on a changed number, an unknown key is an
#     error, and a QUICK run's summary is never rendered;
#   - the gallery lists the figure; when chromium is installed, the page loads
#     in headless Chromium with every image, and a broken image is caught.
# Usage: test_figures.sh CLI WORKDIR
set -u
cli=$(readlink -f "$1"); work=$2; root=$(pwd)
rm -rf "$work"; mkdir -p "$work/experiments" "$work/tables"
work=$(readlink -f "$work")
ln -s "$root/plots" "$work/plots"; ln -s "$root/scripts" "$work/scripts"
PY=${PYTHON:-/usr/bin/python3}
pass=0; fail=0
ok() { pass=$((pass + 1)); echo "  ok   $1"; }
bad() { fail=$((fail + 1)); echo "  FAIL $1"; }

sed 's/^; quick:.*/; quick: --epochs 1/' experiments/train_digits.ini > "$work/experiments/train_digits.ini"
cd "$work" || exit 1
if QUICK=1 sh scripts/run_experiment.sh "$cli" train_digits > run.log 2>&1; then ok "train_digits runs (1 epoch)"; else bad "train_digits runs"; cat run.log; fi
[ -s out/figures/train_digits.png ] && ok "figure written" || bad "figure written"
grep -q '^mode quick' out/train_digits/runtime.txt && ok "runtime.txt says quick" || bad "runtime.txt says quick"

# expected accuracy: mean +- population sd of the last test_acc of seeds 1-3
expect=$(for s in 1 2 3; do grep -v '^#' out/train_digits/tf_s$s/epochs.dat | tail -n 1 | awk '{print $5}'; done |
  awk '{x[NR]=$1; m+=$1} END{m/=NR; for(i=1;i<=NR;i++) v+=(x[i]-m)^2; printf "%.3f +- %.3f", m, sqrt(v/NR)}')
got=$(awk -F'\t' '$1=="acc_tf"{print $2}' out/train_digits/summary.dat)
[ "$got" = "$expect" ] && ok "summary acc_tf = $got" || bad "summary acc_tf '$got' != '$expect'"

printf 'Accuracy {{train_digits.acc_tf}} (seeds {{train_digits.acc_tf_seeds}}).\n' > tables/acc.md
printf 'intro\n<!-- numbers:acc begin -->\nstale 0.999\n<!-- numbers:acc end -->\nend\n' > README.md
cp README.md README.orig
$PY scripts/readme_numbers.py --readme README.md --out out --templates tables 2>/dev/null
cmp -s README.md README.orig && ok "a QUICK summary is not rendered" || bad "a QUICK summary was rendered"
$PY scripts/readme_numbers.py --readme README.md --out out --templates tables --check 2>/dev/null && bad "--check passes on a QUICK summary" || ok "--check fails on a QUICK summary"
sed -i 's/^mode quick/mode full/' out/train_digits/runtime.txt
$PY scripts/readme_numbers.py --readme README.md --out out --templates tables > /dev/null
grep -q "^Accuracy $expect (seeds" README.md && ok "rendered: Accuracy $expect" || bad "rendered block: $(sed -n 3p README.md)"
[ "$(head -n 1 README.md)" = intro ] && [ "$(tail -n 1 README.md)" = end ] && ok "text outside the markers kept" || bad "text outside the markers changed"
$PY scripts/readme_numbers.py --readme README.md --out out --templates tables --check > /dev/null && ok "--check passes after rendering" || bad "--check after rendering"
sed 's/^Accuracy [0-9.]*/Accuracy 0.123/' README.md > README.bad
$PY scripts/readme_numbers.py --readme README.bad --out out --templates tables --check 2>/dev/null && bad "--check passes a changed number" || ok "--check fails on a changed number"
printf '{{train_digits.no_such_key}}\n' > tables/acc.md
$PY scripts/readme_numbers.py --readme README.md --out out --templates tables 2>/dev/null && bad "an unknown key passes" || ok "an unknown key is an error"

# the findings keys: lowest-highest over the Transformer seeds at epoch 1
for c in 6:colsum 8:null; do
  col=${c%%:*}; key=tf_all_${c#*:}_e1
  expect=$(for s in 1 2 3; do grep -v '^#' out/train_digits/tf_s$s/epochs.dat | awk -v c=$col '$1==1{print $c}'; done |
    awk 'NR==1{lo=$1; hi=$1} {if($1<lo)lo=$1; if($1>hi)hi=$1} END{a=sprintf("%.3f",lo); b=sprintf("%.3f",hi); print (a==b ? a : a "-" b)}')
  got=$(awk -F'\t' -v k=$key '$1==k{print $2}' out/train_digits/summary.dat)
  [ "$got" = "$expect" ] && ok "summary $key = $got" || bad "summary $key '$got' != '$expect'"
done
# every key of the findings blocks exists (train_pointclouds stood in by the digits
# runs; the table block 'train' needs epochs a 1-epoch run does not have)
cp -r out/train_digits out/train_pointclouds
$PY scripts/summarize/train_pointclouds.py out/train_pointclouds > out/train_pointclouds/summary.dat
printf '<!-- numbers:train_findings begin -->\n<!-- numbers:train_findings end -->\n<!-- numbers:train_bullets begin -->\n<!-- numbers:train_bullets end -->\n' > README.train
if $PY scripts/readme_numbers.py --readme README.train --out out > /dev/null && ! grep -q '{{' README.train && grep -q 'runs that get stuck' README.train; then
  ok "the README's findings blocks render from a training summary"
else bad "training blocks do not render"; fi

$PY scripts/gallery.py --out out --experiments experiments
grep -q 'src="../figures/train_digits.png"' out/gallery/index.html && ok "gallery shows the figure" || bad "gallery shows the figure"
if command -v chromium > /dev/null 2>&1; then
  if sh scripts/gallery_check.sh out/gallery/index.html chk > chk.log 2>&1; then ok "Chromium: every image loaded"; else bad "Chromium check"; cat chk.log; fi
  sed 's#src="../figures/train_digits.png"#src="../figures/missing.png"#' out/gallery/index.html > out/gallery/broken.html
  sh scripts/gallery_check.sh out/gallery/broken.html chk2 > chk2.log 2>&1 && bad "Chromium: a broken image passes" || ok "Chromium: a broken image is caught"
else
  echo "  (chromium not installed: the gallery is checked in a browser by make gallery-check)"
fi
echo "figure pipeline: $pass passed, $fail failed"
[ $fail -eq 0 ]
