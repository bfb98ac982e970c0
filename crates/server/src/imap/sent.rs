//! The copy of each sent email in the mailbox's Sent folder, as a mail client keeps one.
//!
//! The folder is the one an inbox names (`imap.sent_mailbox`, created when missing), or else
//! the one the server flags `\Sent` (RFC 6154 SPECIAL-USE, in `LIST`). The copy is appended
//! with `\Seen` and the time it was sent, unless the folder already holds an email with its
//! Message-ID: so a retry after a lost answer, or a server that files sent mail by itself,
//! never leaves two. Readers never read the Sent folder as new mail.

use anyhow::Context as _;
use async_imap::types::NameAttribute;
use futures::TryStreamExt as _;

use super::session::{ImapSettings, login, timed};

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
async fn flagged_sent(session: &mut super::session::Session) -> anyhow::Result<Option<String>> {
    let names: Vec<_> = timed("LIST", async {
        session.list(Some(""), Some("*")).await?.try_collect().await
    })
    .await?;
    Ok(names
        .iter()
        .find(|n| n.attributes().contains(&NameAttribute::Sent))
        .map(|n| n.name().to_owned()))
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
