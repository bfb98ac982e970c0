//! The Sent folder: every email postdesk sends is also appended to the mailbox's Sent folder
//! (found by its `\Sent` flag, or named), once, with `\Seen`, and never read back as new mail.
//! Checked in the real Dovecot's maildir, where a mail client would see it.

use std::path::{Path, PathBuf};

use postdesk::imap::{Appended, ImapSettings, append_sent_copy};
use postdesk_core::ids::MessageId;
use postdesk_core::model::Security;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Db, SUPPORT, SUPPORT_PASSWORD, TestApp, email, eventually, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sent_reply_is_in_the_sent_folder_once_and_not_ingested_on_sqlite() {
    a_sent_reply_is_in_the_sent_folder_once_and_not_ingested(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sent_reply_is_in_the_sent_folder_once_and_not_ingested_on_postgres() {
    a_sent_reply_is_in_the_sent_folder_once_and_not_ingested(Db::Postgres).await;
}

/// The emails (file paths) of a maildir folder, `cur` and `new`.
fn maildir_files(folder: &Path) -> Vec<PathBuf> {
    ["cur", "new"]
        .iter()
        .flat_map(|sub| std::fs::read_dir(folder.join(sub)).into_iter().flatten())
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect()
}

/// The files of `folder` that hold the header `Message-ID: <message_id>`.
fn with_message_id(folder: &Path, message_id: &str) -> Vec<PathBuf> {
    let header = format!("Message-ID: <{message_id}>").to_ascii_lowercase();
    maildir_files(folder)
        .into_iter()
        .filter(|path| {
            std::fs::read(path).is_ok_and(|bytes| {
                String::from_utf8_lossy(&bytes)
                    .to_ascii_lowercase()
                    .contains(&header)
            })
        })
        .collect()
}

/// A conversation with one email from the contact, taken by an agent: (agent, conversation).
async fn taken_conversation(app: &TestApp, id: &str) -> (String, i64) {
    let agent = app.agent("alice").await;
    app.deliver(&email(
        &format!("{id}@customer.test"),
        "carol@customer.test",
        "Where is my order?",
        "It has not come.",
        "",
    ))
    .await;
    let conversation = app.first_queued(&agent).await;
    app.take(&agent, conversation).await;
    (agent, conversation)
}

/// Replies by email and waits until it is sent: (postdesk's message id, its Message-ID).
async fn reply_sent(app: &TestApp, agent: &str, conversation: i64, text: &str) -> (i64, String) {
    let (status, message) = app
        .post(
            agent,
            &format!("/api/v1/conversations/{conversation}/messages"),
            &json!({ "text": text, "via": "email" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{message}");
    let id = message["id"].as_i64().unwrap();
    app.wait_for_delivery(agent, conversation, id, "sent").await;
    let message_id = message["email"]["message_id"]
        .as_str()
        .expect("the reply's Message-ID")
        .to_owned();
    (id, message_id)
}

async fn copy_state(app: &TestApp, message: i64) -> (String, Option<String>) {
    app.store()
        .await
        .sent_copy_state(MessageId(message))
        .await
        .unwrap()
        .expect("an outbox row")
}

async fn a_sent_reply_is_in_the_sent_folder_once_and_not_ingested(db: Db) {
    let app = spawn_app(db).await;
    let (agent, conversation) = taken_conversation(&app, "order").await;
    let (message, message_id) = reply_sent(&app, &agent, conversation, "It is on its way.").await;

    // The testkit's Dovecot flags its folder "Sent" \Sent; no folder is named in the inbox.
    assert_eq!(app.inbox().await["imap"]["sent_mailbox"], json!(null));
    let sent = app.dovecot.maildir(SUPPORT).join(".Sent");
    let copies = eventually("the copy in the Sent folder", || async {
        let copies = with_message_id(&sent, &message_id);
        (!copies.is_empty()).then_some(copies)
    })
    .await;
    assert_eq!(copies.len(), 1, "exactly one copy: {copies:?}");
    let name = copies[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(
        name.rsplit_once(":2,")
            .is_some_and(|(_, flags)| flags.contains('S')),
        "the copy is \\Seen: {name}"
    );
    let bytes = std::fs::read(&copies[0]).unwrap();
    assert!(String::from_utf8_lossy(&bytes).contains("It is on its way."));
    assert_eq!(copy_state(&app, message).await, ("done".to_owned(), None));

    // Never read back as new mail: the conversation holds the contact's email and our reply,
    // and no other conversation appears, after a sync that surely saw the folder.
    app.deliver(&email(
        "later@customer.test",
        "dave@customer.test",
        "Another question",
        "Hello?",
        "",
    ))
    .await;
    eventually("the later email's conversation", || async {
        let all = app.conversations(&app.admin, "status=queued").await;
        all.iter()
            .any(|c| c["subject"] == "Another question")
            .then_some(())
    })
    .await;
    let kinds: Vec<String> = app
        .messages(&agent, conversation)
        .await
        .iter()
        .filter_map(|m| m["kind"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| k.starts_with("email")).count(),
        2,
        "{kinds:?}"
    );
    let mut subjects = Vec::new();
    for status in ["queued", "open", "on_hold", "closed"] {
        for c in app
            .conversations(&app.admin, &format!("status={status}"))
            .await
        {
            subjects.push(c["subject"].as_str().unwrap_or_default().to_owned());
        }
    }
    assert_eq!(subjects.len(), 2, "{subjects:?}");
    assert_eq!(
        with_message_id(&sent, &message_id).len(),
        1,
        "still one copy"
    );
}

/// The inbox names the folder: it is created when missing. An empty name turns copies off.
/// A folder the server refuses leaves the email sent and its copy pending with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_named_sent_folder_is_created_an_empty_name_turns_copies_off() {
    let app = spawn_app(Db::Sqlite).await;
    let path = format!("/api/v1/inboxes/{}", app.inbox_id);
    let mut body = app.inbox_body(SUPPORT_PASSWORD);
    body["smtp"]["sent_mailbox"] = json!("Sent");
    let (status, error) = app.put(&app.admin, &path, &body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains("imap.sent_mailbox"),
        "{error}"
    );
    body["smtp"].as_object_mut().unwrap().remove("sent_mailbox");
    body["imap"]["sent_mailbox"] = json!("inbox");
    let (status, error) = app.put(&app.admin, &path, &body).await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "the mailbox read: {error}"
    );
    body["imap"]["sent_mailbox"] = json!("Sent Items");
    let (status, inbox) = app.put(&app.admin, &path, &body).await;
    assert_eq!(status, StatusCode::OK, "{inbox}");
    assert_eq!(inbox["imap"]["sent_mailbox"], "Sent Items");

    let (agent, conversation) = taken_conversation(&app, "named").await;
    let (first, first_id) = reply_sent(&app, &agent, conversation, "Named folder.").await;
    let named = app.dovecot.maildir(SUPPORT).join(".Sent Items");
    eventually("the copy in the named folder", || async {
        (with_message_id(&named, &first_id).len() == 1).then_some(())
    })
    .await;
    assert!(
        with_message_id(&app.dovecot.maildir(SUPPORT).join(".Sent"), &first_id).is_empty(),
        "not in the flagged folder as well"
    );
    assert_eq!(copy_state(&app, first).await.0, "done");

    body["imap"]["sent_mailbox"] = json!("");
    let (status, inbox) = app.put(&app.admin, &path, &body).await;
    assert_eq!(status, StatusCode::OK, "{inbox}");
    assert_eq!(inbox["imap"]["sent_mailbox"], "");
    let (off, off_id) = reply_sent(&app, &agent, conversation, "No copy of this one.").await;
    eventually("the copy to be turned off", || async {
        (copy_state(&app, off).await.0 == "off").then_some(())
    })
    .await;
    let maildir = app.dovecot.maildir(SUPPORT);
    for folder in [".Sent", ".Sent Items"] {
        assert!(
            with_message_id(&maildir.join(folder), &off_id).is_empty(),
            "{folder}"
        );
    }

    // A name Dovecot refuses to create (its hierarchy separator is "."): the email is sent
    // all the same, and its copy waits for a retry with the server's words.
    body["imap"]["sent_mailbox"] = json!("..");
    let (status, inbox) = app.put(&app.admin, &path, &body).await;
    assert_eq!(status, StatusCode::OK, "{inbox}");
    let (refused, _) = reply_sent(&app, &agent, conversation, "Sent, copy refused.").await;
    let (state, error) = eventually("the refused copy to be recorded", || async {
        let (state, error) = copy_state(&app, refused).await;
        error.is_some().then_some((state, error))
    })
    .await;
    assert_eq!(state, "pending", "retried later: {error:?}");
    assert!(error.unwrap().contains("Sent folder"));
}

/// Appending the same email twice leaves one copy: a retry after a lost answer, or a server
/// that files sent mail by itself, never makes two.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appending_the_same_email_twice_leaves_one_copy() {
    let app = spawn_app(Db::Sqlite).await;
    let settings = ImapSettings {
        host: app.dovecot.host().to_owned(),
        port: app.dovecot.imap_port(),
        security: Security::None,
        tls_verify: false,
        username: SUPPORT.to_owned(),
        password: SUPPORT_PASSWORD.to_owned(),
        bearer: None,
        mailbox: "INBOX".to_owned(),
        move_to: None,
        sent_mailbox: None,
        lease: postdesk::cluster::Lease::unfenced(),
    };
    let raw = email("twice@support.test", SUPPORT, "Once only", "Hello", "");
    let at = chrono::Utc::now();
    let sent = "Sent".to_owned();
    let first = append_sent_copy(&settings, None, "twice@support.test", raw.as_bytes(), at)
        .await
        .unwrap();
    assert_eq!(
        first,
        Appended::Stored {
            folder: sent.clone()
        }
    );
    let second = append_sent_copy(&settings, None, "twice@support.test", raw.as_bytes(), at)
        .await
        .unwrap();
    assert_eq!(second, Appended::AlreadyThere { folder: sent });
    let folder = app.dovecot.maildir(SUPPORT).join(".Sent");
    assert_eq!(with_message_id(&folder, "twice@support.test").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_a_colleague_sent_from_their_client_joins_the_thread_on_sqlite() {
    an_email_a_colleague_sent_from_their_client_joins_the_thread(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_a_colleague_sent_from_their_client_joins_the_thread_on_postgres() {
    an_email_a_colleague_sent_from_their_client_joins_the_thread(Db::Postgres).await;
}

/// An email in the Sent folder, written by a colleague in their own mail client.
fn sent_by_a_colleague(
    message_id: &str,
    in_reply_to: Option<&str>,
    subject: &str,
    body: &str,
) -> String {
    let threading = in_reply_to.map_or_else(String::new, |parent| {
        format!("In-Reply-To: <{parent}>\r\nReferences: <{parent}>\r\n")
    });
    format!(
        "From: Bob at Support <{SUPPORT}>\r\nTo: Carol Customer <carol@customer.test>\r\nSubject: {subject}\r\n\
         Date: Tue, 24 Nov 2026 11:00:00 +0000\r\nMessage-ID: <{message_id}>\r\n{threading}MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
}

/// The texts of the conversation's outgoing emails.
async fn outgoing_texts(app: &TestApp, token: &str, conversation: i64) -> Vec<String> {
    app.messages(token, conversation)
        .await
        .iter()
        .filter(|m| m["kind"] == "email_out")
        .filter_map(|m| m["text"].as_str().map(str::to_owned))
        .collect()
}

/// Wakes the reader (a new email in the mailbox) and waits until it is read.
async fn wake_reader(app: &TestApp, n: usize) {
    let subject = format!("Wake-up {n}");
    app.deliver(&email(
        &format!("wake{n}@other.test"),
        "dave@other.test",
        &subject,
        "Hi",
        "",
    ))
    .await;
    eventually(&format!("the email {subject:?}"), || async {
        app.conversations(&app.admin, "status=queued")
            .await
            .iter()
            .any(|c| c["subject"] == subject.as_str())
            .then_some(())
    })
    .await;
}

async fn an_email_a_colleague_sent_from_their_client_joins_the_thread(db: Db) {
    let mut app = spawn_app(db).await;
    let (agent, conversation) = taken_conversation(&app, "refund").await;
    // postdesk's own reply: its copy in the Sent folder must not come back a second time.
    reply_sent(&app, &agent, conversation, "We are looking into it.").await;

    // A colleague answers from their own client (threaded under the contact's email), and
    // sends something unrelated; both land in the Sent folder.
    app.dovecot
        .append(
            SUPPORT,
            SUPPORT_PASSWORD,
            "Sent",
            sent_by_a_colleague(
                "bob-1@support.test",
                Some("refund@customer.test"),
                "Re: Where is my order?",
                "Bob here: the refund went out today.",
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    app.dovecot
        .append(
            SUPPORT,
            SUPPORT_PASSWORD,
            "Sent",
            sent_by_a_colleague("bob-2@support.test", None, "Lunch?", "Pizza at noon?").as_bytes(),
        )
        .await
        .unwrap();
    wake_reader(&app, 1).await;
    let texts = eventually("the colleague's email in the conversation", || async {
        let texts = outgoing_texts(&app, &agent, conversation).await;
        texts
            .iter()
            .any(|t| t.contains("the refund went out"))
            .then_some(texts)
    })
    .await;
    assert_eq!(
        texts.len(),
        2,
        "our reply once and the colleague's: {texts:?}"
    );
    let messages = app.messages(&agent, conversation).await;
    let theirs = messages
        .iter()
        .find(|m| m["email"]["message_id"] == "bob-1@support.test")
        .expect("the colleague's email");
    assert_eq!(theirs["kind"], "email_out");
    assert_eq!(theirs["email"]["delivery"]["status"], "sent");
    assert_eq!(theirs["email"]["from"]["email"], SUPPORT);
    // The unrelated email joined nothing and opened nothing.
    for status in ["queued", "open", "closed"] {
        assert!(
            app.conversations(&app.admin, &format!("status={status}"))
                .await
                .iter()
                .all(|c| c["subject"] != "Lunch?"),
            "{status}"
        );
    }

    // After a restart the Sent folder is read from where it was left: nothing twice.
    app.restart().await;
    wake_reader(&app, 2).await;
    let texts = outgoing_texts(&app, &agent, conversation).await;
    assert_eq!(texts.len(), 2, "{texts:?}");
}
