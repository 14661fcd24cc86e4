#!/bin/sh
# Checks that the Debian packages attnflow needs are installed. As root it
# installs the missing ones with apt-get; otherwise it prints the exact
# apt-get line and fails. Extra package names may be given as arguments:
# `make fuzz` (and so CI) adds clang libclang-rt-dev libomp-dev (libFuzzer,
# ASan/UBSan runtimes and OpenMP for Debian's clang), `make bench` numpy, POT
# and SLEEF (bench_vecmath compares its vector exp with glibc's).
set -u
need="libgsl-dev libfftw3-dev libopenblas-dev libcriterion-dev pkg-config zlib1g-dev python3-sklearn python3-numpy python3-pytest python3-pot libopenmpi-dev openmpi-bin $*"
missing=""
for p in $need; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
command -v gnuplot >/dev/null 2>&1 || missing="$missing gnuplot-nox"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then
  echo "bootstrap: installing:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q && apt-get install -y -q --no-install-recommends $missing || {
    echo "bootstrap: apt-get failed" >&2; exit 1; }
else
  echo "bootstrap: missing Debian packages. Run:" >&2
  echo "  sudo apt-get install -y$missing" >&2
  exit 1
fi
