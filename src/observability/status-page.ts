// observability/status-page: the admin server's human page at `/` (issue 14 #3) — backends (state, last sync,
// last error, staleness), services and their instances, cache figures and end-to-end propagation, refreshed live
// by polling /v1/status once a second and /v1/services when the store generation moved.
//
// Plain HTML and one small script, served from these strings: no build step. Every name shown comes from the
// registry, so the script builds the DOM with createElement/textContent only (never innerHTML with data), and the
// page is served with a Content-Security-Policy that allows no inline script at all (the script is /status.js).
//
// Health: DNS answers from healthy instances only (§6.1); backends also list the registered instances they do not
// serve and why (Service.unhealthy: `not ready`, `check service:web-2 critical`, `healthy: false`...). The page
// shows each service's healthy instances, then its unhealthy ones (struck through, with the reason), a service with
// no healthy one flagged "no healthy instance" (NODATA, §5.3), and per backend why data may be old.

export const STATUS_PAGE_CSP = "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>svcdns status</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
  h1 { font-size: 1.4em; margin: 0 0 .2em; } h2 { font-size: 1.1em; margin: 1.4em 0 .4em; }
  table { border-collapse: collapse; width: 100%; } th, td { text-align: left; padding: .25em .6em; border-bottom: 1px solid #ddd; vertical-align: top; }
  th { background: #f4f4f4; } code { font-size: .95em; }
  .ok { color: #176f2c; font-weight: 600; } .warn { color: #a15c00; font-weight: 600; } .bad { color: #b3261e; font-weight: 600; }
  .muted { color: #777; } .figures td:first-child { width: 16em; }
  .unhealthy code { color: #777; text-decoration: line-through; } .unhealthy .reason { color: #b3261e; }
</style>
</head>
<body>
<h1>svcdns status</h1>
<div id="summary" class="muted">loading…</div>
<h2>Backends</h2>
<table id="backends"><thead><tr><th>backend</th><th>type</th><th>state</th><th>last sync</th><th>last error</th><th>services</th><th>healthy instances</th></tr></thead><tbody></tbody></table>
<h2>Propagation (backend event → first answer)</h2>
<table id="propagation"><thead><tr><th>backend</th><th>changes</th><th>last</th><th>mean</th><th>max</th></tr></thead><tbody></tbody></table>
<h2>Answer cache</h2>
<table id="cache" class="figures"><tbody></tbody></table>
<h2>Services</h2>
<table id="services"><thead><tr><th>service</th><th>scope</th><th>backends</th><th>health</th><th>instances</th></tr></thead><tbody></tbody></table>
<script src="/status.js"></script>
</body>
</html>
`;

export const STATUS_PAGE_SCRIPT = `'use strict';
(function () {
  var REFRESH_MS = 1000;
  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function row(cells) {
    var tr = document.createElement('tr');
    for (var i = 0; i < cells.length; i++) {
      var c = cells[i];
      var td = document.createElement('td');
      if (c instanceof Node) td.appendChild(c); else td.textContent = c === null || c === undefined ? '' : String(c);
      tr.appendChild(td);
    }
    return tr;
  }
  function fill(id, rows) {
    var body = document.querySelector('#' + id + ' tbody');
    body.replaceChildren.apply(body, rows);
  }
  function ms(seconds) { return seconds === null || seconds === undefined ? '' : (seconds * 1000).toFixed(seconds < 0.01 ? 2 : 1) + ' ms'; }
  function age(seconds) { return seconds === null ? 'never' : seconds < 1 ? 'just now' : Math.round(seconds) + ' s ago'; }
  function render(status, view) {
    var r = status.readiness;
    var summary = document.getElementById('summary');
    summary.replaceChildren(
      el('span', r.draining ? 'draining' : r.ready ? 'ready' : 'not ready', r.draining || !r.ready ? 'bad' : 'ok'),
      el('span', ' · generation ' + view.generation + ' · serial ' + view.serial + ' · ' + view.services.length + ' names · updated ' + new Date(status.nowMs).toLocaleTimeString())
    );
    summary.className = '';
    fill('backends', r.backends.map(function (b) {
      var cls = b.state === 'synced' ? 'ok' : b.state === 'stale' ? 'bad' : 'warn';
      var state = el('span', b.state + (b.stale && b.staleForSeconds !== null ? ' for ' + Math.round(b.staleForSeconds) + ' s' : ''), cls);
      var err = b.lastError ? el('code', b.lastError.code + ': ' + b.lastError.message) : el('span', 'none', 'muted');
      var tr = row([b.name, b.type, state, age(b.lastSyncAgeSeconds), err, b.services, b.instances]);
      tr.dataset.backend = b.name;
      return tr;
    }));
    var prop = status.propagation.map(function (p) {
      var tr = row([p.backend, p.count, ms(p.lastSeconds), ms(p.meanSeconds), ms(p.maxSeconds)]);
      tr.dataset.backend = p.backend;
      return tr;
    });
    if (prop.length === 0) prop = [row([el('span', 'no change served yet', 'muted'), '', '', '', ''])];
    fill('propagation', prop);
    var c = status.cache;
    var total = c.hits + c.misses;
    fill('cache', [
      row(['hits', c.hits]), row(['misses', c.misses]),
      row(['hit ratio', total === 0 ? '' : (100 * c.hits / total).toFixed(1) + ' %']),
      row(['names cached', c.names])
    ]);
    fill('services', view.services.map(function (s) {
      var list = el('div');
      for (var i = 0; i < s.instances.length; i++) {
        var inst = s.instances[i];
        var ports = inst.ports.map(function (p) { return (p.name ? p.name + ':' : '') + p.port + '/' + p.protocol; }).join(', ');
        var line = el('div');
        line.appendChild(el('code', inst.address + (ports ? ' ' + ports : '')));
        if (inst.name) line.appendChild(el('span', ' ' + inst.name, 'muted'));
        if (inst.tags.length) line.appendChild(el('span', ' [' + inst.tags.join(', ') + ']', 'muted'));
        line.dataset.address = inst.address;
        list.appendChild(line);
      }
      var bad = s.unhealthy || [];
      for (var j = 0; j < bad.length; j++) {
        var u = bad[j];
        var uline = el('div', null, 'unhealthy');
        uline.appendChild(el('code', u.address));
        if (u.name) uline.appendChild(el('span', ' ' + u.name, 'muted'));
        uline.appendChild(el('span', ' unhealthy: ', 'muted'));
        uline.appendChild(el('span', u.reason, 'reason'));
        uline.dataset.address = u.address;
        list.appendChild(uline);
      }
      var n = s.instances.length;
      var health = el('span');
      health.appendChild(n > 0 ? el('span', n + ' healthy', 'ok') : el('span', 'no healthy instance (NODATA)', 'bad'));
      if (bad.length) health.appendChild(el('span', ', ' + bad.length + ' unhealthy', 'warn'));
      var tr = row([s.name, s.scope === null ? '(unscoped)' : s.scope, s.backends.join(', '), health, list]);
      tr.dataset.service = s.name;
      tr.dataset.scope = s.scope === null ? '' : s.scope;
      return tr;
    }));
  }
  function get(url) {
    return fetch(url, { cache: 'no-store' }).then(function (res) { return res.json(); });
  }
  // /v1/services holds the whole catalogue (MBs at 10k services, serialised on the thread that answers DNS): it
  // is fetched again only when the store generation moved; /v1/status is small and read every tick.
  var view = null;
  function tick() {
    get('/v1/status').then(function (status) {
      if (view !== null && view.generation === status.generation) return [status, view];
      return get('/v1/services').then(function (v) { view = v; return [status, v]; });
    }).then(function (both) {
      render(both[0], both[1]);
    }, function (err) {
      var summary = document.getElementById('summary');
      summary.textContent = 'admin server unreachable: ' + err.message;
      summary.className = 'bad';
    }).then(function () { setTimeout(tick, REFRESH_MS); });
  }
  tick();
})();
`;
