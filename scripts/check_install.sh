#!/bin/sh
# Checks of `make install` (run by tests/test_install.c in make test):
#   exports  BUILD    libattnflow.so exports only af_ names and has soname libattnflow.so.MAJOR
#   example  BUILD    install into a temporary DESTDIR, build the README's C example
#                     with `pkg-config --cflags --libs attnflow` against it, run it
#   man      BUILD    every option of every command's --help is in its installed man page
#   uninstall BUILD   make uninstall removes every file make install put there
# Prints what failed and exits 1; exits 0 when the check holds.
set -u
check=$1; build=$2
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 2
version=$(sed -n 's/^#define AF_VERSION "\(.*\)"/\1/p' include/attnflow/version.h)
major=${version%%.*}
tmp=$(mktemp -d /tmp/af_install_XXXXXX) || exit 2
trap 'rm -rf "$tmp"' EXIT
prefix=/usr/local

# make install from inside make test: a fresh make, not the caller's jobserver.
install_into() {
  env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make --no-print-directory -s install \
    BUILD="$build" PREFIX=$prefix DESTDIR="$1" >"$tmp/install.log" 2>&1 \
    || { cat "$tmp/install.log"; echo "make install failed"; exit 1; }
}

case $check in
exports)
  so=$build/libattnflow.so
  [ -e "$so" ] || { echo "$so missing"; exit 1; }
  # (AddressSanitizer builds add one __odr_asan.NAME marker per exported variable.)
  bad=$(nm -D --defined-only "$so" | awk 'NF == 3 {print $3}' | grep -v '^af_' | grep -v '^__odr_asan\.af_')
  [ -z "$bad" ] || { echo "exported non-af_ symbols:"; echo "$bad"; exit 1; }
  n=$(nm -D --defined-only "$so" | awk 'NF == 3' | grep -c ' af_')
  [ "$n" -gt 100 ] || { echo "only $n af_ symbols exported"; exit 1; }
  soname=$(readelf -d "$so" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
  [ "$soname" = "libattnflow.so.$major" ] || { echo "soname '$soname'"; exit 1; }
  ;;
example)
  dest=$tmp/dest
  install_into "$dest"
  sed -n '/^```c$/,/^```$/p' README.md | sed '1d;$d' > "$tmp/example.c"
  [ -s "$tmp/example.c" ] || { echo "no C example in README.md"; exit 1; }
  export PKG_CONFIG_PATH="$dest$prefix/lib/pkgconfig"
  [ "$(pkg-config --modversion attnflow)" = "$version" ] || { echo "pkg-config version"; exit 1; }
  flags=$(pkg-config --define-variable=prefix="$dest$prefix" --cflags --libs attnflow) || exit 1
  # Only the installed headers: the source tree's include/ is not on the path.
  cc -std=c11 -o "$tmp/example" "$tmp/example.c" $flags || { echo "example does not build: cc $flags"; exit 1; }
  lib=$(LD_LIBRARY_PATH="$dest$prefix/lib" ldd "$tmp/example" | awk '/libattnflow/ {print $3}')
  [ "$lib" = "$dest$prefix/lib/libattnflow.so.$major" ] || { echo "links '$lib', not the installed library"; exit 1; }
  # A sanitizer build (make test SANITIZE=1): the example is not instrumented,
  # so the runtime the library needs must be loaded first.
  san=""
  if readelf -d "$dest$prefix/lib/libattnflow.so.$major" | grep -q libasan; then
    export LD_PRELOAD="$(cc -print-file-name=libasan.so)" ASAN_OPTIONS=detect_leaks=0
    san="-fsanitize=address,undefined"   # for the static link of instrumented objects
  fi
  out=$(LD_LIBRARY_PATH="$dest$prefix/lib" "$tmp/example") || { echo "example failed: $out"; exit 1; }
  # The BLAS calls inside the library go to OpenBLAS, not to GSL's reference
  # CBLAS that pkg-config's gsl entry adds (the library's own dependencies
  # come first in the loader's search).
  blas=$(LD_LIBRARY_PATH="$dest$prefix/lib" LD_DEBUG=bindings "$tmp/example" 2>&1 >/dev/null \
         | grep "libattnflow.so.$major .*symbol \`cblas_")
  [ -n "$blas" ] || { echo "no CBLAS binding seen"; exit 1; }
  echo "$blas" | grep -qv libopenblas && { echo "CBLAS not from OpenBLAS:"; echo "$blas"; exit 1; }
  echo "$out" | grep -Eq '^symmetric path, [0-9]+ iterations, row error' || { echo "unexpected output: $out"; exit 1; }
  [ "$(LD_LIBRARY_PATH="$dest$prefix/lib" "$dest$prefix/bin/attnflow" --version)" = "attnflow $version" ] \
    || { echo "installed attnflow --version"; exit 1; }
  # Statically, with libattnflow.a and what `pkg-config --static` adds.
  sflags=$(pkg-config --define-variable=prefix="$dest$prefix" --static --libs attnflow \
           | sed 's/-lattnflow/-Wl,-Bstatic -lattnflow -Wl,-Bdynamic/')
  cc -std=c11 $san -o "$tmp/example_static" "$tmp/example.c" $(pkg-config --define-variable=prefix="$dest$prefix" \
     --cflags attnflow) $sflags || { echo "static example does not build: $sflags"; exit 1; }
  readelf -d "$tmp/example_static" | grep -q libattnflow && { echo "static example needs libattnflow.so"; exit 1; }
  [ "$("$tmp/example_static" | head -n 1)" = "$(echo "$out" | head -n 1)" ] || { echo "static example differs"; exit 1; }
  # The installed Python package, over the installed library.
  pkg=$(find "$dest" -name _installed.py -path '*/attnflow/*')
  [ -n "$pkg" ] || { echo "Python package not installed"; exit 1; }
  grep -q "'$prefix/lib/libattnflow.so.$major'" "$pkg" || { echo "$pkg: wrong library path"; exit 1; }
  py=$(cd "$tmp" && env -u ATTNFLOW_LIB -u PYTHONPATH PYTHONPATH="$(dirname "$(dirname "$pkg")")" \
       LD_LIBRARY_PATH="$dest$prefix/lib" "${PYTHON:-/usr/bin/python3}" -c \
       'import attnflow, numpy; K, d = attnflow.sinkhorn(numpy.zeros((3, 3))); print(attnflow.__file__, attnflow.library_version(), d.iterations)') \
    || { echo "installed Python package: $py"; exit 1; }
  case $py in "$dest"*" $version "*) ;; *) echo "installed Python package: $py"; exit 1 ;; esac
  ;;
man)
  dest=$tmp/dest
  install_into "$dest"
  mandir=$dest$prefix/share/man/man1
  for cmd in $("$build/attnflow" --help | awk '/^commands:/{on=1; next} on && /^  [a-z]/{print $1}'); do
    case $cmd in run|version|help) grep -q "^\.B $cmd" "$mandir/attnflow.1" || { echo "attnflow.1 lacks $cmd"; exit 1; }; continue ;; esac
    page=$mandir/attnflow-$cmd.1
    [ -f "$page" ] || { echo "$page missing"; exit 1; }
    grep -q "attnflow $version" "$page" || { echo "$page: no version $version"; exit 1; }
    for opt in $("$build/attnflow" "$cmd" --help | awk '/^options:/{on=1; next} on && /^  --/{print $1}'); do
      grep -q "^\.B $(echo "$opt" | sed 's/-/\\\\-/g')\( \|$\)" "$page" || { echo "$page lacks $opt"; exit 1; }
    done
  done
  ;;
uninstall)
  dest=$tmp/dest
  install_into "$dest"
  [ -n "$(find "$dest" -type f)" ] || { echo "make install installed nothing"; exit 1; }
  env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make --no-print-directory -s uninstall \
    BUILD="$build" PREFIX=$prefix DESTDIR="$dest" >/dev/null 2>&1 || { echo "make uninstall failed"; exit 1; }
  left=$(find "$dest" ! -type d)
  [ -z "$left" ] || { echo "left after uninstall:"; echo "$left"; exit 1; }
  ;;
*) echo "unknown check $check"; exit 2 ;;
esac
exit 0
