use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use postdesk_testkit::oidc::{OidcClient, OidcConfig};
use postdesk_testkit::{OidcProvider, init};
use reqwest::Url;
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Never fetched: `sign_in` stops at the redirect to it.
const REDIRECT: &str = "http://127.0.0.1:9/auth/oidc/callback";

/// How the relying party authenticates at the token endpoint.
#[derive(Clone, Copy, Debug)]
enum ClientAuth {
    /// `client_secret_basic`
    Basic,
    /// `client_secret_post`
    Post,
}

fn random() -> String {
    Uuid::new_v4().simple().to_string()
}

/// One authorization request, built by hand as a relying party would.
struct Request {
    url: String,
    state: String,
    nonce: String,
    verifier: String,
}

async fn discovery(provider: &OidcProvider) -> Value {
    let response = reqwest::get(provider.discovery_url()).await.unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn authorization_request(discovery: &Value, client_id: &str, pkce: bool) -> Request {
    let verifier = format!("{}{}", random(), random());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let (state, nonce) = (random(), random());
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("scope", "openid email profile"),
        ("state", &state),
        ("nonce", &nonce),
    ];
    if pkce {
        params.push(("code_challenge", &challenge));
        params.push(("code_challenge_method", "S256"));
    }
    let endpoint = discovery["authorization_endpoint"].as_str().unwrap();
    let url = Url::parse_with_params(endpoint, &params)
        .unwrap()
        .to_string();
    Request {
        url,
        state,
        nonce,
        verifier,
    }
}

fn query(url: &str) -> Vec<(String, String)> {
    Url::parse(url)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// POSTs the code to the token endpoint, authenticating as `client` with `auth`.
async fn exchange(
    discovery: &Value,
    client: &OidcClient,
    auth: ClientAuth,
    code: &str,
    verifier: &str,
) -> reqwest::Response {
    let endpoint = discovery["token_endpoint"].as_str().unwrap();
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier),
    ];
    let request = reqwest::Client::new().post(endpoint);
    let request = match auth {
        ClientAuth::Basic => request.basic_auth(&client.client_id, Some(&client.client_secret)),
        ClientAuth::Post => {
            form.push(("client_id", &client.client_id));
            form.push(("client_secret", &client.client_secret));
            request
        }
    };
    request.form(&form).send().await.unwrap()
}

/// The payload (middle part) of a compact JWT, without checking the signature.
fn jwt_payload(jwt: &str) -> Value {
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3, "a compact JWS: {jwt}");
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    assert_eq!(header["alg"], "RS256");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap()
}

/// Signs `login` in with PKCE, checks the redirect, exchanges the code as `client` with
/// `auth`, checks the ID token's standard claims and that the code is single use; returns
/// (ID token payload, userinfo response fetched with the access token).
async fn sign_in_and_exchange(
    provider: &OidcProvider,
    discovery: &Value,
    client: &OidcClient,
    auth: ClientAuth,
    login: &str,
) -> (Value, Value) {
    let password = provider.user(login).unwrap().password.clone();
    let request = authorization_request(discovery, &client.client_id, true);
    let back = provider
        .sign_in(&request.url, login, &password)
        .await
        .unwrap_or_else(|e| panic!("{e:#}\n--- provider log ---\n{}", provider.log()));
    assert!(back.starts_with(&format!("{REDIRECT}?")), "{back}");
    let pairs = query(&back);
    assert_eq!(param(&pairs, "state"), Some(request.state.as_str()));
    assert_eq!(param(&pairs, "iss"), Some(provider.issuer().as_str()));
    assert_eq!(param(&pairs, "error"), None, "{back}");
    let code = param(&pairs, "code").expect("a code in the redirect");
    assert!(code.len() >= 20, "{code}");

    let response = exchange(discovery, client, auth, code, &request.verifier).await;
    let status = response.status();
    let tokens: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{tokens}\n{}", provider.log());
    assert_eq!(tokens["token_type"], "Bearer");
    assert!(
        tokens["access_token"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );
    let id_token = jwt_payload(tokens["id_token"].as_str().expect("an id_token"));
    assert_eq!(id_token["nonce"], request.nonce.as_str());
    assert_eq!(id_token["iss"], provider.issuer().as_str());
    assert_eq!(id_token["aud"], client.client_id.as_str());
    assert!(id_token["exp"].as_i64().unwrap() > id_token["iat"].as_i64().unwrap());

    let access_token = tokens["access_token"].as_str().unwrap();
    let userinfo = fetch_userinfo(discovery, access_token).await;
    assert_eq!(
        userinfo.status(),
        200,
        "{:?}\n{}",
        userinfo.headers().get("www-authenticate"),
        provider.log()
    );
    let userinfo: Value = userinfo.json().await.unwrap();

    // The code is single use, and replaying it revokes what it was exchanged for.
    let again = exchange(discovery, client, auth, code, &request.verifier).await;
    assert_eq!(again.status(), 400);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["error"], "invalid_grant", "{again}");
    let revoked = fetch_userinfo(discovery, access_token).await;
    assert_eq!(revoked.status(), 401);
    (id_token, userinfo)
}

async fn fetch_userinfo(discovery: &Value, access_token: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(discovery["userinfo_endpoint"].as_str().unwrap())
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn oidc_code_flow_with_pkce_gives_an_id_token_with_email_and_role() {
    init();
    let provider = OidcProvider::start(OidcConfig::default_for(REDIRECT))
        .await
        .expect("oidc provider starts");
    let issuer = provider.issuer();
    assert!(
        issuer.starts_with("http://127.0.0.1:") && !issuer.ends_with('/'),
        "{issuer}"
    );
    assert_eq!(issuer, format!("http://127.0.0.1:{}", provider.port()));
    assert_eq!(provider.client_id(), "postdesk-test");
    assert!(provider.client_secret().len() >= 32);
    assert_eq!(provider.redirect_uri(), REDIRECT);

    let discovery = discovery(&provider).await;
    assert_eq!(discovery["issuer"], issuer.as_str());
    assert_eq!(
        discovery["token_endpoint"],
        format!("{issuer}/token").as_str()
    );
    assert_eq!(
        discovery["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(
        discovery["response_types_supported"],
        serde_json::json!(["code"])
    );
    for claim in ["email", "email_verified", "name", "postdesk_role"] {
        assert!(
            discovery["claims_supported"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c == claim),
            "{claim} in {}",
            discovery["claims_supported"]
        );
    }

    let client = provider.config().clients[0].clone();
    let (ana, userinfo) = sign_in_and_exchange(
        &provider,
        &discovery,
        &client,
        ClientAuth::Basic,
        "ana@example.test",
    )
    .await;
    assert_eq!(ana["sub"], "ana");
    assert_eq!(ana["email"], "ana@example.test");
    assert_eq!(ana["email_verified"], true);
    assert_eq!(ana["name"], "Ana Agent");
    assert_eq!(ana["postdesk_role"], "agent");
    assert_eq!(ana["groups"], serde_json::json!(["support"]));
    // Userinfo returns the same claims.
    assert_eq!(userinfo["sub"], "ana");
    assert_eq!(userinfo["email"], "ana@example.test");
    assert_eq!(userinfo["email_verified"], true);
    assert_eq!(userinfo["postdesk_role"], "agent");

    // Another browser, another user (login by email in another case): another role.
    let (root, _) = sign_in_and_exchange(
        &provider,
        &discovery,
        &client,
        ClientAuth::Basic,
        "ROOT@example.test",
    )
    .await;
    assert_eq!(root["sub"], "root");
    assert_eq!(root["email"], "root@example.test");
    assert_eq!(root["postdesk_role"], "admin");
    assert_eq!(root["groups"], serde_json::json!(["support", "admins"]));
}

#[tokio::test]
async fn oidc_client_secret_post_and_an_unverified_email() {
    init();
    let mut config = OidcConfig::default_for(REDIRECT);
    config.clients.push(OidcClient {
        client_id: "postdesk-second".to_string(),
        client_secret: "second-secret".to_string(),
        redirect_uris: vec![REDIRECT.to_string()],
    });
    let provider = OidcProvider::start(config).await.expect("provider starts");
    let discovery = discovery(&provider).await;
    let methods = &discovery["token_endpoint_auth_methods_supported"];
    for method in ["client_secret_basic", "client_secret_post"] {
        assert!(
            methods.as_array().unwrap().iter().any(|m| m == method),
            "{methods}"
        );
    }
    let second = provider.config().clients[1].clone();
    let (id_token, userinfo) = sign_in_and_exchange(
        &provider,
        &discovery,
        &second,
        ClientAuth::Post,
        "unverified@example.test",
    )
    .await;
    assert_eq!(id_token["sub"], "unverified");
    assert_eq!(id_token["email"], "unverified@example.test");
    assert_eq!(id_token["email_verified"], false);
    assert_eq!(id_token["aud"], "postdesk-second");
    assert_eq!(userinfo["email_verified"], false);

    // A code is bound to its client: the other client cannot redeem it, nor can a wrong
    // secret.
    let request = authorization_request(&discovery, "postdesk-second", true);
    let back = provider
        .sign_in(&request.url, "ana", "ana-password")
        .await
        .unwrap();
    let pairs = query(&back);
    let code = param(&pairs, "code").unwrap();
    let first = provider.config().clients[0].clone();
    let refused = exchange(
        &discovery,
        &first,
        ClientAuth::Basic,
        code,
        &request.verifier,
    )
    .await;
    assert_eq!(refused.status(), 400);
    let refused: Value = refused.json().await.unwrap();
    assert_eq!(refused["error"], "invalid_grant", "{refused}");
    let wrong_secret = OidcClient {
        client_secret: "not-the-secret".to_string(),
        ..second.clone()
    };
    let refused = exchange(
        &discovery,
        &wrong_secret,
        ClientAuth::Post,
        code,
        &request.verifier,
    )
    .await;
    assert_eq!(refused.status(), 401);
    let refused: Value = refused.json().await.unwrap();
    assert_eq!(refused["error"], "invalid_client", "{refused}");
}

#[tokio::test]
async fn oidc_wrong_password_or_missing_pkce_yields_no_code() {
    init();
    let provider = OidcProvider::start(OidcConfig::default_for(REDIRECT))
        .await
        .expect("provider starts");
    let discovery = discovery(&provider).await;

    let request = authorization_request(&discovery, provider.client_id(), true);
    let err = provider
        .sign_in(&request.url, "ana@example.test", "not-the-password")
        .await
        .expect_err("a wrong password must not sign in");
    let message = format!("{err:#}");
    assert!(message.contains("rejected the login"), "{message}");
    assert!(message.contains("Invalid email or password"), "{message}");
    assert!(!message.contains("code="), "{message}");

    let err = provider
        .sign_in(&request.url, "nobody@example.test", "ana-password")
        .await
        .expect_err("an unknown user must not sign in");
    assert!(format!("{err:#}").contains("rejected the login"), "{err:#}");

    // The same request with the right password works, so the failures above were the
    // password's and the user's.
    let back = provider
        .sign_in(&request.url, "ana@example.test", "ana-password")
        .await
        .unwrap();
    assert!(param(&query(&back), "code").is_some(), "{back}");

    // Without PKCE the provider redirects back with an error and no code.
    let plain = authorization_request(&discovery, provider.client_id(), false);
    let back = provider
        .sign_in(&plain.url, "ana@example.test", "ana-password")
        .await
        .unwrap();
    let pairs = query(&back);
    assert_eq!(param(&pairs, "error"), Some("invalid_request"), "{back}");
    assert_eq!(param(&pairs, "state"), Some(plain.state.as_str()));
    assert_eq!(param(&pairs, "code"), None);

    // A wrong verifier does not redeem a code.
    let request = authorization_request(&discovery, provider.client_id(), true);
    let back = provider
        .sign_in(&request.url, "ana", "ana-password")
        .await
        .unwrap();
    let pairs = query(&back);
    let code = param(&pairs, "code").unwrap();
    let client = provider.config().clients[0].clone();
    let wrong = format!("{}{}", random(), random());
    let refused = exchange(&discovery, &client, ClientAuth::Basic, code, &wrong).await;
    assert_eq!(refused.status(), 400);
    let refused: Value = refused.json().await.unwrap();
    assert_eq!(refused["error"], "invalid_grant", "{refused}");

    // An unregistered redirect URI gets an error page, not a redirect.
    let bad = request
        .url
        .replace("127.0.0.1%3A9", "evil.example%3A9")
        .replace("127.0.0.1:9", "evil.example:9");
    assert_ne!(bad, request.url);
    let err = provider
        .sign_in(&bad, "ana", "ana-password")
        .await
        .expect_err("an unregistered redirect_uri must fail");
    assert!(format!("{err:#}").contains("redirect_uri"), "{err:#}");
}
