// A real OpenID Connect provider for postdesk's tests: panva's certified `oidc-provider`
// (pinned in package-lock.json), configured for loopback HTTP, with our own tiny login page.
//
// Started by crates/testkit/src/oidc.rs (`OidcProvider::start`), or by hand:
//
//   node tests/oidc/provider.mjs CONFIG.json      (or the JSON itself in $POSTDESK_OIDC_CONFIG)
//
// CONFIG:
//   {
//     "port": 0,                          // 0 (or absent): any free port, reported in READY
//     "exit_on_stdin_eof": false,         // exit when stdin closes (the test process died)
//     "clients": [{
//       "client_id": "postdesk-test", "client_secret": "...",
//       "redirect_uris": ["http://127.0.0.1:8080/auth/oidc/callback"]
//     }],
//     "users": [{
//       "sub": "ana", "email": "ana@example.test", "email_verified": true, "name": "Ana",
//       "postdesk_role": "agent", "groups": ["support"], "password": "..."
//     }],
//     "access_token_ttl_secs": 3600,      // lifetime of access tokens (default 3600)
//     "refresh_token_ttl_secs": 86400,    // lifetime of refresh tokens (default 86400)
//     "introspection_client": {           // optional: a client that may only introspect
//       "client_id": "dovecot", "client_secret": "..."   // (e.g. an IMAP server)
//     },
//     "admin_token": "..."                // optional: enables POST /testkit/revoke-grants
//   }
//
// What it serves on http://127.0.0.1:PORT (the issuer, no path):
// - discovery at /.well-known/openid-configuration, keys at /jwks, /auth, /token, /me;
// - authorization code flow only, PKCE S256 required for every client; confidential
//   clients, client_secret_basic or client_secret_post at /token;
// - scopes openid, email (email, email_verified), profile (name); postdesk_role and groups
//   come with openid itself; all of them are in the ID token too (conformIdTokenClaims off);
// - mailbox OAuth2 (what Gmail / Microsoft 365 do for IMAP and SMTP): scope `mail` (like
//   Google's https://mail.google.com/); a refresh token comes with every code exchange whose
//   granted scopes include `mail` or `offline_access` (the library keeps `offline_access` only
//   with prompt=consent, as OpenID Connect Core says). Refresh tokens are rotated on every
//   use; presenting a used one again is refused (invalid_grant) AND revokes the whole grant
//   (reuse detection, OAuth 2.0 Security BCP), so the newest refresh token dies with it;
// - /token/introspection (RFC 7662; any registered client may introspect any token): an
//   active access token answers {active: true, sub, client_id, scope, exp, iat, iss,
//   token_type, username}, `username` being the account's email (the mailbox name);
//   anything else answers {active: false};
// - /token/revocation (RFC 7009; a client revokes its own tokens): revoking a refresh or
//   access token revokes the whole grant (every token issued under it);
// - POST /testkit/revoke-grants (form `account` = sub or email, header
//   `Authorization: Bearer <admin_token>`): revokes every grant of that account, as when
//   the user removes the app's access or an admin resets them; answers {revoked: N};
// - GET /interaction/:uid: a login form (fields `login` = email or sub, `password`);
//   POST /interaction/:uid: checks them, then finishes the login. Consent is always granted
//   (loadExistingGrant below), so no consent page is ever shown.
//
// Prints `READY http://127.0.0.1:PORT` on stdout once it accepts requests, and one line per
// request and per provider error, for the test's log.

import crypto from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import { Provider } from "oidc-provider";

function readConfig() {
  const arg = process.argv[2];
  const text = arg ? fs.readFileSync(arg, "utf8") : process.env.POSTDESK_OIDC_CONFIG;
  if (!text) {
    throw new Error("usage: node provider.mjs CONFIG.json (or set POSTDESK_OIDC_CONFIG to the JSON)");
  }
  const config = JSON.parse(text);
  if (!Array.isArray(config.clients) || config.clients.length === 0) {
    throw new Error("config: `clients` must be a non-empty array");
  }
  if (!Array.isArray(config.users)) throw new Error("config: `users` must be an array");
  for (const user of config.users) {
    if (typeof user.sub !== "string" || !user.sub) throw new Error("config: every user needs a `sub`");
    if (typeof user.password !== "string") throw new Error(`config: user ${user.sub} needs a \`password\``);
  }
  return config;
}

const config = readConfig();
const users = config.users;
const accessTokenTtl = Number(config.access_token_ttl_secs ?? 3600);
const refreshTokenTtl = Number(config.refresh_token_ttl_secs ?? 86400);
/** The scope for mailbox access (IMAP/SMTP), like Google's https://mail.google.com/. */
const MAIL_SCOPE = "mail";
/** accountId -> Set of grant ids, to revoke them all at once (POST /testkit/revoke-grants). */
const grantsByAccount = new Map();

/** The user whose email (case-insensitive) or sub is `login`. */
function findUser(login) {
  const wanted = String(login ?? "").trim();
  return users.find(
    (u) => u.sub === wanted || (typeof u.email === "string" && u.email.toLowerCase() === wanted.toLowerCase()),
  );
}

function claimsOf(user) {
  const claims = { sub: user.sub };
  for (const key of ["email", "email_verified", "name", "postdesk_role", "groups"]) {
    if (user[key] !== undefined && user[key] !== null) claims[key] = user[key];
  }
  return claims;
}

function escapeHtml(value) {
  return String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function loginPage(uid, clientId, error, login) {
  const message = error ? `<p id="error" class="error">${escapeHtml(error)}</p>` : "";
  return `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Sign in (postdesk test OIDC provider)</title></head>
<body>
<h1>Sign in to ${escapeHtml(clientId)}</h1>
${message}
<form id="login" method="post" action="/interaction/${escapeHtml(uid)}">
  <label>Email <input name="login" value="${escapeHtml(login ?? "")}" autofocus></label>
  <label>Password <input name="password" type="password"></label>
  <button type="submit">Sign in</button>
</form>
</body></html>
`;
}

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 64 * 1024) throw new Error("form too large");
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString("utf8"));
}

function send(res, status, type, body) {
  res.statusCode = status;
  res.setHeader("Content-Type", type);
  res.setHeader("Cache-Control", "no-store");
  res.end(body);
}

const server = http.createServer();
server.listen(Number(config.port ?? 0), "127.0.0.1", () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;

  const { privateKey } = crypto.generateKeyPairSync("rsa", { modulusLength: 2048 });
  const signingKey = { ...privateKey.export({ format: "jwk" }), kid: "postdesk-test-rs256", alg: "RS256", use: "sig" };

  const provider = new Provider(issuer, {
    clients: [
      ...config.clients.map((c) => ({
        client_id: c.client_id,
        client_secret: c.client_secret,
        redirect_uris: c.redirect_uris,
        // The library accepts client_secret_post as well for a client_secret_basic client.
        token_endpoint_auth_method: "client_secret_basic",
        grant_types: ["authorization_code", "refresh_token"],
        response_types: ["code"],
      })),
      // A resource server (e.g. Dovecot): no flows of its own, only introspection.
      ...(config.introspection_client
        ? [{
          client_id: config.introspection_client.client_id,
          client_secret: config.introspection_client.client_secret,
          redirect_uris: [],
          token_endpoint_auth_method: "client_secret_basic",
          grant_types: [],
          response_types: [],
        }]
        : []),
    ],
    jwks: { keys: [signingKey] },
    cookies: { keys: [crypto.randomBytes(32).toString("base64url")] },
    scopes: ["openid", "offline_access", MAIL_SCOPE],
    claims: {
      openid: ["sub", "postdesk_role", "groups"],
      email: ["email", "email_verified"],
      profile: ["name"],
    },
    // Put the scope-requested claims in the ID token as well, not only in userinfo.
    conformIdTokenClaims: false,
    responseTypes: ["code"],
    pkce: { required: () => true },
    features: {
      devInteractions: { enabled: false },
      // Discovery would advertise DPoP; our clients do not use it.
      dPoP: { enabled: false },
      // RFC 7662; the caller must authenticate as a registered client, any one will do.
      introspection: { enabled: true, allowedPolicy: async () => true },
      // RFC 7009; a client may revoke only its own tokens (the library's default policy).
      revocation: { enabled: true },
    },
    // Refresh tokens for mailbox access (scope `mail`) and for `offline_access`.
    async issueRefreshToken(ctx, client, code) {
      return client.grantTypeAllowed("refresh_token")
        && (code.scopes.has(MAIL_SCOPE) || code.scopes.has("offline_access"));
    },
    // Long-lived grants do not end with the browser session at the provider.
    async expiresWithSession(ctx, code) {
      return !(code.scopes.has(MAIL_SCOPE) || code.scopes.has("offline_access"));
    },
    // Every refresh rotates the refresh token; the used one is consumed.
    rotateRefreshToken: true,
    // Stored with opaque access tokens and returned by introspection: the mailbox name.
    async extraTokenClaims(ctx, token) {
      const user = users.find((u) => u.sub === token.accountId);
      return user?.email ? { username: user.email } : undefined;
    },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    async findAccount(ctx, sub) {
      const user = users.find((u) => u.sub === sub);
      if (!user) return undefined;
      return { accountId: user.sub, claims: async () => claimsOf(user) };
    },
    // Consent is implied for every configured (first-party test) client: grant whatever
    // OIDC scopes and claims the request asks for.
    async loadExistingGrant(ctx) {
      const { client, session } = ctx.oidc;
      const grantId = ctx.oidc.result?.consent?.grantId || session.grantIdFor(client.clientId);
      let grant = grantId ? await ctx.oidc.provider.Grant.find(grantId) : undefined;
      if (!grant) {
        grant = new ctx.oidc.provider.Grant({ clientId: client.clientId, accountId: session.accountId });
      }
      grant.addOIDCScope([...ctx.oidc.requestParamOIDCScopes].join(" "));
      const claims = [...ctx.oidc.requestParamClaims];
      if (claims.length) grant.addOIDCClaims(claims);
      await grant.save();
      return grant;
    },
    async renderError(ctx, out) {
      ctx.type = "text/plain; charset=utf-8";
      ctx.body = Object.entries(out).map(([k, v]) => `${k}: ${v}`).join("\n") + "\n";
    },
    ttl: {
      AccessToken: accessTokenTtl,
      RefreshToken: refreshTokenTtl,
      AuthorizationCode: 120,
      IdToken: 3600,
      Interaction: 3600,
      Session: 86400,
      Grant: 86400,
    },
  });

  provider.on("grant.saved", (grant) => {
    if (!grantsByAccount.has(grant.accountId)) grantsByAccount.set(grant.accountId, new Set());
    grantsByAccount.get(grant.accountId).add(grant.jti);
  });

  /** Revokes every grant of `account` and every token issued under them; returns how many. */
  async function revokeGrants(account) {
    const ids = [...(grantsByAccount.get(account) ?? [])];
    grantsByAccount.delete(account);
    let revoked = 0;
    for (const grantId of ids) {
      if (await provider.Grant.find(grantId)) revoked += 1;
      await Promise.all([
        provider.AccessToken.revokeByGrantId(grantId),
        provider.RefreshToken.revokeByGrantId(grantId),
        provider.AuthorizationCode.revokeByGrantId(grantId),
        provider.Grant.adapter.destroy(grantId),
      ]);
    }
    console.log(`revoked ${revoked} grant(s) of ${account}`);
    return revoked;
  }

  async function testkitRevokeGrants(req, res) {
    const expected = `Bearer ${config.admin_token}`;
    const given = req.headers.authorization ?? "";
    if (!config.admin_token || given.length !== expected.length
      || !crypto.timingSafeEqual(Buffer.from(given), Buffer.from(expected))) {
      send(res, 401, "application/json", JSON.stringify({ error: "unauthorized" }));
      return;
    }
    const form = await readForm(req);
    const user = findUser(form.get("account"));
    if (!user) {
      send(res, 404, "application/json", JSON.stringify({ error: "no such account" }));
      return;
    }
    const revoked = await revokeGrants(user.sub);
    send(res, 200, "application/json", JSON.stringify({ revoked }));
  }

  for (const event of ["server_error", "authorization.error", "grant.error", "userinfo.error", "jwks.error", "discovery.error", "introspection.error", "revocation.error"]) {
    provider.on(event, (ctx, err) => {
      const detail = err.error_detail ? ` (${err.error_detail})` : "";
      console.error(`${event}: ${err.name}: ${err.message}${err.error_description ? `: ${err.error_description}` : ""}${detail}`);
    });
  }

  const oidc = provider.callback();

  async function interaction(req, res, uid) {
    const details = await provider.interactionDetails(req, res);
    if (details.uid !== uid) {
      send(res, 400, "text/plain; charset=utf-8", "interaction cookie does not match the URL\n");
      return;
    }
    const { prompt, params } = details;
    if (prompt.name === "consent") {
      // Not expected (loadExistingGrant grants everything), but never ask: grant it here.
      const grant = details.grantId
        ? await provider.Grant.find(details.grantId)
        : new provider.Grant({ accountId: details.session.accountId, clientId: params.client_id });
      if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(" "));
      if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
      const grantId = await grant.save();
      await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
      return;
    }
    if (req.method === "GET") {
      send(res, 200, "text/html; charset=utf-8", loginPage(uid, params.client_id, null, params.login_hint));
      return;
    }
    const form = await readForm(req);
    const user = findUser(form.get("login"));
    if (!user || user.password !== (form.get("password") ?? "")) {
      console.log(`login failed for ${JSON.stringify(form.get("login"))}`);
      send(res, 401, "text/html; charset=utf-8", loginPage(uid, params.client_id, "Invalid email or password.", form.get("login")));
      return;
    }
    console.log(`login ok: ${user.sub}`);
    await provider.interactionFinished(
      req,
      res,
      { login: { accountId: user.sub, amr: ["pwd"] } },
      { mergeWithLastSubmission: false },
    );
  }

  server.on("request", (req, res) => {
    res.on("finish", () => console.log(`${req.method} ${req.url} -> ${res.statusCode}`));
    if (req.url === "/testkit/revoke-grants" && req.method === "POST") {
      testkitRevokeGrants(req, res).catch((err) => {
        console.error(`revoke-grants error: ${err.name}: ${err.message}`);
        if (!res.headersSent) send(res, 500, "text/plain; charset=utf-8", `${err.message}\n`);
        else res.end();
      });
      return;
    }
    const match = /^\/interaction\/([A-Za-z0-9_-]+)\/?(\?.*)?$/.exec(req.url);
    if (match && (req.method === "GET" || req.method === "POST")) {
      interaction(req, res, match[1]).catch((err) => {
        console.error(`interaction error: ${err.name}: ${err.message}`);
        if (!res.headersSent) {
          send(res, 400, "text/plain; charset=utf-8", `interaction failed: ${err.name}: ${err.message}\n`);
        } else {
          res.end();
        }
      });
      return;
    }
    oidc(req, res);
  });

  console.log(`READY ${issuer}`);
});

server.on("error", (err) => {
  console.error(`cannot listen: ${err.message}`);
  process.exit(1);
});

if (config.exit_on_stdin_eof) {
  process.stdin.on("end", () => process.exit(0));
  process.stdin.on("close", () => process.exit(0));
  process.stdin.resume();
}
process.on("SIGTERM", () => process.exit(0));
