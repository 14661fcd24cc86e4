#!/bin/sh
# Checks the documents of a source tree (default: this one):
#  - every relative link [text](target) in README.md, docs/*.md and the module
#    READMEs points to a file or folder that exists (a clean clone must have
#    every document the README links to; ../ links out of the tree fail);
#  - CHANGELOG.md's newest entry and CITATION.cff name the version of
#    include/attnflow/version.h (the single source of the version).
#  - with a CLI binary as second argument: every option of every command's
#    --help is documented in that command's section of docs/cli.md.
# Prints one line per problem and exits 1 if there is any.
root=${1:-$(dirname "$0")/..}
cli=${2:-}
cd "$root" || exit 2
bad=0
for doc in README.md docs/*.md src/*/README.md; do
  [ -f "$doc" ] || continue
  dir=$(dirname "$doc")
  # Inline links and images; code spans and URLs with a scheme are skipped.
  for target in $(sed 's/`[^`]*`//g' "$doc" | grep -o '\]([^)]*)' | sed 's/^](//; s/)$//; s/[ #].*//'); do
    case "$target" in
      ''|*://*|mailto:*) continue ;;
      /*) echo "$doc: absolute link $target"; bad=1; continue ;;
    esac
    case "$(cd "$dir" && realpath -m "$target")" in
      "$(pwd -P)"|"$(pwd -P)"/*) ;;
      *) echo "$doc: link leaves the tree: $target"; bad=1; continue ;;
    esac
    [ -e "$dir/$target" ] || { echo "$doc: missing link target: $target"; bad=1; }
  done
done
# The background notes outside the repository are never linked or named.
if grep -n '\.\./shared' README.md docs/*.md 2>/dev/null; then echo "a document names ../shared"; bad=1; fi
version=$(sed -n 's/^#define AF_VERSION "\(.*\)"/\1/p' include/attnflow/version.h)
[ -n "$version" ] || { echo "include/attnflow/version.h: no AF_VERSION"; bad=1; }
top=$(sed -n 's/^## \([0-9][0-9.]*\).*/\1/p' CHANGELOG.md 2>/dev/null | head -n 1)
[ "$top" = "$version" ] || { echo "CHANGELOG.md: newest entry '$top', version.h says '$version'"; bad=1; }
cff=$(sed -n 's/^version: *"\{0,1\}\([^"]*\)"\{0,1\} *$/\1/p' CITATION.cff 2>/dev/null)
[ "$cff" = "$version" ] || { echo "CITATION.cff: version '$cff', version.h says '$version'"; bad=1; }
py=$(sed -n 's/^__version__ = "\(.*\)"/\1/p' python/attnflow/_version.py 2>/dev/null)
[ ! -d python ] || [ "$py" = "$version" ] || { echo "python/attnflow/_version.py: version '$py', version.h says '$version'"; bad=1; }
if [ -n "$cli" ]; then
  for cmd in $("$cli" --help | awk '/^commands:/{on=1; next} on && /^  [a-z]/{print $1}'); do
    case $cmd in run|version|help) continue ;; esac
    section=$(awk -v h="## $cmd" '$0 == h {on=1; next} on && /^## / {exit} on' docs/cli.md)
    [ -n "$section" ] || { echo "docs/cli.md: no section '## $cmd'"; bad=1; continue; }
    for opt in $("$cli" "$cmd" --help | awk '/^  --/{print $1}'); do
      echo "$section" | grep -q -- "\`$opt[\` ]" || { echo "docs/cli.md: $cmd $opt undocumented"; bad=1; }
    done
  done
fi
[ -f LICENSE ] || { echo "LICENSE missing"; bad=1; }
exit $bad
