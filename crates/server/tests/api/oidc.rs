//! Single sign-on with OpenID Connect, against the testkit's real provider (panva's
//! `oidc-provider`): the browser's way through both redirects, with its cookies.

use std::collections::BTreeMap;

use postdesk_testkit::OidcProvider;
use postdesk_testkit::oidc::OidcConfig;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::{StatusCode, Url};
use serde_json::{Value, json};

use crate::helpers::{Db, TestApp, spawn_app, spawn_app_with};

const CALLBACK: &str = "/api/v1/login/oidc/callback";

/// A postdesk with single sign-on against a provider that knows its redirect URI.
struct Sso {
    app: TestApp,
    provider: OidcProvider,
    /// Redirects are the subject here: never followed.
    http: reqwest::Client,
}

async fn spawn_sso(create_users: bool) -> Sso {
    postdesk_testkit::init();
    // Chosen before postdesk starts, so the provider can be told the redirect URI.
    let port = postdesk_testkit::free_port().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let provider = OidcProvider::start(OidcConfig::default_for(&format!("{base}{CALLBACK}")))
        .await
        .expect("the OIDC provider starts");
    let (issuer, id, secret) = (
        provider.issuer(),
        provider.client_id().to_owned(),
        provider.client_secret().to_owned(),
    );
    let app = spawn_app_with(Db::Sqlite, move |s| {
        s.listen = format!("127.0.0.1:{port}").parse().unwrap();
        s.public_url = Some(base);
        s.oidc_issuer = Some(issuer);
        s.oidc_client_id = Some(id);
        s.oidc_client_secret = Some(secret);
        s.oidc_create_users = create_users;
    })
    .await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    Sso {
        app,
        provider,
        http,
    }
}

/// The cookies a browser would keep from one answer (a deleted one maps to "").
fn cookies_of(response: &reqwest::Response) -> BTreeMap<String, String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| {
            let (name, value) = v.split(';').next()?.split_once('=')?;
            let deleted = v.contains("Max-Age=0");
            let value = if deleted { "" } else { value.trim() };
            Some((name.trim().to_owned(), value.to_owned()))
        })
        .collect()
}

fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

fn param(url: &str, name: &str) -> Option<String> {
    Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// What postdesk answered at the end of a sign-in.
struct Landing {
    status: StatusCode,
    location: String,
    cookies: BTreeMap<String, String>,
}

impl Landing {
    fn session(&self) -> Option<&str> {
        self.cookies
            .get("postdesk_session")
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// Asserts single sign-on refused with `reason` and started no session.
    fn assert_refused(&self, reason: &str) {
        assert_eq!(self.status, StatusCode::SEE_OTHER, "{}", self.location);
        assert!(
            self.location
                .starts_with(&format!("/login?error=sso&reason={reason}")),
            "expected reason {reason}: {}",
            self.location
        );
        assert_eq!(self.session(), None, "no session cookie");
    }
}

impl Sso {
    /// `GET /api/v1/login/oidc`: the provider's authorize URL and the `postdesk_oidc` cookie.
    async fn begin(&self) -> (String, String) {
        let response = self
            .http
            .get(self.app.url("/api/v1/login/oidc"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let set_cookie: Vec<String> = response
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        let oidc_cookie = set_cookie
            .iter()
            .find(|c| c.starts_with("postdesk_oidc="))
            .unwrap_or_else(|| panic!("a postdesk_oidc cookie: {set_cookie:?}"));
        assert!(
            oidc_cookie.contains("HttpOnly") && oidc_cookie.contains("SameSite=Lax"),
            "{oidc_cookie}"
        );
        let value = cookies_of(&response)["postdesk_oidc"].clone();
        (location(&response), value)
    }

    /// GETs the callback URL as the browser would, with `cookie` (`postdesk_oidc`) if any.
    async fn land(&self, callback_url: &str, cookie: Option<&str>) -> Landing {
        let mut request = self.http.get(callback_url);
        if let Some(value) = cookie {
            request = request.header(COOKIE, format!("postdesk_oidc={value}"));
        }
        let response = request.send().await.unwrap();
        Landing {
            status: response.status(),
            location: location(&response),
            cookies: cookies_of(&response),
        }
    }

    /// The whole way for `login` at the provider.
    async fn sign_in(&self, login: &str) -> Landing {
        let (authorize, cookie) = self.begin().await;
        let password = format!("{}-password", login.split('@').next().unwrap());
        let back = self
            .provider
            .sign_in(&authorize, login, &password)
            .await
            .expect("the provider signs the user in");
        self.land(&back, Some(&cookie)).await
    }

    /// `GET /api/v1/me` with the session cookie.
    async fn me(&self, session: &str) -> Value {
        let response = self
            .http
            .get(self.app.url("/api/v1/me"))
            .header(COOKIE, format!("postdesk_session={session}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    /// The login page a refusal leads to.
    async fn login_page(&self, location: &str) -> String {
        let response = self.http.get(self.app.url(location)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.text().await.unwrap()
    }

    async fn users_with_email(&self, email: &str) -> Vec<Value> {
        let (status, body) = self.app.get(&self.app.admin, "/api/v1/users").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["users"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|u| {
                u["email"]
                    .as_str()
                    .is_some_and(|e| e.eq_ignore_ascii_case(email))
            })
            .cloned()
            .collect()
    }

    async fn audit(&self, action: &str) -> Vec<Value> {
        let (status, body) = self
            .app
            .get(&self.app.admin, &format!("/api/v1/audit?action={action}"))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["entries"].as_array().unwrap().clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_signs_in_with_single_sign_on_and_is_the_same_user_next_time() {
    let sso = spawn_sso(true).await;
    let page = sso.login_page("/login").await;
    assert!(
        page.contains("href=\"/api/v1/login/oidc\""),
        "the login page offers it"
    );

    // The request postdesk sends the browser with: code flow, PKCE S256, state and nonce.
    let (authorize, cookie) = sso.begin().await;
    assert!(
        authorize.starts_with(&format!("{}/", sso.provider.issuer())),
        "{authorize}"
    );
    assert_eq!(param(&authorize, "response_type").as_deref(), Some("code"));
    assert_eq!(
        param(&authorize, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert_eq!(
        param(&authorize, "scope").as_deref(),
        Some("openid email profile")
    );
    assert_eq!(param(&authorize, "state").as_deref(), Some(cookie.as_str()));
    assert!(param(&authorize, "nonce").is_some_and(|n| n.len() >= 16));
    assert_eq!(
        param(&authorize, "redirect_uri"),
        Some(sso.app.url(CALLBACK))
    );

    let back = sso
        .provider
        .sign_in(&authorize, "ana@example.test", "ana-password")
        .await
        .unwrap();
    assert!(back.starts_with(&sso.app.url(CALLBACK)), "{back}");
    let landing = sso.land(&back, Some(&cookie)).await;
    assert_eq!(landing.status, StatusCode::SEE_OTHER);
    assert_eq!(landing.location, "/");
    assert_eq!(
        landing.cookies.get("postdesk_oidc").map(String::as_str),
        Some("")
    );
    let session = landing.session().expect("a session cookie").to_owned();
    let me = sso.me(&session).await;
    assert_eq!(me["email"], "ana@example.test");
    assert_eq!(me["username"], "ana");
    assert_eq!(me["name"], "Ana Agent");
    assert_eq!(me["roles"], json!(["agent"]));

    // The same answer again: the state was used up.
    sso.land(&back, Some(&cookie)).await.assert_refused("state");

    // The next sign-in finds the same user.
    let again = sso.sign_in("ana@example.test").await;
    let session = again.session().expect("a second session").to_owned();
    assert_eq!(sso.me(&session).await["id"], me["id"]);
    assert_eq!(sso.users_with_email("ana@example.test").await.len(), 1);

    // Both are in the audit log, and so is the user's creation.
    let sign_ins: Vec<Value> = sso
        .audit("sign_in")
        .await
        .into_iter()
        .filter(|e| e["action"] == "sign_in" && e["actor"] == "ana")
        .collect();
    assert_eq!(sign_ins.len(), 2, "{sign_ins:?}");
    assert_eq!(sign_ins[0]["details"]["method"], "oidc");
    assert_eq!(sign_ins[0]["details"]["issuer"], sso.provider.issuer());
    let created = sso.audit("user.create").await;
    assert!(
        created
            .iter()
            .any(|e| e["actor"] == "postdesk" && e["details"]["username"] == "ana"),
        "{created:?}"
    );
    let (_, sessions) = sso.app.get(&session, "/api/v1/me/sessions").await;
    assert!(
        sessions["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["method"] == "oidc"),
        "{sessions}"
    );

    // A deactivated user is refused.
    let id = me["id"].as_i64().unwrap();
    let (status, body) = sso
        .app
        .patch(
            &sso.app.admin,
            &format!("/api/v1/users/{id}"),
            &json!({ "active": false }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let refused = sso.sign_in("ana@example.test").await;
    refused.assert_refused("deactivated");
    assert!(
        sso.login_page(&refused.location)
            .await
            .contains("deactivated")
    );
    assert_eq!(
        sso.users_with_email("ana@example.test").await.len(),
        1,
        "no second ana"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_role_claim_sets_the_roles_of_a_user_matched_by_email() {
    let sso = spawn_sso(true).await;
    // An account an admin made as an agent, its address in other case.
    let (status, local) = sso
        .app
        .post(
            &sso.app.admin,
            "/api/v1/users",
            &json!({ "username": "rooty", "email": "Root@Example.TEST",
                     "password": crate::helpers::AGENT_PASSWORD, "roles": ["agent"] }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{local}");
    let landing = sso.sign_in("root@example.test").await;
    let session = landing.session().expect("a session").to_owned();
    let me = sso.me(&session).await;
    assert_eq!(me["id"], local["id"], "matched, not created: {me}");
    assert_eq!(me["roles"], json!(["admin"]));
    // Now an admin for the admin routes too.
    let (status, _) = sso.app.get(&session, "/api/v1/audit").await;
    assert_eq!(status, StatusCode::OK);
    let changes = sso.audit("user.roles_change").await;
    assert!(
        changes
            .iter()
            .any(|e| e["details"]["to"] == json!(["admin"])
                && e["details"]["from"] == json!(["agent"])),
        "{changes:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unverified_email_a_stranger_a_forged_state_and_a_provider_error_are_refused() {
    let sso = spawn_sso(false).await;

    let unverified = sso.sign_in("unverified@example.test").await;
    unverified.assert_refused("unverified");
    let page = sso.login_page(&unverified.location).await;
    assert!(page.contains("not verified"), "{page}");
    assert!(
        sso.users_with_email("unverified@example.test")
            .await
            .is_empty()
    );

    // Users are not created here: ana has no account yet.
    sso.sign_in("ana@example.test")
        .await
        .assert_refused("unknown_user");
    assert!(sso.users_with_email("ana@example.test").await.is_empty());

    // The provider's answer with another state, or without the cookie, is not taken.
    let (authorize, cookie) = sso.begin().await;
    let back = sso
        .provider
        .sign_in(&authorize, "ana@example.test", "ana-password")
        .await
        .unwrap();
    let state = param(&back, "state").unwrap();
    let forged = back.replace(&format!("state={state}"), "state=forged");
    assert_ne!(forged, back);
    sso.land(&forged, Some(&cookie))
        .await
        .assert_refused("state");
    sso.land(&back, Some("another-browsers-state"))
        .await
        .assert_refused("state");
    sso.land(&back, None).await.assert_refused("state");

    // Once an admin made the account, the same (untouched) answer signs ana in.
    let (status, body) = sso
        .app
        .post(
            &sso.app.admin,
            "/api/v1/users",
            &json!({ "username": "ana-local", "email": "ana@example.test",
                     "password": crate::helpers::AGENT_PASSWORD, "roles": ["agent"] }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let landing = sso.land(&back, Some(&cookie)).await;
    let session = landing.session().expect("a session").to_owned();
    assert_eq!(sso.me(&session).await["username"], "ana-local");

    // A request the provider refuses (no PKCE): its words end on the login page.
    let (authorize, cookie) = sso.begin().await;
    let mut url = Url::parse(&authorize).unwrap();
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| !k.starts_with("code_challenge"))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    url.query_pairs_mut().clear().extend_pairs(kept);
    let back = sso
        .provider
        .sign_in(url.as_str(), "ana@example.test", "ana-password")
        .await
        .unwrap();
    let description = param(&back, "error_description").expect("the provider explains");
    let refused = sso.land(&back, Some(&cookie)).await;
    refused.assert_refused("provider");
    let page = sso.login_page(&refused.location).await;
    assert!(
        page.contains(&postdesk::web::escape(&description)),
        "{description:?} in {page}"
    );

    let failures = sso.audit("sign_in.failed").await;
    let reasons: Vec<&str> = failures
        .iter()
        .filter(|e| e["details"]["method"] == "oidc")
        .filter_map(|e| e["details"]["reason"].as_str())
        .collect();
    for reason in ["unverified", "unknown_user", "state", "provider"] {
        assert!(reasons.contains(&reason), "{reason} in {reasons:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_configuration_single_sign_on_answers_404() {
    let app = spawn_app(Db::Sqlite).await;
    for path in [
        "/api/v1/login/oidc",
        "/api/v1/login/oidc/callback?code=x&state=y",
    ] {
        let (status, body) = app.get("", path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("POSTDESK_OIDC_ISSUER"),
            "{body}"
        );
    }
    let (status, page) = app.get("", "/login").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        !page.as_str().unwrap().contains("/api/v1/login/oidc"),
        "no link"
    );
}
