// Views, breadcrumb and search. The location hash drives both (#dir=/usr&search=bin/sh),
// so a link (or a headless browser) can open any state. Image strings only ever reach the
// page through textContent.
(function () {
  var views = Array.prototype.slice.call(document.querySelectorAll('svg.tm'));
  var status = document.getElementById('tm-status');
  var crumbs = document.getElementById('crumbs');
  var input = document.getElementById('q');
  var results = document.getElementById('results');
  var count = document.getElementById('q-count');
  var paths = JSON.parse(document.getElementById('paths').textContent);

  function hashParams() {
    var out = {};
    location.hash.replace(/^#/, '').split('&').forEach(function (kv) {
      var i = kv.indexOf('=');
      if (i > 0) { out[kv.slice(0, i)] = decodeURIComponent(kv.slice(i + 1)); }
    });
    return out;
  }
  function setHash(p) {
    var parts = [];
    Object.keys(p).forEach(function (k) { if (p[k]) { parts.push(k + '=' + encodeURIComponent(p[k])); } });
    location.hash = parts.join('&');
  }
  function show(dir) {
    var shown = null;
    views.forEach(function (v) { var on = v.getAttribute('data-dir') === dir; v.classList.toggle('on', on); if (on) { shown = v; } });
    if (!shown) { dir = '/'; shown = views[0]; shown.classList.add('on'); }
    drawCrumbs(dir);
    var n = 0;
    shown.querySelectorAll('rect.cell').forEach(function (r) { var b = r.getBoundingClientRect(); if (b.width > 0 && b.height > 0) { n++; } });
    status.setAttribute('data-dir', dir);
    status.setAttribute('data-cells', String(n));
    status.textContent = n + ' cells in ' + dir;
  }
  function drawCrumbs(dir) {
    crumbs.textContent = '';
    var acc = '';
    add('/', '/');
    dir.split('/').filter(Boolean).forEach(function (p) { acc += '/' + p; add(p, acc); });
    function add(label, target) {
      if (crumbs.firstChild) { crumbs.appendChild(document.createTextNode(target.lastIndexOf('/') > 0 ? ' / ' : ' ')); }
      var a = document.createElement('a');
      a.href = '#dir=' + encodeURIComponent(target);
      a.textContent = label;
      crumbs.appendChild(a);
    }
  }
  function search(q) {
    results.textContent = '';
    if (!q) { count.textContent = ''; return; }
    var ql = q.toLowerCase(), n = 0;
    paths.forEach(function (p) {
      if (p[0].toLowerCase().indexOf(ql) < 0) { return; }
      n++;
      if (n > 200) { return; }
      var li = document.createElement('li');
      li.setAttribute('data-path', p[0]);
      li.setAttribute('data-class', p[4]);
      var a = document.createElement('a');
      var parent = p[0].replace(/\/[^\/]*$/, '') || '/';
      a.href = '#dir=' + encodeURIComponent(parent) + '&search=' + encodeURIComponent(q);
      a.textContent = p[0];
      var d = document.createElement('span');
      d.className = 'd';
      d.textContent = ' (' + p[2] + ', ' + p[1] + ' bytes) ' + p[3];
      li.appendChild(a);
      li.appendChild(d);
      results.appendChild(li);
    });
    count.textContent = n + ' match' + (n === 1 ? '' : 'es') + (n > 200 ? ' (first 200 shown)' : '');
  }
  function route() {
    var p = hashParams();
    show(p.dir || '/');
    if ((p.search || '') !== input.value) { input.value = p.search || ''; }
    search(input.value);
  }
  document.addEventListener('click', function (ev) {
    var r = ev.target.closest && ev.target.closest('rect[data-dir]');
    if (r) { var p = hashParams(); p.dir = r.getAttribute('data-dir'); setHash(p); }
  });
  input.addEventListener('input', function () { var p = hashParams(); p.search = input.value; setHash(p); });
  window.addEventListener('hashchange', route);
  route();
})();
