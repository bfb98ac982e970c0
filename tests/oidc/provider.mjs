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
//     }]
//   }
//
// What it serves on http://127.0.0.1:PORT (the issuer, no path):
// - discovery at /.well-known/openid-configuration, keys at /jwks, /auth, /token, /me;
// - authorization code flow only, PKCE S256 required for every client; confidential
//   clients, client_secret_basic or client_secret_post at /token;
// - scopes openid, email (email, email_verified), profile (name); postdesk_role and groups
//   come with openid itself; all of them are in the ID token too (conformIdTokenClaims off);
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
    clients: config.clients.map((c) => ({
      client_id: c.client_id,
      client_secret: c.client_secret,
      redirect_uris: c.redirect_uris,
      // The library accepts client_secret_post as well for a client_secret_basic client.
      token_endpoint_auth_method: "client_secret_basic",
      grant_types: ["authorization_code"],
      response_types: ["code"],
    })),
    jwks: { keys: [signingKey] },
    cookies: { keys: [crypto.randomBytes(32).toString("base64url")] },
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
      AccessToken: 3600,
      AuthorizationCode: 120,
      IdToken: 3600,
      Interaction: 3600,
      Session: 86400,
      Grant: 86400,
    },
  });

  for (const event of ["server_error", "authorization.error", "grant.error", "userinfo.error", "jwks.error", "discovery.error"]) {
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
