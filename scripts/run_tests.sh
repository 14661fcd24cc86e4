#!/bin/sh
# Runs every Criterion test binary given, and pytest on every folder given
# (python/tests), then prints one closing line 'tests: N passed, N failed'
# summed over all of them; fails if any failed.
build=$1; shift
# Criterion runs two tests at once on two cores: idle OpenMP threads must
# sleep rather than spin, or the two processes starve each other.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
pass=0; fail=0; bad=""
for t in "$@"; do
  if [ -d "$t" ]; then
    # The Python package from the source tree over this build's shared library.
    log="$build/$(echo "$t" | tr / _).log"
    abs=$(cd "$build" && pwd)
    so="$abs/libattnflow.so"
    preload=""
    # A sanitizer build: python itself is not instrumented, so its runtime goes first.
    readelf -d "$so" 2>/dev/null | grep -q libasan && preload=$(${CC:-cc} -print-file-name=libasan.so)
    PYTHONPATH="$(pwd)/python${PYTHONPATH:+:$PYTHONPATH}" ATTNFLOW_LIB="$so" ATTNFLOW_CLI="$abs/attnflow" \
      LD_PRELOAD="$preload" ASAN_OPTIONS="${preload:+detect_leaks=0}" \
      "${PYTHON:-/usr/bin/python3}" -m pytest -q -p no:cacheprovider "$t" >"$log" 2>&1; rc=$?
    cat "$log"
    s=$(grep -aE '[0-9]+ (passed|failed|error|skipped)' "$log" | tail -n 1)
    p=$(echo "$s" | sed -n 's/.*\b\([0-9][0-9]*\) passed.*/\1/p'); p=${p:-0}
    f=$(echo "$s" | sed -n 's/.*\b\([0-9][0-9]*\) failed.*/\1/p'); f=${f:-0}
    e=$(echo "$s" | sed -n 's/.*\b\([0-9][0-9]*\) errors\{0,1\}\b.*/\1/p'); e=${e:-0}
    k=$(echo "$s" | sed -n 's/.*\b\([0-9][0-9]*\) skipped.*/\1/p'); k=${k:-0}
    f=$((f + e + k))   # a skipped test proves nothing: it counts as failed
    if [ -z "$s" ] || [ $rc -ne 0 ] || [ $k -gt 0 ]; then [ $f -eq 0 ] && f=1; bad="$bad $t(pytest)"; fi
    pass=$((pass + p)); fail=$((fail + f))
    continue
  fi
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
