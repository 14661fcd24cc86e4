#!/bin/sh
# Checks the module rule of src/ (docs/design.md, "Layout"):
#   - a file includes a private header ("x.h", no folder) only from its own folder;
#   - the private headers of src/core/ are the library's shared internals: any
#     file under src/, tests/ or bench/ may include them as "core/x.h";
#   - no file under src/ includes another module's private header ("m/x.h", m != core);
#   - a library module includes the public headers of itself and of the modules
#     below it only: core < attention < {flow, pde, train, convex} (the four wings
#     are siblings and never use each other); src/cli/ may use them all.
# Usage: check_layout.sh [ROOT] (default: this checkout). Prints one line per
# violation and exits 1 if there is any.
set -u
cd "${1:-$(dirname "$0")/..}" || exit 2
tmp=$(mktemp) || exit 2
trap 'rm -f "$tmp"' EXIT

# Public headers owned by each module.
owner() {
  case "$1" in
    error.h|io.h|version.h|comm.h) echo core ;;
    scores.h|normalize.h|backend.h|pm.h) echo attention ;;
    init.h|flow.h|observables.h|energy.h) echo flow ;;
    heat.h|metrics.h) echo pde ;;
    nn.h|train.h) echo train ;;
    convex.h) echo convex ;;
    *) echo unknown ;;
  esac
}
# Modules a module may use (its own included).
allowed() {
  case "$1" in
    core) echo "core" ;;
    attention) echo "core attention" ;;
    flow|pde|train|convex) echo "core attention $1" ;;
    cli) echo "core attention flow pde train convex cli" ;;
    *) echo "" ;;
  esac
}

bad=0
fail() { echo "check_layout: $1"; bad=1; }

for f in src/*.c src/*.h; do
  [ -e "$f" ] && fail "$f: library sources live in a module folder src/<module>/"
done

for f in $(find src tests bench -name '*.[ch]' 2>/dev/null | sort); do
  dir=$(dirname "$f")
  case "$f" in src/*/*) mod=$(echo "$f" | cut -d/ -f2) ;; *) mod="" ;; esac
  grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" |
  sed 's/^\([0-9]*\):.*"\(.*\)".*/\1 \2/' | while read -r line inc; do
    case "$inc" in
      attnflow/*)
        [ -z "$mod" ] && continue
        h=${inc#attnflow/}; o=$(owner "$h")
        [ "$o" = unknown ] && { echo "check_layout: $f:$line: unknown public header $inc (add it to scripts/check_layout.sh)"; continue; }
        case " $(allowed "$mod") " in *" $o "*) ;; *)
          echo "check_layout: $f:$line: module '$mod' may not use '$o' ($inc)";; esac ;;
      core/*)
        [ -f "src/$inc" ] || echo "check_layout: $f:$line: no such core header src/$inc" ;;
      */*)
        m=${inc%%/*}
        if [ -n "$mod" ] && [ "$m" != "$mod" ] && [ -d "src/$m" ]; then
          echo "check_layout: $f:$line: '$inc' is module '$m''s private header"
        fi
        # tests/ and bench/ may look inside a module (white-box), named by its folder.
        ;;
      *)
        [ -f "$dir/$inc" ] || [ -f "tests/$inc" ] || [ -f "bench/$inc" ] ||
          echo "check_layout: $f:$line: private header \"$inc\" is not in $dir/" ;;
    esac
  done
done > "$tmp" 2>&1
if [ -s "$tmp" ]; then cat "$tmp"; bad=1; fi
[ $bad -eq 0 ] && echo "check_layout: src/ follows the module rule"
exit $bad
