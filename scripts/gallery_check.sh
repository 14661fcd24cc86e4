#!/bin/sh
# Loads the gallery in headless Chromium from file://, takes a screenshot and
# checks that every image loaded (the page's inline script writes naturalWidth
# results into <pre id="image-check">, read back with --dump-dom), that there
# is at least one image and that the page is taller than a screen per figure.
# Usage: gallery_check.sh PAGE.html WORKDIR
set -u
page=$(readlink -f "$1"); work=$2
mkdir -p "$work"
browser=$(command -v chromium || command -v chromium-browser || true)
[ -n "$browser" ] || { echo "gallery-check: chromium not installed" >&2; exit 1; }
flags="--headless --no-sandbox --disable-gpu --allow-file-access-from-files --hide-scrollbars"
# shellcheck disable=SC2086
timeout 120 "$browser" $flags --virtual-time-budget=10000 --dump-dom "file://$page" > "$work/dom.html" 2> "$work/chromium.log"
report=$(sed -n '/<pre id="image-check">/,/<\/pre>/p' "$work/dom.html" | sed 's/<[^>]*>//g')
echo "$report" | sed 's/^/  /'
summary=$(echo "$report" | grep '^images ')
[ -n "$summary" ] || { echo "gallery-check: the page's check script did not run" >&2; exit 1; }
loaded=$(echo "$summary" | awk '{print $2}'); total=$(echo "$summary" | awk '{print $4}')
height=$(echo "$summary" | sed 's/.*page height //')
# shellcheck disable=SC2086
timeout 120 "$browser" $flags --virtual-time-budget=10000 --window-size=1400,${height:-2000} --screenshot="$work/gallery.png" "file://$page" >> "$work/chromium.log" 2>&1
fail=0
[ "$total" -ge 1 ] || { echo "gallery-check: no image on the page" >&2; fail=1; }
[ "$loaded" = "$total" ] || { echo "gallery-check: $((total - loaded)) broken image(s)" >&2; fail=1; }
[ "${height:-0}" -ge $((total * 300)) ] || { echo "gallery-check: page height $height too small for $total figures" >&2; fail=1; }
# a blank page of that height compresses to a few kB; figures do not
size=$(wc -c < "$work/gallery.png" 2>/dev/null || echo 0)
[ "$size" -ge $((total * 20000)) ] || { echo "gallery-check: screenshot missing or blank ($size bytes)" >&2; fail=1; }
[ $fail = 0 ] && echo "gallery-check: $loaded of $total images loaded, page height $height px, screenshot $work/gallery.png"
exit $fail
