//! Drafts, on SQLite and PostgreSQL: one per agent and conversation, replaced on each save,
//! deleted on demand, and gone with their conversation when its contact is deleted or the
//! inbox's retention period deletes it.

#[macro_use]
mod common;

use common::{count, inbox_settings, new_conversation, user};
use postdesk_core::ids::{ConversationId, MessageId, UserId};
use postdesk_core::model::Role;
use postdesk_store::{DraftContent, Store, now_ms};

contract!(
    a_draft_is_kept_per_agent_and_conversation_replaced_and_deleted,
    drafts_go_with_their_conversation_when_its_contact_is_deleted_or_it_expires,
);

fn content(text: &str) -> DraftContent {
    DraftContent {
        text: text.into(),
        via: "email".into(),
        to: None,
        cc: None,
        bcc: None,
        in_reply_to_message_id: None,
        format: "markdown".into(),
    }
}

async fn drafts_in_database(store: &Store) -> i64 {
    count(store, "SELECT COUNT(*) AS n FROM drafts").await
}

async fn a_draft_is_kept_per_agent_and_conversation_replaced_and_deleted(store: Store) {
    let inbox = store
        .create_inbox(&inbox_settings("support@example.test"))
        .await
        .unwrap()
        .id;
    let ann = user(&store, "ann", Role::Agent).await.id;
    let bob = user(&store, "bob", Role::Agent).await.id;
    let (first, email) = new_conversation(&store, inbox, 1, ("a@c.test", "carol@c.test")).await;
    let (second, _) = new_conversation(&store, inbox, 2, ("b@c.test", "dan@c.test")).await;
    assert_eq!(store.find_draft(ann, first).await.unwrap(), None);

    let anns = DraftContent {
        text: "Dear Carol,".into(),
        via: "email".into(),
        to: Some(vec!["Carol <carol@c.test>".into(), "not an address".into()]),
        cc: Some(vec![]),
        bcc: None,
        in_reply_to_message_id: Some(email),
        format: "text".into(),
    };
    let saved = store.save_draft(ann, first, &anns).await.unwrap();
    assert_eq!(saved.content, anns);
    store
        .save_draft(bob, first, &content("Bob's note"))
        .await
        .unwrap();
    store
        .save_draft(ann, second, &content("Ann in the second"))
        .await
        .unwrap();

    // Each agent reads their own, as saved (an empty Cc stays empty, no Bcc stays null).
    let found = store.find_draft(ann, first).await.unwrap().unwrap();
    assert_eq!(found, saved);
    let theirs = |user: UserId, conversation: ConversationId| {
        let store = store.clone();
        async move {
            store
                .find_draft(user, conversation)
                .await
                .unwrap()
                .map(|d| d.content.text)
        }
    };
    assert_eq!(theirs(bob, first).await.as_deref(), Some("Bob's note"));
    assert_eq!(
        theirs(ann, second).await.as_deref(),
        Some("Ann in the second")
    );
    assert_eq!(theirs(bob, second).await, None);

    // A save replaces the whole draft.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let mut internal = content("Dear Carol, thanks");
    internal.via = "internal".into();
    internal.in_reply_to_message_id = Some(MessageId(email.0));
    let replaced = store.save_draft(ann, first, &internal).await.unwrap();
    assert!(replaced.updated_at > saved.updated_at);
    assert_eq!(
        store.find_draft(ann, first).await.unwrap(),
        Some(replaced),
        "no field of the draft before is left"
    );
    assert_eq!(drafts_in_database(&store).await, 3);

    // Deleting one leaves the others.
    assert!(store.delete_draft(ann, first).await.unwrap());
    assert!(!store.delete_draft(ann, first).await.unwrap());
    assert_eq!(store.find_draft(ann, first).await.unwrap(), None);
    assert_eq!(theirs(bob, first).await.as_deref(), Some("Bob's note"));
    assert_eq!(drafts_in_database(&store).await, 2);
}

async fn drafts_go_with_their_conversation_when_its_contact_is_deleted_or_it_expires(store: Store) {
    const DAY: i64 = 86_400_000;
    let mut settings = inbox_settings("support@example.test");
    settings.retention_days = Some(30);
    let inbox = store.create_inbox(&settings).await.unwrap().id;
    let ann = user(&store, "ann", Role::Agent).await;
    let (carols, _) = new_conversation(&store, inbox, 1, ("a@c.test", "carol@c.test")).await;
    let (dans, _) = new_conversation(&store, inbox, 2, ("b@c.test", "dan@c.test")).await;
    let (kept, _) = new_conversation(&store, inbox, 3, ("c@c.test", "erin@c.test")).await;
    for conversation in [carols, dans, kept] {
        store
            .save_draft(ann.id, conversation, &content("unsent words"))
            .await
            .unwrap();
    }

    // Carol's data is deleted: her conversation's draft goes with it.
    let carol = store
        .find_conversation(carols)
        .await
        .unwrap()
        .unwrap()
        .contact
        .id;
    store
        .delete_contact(carol)
        .await
        .unwrap()
        .expect("Carol is known");
    assert_eq!(store.find_draft(ann.id, carols).await.unwrap(), None);
    assert_eq!(drafts_in_database(&store).await, 2);

    // Dan's conversation, closed long ago, expires: its draft goes too.
    store.take_conversation(dans, &ann).await.unwrap();
    store.close_conversation(dans, &ann, None).await.unwrap();
    sqlx::query("UPDATE conversations SET closed_at = $1 WHERE id = $2")
        .bind(now_ms() - 31 * DAY)
        .bind(dans.0)
        .execute(store.raw_pool())
        .await
        .unwrap();
    store.delete_expired_conversations(now_ms()).await.unwrap();
    assert_eq!(store.find_conversation(dans).await.unwrap(), None);
    assert_eq!(store.find_draft(ann.id, dans).await.unwrap(), None);

    // The rest stays.
    assert_eq!(drafts_in_database(&store).await, 1);
    assert!(store.find_draft(ann.id, kept).await.unwrap().is_some());
}
