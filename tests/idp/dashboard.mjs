#!/usr/bin/env node
// Stand-in Kubernetes dashboard that sits behind the auth proxy in tests.
//
// Verifies the bearer token it receives (ID token from the test IdP) with jose and
// reports what it saw, as JSON (GET /whoami.json or ?format=json) or as HTML.
// After listening it prints one JSON line to stdout: {"port":N}. Never logs tokens.

import * as http from 'node:http';
import { createHash } from 'node:crypto';
import { createRemoteJWKSet, jwtVerify } from 'jose';

const log = (...parts) => process.stderr.write(`[dashboard] ${parts.join(' ')}\n`);

const USAGE = `usage: node dashboard.mjs --port N --name c1 --issuer ISSUER_URL --client-id portcullis
                         [--token-header Authorization] [--host 127.0.0.1] [--jwks-uri URL]`;

function parseArgs(argv) {
  const out = {};
  const known = new Set(['port', 'name', 'issuer', 'client-id', 'token-header', 'host', 'jwks-uri']);
  for (let i = 0; i < argv.length; i += 1) {
    let arg = argv[i];
    if (arg === '-h' || arg === '--help') {
      process.stderr.write(`${USAGE}\n`);
      process.exit(0);
    }
    if (!arg.startsWith('--')) throw new Error(`unexpected argument: ${arg}`);
    arg = arg.slice(2);
    let value;
    const eq = arg.indexOf('=');
    if (eq !== -1) {
      value = arg.slice(eq + 1);
      arg = arg.slice(0, eq);
    }
    if (!known.has(arg)) throw new Error(`unknown flag --${arg}\n${USAGE}`);
    if (value === undefined) {
      i += 1;
      if (i >= argv.length) throw new Error(`--${arg} needs a value`);
      value = argv[i];
    }
    out[arg] = value;
  }
  return out;
}

let args;
try {
  args = parseArgs(process.argv.slice(2));
  for (const req of ['issuer', 'client-id']) if (!args[req]) throw new Error(`--${req} is required\n${USAGE}`);
} catch (err) {
  log(err.message);
  process.exit(2);
}

const name = args.name || 'c1';
const issuer = args.issuer;
const clientId = args['client-id'];
const tokenHeader = (args['token-header'] || 'Authorization').toLowerCase();
const host = args.host || '127.0.0.1';
const port = args.port === undefined ? 0 : Number(args.port);
if (!Number.isInteger(port) || port < 0) {
  log(`bad --port ${args.port}`);
  process.exit(2);
}

// ---- lazy discovery + JWKS (cached; retried after failures) ---------------------
let jwksPromise = null;
function getJWKS() {
  if (!jwksPromise) {
    jwksPromise = (async () => {
      let jwksUri = args['jwks-uri'];
      if (!jwksUri) {
        const url = `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
        const res = await fetch(url, { headers: { accept: 'application/json' } });
        if (!res.ok) throw new Error(`discovery ${url} returned HTTP ${res.status}`);
        const meta = await res.json();
        if (!meta.jwks_uri) throw new Error('discovery document has no jwks_uri');
        jwksUri = meta.jwks_uri;
      }
      return createRemoteJWKSet(new URL(jwksUri), { cooldownDuration: 1000 });
    })();
    jwksPromise.catch(() => { jwksPromise = null; });
  }
  return jwksPromise;
}

function extractToken(req) {
  const raw = req.headers[tokenHeader];
  const value = Array.isArray(raw) ? raw[0] : raw;
  if (!value || !value.trim()) return null;
  const v = value.trim();
  const m = /^Bearer\s+(.+)$/i.exec(v);
  if (tokenHeader === 'authorization') return m ? m[1].trim() : null;
  return m ? m[1].trim() : v;
}

const header = (req, h) => {
  const v = req.headers[h];
  return v === undefined ? null : (Array.isArray(v) ? v.join(', ') : v);
};

async function inspect(req) {
  const token = extractToken(req);
  const out = {
    cluster: name,
    path: req.url,
    token_present: Boolean(token),
    verified: false,
    error: null,
    claims: null,
    headers: {
      user: header(req, 'x-auth-request-user'),
      email: header(req, 'x-auth-request-email'),
      groups: header(req, 'x-auth-request-groups'),
      preferred_username: header(req, 'x-auth-request-preferred-username'),
    },
  };
  if (!token) {
    out.error = req.headers[tokenHeader] ? `no bearer token in ${tokenHeader} header` : `no ${tokenHeader} header`;
    return out;
  }
  try {
    const jwks = await getJWKS();
    const { payload } = await jwtVerify(token, jwks, { issuer, audience: clientId });
    out.verified = true;
    out.claims = payload;
  } catch (err) {
    out.error = `${err.code || err.name || 'Error'}: ${err.message}`;
  }
  return out;
}

// ---- HTML ------------------------------------------------------------------
const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({
  '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
}[c]));

function renderHTML(req, info) {
  const protoHeader = header(req, 'x-forwarded-proto');
  const proto = (protoHeader ? protoHeader.split(',')[0].trim() : '') || 'http';
  const hostHeader = req.headers.host || `${host}:${port}`;
  const selfUrl = `${proto}://${hostHeader}${req.url}`;
  const signOut = `/oauth2/sign_out?rd=${encodeURIComponent(selfUrl)}`;
  const c = info.claims || {};
  const email = info.verified ? (c.email || c.sub) : (info.headers.email || null);
  const groups = info.verified && Array.isArray(c.groups) ? c.groups.join(', ')
    : (info.headers.groups || '');
  const expiry = info.verified && typeof c.exp === 'number' ? new Date(c.exp * 1000).toISOString() : '';
  const title = `Dashboard ${name}`;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem}dt{font-weight:600;margin-top:.5rem}code{word-break:break-all}</style>
</head>
<body>
<h1>Stand-in Kubernetes Dashboard — cluster ${esc(name)}</h1>
<dl>
<dt>Signed in as</dt><dd><span id="user">${esc(email || 'anonymous')}</span></dd>
<dt>Token verified</dt><dd><span id="verified">${info.verified ? 'yes' : 'no'}</span></dd>
<dt>Name</dt><dd><span id="name">${esc(info.verified ? c.name || '' : '')}</span></dd>
<dt>Username</dt><dd><span id="preferred-username">${esc(info.verified ? c.preferred_username || '' : info.headers.preferred_username || '')}</span></dd>
<dt>Groups</dt><dd><span id="groups">${esc(groups)}</span></dd>
<dt>Token expires</dt><dd><span id="expiry">${esc(expiry)}</span></dd>
<dt>Path</dt><dd><code id="path">${esc(req.url)}</code></dd>
<dt>Verification error</dt><dd><span id="error">${esc(info.error || '')}</span></dd>
<dt>Proxy headers</dt><dd>user=<span id="hdr-user">${esc(info.headers.user || '')}</span>
 email=<span id="hdr-email">${esc(info.headers.email || '')}</span>
 groups=<span id="hdr-groups">${esc(info.headers.groups || '')}</span>
 preferred_username=<span id="hdr-preferred-username">${esc(info.headers.preferred_username || '')}</span></dd>
</dl>
<p><a id="sign-out" href="${esc(signOut)}">Sign out</a></p>
</body>
</html>
`;
}

// ---- server ----------------------------------------------------------------
// Go servers (the real Dashboard, Headlamp) accept 1 MB of headers; Node defaults to 16 KB.
const server = http.createServer({ maxHeaderSize: 1024 * 1024 }, async (req, res) => {
  try {
    const url = new URL(req.url, 'http://localhost');
    if (url.pathname === '/ws.html') {
      const buf = Buffer.from(WS_PAGE);
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': buf.length });
      res.end(buf);
      return;
    }
    if (url.pathname === '/upload') {
      // Streams the request body back with its byte count and a SHA-256.
      const hash = createHash('sha256');
      let n = 0;
      for await (const chunk of req) { hash.update(chunk); n += chunk.length; }
      const body = Buffer.from(`${JSON.stringify({ bytes: n, sha256: hash.digest('hex') })}\n`);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
      res.end(body);
      return;
    }
    const info = await inspect(req);
    if (url.pathname === '/headers.json') {
      // Every header exactly as received (names as sent), for smuggling tests.
      info.raw_headers = [];
      for (let i = 0; i < req.rawHeaders.length; i += 2) info.raw_headers.push([req.rawHeaders[i], req.rawHeaders[i + 1]]);
    }
    const wantJSON = url.pathname === '/whoami.json' || url.pathname === '/headers.json'
      || url.searchParams.get('format') === 'json';
    log(`${req.method} ${url.pathname} token=${info.token_present} verified=${info.verified}${info.verified ? ` sub=${info.claims.sub}` : ''}`);
    let body;
    let type;
    if (wantJSON) {
      body = `${JSON.stringify(info)}\n`;
      type = 'application/json; charset=utf-8';
    } else {
      body = renderHTML(req, info);
      type = 'text/html; charset=utf-8';
    }
    const buf = Buffer.from(body);
    res.writeHead(200, { 'content-type': type, 'content-length': buf.length, 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : buf);
  } catch (err) {
    log(`error: ${err?.message || err}`);
    if (!res.headersSent) {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('internal error\n');
    } else {
      res.destroy();
    }
  }
});
server.keepAliveTimeout = 5000;

// ---- WebSocket echo (RFC 6455, text frames), like the Dashboard's exec terminal ----
// GET /ws with an Upgrade: first message "hello <X-Auth-Request-Email>", then every
// text message comes back as "echo:<message>".
const WS_PAGE = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>WebSocket echo</title></head>
<body><h1>WebSocket echo</h1><p>Status: <span id="ws-status">connecting</span></p><pre id="ws-log"></pre>
<script>
const log = (m) => { document.getElementById('ws-log').textContent += m + '\\n'; };
const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws');
ws.onopen = () => { ws.send('ping-42'); };
ws.onmessage = (e) => { log(e.data); if (e.data === 'echo:ping-42') document.getElementById('ws-status').textContent = 'echoed'; };
ws.onerror = () => { document.getElementById('ws-status').textContent = 'error'; };
ws.onclose = (e) => { log('closed ' + e.code); };
</script></body></html>
`;

function wsFrame(opcode, payload) {
  const len = payload.length;
  let head;
  if (len < 126) head = Buffer.from([0x80 | opcode, len]);
  else if (len < 65536) { head = Buffer.alloc(4); head[0] = 0x80 | opcode; head[1] = 126; head.writeUInt16BE(len, 2); }
  else { head = Buffer.alloc(10); head[0] = 0x80 | opcode; head[1] = 127; head.writeBigUInt64BE(BigInt(len), 2); }
  return Buffer.concat([head, payload]);
}

server.on('upgrade', (req, socket) => {
  const url = new URL(req.url, 'http://localhost');
  const key = req.headers['sec-websocket-key'];
  if (url.pathname !== '/ws' || !key || String(req.headers.upgrade).toLowerCase() !== 'websocket') {
    socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
    return;
  }
  const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: ${accept}\r\n\r\n`);
  log(`websocket open user=${header(req, 'x-auth-request-email')}`);
  socket.write(wsFrame(1, Buffer.from(`hello ${header(req, 'x-auth-request-email') || 'anonymous'}`)));
  let buf = Buffer.alloc(0);
  socket.on('data', (chunk) => {
    buf = Buffer.concat([buf, chunk]);
    for (;;) {
      if (buf.length < 2) return;
      const opcode = buf[0] & 0x0f;
      const masked = (buf[1] & 0x80) !== 0;
      let len = buf[1] & 0x7f;
      let off = 2;
      if (len === 126) { if (buf.length < 4) return; len = buf.readUInt16BE(2); off = 4; }
      else if (len === 127) { if (buf.length < 10) return; len = Number(buf.readBigUInt64BE(2)); off = 10; }
      const maskOff = off;
      if (masked) off += 4;
      if (buf.length < off + len) return;
      const payload = Buffer.from(buf.subarray(off, off + len));
      if (masked) for (let i = 0; i < len; i += 1) payload[i] ^= buf[maskOff + (i % 4)];
      buf = buf.subarray(off + len);
      if (opcode === 1) socket.write(wsFrame(1, Buffer.concat([Buffer.from('echo:'), payload])));
      else if (opcode === 9) socket.write(wsFrame(10, payload));
      else if (opcode === 8) { socket.end(wsFrame(8, payload.subarray(0, 2))); return; }
    }
  });
  socket.on('error', () => {});
});

server.listen(port, host, () => {
  const actual = server.address().port;
  log(`cluster ${name} listening on ${host}:${actual}; issuer ${issuer}; client ${clientId}; token header ${tokenHeader}`);
  process.stdout.write(`${JSON.stringify({ port: actual })}\n`);
});
server.on('error', (err) => {
  log(`listen error: ${err.message}`);
  process.exit(1);
});

function shutdown(sig) {
  log(`${sig} received, shutting down`);
  server.close(() => process.exit(0));
  server.closeAllConnections?.();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
