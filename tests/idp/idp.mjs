#!/usr/bin/env node
// Dex-like test OpenID Provider for Portcullis integration tests.
//
// Built on `oidc-provider`. Listens first (port 0 = ephemeral), then constructs
// the Provider with issuer http://<host>:<port>, then prints exactly one JSON
// line to stdout: {"issuer":"http://127.0.0.1:41234","port":41234}
// Everything else goes to stderr. See README.md for flags and test endpoints.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';

// oidc-provider prints an "Unsupported runtime" warning on Node < 22 (it runs fine
// on Node 20.19+). Keep stdout clean: that warning goes through console.warn
// (stderr) but we filter it so the logs stay short.
const origWarn = console.warn;
console.warn = (...args) => {
  if (typeof args[0] === 'string' && args[0].includes('Unsupported runtime')) return;
  origWarn(...args);
};
const { default: Provider, interactionPolicy, errors: oidcErrors } = await import('oidc-provider');

// ---------------------------------------------------------------------------
// logging (stderr only)
// ---------------------------------------------------------------------------
const log = (...parts) => process.stderr.write(`[idp] ${parts.join(' ')}\n`);

// ---------------------------------------------------------------------------
// CLI
// ---------------------------------------------------------------------------
const USAGE = `usage: node idp.mjs [--port N] [--host 127.0.0.1] [--issuer-host NAME]
                   [--config file.json] [--client ID:SECRET:REDIRECT_URI]...
                   [--id-token-ttl N] [--access-token-ttl N] [--refresh-token-ttl N]
                   [--session-ttl N] [--sso] [--multiple-grants]
env: IDP_CONFIG='{"clients":[...],"users":[...],"ttl":{...}}'
     IDP_CLIENTS='ID:SECRET:URI ID2:SECRET2:URI2'   (whitespace separated)`;

function parseArgs(argv) {
  const out = { clients: [] };
  const takesValue = new Set([
    'port', 'host', 'issuer-host', 'config', 'client',
    'id-token-ttl', 'access-token-ttl', 'refresh-token-ttl', 'session-ttl',
  ]);
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
    if (arg === 'sso' || arg === 'no-sso') {
      out.sso = arg === 'sso';
      continue;
    }
    // Dex keeps one refresh token per (user, client); --multiple-grants turns that off.
    if (arg === 'multiple-grants' || arg === 'no-multiple-grants') {
      out.one_refresh_token_per_user_client = arg === 'no-multiple-grants';
      continue;
    }
    if (!takesValue.has(arg)) throw new Error(`unknown flag --${arg}\n${USAGE}`);
    if (value === undefined) {
      i += 1;
      if (i >= argv.length) throw new Error(`--${arg} needs a value`);
      value = argv[i];
    }
    if (arg === 'client') out.clients.push(value);
    else out[arg] = value;
  }
  return out;
}

function toInt(name, v) {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got ${v}`);
  return n;
}

// "ID:SECRET:REDIRECT_URI" - split on the first two ':' only (the URI contains ':').
function parseClientSpec(spec) {
  const a = spec.indexOf(':');
  const b = a === -1 ? -1 : spec.indexOf(':', a + 1);
  if (a <= 0 || b === -1) throw new Error(`bad client spec "${spec}", want ID:SECRET:REDIRECT_URI`);
  const client_id = spec.slice(0, a);
  const client_secret = spec.slice(a + 1, b);
  const uri = spec.slice(b + 1);
  return { client_id, client_secret, redirect_uris: uri ? [uri] : [] };
}

// ---------------------------------------------------------------------------
// configuration
// ---------------------------------------------------------------------------
const DEFAULT_CLIENTS = [
  { client_id: 'portcullis', client_secret: 'portcullis-secret', redirect_uris: [] },
];

function manyGroups(n) {
  const areas = ['kubernetes-platform-engineering', 'observability-and-alerting', 'data-pipeline-operations',
    'identity-and-access-control', 'release-engineering-tooling'];
  const roles = ['readers', 'writers', 'admins'];
  const groups = [];
  for (let i = 1; i <= n; i += 1) {
    const area = areas[(i - 1) % areas.length];
    const role = roles[Math.floor((i - 1) / areas.length) % roles.length];
    groups.push(`team-${String(i).padStart(4, '0')}-${area}-${role}`);
  }
  return groups;
}

const DEFAULT_USERS = [
  {
    email: 'alice@example.test', password: 'alice-password', name: 'Alice Admin',
    preferred_username: 'alice', groups: ['platform-admins', 'developers'],
  },
  {
    email: 'bob@example.test', password: 'bob-password', name: 'Bob Builder',
    preferred_username: 'bob', groups: ['developers'],
  },
  {
    email: 'eve@example.test', password: 'eve-password', name: 'Eve Outsider',
    preferred_username: 'eve', groups: ['contractors'],
  },
  {
    email: 'mallory@example.test', password: 'mallory-password', name: 'Mallory Unverified',
    preferred_username: 'mallory', groups: ['developers'], email_verified: false,
  },
  {
    email: 'grace@example.test', password: 'grace-password', name: 'Grace Many-Groups',
    preferred_username: 'grace', groups: manyGroups(150),
  },
];

const DEFAULT_TTL = {
  id_token: 300,
  access_token: 300,
  refresh_token: 86400,
  session: 86400,
  authorization_code: 60,
  interaction: 3600,
};

function mergeByKey(base, extra, key, mergeFn = (a, b) => ({ ...a, ...b })) {
  const out = base.map((x) => ({ ...x }));
  for (const item of extra || []) {
    const idx = out.findIndex((x) => String(x[key]).toLowerCase() === String(item[key]).toLowerCase());
    if (idx === -1) out.push({ ...item });
    else out[idx] = mergeFn(out[idx], item);
  }
  return out;
}

function loadConfig(args) {
  const layers = [];
  if (args.config) layers.push(JSON.parse(fs.readFileSync(args.config, 'utf8')));
  if (process.env.IDP_CONFIG) layers.push(JSON.parse(process.env.IDP_CONFIG));

  let clients = DEFAULT_CLIENTS;
  let users = DEFAULT_USERS;
  let ttl = { ...DEFAULT_TTL };
  const cfg = {
    sso: false,
    revoke_grant_on_refresh_reuse: false,
    rp_initiated_logout: true,
    one_refresh_token_per_user_client: true,
  };

  for (const layer of layers) {
    if (layer.default_clients === false) clients = [];
    if (layer.default_users === false) users = [];
    if (layer.clients) clients = mergeByKey(clients, layer.clients, 'client_id');
    if (layer.users) users = mergeByKey(users, layer.users, 'email');
    if (layer.ttl) ttl = { ...ttl, ...layer.ttl };
    for (const k of ['sso', 'revoke_grant_on_refresh_reuse', 'rp_initiated_logout', 'one_refresh_token_per_user_client']) {
      if (k in layer) cfg[k] = Boolean(layer[k]);
    }
  }

  // --client flags and IDP_CLIENTS: same client_id repeated => redirect URIs are unioned.
  const specs = [
    ...(process.env.IDP_CLIENTS ? process.env.IDP_CLIENTS.split(/\s+/).filter(Boolean) : []),
    ...args.clients,
  ];
  const fromFlags = new Map();
  for (const spec of specs) {
    const c = parseClientSpec(spec);
    const prev = fromFlags.get(c.client_id);
    if (prev) {
      prev.client_secret = c.client_secret;
      for (const u of c.redirect_uris) if (!prev.redirect_uris.includes(u)) prev.redirect_uris.push(u);
    } else {
      fromFlags.set(c.client_id, c);
    }
  }
  // a flag for an already configured client sets its secret and adds redirect URIs
  clients = mergeByKey(clients, [...fromFlags.values()], 'client_id', (a, b) => ({
    ...a,
    client_secret: b.client_secret,
    redirect_uris: [...new Set([...(a.redirect_uris || []), ...b.redirect_uris])],
  }));

  if (args['id-token-ttl'] !== undefined) {
    const n = toInt('--id-token-ttl', args['id-token-ttl']);
    ttl.id_token = n;
    ttl.access_token = n;
  }
  if (args['access-token-ttl'] !== undefined) ttl.access_token = toInt('--access-token-ttl', args['access-token-ttl']);
  if (args['refresh-token-ttl'] !== undefined) ttl.refresh_token = toInt('--refresh-token-ttl', args['refresh-token-ttl']);
  if (args['session-ttl'] !== undefined) ttl.session = toInt('--session-ttl', args['session-ttl']);
  if (args.sso !== undefined) cfg.sso = args.sso;
  if (args.one_refresh_token_per_user_client !== undefined) {
    cfg.one_refresh_token_per_user_client = args.one_refresh_token_per_user_client;
  }

  for (const [k, v] of Object.entries(ttl)) {
    if (!Number.isInteger(v) || v <= 0) throw new Error(`ttl.${k} must be a positive integer (seconds)`);
  }

  return { ...cfg, clients, users, ttl };
}

// ---------------------------------------------------------------------------
// users / accounts
// ---------------------------------------------------------------------------

// Dex encodes `sub` as base64url(protobuf{1: user_id, 2: connector_id}). We do the
// same with a deterministic UUID-shaped user_id derived from the email and
// connector "local", giving stable opaque "CiQ..." subjects.
function pbString(field, str) {
  const bytes = Buffer.from(str, 'utf8');
  const len = [];
  let n = bytes.length;
  while (n > 0x7f) { len.push((n & 0x7f) | 0x80); n >>>= 7; }
  len.push(n);
  return Buffer.concat([Buffer.from([(field << 3) | 2, ...len]), bytes]);
}
function dexSub(userId, connectorId = 'local') {
  return Buffer.concat([pbString(1, userId), pbString(2, connectorId)]).toString('base64url');
}
function userIdFor(email) {
  const h = crypto.createHash('sha256').update(`portcullis-test-idp:${email.toLowerCase()}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

function normalizeUser(u) {
  if (!u.email) throw new Error('every user needs an email');
  const user_id = u.user_id || userIdFor(u.email);
  return {
    email: u.email,
    password: u.password ?? '',
    name: u.name ?? u.email,
    preferred_username: u.preferred_username ?? u.email.split('@')[0],
    groups: Array.isArray(u.groups) ? [...u.groups] : [],
    email_verified: u.email_verified === undefined ? true : Boolean(u.email_verified),
    disabled: Boolean(u.disabled),
    user_id,
    sub: u.sub || dexSub(user_id),
  };
}

const publicUser = (u) => {
  const { password, ...rest } = u;
  return rest;
};

// ---------------------------------------------------------------------------
// in-memory adapter (no LRU eviction, unlike oidc-provider's bundled one)
// ---------------------------------------------------------------------------
const GRANTABLE = new Set(['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode',
  'BackchannelAuthenticationRequest', 'PreAuthorizedCode']);

function makeAdapterClass(shouldSkipRevoke) {
  const store = new Map(); // key -> { payload, exp (ms epoch | Infinity) }
  const grantIndex = new Map(); // grantId -> Set<key>
  const uidIndex = new Map(); // session uid -> id
  const userCodeIndex = new Map();

  const alive = (e) => e && e.exp > Date.now();
  const sweep = setInterval(() => {
    const now = Date.now();
    for (const [k, e] of store) if (e.exp <= now) store.delete(k);
    for (const [g, keys] of grantIndex) {
      for (const k of keys) if (!store.has(k)) keys.delete(k);
      if (!keys.size) grantIndex.delete(g);
    }
  }, 30_000);
  sweep.unref();

  return class TestAdapter {
    constructor(model) { this.model = model; }

    // Live (stored, unexpired) refresh tokens: [{ id, payload }].
    static refreshTokens() {
      const out = [];
      for (const [key, e] of store) {
        if (key.startsWith('RefreshToken:') && alive(e)) out.push({ id: key.slice('RefreshToken:'.length), payload: e.payload });
      }
      return out;
    }

    // Deletes every stored refresh token of (accountId, clientId) except keepId,
    // consumed (rotated-away) ones included, like Dex's DeleteRefresh of the
    // previous refresh token of that pair. Returns the deleted [{ id, payload }].
    static deleteRefreshTokensFor(accountId, clientId, keepId) {
      const removed = [];
      for (const [key, e] of [...store]) {
        if (!key.startsWith('RefreshToken:')) continue;
        const id = key.slice('RefreshToken:'.length);
        if (id === keepId || e.payload?.accountId !== accountId || e.payload?.clientId !== clientId) continue;
        store.delete(key);
        if (e.payload.grantId) grantIndex.get(e.payload.grantId)?.delete(key);
        if (alive(e)) removed.push({ id, payload: e.payload });
      }
      return removed;
    }

    key(id) { return `${this.model}:${id}`; }

    async upsert(id, payload, expiresIn) {
      const key = this.key(id);
      const exp = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : Infinity;
      store.set(key, { payload, exp });
      if (this.model === 'Session' && payload.uid) uidIndex.set(payload.uid, id);
      if (payload.userCode) userCodeIndex.set(payload.userCode, id);
      if (GRANTABLE.has(this.model) && payload.grantId) {
        if (!grantIndex.has(payload.grantId)) grantIndex.set(payload.grantId, new Set());
        grantIndex.get(payload.grantId).add(key);
      }
    }

    async find(id) {
      const e = store.get(this.key(id));
      if (!alive(e)) return undefined;
      return e.payload;
    }

    async findByUid(uid) {
      const id = uidIndex.get(uid);
      return id === undefined ? undefined : this.find(id);
    }

    async findByUserCode(userCode) {
      const id = userCodeIndex.get(userCode);
      return id === undefined ? undefined : this.find(id);
    }

    async consume(id) {
      const e = store.get(this.key(id));
      if (e) e.payload.consumed = Math.floor(Date.now() / 1000);
    }

    async destroy(id) {
      const key = this.key(id);
      const e = store.get(key);
      store.delete(key);
      if (e?.payload?.grantId) grantIndex.get(e.payload.grantId)?.delete(key);
    }

    async revokeByGrantId(grantId) {
      if (shouldSkipRevoke()) return;
      const keys = grantIndex.get(grantId);
      if (!keys) return;
      for (const key of [...keys]) {
        if (key.startsWith(`${this.model}:`)) {
          store.delete(key);
          keys.delete(key);
        }
      }
      if (!keys.size) grantIndex.delete(grantId);
    }
  };
}

// ---------------------------------------------------------------------------
// keys
// ---------------------------------------------------------------------------
let keyCounter = 0;
function newSigningKey() {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  keyCounter += 1;
  const kid = `idp-key-${keyCounter}-${crypto.randomBytes(6).toString('hex')}`;
  return { ...jwk, kid, alg: 'RS256', use: 'sig' };
}

// ---------------------------------------------------------------------------
// HTML helpers
// ---------------------------------------------------------------------------
const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({
  '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
}[c]));

const STYLE = `body{font-family:system-ui,sans-serif;background:#f4f5f7;margin:0;padding:2rem}
main{max-width:24rem;margin:0 auto;background:#fff;padding:1.5rem 2rem;border-radius:6px;box-shadow:0 1px 3px rgba(0,0,0,.2)}
h1{font-size:1.4rem;margin-top:0}label{display:block;margin-top:1rem;font-weight:600}
input{width:100%;box-sizing:border-box;padding:.5rem;margin-top:.25rem;font-size:1rem}
button{margin-top:1.25rem;width:100%;padding:.6rem;font-size:1rem;background:#2f5fd0;color:#fff;border:0;border-radius:4px;cursor:pointer}
.error{color:#a40000;background:#fdecec;padding:.5rem;border-radius:4px}.meta{color:#555;font-size:.9rem}`;

function page(title, body) {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<main>
${body}
</main>
</body>
</html>
`;
}

function loginPage({ uid, clientId, login = '', error }) {
  return page('Log in to Example IdP', `<h1>Log in to Example IdP</h1>
<p class="meta">Application: <code id="client-id">${esc(clientId)}</code></p>
${error ? `<p id="error" class="error" role="alert">${esc(error)}</p>` : ''}
<form id="login-form" method="post" action="/interaction/${esc(uid)}/login" enctype="application/x-www-form-urlencoded">
<label for="login">Email address</label>
<input id="login" name="login" type="text" inputmode="email" autocomplete="username" value="${esc(login)}" autofocus>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password">
<button id="submit" type="submit">Log in</button>
</form>
<p class="meta"><a id="cancel" href="/interaction/${esc(uid)}/abort">Cancel</a></p>`);
}

function errorPage(title, message) {
  return page(title, `<h1>${esc(title)}</h1>\n<p id="error" class="error" role="alert">${esc(message)}</p>`);
}

// ---------------------------------------------------------------------------
// small HTTP helpers
// ---------------------------------------------------------------------------
function send(res, status, type, body, extraHeaders = {}) {
  const buf = Buffer.from(body);
  res.writeHead(status, {
    'content-type': type,
    'content-length': buf.length,
    'cache-control': 'no-store',
    ...extraHeaders,
  });
  res.end(buf);
}
const sendJSON = (res, status, obj) => send(res, status, 'application/json; charset=utf-8', `${JSON.stringify(obj)}\n`);
const sendHTML = (res, status, html) => send(res, status, 'text/html; charset=utf-8', html);

function readBody(req, limit = 1 << 20) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > limit) {
        reject(new Error('body too large'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

// ---------------------------------------------------------------------------
// main
// ---------------------------------------------------------------------------
let args;
let config;
try {
  args = parseArgs(process.argv.slice(2));
  config = loadConfig(args);
} catch (err) {
  log(`config error: ${err.message}`);
  process.exit(2);
}

const users = config.users.map(normalizeUser);
const findUserBySub = (sub) => users.find((u) => u.sub === sub);
const findUserByLogin = (login) => {
  const l = String(login ?? '').trim().toLowerCase();
  if (!l) return undefined;
  return users.find((u) => u.email.toLowerCase() === l) || users.find((u) => u.preferred_username.toLowerCase() === l);
};

// clients with no redirect_uris (or "*") accept any http(s) redirect URI.
const wildcardClients = new Set();
const PLACEHOLDER_REDIRECT = 'http://127.0.0.1/placeholder-any-redirect-uri-allowed';
const clientMetadata = config.clients.map((c) => {
  if (!c.client_id) throw new Error('every client needs a client_id');
  let redirectUris = Array.isArray(c.redirect_uris) ? c.redirect_uris.filter((u) => u !== '*') : [];
  if (redirectUris.length === 0 || (c.redirect_uris || []).includes('*')) {
    wildcardClients.add(c.client_id);
    if (redirectUris.length === 0) redirectUris = [PLACEHOLDER_REDIRECT];
  }
  return {
    client_id: c.client_id,
    client_secret: c.client_secret,
    redirect_uris: redirectUris,
    ...(c.post_logout_redirect_uris ? { post_logout_redirect_uris: c.post_logout_redirect_uris } : {}),
    application_type: 'web',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: c.token_endpoint_auth_method || 'client_secret_basic',
    id_token_signed_response_alg: 'RS256',
  };
});
const isHttpUrl = (v) => {
  try {
    const u = new URL(v);
    return (u.protocol === 'http:' || u.protocol === 'https:') && !u.hash;
  } catch {
    return false;
  }
};

// ---- stats ----------------------------------------------------------------
function freshStats() {
  return {
    authorization_code_grants: 0,
    authorization_code_failures: 0,
    authorization_code_grants_by_sub: {},
    authorization_code_grants_by_account_email: {},
    authorization_code_grants_by_client: {},
    // code grants that returned a refresh token (offline_access requested)
    refresh_tokens_issued: 0,
    // live refresh tokens deleted because a newer code grant of the same
    // (user, client) replaced them (one_refresh_token_per_user_client)
    refresh_tokens_replaced: 0,
    refresh_tokens_replaced_by_account_email: {},
    refresh_grants: 0,
    refresh_failures: 0,
    refresh_by_sub: {},
    refresh_by_account_email: {},
    refresh_by_client: {},
    refresh_failures_by_error: {},
    // refused refresh attempts whose token we can attribute to a user
    refresh_failures_by_account_email: {},
    // why a refresh token was refused with Dex's invalid_request (see dexRefreshTokenGrant):
    // replaced | reused | unknown
    refresh_failures_by_reason: {},
    logins: 0,
    login_failures: 0,
    logins_by_email: {},
    last_errors: [],
  };
}
let stats = freshStats();
const bump = (obj, key) => { obj[key] = (obj[key] || 0) + 1; };

// ---- listen first -----------------------------------------------------------
const host = args.host || '127.0.0.1';
const port = args.port === undefined ? 0 : toInt('--port', args.port);

let currentHandler = null; // provider.callback() of the active provider
let provider = null;
let jwksKeys = [];
const cookieKeys = [crypto.randomBytes(32).toString('base64url')];

const server = http.createServer((req, res) => {
  handle(req, res).catch((err) => {
    log(`unhandled error on ${req.method} ${req.url?.split('?')[0]}: ${err?.stack || err}`);
    if (!res.headersSent) sendHTML(res, 500, errorPage('Server error', 'internal server error'));
    else res.destroy();
  });
});
server.keepAliveTimeout = 5000;

try {
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
} catch (err) {
  log(`cannot listen on ${host}:${port}: ${err.message}`);
  process.exit(1);
}
const actualPort = server.address().port;
const issuerHost = args['issuer-host'] || host;
const issuer = `http://${issuerHost.includes(':') ? `[${issuerHost}]` : issuerHost}:${actualPort}`;

// ---- provider -------------------------------------------------------------
const skipRevokeForRefreshReuse = () => {
  if (config.revoke_grant_on_refresh_reuse) return false;
  const ctx = Provider.ctx;
  return ctx?.oidc?.route === 'token' && ctx.oidc.params?.grant_type === 'refresh_token';
};
const Adapter = makeAdapterClass(skipRevokeForRefreshReuse);

// ---- Dex refresh-token semantics -------------------------------------------
// Dex (server/grants/refresh.go, refreshLookupError) answers a refresh token that
// is unknown, was deleted (replaced by a newer grant) or was rotated away with:
//   400 {"error":"invalid_request","error_description":"Refresh token is invalid or has already been claimed by another client."}
const DEX_REFRESH_INVALID = 'Refresh token is invalid or has already been claimed by another client.';
const dexRefreshInvalid = (detail) => new oidcErrors.InvalidRequest(DEX_REFRESH_INVALID, 400, { detail });

// Refresh tokens deleted by the one-token-per-(user, client) rule: id -> {sub, email, client_id, at}.
// Kept (bounded) so a refused refresh can be attributed to a user and a reason.
const replacedRefreshTokens = new Map();
const REPLACED_MEMORY = 10000;
function rememberReplaced(id, info) {
  replacedRefreshTokens.set(id, info);
  while (replacedRefreshTokens.size > REPLACED_MEMORY) {
    replacedRefreshTokens.delete(replacedRefreshTokens.keys().next().value);
  }
}

// Wraps oidc-provider's authorization_code grant: once it has issued a refresh
// token, delete every other refresh token of the same (user, client), like Dex's
// "Replace any existing refresh token for this client" (tokens/refresh_store.go).
// A code grant without offline_access issues no refresh token and replaces nothing,
// as in Dex.
async function dexAuthorizationCodeGrant(inner, ctx) {
  await inner(ctx);
  const newId = ctx.body?.refresh_token;
  const rt = ctx.oidc.entities.RefreshToken;
  if (typeof newId !== 'string' || !rt) return;
  stats.refresh_tokens_issued += 1;
  if (!config.one_refresh_token_per_user_client) return;
  const removed = Adapter.deleteRefreshTokensFor(rt.accountId, rt.clientId, newId);
  const email = findUserBySub(rt.accountId)?.email;
  let live = 0;
  for (const { id, payload } of removed) {
    rememberReplaced(id, {
      sub: rt.accountId, email: email ?? null, client_id: rt.clientId, at: Math.floor(Date.now() / 1000),
    });
    if (!payload.consumed) live += 1;
  }
  if (live) {
    stats.refresh_tokens_replaced += live;
    if (email) stats.refresh_tokens_replaced_by_account_email[email] = (stats.refresh_tokens_replaced_by_account_email[email] || 0) + live;
    log(`refresh token of user=${email || rt.accountId} client=${rt.clientId} replaced by a new authorization-code grant (${live} live token(s) deleted)`);
  }
}

// Wraps oidc-provider's refresh_token grant so refused tokens get Dex's answer:
//  * replaced by a newer code grant (deleted) -> invalid_request (reason "replaced")
//  * rotated away and presented again          -> invalid_request (reason "reused")
//  * never issued / gone                       -> invalid_request (reason "unknown")
// The newest token of a chain keeps working; everything else (client mismatch,
// disabled user, expiry, scope) is left to oidc-provider.
async function dexRefreshTokenGrant(inner, ctx) {
  const value = ctx.oidc.params?.refresh_token;
  const clientId = ctx.oidc.client?.clientId;
  const info = { sub: null, reason: null };
  ctx.state.idpRefresh = info;
  if (typeof value !== 'string' || !value) return inner(ctx); // oidc-provider: missing parameter
  const before = await ctx.oidc.provider.RefreshToken.find(value, { ignoreExpiration: true });
  if (!before) {
    const replaced = replacedRefreshTokens.get(value);
    info.sub = replaced?.sub ?? null;
    info.reason = replaced ? 'replaced' : 'unknown';
    throw dexRefreshInvalid(replaced
      ? `refresh token was replaced by a newer authorization-code grant of user ${replaced.email || replaced.sub} for client ${replaced.client_id}`
      : 'refresh token not found');
  }
  info.sub = before.accountId;
  // oidc-provider checks the client first (as Dex does); only a token presented by
  // its own client counts as a reuse. With revoke_grant_on_refresh_reuse, let
  // oidc-provider revoke the grant first (the error is translated below).
  if (before.consumed && before.clientId === clientId && !config.revoke_grant_on_refresh_reuse) {
    info.reason = 'reused';
    throw dexRefreshInvalid('rotated-away refresh token presented again');
  }
  try {
    return await inner(ctx);
  } catch (err) {
    if (err instanceof oidcErrors.InvalidGrant
      && (err.error_detail === 'refresh token already used' || err.error_detail === 'refresh token not found')) {
      // consumed in between (a concurrent refresh won) or revoked with the grant
      info.reason = 'reused';
      throw dexRefreshInvalid(err.error_detail);
    }
    throw err;
  }
}

// oidc-provider registers its built-in grant handlers from its constructor through
// registerGrantType (a public method); wrap the two we change.
class DexLikeProvider extends Provider {
  registerGrantType(name, handler, ...rest) {
    let h = handler;
    if (name === 'authorization_code') h = (ctx) => dexAuthorizationCodeGrant(handler, ctx);
    else if (name === 'refresh_token') h = (ctx) => dexRefreshTokenGrant(handler, ctx);
    return super.registerGrantType(name, h, ...rest);
  }
}

function buildPolicy() {
  const policy = interactionPolicy.base();
  if (!config.sso) {
    // Dex has no SSO session: every authorization request shows the login form.
    const loginPrompt = policy.get('login');
    loginPrompt.checks.unshift(new interactionPolicy.Check(
      'dex_no_sso',
      'End-User authentication is required for every authorization request',
      'login_required',
      (ctx) => (ctx.oidc.result?.login ? interactionPolicy.Check.NO_NEED_TO_PROMPT
        : interactionPolicy.Check.REQUEST_PROMPT),
    ));
  }
  // Dex-like "skipApprovalScreen": an explicit (or injected, see dexifyAuthRequest)
  // prompt=consent does not force a consent screen.
  policy.get('consent').checks.remove('consent_prompt');
  return policy;
}

async function findAccount(ctx, sub) {
  const user = findUserBySub(sub);
  if (!user || user.disabled) return undefined;
  return {
    accountId: sub,
    async claims() {
      return {
        sub,
        email: user.email,
        email_verified: user.email_verified,
        name: user.name,
        preferred_username: user.preferred_username,
        groups: [...user.groups],
      };
    },
  };
}

// Dex skips the approval screen: make sure the grant always covers what was requested.
async function loadExistingGrant(ctx) {
  const { oidc } = ctx;
  const accountId = oidc.session.accountId;
  const clientId = oidc.client.clientId;
  const grantId = oidc.result?.consent?.grantId || oidc.session.grantIdFor(clientId);
  let grant;
  if (grantId) {
    grant = await oidc.provider.Grant.find(grantId);
    if (grant && (grant.accountId !== accountId || grant.clientId !== clientId)) grant = undefined;
  }
  if (!grant) grant = new oidc.provider.Grant({ accountId, clientId });
  const scope = [...oidc.requestParamOIDCScopes].join(' ');
  if (scope) grant.addOIDCScope(scope);
  const claims = [...oidc.requestParamClaims];
  if (claims.length) grant.addOIDCClaims(claims);
  await grant.save();
  return grant;
}

const providerConfig = () => ({
  adapter: Adapter,
  clients: clientMetadata,
  jwks: { keys: jwksKeys },
  findAccount,
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username'],
    groups: ['groups'],
  },
  scopes: ['openid', 'email', 'profile', 'groups', 'offline_access'],
  conformIdTokenClaims: false, // scope claims go into the ID token itself (like Dex)
  responseTypes: ['code'],
  routes: {
    // Dex-like paths (discovery is authoritative anyway)
    authorization: '/auth',
    token: '/token',
    userinfo: '/userinfo',
    jwks: '/keys',
    end_session: '/session/end',
    revocation: '/token/revoke',
    introspection: '/token/introspect',
  },
  cookies: {
    keys: cookieKeys,
    // distinct names: IdP, proxy and dashboards often share 127.0.0.1 (cookies ignore ports)
    names: { session: '_idp_session', interaction: '_idp_interaction', resume: '_idp_interaction_resume' },
    long: { httpOnly: true, sameSite: 'lax' },
    short: { httpOnly: true, sameSite: 'lax' },
  },
  clientAuthMethods: ['client_secret_basic', 'client_secret_post'],
  features: {
    devInteractions: { enabled: false },
    pushedAuthorizationRequests: { enabled: false },
    dPoP: { enabled: false },
    revocation: { enabled: true },
    introspection: { enabled: true },
    userinfo: { enabled: true },
    rpInitiatedLogout: {
      enabled: config.rp_initiated_logout,
      async logoutSource(ctx, form) {
        ctx.type = 'html';
        ctx.body = page('Sign out of Example IdP', `<h1>Sign out of Example IdP</h1>
<p>Do you want to sign out from ${esc(ctx.host)}?</p>
${form}
<button id="logout-yes" type="submit" form="op.logoutForm" value="yes" name="logout">Yes, sign me out</button>
<button id="logout-no" type="submit" form="op.logoutForm">No, stay signed in</button>`);
      },
      async postLogoutSuccessSource(ctx) {
        ctx.type = 'html';
        ctx.body = page('Signed out of Example IdP', '<h1>Signed out of Example IdP</h1>\n<p id="signed-out">You have been signed out.</p>');
      },
    },
  },
  interactions: {
    policy: buildPolicy(),
    url: async (ctx, interaction) => `/interaction/${interaction.uid}`,
  },
  loadExistingGrant,
  issueRefreshToken: async (ctx, client, code) => client.grantTypeAllowed('refresh_token')
    && code.scopes.has('offline_access'),
  rotateRefreshToken: true,
  revokeGrantPolicy: (ctx) => {
    if (ctx.oidc.route === 'revocation' && ctx.oidc.entities.AccessToken) return false;
    if (skipRevokeForRefreshReuse()) return false;
    return true;
  },
  pkce: { required: () => false },
  ttl: {
    AccessToken: config.ttl.access_token,
    AuthorizationCode: config.ttl.authorization_code,
    IdToken: config.ttl.id_token,
    RefreshToken: config.ttl.refresh_token,
    Session: config.ttl.session,
    Interaction: config.ttl.interaction,
    Grant: Math.max(config.ttl.refresh_token, config.ttl.session, 14 * 24 * 3600),
  },
  async renderError(ctx, out) {
    ctx.type = 'html';
    const desc = out.error_description ? `: ${out.error_description}` : '';
    ctx.body = errorPage('Example IdP error', `${out.error}${desc}`);
  },
});

function buildProvider() {
  const p = new DexLikeProvider(issuer, providerConfig());
  p.proxy = false;

  // accept any http(s) redirect for wildcard clients (those configured without redirect_uris)
  const origAllowed = p.Client.prototype.redirectUriAllowed;
  p.Client.prototype.redirectUriAllowed = function redirectUriAllowed(value) {
    if (wildcardClients.has(this.clientId) && isHttpUrl(value)) return true;
    return origAllowed.call(this, value);
  };
  const origLogoutAllowed = p.Client.prototype.postLogoutRedirectUriAllowed;
  p.Client.prototype.postLogoutRedirectUriAllowed = function postLogoutRedirectUriAllowed(value) {
    if (wildcardClients.has(this.clientId) && isHttpUrl(value)) return true;
    return origLogoutAllowed.call(this, value);
  };

  // Dex puts at_hash into ID tokens issued from the token endpoint. oidc-provider does
  // not; add it (opaque access token value == its jti). This also makes every
  // refreshed ID token unique even within the same second.
  const origIssue = p.IdToken.prototype.issue;
  p.IdToken.prototype.issue = function issue(opts = {}) {
    const at = this.ctx?.oidc?.entities?.AccessToken;
    if (opts.use === 'idtoken' && this.ctx?.oidc?.route === 'token' && at?.jti && !this.extra.at_hash) {
      this.set('at_hash', at.jti);
    }
    return origIssue.call(this, opts);
  };

  p.on('grant.success', (ctx) => {
    const gt = ctx.oidc.params?.grant_type;
    const client = ctx.oidc.client?.clientId;
    const sub = ctx.oidc.entities.Account?.accountId
      || ctx.oidc.entities.RefreshToken?.accountId
      || ctx.oidc.entities.AuthorizationCode?.accountId;
    const email = findUserBySub(sub)?.email;
    if (gt === 'authorization_code') {
      stats.authorization_code_grants += 1;
      if (sub) bump(stats.authorization_code_grants_by_sub, sub);
      if (email) bump(stats.authorization_code_grants_by_account_email, email);
      if (client) bump(stats.authorization_code_grants_by_client, client);
    } else if (gt === 'refresh_token') {
      stats.refresh_grants += 1;
      if (sub) bump(stats.refresh_by_sub, sub);
      if (email) bump(stats.refresh_by_account_email, email);
      if (client) bump(stats.refresh_by_client, client);
    }
    log(`token ok grant_type=${gt} client=${client} user=${email || sub || '-'}`);
  });
  p.on('grant.error', (ctx, err) => {
    const gt = ctx.oidc?.params?.grant_type;
    const client = ctx.oidc?.client?.clientId;
    const code = err?.error || err?.message || 'error';
    if (gt === 'refresh_token') {
      stats.refresh_failures += 1;
      bump(stats.refresh_failures_by_error, code);
      const info = ctx.state?.idpRefresh;
      const failedSub = info?.sub || ctx.oidc?.entities?.RefreshToken?.accountId;
      const failedEmail = failedSub ? findUserBySub(failedSub)?.email : undefined;
      if (failedEmail) bump(stats.refresh_failures_by_account_email, failedEmail);
      if (info?.reason) bump(stats.refresh_failures_by_reason, info.reason);
    } else if (gt === 'authorization_code') {
      stats.authorization_code_failures += 1;
    }
    stats.last_errors.push({
      grant_type: gt ?? null, client: client ?? null, error: code, error_description: err?.error_description ?? null, error_detail: err?.error_detail ?? null,
    });
    if (stats.last_errors.length > 20) stats.last_errors.shift();
    const detail = err?.error_detail ? `; ${err.error_detail}` : '';
    log(`token error grant_type=${gt} client=${client} error=${code} (${err?.error_description || ''}${detail})`);
  });
  p.on('server_error', (ctx, err) => log(`server_error ${ctx.path}: ${err?.stack || err}`));
  for (const ev of ['authorization.error', 'end_session.error', 'userinfo.error', 'introspection.error', 'revocation.error']) {
    p.on(ev, (ctx, err) => log(`${ev}: ${err?.error || err?.message} ${err?.error_description || ''}`));
  }
  return p;
}

function activate() {
  provider = buildProvider();
  currentHandler = provider.callback();
}

jwksKeys = [newSigningKey()];
activate();

// ---- request routing -------------------------------------------------------
async function handle(req, res) {
  const url = new URL(req.url, 'http://localhost');
  const path = url.pathname;

  if (path.startsWith('/_test/')) return handleTest(req, res, path);

  if (path === '/auth' && req.method === 'GET') dexifyAuthRequest(req, url);

  const m = /^\/interaction\/([^/]+)(\/login|\/abort)?\/?$/.exec(path);
  if (m) return handleInteraction(req, res, m[1], m[2] || '');

  return currentHandler(req, res);
}

// Make GET authorization requests behave like Dex:
//  * oidc-provider follows OIDC Core strictly and drops `offline_access` unless the
//    request carries prompt=consent. Dex issues refresh tokens without it, so when
//    offline_access is requested we add "consent" to prompt. (Consent itself is
//    auto-approved: the `consent_prompt` check is removed from the policy and
//    loadExistingGrant grants everything requested.)
//  * Dex ignores prompt values it does not know (e.g. select_account); oidc-provider
//    would reject them, so unknown values are dropped.
const KNOWN_PROMPTS = new Set(['none', 'login', 'consent']);
function dexifyAuthRequest(req, url) {
  if (url.searchParams.getAll('prompt').length > 1) return; // let the provider reject dupes
  const original = url.searchParams.get('prompt');
  const prompt = (original || '').split(' ').filter((v) => KNOWN_PROMPTS.has(v));
  const scope = (url.searchParams.get('scope') || '').split(' ');
  if (scope.includes('offline_access') && !prompt.includes('consent') && !prompt.includes('none')) {
    prompt.push('consent');
  }
  const next = prompt.join(' ');
  if ((original ?? '') === next) return;
  if (next) url.searchParams.set('prompt', next);
  else url.searchParams.delete('prompt');
  req.url = `${url.pathname}?${url.searchParams.toString()}`;
}

async function handleInteraction(req, res, uid, action) {
  const p = provider;
  let details;
  try {
    details = await p.interactionDetails(req, res);
  } catch (err) {
    if (err instanceof oidcErrors.SessionNotFound) {
      return sendHTML(res, 400, errorPage('Login session expired',
        `The login session was not found or has expired (${err.error_description || err.message}). Start again from the application.`));
    }
    throw err;
  }
  if (details.uid !== uid) {
    return sendHTML(res, 400, errorPage('Login session mismatch', 'This login page does not belong to the current login session. Start again from the application.'));
  }
  const { prompt, params } = details;

  if (action === '/abort') {
    return p.interactionFinished(req, res, {
      error: 'access_denied', error_description: 'End-User aborted interaction',
    }, { mergeWithLastSubmission: false });
  }

  if (action === '' && req.method === 'GET') {
    if (prompt.name === 'login') {
      return sendHTML(res, 200, loginPage({ uid, clientId: params.client_id, login: params.login_hint || '' }));
    }
    if (prompt.name === 'consent') return autoConsent(p, req, res, details);
    return sendHTML(res, 400, errorPage('Unsupported interaction', `prompt ${prompt.name} is not supported`));
  }

  if (action === '/login' && req.method === 'POST') {
    const body = new URLSearchParams(await readBody(req));
    const login = body.get('login') || '';
    const password = body.get('password') || '';
    if (prompt.name !== 'login') {
      return sendHTML(res, 400, errorPage('Unexpected login', 'No login is pending for this session.'));
    }
    const user = findUserByLogin(login);
    const ok = user && !user.disabled
      && crypto.timingSafeEqual(
        crypto.createHash('sha256').update(password).digest(),
        crypto.createHash('sha256').update(user.password).digest(),
      );
    if (!ok) {
      stats.login_failures += 1;
      log(`login failed for ${JSON.stringify(login.slice(0, 100))}`);
      return sendHTML(res, 401, loginPage({
        uid, clientId: params.client_id, login, error: 'Invalid email or password.',
      }));
    }
    stats.logins += 1;
    bump(stats.logins_by_email, user.email);
    log(`login ok ${user.email} client=${params.client_id}`);

    // A different user logging in on a browser that still has an IdP session:
    // drop the old session instead of oidc-provider's JS-driven logout confirmation.
    if (details.session?.accountId && details.session.accountId !== user.sub) {
      if (details.session.uid) {
        const old = await p.Session.findByUid(details.session.uid);
        if (old) await old.destroy();
      }
      delete details.session;
      await details.save(Math.max(1, details.exp - Math.floor(Date.now() / 1000)));
    }

    return p.interactionFinished(req, res, {
      login: { accountId: user.sub, amr: ['pwd'], remember: true },
    }, { mergeWithLastSubmission: false });
  }

  res.setHeader('allow', action === '/login' ? 'POST' : 'GET');
  return sendHTML(res, 405, errorPage('Method not allowed', `${req.method} is not allowed here`));
}

// Like Dex's skipApprovalScreen: grant everything that was asked for.
async function autoConsent(p, req, res, details) {
  const { prompt: { details: missing }, params, session } = details;
  let grant;
  if (details.grantId) grant = await p.Grant.find(details.grantId);
  if (!grant) grant = new p.Grant({ accountId: session.accountId, clientId: params.client_id });
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  if (missing.missingResourceScopes) {
    for (const [indicator, scope] of Object.entries(missing.missingResourceScopes)) {
      grant.addResourceScope(indicator, scope.join(' '));
    }
  }
  const grantId = await grant.save();
  const consent = details.grantId === grantId ? {} : { grantId };
  return p.interactionFinished(req, res, { consent }, { mergeWithLastSubmission: true });
}

// Per-user view of code grants, refreshes and the refresh tokens alive right now.
// Counters come from `stats` (zeroed by POST /_test/reset); live_refresh_tokens_by_client
// counts the stored, unexpired, not rotated-away refresh tokens (not reset).
function grantsReport() {
  const live = new Map(); // sub -> {client: n}
  for (const { payload } of Adapter.refreshTokens()) {
    if (payload.consumed) continue;
    if (!live.has(payload.accountId)) live.set(payload.accountId, {});
    bump(live.get(payload.accountId), payload.clientId);
  }
  const byUser = {};
  for (const u of users) {
    byUser[u.email] = {
      sub: u.sub,
      authorization_code_grants: stats.authorization_code_grants_by_account_email[u.email] || 0,
      refresh_grants: stats.refresh_by_account_email[u.email] || 0,
      refresh_failures: stats.refresh_failures_by_account_email[u.email] || 0,
      refresh_tokens_replaced: stats.refresh_tokens_replaced_by_account_email[u.email] || 0,
      live_refresh_tokens_by_client: live.get(u.sub) || {},
    };
  }
  return {
    one_refresh_token_per_user_client: config.one_refresh_token_per_user_client,
    authorization_code_grants: stats.authorization_code_grants,
    refresh_tokens_issued: stats.refresh_tokens_issued,
    refresh_tokens_replaced: stats.refresh_tokens_replaced,
    refresh_grants: stats.refresh_grants,
    refresh_failures: stats.refresh_failures,
    users: byUser,
  };
}

async function handleTest(req, res, path) {
  const route = `${req.method} ${path.replace(/\/+$/, '')}`;
  switch (route) {
    case 'GET /_test/stats':
      return sendJSON(res, 200, stats);
    case 'GET /_test/grants':
      return sendJSON(res, 200, grantsReport());
    case 'POST /_test/reset':
      stats = freshStats();
      return sendJSON(res, 200, stats);
    case 'GET /_test/users':
      return sendJSON(res, 200, users.map(publicUser));
    case 'POST /_test/user': {
      // update a user in place: {"email": "...", "groups": [...], "disabled": true, ...}
      let patch;
      try {
        patch = JSON.parse(await readBody(req) || '{}');
      } catch {
        return sendJSON(res, 400, { error: 'invalid JSON' });
      }
      const user = users.find((u) => u.email.toLowerCase() === String(patch.email || '').toLowerCase());
      if (!user) return sendJSON(res, 404, { error: 'no such user' });
      for (const k of ['name', 'preferred_username', 'password']) if (typeof patch[k] === 'string') user[k] = patch[k];
      if (Array.isArray(patch.groups)) user.groups = patch.groups.map(String);
      if ('email_verified' in patch) user.email_verified = Boolean(patch.email_verified);
      if ('disabled' in patch) user.disabled = Boolean(patch.disabled);
      log(`test: updated user ${user.email}`);
      return sendJSON(res, 200, publicUser(user));
    }
    case 'POST /_test/rotate-keys': {
      const key = newSigningKey();
      jwksKeys = [key, ...jwksKeys];
      activate();
      log(`test: rotated signing key, now signing with kid=${key.kid} (${jwksKeys.length} keys published)`);
      return sendJSON(res, 200, { kid: key.kid, kids: jwksKeys.map((k) => k.kid) });
    }
    default:
      return sendJSON(res, 404, { error: 'not found', routes: ['GET /_test/stats', 'GET /_test/grants', 'POST /_test/reset', 'GET /_test/users', 'POST /_test/user', 'POST /_test/rotate-keys'] });
  }
}

// ---- ready -----------------------------------------------------------------
log(`listening on ${host}:${actualPort}; issuer ${issuer}; clients: ${config.clients.map((c) => c.client_id).join(', ')}; users: ${users.length}; sso=${config.sso}; one_refresh_token_per_user_client=${config.one_refresh_token_per_user_client}`);
process.stdout.write(`${JSON.stringify({ issuer, port: actualPort })}\n`);

let shuttingDown = false;
function shutdown(sig) {
  if (shuttingDown) return;
  shuttingDown = true;
  log(`${sig} received, shutting down`);
  server.close(() => process.exit(0));
  server.closeAllConnections?.();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
