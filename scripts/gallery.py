#!/usr/bin/env python3
"""Writes out/gallery/index.html: every experiment of experiments/*.ini with
its figure (out/figures/NAME.png), its claim (experiments/claims/NAME.txt:
first line a title, then one paragraph), the headline numbers of
out/NAME/summary.dat beside the theory's values, the command that regenerates
it and its last runtime (out/NAME/runtime.txt). Static, relative links only:
it works from file:// without a server or a network. An experiment not yet
run is listed with its command instead of a figure (no broken image).
An inline script writes, once the page has loaded, which images loaded into
<pre id="image-check"> (read by scripts/gallery_check.sh through Chromium)."""
import argparse
import glob
import html
import os

CHECK_SCRIPT = """<script>
window.addEventListener('load', function () {
  var imgs = document.querySelectorAll('img'), ok = 0, lines = [];
  for (var i = 0; i < imgs.length; i++) {
    var good = imgs[i].complete && imgs[i].naturalWidth > 0;
    if (good) ok++;
    lines.push((good ? 'loaded ' : 'BROKEN ') + imgs[i].getAttribute('src') + ' ' + imgs[i].naturalWidth + 'x' + imgs[i].naturalHeight);
  }
  lines.push('images ' + ok + ' of ' + imgs.length + ' loaded; page height ' + document.body.scrollHeight);
  document.getElementById('image-check').textContent = lines.join('\\n');
});
</script>"""

STYLE = """body{font-family:sans-serif;max-width:1500px;margin:1em auto;padding:0 1em;color:#222}
section{border-top:1px solid #bbb;padding:0.5em 0 1.5em}
img{max-width:100%;height:auto;border:1px solid #eee}
table{border-collapse:collapse;margin:0.5em 0;font-size:0.92em}
td,th{border:1px solid #ccc;padding:2px 8px;text-align:left;vertical-align:top}
td.num{font-family:monospace;white-space:nowrap}
code{background:#f4f4f4;padding:1px 4px}
.missing{color:#a00}
pre#image-check{font-size:0.8em;color:#555}"""


def read_kv(path):
    out = {}
    if os.path.exists(path):
        with open(path) as fp:
            for line in fp:
                if line.startswith('#') or not line.strip():
                    continue
                k, _, v = line.rstrip('\n').partition(' ')
                out[k] = v
    return out


def read_summary(path):
    rows = []
    if os.path.exists(path):
        with open(path) as fp:
            for line in fp:
                if line.startswith('#') or not line.strip():
                    continue
                parts = line.rstrip('\n').split('\t') + ['', '', '']
                rows.append(parts[:4])
    return rows


def read_claim(path, name):
    if not os.path.exists(path):
        return name, ''
    with open(path) as fp:
        lines = fp.read().strip().split('\n')
    return lines[0], ' '.join(l.strip() for l in lines[1:])


def section(name, out, claims, gallery_dir):
    e = html.escape
    title, claim = read_claim(os.path.join(claims, name + '.txt'), name)
    png = os.path.join(out, 'figures', name + '.png')
    runtime = read_kv(os.path.join(out, name, 'runtime.txt'))
    rows = read_summary(os.path.join(out, name, 'summary.dat'))
    parts = ['<section id="%s">' % e(name), '<h2>%s <small><code>%s</code></small></h2>' % (e(title), e(name))]
    if claim:
        parts.append('<p>%s</p>' % e(claim))
    if os.path.exists(png):
        rel = os.path.relpath(png, gallery_dir)
        parts.append('<a href="%s"><img src="%s" alt="figure %s"></a>' % (e(rel), e(rel), e(name)))
        gif = os.path.join(out, 'figures', name + '.gif')
        if os.path.exists(gif):
            parts.append('<p>Animation: <a href="%s">%s.gif</a></p>' % (e(os.path.relpath(gif, gallery_dir)), e(name)))
    else:
        parts.append('<p class="missing">Figure not generated yet.</p>')
    if rows:
        parts.append('<table><tr><th>quantity</th><th>measured</th><th>theory</th></tr>')
        for key, measured, theory, desc in rows:
            parts.append('<tr><td>%s <small>(<code>%s</code>)</small></td><td class="num">%s</td><td class="num">%s</td></tr>'
                         % (e(desc), e(key), e(measured), e(theory if theory != '-' else '')))
        parts.append('</table>')
    cmd = runtime.get('command', 'make figure NAME=%s' % name)
    if runtime:
        parts.append('<p>Regenerate: <code>%s</code> (%s configuration; the run took %s s of wall time on %s, load %s)</p>'
                     % (e(cmd), e(runtime.get('mode', '?')), e(runtime.get('seconds', '?')),
                        e(runtime.get('date', '?')), e(runtime.get('load', '?'))))
    else:
        parts.append('<p>Regenerate: <code>%s</code> (not run yet)</p>' % e(cmd))
    parts.append('</section>')
    return '\n'.join(parts)


def main():
    ap = argparse.ArgumentParser(description='static figure gallery')
    ap.add_argument('--out', default='out')
    ap.add_argument('--experiments', default='experiments')
    a = ap.parse_args()
    names = sorted(os.path.basename(p)[:-4] for p in glob.glob(os.path.join(a.experiments, '*.ini')))
    gallery = os.path.join(a.out, 'gallery')
    os.makedirs(gallery, exist_ok=True)
    claims = os.path.join(a.experiments, 'claims')
    body = [section(n, a.out, claims, gallery) for n in names]
    toc = ' · '.join('<a href="#%s">%s</a>' % (html.escape(n), html.escape(n)) for n in names)
    page = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>attnflow figures</title>
<style>%s</style></head><body>
<h1>attnflow: every figure, its claim and its numbers</h1>
<p>Generated by <code>make gallery</code> from <code>experiments/*.ini</code>,
<code>plots/*.gp</code>, <code>experiments/claims/</code> and the runs' <code>out/NAME/summary.dat</code>
and <code>runtime.txt</code>. <code>make figures</code> regenerates everything
(<code>QUICK=1</code>: shorter training runs). Runtimes were taken on a shared machine.</p>
<p>%s</p>
%s
<pre id="image-check">images not checked (scripts disabled)</pre>
%s
</body></html>
""" % (STYLE, toc, '\n'.join(body), CHECK_SCRIPT)
    tmp = os.path.join(gallery, 'index.html.tmp')
    with open(tmp, 'w') as fp:
        fp.write(page)
    os.replace(tmp, os.path.join(gallery, 'index.html'))


if __name__ == '__main__':
    main()
