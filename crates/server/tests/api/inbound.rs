//! Inbound mail is never lost and never doubled, with a real Dovecot: server restarts while
//! idling, UIDVALIDITY changes, mail read elsewhere first, broken emails, oversized emails,
//! auto-replies, bounces of our replies and our own mail seen again.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Db, SUPPORT, SUPPORT_PASSWORD, TestApp, email, eventually, spawn_app};

async fn all_messages(app: &TestApp) -> Vec<Value> {
    let mut out = Vec::new();
    for c in app.conversations(&app.admin, "").await {
        out.extend(app.messages(&app.admin, c["id"].as_i64().unwrap()).await);
    }
    out
}

async fn count_email_in(app: &TestApp) -> usize {
    all_messages(app)
        .await
        .iter()
        .filter(|m| m["kind"] == "email_in")
        .count()
}

/// Waits until exactly `n` inbound emails are stored; on timeout, fails with the inbox's
/// health and Dovecot's log, which say why.
async fn wait_for_emails(app: &TestApp, n: usize, what: &str) {
    let start = std::time::Instant::now();
    loop {
        let got = count_email_in(app).await;
        if got == n {
            return;
        }
        if start.elapsed() > crate::helpers::PATIENCE {
            let status = app.inbox().await["status"].clone();
            let log = app.dovecot.log();
            let tail: String = log
                .lines()
                .rev()
                .take(15)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n");
            panic!(
                "gave up waiting for {what}: {got} of {n} emails; inbox status {status}; Dovecot log:\n{tail}"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_mail_still_arrives_after_dovecot_restarts_while_postdesk_idles() {
    let mut app = spawn_app(Db::Sqlite).await;
    app.deliver(&email(
        "before@customer.test",
        "carol@customer.test",
        "Before",
        "Hi",
        "",
    ))
    .await;
    wait_for_emails(&app, 1, "the first email").await;
    eventually("the reader to idle", || async {
        (app.inbox().await["status"]["state"] == "idle").then_some(())
    })
    .await;

    app.dovecot.restart().await.unwrap();
    app.deliver(&email(
        "after@customer.test",
        "carol@customer.test",
        "After",
        "Hi",
        "",
    ))
    .await;
    wait_for_emails(&app, 2, "the email delivered after Dovecot's restart").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        count_email_in(&app).await,
        2,
        "nothing doubled by the reconnect"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_uidvalidity_change_resyncs_without_duplicates() {
    let app = spawn_app(Db::Sqlite).await;
    for i in 0..3 {
        app.deliver(&email(
            &format!("v{i}@customer.test"),
            "carol@customer.test",
            &format!("Q{i}"),
            "Hi",
            "",
        ))
        .await;
    }
    wait_for_emails(&app, 3, "three emails").await;

    // The server renumbers the mailbox (as after a restore or a migration).
    app.doveadm(&[
        "mailbox",
        "update",
        "-u",
        SUPPORT,
        "--uid-validity",
        "4242",
        "INBOX",
    ]);
    app.deliver(&email(
        "v3@customer.test",
        "carol@customer.test",
        "Q3",
        "Hi",
        "",
    ))
    .await;
    wait_for_emails(&app, 4, "the email after the UIDVALIDITY change").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let messages = all_messages(&app).await;
    let mut ids: Vec<&str> = messages
        .iter()
        .filter_map(|m| m["email"]["message_id"].as_str())
        .collect();
    ids.sort_unstable();
    assert_eq!(
        ids,
        vec![
            "v0@customer.test",
            "v1@customer.test",
            "v2@customer.test",
            "v3@customer.test"
        ],
        "each email exactly once"
    );
}

/// Marks every message in the support mailbox \Seen, as another mail client would.
async fn mark_all_seen(app: &TestApp) {
    let tcp = tokio::net::TcpStream::connect((app.dovecot.host(), app.dovecot.imap_port()))
        .await
        .unwrap();
    let mut client = async_imap::Client::new(tcp);
    client.read_response().await.unwrap();
    let mut session = client
        .login(SUPPORT, SUPPORT_PASSWORD)
        .await
        .map_err(|(e, _)| e)
        .unwrap();
    session.select("INBOX").await.unwrap();
    let updates: Vec<_> = futures::TryStreamExt::try_collect(
        session.uid_store("1:*", "+FLAGS (\\Seen)").await.unwrap(),
    )
    .await
    .unwrap();
    assert!(!updates.is_empty());
    session.logout().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_read_in_another_client_first_is_still_ingested() {
    let app = spawn_app(Db::Sqlite).await;
    let path = format!("/api/v1/inboxes/{}", app.inbox_id);
    let mut off = app.inbox_body(SUPPORT_PASSWORD);
    off["active"] = json!(false);
    assert_eq!(app.put(&app.admin, &path, &off).await.0, StatusCode::OK);

    app.deliver(&email(
        "seen@customer.test",
        "carol@customer.test",
        "Read elsewhere",
        "Hi",
        "",
    ))
    .await;
    mark_all_seen(&app).await;

    assert_eq!(
        app.put(&app.admin, &path, &app.inbox_body(SUPPORT_PASSWORD))
            .await
            .0,
        StatusCode::OK
    );
    wait_for_emails(&app, 1, "the \\Seen email").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_email_is_quarantined_and_never_blocks_the_next() {
    let app = spawn_app(Db::Postgres).await;
    app.deliver(&email(
        "good1@customer.test",
        "carol@customer.test",
        "Good one",
        "Hi",
        "",
    ))
    .await;
    app.dovecot
        .append(
            SUPPORT,
            SUPPORT_PASSWORD,
            "INBOX",
            b"\x00\x01\x02 this is not an email at all\r\n\r\n",
        )
        .await
        .unwrap();
    app.deliver(&email(
        "good2@customer.test",
        "carol@customer.test",
        "Good two",
        "Hi",
        "",
    ))
    .await;
    wait_for_emails(&app, 2, "both good emails").await;

    let (status, body) = app.get(&app.admin, "/api/v1/quarantine").await;
    assert_eq!(status, StatusCode::OK);
    let quarantined = body["quarantined"].as_array().unwrap();
    assert_eq!(quarantined.len(), 1, "{body}");
    assert!(
        quarantined[0]["reason"]
            .as_str()
            .unwrap()
            .contains("Cannot parse"),
        "{body}"
    );
    assert_eq!(app.inbox().await["status"]["quarantined"], 1);

    // Reprocessing a still-broken email quarantines it again; it is never dropped.
    let id = quarantined[0]["id"].as_i64().unwrap();
    let (status, report) = app
        .post(
            &app.admin,
            &format!("/api/v1/quarantine/{id}/reprocess"),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["quarantined"], 1);
    let agent = app.agent("dana").await;
    assert_eq!(
        app.get(&agent, "/api/v1/quarantine").await.0,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_over_the_size_limit_is_kept_raw_and_shown_as_too_large() {
    let mut app = spawn_app(Db::Sqlite).await;
    app.restart_with(|s| s.max_email_mb = 1).await;
    let big_body = "0123456789abcdef ".repeat(100_000);
    let raw = email(
        "big@customer.test",
        "carol@customer.test",
        "A very big email",
        &big_body,
        "",
    );
    app.deliver(&raw).await;
    app.deliver(&email(
        "small@customer.test",
        "carol@customer.test",
        "A small one",
        "Hi",
        "",
    ))
    .await;
    wait_for_emails(&app, 2, "the big and the small email").await;

    let messages = all_messages(&app).await;
    let big = messages
        .iter()
        .find(|m| m["email"]["message_id"] == "big@customer.test")
        .unwrap();
    let text = big["text"].as_str().unwrap();
    assert!(
        text.contains("over the 1 MB limit"),
        "{}",
        &text[..text.len().min(300)]
    );
    assert_eq!(
        big["email"]["subject"], "A very big email",
        "headers are still read"
    );
    let original = &big["attachments"][0];
    assert_eq!(original["filename"], "original.eml");
    let (status, _, bytes) = app
        .get_bytes(&app.admin, original["url"].as_str().unwrap())
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(bytes.len(), raw.len(), "the original is kept byte for byte");
    assert!(bytes.ends_with(b"0123456789abcdef \r\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_replies_bounces_and_our_own_mail_do_not_open_conversations() {
    let app = spawn_app(Db::Sqlite).await;
    let agent = app.agent("alice").await;
    app.deliver(&email(
        "q@customer.test",
        "carol@customer.test",
        "Question",
        "Hi",
        "",
    ))
    .await;
    let conversation = app.first_queued(&agent).await;
    app.take(&agent, conversation).await;
    let path = format!("/api/v1/conversations/{conversation}/messages");
    let (_, reply) = app
        .post(
            &agent,
            &path,
            &json!({ "text": "Our answer", "via": "email" }),
        )
        .await;
    let sent = app.smtp.wait_for(1, Duration::from_secs(20)).await.unwrap();
    let ours = reply["email"]["message_id"].as_str().unwrap().to_owned();

    // Our own email, seen again in the mailbox (a copy, or Bcc to ourselves): not new.
    app.dovecot
        .append(SUPPORT, SUPPORT_PASSWORD, "INBOX", &sent[0].data)
        .await
        .unwrap();
    // The contact's vacation notice, threaded under our email: joins, does not re-queue.
    app.deliver(&email(
        "vacation@customer.test",
        "carol@customer.test",
        "Out of office: Re: Question",
        "I am away until Monday.",
        &format!("Auto-Submitted: auto-replied\r\nIn-Reply-To: <{ours}>\r\n"),
    ))
    .await;
    eventually("the auto-reply to join", || async {
        app.messages(&agent, conversation)
            .await
            .into_iter()
            .find(|m| m["email"]["message_id"] == "vacation@customer.test")
    })
    .await;
    let (_, closed) = app
        .post(
            &agent,
            &format!("/api/v1/conversations/{conversation}/close"),
            &json!({}),
        )
        .await;
    assert_eq!(closed["status"], "closed");

    // A bounce of our email: marks it failed, opens nothing.
    let bounce = format!(
        "From: Mail Delivery System <MAILER-DAEMON@mx.customer.test>\r\nTo: {SUPPORT}\r\nSubject: Undelivered Mail Returned to Sender\r\n\
         Date: Tue, 24 Nov 2026 10:05:00 +0000\r\nMessage-ID: <bounce1@mx.customer.test>\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"r\"\r\n\r\n\
         --r\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n\
         --r\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.customer.test\r\n\r\n\
         Final-Recipient: rfc822; carol@customer.test\r\nAction: failed\r\nStatus: 5.1.1\r\n\
         Diagnostic-Code: smtp; 550 5.1.1 <carol@customer.test>: Recipient address rejected: User unknown\r\n\r\n\
         --r\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: Example Support <{SUPPORT}>\r\nTo: carol@customer.test\r\n\
         Subject: Re: Question\r\nMessage-ID: <{ours}>\r\n\r\n--r--\r\n"
    );
    app.deliver(&bounce).await;
    let reply_id = reply["id"].as_i64().unwrap();
    let delivery = app
        .wait_for_delivery(&agent, conversation, reply_id, "failed")
        .await;
    assert!(
        delivery["error"].as_str().unwrap().contains("5.1.1"),
        "{delivery}"
    );

    tokio::time::sleep(Duration::from_millis(500)).await;
    let all = app.conversations(&app.admin, "").await;
    assert_eq!(
        all.len(),
        1,
        "no conversation was opened by our own email, the auto-reply or the bounce: {all:?}"
    );
    assert_eq!(
        all[0]["status"], "closed",
        "the auto-reply did not reopen it"
    );
    let lines: Vec<String> = app
        .messages(&agent, conversation)
        .await
        .iter()
        .map(|m| m["text"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("An email to the contact bounced")),
        "{lines:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_html_view_shows_inline_images_and_blocks_remote_ones_until_allowed() {
    use base64::Engine as _;
    let app = spawn_app(Db::Sqlite).await;
    let png: Vec<u8> = vec![0x89, b'P', b'N', b'G', 13, 10, 26, 10, 0, 0, 0, 13, 1, 2, 3];
    let encoded = base64::engine::general_purpose::STANDARD.encode(&png);
    let raw = format!(
        "From: Carol <carol@customer.test>\r\nTo: {SUPPORT}\r\nSubject: Screenshot\r\nMessage-ID: <html@customer.test>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/related; boundary=\"rel\"\r\n\r\n\
         --rel\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
         <p>See <img src=\"cid:shot@customer.test\" alt=\"shot\"> and <img src=\"https://tracker.invalid/p.gif\"></p><script>alert(1)</script>\r\n\
         --rel\r\nContent-Type: image/png\r\nContent-ID: <shot@customer.test>\r\nContent-Disposition: inline\r\nContent-Transfer-Encoding: base64\r\n\r\n{encoded}\r\n--rel--\r\n"
    );
    app.deliver(&raw).await;
    wait_for_emails(&app, 1, "the HTML email").await;
    let message = all_messages(&app)
        .await
        .into_iter()
        .find(|m| m["kind"] == "email_in")
        .unwrap();
    assert_eq!(message["remote_images"], true);
    let image = &message["attachments"][0];
    assert_eq!(image["inline"], true);
    assert_eq!(image["content_id"], "shot@customer.test");

    let path = format!("/api/v1/messages/{}/body.html", message["id"]);
    let (status, headers, body) = app.get_bytes(&app.admin, &path).await;
    assert_eq!(status, StatusCode::OK);
    let body = String::from_utf8(body).unwrap();
    assert!(
        body.contains(&format!("src=\"/api/v1/attachments/{}\"", image["id"])),
        "cid: mapped to the attachment: {body}"
    );
    assert!(!body.contains("<script"), "{body}");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    assert!(
        !csp.contains("script-src"),
        "no script source at all: {csp}"
    );
    assert!(
        !csp.contains("https:"),
        "remote images blocked by default: {csp}"
    );
    let (_, headers, _) = app.get_bytes(&app.admin, &format!("{path}?remote=1")).await;
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("https:"),
        "allowed on request"
    );
    let (_, _, bytes) = app
        .get_bytes(&app.admin, image["url"].as_str().unwrap())
        .await;
    assert_eq!(bytes, png);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_arrives_by_polling_from_a_server_without_idle() {
    let mut app = spawn_app(Db::Sqlite).await;
    app.dovecot
        .reconfigure("imap_capability = IMAP4rev1 LITERAL+ SASL-IR ID ENABLE UIDPLUS")
        .await
        .unwrap();
    // The reader reconnects to the restarted server, which no longer offers IDLE.
    app.deliver(&email(
        "polled1@customer.test",
        "carol@customer.test",
        "Polled",
        "Hi",
        "",
    ))
    .await;
    wait_for_emails(&app, 1, "the first email without IDLE").await;
    app.deliver(&email(
        "polled2@customer.test",
        "carol@customer.test",
        "Polled again",
        "Hi",
        "",
    ))
    .await;
    wait_for_emails(&app, 2, "the next email, found by the next poll").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_arriving_during_a_sync_is_fetched_without_waiting_for_the_next_wake() {
    let app = spawn_app(Db::Sqlite).await;
    let path = format!("/api/v1/inboxes/{}", app.inbox_id);
    let mut off = app.inbox_body(SUPPORT_PASSWORD);
    off["active"] = json!(false);
    assert_eq!(app.put(&app.admin, &path, &off).await.0, StatusCode::OK);
    for i in 0..600 {
        let raw = email(
            &format!("b{i}@customer.test"),
            "carol@customer.test",
            &format!("Backlog {i}"),
            "Hi",
            "",
        );
        app.dovecot
            .append(SUPPORT, SUPPORT_PASSWORD, "INBOX", raw.as_bytes())
            .await
            .unwrap();
    }
    assert_eq!(
        app.put(&app.admin, &path, &app.inbox_body(SUPPORT_PASSWORD))
            .await
            .0,
        StatusCode::OK
    );
    // Mid-sync: the reader has searched the mailbox and is busy with the backlog.
    eventually("the backlog to start", || async {
        (!app.conversations(&app.admin, "limit=1").await.is_empty()).then_some(())
    })
    .await;
    app.deliver(&email(
        "straggler@customer.test",
        "dave@customer.test",
        "Arrived mid-sync",
        "Hi",
        "",
    ))
    .await;
    // Well before the 5-minute IDLE re-issue, the only other thing that would wake the reader.
    eventually("the email that arrived mid-sync", || async {
        let all = app.conversations(&app.admin, "limit=1000").await;
        all.iter()
            .any(|c| c["subject"] == "Arrived mid-sync")
            .then_some(())
    })
    .await;
}

/// With Dovecot's push-notification plugin pointed at postdesk, a new email delivered over
/// LMTP wakes the reader at once. The server here has no IDLE and postdesk polls only hourly, so the second email
/// (delivered while the reader waits for its next poll) can only arrive through the push.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_from_dovecot_wakes_the_reader_at_once() {
    let mut app = spawn_app(Db::Sqlite).await;
    app.restart_with(|s| {
        s.poll_seconds = 3600;
        s.push_secret = Some("push-s3cret-0123456789".into());
    })
    .await;
    let hook = format!("{}/api/v1/hooks/dovecot-push", app.base);

    // The endpoint checks its secret and its input.
    let note = json!({"user": SUPPORT, "event": "messageNew", "folder": "INBOX"});
    let wrong = app
        .client
        .put(&hook)
        .basic_auth("push", Some("wrong"))
        .json(&note)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let garbage = app
        .client
        .put(&hook)
        .basic_auth("push", Some("push-s3cret-0123456789"))
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), StatusCode::BAD_REQUEST);
    let unknown = app
        .client
        .put(&hook)
        .basic_auth("push", Some("push-s3cret-0123456789"))
        .json(&json!({"user": "nobody@example.test"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NO_CONTENT);

    let url = hook.replacen("http://", "http://push:push-s3cret-0123456789@", 1);
    app.dovecot
        .reconfigure(&format!(
            "imap_capability = IMAP4rev1 LITERAL+ SASL-IR ID ENABLE UIDPLUS
mail_plugins = $mail_plugins notify push_notification
mail_attribute_dict = file:%h/dovecot-attributes
plugin {{
  push_notification_driver = ox:url={url}
}}"
        ))
        .await
        .unwrap();
    // The ox driver notifies for users who registered for it, in server metadata.
    app.doveadm(&[
        "mailbox",
        "metadata",
        "set",
        "-u",
        SUPPORT,
        "-s",
        "",
        "/private/vendor/vendor.dovecot/http-notify",
        &format!("user={SUPPORT}"),
    ]);

    app.dovecot
        .deliver_lmtp(
            SUPPORT,
            email(
                "pushed1@customer.test",
                "carol@customer.test",
                "Pushed",
                "Hi",
                "",
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    wait_for_emails(&app, 1, "the first email (reconnect sync or push)").await;
    app.dovecot
        .deliver_lmtp(
            SUPPORT,
            email(
                "pushed2@customer.test",
                "carol@customer.test",
                "Pushed again",
                "Hi",
                "",
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    wait_for_emails(
        &app,
        2,
        "the email brought by the push, not the hourly poll",
    )
    .await;
}

/// Files in a maildir folder (`cur` and `new`).
fn maildir_count(folder: &std::path::Path) -> usize {
    ["cur", "new"]
        .iter()
        .map(|sub| std::fs::read_dir(folder.join(sub)).map_or(0, Iterator::count))
        .sum()
}

/// With a folder to move to, an email leaves the mailbox once it is stored: the mailbox ends
/// empty, the folder (created by the reader) holds every email, and none is fetched twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_emails_are_moved_to_the_chosen_folder() {
    let app = spawn_app(Db::Sqlite).await;
    let path = format!("/api/v1/inboxes/{}", app.inbox_id);
    let mut body = app.inbox_body(SUPPORT_PASSWORD);
    body["imap"]["move_to"] = json!("INBOX");
    let (status, error) = app.put(&app.admin, &path, &body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    body["imap"]["move_to"] = json!("Processed");
    let (status, inbox) = app.put(&app.admin, &path, &body).await;
    assert_eq!(status, StatusCode::OK, "{inbox}");
    assert_eq!(inbox["imap"]["move_to"], "Processed");

    for i in 0..3 {
        app.deliver(&email(
            &format!("moved{i}@customer.test"),
            "carol@customer.test",
            &format!("Moved {i}"),
            "Hi",
            "",
        ))
        .await;
    }
    wait_for_emails(&app, 3, "the emails to be moved").await;
    let maildir = app.dovecot.maildir(SUPPORT);
    eventually("the mailbox emptied into the folder", || async {
        (maildir_count(&maildir) == 0 && maildir_count(&maildir.join(".Processed")) == 3)
            .then_some(())
    })
    .await;
    // A later email goes the same way, and nothing came in twice.
    app.deliver(&email(
        "moved3@customer.test",
        "carol@customer.test",
        "Moved 3",
        "Hi",
        "",
    ))
    .await;
    wait_for_emails(&app, 4, "the email after the move").await;
    eventually("the later email moved too", || async {
        (maildir_count(&maildir.join(".Processed")) == 4).then_some(())
    })
    .await;

    // A server without MOVE: COPY, \Deleted and UID EXPUNGE instead.
    let mut app = app;
    app.dovecot
        .reconfigure("imap_capability = IMAP4rev1 LITERAL+ SASL-IR ID ENABLE IDLE UIDPLUS")
        .await
        .unwrap();
    app.deliver(&email(
        "moved4@customer.test",
        "carol@customer.test",
        "Moved 4",
        "Hi",
        "",
    ))
    .await;
    wait_for_emails(&app, 5, "the email on a server without MOVE").await;
    eventually("the email moved without MOVE", || async {
        (maildir_count(&maildir) == 0 && maildir_count(&maildir.join(".Processed")) == 5)
            .then_some(())
    })
    .await;
    assert_eq!(count_email_in(&app).await, 5);
}
