//! The copy of each sent email in the mailbox's Sent folder, as a mail client keeps one.
//!
//! The folder is the one an inbox names (`imap.sent_mailbox`, created when missing), or else
//! the one the server flags `\Sent` (RFC 6154 SPECIAL-USE, in `LIST`). The copy is appended
//! with `\Seen` and the time it was sent, unless the folder already holds an email with its
//! Message-ID: so a retry after a lost answer, or a server that files sent mail by itself,
//! never leaves two. Readers never read the Sent folder as new mail.
//!
//! The other way round, [`sync_sent`]: an email a colleague sent from their own mail client
//! into a conversation (it answers one of its emails, by In-Reply-To or References) joins that
//! conversation as an outgoing email. The reader looks at the Sent folder after every sync of
//! the mailbox (a `STATUS` when nothing is new): only the headers of what is new since it
//! first looked, and the whole email only of those that answer a conversation. What was in
//! the folder before, and everything else sent from the mailbox, is never read or stored.

use anyhow::Context as _;
use async_imap::types::NameAttribute;
use futures::TryStreamExt as _;

use postdesk_core::event::Event;
use postdesk_core::ids::InboxId;
use postdesk_store::SentOrigin;

use super::ReaderContext;
use super::session::{ImapSettings, Session, login, timed};

/// Where a sent email's copy went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    /// Appended to `folder`.
    Stored {
        /// The Sent folder.
        folder: String,
    },
    /// `folder` already held an email with the Message-ID.
    AlreadyThere {
        /// The Sent folder.
        folder: String,
    },
    /// No folder was named and none has the `\Sent` flag.
    NoSentFolder,
}

/// Appends `mime` (Message-ID `message_id`, without `<>`) to the Sent folder of the mailbox
/// `s` logs in to: `folder`, or the one flagged `\Sent` when `None`.
///
/// # Errors
/// The connection's or the server's words, with the step that failed.
pub async fn append_sent_copy(
    s: &ImapSettings,
    folder: Option<&str>,
    message_id: &str,
    mime: &[u8],
    sent_at: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<Appended> {
    let mut session = login(s).await?;
    let outcome = async {
        let folder = match folder {
            Some(named) => {
                if timed("EXAMINE", session.examine(named)).await.is_err() {
                    // Missing (or not selectable): create it, as a mail client would.
                    timed("CREATE", session.create(named))
                        .await
                        .with_context(|| format!("Cannot create the Sent folder {named:?}"))?;
                    timed("EXAMINE", session.examine(named)).await?;
                }
                named.to_owned()
            }
            None => {
                let Some(found) = flagged_sent(&mut session).await? else {
                    return Ok(Appended::NoSentFolder);
                };
                timed("EXAMINE", session.examine(&found)).await?;
                found
            }
        };
        let query = format!("HEADER Message-ID \"<{}>\"", search_text(message_id));
        let found = timed("UID SEARCH", session.uid_search(&query)).await?;
        if !found.is_empty() {
            return Ok(Appended::AlreadyThere { folder });
        }
        // RFC 3501 date-time: a quoted string.
        let date = sent_at.format("\"%d-%b-%Y %H:%M:%S %z\"").to_string();
        timed(
            "APPEND",
            session.append(&folder, Some("(\\Seen)"), Some(&date), mime),
        )
        .await
        .with_context(|| format!("Cannot append to the Sent folder {folder:?}"))?;
        Ok::<_, anyhow::Error>(Appended::Stored { folder })
    }
    .await;
    let _ = session.logout().await;
    outcome
}

/// The name of the first folder the server flags `\Sent`.
async fn flagged_sent(session: &mut Session) -> anyhow::Result<Option<String>> {
    let names: Vec<_> = timed("LIST", async {
        session.list(Some(""), Some("*")).await?.try_collect().await
    })
    .await?;
    Ok(names
        .iter()
        .find(|n| n.attributes().contains(&NameAttribute::Sent))
        .map(|n| n.name().to_owned()))
}

/// The Sent folder the reader watches for colleagues' emails: the one the inbox names, else
/// the one flagged `\Sent`; `None` when copies are turned off (`""`) or there is none.
pub(super) async fn watched_sent_folder(
    session: &mut Session,
    named: Option<&str>,
) -> anyhow::Result<Option<String>> {
    match named {
        Some("") => Ok(None),
        Some(name) => Ok(Some(name.to_owned())),
        None => flagged_sent(session).await,
    }
}

/// Takes what is new in the Sent folder `folder` since the last look (see the module docs).
/// `mailbox` (UIDVALIDITY `validity`) is selected again before returning whenever the Sent
/// folder was, so IDLE goes on there; then the answer is true: mail that reached the mailbox
/// meanwhile was announced to no one, so the caller looks at the mailbox again.
pub(super) async fn sync_sent(
    ctx: &ReaderContext,
    inbox: InboxId,
    session: &mut Session,
    folder: &str,
    mailbox: &str,
    validity: u32,
) -> anyhow::Result<bool> {
    let status = match timed("STATUS", session.status(folder, "(UIDNEXT UIDVALIDITY)")).await {
        Ok(status) => status,
        Err(e) => {
            // A named folder that does not exist yet (made at the first copy).
            tracing::debug!(%inbox, folder, "No Sent folder to look at: {e:#}");
            return Ok(false);
        }
    };
    let (Some(sent_validity), Some(uid_next)) = (status.uid_validity, status.uid_next) else {
        return Ok(false);
    };
    let next_uid = match ctx.store.find_sync_state(inbox, folder).await? {
        Some((stored, next)) if stored == sent_validity => next,
        _ => {
            // First look (or a new UIDVALIDITY): from now on only.
            ctx.store
                .set_sync_state(inbox, folder, sent_validity, uid_next)
                .await?;
            return Ok(false);
        }
    };
    if next_uid >= uid_next {
        return Ok(false);
    }
    timed("EXAMINE", session.examine(folder)).await?;
    // A problem in the Sent folder is logged and tried again at the next look; it never
    // stops the reading of the mailbox (a dead connection fails the SELECT below).
    let looked = match take_answers(
        ctx,
        inbox,
        session,
        folder,
        sent_validity,
        next_uid,
        uid_next,
    )
    .await
    {
        Ok(taken) => {
            tracing::debug!(%inbox, folder, taken, "Looked at the Sent folder");
            true
        }
        Err(e) => {
            tracing::warn!(%inbox, folder, "Reading the Sent folder failed: {e:#}");
            false
        }
    };
    let selected = timed("SELECT", session.select(mailbox)).await?;
    anyhow::ensure!(
        selected.uid_validity == Some(validity),
        "The UIDVALIDITY of {mailbox:?} changed"
    );
    Ok(looked)
}

/// Fetches the headers of the Sent folder's emails from `next_uid` on, and whole only those
/// that answer a conversation; records them and moves the watermark past them all (and to
/// `uid_next` at least, which the folder had when the look began).
async fn take_answers(
    ctx: &ReaderContext,
    inbox: InboxId,
    session: &mut Session,
    folder: &str,
    validity: u32,
    next_uid: u32,
    uid_next: u32,
) -> anyhow::Result<usize> {
    // The whole header section: async-imap reads no HEADER.FIELDS answer.
    let heads = uid_fetch_each(
        session,
        format!("{next_uid}:*"),
        "(UID RFC822.SIZE BODY.PEEK[HEADER])",
        |f| {
            let uid = f.uid.filter(|uid| *uid >= next_uid)?;
            let head = f.header().unwrap_or_default();
            Some((uid, u64::from(f.size.unwrap_or(0)), head.to_vec()))
        },
    )
    .await?;
    let mut taken = 0;
    let mut highest = None;
    for (uid, size, head) in heads {
        highest = highest.max(Some(uid));
        let Ok(ids) = postdesk_mail::parse(&head) else {
            continue;
        };
        let Some(conversation) = ctx
            .store
            .sent_thread(
                inbox,
                &ids.message_id,
                ids.in_reply_to.as_deref(),
                &ids.references,
            )
            .await?
        else {
            continue;
        };
        if usize::try_from(size).unwrap_or(usize::MAX) > ctx.limits.max_email_bytes {
            tracing::warn!(%inbox, folder, uid, size, "An email in the Sent folder answers a conversation but is over the size limit: not taken");
            continue;
        }
        let raw = uid_fetch_each(session, uid.to_string(), "(UID BODY.PEEK[])", |f| {
            f.body().filter(|_| f.uid == Some(uid)).map(<[u8]>::to_vec)
        })
        .await?
        .pop();
        let Some(raw) = raw else { continue };
        let (raw, parsed) = crate::ingest::parse_limited(raw, ctx.limits).await;
        let email = match parsed.and_then(crate::ingest::to_incoming) {
            Ok(email) => email,
            Err(e) => {
                tracing::warn!(%inbox, folder, uid, "An email in the Sent folder answers a conversation but cannot be read: {e}");
                continue;
            }
        };
        let origin = SentOrigin {
            mailbox: folder,
            uidvalidity: validity,
            uid,
        };
        if let Some(message) = ctx
            .store
            .record_sent_elsewhere(inbox, conversation, origin, &raw, &email)
            .await?
        {
            taken += 1;
            tracing::info!(%inbox, %conversation, message_id = %message.id, "An email sent from the mailbox's own client joined its conversation");
            ctx.bus.publish(Event::MessageCreated {
                conversation_id: conversation,
                message_id: message.id,
            });
        }
    }
    let watermark = highest.map_or(uid_next, |h| h.saturating_add(1).max(uid_next));
    ctx.store
        .set_sync_state(inbox, folder, validity, watermark)
        .await?;
    Ok(taken)
}

/// `UID FETCH set items`, each answer kept as `pick` makes it (or left out).
async fn uid_fetch_each<T>(
    session: &mut Session,
    set: String,
    items: &str,
    pick: impl Fn(&async_imap::types::Fetch) -> Option<T>,
) -> anyhow::Result<Vec<T>> {
    timed("UID FETCH", async {
        let fetches: Vec<_> = session.uid_fetch(set, items).await?.try_collect().await?;
        Ok::<_, async_imap::error::Error>(fetches.iter().filter_map(&pick).collect())
    })
    .await
}

/// A Message-ID as the text of a quoted IMAP search string: without the characters a quoted
/// string cannot hold. (Ours never have them; a stricter match is not needed to find it.)
fn search_text(message_id: &str) -> String {
    message_id
        .chars()
        .filter(|c| !matches!(c, '"' | '\\' | '\r' | '\n'))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_search_string_cannot_be_broken_out_of() {
        assert_eq!(super::search_text("abc@x.test"), "abc@x.test");
        assert_eq!(super::search_text("a\"b\\c\r\nd@x.test"), "abcd@x.test");
    }
}
