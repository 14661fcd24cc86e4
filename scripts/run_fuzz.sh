#!/bin/sh
# Runs every libFuzzer harness of BUILD/fuzz for SECONDS each, starting from
# its checked-in seed corpus (tests/fuzz/corpus/NAME, read only) plus a
# working corpus under BUILD/fuzz/corpus/NAME. Prints one line per harness:
#   fuzz: NAME: N executions in S s, 0 crashes
# and fails on the first crash (the reproducer is left in BUILD/fuzz/).
build=$1; secs=${2:-20}
status=0
for bin in "$build"/fuzz/fuzz_*; do
  case "$bin" in *.d|*.log) continue;; esac
  name=$(basename "$bin")
  seeds="tests/fuzz/corpus/${name#fuzz_}"
  work="$build/fuzz/corpus/$name"
  mkdir -p "$work"
  log="$build/fuzz/$name.log"
  # an INI run costs a few microseconds per section: keep its inputs short
  # enough for ~1e6 executions in 300 s (1 KB still holds dozens of sections)
  maxlen=8192; [ "$name" = fuzz_ini ] && maxlen=1024
  (cd "$build/fuzz" && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
     "./$name" -max_total_time="$secs" -print_final_stats=1 -max_len=$maxlen \
     -rss_limit_mb=2048 -timeout=10 -close_fd_mask=3 "corpus/$name" "$OLDPWD/$seeds") >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  if [ $rc -ne 0 ]; then
    echo "fuzz: $name: FAILED (exit $rc) after ${execs:-?} executions; log: $log"
    grep -a -m 5 -E 'ERROR|runtime error|SUMMARY|Test unit written' "$log"
    status=1
  else
    echo "fuzz: $name: ${execs:-?} executions in $secs s, 0 crashes"
  fi
done
exit $status
