#!/usr/bin/env node
// Self-test for idp.mjs and dashboard.mjs: runs the whole code flow with plain
// fetch (manual redirects + a tiny cookie jar), PKCE S256, refresh rotation,
// refresh-token reuse, Dex's one refresh token per (user, client), stats, wrong
// password, big ID token, key rotation and a dashboard smoke test. Prints "N passed, M failed"; exits non-zero on failure.

import { spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';

const here = path.dirname(fileURLToPath(import.meta.url));
const CLIENT_ID = 'selftest';
const CLIENT_SECRET = 'selftest-secret';
const REDIRECT_URI = 'http://127.0.0.1:9/callback';
const REMOTE_REDIRECT_URI = 'http://auth.example.test:8080/oauth2/callback';
const SCOPE = 'openid email profile groups offline_access';
// Dex's answer to a refresh token it does not (or no longer) hold, byte for byte.
const DEX_REFRESH_INVALID = '{"error":"invalid_request","error_description":"Refresh token is invalid or has already been claimed by another client."}';
const isDexRefreshInvalid = (r) => r.status === 400 && JSON.stringify(r.json) === DEX_REFRESH_INVALID;

let passed = 0;
let failed = 0;
function check(name, cond, detail = '') {
  if (cond) {
    passed += 1;
    console.log(`ok   - ${name}`);
  } else {
    failed += 1;
    console.log(`FAIL - ${name}${detail ? ` :: ${detail}` : ''}`);
  }
}

// ---- child processes ----------------------------------------------------------
const children = [];
function startChild(script, args, label, env = {}) {
  const child = spawn(process.execPath, [path.join(here, script), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, IDP_CONFIG: '', IDP_CLIENTS: '', ...env },
  });
  children.push(child);
  const stderrLines = [];
  readline.createInterface({ input: child.stderr }).on('line', (l) => {
    stderrLines.push(l);
    if (process.env.SELFTEST_VERBOSE) console.error(`  [${label}] ${l}`);
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${label} did not print its JSON line in time\n${stderrLines.join('\n')}`)), 15000);
    const rl = readline.createInterface({ input: child.stdout });
    rl.once('line', (line) => {
      clearTimeout(timer);
      try {
        resolve({ child, info: JSON.parse(line), firstLine: line, stderrLines });
      } catch (err) {
        reject(new Error(`${label} printed a non-JSON first line: ${line}`));
      }
    });
    child.once('exit', (code) => reject(new Error(`${label} exited early (${code})\n${stderrLines.join('\n')}`)));
  });
}
function stopAll() {
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
}

// ---- tiny cookie jar -----------------------------------------------------------
class CookieJar {
  constructor() { this.cookies = new Map(); } // `${name}\0${path}` -> {name, value, path}

  store(res, requestUrl) {
    const list = res.headers.getSetCookie ? res.headers.getSetCookie() : [];
    for (const sc of list) {
      const [pair, ...attrs] = sc.split(';').map((s) => s.trim());
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      let cpath = new URL(requestUrl).pathname.replace(/\/[^/]*$/, '') || '/';
      let expired = false;
      for (const a of attrs) {
        const [k, v = ''] = a.split('=');
        const key = k.toLowerCase();
        if (key === 'path') cpath = v || '/';
        if (key === 'max-age' && Number(v) <= 0) expired = true;
        if (key === 'expires' && Date.parse(v) < Date.now()) expired = true;
      }
      const id = `${name}\0${cpath}`;
      if (expired || value === '') this.cookies.delete(id);
      else this.cookies.set(id, { name, value, path: cpath });
    }
  }

  header(url) {
    const p = new URL(url).pathname;
    const matching = [...this.cookies.values()].filter((c) => p === c.path || p.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`));
    return matching.map((c) => `${c.name}=${c.value}`).join('; ');
  }
}

async function req(jar, url, init = {}) {
  const headers = { ...(init.headers || {}) };
  const cookie = jar?.header(url);
  if (cookie) headers.cookie = cookie;
  const res = await fetch(url, { ...init, headers, redirect: 'manual' });
  jar?.store(res, url);
  return res;
}

// Follow redirects (GET) until we leave the IdP or hit a non-redirect.
async function follow(jar, res, url, issuer, maxHops = 10) {
  let current = res;
  let currentUrl = url;
  for (let i = 0; i < maxHops; i += 1) {
    if (![301, 302, 303, 307, 308].includes(current.status)) return { res: current, url: currentUrl };
    const next = new URL(current.headers.get('location'), currentUrl).href;
    await current.arrayBuffer();
    if (!next.startsWith(issuer)) return { res: current, url: currentUrl, location: next };
    currentUrl = next;
    current = await req(jar, next);
  }
  throw new Error('too many redirects');
}

const b64url = (buf) => Buffer.from(buf).toString('base64url');

function authorizeUrl(discovery, { clientId = CLIENT_ID, redirectUri = REDIRECT_URI, scope = SCOPE, pkce, extra = {} } = {}) {
  const u = new URL(discovery.authorization_endpoint);
  const state = b64url(crypto.randomBytes(12));
  const nonce = b64url(crypto.randomBytes(12));
  u.search = new URLSearchParams({
    response_type: 'code',
    client_id: clientId,
    redirect_uri: redirectUri,
    scope,
    state,
    nonce,
    ...(pkce ? { code_challenge: pkce.challenge, code_challenge_method: 'S256' } : {}),
    ...extra,
  }).toString();
  return { url: u.href, state, nonce };
}

function newPkce() {
  const verifier = b64url(crypto.randomBytes(32));
  const challenge = crypto.createHash('sha256').update(verifier).digest('base64url');
  return { verifier, challenge };
}

// GET authorize -> login form. Returns {jar, formUrl, html, state, nonce}
async function startLogin(ctx, opts = {}, jar = new CookieJar()) {
  const a = authorizeUrl(ctx.discovery, opts);
  const first = await req(jar, a.url);
  const { res, url, location } = await follow(jar, first, a.url, ctx.issuer);
  const html = await res.text();
  return { jar, formUrl: url, html, status: res.status, location, ...a };
}

async function submitLogin(ctx, jar, formUrl, html, login, password) {
  const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1]?.replace(/&amp;/g, '&');
  if (!action) throw new Error(`no login form found at ${formUrl}: ${html.slice(0, 200)}`);
  const postUrl = new URL(action, formUrl).href;
  const res = await req(jar, postUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ login, password }).toString(),
  });
  return follow(jar, res, postUrl, ctx.issuer);
}

// complete flow; returns {code, state, callback: URL}
async function loginFlow(ctx, email, password, opts = {}, jar = new CookieJar()) {
  const start = await startLogin(ctx, opts, jar);
  if (start.status !== 200) throw new Error(`expected login form, got ${start.status} ${start.location || ''} ${start.html.slice(0, 300)}`);
  const done = await submitLogin(ctx, jar, start.formUrl, start.html, email, password);
  if (!done.location) throw new Error(`login did not redirect to client: ${done.res.status}`);
  const cb = new URL(done.location);
  return { code: cb.searchParams.get('code'), state: cb.searchParams.get('state'), callback: cb, start, jar };
}

async function tokenRequest(ctx, params, { clientId = CLIENT_ID, clientSecret = CLIENT_SECRET, auth = 'basic' } = {}) {
  const headers = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
  const body = new URLSearchParams(params);
  if (auth === 'basic') {
    headers.authorization = `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64')}`;
  } else {
    body.set('client_id', clientId);
    body.set('client_secret', clientSecret);
  }
  const res = await fetch(ctx.discovery.token_endpoint, { method: 'POST', headers, body: body.toString() });
  let json = null;
  try { json = await res.json(); } catch { /* not json */ }
  return { status: res.status, json };
}

const decodePayload = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8'));
// node:http GET (fetch does not let us set Host)
function rawGet(port, pathname, headers) {
  return new Promise((resolve, reject) => {
    const r = http.get({ host: '127.0.0.1', port, path: pathname, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    r.on('error', reject);
  });
}
const getJSON = async (url, init) => (await fetch(url, init)).json();

// ---- main ------------------------------------------------------------------------
async function main() {
  const idp = await startChild('idp.mjs', [
    '--client', `${CLIENT_ID}:${CLIENT_SECRET}:${REDIRECT_URI}`,
    '--client', `remote:remote-secret:${REMOTE_REDIRECT_URI}`,
    '--id-token-ttl', '120',
  ], 'idp');
  const { issuer, port } = idp.info;
  check('idp prints exactly {"issuer","port"} JSON line', /^\{"issuer":"http:\/\/127\.0\.0\.1:\d+","port":\d+\}$/.test(idp.firstLine)
    && issuer === `http://127.0.0.1:${port}`, idp.firstLine);

  const discovery = await getJSON(`${issuer}/.well-known/openid-configuration`);
  check('discovery issuer matches', discovery.issuer === issuer);
  check('discovery advertises S256 only', JSON.stringify(discovery.code_challenge_methods_supported) === '["S256"]');
  check('discovery scopes', ['openid', 'email', 'profile', 'groups', 'offline_access'].every((s) => discovery.scopes_supported.includes(s)));
  const ctx = { issuer, discovery };
  const JWKS = createRemoteJWKSet(new URL(discovery.jwks_uri));

  // --- wrong password ---------------------------------------------------------
  const pkce = newPkce();
  const start = await startLogin(ctx, { pkce });
  check('authorize leads to login form (200)', start.status === 200 && /\/interaction\/[^/]+$/.test(new URL(start.formUrl).pathname), `${start.status} ${start.formUrl}`);
  check('login form markup', start.html.includes('<title>Log in to Example IdP</title>')
    && /name="login" id="login"|id="login" name="login"/.test(start.html)
    && /id="password" name="password" type="password"/.test(start.html)
    && start.html.includes('id="submit"')
    && /<form[^>]*method="post"[^>]*action="\/interaction\/[^"]+\/login"/.test(start.html));
  {
    const action = /<form[^>]*action="([^"]+)"/.exec(start.html)[1];
    const res = await req(start.jar, new URL(action, start.formUrl).href, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'login=alice%40example.test&password=wrong',
    });
    const html = await res.text();
    check('wrong password -> 401 with message', res.status === 401 && html.includes('Invalid email or password'), `${res.status}`);
    check('wrong password re-renders the form', html.includes('id="password"') && html.includes('value="alice@example.test"'));
  }

  // --- alice full flow (same interaction, now correct password) ------------------
  const done = await submitLogin(ctx, start.jar, start.formUrl, start.html, 'alice@example.test', 'alice-password');
  const cb = done.location ? new URL(done.location) : null;
  check('login redirects to redirect_uri with code & state', cb && cb.href.startsWith(`${REDIRECT_URI}?`)
    && cb.searchParams.get('code') && cb.searchParams.get('state') === start.state, done.location || `status ${done.res.status}`);
  check('callback carries iss (RFC 9207)', cb?.searchParams.get('iss') === issuer);

  const tok = await tokenRequest(ctx, {
    grant_type: 'authorization_code', code: cb.searchParams.get('code'), redirect_uri: REDIRECT_URI, code_verifier: pkce.verifier,
  });
  check('code exchange 200 with id/access/refresh tokens', tok.status === 200 && tok.json.id_token && tok.json.access_token && tok.json.refresh_token, JSON.stringify(tok.json));
  let aliceIdToken = tok.json?.id_token;
  let claims = {};
  try {
    const { payload, protectedHeader } = await jwtVerify(aliceIdToken, JWKS, { issuer, audience: CLIENT_ID });
    claims = payload;
    check('id_token RS256 and verifies against JWKS', protectedHeader.alg === 'RS256' && Boolean(protectedHeader.kid));
  } catch (err) {
    check('id_token RS256 and verifies against JWKS', false, err.message);
  }
  check('id_token has email/email_verified', claims.email === 'alice@example.test' && claims.email_verified === true, JSON.stringify(claims));
  check('id_token has name/preferred_username', claims.name === 'Alice Admin' && claims.preferred_username === 'alice');
  check('id_token has groups', JSON.stringify(claims.groups) === '["platform-admins","developers"]');
  check('id_token nonce echoed', claims.nonce === start.nonce);
  check('sub is opaque (not the email), Dex-style', typeof claims.sub === 'string' && claims.sub !== claims.email && !claims.sub.includes('@') && claims.sub.startsWith('Ci'), claims.sub);
  {
    const atHash = crypto.createHash('sha256').update(tok.json.access_token).digest().subarray(0, 16).toString('base64url');
    check('id_token at_hash matches access_token (like Dex)', claims.at_hash === atHash, `${claims.at_hash} vs ${atHash}`);
  }
  check('id_token exp ~ 120s ttl', claims.exp - claims.iat === 120, `${claims.exp - claims.iat}`);

  // userinfo works with the access token as well
  const ui = await getJSON(discovery.userinfo_endpoint, { headers: { authorization: `Bearer ${tok.json.access_token}` } });
  check('userinfo returns the same claims', ui.sub === claims.sub && ui.email === claims.email && Array.isArray(ui.groups));

  // --- refresh -----------------------------------------------------------------
  const rt1 = tok.json.refresh_token;
  const ref = await tokenRequest(ctx, { grant_type: 'refresh_token', refresh_token: rt1 });
  check('refresh 200', ref.status === 200, JSON.stringify(ref.json));
  const rt2 = ref.json?.refresh_token;
  check('refresh rotated (new refresh token differs)', rt2 && rt2 !== rt1);
  check('refresh returns new id_token', ref.json?.id_token && ref.json.id_token !== aliceIdToken);
  if (ref.json?.id_token) {
    const c2 = decodePayload(ref.json.id_token);
    check('refreshed id_token has same claims', c2.sub === claims.sub && c2.email === claims.email
      && JSON.stringify(c2.groups) === JSON.stringify(claims.groups) && c2.email_verified === true && c2.preferred_username === 'alice');
  }
  const reuse = await tokenRequest(ctx, { grant_type: 'refresh_token', refresh_token: rt1 });
  check('reusing the rotated-away refresh token fails like Dex (400 invalid_request "…claimed by another client.")', isDexRefreshInvalid(reuse), `${reuse.status} ${JSON.stringify(reuse.json)}`);
  const reuseAgain = await tokenRequest(ctx, { grant_type: 'refresh_token', refresh_token: rt1 });
  check('reusing it a second time gives the same Dex answer', isDexRefreshInvalid(reuseAgain), `${reuseAgain.status} ${JSON.stringify(reuseAgain.json)}`);

  let stats = await getJSON(`${issuer}/_test/stats`);
  check('stats: 1 code grant, 1 refresh, >=1 refresh failure', stats.authorization_code_grants === 1 && stats.refresh_grants === 1 && stats.refresh_failures >= 1, JSON.stringify(stats));
  check('stats: refresh_by_sub / refresh_by_account_email', stats.refresh_by_sub[claims.sub] === 1 && stats.refresh_by_account_email['alice@example.test'] === 1);

  // Dex-like: reuse of an old token does not kill the newest one
  const ref2 = await tokenRequest(ctx, { grant_type: 'refresh_token', refresh_token: rt2 }, { auth: 'post' });
  check('latest refresh token still works after a reuse attempt (client_secret_post)', ref2.status === 200 && ref2.json.refresh_token !== rt2, JSON.stringify(ref2.json));

  const reset = await fetch(`${issuer}/_test/reset`, { method: 'POST' });
  stats = await getJSON(`${issuer}/_test/stats`);
  check('POST /_test/reset zeros counters', reset.status === 200 && stats.authorization_code_grants === 0 && stats.refresh_grants === 0 && stats.refresh_failures === 0);

  const usersList = await getJSON(`${issuer}/_test/users`);
  check('GET /_test/users lists users without passwords', usersList.length === 5 && usersList.every((u) => !('password' in u) && u.sub)
    && usersList.find((u) => u.email === 'alice@example.test').sub === claims.sub);

  // --- PKCE checks ----------------------------------------------------------------
  {
    const bad = await loginFlow(ctx, 'bob@example.test', 'bob-password', { pkce: newPkce() });
    const r = await tokenRequest(ctx, { grant_type: 'authorization_code', code: bad.code, redirect_uri: REDIRECT_URI, code_verifier: newPkce().verifier });
    check('wrong PKCE verifier -> invalid_grant', r.status === 400 && r.json?.error === 'invalid_grant', JSON.stringify(r.json));
    const a = authorizeUrl(discovery, { extra: { code_challenge: 'x'.repeat(43), code_challenge_method: 'plain' } });
    const res = await req(new CookieJar(), a.url);
    const loc = res.headers.get('location') || '';
    check('PKCE plain rejected', res.status === 303 && loc.startsWith(REDIRECT_URI) && new URL(loc).searchParams.get('error') === 'invalid_request', `${res.status} ${loc}`);
    const noPkce = await loginFlow(ctx, 'bob@example.test', 'bob-password', {});
    const r2 = await tokenRequest(ctx, { grant_type: 'authorization_code', code: noPkce.code, redirect_uri: REDIRECT_URI });
    check('flow without PKCE also works (confidential client)', r2.status === 200 && decodePayload(r2.json.id_token).email === 'bob@example.test');

    // live user changes are picked up on refresh; disabled users cannot refresh
    await fetch(`${issuer}/_test/user`, { method: 'POST', body: JSON.stringify({ email: 'bob@example.test', groups: ['changed'] }) });
    const r3 = await tokenRequest(ctx, { grant_type: 'refresh_token', refresh_token: r2.json.refresh_token });
    check('POST /_test/user group change visible in refreshed id_token', r3.status === 200 && JSON.stringify(decodePayload(r3.json.id_token).groups) === '["changed"]');
    await fetch(`${issuer}/_test/user`, { method: 'POST', body: JSON.stringify({ email: 'bob@example.test', disabled: true }) });
    const r4 = await tokenRequest(ctx, { grant_type: 'refresh_token', refresh_token: r3.json.refresh_token });
    check('disabled user cannot refresh (invalid_grant)', r4.status === 400 && r4.json?.error === 'invalid_grant', JSON.stringify(r4.json));
    await fetch(`${issuer}/_test/user`, { method: 'POST', body: JSON.stringify({ email: 'bob@example.test', disabled: false, groups: ['developers'] }) });
  }

  // --- no SSO (Dex-like) and user switch in the same cookie jar ---------------------
  {
    const jar = new CookieJar();
    const one = await loginFlow(ctx, 'alice@example.test', 'alice-password', {}, jar);
    const again = await startLogin(ctx, {}, jar);
    check('second authorization in same browser shows login form again (no SSO)', again.status === 200 && again.html.includes('id="login"'), `${again.status} ${again.location || ''}`);
    const bob = await submitLogin(ctx, jar, again.formUrl, again.html, 'bob@example.test', 'bob-password');
    const cbBob = bob.location ? new URL(bob.location) : null;
    const rb = cbBob && await tokenRequest(ctx, { grant_type: 'authorization_code', code: cbBob.searchParams.get('code'), redirect_uri: REDIRECT_URI });
    check('switching user in the same browser works without JS', Boolean(one.code) && rb?.status === 200 && decodePayload(rb.json.id_token).email === 'bob@example.test', bob.location || `${bob.res.status}`);
  }

  // --- mallory (unverified email) ----------------------------------------------------
  {
    const m = await loginFlow(ctx, 'mallory@example.test', 'mallory-password', {});
    const r = await tokenRequest(ctx, { grant_type: 'authorization_code', code: m.code, redirect_uri: REDIRECT_URI });
    check('mallory id_token email_verified false', r.status === 200 && decodePayload(r.json.id_token).email_verified === false);
  }

  // --- http redirect URI on a non-localhost host ---------------------------------------
  {
    const s1 = await startLogin(ctx, { clientId: 'remote', redirectUri: REMOTE_REDIRECT_URI });
    check('registered http://auth.example.test:8080 redirect accepted', s1.status === 200 && s1.html.includes('id="login"'), `${s1.status}`);
    const s2 = await startLogin(ctx, { clientId: 'portcullis', redirectUri: REMOTE_REDIRECT_URI });
    check('default client (no redirect_uris) accepts any http redirect', s2.status === 200 && s2.html.includes('id="login"'), `${s2.status}`);
    const s3 = await startLogin(ctx, { redirectUri: 'http://evil.example.test/cb' });
    check('unregistered redirect_uri rejected with 400 page', s3.status === 400 && !s3.location, `${s3.status}`);
  }

  // --- grace: big token -----------------------------------------------------------------
  {
    const g = await loginFlow(ctx, 'grace@example.test', 'grace-password', { pkce: undefined });
    const r = await tokenRequest(ctx, { grant_type: 'authorization_code', code: g.code, redirect_uri: REDIRECT_URI });
    const len = r.json?.id_token?.length || 0;
    check(`grace id_token > 5000 bytes (${len})`, len > 5000 && decodePayload(r.json.id_token).groups.length === 150);
  }

  // --- key rotation ---------------------------------------------------------------------
  let rotatedIdToken = null;
  {
    const oldKid = decodeProtectedHeader(aliceIdToken).kid;
    const rot = await getJSON(`${issuer}/_test/rotate-keys`, { method: 'POST' });
    const jwks = await getJSON(discovery.jwks_uri);
    const kids = jwks.keys.map((k) => k.kid);
    check('rotate-keys publishes new + old kid', rot.kid !== oldKid && kids.includes(rot.kid) && kids.includes(oldKid), JSON.stringify(kids));
    // refresh before alice's next code grant: that grant replaces her refresh token (Dex)
    const rr = await tokenRequest(ctx, { grant_type: 'refresh_token', refresh_token: ref2.json.refresh_token });
    check('refresh tokens issued before rotation keep working', rr.status === 200 && decodeProtectedHeader(rr.json.id_token).kid === rot.kid, JSON.stringify(rr.json));
    const f = await loginFlow(ctx, 'alice@example.test', 'alice-password', {});
    const r = await tokenRequest(ctx, { grant_type: 'authorization_code', code: f.code, redirect_uri: REDIRECT_URI });
    rotatedIdToken = r.json?.id_token;
    check('tokens after rotation use the new kid', rotatedIdToken && decodeProtectedHeader(rotatedIdToken).kid === rot.kid);
  }

  // --- Dex: one refresh token per (user, client) -----------------------------------------
  await oneRefreshTokenPerUserClient(ctx);
  await multipleGrantsAllowed();

  // --- dashboard smoke test ---------------------------------------------------------------
  const dash = await startChild('dashboard.mjs', ['--port', '0', '--name', 'c1', '--issuer', issuer, '--client-id', CLIENT_ID], 'dashboard');
  check('dashboard prints {"port":N}', /^\{"port":\d+\}$/.test(dash.firstLine), dash.firstLine);
  const dbase = `http://127.0.0.1:${dash.info.port}`;
  {
    const w = await getJSON(`${dbase}/whoami.json`, {
      headers: {
        authorization: `Bearer ${aliceIdToken}`,
        'x-auth-request-email': 'alice@example.test',
        'x-auth-request-groups': 'platform-admins,developers',
        'x-auth-request-user': 'alice',
        'x-auth-request-preferred-username': 'alice',
      },
    });
    check('dashboard verifies a real id_token (pre-rotation key)', w.verified === true && w.token_present && w.error === null && w.claims.email === 'alice@example.test' && w.cluster === 'c1', JSON.stringify(w).slice(0, 300));
    check('dashboard echoes X-Auth-Request-* headers', w.headers.email === 'alice@example.test' && w.headers.groups === 'platform-admins,developers' && w.headers.user === 'alice' && w.headers.preferred_username === 'alice');
    const w2 = await getJSON(`${dbase}/api/v1/namespaces?format=json`, { headers: { authorization: `Bearer ${rotatedIdToken}` } });
    check('dashboard verifies a post-rotation id_token; ?format=json works', w2.verified === true && w2.path === '/api/v1/namespaces?format=json');
    const g = await getJSON(`${dbase}/whoami.json`, { headers: { authorization: 'Bearer not.a.jwt' } });
    check('dashboard rejects a garbage token', g.verified === false && g.token_present === true && typeof g.error === 'string' && g.claims === null);
    const forged = `${aliceIdToken.split('.').slice(0, 2).join('.')}.${b64url(crypto.randomBytes(256))}`;
    const f = await getJSON(`${dbase}/whoami.json`, { headers: { authorization: `Bearer ${forged}` } });
    check('dashboard rejects a bad signature', f.verified === false);
    const n = await getJSON(`${dbase}/whoami.json`);
    check('dashboard without token: token_present false', n.token_present === false && n.verified === false);
    const hres = await rawGet(dash.info.port, '/%23/workloads?namespace=default', {
      authorization: `Bearer ${aliceIdToken}`, host: 'c1.example.test:8443', 'x-forwarded-proto': 'https',
    });
    const html = hres.body;
    check('dashboard HTML page', hres.status === 200 && html.includes('<title>Dashboard c1</title>')
      && html.includes('Stand-in Kubernetes Dashboard — cluster c1')
      && html.includes('<span id="user">alice@example.test</span>')
      && html.includes('<span id="verified">yes</span>'), html.slice(0, 200));
    check('dashboard sign-out link uses Host + X-Forwarded-Proto',
      html.includes(`href="/oauth2/sign_out?rd=${encodeURIComponent('https://c1.example.test:8443/%23/workloads?namespace=default').replace(/&/g, '&amp;')}"`),
      /id="sign-out" href="([^"]*)"/.exec(html)?.[1]);
    const anon = await (await fetch(`${dbase}/<script>`)).text();
    check('dashboard HTML anonymous + escaped', anon.includes('<span id="user">anonymous</span>') && anon.includes('<span id="verified">no</span>') && !anon.includes('<script>'));
    check('dashboard never logs tokens', !dash.stderrLines.some((l) => l.includes(aliceIdToken.split('.')[2].slice(0, 20))));
  }
  const dash2 = await startChild('dashboard.mjs', ['--port', '0', '--name', 'c2', '--issuer', issuer, '--client-id', CLIENT_ID, '--token-header', 'X-Forwarded-Access-Token'], 'dashboard2');
  {
    const base2 = `http://127.0.0.1:${dash2.info.port}`;
    const w = await getJSON(`${base2}/whoami.json`, { headers: { 'x-forwarded-access-token': aliceIdToken } });
    const w2 = await getJSON(`${base2}/whoami.json`, { headers: { 'x-forwarded-access-token': `Bearer ${aliceIdToken}` } });
    check('dashboard custom token header (raw and "Bearer " prefixed)', w.verified === true && w2.verified === true && w.cluster === 'c2');
  }

  // --- stdout hygiene & shutdown -------------------------------------------------------
  const exitCode = await new Promise((resolve) => {
    idp.child.once('exit', (code) => resolve(code));
    idp.child.kill('SIGTERM');
  });
  check('idp exits cleanly on SIGTERM', exitCode === 0, String(exitCode));
  check('idp never logs tokens', !idp.stderrLines.some((l) => l.includes(aliceIdToken.split('.')[2].slice(0, 20))));
}

// One authorization-code grant: log in with a fresh browser, redeem the code.
const REMOTE = { clientId: 'remote', clientSecret: 'remote-secret', redirectUri: REMOTE_REDIRECT_URI };
async function codeGrant(ctx, user, { client, scope, jar } = {}) {
  const c = client || { clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, redirectUri: REDIRECT_URI };
  const f = await loginFlow(ctx, `${user}@example.test`, `${user}-password`, { clientId: c.clientId, redirectUri: c.redirectUri, ...(scope ? { scope } : {}) }, jar);
  const r = await tokenRequest(ctx, { grant_type: 'authorization_code', code: f.code, redirect_uri: c.redirectUri }, c);
  if (r.status !== 200) throw new Error(`code grant for ${user}/${c.clientId} failed: ${r.status} ${JSON.stringify(r.json)}`);
  return r.json;
}
const refresh = (ctx, rt, client) => tokenRequest(ctx, { grant_type: 'refresh_token', refresh_token: rt }, client || {});

async function oneRefreshTokenPerUserClient(ctx) {
  const { issuer } = ctx;
  await fetch(`${issuer}/_test/reset`, { method: 'POST' });
  let g = await getJSON(`${issuer}/_test/grants`);
  check('GET /_test/grants: rule on by default, counters reset', g.one_refresh_token_per_user_client === true
    && g.authorization_code_grants === 0 && g.users['alice@example.test']?.authorization_code_grants === 0
    && g.users['alice@example.test'].sub && typeof g.users['alice@example.test'].live_refresh_tokens_by_client === 'object', JSON.stringify(g).slice(0, 400));
  // everything before this point ran with the rule on: never two live tokens per (user, client)
  check('GET /_test/grants: at most one live refresh token per (user, client) so far',
    Object.values(g.users).every((u) => Object.values(u.live_refresh_tokens_by_client).every((n) => n === 1)), JSON.stringify(g.users));
  // live tokens left by earlier cases are replaced by the first grants below
  const aliceBefore = g.users['alice@example.test'].live_refresh_tokens_by_client.selftest || 0;
  const bobBefore = g.users['bob@example.test'].live_refresh_tokens_by_client.selftest || 0;

  const a1 = await codeGrant(ctx, 'alice');
  const b1 = await codeGrant(ctx, 'bob');
  const r1 = await codeGrant(ctx, 'alice', { client: REMOTE });
  const a1b = await refresh(ctx, a1.refresh_token);
  check('one-token: first grant refreshes while it is the newest', a1b.status === 200 && a1b.json.refresh_token !== a1.refresh_token, JSON.stringify(a1b.json));

  const a2 = await codeGrant(ctx, 'alice'); // a new login of alice at the same client
  check('one-token: each code grant returns a distinct refresh token', a2.refresh_token && a2.refresh_token !== a1.refresh_token && a2.refresh_token !== a1b.json?.refresh_token);
  const old = await refresh(ctx, a1b.json.refresh_token);
  check('one-token: first grant\'s current refresh token refused after 2nd login (400 invalid_request, Dex text)', isDexRefreshInvalid(old), `${old.status} ${JSON.stringify(old.json)}`);
  const older = await refresh(ctx, a1.refresh_token);
  check('one-token: first grant\'s original (rotated) refresh token refused the same way', isDexRefreshInvalid(older), `${older.status} ${JSON.stringify(older.json)}`);

  const a2b = await refresh(ctx, a2.refresh_token);
  check('one-token: second grant\'s refresh token works and rotates', a2b.status === 200 && a2b.json.refresh_token && a2b.json.refresh_token !== a2.refresh_token
    && decodePayload(a2b.json.id_token).email === 'alice@example.test', JSON.stringify(a2b.json));
  const a2reuse = await refresh(ctx, a2.refresh_token);
  check('one-token: rotated-away token of the live chain refused (Dex text)', isDexRefreshInvalid(a2reuse), `${a2reuse.status} ${JSON.stringify(a2reuse.json)}`);
  const a2c = await refresh(ctx, a2b.json.refresh_token);
  check('one-token: live chain keeps rotating after the reuse attempt', a2c.status === 200 && a2c.json.refresh_token !== a2b.json.refresh_token, JSON.stringify(a2c.json));

  const b1b = await refresh(ctx, b1.refresh_token);
  check('one-token: another user\'s grant at the same client is unaffected', b1b.status === 200 && decodePayload(b1b.json.id_token).email === 'bob@example.test', JSON.stringify(b1b.json));
  const r1b = await refresh(ctx, r1.refresh_token, REMOTE);
  check('one-token: same user\'s grant at another client is unaffected', r1b.status === 200 && decodePayload(r1b.json.id_token).aud === 'remote', JSON.stringify(r1b.json));

  // a code grant without offline_access issues no refresh token and replaces nothing (Dex)
  const n1 = await codeGrant(ctx, 'alice', { scope: 'openid email profile groups' });
  const a2d = await refresh(ctx, a2c.json.refresh_token);
  check('one-token: a login without offline_access leaves the refresh token alive', !n1.refresh_token && a2d.status === 200, JSON.stringify(a2d.json));

  // two logins in the same browser (shared IdP session, possibly the same oidc-provider grant)
  const jar = new CookieJar();
  const s1 = await codeGrant(ctx, 'alice', { jar });
  const s2 = await codeGrant(ctx, 'alice', { jar });
  const s1r = await refresh(ctx, s1.refresh_token);
  const s2r = await refresh(ctx, s2.refresh_token);
  check('one-token: second login in the same browser also replaces the first', isDexRefreshInvalid(s1r) && s2r.status === 200, `${JSON.stringify(s1r.json)} / ${JSON.stringify(s2r.json)}`);
  const a2e = await refresh(ctx, a2d.json.refresh_token);
  check('one-token: ...and the earlier chain from another browser is gone as well', isDexRefreshInvalid(a2e), JSON.stringify(a2e.json));

  const garbage = await refresh(ctx, 'no-such-refresh-token');
  check('unknown refresh token refused with the same Dex answer', isDexRefreshInvalid(garbage), JSON.stringify(garbage.json));

  // counters: alice a1 r1 a2 n1 s1 s2 = 6 code grants (5 with a refresh token), bob 1;
  // replaced: a2 replaced a1's chain, s1 a2's, s2 s1's (+ what was live before a1 / b1)
  const aliceReplaced = 3 + aliceBefore;
  const st = await getJSON(`${issuer}/_test/stats`);
  check('stats: code grants per user / client', st.authorization_code_grants === 7
    && st.authorization_code_grants_by_account_email['alice@example.test'] === 6 && st.authorization_code_grants_by_account_email['bob@example.test'] === 1
    && st.authorization_code_grants_by_client.selftest === 6 && st.authorization_code_grants_by_client.remote === 1
    && st.authorization_code_grants_by_sub[g.users['alice@example.test'].sub] === 6 && st.refresh_tokens_issued === 6, JSON.stringify(st));
  check('stats: replaced tokens and refusal reasons', st.refresh_tokens_replaced === aliceReplaced + bobBefore
    && st.refresh_tokens_replaced_by_account_email['alice@example.test'] === aliceReplaced
    && (st.refresh_tokens_replaced_by_account_email['bob@example.test'] || 0) === bobBefore
    && st.refresh_failures === 6 && st.refresh_failures_by_error.invalid_request === 6
    && st.refresh_failures_by_reason.replaced === 4 && st.refresh_failures_by_reason.reused === 1 && st.refresh_failures_by_reason.unknown === 1
    && st.refresh_failures_by_account_email['alice@example.test'] === 5 && !st.refresh_failures_by_account_email['bob@example.test'], JSON.stringify(st));
  check('stats: refresh calls per user', st.refresh_by_account_email['alice@example.test'] === 6 && st.refresh_by_account_email['bob@example.test'] === 1 && st.refresh_grants === 7, JSON.stringify(st.refresh_by_account_email));
  g = await getJSON(`${issuer}/_test/grants`);
  const ga = g.users['alice@example.test'];
  const gb = g.users['bob@example.test'];
  check('GET /_test/grants per user', ga.authorization_code_grants === 6 && ga.refresh_grants === 6 && ga.refresh_failures === 5 && ga.refresh_tokens_replaced === aliceReplaced
    && gb.authorization_code_grants === 1 && gb.refresh_grants === 1 && gb.refresh_failures === 0 && gb.refresh_tokens_replaced === bobBefore
    && g.authorization_code_grants === 7 && g.refresh_tokens_issued === 6 && g.refresh_tokens_replaced === aliceReplaced + bobBefore
    && g.refresh_grants === 7 && g.refresh_failures === 6, JSON.stringify(g).slice(0, 600));
  check('GET /_test/grants: one live refresh token per (user, client)', JSON.stringify(ga.live_refresh_tokens_by_client) === '{"remote":1,"selftest":1}'
    || JSON.stringify(ga.live_refresh_tokens_by_client) === '{"selftest":1,"remote":1}', JSON.stringify(ga.live_refresh_tokens_by_client));
  check('GET /_test/grants: bob keeps his one live token', gb.live_refresh_tokens_by_client.selftest === 1, JSON.stringify(gb));
}

// The rule can be turned off: --multiple-grants, or "one_refresh_token_per_user_client": false.
async function multipleGrantsAllowed() {
  const cfgFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'idp-selftest-')), 'idp.json');
  fs.writeFileSync(cfgFile, JSON.stringify({ one_refresh_token_per_user_client: false }));
  const variants = [
    { label: '--multiple-grants', args: ['--multiple-grants'], env: {}, off: true },
    { label: 'JSON one_refresh_token_per_user_client:false', args: ['--config', cfgFile], env: {}, off: true },
    { label: 'IDP_CONFIG false + --no-multiple-grants (flag wins)', args: ['--no-multiple-grants'], env: { IDP_CONFIG: '{"one_refresh_token_per_user_client":false}' }, off: false },
  ];
  try {
    for (const v of variants) {
      const p = await startChild('idp.mjs', ['--client', `${CLIENT_ID}:${CLIENT_SECRET}:${REDIRECT_URI}`, ...v.args], `idp(${v.label})`, v.env);
      const c = { issuer: p.info.issuer, discovery: await getJSON(`${p.info.issuer}/.well-known/openid-configuration`) };
      const x1 = await codeGrant(c, 'alice');
      const x2 = await codeGrant(c, 'alice');
      const y1 = await refresh(c, x1.refresh_token);
      const y2 = await refresh(c, x2.refresh_token);
      const g = await getJSON(`${c.issuer}/_test/grants`);
      const ga = g.users['alice@example.test'];
      if (v.off) {
        check(`${v.label}: both grants of one user at one client refresh`, y1.status === 200 && y2.status === 200
          && g.one_refresh_token_per_user_client === false && ga.refresh_tokens_replaced === 0 && ga.live_refresh_tokens_by_client.selftest === 2,
        `${JSON.stringify(y1.json)} / ${JSON.stringify(y2.json)} / ${JSON.stringify(g).slice(0, 300)}`);
        const reuse = await refresh(c, x1.refresh_token);
        check(`${v.label}: a rotated-away token is still refused the Dex way`, isDexRefreshInvalid(reuse), JSON.stringify(reuse.json));
      } else {
        check(`${v.label}: rule on again`, g.one_refresh_token_per_user_client === true && isDexRefreshInvalid(y1) && y2.status === 200
          && ga.live_refresh_tokens_by_client.selftest === 1, JSON.stringify(g).slice(0, 300));
      }
      await new Promise((resolve) => {
        p.child.once('exit', resolve);
        p.child.kill('SIGTERM');
      });
    }
  } finally {
    fs.rmSync(path.dirname(cfgFile), { recursive: true, force: true });
  }
}

try {
  await main();
} catch (err) {
  failed += 1;
  console.log(`FAIL - unexpected error: ${err?.stack || err}`);
} finally {
  stopAll();
}
console.log(`${passed} passed, ${failed} failed`);
process.exitCode = failed ? 1 : 0;
