#!/bin/sh
# Runs every Criterion test binary given, then prints one closing line
# 'tests: N passed, N failed' summed over all of them; fails if any failed.
build=$1; shift
# Criterion runs two tests at once on two cores: idle OpenMP threads must
# sleep rather than spin, or the two processes starve each other.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
pass=0; fail=0; bad=""
for t in "$@"; do
  log="$t.log"
  "$t" --jobs 2 >"$log" 2>&1; rc=$?
  cat "$log"
  s=$(grep -a 'Synthesis:' "$log" | tail -n 1)
  p=$(echo "$s" | sed -n 's/.*Passing: \([0-9]*\).*/\1/p'); p=${p:-0}
  f=$(echo "$s" | sed -n 's/.*Failing: \([0-9]*\).*/\1/p'); f=${f:-0}
  c=$(echo "$s" | sed -n 's/.*Crashing: \([0-9]*\).*/\1/p'); c=${c:-0}
  if [ -z "$s" ] || [ $rc -ne 0 ]; then [ $f -eq 0 ] && [ $c -eq 0 ] && f=1; bad="$bad $(basename $t)"; fi
  pass=$((pass + p)); fail=$((fail + f + c))
done
[ -n "$bad" ] && echo "failing test binaries:$bad"
echo "tests: $pass passed, $fail failed"
[ $fail -eq 0 ]
