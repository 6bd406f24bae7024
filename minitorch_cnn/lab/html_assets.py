"""The stepper page's style and script: kept in Python strings so that the page needs no package data file
and no network (nothing is fetched: no fonts, no CDN, no images outside the page itself)."""

CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 0; display: flex; height: 100vh; color: #222; }
nav { width: 340px; overflow-y: auto; border-right: 1px solid #ccc; background: #fafafa; }
nav h1 { font-size: 16px; margin: 8px 10px; }
nav .summary { font-size: 12px; margin: 0 10px 8px; color: #555; }
ol#steps { list-style: none; margin: 0; padding: 0; }
li.step { padding: 3px 10px; cursor: pointer; border-bottom: 1px solid #eee; font-size: 12px; }
li.step:hover { background: #eef; }
li.step.open { background: #dde6ff; font-weight: bold; }
li.step .kind { color: #666; }
li.step .bar { display: inline-block; height: 8px; background: #7a9; vertical-align: middle; margin-left: 4px; }
main { flex: 1; overflow-y: auto; padding: 12px 20px; }
section.detail[hidden] { display: none; }
section.detail h2 { margin: 0 0 6px; font-size: 18px; }
table.facts td { padding: 1px 10px 1px 0; vertical-align: top; }
table.facts td:first-child { color: #555; white-space: nowrap; }
pre { background: #f4f4f4; padding: 6px; overflow-x: auto; font-size: 12px; }
img.maps { image-rendering: pixelated; border: 1px solid #ccc; max-width: 100%; }
img.attribution { width: 128px; height: 128px; }
figure { margin: 0; width: 140px; }
.badge { display: inline-block; padding: 1px 6px; border-radius: 3px; font-size: 11px; color: #fff; }
.badge.pass { background: #2a7; } .badge.fail { background: #c33; } .badge.none { background: #999; }
#intro { color: #444; }
"""

# Clicking a step (or opening page.html#step-5) shows its section and hides the others.
# page.html#selftest clicks every step in turn, checks that its section, and only it, became visible,
# and writes the result into <pre id="selftest">: the browser test reads it from the rendered DOM.
JS = """
function openStep(i) {
  document.querySelectorAll('section.detail').forEach(function (s) { s.hidden = s.id !== 'step-' + i; });
  document.querySelectorAll('li.step').forEach(function (li) {
    li.classList.toggle('open', li.dataset.index === String(i));
  });
  var intro = document.getElementById('intro'); if (intro) intro.hidden = true;
}
document.querySelectorAll('li.step').forEach(function (li) {
  li.addEventListener('click', function () {
    openStep(li.dataset.index);
    history.replaceState(null, '', '#step-' + li.dataset.index);
  });
});
function selftest() {
  var items = document.querySelectorAll('li.step'), ok = 0, bad = [];
  items.forEach(function (li) {
    li.click();
    var shown = document.querySelectorAll('section.detail:not([hidden])');
    if (shown.length === 1 && shown[0].id === 'step-' + li.dataset.index) ok++; else bad.push(li.dataset.index);
  });
  var out = document.createElement('pre'); out.id = 'selftest';
  out.textContent = 'clicked ' + items.length + ' steps, ' + ok + ' opened' +
    (bad.length ? ', failed: ' + bad.join(' ') : '');
  document.body.appendChild(out);
  if (items.length) items[0].click();
}
var m = /^#step-(\\d+)$/.exec(location.hash);
if (location.hash === '#selftest') selftest(); else if (m) openStep(m[1]);
"""
