// Keyway test provider: a real OpenID provider (panva's oidc-provider) for
// Keyway's end-to-end tests and the demo. TEST-ONLY: it keeps everything in
// memory, has hard-coded users, and exposes unauthenticated admin endpoints
// under /test/. Never expose it to anything but loopback.
//
// Usage: PORT=0 KEYWAY_TEST_PROVIDER='{"clients":[...]}' node server.mjs
// Prints exactly one line to stdout, `READY <issuer>`, once it listens.
// With "tls": {"cert_path", "key_path"} in the configuration it serves https
// (issuer https://127.0.0.1:<port>) with that certificate, else plain http.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import process from 'node:process';

import Provider, { interactionPolicy } from 'oidc-provider';

// stdout carries only the READY line (the Rust fixture parses it); send any
// library chatter (oidc-provider prints notices with console.info) to stderr.
console.log = (...args) => console.error(...args);
console.info = (...args) => console.error(...args);

// ---------------------------------------------------------------------------
// Configuration

const DEFAULT_CLIENT = {
  client_id: 'keyway',
  client_secret: 'keyway-secret',
  redirect_uris: ['http://127.0.0.1:8080/callback'],
  post_logout_redirect_uris: ['http://127.0.0.1:8080/'],
  backchannel_logout_uri: 'http://127.0.0.1:8080/bff/backchannel-logout',
  token_endpoint_auth_method: 'client_secret_basic',
};

function loadConfig() {
  const raw = process.env.KEYWAY_TEST_PROVIDER;
  let parsed = {};
  if (raw && raw.trim() !== '') {
    try {
      parsed = JSON.parse(raw);
    } catch (err) {
      console.error(`KEYWAY_TEST_PROVIDER is not valid JSON: ${err.message}`);
      process.exit(2);
    }
  }
  const positive = (value, fallback) => (Number.isFinite(value) && value > 0 ? Math.floor(value) : fallback);
  // `extra_clients`: more registrations as oidc-provider client metadata;
  // with them, an empty `clients` means no default client.
  const extraClients = Array.isArray(parsed.extra_clients) ? parsed.extra_clients : [];
  const listed = Array.isArray(parsed.clients) && parsed.clients.length > 0 ? parsed.clients : [];
  const fallback = listed.length === 0 && extraClients.length === 0 ? [DEFAULT_CLIENT] : [];
  return {
    clients: [...listed, ...fallback, ...extraClients],
    accessTokenTtl: positive(parsed.access_token_ttl, 3600),
    idTokenTtl: positive(parsed.id_token_ttl, 3600),
    refreshTokenTtl: positive(parsed.refresh_token_ttl, 86400),
    requirePar: parsed.require_par === true,
    // Rotate every refresh token on use (the old one is consumed; reusing it
    // revokes the whole grant). Unset: oidc-provider's default policy.
    rotateRefreshTokens: parsed.rotate_refresh_tokens === true,
    // oidc-provider's FAPI 2.0 Security Profile mode (features.fapi).
    fapi2: parsed.fapi2 === true,
    // DPoP proofs must carry a server nonce (features.dPoP.requireNonce).
    dpopNonce: parsed.dpop_nonce === true,
    // No pushed authorization requests at all (discovery then has no PAR endpoint).
    disablePar: parsed.disable_par === true,
    tls: loadTls(parsed.tls),
  };
}

/** Reads the TLS certificate and key named by the configuration, if any. */
function loadTls(tls) {
  if (tls === undefined || tls === null) return undefined;
  if (typeof tls.cert_path !== 'string' || typeof tls.key_path !== 'string') {
    console.error('KEYWAY_TEST_PROVIDER.tls needs cert_path and key_path');
    process.exit(2);
  }
  try {
    return { cert: fs.readFileSync(tls.cert_path), key: fs.readFileSync(tls.key_path) };
  } catch (err) {
    console.error(`cannot read the TLS certificate or key: ${err.message}`);
    process.exit(2);
  }
}

const config = loadConfig();

const SCOPE = 'openid profile email offline_access api';

// Client metadata passed on as given (private_key_jwt, DPoP, PAR clients).
const PASSED_METADATA = [
  'jwks_uri',
  'dpop_bound_access_tokens',
  'require_pushed_authorization_requests',
  'token_endpoint_auth_signing_alg',
];

function clientMetadata(client) {
  const metadata = {
    client_id: client.client_id,
    redirect_uris: client.redirect_uris ?? [],
    post_logout_redirect_uris: client.post_logout_redirect_uris ?? [],
    token_endpoint_auth_method: client.token_endpoint_auth_method ?? 'client_secret_basic',
    grant_types: client.grant_types ?? ['authorization_code', 'refresh_token', 'client_credentials'],
    response_types: client.response_types ?? ['code'],
    scope: SCOPE,
    // Every ID token says when the user authenticated (step-up tests).
    require_auth_time: true,
  };
  if (client.client_secret !== undefined) metadata.client_secret = client.client_secret;
  for (const key of PASSED_METADATA) {
    if (client[key] !== undefined) metadata[key] = client[key];
  }
  if (client.backchannel_logout_uri) {
    metadata.backchannel_logout_uri = client.backchannel_logout_uri;
    metadata.backchannel_logout_session_required = true;
  }
  return metadata;
}

// ---------------------------------------------------------------------------
// Accounts

const USERS = {
  alice: {
    password: 'wonderland',
    claims: {
      name: 'Alice Liddell',
      given_name: 'Alice',
      family_name: 'Liddell',
      email: 'alice@example.com',
      email_verified: true,
    },
  },
  bob: {
    password: 'builder',
    claims: {
      name: 'Bob the Builder',
      given_name: 'Bob',
      family_name: 'the Builder',
      email: 'bob@example.com',
      email_verified: true,
    },
  },
};

/** Looks a user up by login: the fixed users, or the generated `user<N>` ones. */
function lookupUser(login) {
  if (typeof login !== 'string') return undefined;
  if (Object.hasOwn(USERS, login)) return { sub: login, ...USERS[login] };
  const generated = /^user([0-9]+)$/.exec(login);
  if (generated) {
    const n = generated[1];
    return {
      sub: login,
      password: `pw-${n}`,
      claims: {
        name: `User ${n}`,
        email: `${login}@example.com`,
        email_verified: true,
      },
    };
  }
  return undefined;
}

function checkPassword(login, password) {
  const user = lookupUser(login);
  if (!user || typeof password !== 'string') return undefined;
  const a = Buffer.from(password);
  const b = Buffer.from(user.password);
  return a.length === b.length && crypto.timingSafeEqual(a, b) ? user : undefined;
}

// ---------------------------------------------------------------------------
// Storage: a small in-memory adapter (unbounded, unlike oidc-provider's LRU
// MemoryAdapter which keeps 1000 entries and so breaks load tests) that can
// also find and destroy everything belonging to one account.

const store = new Map(); // `${model}:${id}` -> { payload, expiresAt (ms) | undefined }
const grantMembers = new Map(); // grantId -> Set of store keys
const sessionUids = new Map(); // session uid -> session id
const userCodes = new Map(); // user code -> id

function liveEntry(key) {
  const entry = store.get(key);
  if (!entry) return undefined;
  if (entry.expiresAt !== undefined && entry.expiresAt <= Date.now()) {
    removeKey(key);
    return undefined;
  }
  return entry;
}

function removeKey(key) {
  const entry = store.get(key);
  store.delete(key);
  if (!entry) return;
  const { payload } = entry;
  if (payload.grantId) grantMembers.get(payload.grantId)?.delete(key);
  if (payload.uid && key.startsWith('Session:')) sessionUids.delete(payload.uid);
  if (payload.userCode) userCodes.delete(payload.userCode);
}

class TestAdapter {
  constructor(model) {
    this.model = model;
  }

  key(id) {
    return `${this.model}:${id}`;
  }

  async upsert(id, payload, expiresIn) {
    const key = this.key(id);
    removeKey(key);
    const expiresAt = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : undefined;
    store.set(key, { payload, expiresAt });
    if (payload.grantId) {
      if (!grantMembers.has(payload.grantId)) grantMembers.set(payload.grantId, new Set());
      grantMembers.get(payload.grantId).add(key);
    }
    if (this.model === 'Session' && payload.uid) sessionUids.set(payload.uid, id);
    if (payload.userCode) userCodes.set(payload.userCode, id);
  }

  async find(id) {
    return liveEntry(this.key(id))?.payload;
  }

  async findByUid(uid) {
    const id = sessionUids.get(uid);
    return id === undefined ? undefined : this.find(id);
  }

  async findByUserCode(userCode) {
    const id = userCodes.get(userCode);
    return id === undefined ? undefined : this.find(id);
  }

  async consume(id) {
    const entry = liveEntry(this.key(id));
    if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    removeKey(this.key(id));
  }

  async revokeByGrantId(grantId) {
    for (const key of grantMembers.get(grantId) ?? []) store.delete(key);
    grantMembers.delete(grantId);
  }
}

/** Destroys every session, grant, code and token of one account; returns how many. */
function destroyAccount(sub) {
  let destroyed = 0;
  for (const [key, { payload }] of [...store]) {
    const owner = payload.accountId ?? payload.session?.accountId;
    if (owner === sub) {
      removeKey(key);
      destroyed += 1;
      if (key.startsWith('Grant:')) {
        const grantId = key.slice('Grant:'.length);
        for (const member of grantMembers.get(grantId) ?? []) {
          if (store.delete(member)) destroyed += 1;
        }
        grantMembers.delete(grantId);
      }
    }
  }
  return destroyed;
}

// Sweep expired entries now and then so a long demo run does not grow forever.
setInterval(() => {
  for (const key of [...store.keys()]) liveEntry(key);
}, 30_000).unref();

// ---------------------------------------------------------------------------
// Test statistics (served by GET /test/stats)

const stats = {
  token_requests: { authorization_code: 0, refresh_token: 0, client_credentials: 0 },
  token_errors: { authorization_code: 0, refresh_token: 0, client_credentials: 0 },
  revocations: 0,
  backchannel_logouts_sent: 0,
  backchannel_logouts_failed: 0,
  // Metadata fetches by clients (counted before routing): lets a benchmark
  // check that a relying party caches discovery and the JWKS.
  discovery_requests: 0,
  jwks_requests: 0,
  // Requests to the authorization endpoint itself (not its `/auth/<uid>`
  // resumptions): a silent sign-in is one each, so a test can prove "once".
  authorization_requests: 0,
  // Refresh tokens destroyed by the revocation endpoint (a subset of
  // `revocations`): proves the refresh token itself was revoked.
  refresh_tokens_revoked: 0,
};

// TEST-ONLY delays of the token endpoint (set by POST /test/delay), in ms:
// `before` holds a token request before it is handled, `after` holds the
// answer of a handled one (a rotation has then already happened).
const tokenDelay = { before: 0, after: 0 };

const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

function countTokenRequest(ctx) {
  const grantType = ctx.oidc?.params?.grant_type ?? ctx.request?.body?.grant_type ?? 'unknown';
  stats.token_requests[grantType] = (stats.token_requests[grantType] ?? 0) + 1;
}

// ---------------------------------------------------------------------------
// HTML

function escapeHtml(value) {
  return String(value)
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

const STYLE = `body{font-family:system-ui,sans-serif;background:#f4f4f6;margin:0;padding:40px 0}
main{max-width:360px;margin:0 auto;background:#fff;padding:24px 32px;border-radius:6px;box-shadow:0 1px 3px rgba(0,0,0,.2)}
h1{font-size:1.3em;margin-top:0}label{display:block;margin:12px 0 4px}
input{width:100%;box-sizing:border-box;padding:8px;font-size:1em}
button{margin-top:16px;padding:8px 16px;font-size:1em;cursor:pointer}
#error{color:#b00020}.muted{color:#666;font-size:.9em}ul{padding-left:20px}`;

function page(heading, body) {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Keyway test provider</title>
<style>${STYLE}</style>
</head>
<body>
<main>
<h1>${escapeHtml(heading)}</h1>
${body}
<p class="muted">Keyway test provider &mdash; for tests and demos only.</p>
</main>
</body>
</html>`;
}

// Authentication levels (acr): a password, or a password and a one-time
// code. The login page asks for the code only when the client asked for
// ACR_MFA; the code is always ONE_TIME_CODE (test-only!).
const ACR_PASSWORD = 'urn:keyway:pwd';
const ACR_MFA = 'urn:keyway:mfa';
const ONE_TIME_CODE = '123456';

/** Whether the authorization request asked for the two-factor level. */
function wantsMfa(params) {
  return String(params.acr_values ?? '').split(' ').includes(ACR_MFA);
}

function loginForm(uid, { login = '', error = false, mfa = false } = {}) {
  const otp = mfa ? `<label for="otp">One-time code (leave empty to sign in with the password only)</label>
<input id="otp" name="otp" inputmode="numeric" autocomplete="one-time-code">` : '';
  return `${error ? '<p id="error">Invalid username or password</p>' : ''}
<form method="post" action="/interaction/${escapeHtml(uid)}/login" autocomplete="off">
<label for="login">Username</label>
<input id="login" name="login" value="${escapeHtml(login)}" autofocus required>
<label for="password">Password</label>
<input id="password" name="password" type="password" required>
${otp}
<button id="submit" type="submit">Sign in</button>
</form>`;
}

function loginPage(uid, clientId, options = {}) {
  return page(`Sign in to ${clientId}`, loginForm(uid, options));
}

/** prompt=select_account: continue as the signed-in account, or sign in as another. */
function selectAccountPage(uid, clientId, accountId) {
  return page(`Choose an account for ${clientId}`, `<p id="select-account">You are signed in as <strong id="account">${escapeHtml(accountId)}</strong>.</p>
<form method="post" action="/interaction/${escapeHtml(uid)}/select">
<button id="continue" type="submit">Continue as ${escapeHtml(accountId)}</button>
</form>
<h2>Use another account</h2>
${loginForm(uid, {})}`);
}

function consentPage(uid, clientId, accountId, scopes) {
  const items = scopes.map((scope) => `<li>${escapeHtml(scope)}</li>`).join('');
  return page(`Authorize ${clientId}`, `<p>Signed in as <strong id="account">${escapeHtml(accountId)}</strong>.</p>
<p><strong>${escapeHtml(clientId)}</strong> asks for:</p>
<ul id="scopes">${items}</ul>
<form method="post" action="/interaction/${escapeHtml(uid)}/confirm" style="display:inline">
<button id="allow" type="submit">Allow</button>
</form>
<form method="post" action="/interaction/${escapeHtml(uid)}/abort" style="display:inline">
<button id="deny" type="submit">Deny</button>
</form>`);
}

// ---------------------------------------------------------------------------
// Provider

function signingKey() {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  return { ...jwk, kid: `test-${crypto.randomBytes(8).toString('hex')}`, use: 'sig', alg: 'RS256' };
}

/** The provider's one signing key (private JWK), also used by POST /test/sign. */
const SIGNING_JWK = signingKey();

/**
 * TEST-ONLY: signs arbitrary claims as an RS256 JWS with the provider's own key
 * (or, with `foreign`, with a fresh key under the same kid that the JWKS does
 * not publish), so tests can craft logout tokens that only fail the checks
 * after the signature (expired, nonce, wrong events...).
 */
function signTestJwt({ claims, header = {}, foreign = false }) {
  const key = foreign
    ? crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey
    : crypto.createPrivateKey({ key: SIGNING_JWK, format: 'jwk' });
  const head = { alg: 'RS256', kid: SIGNING_JWK.kid, typ: 'logout+jwt', ...header };
  const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const input = `${b64(head)}.${b64(claims)}`;
  const signature = crypto.sign('RSA-SHA256', Buffer.from(input), key).toString('base64url');
  return `${input}.${signature}`;
}

/** The scope the client really sent: pushed request, request object, form body or query. */
function requestedScope(ctx) {
  const requestObject = ctx.oidc.entities.PushedAuthorizationRequest?.request
    ?? ctx.oidc.body?.request
    ?? ctx.query?.request;
  if (typeof requestObject === 'string') {
    try {
      const payload = JSON.parse(Buffer.from(requestObject.split('.')[1], 'base64url').toString('utf8'));
      if (typeof payload.scope === 'string') return payload.scope;
    } catch {
      // not a readable JWT (e.g. encrypted): fall through to the plain parameters
    }
  }
  const raw = ctx.oidc.body?.scope ?? ctx.query?.scope;
  return typeof raw === 'string' ? raw : '';
}

/** Puts offline_access back into the authorization request (see extraParams). */
function restoreOfflineAccess(ctx, client) {
  const { params } = ctx.oidc;
  if (!['authorization', 'pushed_authorization_request'].includes(ctx.oidc.route)) return;
  if (!client?.grantTypeAllowed('refresh_token')) return;
  if (!String(params.response_type ?? '').split(' ').includes('code')) return;
  // prompt=none cannot show the consent page that would grant it.
  if (ctx.oidc.prompts.has('none')) return;
  const scopes = new Set(String(params.scope ?? '').split(' ').filter(Boolean));
  if (scopes.has('offline_access')) return;
  if (requestedScope(ctx).split(' ').includes('offline_access')) {
    scopes.add('offline_access');
    params.scope = [...scopes].join(' ');
  }
}

/**
 * oidc-provider's default policy, plus what Keycloak and the like do:
 * `acr_values` that the provider session's level does not meet ask for a
 * new login (oidc-provider itself only does so for essential `acr` claims),
 * and a `select_account` prompt (the account choice page).
 */
function interactionPolicyWithStepUp() {
  const { Check, Prompt, base } = interactionPolicy;
  const policy = base();
  policy.get('login').checks.add(new Check('acr_values_not_met', 'a higher authentication level was requested', (ctx) => {
    const { oidc } = ctx;
    const asked = String(oidc.params.acr_values ?? '').split(' ').filter(Boolean);
    if (asked.length === 0 || ctx.oidc.result?.login) return Check.NO_NEED_TO_PROMPT;
    if (!oidc.session.accountId) return Check.REQUEST_PROMPT;
    return asked.includes(oidc.session.acr) ? Check.NO_NEED_TO_PROMPT : Check.REQUEST_PROMPT;
  }));
  policy.add(new Prompt({ name: 'select_account', requestable: true }), 1);
  return policy;
}

function buildProvider(issuer) {
  const provider = new Provider(issuer, {
    adapter: TestAdapter,
    clients: config.clients.map(clientMetadata),
    jwks: { keys: [SIGNING_JWK] },
    cookies: {
      keys: [crypto.randomBytes(32).toString('base64url')],
    },
    scopes: SCOPE.split(' '),
    responseTypes: ['code'],
    claims: {
      openid: ['sub'],
      profile: ['name', 'given_name', 'family_name'],
      email: ['email', 'email_verified'],
    },
    // Put the scope claims into the ID token too, not only into userinfo.
    conformIdTokenClaims: false,
    async findAccount(_ctx, sub) {
      const user = lookupUser(sub);
      if (!user) return undefined;
      return {
        accountId: user.sub,
        async claims() {
          return { sub: user.sub, ...user.claims };
        },
      };
    },
    interactions: {
      url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
      policy: interactionPolicyWithStepUp(),
    },
    acrValues: [ACR_PASSWORD, ACR_MFA],
    // PKCE is required for every client; oidc-provider 9 only supports S256.
    pkce: { required: () => true },
    // Refresh tokens, like Keycloak: whenever a client allowed the
    // refresh_token grant asks for offline_access, it gets a refresh token,
    // even without `prompt=consent`. oidc-provider follows OIDC Core 11 to the
    // letter and drops offline_access from authorization requests whose
    // `prompt` lacks `consent`; the extraParams hook below (run right after
    // that check) puts it back, the consent page grants it, and
    // issueRefreshToken issues the token.
    extraParams: {
      async keyway_keep_offline_access(ctx, _value, client) {
        restoreOfflineAccess(ctx, client);
      },
    },
    ...(config.rotateRefreshTokens ? { rotateRefreshToken: true } : {}),
    async issueRefreshToken(_ctx, client, code) {
      return client.grantTypeAllowed('refresh_token') && code.scopes.has('offline_access');
    },
    ttl: {
      AccessToken: config.accessTokenTtl,
      ClientCredentials: config.accessTokenTtl,
      IdToken: config.idTokenTtl,
      RefreshToken: config.refreshTokenTtl,
      AuthorizationCode: 60,
      Interaction: 3600,
      Session: 14 * 24 * 3600,
      Grant: Math.max(config.refreshTokenTtl, 14 * 24 * 3600),
    },
    // oidc-provider's outgoing requests (backchannel logout tokens) go through
    // a dispatcher that refuses special-use addresses such as 127.0.0.1 (SSRF
    // protection). The test BFF listens on loopback, so drop that dispatcher
    // and use Node's default one.
    fetch(url, options) {
      const { dispatcher: _ssrfGuard, ...rest } = options;
      return globalThis.fetch(url, rest);
    },
    features: {
      devInteractions: { enabled: false },
      revocation: { enabled: true },
      introspection: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        async logoutSource(ctx, form) {
          ctx.type = 'html';
          ctx.body = page('Sign out', `<p>Do you want to sign out from the Keyway test provider?</p>
${form}
<button id="logout" autofocus type="submit" form="op.logoutForm" value="yes" name="logout">Yes, sign me out</button>
<button id="stay" type="submit" form="op.logoutForm">No, stay signed in</button>`);
        },
        async postLogoutSuccessSource(ctx) {
          ctx.type = 'html';
          ctx.body = page('Signed out', '<p id="signed-out">You are signed out.</p>');
        },
      },
      backchannelLogout: { enabled: true },
      clientCredentials: { enabled: true },
      pushedAuthorizationRequests: {
        enabled: !config.disablePar,
        requirePushedAuthorizationRequests: config.requirePar,
      },
      dPoP: {
        enabled: true,
        ...(config.dpopNonce ? { nonceSecret: crypto.randomBytes(32), requireNonce: () => true } : {}),
      },
      ...(config.fapi2 ? { fapi: { enabled: true, profile: '2.0' } } : {}),
    },
    async renderError(ctx, out) {
      ctx.type = 'html';
      const rows = Object.entries(out)
        .map(([key, value]) => `<p><strong>${escapeHtml(key)}</strong>: <span class="${escapeHtml(key)}">${escapeHtml(value)}</span></p>`)
        .join('');
      ctx.body = page('Something went wrong', rows);
    },
  });

  provider.on('grant.success', countTokenRequest);
  provider.on('grant.error', (ctx) => {
    countTokenRequest(ctx);
    // Refused grants by type (a refresh token spent twice is one).
    const grantType = ctx.oidc?.params?.grant_type ?? ctx.request?.body?.grant_type ?? 'unknown';
    stats.token_errors[grantType] = (stats.token_errors[grantType] ?? 0) + 1;
  });
  provider.on('backchannel.success', () => {
    stats.backchannel_logouts_sent += 1;
  });
  provider.on('backchannel.error', (_ctx, err, client) => {
    stats.backchannel_logouts_sent += 1;
    stats.backchannel_logouts_failed += 1;
    console.error(`backchannel logout to ${client.clientId} failed: ${err?.message ?? err}`);
  });
  provider.on('server_error', (_ctx, err) => console.error('server_error', err));

  // There is no revocation.success event: count answered revocation requests.
  const revocationPath = new URL(provider.urlFor('revocation')).pathname;
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.method === 'POST' && ctx.path === revocationPath && ctx.status === 200) {
      stats.revocations += 1;
      if (ctx.oidc?.entities?.RefreshToken) stats.refresh_tokens_revoked += 1;
    }
  });

  // TEST-ONLY: hold token requests and/or their answers (POST /test/delay).
  const tokenPath = new URL(provider.urlFor('token')).pathname;
  provider.use(async (ctx, next) => {
    if (ctx.method !== 'POST' || ctx.path !== tokenPath) {
      await next();
      return;
    }
    const { before, after } = tokenDelay;
    if (before > 0) await sleep(before);
    await next();
    if (after > 0) await sleep(after);
  });

  return provider;
}

// ---------------------------------------------------------------------------
// Plain node:http handlers for the interactions and the test endpoints

async function readJson(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 64 * 1024) throw new Error('form too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function send(res, status, contentType, body) {
  res.statusCode = status;
  res.setHeader('Content-Type', contentType);
  res.setHeader('Cache-Control', 'no-store');
  res.end(body);
}

function sendHtml(res, status, html) {
  send(res, status, 'text/html; charset=utf-8', html);
}

function sendJson(res, status, value) {
  send(res, status, 'application/json', JSON.stringify(value));
}

async function grantConsent(provider, details) {
  const { prompt: { details: missing }, params, session } = details;
  let grant;
  if (details.grantId) {
    grant = await provider.Grant.find(details.grantId);
  }
  if (!grant) {
    grant = new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  }
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  if (missing.missingResourceScopes) {
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes)) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
  }
  const grantId = await grant.save();
  return details.grantId === grantId ? {} : { grantId };
}

async function handleInteraction(provider, req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) {
    sendHtml(res, 400, page('Something went wrong', '<p>Interaction mismatch.</p>'));
    return;
  }
  const { prompt, params } = details;
  const clientId = String(params.client_id ?? '');

  if (req.method === 'GET' && action === undefined) {
    if (prompt.name === 'login') {
      sendHtml(res, 200, loginPage(uid, clientId, { mfa: wantsMfa(params) }));
    } else if (prompt.name === 'select_account') {
      sendHtml(res, 200, selectAccountPage(uid, clientId, details.session?.accountId ?? ''));
    } else if (prompt.name === 'consent') {
      const scopes = String(params.scope ?? '').split(' ').filter(Boolean);
      sendHtml(res, 200, consentPage(uid, clientId, details.session?.accountId ?? '', scopes));
    } else {
      sendHtml(res, 400, page('Something went wrong', `<p>Unknown prompt ${escapeHtml(prompt.name)}.</p>`));
    }
    return;
  }

  if (req.method !== 'POST') {
    sendHtml(res, 405, page('Something went wrong', '<p>Method not allowed.</p>'));
    return;
  }

  const form = await readForm(req);
  if (action === 'login' && (prompt.name === 'login' || prompt.name === 'select_account')) {
    const login = form.get('login') ?? '';
    const user = checkPassword(login, form.get('password') ?? '');
    const otp = form.get('otp') ?? '';
    if (!user || (otp !== '' && otp !== ONE_TIME_CODE)) {
      sendHtml(res, 200, loginPage(uid, clientId, { login, error: true, mfa: wantsMfa(params) }));
      return;
    }
    const acr = otp === ONE_TIME_CODE ? ACR_MFA : ACR_PASSWORD;
    const result = { login: { accountId: user.sub, acr } };
    if (prompt.name === 'select_account') result.select_account = {};
    await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
  } else if (action === 'select' && prompt.name === 'select_account') {
    await provider.interactionFinished(req, res, { select_account: {} }, { mergeWithLastSubmission: true });
  } else if (action === 'confirm' && prompt.name === 'consent') {
    const consent = await grantConsent(provider, details);
    await provider.interactionFinished(req, res, { consent }, { mergeWithLastSubmission: true });
  } else if (action === 'abort') {
    await provider.interactionFinished(req, res, {
      error: 'access_denied',
      error_description: 'End-User denied the request',
    }, { mergeWithLastSubmission: false });
  } else {
    sendHtml(res, 400, page('Something went wrong', '<p>Unexpected form for this step.</p>'));
  }
}

/** A delay in ms from a JSON value: a finite number >= 0, else undefined. */
function delayMs(value) {
  return Number.isFinite(value) && value >= 0 ? Math.floor(value) : undefined;
}

// TEST-ONLY endpoints, no authentication: GET /test/stats, POST /test/revoke?sub=<sub>,
// POST /test/sign {claims, header?, foreign?}, POST /test/delay {token_ms, token_after_ms?},
// POST /test/expire-client-keys?client_id=<id>.
function handleTestEndpoint(req, res, url) {
  if (url.pathname === '/test/expire-client-keys' && req.method === 'POST') {
    // What the passing of the client's JWKS cache time (at least 60 s in
    // oidc-provider) would do: the next assertion that no cached key
    // verifies fetches the client's jwks_uri again.
    provider.Client.find(url.searchParams.get('client_id') ?? '').then(
      (client) => {
        if (!client) {
          sendJson(res, 404, { error: 'no such client' });
          return;
        }
        client.asymmetricKeyStore.freshUntil = 0;
        sendJson(res, 200, { client_id: client.clientId });
      },
      (err) => sendJson(res, 500, { error: String(err?.message ?? err) }),
    );
  } else if (url.pathname === '/test/stats' && req.method === 'GET') {
    sendJson(res, 200, stats);
  } else if (url.pathname === '/test/delay' && req.method === 'POST') {
    readJson(req).then(
      (body) => {
        const before = delayMs(body?.token_ms ?? 0);
        const after = delayMs(body?.token_after_ms ?? 0);
        if (before === undefined || after === undefined) {
          sendJson(res, 400, { error: 'token_ms and token_after_ms must be numbers >= 0' });
          return;
        }
        tokenDelay.before = before;
        tokenDelay.after = after;
        sendJson(res, 200, { token_ms: before, token_after_ms: after });
      },
      () => sendJson(res, 400, { error: 'bad JSON' }),
    );
  } else if (url.pathname === '/test/sign' && req.method === 'POST') {
    readJson(req).then(
      (body) => sendJson(res, 200, { jwt: signTestJwt(body) }),
      () => sendJson(res, 400, { error: 'bad JSON' }),
    );
  } else if (url.pathname === '/test/revoke' && req.method === 'POST') {
    const sub = url.searchParams.get('sub');
    if (!sub) {
      sendJson(res, 400, { error: 'missing sub' });
      return;
    }
    sendJson(res, 200, { sub, destroyed: destroyAccount(sub) });
  } else {
    sendJson(res, 404, { error: 'not found' });
  }
}

// ---------------------------------------------------------------------------
// Server

const server = config.tls ? https.createServer({ cert: config.tls.cert, key: config.tls.key }) : http.createServer();
// Idle keep-alive connections are closed by the clients (reqwest: after
// 90 s), not by this server: with Node's default of 5 s a client that reuses
// a connection just as the server closes it gets "error sending request",
// which made load tests that call every few seconds fail at random.
server.keepAliveTimeout = 120_000;
server.headersTimeout = 121_000;
let provider;
let providerCallback;
let authorizationPath;

server.on('request', async (req, res) => {
  try {
    const url = new URL(req.url, 'http://127.0.0.1');
    if (url.pathname === '/.well-known/openid-configuration') stats.discovery_requests += 1;
    if (url.pathname === '/jwks') stats.jwks_requests += 1;
    if (url.pathname === authorizationPath) stats.authorization_requests += 1;
    if (url.pathname.startsWith('/test/')) {
      handleTestEndpoint(req, res, url);
      return;
    }
    const interaction = /^\/interaction\/([^/]+)(?:\/(login|confirm|abort|select))?$/.exec(url.pathname);
    if (interaction) {
      await handleInteraction(provider, req, res, interaction[1], interaction[2]);
      return;
    }
    providerCallback(req, res);
  } catch (err) {
    console.error('request failed', err);
    if (!res.headersSent) {
      const known = err?.name === 'SessionNotFound' || err?.statusCode === 400;
      sendHtml(res, known ? 400 : 500, page('Something went wrong', `<p>${escapeHtml(err?.message ?? 'error')}</p>`));
    } else {
      res.end();
    }
  }
});

const port = Number.parseInt(process.env.PORT ?? '0', 10) || 0;
server.listen(port, '127.0.0.1', () => {
  const { port: actual } = server.address();
  const issuer = `${config.tls ? 'https' : 'http'}://127.0.0.1:${actual}`;
  provider = buildProvider(issuer);
  authorizationPath = new URL(provider.urlFor('authorization')).pathname;
  providerCallback = provider.callback();
  process.stdout.write(`READY ${issuer}\n`);
});

function shutdown() {
  server.close();
  server.closeAllConnections?.();
  process.exit(0);
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
