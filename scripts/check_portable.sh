#!/bin/sh
# The fallback for CPUs without AVX-512: builds the library, the CLI and the
# whole test suite for x86-64-v3 (AVX2) and x86-64-v2 (SSE4.2, no AVX) in
# their own build folders and runs the suite there. The vector exp/log calls
# come from `#pragma omp simd` loops (src/core/af_simd_math.h), so the
# compiler picks glibc's variant of the target's width; this checks that
# such a build passes every test and, for x86-64-v2, that the library holds
# no AVX or AVX-512 instruction at all (a stray intrinsic or target
# attribute would make it crash on such a CPU).
set -eu
root=${1:-build-portable}
for arch in x86-64-v3 x86-64-v2; do
  b=$root/$arch
  echo "check-portable: $arch (build folder $b)"
  make --no-print-directory test-only BUILD="$b" ARCH="$arch"
  calls=$(objdump -d "$b/libattnflow.so" | grep -oE '<_ZGV[b-e]N[0-9]+v_[a-z]+' | tr -d '<' | sort -u | paste -sd' ' -)
  echo "check-portable: $arch: vector math calls: $calls"
  if [ "$arch" = x86-64-v2 ]; then
    wide=$(objdump -d "$b/libattnflow.so" | grep -cE '%[yz]mm' || true)
    if [ "$wide" != 0 ]; then
      echo "check-portable: $wide AVX/AVX-512 instructions in $b/libattnflow.so built for $arch" >&2
      exit 1
    fi
    echo "check-portable: $arch: no ymm/zmm instruction in the library"
  fi
done
