//! Limits that keep one client from taking the server down or guessing passwords: sign-in
//! throttling per account and per address, and a bound on each user's open event streams.
//! Also where a request comes from ([`Client`]), for throttling, sessions and the audit log.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use postdesk_core::ids::UserId;
use postdesk_store::Store;

use super::AppState;

/// Failed sign-ins an account may have before each further try waits.
pub const ACCOUNT_FREE_FAILURES: i64 = 5;

/// Failed sign-ins one address may have (over every account) before each further try waits.
pub const ADDRESS_FREE_FAILURES: i64 = 20;

/// The longest wait between tries.
pub const MAX_DELAY: Duration = Duration::from_secs(15 * 60);

/// How far back failures count for an address (an account's count also restarts at its
/// next successful sign-in).
pub const FAILURE_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// The wait after `failures` failed sign-ins of which `free` cost nothing: 1 s after the
/// first one over, doubling with each, at most [`MAX_DELAY`].
#[must_use]
pub fn delay_after(failures: i64, free: i64) -> Duration {
    if failures < free {
        return Duration::ZERO;
    }
    let doublings = u32::try_from(failures - free).unwrap_or(u32::MAX).min(20);
    Duration::from_secs(1u64 << doublings).min(MAX_DELAY)
}

/// How long a sign-in for `account` from `ip` must still wait (whole seconds, rounded up),
/// or `None` when it may be tried now. Counted from the audit log, so every node agrees.
///
/// # Errors
/// Store failures.
pub async fn sign_in_wait(
    store: &Store,
    account: &str,
    ip: &str,
    now_ms: i64,
) -> postdesk_store::Result<Option<u64>> {
    let window = i64::try_from(FAILURE_WINDOW.as_millis()).unwrap_or(i64::MAX);
    let since = now_ms - window;
    let by_account = store.sign_in_failures_for_account(account, since).await?;
    let by_address = store.sign_in_failures_from(ip, since).await?;
    let wait = |f: postdesk_store::Failures, free: i64| -> i64 {
        let delay = i64::try_from(delay_after(f.count, free).as_millis()).unwrap_or(i64::MAX);
        f.last_at.map_or(0, |last| last + delay - now_ms)
    };
    let left = wait(by_account, ACCOUNT_FREE_FAILURES).max(wait(by_address, ADDRESS_FREE_FAILURES));
    Ok((left > 0).then(|| u64::try_from(left).unwrap_or(0).div_ceil(1000)))
}

/// Where a request comes from.
#[derive(Debug, Clone, Default)]
pub struct Client {
    /// The client's address: the peer's, or with `POSTDESK_TRUST_PROXY` the proxy's
    /// X-Forwarded-For.
    pub ip: String,
    /// Its User-Agent.
    pub user_agent: String,
}

impl FromRequestParts<AppState> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Client::of(parts, state.settings.trust_proxy))
    }
}

impl Client {
    /// The client of a request.
    #[must_use]
    pub fn of(parts: &Parts, trust_proxy: bool) -> Self {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip().to_string())
            .unwrap_or_default();
        let forwarded = trust_proxy
            .then(|| parts.headers.get("x-forwarded-for"))
            .flatten()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .map(str::trim)
            .filter(|v| v.parse::<std::net::IpAddr>().is_ok());
        let user_agent = parts
            .headers
            .get(axum::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        Client {
            ip: forwarded.map_or(peer, str::to_owned),
            user_agent,
        }
    }
}

/// The open event streams per user. A std mutex: held for a counter update only.
#[derive(Debug, Clone, Default)]
pub struct StreamCounts(Arc<Mutex<HashMap<UserId, usize>>>);

/// One open stream; closing it (dropping this) frees its place.
#[derive(Debug)]
pub struct StreamSlot {
    counts: StreamCounts,
    user: UserId,
}

impl StreamCounts {
    /// A place for one more stream of `user`, unless they already have `max`.
    #[must_use]
    pub fn open(&self, user: UserId, max: usize) -> Option<StreamSlot> {
        let mut counts = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let open = counts.entry(user).or_default();
        if *open >= max {
            return None;
        }
        *open += 1;
        Some(StreamSlot {
            counts: self.clone(),
            user,
        })
    }

    /// How many streams are open, over every user (for the metrics).
    #[must_use]
    pub fn total(&self) -> usize {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .sum()
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut counts = self
            .counts
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(open) = counts.get_mut(&self.user) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                counts.remove(&self.user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_after_the_free_failures_up_to_the_cap() {
        assert_eq!(delay_after(0, 5), Duration::ZERO);
        assert_eq!(delay_after(4, 5), Duration::ZERO);
        assert_eq!(delay_after(5, 5), Duration::from_secs(1));
        assert_eq!(delay_after(6, 5), Duration::from_secs(2));
        assert_eq!(delay_after(9, 5), Duration::from_secs(16));
        assert_eq!(delay_after(50, 5), MAX_DELAY);
        assert_eq!(delay_after(i64::MAX, 5), MAX_DELAY);
    }

    #[test]
    fn a_user_gets_at_most_max_streams_and_closing_one_frees_it() {
        let counts = StreamCounts::default();
        let first = counts.open(UserId(1), 2).unwrap();
        let _second = counts.open(UserId(1), 2).unwrap();
        assert!(counts.open(UserId(1), 2).is_none());
        assert!(
            counts.open(UserId(2), 2).is_some(),
            "others are not affected"
        );
        assert_eq!(counts.total(), 2, "user 2's slot closed with its drop");
        drop(first);
        assert_eq!(counts.total(), 1);
        assert!(counts.open(UserId(1), 2).is_some());
    }
}
