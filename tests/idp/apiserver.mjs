#!/usr/bin/env node
// Stand-in Kubernetes API server for the kubectl tests: authenticates bearer tokens as
// kube-apiserver's OIDC authenticator does (--oidc-issuer-url, --oidc-client-id,
// --oidc-username-claim=email, --oidc-groups-claim=groups): signature against the
// issuer's JWKS (RS256 only), `iss`, `aud` = the client id, `exp`; a token whose
// `email_verified` is false is refused. An authenticated GET answers discovery and a
// one-pod list (`kubectl get pods`), or else the identity it saw as JSON (`kubectl get
// --raw /whoami`); 401 with a Kubernetes Status otherwise. It serves HTTPS with
// the given certificate (kubectl sends exec credentials over TLS only). It keeps counters
// at GET /_test/stats (unauthenticated; tests only). Never logs tokens.
// After listening it prints one JSON line to stdout: {"port":N}.

import * as https from 'node:https';
import * as fs from 'node:fs';
import { createRemoteJWKSet, jwtVerify } from 'jose';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []),
);
for (const req of ['issuer', 'client-id', 'cert', 'key']) {
  if (!args[req]) {
    process.stderr.write(`usage: node apiserver.mjs --issuer URL --client-id ID --cert PEM --key PEM [--name c1] [--port N]\n`);
    process.exit(2);
  }
}
const name = args.name || 'c1';
const issuer = args.issuer;
const clientId = args['client-id'];
let jwks = null;
async function keys() {
  if (!jwks) {
    const res = await fetch(`${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`);
    if (!res.ok) throw new Error(`discovery: HTTP ${res.status}`);
    jwks = createRemoteJWKSet(new URL((await res.json()).jwks_uri), { cooldownDuration: 1000 });
  }
  return jwks;
}

const stats = { authenticated: 0, refused: 0, expired: 0, no_token: 0, reasons: {}, users: {} };

function status(res, code, reason, message) {
  res.writeHead(code, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason, message, code }));
}

// Enough of the API for `kubectl get pods`: discovery of the core group with one
// resource, and a pod list of one stand-in pod per namespace. Any other path answers
// the identity the token named (`kubectl get --raw /whoami`).
function answer(path, payload) {
  if (path === '/api') return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [] };
  if (path === '/apis') return { kind: 'APIGroupList', apiVersion: 'v1', groups: [] };
  if (path === '/api/v1') {
    return {
      kind: 'APIResourceList', groupVersion: 'v1',
      resources: [{ name: 'pods', singularName: 'pod', namespaced: true, kind: 'Pod', verbs: ['get', 'list'], shortNames: ['po'] }],
    };
  }
  const pods = /^\/api\/v1\/namespaces\/([a-z0-9-]+)\/pods$/.exec(path);
  if (pods) {
    return {
      kind: 'PodList', apiVersion: 'v1', metadata: { resourceVersion: '1' },
      items: [{
        metadata: {
          name: `dashboard-${name}`, namespace: pods[1], creationTimestamp: new Date(started).toISOString(),
          annotations: { 'stand-in/seen-user': payload.email },
        },
        spec: { containers: [{ name: 'dashboard', image: 'stand-in' }] },
        status: {
          phase: 'Running',
          containerStatuses: [{ name: 'dashboard', ready: true, restartCount: 0, image: 'stand-in', imageID: '', state: { running: {} } }],
        },
      }],
    };
  }
  return { cluster: name, username: payload.email, groups: payload.groups || [], exp: payload.exp };
}
const started = Date.now();

// kubectl sends exec-plugin credentials over TLS only, as a real API server serves.
const tls = { key: fs.readFileSync(args.key), cert: fs.readFileSync(args.cert) };
const server = https.createServer(tls, async (req, res) => {
  if (req.url === '/_test/stats') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(stats));
    return;
  }
  // Like a real API server (system:public-info-viewer), /version is public; kubectl
  // dispatchers ask it before choosing a client version.
  if (req.url.split('?')[0] === '/version') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ major: '1', minor: '32', gitVersion: 'v1.32.0', platform: 'linux/amd64' }));
    return;
  }
  const auth = req.headers.authorization || '';
  const m = /^Bearer (.+)$/.exec(auth);
  if (!m) {
    stats.no_token += 1;
    stats.refused += 1;
    status(res, 401, 'Unauthorized', 'Unauthorized');
    return;
  }
  try {
    const { payload } = await jwtVerify(m[1], await keys(), { issuer, audience: clientId, algorithms: ['RS256'] });
    if (payload.email_verified === false) throw new Error('email not verified');
    if (typeof payload.email !== 'string') throw new Error('no email claim');
    stats.authenticated += 1;
    stats.users[payload.email] = (stats.users[payload.email] || 0) + 1;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(answer(req.url.split('?')[0], payload)));
  } catch (err) {
    if (err && err.code === 'ERR_JWT_EXPIRED') stats.expired += 1;
    const reason = (err && err.code) || 'other';
    stats.reasons[reason] = (stats.reasons[reason] || 0) + 1;
    stats.refused += 1;
    status(res, 401, 'Unauthorized', 'Unauthorized');
  }
});
server.listen(Number(args.port || 0), '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
});
