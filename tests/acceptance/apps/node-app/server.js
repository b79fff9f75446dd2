// node-app acceptance app: core http/crypto/zlib plus two npm dependencies.
'use strict';
const http = require('http');
const crypto = require('crypto');
const zlib = require('zlib');
const fs = require('fs');
const path = require('path');
const ms = require('ms');
const escapeHtml = require('escape-html');

const PORT = Number(process.env.PORT || 18083);
const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, 'package.json'), 'utf8'));

function data() {
  const items = Array.from({ length: 50 }, (_, i) => ({ id: i, v: (i * 7919) % 101 }));
  const json = JSON.stringify(items);
  return {
    name: pkg.name,
    deps: Object.keys(pkg.dependencies).sort(),
    sha256: crypto.createHash('sha256').update(json).digest('hex'),
    gzipLen: zlib.gzipSync(json, { level: 9 }).length,
    durations: ['90s', '2h', '1d'].map((d) => ms(d)),
    pretty: ms(123456789, { long: true }),
    escaped: escapeHtml('<a href="x">&</a>'),
  };
}

http.createServer((req, res) => {
  if (req.url === '/health') {
    res.writeHead(200, { 'Content-Type': 'text/plain' }); res.end('ok\n');
  } else if (req.url === '/data') {
    res.writeHead(200, { 'Content-Type': 'application/json' }); res.end(JSON.stringify(data()) + '\n');
  } else if (req.url === '/hello') {
    res.writeHead(200, { 'Content-Type': 'text/html' });
    res.end(`<p>${escapeHtml('Hello <imgslim> & friends')}</p>\n`);
  } else {
    res.writeHead(404, { 'Content-Type': 'text/plain' }); res.end('not found\n');
  }
}).listen(PORT, '0.0.0.0');
