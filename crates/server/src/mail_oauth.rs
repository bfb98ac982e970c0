//! Mailbox sign-in with OAuth2: the tokens IMAP (`AUTHENTICATE XOAUTH2`/`OAUTHBEARER`) and
//! SMTP (`AUTH XOAUTH2`) sign in with, for mailboxes at Google, Microsoft 365 or any OAuth2
//! server that refuse passwords.
//!
//! - **Providers** are OAuth2 clients an admin registers ([`ProviderKind`] fills in Google's
//!   and Microsoft's endpoints and scopes). Their secrets are encrypted at rest.
//! - **Connecting** an inbox is the authorization code flow with PKCE (S256): [`MailOAuth::begin`]
//!   builds the authorization URL and the web layer keeps the state (bound to the admin's
//!   session) and the verifier in the database, so that any node can finish it;
//!   [`MailOAuth::finish`] redeems the code and stores the tokens, encrypted.
//! - **Access tokens** are handed out by [`MailOAuth::access_token`]: refreshed ahead of their
//!   expiry ([`refresh_margin`]), and at once after the mail server refused one (the caller
//!   passes the refused token). One refresh at a time per inbox, on every node: the refresher
//!   holds a lease row in the database ([`REFRESH_LEASE`]); the others wait and read the result.
//!   A rotated refresh token is stored in the same statement as the new access token: the old
//!   one is already used up at the provider.
//! - A **refused refresh** (`invalid_grant`: revoked, expired, password changed) turns the inbox
//!   to `needs_reauth` with the provider's own words ([`TokenError::NeedsReauth`]); nothing is
//!   tried again until an admin connects the inbox again.

use std::borrow::Cow;
use std::time::Duration;

use anyhow::Context as _;
use oauth2::basic::{BasicClient, BasicErrorResponseType, BasicTokenResponse};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    EndpointSet, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError,
    Scope, StandardErrorResponse, TokenResponse as _, TokenUrl,
};
use postdesk_core::ids::InboxId;
use postdesk_store::{OAuthProvider, Store, now_ms};

use crate::secrets::Secrets;

/// How long one refresh may hold the lease; a node that dies while refreshing gives the
/// inbox back after this.
pub const REFRESH_LEASE: Duration = Duration::from_secs(30);

/// How long one request to a provider may take.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(15);

/// How often a caller waiting for another's refresh reads the tokens again.
const LEASE_POLL: Duration = Duration::from_millis(200);

/// Refresh this long before an access token expires (at most; see [`refresh_margin`]).
pub const REFRESH_AHEAD: Duration = Duration::from_secs(60);

/// The kinds of provider, with what postdesk knows of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// Google (Gmail, Google Workspace).
    Google,
    /// Microsoft Entra ID (Microsoft 365, Outlook.com).
    Microsoft,
    /// Any other OAuth2 server: endpoints and scopes given by the admin.
    Generic,
}

impl ProviderKind {
    /// Parses `google`, `microsoft` or `generic`.
    ///
    /// # Errors
    /// Any other word, with the accepted ones.
    pub fn parse(kind: &str) -> anyhow::Result<Self> {
        match kind {
            "google" => Ok(Self::Google),
            "microsoft" => Ok(Self::Microsoft),
            "generic" => Ok(Self::Generic),
            other => anyhow::bail!(
                "Unknown provider kind {other:?}: use \"google\", \"microsoft\" or \"generic\""
            ),
        }
    }

    /// The stable text form.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Google => "google",
            Self::Microsoft => "microsoft",
            Self::Generic => "generic",
        }
    }

    /// The authorization and token endpoints, when the kind has well-known ones
    /// (`tenant` is Microsoft's directory: `common`, `organizations`, a domain or an id).
    #[must_use]
    pub fn endpoints(self, tenant: &str) -> Option<(String, String)> {
        match self {
            Self::Google => Some((
                "https://accounts.google.com/o/oauth2/v2/auth".into(),
                "https://oauth2.googleapis.com/token".into(),
            )),
            Self::Microsoft => Some((
                format!("https://login.microsoftonline.com/{tenant}/oauth2/v2.0/authorize"),
                format!("https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"),
            )),
            Self::Generic => None,
        }
    }

    /// The scopes that give IMAP and SMTP access and a refresh token.
    #[must_use]
    pub fn default_scopes(self) -> Vec<String> {
        match self {
            Self::Google => vec!["https://mail.google.com/".into()],
            Self::Microsoft => vec![
                "https://outlook.office.com/IMAP.AccessAsUser.All".into(),
                "https://outlook.office.com/SMTP.Send".into(),
                "offline_access".into(),
            ],
            Self::Generic => Vec::new(),
        }
    }

    /// Words for the button: "Connect with Google".
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Google => "Google",
            Self::Microsoft => "Microsoft",
            Self::Generic => "",
        }
    }
}

/// Why no access token could be had.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The inbox was never connected (or its provider changed since).
    #[error("{0}")]
    NotConnected(String),
    /// The provider refused to renew the sign-in: an admin must connect the inbox again.
    /// Holds the provider's words.
    #[error(
        "The OAuth2 provider refused to renew the mailbox's sign-in, so the inbox must be connected again (Reconnect): {0}"
    )]
    NeedsReauth(String),
    /// The provider or the database could not be reached: worth trying again later.
    #[error(transparent)]
    Unavailable(#[from] anyhow::Error),
}

/// The client, with both endpoints set.
type ProviderClient =
    BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// What an authorization request needs to be finished.
#[derive(Debug)]
pub struct Begun {
    /// Where to send the admin's browser.
    pub authorize_url: String,
    /// The random state (the key of the connection under way).
    pub state: String,
    /// The PKCE verifier.
    pub verifier: String,
}

/// Tokens and providers of every inbox; see the [module docs](self). Cheap to clone.
#[derive(Debug, Clone)]
pub struct MailOAuth {
    store: Store,
    secrets: Secrets,
    http: reqwest::Client,
    /// Tells this node's readers that an inbox's sign-in was refused (by whichever of the
    /// reader, the outbox or the Sent-folder copier asked), so that a session still signed in
    /// with the old access token ends at once instead of reading on.
    refused: tokio::sync::broadcast::Sender<(InboxId, String)>,
}

/// How long before `expires_at` to refresh a token issued at `issued_at` (ms): a minute, but
/// never more than a quarter of its life, so that a token living a few seconds is still used.
#[must_use]
pub fn refresh_margin(issued_at: i64, expires_at: i64) -> i64 {
    let life = (expires_at - issued_at).max(0);
    i64::try_from(REFRESH_AHEAD.as_millis())
        .unwrap_or(i64::MAX)
        .min(life / 4)
}

/// The provider's refusal in its own words: `error_description (error)`, or the error code.
fn provider_words(e: &StandardErrorResponse<BasicErrorResponseType>) -> String {
    let code = e.error().as_ref().to_owned();
    let words = provider_text(e.error_description().map(String::as_str), 300);
    if words.trim().is_empty() {
        code
    } else {
        format!("{} ({code})", words.trim())
    }
}

/// Text from a provider for a person to read: at most `max` characters, without control
/// characters.
#[must_use]
pub fn provider_text(text: Option<&str>, max: usize) -> String {
    text.unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .take(max)
        .collect()
}

/// A token request's failure: the provider's refusal (its words), or anything else.
enum Refusal {
    Provider(String),
    Other(anyhow::Error),
}

fn refusal<RE: std::error::Error + Send + Sync + 'static>(
    e: RequestTokenError<RE, StandardErrorResponse<BasicErrorResponseType>>,
    what: &str,
) -> Refusal {
    match e {
        RequestTokenError::ServerResponse(answer) => Refusal::Provider(provider_words(&answer)),
        other => Refusal::Other(anyhow::Error::new(other).context(what.to_owned())),
    }
}

impl MailOAuth {
    /// Tokens kept in `store`, encrypted with `secrets`.
    ///
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(store: Store, secrets: Secrets) -> anyhow::Result<Self> {
        let http = provider_http(PROVIDER_TIMEOUT)
            .context("Failed to set up the HTTP client for mailbox OAuth2")?;
        Ok(Self {
            store,
            secrets,
            http,
            refused: tokio::sync::broadcast::channel(64).0,
        })
    }

    /// Hears every inbox whose sign-in the provider refused on this node from now on, with the
    /// provider's words.
    #[must_use]
    pub fn refusals(&self) -> tokio::sync::broadcast::Receiver<(InboxId, String)> {
        self.refused.subscribe()
    }

    fn client(&self, provider: &OAuthProvider) -> anyhow::Result<ProviderClient> {
        let s = &provider.settings;
        let secret = self.secrets.decrypt_string(&s.client_secret_encrypted)?;
        crate::redact::register_credentials(&s.client_id, &secret);
        let client = BasicClient::new(ClientId::new(s.client_id.clone()))
            .set_client_secret(ClientSecret::new(secret))
            .set_auth_uri(
                AuthUrl::new(s.auth_url.clone())
                    .with_context(|| format!("{:?} is not a URL", s.auth_url))?,
            )
            .set_token_uri(
                TokenUrl::new(s.token_url.clone())
                    .with_context(|| format!("{:?} is not a URL", s.token_url))?,
            );
        // Google and Microsoft take the secret in the form; RFC 6749 makes HTTP Basic the
        // one every server must take.
        Ok(match ProviderKind::parse(&s.kind)? {
            ProviderKind::Generic => client,
            _ => client.set_auth_type(AuthType::RequestBody),
        })
    }

    /// The authorization URL for connecting an inbox (code flow, PKCE S256, a new random
    /// state), and what finishing it needs.
    ///
    /// # Errors
    /// A provider whose settings are not usable, or a redirect URI that is not a URL.
    pub fn begin(
        &self,
        provider: &OAuthProvider,
        redirect_uri: &str,
        mailbox: &str,
    ) -> anyhow::Result<Begun> {
        let client = self.client(provider)?;
        let redirect = RedirectUrl::new(redirect_uri.to_owned()).with_context(|| {
            format!("The redirect URI {redirect_uri:?} is not a URL (check POSTDESK_PUBLIC_URL)")
        })?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(CsrfToken::new_random)
            .set_pkce_challenge(challenge)
            .set_redirect_uri(Cow::Owned(redirect))
            .add_scopes(provider.settings.scopes.iter().cloned().map(Scope::new));
        match ProviderKind::parse(&provider.settings.kind)? {
            // Without these Google answers no refresh token (or only at the first consent).
            ProviderKind::Google => {
                request = request
                    .add_extra_param("access_type", "offline")
                    .add_extra_param("prompt", "consent")
                    .add_extra_param("login_hint", mailbox);
            }
            ProviderKind::Microsoft => request = request.add_extra_param("login_hint", mailbox),
            ProviderKind::Generic => {}
        }
        let (url, state) = request.url();
        Ok(Begun {
            authorize_url: url.to_string(),
            state: state.secret().clone(),
            verifier: verifier.secret().clone(),
        })
    }

    /// Redeems an authorization code and stores the inbox's tokens (encrypted), replacing
    /// what it had and clearing `needs_reauth`.
    ///
    /// # Errors
    /// The provider's words when it refused; otherwise the cause.
    pub async fn finish(
        &self,
        inbox: InboxId,
        provider: &OAuthProvider,
        code: String,
        verifier: String,
        redirect_uri: &str,
    ) -> Result<(), String> {
        let client = self.client(provider).map_err(|e| format!("{e:#}"))?;
        let redirect = RedirectUrl::new(redirect_uri.to_owned()).map_err(|e| e.to_string())?;
        let answer: BasicTokenResponse = client
            .exchange_code(AuthorizationCode::new(code))
            .set_pkce_verifier(PkceCodeVerifier::new(verifier))
            .set_redirect_uri(Cow::Owned(redirect))
            .request_async(&self.http)
            .await
            .map_err(|e| match refusal(e, "The code exchange failed") {
                Refusal::Provider(words) => words,
                Refusal::Other(e) => format!("{e:#}"),
            })?;
        let access = answer.access_token().secret();
        let Some(refresh) = answer.refresh_token() else {
            return Err(
                "The provider gave no refresh token, so postdesk could not stay signed in: check the provider's scopes (Google: https://mail.google.com/ with offline access; Microsoft: offline_access)".into(),
            );
        };
        crate::redact::register_credentials("", access);
        crate::redact::register_credentials("", refresh.secret());
        let expires_at = answer.expires_in().map(|d| now_ms() + millis(d));
        self.store
            .connect_oauth(
                inbox,
                provider.id,
                Some(&self.secrets.encrypt(refresh.secret().as_bytes())),
                &self.secrets.encrypt(access.as_bytes()),
                expires_at,
            )
            .await
            .map_err(|e| format!("{e:#}"))
    }

    /// A usable access token for `inbox`: the stored one while it is not about to expire and
    /// is not `refused` (the token the mail server just refused), else a refreshed one. One
    /// refresh at a time per inbox across nodes; see the [module docs](self).
    ///
    /// # Errors
    /// [`TokenError`]: not connected, needs reauthorization, or unavailable for now.
    pub async fn access_token(
        &self,
        inbox: InboxId,
        refused: Option<&str>,
    ) -> Result<String, TokenError> {
        let deadline = tokio::time::Instant::now() + REFRESH_LEASE + PROVIDER_TIMEOUT;
        loop {
            if let Some(token) = self.usable(inbox, refused).await? {
                return Ok(token);
            }
            let until = now_ms() + millis(REFRESH_LEASE);
            if self
                .store
                .lease_oauth_refresh(inbox, until)
                .await
                .map_err(anyhow::Error::from)?
            {
                // Read again under the lease: another caller may have refreshed between our
                // read and our lease, and its refresh token is the one to use now (the one
                // read before is used up: presenting it again makes the provider revoke the
                // whole grant).
                if let Some(token) = self.usable(inbox, refused).await? {
                    self.store
                        .release_oauth_lease(inbox)
                        .await
                        .map_err(anyhow::Error::from)?;
                    return Ok(token);
                }
                let tokens = self.tokens(inbox).await?;
                return self
                    .refresh(inbox, tokens.provider_id, tokens.refresh_token_encrypted)
                    .await;
            }
            // Another task or node is refreshing: read its result in a moment.
            if tokio::time::Instant::now() >= deadline {
                return Err(TokenError::Unavailable(anyhow::anyhow!(
                    "Another refresh of the inbox's OAuth2 token did not finish in time"
                )));
            }
            tokio::time::sleep(LEASE_POLL).await;
        }
    }

    /// The inbox's stored tokens; [`TokenError`] when it has none or needs reauthorization.
    async fn tokens(&self, inbox: InboxId) -> Result<postdesk_store::OAuthTokens, TokenError> {
        let tokens = self
            .store
            .find_oauth_tokens(inbox)
            .await
            .map_err(anyhow::Error::from)?
            .ok_or_else(|| {
                TokenError::NotConnected(
                    "The inbox is not connected to its OAuth2 provider yet: use Connect (POST /api/v1/inboxes/{id}/oauth/start)".into(),
                )
            })?;
        match tokens.reauth_error {
            Some(words) => Err(TokenError::NeedsReauth(words)),
            None => Ok(tokens),
        }
    }

    /// The stored access token when it is not about to expire and is not `refused`.
    async fn usable(
        &self,
        inbox: InboxId,
        refused: Option<&str>,
    ) -> Result<Option<String>, TokenError> {
        let tokens = self.tokens(inbox).await?;
        let current = tokens
            .access_token_encrypted
            .as_deref()
            .map(|t| self.secrets.decrypt_string(t))
            .transpose()?;
        let issued = tokens.refreshed_at.unwrap_or(tokens.connected_at);
        let fresh = tokens
            .access_expires_at
            .is_none_or(|at| now_ms() < at - refresh_margin(issued, at));
        Ok(current
            .filter(|token| fresh && refused != Some(token.as_str()))
            .inspect(|token| {
                crate::redact::register_credentials("", token);
            }))
    }

    /// Refreshes with the lease held, and gives the lease back whatever happens.
    async fn refresh(
        &self,
        inbox: InboxId,
        provider_id: i64,
        refresh_token: Option<Vec<u8>>,
    ) -> Result<String, TokenError> {
        let result = self.refresh_leased(inbox, provider_id, refresh_token).await;
        match &result {
            Ok(_) => {}
            Err(TokenError::NeedsReauth(words)) => {
                tracing::warn!(%inbox, "The OAuth2 provider refused to renew the mailbox's sign-in: {words}");
                self.store
                    .oauth_refresh_refused(inbox, words)
                    .await
                    .map_err(anyhow::Error::from)?;
                // Nobody listening (no reader running here) is fine.
                let _ = self.refused.send((inbox, words.clone()));
            }
            Err(e) => {
                tracing::warn!(%inbox, "Refreshing the mailbox's OAuth2 token failed: {e:#}");
                if let Err(e) = self.store.release_oauth_lease(inbox).await {
                    tracing::warn!(%inbox, "Failed to release the OAuth2 refresh lease: {e:#}");
                }
            }
        }
        result
    }

    async fn refresh_leased(
        &self,
        inbox: InboxId,
        provider_id: i64,
        refresh_token: Option<Vec<u8>>,
    ) -> Result<String, TokenError> {
        let Some(refresh_token) = refresh_token else {
            return Err(TokenError::NeedsReauth(
                "postdesk holds no refresh token for this inbox".into(),
            ));
        };
        let refresh_token = self.secrets.decrypt_string(&refresh_token)?;
        let provider = self
            .store
            .find_oauth_provider(provider_id)
            .await
            .map_err(anyhow::Error::from)?
            .ok_or_else(|| TokenError::NeedsReauth("the OAuth2 provider was deleted".into()))?;
        let client = self.client(&provider)?;
        let token = RefreshToken::new(refresh_token);
        let answer: BasicTokenResponse = client
            .exchange_refresh_token(&token)
            .request_async(&self.http)
            .await
            .map_err(|e| match refusal(e, "The token refresh failed") {
                Refusal::Provider(words) => TokenError::NeedsReauth(words),
                Refusal::Other(e) => TokenError::Unavailable(e),
            })?;
        let access = answer.access_token().secret().clone();
        crate::redact::register_credentials("", &access);
        let rotated = answer.refresh_token().map(|r| {
            crate::redact::register_credentials("", r.secret());
            self.secrets.encrypt(r.secret().as_bytes())
        });
        let expires_at = answer.expires_in().map(|d| now_ms() + millis(d));
        self.store
            .store_refreshed_oauth(
                inbox,
                &self.secrets.encrypt(access.as_bytes()),
                expires_at,
                rotated.as_deref(),
            )
            .await
            .map_err(anyhow::Error::from)?;
        tracing::info!(%inbox, rotated = rotated.is_some(), "Refreshed the mailbox's OAuth2 access token");
        Ok(access)
    }

    /// When the inbox's current access token should be renewed (ms), if it is known.
    ///
    /// # Errors
    /// When the database cannot be read.
    pub async fn renew_at(&self, inbox: InboxId) -> anyhow::Result<Option<i64>> {
        let tokens = self.store.find_oauth_tokens(inbox).await?;
        Ok(tokens.and_then(|t| {
            let at = t.access_expires_at?;
            Some(at - refresh_margin(t.refreshed_at.unwrap_or(t.connected_at), at))
        }))
    }
}

/// The HTTP client for talking to an OAuth2 or OpenID Connect provider: our reqwest (rustls
/// with ring), each request bounded by `timeout`, redirects never followed (a provider's
/// endpoints do not need them, and following could be turned against us: SSRF).
///
/// # Errors
/// When the client cannot be built.
pub fn provider_http(timeout: Duration) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("postdesk/", env!("CARGO_PKG_VERSION")))
        .build()
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_refreshed_a_minute_ahead_or_a_quarter_of_a_short_life() {
        assert_eq!(refresh_margin(0, 3_600_000), 60_000, "an hour's token");
        assert_eq!(refresh_margin(0, 5_000), 1_250, "a five seconds' token");
        assert_eq!(refresh_margin(10, 0), 0, "already expired");
    }

    #[test]
    fn kinds_fill_in_their_endpoints_and_scopes() {
        let (auth, token) = ProviderKind::Google.endpoints("common").unwrap();
        assert_eq!(auth, "https://accounts.google.com/o/oauth2/v2/auth");
        assert_eq!(token, "https://oauth2.googleapis.com/token");
        let (auth, _) = ProviderKind::Microsoft.endpoints("contoso.com").unwrap();
        assert_eq!(
            auth,
            "https://login.microsoftonline.com/contoso.com/oauth2/v2.0/authorize"
        );
        assert!(ProviderKind::Generic.endpoints("common").is_none());
        assert!(
            ProviderKind::Microsoft
                .default_scopes()
                .contains(&"offline_access".to_owned())
        );
        assert!(ProviderKind::parse("yahoo").is_err());
    }
}
