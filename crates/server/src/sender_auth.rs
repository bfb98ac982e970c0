//! Sender authenticity: the DKIM, SPF and DMARC verdicts of an inbound email, checked once when
//! it is processed (before the store's write lock is taken) with `mail-auth` against DNS.
//!
//! - **DKIM** (RFC 6376): every signature is verified; the verdict is the best of them (`pass`
//!   when one passes), `none` without a signature.
//! - **SPF** (RFC 7208): the client address, `HELO` and `MAIL FROM` come from the email's trace
//!   fields ([`postdesk_mail::envelope`]): postdesk's own for the SMTP ingress, the receiving
//!   server's for IMAP. With no client address known, SPF is `none`.
//! - **DMARC** (RFC 7489): of the From domain, from the two above.
//!
//! DNS is the system's resolver or the nameservers of `POSTDESK_DNS`, with a short timeout and
//! one retry: a DNS server that does not answer gives `temperror`, never a failed or stuck
//! email, and every check together is cut off after [`CHECK_TIMEOUT`]. Parsed records are
//! cached (mail-auth's caches, by their DNS TTL) and shared by every email, so a batch from the
//! same few domains asks DNS once.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mail_auth::hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts,
};
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{
    AuthenticatedMessage, DkimResult, DmarcResult, MX, MessageAuthenticator, Parameters, RecordSet,
    ResolverCache, SpfOutput, SpfResult, Txt, dmarc::verify::DmarcParameters,
};
use postdesk_core::model::{AuthResult, SenderAuth};
use postdesk_mail::envelope::{Arrival, Envelope, envelope};

/// How long one DNS query may take before it is given up as `temperror`. Short: a mail server
/// waits longer, but postdesk verifies a backlog and a dead DNS server must not hold it up.
const DNS_TIMEOUT: Duration = Duration::from_secs(2);

/// Retries of a DNS query that timed out (so at most two tries).
const DNS_ATTEMPTS: usize = 1;

/// The longest all checks of one email may take together (DKIM, SPF and DMARC each need a
/// query or more); past it every unfinished verdict is `temperror`.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(6);

/// How long an answer that a name does not exist is kept at least.
const NEGATIVE_MIN_TTL: Duration = Duration::from_secs(60);

/// Emails checked at once. DNS waits are cheap, so a whole batch (200) is in flight at once:
/// a slow DNS server then costs one timeout per batch, not one per email.
pub const PARALLEL_CHECKS: usize = 256;

/// Records kept in each cache; past it, expired ones go, and if none had, all do.
const CACHE_ENTRIES: usize = 10_000;

/// Which DNS servers sender authentication asks (`POSTDESK_DNS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dns {
    /// The system's resolver (`/etc/resolv.conf`).
    System,
    /// These nameservers, in order.
    Servers(Vec<SocketAddr>),
    /// No checks at all: inbound emails carry no verdicts (`email.auth` is null).
    Off,
}

impl Dns {
    /// Parses `POSTDESK_DNS`: empty for the system's resolver, `off`, or nameservers separated
    /// by commas, each an address with an optional port (`127.0.0.1:5353`, `192.0.2.53`,
    /// `[2001:db8::53]:53`; port 53 when left out).
    ///
    /// # Errors
    /// A message naming the setting and the entry that is not an address.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() || text.eq_ignore_ascii_case("system") {
            return Ok(Self::System);
        }
        if text.eq_ignore_ascii_case("off") {
            return Ok(Self::Off);
        }
        text.split(',')
            .map(str::trim)
            .map(|entry| {
                entry
                    .parse::<SocketAddr>()
                    .or_else(|_| entry.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
                    .map_err(|_| {
                        format!(
                            "POSTDESK_DNS: {entry:?} is not a nameserver address (like 192.0.2.53, 127.0.0.1:5353 or [2001:db8::53]:53); give addresses separated by commas, or \"off\""
                        )
                    })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self::Servers)
    }
}

/// Checks the sender authenticity of inbound emails. Cheap to clone: the resolver and the caches
/// are shared.
#[derive(Clone)]
pub struct Verifier {
    /// `None` when checks are off.
    inner: Option<Arc<Inner>>,
}

impl Default for Verifier {
    /// Checks nothing.
    fn default() -> Self {
        Self::off()
    }
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("on", &self.inner.is_some())
            .finish()
    }
}

struct Inner {
    authenticator: MessageAuthenticator,
    /// Parsed TXT records (DKIM keys, SPF, DMARC), by name.
    txt: Cache<Box<str>, Txt>,
    /// MX records (SPF's `mx` mechanism).
    mx: Cache<Box<str>, RecordSet<MX>>,
    /// A records (SPF's `a` and `mx` mechanisms).
    ipv4: Cache<Box<str>, RecordSet<Ipv4Addr>>,
    /// AAAA records.
    ipv6: Cache<Box<str>, RecordSet<Ipv6Addr>>,
    /// PTR records (SPF's `ptr` mechanism).
    ptr: Cache<IpAddr, RecordSet<Box<str>>>,
}

impl Verifier {
    /// A verifier asking `dns`.
    ///
    /// # Errors
    /// When the system's resolver settings cannot be read (name the nameservers in
    /// `POSTDESK_DNS` instead).
    pub fn new(dns: &Dns) -> anyhow::Result<Self> {
        let mut options = ResolverOpts::default();
        let config = match dns {
            Dns::Off => return Ok(Self::off()),
            Dns::System => {
                let (config, system) =
                    mail_auth::hickory_resolver::system_conf::read_system_conf().map_err(|e| {
                        anyhow::anyhow!(
                            "Cannot read the system's DNS settings (/etc/resolv.conf) for checking senders: {e}; set POSTDESK_DNS to a nameserver address, or to \"off\""
                        )
                    })?;
                options = system;
                config
            }
            Dns::Servers(servers) => ResolverConfig::from_name_servers(
                servers
                    .iter()
                    .map(|server| {
                        let mut udp = ConnectionConfig::udp();
                        udp.port = server.port();
                        let mut tcp = ConnectionConfig::tcp();
                        tcp.port = server.port();
                        NameServerConfig::new(server.ip(), true, vec![udp, tcp])
                    })
                    .collect(),
            ),
        };
        options.timeout = DNS_TIMEOUT;
        options.attempts = DNS_ATTEMPTS;
        // A name that does not exist (no DKIM key, no DMARC record: most senders) is asked
        // once a minute at most, even from a server that answers NXDOMAIN without a TTL.
        options.negative_min_ttl = Some(NEGATIVE_MIN_TTL);
        let authenticator = MessageAuthenticator::new(config, options)
            .map_err(|e| anyhow::anyhow!("Cannot set up DNS for checking senders: {e}"))?;
        Ok(Self {
            inner: Some(Arc::new(Inner {
                authenticator,
                txt: Cache::default(),
                mx: Cache::default(),
                ipv4: Cache::default(),
                ipv6: Cache::default(),
                ptr: Cache::default(),
            })),
        })
    }

    /// A verifier that checks nothing.
    #[must_use]
    pub fn off() -> Self {
        Self { inner: None }
    }

    /// Whether emails are checked at all.
    #[must_use]
    pub fn is_on(&self) -> bool {
        self.inner.is_some()
    }

    /// The verdicts of the email `raw` that arrived by `arrival`; `None` when checks are off.
    /// Never fails: what cannot be checked now is `temperror`, what cannot be checked at all
    /// `none` or `permerror`.
    pub async fn verify(&self, raw: &[u8], arrival: Arrival) -> Option<SenderAuth> {
        let inner = self.inner.as_ref()?;
        let Some(message) = AuthenticatedMessage::parse(raw) else {
            // Not even headers: nothing to check.
            return Some(SenderAuth {
                dkim: AuthResult::None,
                spf: AuthResult::None,
                dmarc: AuthResult::None,
                from_domain: String::new(),
                aligned: false,
            });
        };
        let from_domain = from_domain(&message);
        let envelope = envelope(raw, arrival);
        match tokio::time::timeout(
            CHECK_TIMEOUT,
            inner.check(&message, &envelope, &from_domain),
        )
        .await
        {
            Ok(auth) => Some(auth),
            Err(_) => Some(SenderAuth {
                dkim: AuthResult::TempError,
                spf: AuthResult::TempError,
                dmarc: AuthResult::TempError,
                from_domain,
                aligned: false,
            }),
        }
    }
}

impl Inner {
    async fn check(
        &self,
        message: &AuthenticatedMessage<'_>,
        envelope: &Envelope,
        from_domain: &str,
    ) -> SenderAuth {
        let dkim = self.authenticator.verify_dkim(self.cached(message)).await;
        let helo = envelope.helo.as_deref().unwrap_or_default();
        let mail_from = envelope.mail_from.as_deref().unwrap_or_default();
        let spf = match envelope.client_ip {
            Some(ip) => {
                // RFC 7208 §2.4: with an empty MAIL FROM, SPF checks postmaster@HELO.
                let params = if mail_from.is_empty() {
                    SpfParameters::verify_ehlo(ip, helo, "postdesk")
                } else {
                    SpfParameters::verify_mail_from(ip, helo, "postdesk", mail_from)
                };
                self.authenticator.verify_spf(self.cached(params)).await
            }
            None => SpfOutput::default(),
        };
        let mail_from_domain = mail_from.rsplit_once('@').map_or(helo, |(_, d)| d);
        let dmarc = self
            .authenticator
            .verify_dmarc(self.cached(DmarcParameters::new(message, &dkim, mail_from_domain, &spf)))
            .await;
        let aligned = if dmarc.dmarc_record().is_some() {
            dmarc.dkim_result() == &DmarcResult::Pass || dmarc.spf_result() == &DmarcResult::Pass
        } else {
            // No DMARC record: alignment as DMARC's relaxed mode would see it, without the
            // public suffix list (the same domain, or one a subdomain of the other).
            let dkim_aligned = dkim.iter().any(|d| {
                d.result() == &DkimResult::Pass
                    && d.signature().is_some_and(|s| relaxed(&s.d, from_domain))
            });
            let spf_aligned =
                spf.result() == SpfResult::Pass && relaxed(mail_from_domain, from_domain);
            dkim_aligned || spf_aligned
        };
        SenderAuth {
            dkim: dkim_verdict(dkim.iter().map(mail_auth::DkimOutput::result)),
            spf: spf_verdict(spf.result()),
            dmarc: dmarc_verdict(&dmarc.result()),
            from_domain: from_domain.to_owned(),
            aligned,
        }
    }

    /// `params` with the shared caches.
    fn cached<'x, P>(&'x self, params: P) -> Cached<'x, P> {
        Parameters {
            params,
            cache_txt: Some(&self.txt),
            cache_mx: Some(&self.mx),
            cache_ptr: Some(&self.ptr),
            cache_ipv4: Some(&self.ipv4),
            cache_ipv6: Some(&self.ipv6),
        }
    }
}

/// mail-auth's parameters with [`Inner`]'s caches.
type Cached<'x, P> = Parameters<
    'x,
    P,
    Cache<Box<str>, Txt>,
    Cache<Box<str>, RecordSet<MX>>,
    Cache<Box<str>, RecordSet<Ipv4Addr>>,
    Cache<Box<str>, RecordSet<Ipv6Addr>>,
    Cache<IpAddr, RecordSet<Box<str>>>,
>;

/// The domain of the email's From address, lowercase; empty without one.
fn from_domain(message: &AuthenticatedMessage<'_>) -> String {
    message
        .from()
        .rsplit_once('@')
        .map(|(_, domain)| domain.trim().trim_end_matches('>').to_ascii_lowercase())
        .unwrap_or_default()
}

/// DMARC's relaxed alignment without the public suffix list.
fn relaxed(a: &str, b: &str) -> bool {
    let (a, b) = (a.to_ascii_lowercase(), b.to_ascii_lowercase());
    !a.is_empty()
        && !b.is_empty()
        && (a == b || a.ends_with(&format!(".{b}")) || b.ends_with(&format!(".{a}")))
}

/// One verdict for all of an email's DKIM signatures: `pass` when one passes, else the most
/// telling failure (`fail`, then `temperror`, `permerror`, `neutral`), `none` without any.
///
/// A body changed after signing is `fail`: RFC 6376 §6.1.3 makes it a failed verification
/// ("body hash did not verify"), which RFC 8601 §2.7.1 reports as `fail`; mail-auth calls it
/// neutral, which would hide a tampered email among unreadable signatures.
fn dkim_verdict<'a>(results: impl Iterator<Item = &'a DkimResult>) -> AuthResult {
    results
        .map(|result| match result {
            DkimResult::Pass => AuthResult::Pass,
            DkimResult::Fail(_)
            | DkimResult::Neutral(mail_auth::Error::Dkim(
                mail_auth::dkim::DkimError::FailedBodyHashMatch,
            )) => AuthResult::Fail,
            DkimResult::TempError(_) => AuthResult::TempError,
            DkimResult::PermError(_) => AuthResult::PermError,
            DkimResult::Neutral(_) => AuthResult::Neutral,
            DkimResult::None => AuthResult::None,
        })
        .min_by_key(|verdict| match verdict {
            AuthResult::Pass => 0,
            AuthResult::Fail | AuthResult::SoftFail => 1,
            AuthResult::TempError => 2,
            AuthResult::PermError => 3,
            AuthResult::Neutral => 4,
            AuthResult::None => 5,
        })
        .unwrap_or(AuthResult::None)
}

fn spf_verdict(result: SpfResult) -> AuthResult {
    match result {
        SpfResult::Pass => AuthResult::Pass,
        SpfResult::Fail => AuthResult::Fail,
        SpfResult::SoftFail => AuthResult::SoftFail,
        SpfResult::Neutral => AuthResult::Neutral,
        SpfResult::TempError => AuthResult::TempError,
        SpfResult::PermError => AuthResult::PermError,
        SpfResult::None => AuthResult::None,
    }
}

fn dmarc_verdict(result: &DmarcResult) -> AuthResult {
    match result {
        DmarcResult::Pass => AuthResult::Pass,
        DmarcResult::Fail(_) => AuthResult::Fail,
        DmarcResult::TempError(_) => AuthResult::TempError,
        DmarcResult::PermError(_) => AuthResult::PermError,
        DmarcResult::None => AuthResult::None,
    }
}

/// A bounded map of DNS answers that forgets each at the end of its time to live. A std mutex:
/// it is held for a map operation only, never across an await.
struct Cache<K, V> {
    entries: Mutex<HashMap<K, (V, Instant)>>,
}

impl<K, V> Default for Cache<K, V> {
    fn default() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Hash + Eq, V: Clone> Cache<K, V> {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, (V, Instant)>> {
        // A panic elsewhere while holding the lock leaves a usable map behind.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl<K: Hash + Eq, V: Clone> ResolverCache<K, V> for Cache<K, V> {
    fn get<Q>(&self, name: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut entries = self.lock();
        match entries.get(name) {
            Some((value, until)) if *until > Instant::now() => Some(value.clone()),
            Some(_) => {
                entries.remove(name);
                None
            }
            None => None,
        }
    }

    fn remove<Q>(&self, name: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.lock().remove(name).map(|(value, _)| value)
    }

    fn insert(&self, key: K, value: V, valid_until: Instant) {
        let mut entries = self.lock();
        if entries.len() >= CACHE_ENTRIES {
            let now = Instant::now();
            entries.retain(|_, (_, until)| *until > now);
            if entries.len() >= CACHE_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(key, (value, valid_until));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_settings_parse_with_the_setting_named_in_errors() {
        let servers =
            |list: &[&str]| Dns::Servers(list.iter().map(|s| s.parse().unwrap()).collect());
        for (text, expected) in [
            ("", Dns::System),
            ("off", Dns::Off),
            ("127.0.0.1:5353", servers(&["127.0.0.1:5353"])),
            (
                "192.0.2.53, [2001:db8::53]:5300",
                servers(&["192.0.2.53:53", "[2001:db8::53]:5300"]),
            ),
            ("2001:db8::1", servers(&["[2001:db8::1]:53"])),
        ] {
            assert_eq!(Dns::parse(text), Ok(expected), "{text:?}");
        }
        let error = Dns::parse("127.0.0.1:5353,dns.example").unwrap_err();
        assert!(
            error.contains("POSTDESK_DNS") && error.contains("dns.example"),
            "{error}"
        );
    }

    #[test]
    fn the_best_dkim_signature_decides() {
        use mail_auth::{DnsError, Error};
        let fail = DkimResult::Fail(Error::NotAligned);
        let temp = DkimResult::TempError(Error::Dns(DnsError::Resolver("timed out".into())));
        assert_eq!(dkim_verdict([].into_iter()), AuthResult::None);
        assert_eq!(
            dkim_verdict([&fail, &DkimResult::Pass].into_iter()),
            AuthResult::Pass
        );
        assert_eq!(dkim_verdict([&temp, &fail].into_iter()), AuthResult::Fail);
        assert_eq!(dkim_verdict([&temp].into_iter()), AuthResult::TempError);
        let changed =
            DkimResult::Neutral(Error::Dkim(mail_auth::dkim::DkimError::FailedBodyHashMatch));
        let expired =
            DkimResult::Neutral(Error::Dkim(mail_auth::dkim::DkimError::SignatureExpired));
        assert_eq!(
            dkim_verdict([&changed].into_iter()),
            AuthResult::Fail,
            "a changed body"
        );
        assert_eq!(dkim_verdict([&expired].into_iter()), AuthResult::Neutral);
    }

    #[test]
    fn relaxed_alignment_takes_subdomains_both_ways() {
        assert!(relaxed("example.org", "EXAMPLE.org"));
        assert!(relaxed("mail.example.org", "example.org"));
        assert!(relaxed("example.org", "news.example.org"));
        assert!(!relaxed("badexample.org", "example.org"));
        assert!(!relaxed("", "example.org"));
    }

    #[tokio::test]
    async fn off_checks_nothing() {
        let verifier = Verifier::new(&Dns::Off).unwrap();
        assert!(!verifier.is_on());
        assert_eq!(
            verifier
                .verify(b"From: a@b.test\r\n\r\nhi\r\n", Arrival::Imap)
                .await,
            None
        );
    }
}
