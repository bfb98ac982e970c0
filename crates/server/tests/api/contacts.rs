//! Contacts' data: an admin exports everything stored about a contact (their raw emails
//! included) or deletes it, leaving other contacts' data (and bytes they share) intact, and
//! inboxes' retention periods delete old closed conversations; each is in the audit log.

use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    Db, SUPPORT_PASSWORD, TestApp, email, email_with_attachment, eventually, spawn_app,
};

const SHARED: &[u8] = b"%PDF-1.4 the same price list for everyone";

/// Waits until `n` conversations are queued; returns them.
async fn queued(app: &TestApp, n: usize) -> Vec<Value> {
    eventually(&format!("{n} queued conversations"), || async {
        let list = app.conversations(&app.admin, "status=queued").await;
        (list.len() == n).then_some(list)
    })
    .await
}

/// The ids of the conversations of `address`, oldest first.
fn of(conversations: &[Value], address: &str) -> Vec<i64> {
    let mut ids: Vec<i64> = conversations
        .iter()
        .filter(|c| c["contact"]["email"] == address)
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    ids.sort_unstable();
    ids
}

async fn a_contacts_data_is_exported_then_deleted_leaving_others_intact(db: Db) {
    let app = spawn_app(db).await;
    app.deliver(&email_with_attachment(
        "c1@c.test",
        "carol@c.test",
        "Price list",
        "See the attached price list",
        "prices.pdf",
        SHARED,
    ))
    .await;
    app.deliver(&email(
        "c2@c.test",
        "carol@c.test",
        "Question",
        "And one more thing",
        "",
    ))
    .await;
    app.deliver(&email_with_attachment(
        "d1@c.test",
        "dan@c.test",
        "Same list",
        "I got this one too",
        "prices.pdf",
        SHARED,
    ))
    .await;
    let conversations = queued(&app, 3).await;
    let carols = of(&conversations, "carol@c.test");
    let dans = of(&conversations, "dan@c.test");
    assert_eq!((carols.len(), dans.len()), (2, 1), "{conversations:?}");
    let carol = conversations
        .iter()
        .find(|c| c["contact"]["email"] == "carol@c.test")
        .unwrap()["contact"]["id"]
        .as_i64()
        .unwrap();
    let dans_file = app.messages(&app.admin, dans[0]).await[0]["attachments"][0]["id"]
        .as_i64()
        .unwrap();

    // Admins only.
    let agent = app.agent("alice").await;
    let (status, _) = app
        .get(&agent, &format!("/api/v1/contacts/{carol}/export"))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app
        .delete(&agent, &format!("/api/v1/contacts/{carol}"))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Export: one file with both conversations, their messages and the emails as received.
    let (status, headers, bytes) = app
        .get_bytes(&app.admin, &format!("/api/v1/contacts/{carol}/export"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers["content-disposition"],
        format!("attachment; filename=\"contact-{carol}.json\"").as_str()
    );
    let text = String::from_utf8(bytes).unwrap();
    assert!(!text.contains(SUPPORT_PASSWORD), "no secret in the export");
    let export: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(export["contact"]["id"], carol);
    assert_eq!(export["contact"]["email"], "carol@c.test");
    let exported: Vec<i64> = export["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    assert_eq!(exported, carols);
    let texts: Vec<&str> = export["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["messages"].as_array().unwrap())
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert!(
        texts
            .iter()
            .any(|t| t.contains("See the attached price list"))
            && texts.iter().any(|t| t.contains("And one more thing")),
        "{texts:?}"
    );
    let files: Vec<&Value> = export["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["messages"].as_array().unwrap())
        .flat_map(|m| m["attachments"].as_array().unwrap())
        .collect();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0]["filename"], "prices.pdf");
    let raws: Vec<String> = export["raw_emails"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let eml = base64::engine::general_purpose::STANDARD
                .decode(r["eml_base64"].as_str().unwrap())
                .unwrap();
            assert_eq!(r["size"].as_u64().unwrap(), eml.len() as u64);
            String::from_utf8_lossy(&eml).into_owned()
        })
        .collect();
    assert_eq!(raws.len(), 2, "her two emails, not Dan's");
    assert!(raws[0].contains("Message-ID: <c1@c.test>"), "{}", raws[0]);
    assert!(raws[1].contains("Message-ID: <c2@c.test>"), "{}", raws[1]);

    // Delete: everything of hers goes, the price list's bytes stay for Dan.
    let (status, report) = app
        .delete(&app.admin, &format!("/api/v1/contacts/{carol}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(
        report,
        json!({ "conversations": 2, "messages": 2, "attachments": 1, "raw_emails": 2, "blobs": 2 })
    );
    for conversation in &carols {
        let (status, _) = app
            .get(&app.admin, &format!("/api/v1/conversations/{conversation}"))
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let (status, body) = app
        .get(&app.admin, &format!("/api/v1/contacts/{carol}/export"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "contact not found");
    let (status, _) = app
        .delete(&app.admin, &format!("/api/v1/contacts/{carol}"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app
        .get(&app.admin, &format!("/api/v1/conversations/{}", dans[0]))
        .await;
    assert_eq!(status, StatusCode::OK, "Dan's conversation stays");
    let (status, _, bytes) = app
        .get_bytes(&app.admin, &format!("/api/v1/attachments/{dans_file}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(bytes, SHARED, "Dan's file, byte for byte");

    // Both are in the audit log, with counts only.
    let (status, audit) = app.get(&app.admin, "/api/v1/audit?action=contact").await;
    assert_eq!(status, StatusCode::OK, "{audit}");
    let entries = audit["entries"].as_array().unwrap();
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        vec!["contact.delete", "contact.export"],
        "newest first"
    );
    for entry in entries {
        assert_eq!(entry["target"], format!("contact:{carol}"));
        assert_eq!(entry["actor"], "admin");
    }
    assert_eq!(entries[0]["details"]["conversations"], 2);
    assert_eq!(entries[1]["details"]["raw_emails"], 2);
    assert!(!audit.to_string().contains("carol@c.test"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contacts_data_is_exported_then_deleted_leaving_others_intact_on_sqlite() {
    a_contacts_data_is_exported_then_deleted_leaving_others_intact(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contacts_data_is_exported_then_deleted_leaving_others_intact_on_postgres() {
    a_contacts_data_is_exported_then_deleted_leaving_others_intact(Db::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_conversations_past_the_inboxs_retention_period_are_deleted_and_recorded() {
    let app = spawn_app(Db::Sqlite).await;
    let path = format!("/api/v1/inboxes/{}", app.inbox_id);
    assert!(
        app.inbox().await["retention_days"].is_null(),
        "kept forever by default"
    );
    let mut body = app.inbox_body(SUPPORT_PASSWORD);
    body["retention_days"] = json!(0);
    let (status, refused) = app.put(&app.admin, &path, &body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    body["retention_days"] = json!(30);
    let (status, inbox) = app.put(&app.admin, &path, &body).await;
    assert_eq!(status, StatusCode::OK, "{inbox}");
    assert_eq!(inbox["retention_days"], 30);
    assert_eq!(app.inbox().await["retention_days"], 30);

    app.deliver(&email("old@c.test", "carol@c.test", "Old", "Long ago", ""))
        .await;
    app.deliver(&email("new@c.test", "dan@c.test", "New", "Just now", ""))
        .await;
    let conversations = queued(&app, 2).await;
    let old = of(&conversations, "carol@c.test")[0];
    let new = of(&conversations, "dan@c.test")[0];
    app.take(&app.admin, old).await;
    let (status, closed) = app
        .post(
            &app.admin,
            &format!("/api/v1/conversations/{old}/close"),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{closed}");
    let store = app.store().await;
    let nothing = postdesk::retention::run_retention_once(&store)
        .await
        .unwrap();
    assert!(nothing.is_empty(), "closed just now: {nothing:?}");

    // Closed 31 days ago.
    let long_ago = postdesk_store::now_ms() - 31 * 86_400_000;
    sqlx::query("UPDATE conversations SET closed_at = $1 WHERE id = $2")
        .bind(long_ago)
        .bind(old)
        .execute(store.raw_pool())
        .await
        .unwrap();
    let report = postdesk::retention::run_retention_once(&store)
        .await
        .unwrap();
    assert_eq!(report.total().conversations, 1, "{report:?}");
    let (status, _) = app
        .get(&app.admin, &format!("/api/v1/conversations/{old}"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app
        .get(&app.admin, &format!("/api/v1/conversations/{new}"))
        .await;
    assert_eq!(status, StatusCode::OK, "a queued conversation stays");

    let (status, audit) = app.get(&app.admin, "/api/v1/audit?action=retention").await;
    assert_eq!(status, StatusCode::OK, "{audit}");
    let entries = audit["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{audit}");
    assert_eq!(entries[0]["action"], "retention.delete");
    assert_eq!(entries[0]["actor"], "postdesk");
    assert!(entries[0]["actor_id"].is_null());
    let inboxes = &entries[0]["details"]["inboxes"];
    assert_eq!(inboxes[0]["inbox_id"], app.inbox_id);
    assert_eq!(inboxes[0]["retention_days"], 30);
    assert_eq!(inboxes[0]["deleted"]["conversations"], 1);
    assert_eq!(inboxes[0]["deleted"]["raw_emails"], 1);
    assert!(
        postdesk::retention::run_retention_once(&store)
            .await
            .unwrap()
            .is_empty(),
        "nothing more to delete"
    );
}
