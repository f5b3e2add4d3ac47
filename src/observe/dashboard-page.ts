// The dashboard's page: static HTML, CSS and browser JS served as they are (no build step, no CDN). The
// script renders data.json with textContent only: paths, rule names, details and trace steps are request data.

/** The page. Loads app.css and app.js relative to itself, so it works mounted under any prefix. */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>token-guard</title>
<link rel="stylesheet" href="app.css">
</head>
<body>
<header><h1>token-guard</h1><span id="status">loading…</span></header>
<main>
<section class="cards">
  <div class="card allow"><div class="label">allowed</div><div class="value" id="total-allow">–</div><div class="rate"><span id="rate-allow">–</span>/s</div></div>
  <div class="card deny"><div class="label">denied</div><div class="value" id="total-deny">–</div><div class="rate"><span id="rate-deny">–</span>/s</div></div>
  <div class="card step_up"><div class="label">step-up</div><div class="value" id="total-step_up">–</div><div class="rate"><span id="rate-step_up">–</span>/s</div></div>
</section>
<section><h2>Decisions per second <small id="window"></small></h2><svg id="chart" viewBox="0 0 600 120" preserveAspectRatio="none" role="img" aria-label="decisions per second"></svg>
<div class="legend"><span class="allow">allow</span><span class="deny">deny</span><span class="step_up">step-up</span></div></section>
<div class="grid">
<section><h2>Refusals by reason</h2><table id="reasons"><thead><tr><th>reason</th><th>count</th><th>/s</th></tr></thead><tbody></tbody></table></section>
<section><h2>Top rules</h2><table id="rules"><thead><tr><th>rule</th><th>decisions</th><th>refused</th></tr></thead><tbody></tbody></table></section>
<section><h2>Most refused tokens</h2><table id="denied-tokens"><thead><tr><th>token id</th><th>refusals</th><th>last reason</th></tr></thead><tbody></tbody></table></section>
<section><h2>Most refused subjects</h2><table id="denied-subjects"><thead><tr><th>subject</th><th>issuer</th><th>refusals</th></tr></thead><tbody></tbody></table></section>
<section><h2>Rate-limit headroom</h2><table id="rate-limits"><thead><tr><th>token id</th><th>remaining</th><th>limit</th><th>reset (s)</th></tr></thead><tbody></tbody></table></section>
</div>
<section><h2>Recent refusals</h2><table id="recent-denials"><thead><tr><th>time</th><th>request</th><th>status</th><th>reason</th><th>rule</th><th>token id</th><th>subject</th><th>issuer</th><th>request id</th><th>detail</th></tr></thead><tbody></tbody></table></section>
</main>
<script src="app.js"></script>
</body>
</html>
`;

/** The page's styles. */
export const DASHBOARD_CSS = `:root { --allow: #2e7d32; --deny: #c62828; --step_up: #ef6c00; font-family: system-ui, sans-serif; color: #222; background: #fafafa; }
body { margin: 0; }
header { display: flex; align-items: baseline; gap: 1rem; padding: .75rem 1.25rem; background: #263238; color: #fff; }
header h1 { margin: 0; font-size: 1.2rem; }
#status { font-size: .85rem; opacity: .8; }
main { padding: 1rem 1.25rem; }
h2 { font-size: 1rem; margin: 1rem 0 .4rem; }
small { font-weight: normal; color: #666; }
.cards { display: flex; gap: 1rem; }
.card { flex: 1; background: #fff; border-radius: 6px; padding: .75rem 1rem; border-top: 4px solid; box-shadow: 0 1px 2px rgba(0,0,0,.1); }
.card.allow { border-color: var(--allow); } .card.deny { border-color: var(--deny); } .card.step_up { border-color: var(--step_up); }
.label { color: #666; font-size: .85rem; } .value { font-size: 2rem; font-weight: 600; } .rate { color: #666; font-size: .85rem; }
svg { width: 100%; height: 120px; background: #fff; border-radius: 6px; }
rect.allow { fill: var(--allow); } rect.deny { fill: var(--deny); } rect.step_up { fill: var(--step_up); }
.legend span { margin-right: 1rem; font-size: .8rem; } .legend span::before { content: "■ "; }
.legend .allow::before { color: var(--allow); } .legend .deny::before { color: var(--deny); } .legend .step_up::before { color: var(--step_up); }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 0 1.5rem; }
table { width: 100%; border-collapse: collapse; background: #fff; font-size: .85rem; }
th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid #eee; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.detail { color: #555; max-width: 28rem; overflow-wrap: anywhere; }
td.detail details { margin-top: .2rem; }
td.detail summary { cursor: pointer; color: #37474f; }
td.detail ol { margin: .2rem 0 0; padding-left: 1.4rem; font-family: ui-monospace, monospace; font-size: .8rem; }
td.detail li.fail { color: var(--deny); }
tr.empty td { color: #999; font-style: italic; }
`;

/** The page's script: polls data.json and renders it. Plain ES2017, no framework. */
export const DASHBOARD_JS = `'use strict';
(function () {
  var EFFECTS = ['allow', 'deny', 'step_up'];
  var SVG = 'http://www.w3.org/2000/svg';
  function $(id) { return document.getElementById(id); }
  function fmt(n) { return n >= 10 || n === 0 ? String(Math.round(n)) : n.toFixed(2); }
  function cell(tr, text, cls) {
    var td = document.createElement('td');
    if (text && typeof text === 'object' && text.nodeType) td.appendChild(text);
    else td.textContent = text === undefined || text === null ? '' : String(text);
    if (cls) td.className = cls;
    tr.appendChild(td);
  }
  function fill(id, rows, columns) {
    var body = $(id).tBodies[0];
    while (body.firstChild) body.removeChild(body.firstChild);
    if (rows.length === 0) {
      var tr = document.createElement('tr');
      tr.className = 'empty';
      var td = document.createElement('td');
      td.colSpan = columns.length;
      td.textContent = 'none';
      tr.appendChild(td);
      body.appendChild(tr);
      return;
    }
    rows.forEach(function (row) {
      var tr = document.createElement('tr');
      columns.forEach(function (c) { cell(tr, c[0](row), c[1]); });
      body.appendChild(tr);
    });
  }
  function chart(perSecond) {
    var svg = $('chart');
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    var max = 1;
    perSecond.forEach(function (s) { max = Math.max(max, s.allow + s.deny + s.step_up); });
    var w = 600 / Math.max(1, perSecond.length);
    perSecond.forEach(function (s, i) {
      var y = 120;
      EFFECTS.forEach(function (e) {
        if (!s[e]) return;
        var h = (s[e] / max) * 116;
        y -= h;
        var r = document.createElementNS(SVG, 'rect');
        r.setAttribute('x', String(i * w + 0.5));
        r.setAttribute('y', String(y));
        r.setAttribute('width', String(Math.max(1, w - 1)));
        r.setAttribute('height', String(h));
        r.setAttribute('class', e);
        svg.appendChild(r);
      });
    });
  }
  // A refusal's detail, and its trace (policy auditTrace) as a closed <details>: one line per step.
  function detail(r) {
    var frag = document.createDocumentFragment();
    if (r.detail !== undefined && r.detail !== null) frag.appendChild(document.createTextNode(String(r.detail)));
    if (!Array.isArray(r.trace) || r.trace.length === 0) return frag;
    var details = document.createElement('details');
    details.className = 'trace';
    var summary = document.createElement('summary');
    summary.textContent = 'trace (' + r.trace.length + (r.trace.length === 1 ? ' step)' : ' steps)');
    details.appendChild(summary);
    var ol = document.createElement('ol');
    r.trace.forEach(function (s) {
      var li = document.createElement('li');
      li.className = String(s.outcome);
      li.textContent = [s.phase, s.step, s.level, s.outcome, s.reason, s.detail].filter(function (v) { return v !== undefined && v !== null && v !== ''; }).join(' · ');
      ol.appendChild(li);
    });
    details.appendChild(ol);
    frag.appendChild(details);
    return frag;
  }
  function time(ms) { return new Date(ms).toISOString().replace('T', ' ').slice(0, 19); }
  function render(d) {
    EFFECTS.forEach(function (e) {
      $('total-' + e).textContent = String(d.total[e]);
      $('rate-' + e).textContent = fmt(d.rate[e]);
    });
    $('window').textContent = '(last ' + d.windowS + ' s)';
    chart(d.perSecond);
    fill('reasons', d.reasons, [[function (r) { return r.reason; }], [function (r) { return r.count; }, 'num'], [function (r) { return fmt(r.perSecond); }, 'num']]);
    fill('rules', d.rules, [[function (r) { return r.rule; }], [function (r) { return r.count; }, 'num'], [function (r) { return r.denied; }, 'num']]);
    fill('denied-tokens', d.deniedTokens, [[function (r) { return r.tokenId; }], [function (r) { return r.count; }, 'num'], [function (r) { return r.lastReason; }]]);
    fill('denied-subjects', d.deniedSubjects, [[function (r) { return r.subject; }], [function (r) { return r.issuer; }], [function (r) { return r.count; }, 'num']]);
    fill('rate-limits', d.rateLimits, [[function (r) { return r.tokenId; }], [function (r) { return r.remaining; }, 'num'], [function (r) { return r.limit; }, 'num'], [function (r) { return r.resetS; }, 'num']]);
    fill('recent-denials', d.recentDenials, [
      [function (r) { return time(r.time); }],
      [function (r) { return r.method + ' ' + r.path; }],
      [function (r) { return r.status; }, 'num'],
      [function (r) { return r.reasons.length > 1 ? r.reasons.join(', ') : r.reason; }],
      [function (r) { return r.rule; }],
      [function (r) { return r.tokenId; }],
      [function (r) { return r.subject; }],
      [function (r) { return r.issuer; }],
      [function (r) { return r.requestId; }],
      [detail, 'detail'],
    ]);
    $('status').textContent = 'updated ' + time(Date.now());
    document.body.setAttribute('data-loaded', 'true');
  }
  var interval = Number(document.documentElement.getAttribute('data-interval')) || 2000;
  function poll() {
    fetch('data.json', { cache: 'no-store', credentials: 'same-origin' })
      .then(function (r) { if (!r.ok) throw new Error('HTTP ' + r.status); return r.json(); })
      .then(render)
      .catch(function (e) { $('status').textContent = 'cannot load data: ' + e.message; })
      .then(function () { setTimeout(poll, interval); });
  }
  poll();
})();
`;
