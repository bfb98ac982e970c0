//! The store contract: every behaviour the rest of postdesk relies on, run against SQLite and
//! against PostgreSQL (a fresh database per test on 127.0.0.1:5432).

use postdesk_core::delivery::SendOutcome;
use postdesk_core::ids::{ContactId, ConversationId};
use postdesk_core::model::{ConversationStatus, DeliveryStatus, InboxState, MessageKind, Role};
#[macro_use]
mod common;

use common::{count, inbox_settings, incoming, user};
use postdesk_store::{
    Addr, AuditFilter, Author, ConversationFilter, DeletionReport, IncomingEmail, IngestOutcome,
    NewAttachment, NewAuditEntry, NewSession, NewUser, QueuedEmail, Store, StoreError,
    StoreFetched, TakeError, User, now_ms,
};

contract!(
    a_delay_notice_marks_our_email_delayed_and_never_undoes_a_failure,
    users_are_unique_and_sessions_expire,
    deactivating_a_user_ends_their_sessions,
    users_are_found_by_email_and_their_roles_set_for_single_sign_on,
    inboxes_keep_settings_and_health,
    fetched_emails_are_stored_once_and_advance_the_watermark,
    a_new_email_opens_a_queued_conversation,
    replies_thread_by_in_reply_to_and_references_including_our_own_emails,
    our_email_keeps_its_bcc_and_html_for_the_agents,
    an_email_is_not_queued_after_newer_emails_than_the_one_seen,
    of_five_agents_sending_at_once_after_the_same_email_exactly_one_sends,
    a_message_id_seen_before_is_not_added_twice,
    quarantined_emails_keep_their_bytes_and_can_be_requeued,
    exactly_one_of_many_concurrent_takes_wins,
    members_internal_messages_and_uploads,
    closing_and_a_new_email_reopens_into_the_queue,
    outbox_rows_are_claimed_once_and_record_their_outcome,
    conversations_are_filtered_by_status_assignee_member_and_contact,
    an_auto_reply_joins_its_conversation_without_reopening_it,
    an_email_after_the_reopen_window_opens_a_follow_up,
    a_bounce_of_our_email_marks_it_failed,
    a_too_large_email_carries_its_original_bytes,
    a_raw_email_is_processed_once_when_processors_race,
    emails_received_over_smtp_are_stored_raw_each_as_its_own_pending_row,
    a_batch_threads_dedups_and_reopens_as_one_email_after_another_would,
    large_raw_emails_are_read_back_whole_and_batches_are_bounded_by_bytes,
    two_processors_racing_over_overlapping_batches_add_each_email_once,
    sessions_are_listed_and_ended_one_by_one_or_by_a_password_change,
    departments_decide_what_a_list_shows_each_role,
    a_previous_assignee_is_no_member_once_someone_else_takes_it,
    a_closed_conversation_is_reopened_to_whoever_reopens_it,
    the_audit_log_is_append_only_and_counts_failed_sign_ins,
    a_contacts_export_holds_their_conversations_messages_and_raw_emails,
    deleting_a_contact_removes_all_of_theirs_and_keeps_bytes_another_contact_shares,
    retention_deletes_only_closed_conversations_older_than_their_inboxs_period,
    sender_auth_verdicts_round_trip_and_a_dmarc_failure_marks_the_conversation,
    emails_received_over_smtp_are_told_apart_from_fetched_ones,
    oauth_providers_keep_their_settings_and_cannot_be_deleted_while_used,
    oauth_tokens_keep_a_rotated_refresh_token_and_one_refresh_holds_the_lease,
    a_refused_refresh_needs_reauth_until_the_inbox_is_connected_again,
    a_connection_under_way_is_taken_once_and_not_after_it_expired,
    an_email_waiting_for_a_reconnect_keeps_its_attempts_and_is_due_once_connected,
    tags_are_set_replaced_and_filter_the_list_within_what_one_may_see,
    search_ranks_a_subject_match_first_and_finds_message_text_and_contacts,
    search_keeps_in_step_with_batches_internal_messages_deletions_and_retention,
    an_agent_finds_only_what_they_may_open,
    search_input_with_full_text_syntax_never_fails,
);

// Fixture builders (Arrange helpers).

async fn session(
    store: &Store,
    user: postdesk_core::ids::UserId,
    token_hash: &str,
    expires_at: i64,
) -> postdesk_core::ids::SessionId {
    store
        .create_session(&NewSession {
            user_id: user,
            token_hash: token_hash.into(),
            expires_at,
            ip: "192.0.2.7".into(),
            user_agent: "contract test".into(),
            method: "password".into(),
        })
        .await
        .unwrap()
}

/// The inbox most tests use.
async fn support_inbox(store: &Store) -> postdesk_core::ids::InboxId {
    store
        .create_inbox(&inbox_settings("support@example.test"))
        .await
        .unwrap()
        .id
}

/// Stores each of `emails` as fetched from INBOX (UIDVALIDITY `validity`), with UIDs from
/// `first_uid` on, in one batch, moving the watermark past the last.
async fn store_raws(
    store: &Store,
    inbox: postdesk_core::ids::InboxId,
    validity: u32,
    first_uid: u32,
    emails: Vec<Vec<u8>>,
) {
    let fetched: Vec<StoreFetched> = (first_uid..)
        .zip(emails)
        .map(|(uid, bytes)| StoreFetched { uid, bytes })
        .collect();
    let next_uid = fetched.last().map_or(first_uid, |f| f.uid + 1);
    store
        .store_fetched(inbox, "INBOX", validity, fetched, next_uid)
        .await
        .unwrap();
}

/// Stores `email` as fetched UID `uid` and ingests it.
async fn deliver(
    store: &Store,
    inbox: postdesk_core::ids::InboxId,
    uid: u32,
    email: &IncomingEmail,
) -> IngestOutcome {
    let raw = format!("raw {uid} {}", email.message_id).into_bytes();
    store_raws(store, inbox, 7, uid, vec![raw]).await;
    let pending = store.pending_raw(Some(inbox), 10).await.unwrap();
    let raw = pending.last().expect("a pending raw email");
    store.ingest_email(raw.id, inbox, email).await.unwrap()
}

fn added(outcome: &IngestOutcome) -> (ConversationId, postdesk_core::ids::MessageId, bool) {
    match outcome {
        IngestOutcome::Added {
            conversation_id,
            message_id,
            new_conversation,
            ..
        } => (*conversation_id, *message_id, *new_conversation),
        IngestOutcome::Duplicate | IngestOutcome::AlreadyHandled => {
            panic!("expected the email to be added: {outcome:?}")
        }
    }
}

/// Delivers a new email as UID `uid` (Message-ID `message_id`, from `from`), then `agent`
/// takes its conversation and closes it; returns the conversation.
async fn closed_conversation(
    store: &Store,
    inbox: postdesk_core::ids::InboxId,
    uid: u32,
    (message_id, from): (&str, &str),
    agent: &User,
) -> ConversationId {
    let (conversation, _, _) =
        added(&deliver(store, inbox, uid, &incoming(message_id, from, "Hi")).await);
    store.take_conversation(conversation, agent).await.unwrap();
    store
        .close_conversation(conversation, agent, None)
        .await
        .unwrap();
    conversation
}

// The contract.

async fn users_are_unique_and_sessions_expire(store: Store) {
    let alice = user(&store, "alice", Role::Admin).await;
    assert_eq!(alice.roles, vec![Role::Admin]);
    assert!(alice.active);

    let again = store
        .create_user(&NewUser {
            username: "alice".into(),
            name: "Other".into(),
            email: "x@y".into(),
            password_hash: "h".into(),
            roles: vec![Role::Agent],
        })
        .await;
    assert!(
        matches!(again, Err(StoreError::Conflict(_))),
        "duplicate username: {again:?}"
    );

    let (found, hash) = store.find_user_credentials("alice").await.unwrap().unwrap();
    assert_eq!(found, alice);
    assert_eq!(hash, "$argon2id$fake");
    assert!(
        store
            .find_user_credentials("nobody")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.count_users().await.unwrap(), 1);

    session(&store, alice.id, "live", now_ms() + 60_000).await;
    session(&store, alice.id, "dead", now_ms() - 1).await;
    let found = store.find_session_user("live").await.unwrap().unwrap();
    assert_eq!(found.user, alice);
    assert_eq!(found.session.ip, "192.0.2.7");
    assert_eq!(found.departments, vec![]);
    assert_eq!(store.find_session_user("dead").await.unwrap(), None);
    assert_eq!(store.purge_expired_sessions().await.unwrap(), 1);
    store.delete_session("live").await.unwrap();
    assert_eq!(store.find_session_user("live").await.unwrap(), None);
}

async fn deactivating_a_user_ends_their_sessions(store: Store) {
    let bob = user(&store, "bob", Role::Agent).await;
    session(&store, bob.id, "t", now_ms() + 60_000).await;
    store.set_user_active(bob.id, false).await.unwrap();
    assert_eq!(store.find_session_user("t").await.unwrap(), None);
    assert!(!store.find_user(bob.id).await.unwrap().unwrap().active);
}

async fn users_are_found_by_email_and_their_roles_set_for_single_sign_on(store: Store) {
    // user() gives each the address {username}@agents.test.
    let old = user(&store, "ana", Role::Agent).await;
    store.set_user_active(old.id, false).await.unwrap();
    assert_eq!(
        store
            .find_user_by_email("ANA@Agents.Test")
            .await
            .unwrap()
            .map(|u| u.id),
        Some(old.id),
        "case-insensitive; a deactivated user is found (and refused), not made anew"
    );
    let active = store
        .create_user(&NewUser {
            username: "ana2".into(),
            name: "Ana again".into(),
            email: "ana@agents.test".into(),
            password_hash: "$argon2id$fake".into(),
            roles: vec![Role::Agent],
        })
        .await
        .unwrap();
    let found = store
        .find_user_by_email(" ana@agents.test ")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        found.id, active.id,
        "the active one of two with the address"
    );
    let no_email = store
        .create_user(&NewUser {
            username: "noemail".into(),
            name: "No email".into(),
            email: String::new(),
            password_hash: "$argon2id$fake".into(),
            roles: vec![Role::Agent],
        })
        .await
        .unwrap();
    assert_eq!(store.find_user_by_email("").await.unwrap(), None);
    assert_eq!(store.find_user_by_email("   ").await.unwrap(), None);
    assert_eq!(
        store
            .find_user_by_email("nobody@agents.test")
            .await
            .unwrap(),
        None
    );

    store
        .set_user_roles(active.id, &[Role::Admin, Role::Manager])
        .await
        .unwrap();
    let mut roles = store.find_user(active.id).await.unwrap().unwrap().roles;
    roles.sort_by_key(|r| r.as_str());
    assert_eq!(roles, vec![Role::Admin, Role::Manager]);
    assert_eq!(
        store.find_user(no_email.id).await.unwrap().unwrap().roles,
        vec![Role::Agent],
        "nobody else's roles change"
    );
    let unknown = postdesk_core::ids::UserId(active.id.0 + 1000);
    assert!(matches!(
        store.set_user_roles(unknown, &[Role::Agent]).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn inboxes_keep_settings_and_health(store: Store) {
    let settings = inbox_settings("support@example.test");
    let inbox = store.create_inbox(&settings).await.unwrap();
    assert_eq!(
        inbox.settings, settings,
        "every setting round-trips, the encrypted password bytes included"
    );
    assert_eq!(inbox.settings.smtp.port, 587);
    assert_eq!(inbox.status.state, InboxState::Connecting);

    let dup = store.create_inbox(&settings).await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");

    assert_eq!(inbox.settings.imap_move_to, None);
    assert_eq!(
        inbox.settings.retention_days, None,
        "kept forever by default"
    );

    let mut changed = settings.clone();
    changed.active = false;
    changed.smtp.tls_verify = false;
    changed.imap_move_to = Some("Processed".into());
    changed.retention_days = Some(90);
    let updated = store.update_inbox(inbox.id, &changed).await.unwrap();
    assert_eq!(
        updated.settings, changed,
        "the changed settings are stored and the others stay"
    );

    store
        .set_inbox_status(inbox.id, InboxState::Error, Some("login refused"), false)
        .await
        .unwrap();
    let errored = store.find_inbox(inbox.id).await.unwrap().unwrap().status;
    assert_eq!(errored.state, InboxState::Error);
    assert_eq!(errored.last_error.as_deref(), Some("login refused"));
    assert_eq!(errored.last_sync_at, None);

    store
        .set_inbox_status(inbox.id, InboxState::Idle, None, true)
        .await
        .unwrap();
    let healthy = store.find_inbox(inbox.id).await.unwrap().unwrap().status;
    assert_eq!(healthy.state, InboxState::Idle);
    assert_eq!(
        healthy.last_error, None,
        "a successful sync clears the error"
    );
    assert!(healthy.last_sync_at.is_some());
    assert_eq!(store.list_inboxes().await.unwrap().len(), 1);
}

async fn fetched_emails_are_stored_once_and_advance_the_watermark(store: Store) {
    let inbox = support_inbox(&store).await;
    assert_eq!(store.find_sync_state(inbox, "INBOX").await.unwrap(), None);
    store.reset_sync_state(inbox, "INBOX", 42).await.unwrap();
    assert_eq!(
        store.find_sync_state(inbox, "INBOX").await.unwrap(),
        Some((42, 1))
    );

    let batch = vec![
        StoreFetched {
            uid: 1,
            bytes: b"one".to_vec(),
        },
        StoreFetched {
            uid: 2,
            bytes: vec![0, 159, 146, 150, 13, 10],
        },
    ];
    assert_eq!(
        store
            .store_fetched(inbox, "INBOX", 42, batch.clone(), 3)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .store_fetched(inbox, "INBOX", 42, batch.clone(), 3)
            .await
            .unwrap(),
        0,
        "same UIDs again"
    );
    assert_eq!(
        store.find_sync_state(inbox, "INBOX").await.unwrap(),
        Some((42, 3))
    );
    store
        .store_fetched(inbox, "INBOX", 42, vec![], 2)
        .await
        .unwrap();
    assert_eq!(
        store.find_sync_state(inbox, "INBOX").await.unwrap(),
        Some((42, 3)),
        "the watermark never goes back"
    );

    let pending = store.pending_raw(Some(inbox), 10).await.unwrap();
    assert_eq!(pending.len(), 2);
    assert_eq!(
        pending[1].bytes,
        vec![0, 159, 146, 150, 13, 10],
        "bytes kept exactly"
    );
    assert_eq!(store.count_raw(inbox, "new").await.unwrap(), 2);
}

async fn a_new_email_opens_a_queued_conversation(store: Store) {
    let inbox = support_inbox(&store).await;
    let mut email = incoming(
        "first@contact.test",
        "Carol@Contact.TEST",
        "Printer on fire",
    );
    email.html = Some("<p>help</p>".into());
    email.attachments = vec![NewAttachment {
        filename: "photo.png".into(),
        content_type: "image/png".into(),
        content_id: Some("img1@contact.test".into()),
        inline: true,
        bytes: vec![137, 80, 78, 71, 0, 1, 2],
    }];
    let (conversation, message, new) = added(&deliver(&store, inbox, 1, &email).await);
    assert!(new);

    let queued = store
        .list_conversations(&ConversationFilter {
            status: Some(ConversationStatus::Queued),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].id, conversation);
    assert_eq!(queued[0].subject, "Printer on fire");
    assert_eq!(
        queued[0].contact.email, "carol@contact.test",
        "contact address normalised"
    );
    assert_eq!(queued[0].contact.name, "Carol Contact");

    let messages = store.list_messages(conversation).await.unwrap();
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    assert_eq!(m.id, message);
    assert_eq!(m.kind, MessageKind::EmailIn);
    assert_eq!(m.html.as_deref(), Some("<p>help</p>"));
    let meta = m.email.as_ref().unwrap();
    assert_eq!(meta.message_id, "first@contact.test");
    assert_eq!(meta.thread_reason.as_deref(), Some("new conversation"));
    assert_eq!(meta.to[0].email, "support@example.test");
    assert_eq!(m.attachments.len(), 1);
    let (attachment, in_conversation, bytes) = store
        .find_attachment(m.attachments[0].id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(in_conversation, conversation);
    assert_eq!(bytes, vec![137, 80, 78, 71, 0, 1, 2]);
    assert!(attachment.inline);
    assert_eq!(attachment.content_id.as_deref(), Some("img1@contact.test"));
    assert_eq!(
        store.pending_raw(Some(inbox), 10).await.unwrap().len(),
        0,
        "processed emails are not pending"
    );
}

async fn replies_thread_by_in_reply_to_and_references_including_our_own_emails(store: Store) {
    let inbox = support_inbox(&store).await;
    let agent = user(&store, "alice", Role::Agent).await;
    let (conversation, _, _) = added(
        &deliver(
            &store,
            inbox,
            1,
            &incoming("a@c.test", "carol@c.test", "Help"),
        )
        .await,
    );

    // Our own reply, then the contact answers it: In-Reply-To names our Message-ID.
    store
        .queue_email(conversation, agent.id, &queued("ours@example.test", None))
        .await
        .unwrap();
    let mut reply = incoming("b@c.test", "carol@c.test", "Re: Help");
    reply.in_reply_to = Some("ours@example.test".into());
    let (joined, _, new) = added(&deliver(&store, inbox, 2, &reply).await);
    assert_eq!(joined, conversation);
    assert!(!new);

    // A client that only sends References, newest last; unknown ids are skipped.
    let mut later = incoming("c@c.test", "carol@c.test", "Re: Help");
    later.references = vec!["a@c.test".into(), "unknown@nowhere".into()];
    let (joined, message, _) = added(&deliver(&store, inbox, 3, &later).await);
    assert_eq!(joined, conversation);
    let m = store.find_message(message).await.unwrap().unwrap();
    assert_eq!(
        m.email.unwrap().thread_reason.as_deref(),
        Some("references <a@c.test>")
    );

    // Same subject, no thread headers: a new conversation, never guessed by subject.
    let (other, _, new) = added(
        &deliver(
            &store,
            inbox,
            4,
            &incoming("d@c.test", "carol@c.test", "Re: Help"),
        )
        .await,
    );
    assert!(new);
    assert_ne!(other, conversation);
}

async fn a_message_id_seen_before_is_not_added_twice(store: Store) {
    let inbox = support_inbox(&store).await;
    let email = incoming("same@c.test", "carol@c.test", "Hello");
    added(&deliver(&store, inbox, 1, &email).await);
    // The same email under another UID (a UIDVALIDITY change, or a copy in the mailbox).
    assert_eq!(
        deliver(&store, inbox, 2, &email).await,
        IngestOutcome::Duplicate
    );
    let all = store
        .list_conversations(&ConversationFilter::default())
        .await
        .unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(store.list_messages(all[0].id).await.unwrap().len(), 1);
    assert_eq!(store.count_raw(inbox, "duplicate").await.unwrap(), 1);

    // Another email that reuses the Message-ID (some mailers send a constant one) is not a
    // duplicate: it is added, never dropped.
    let mut reused = incoming("same@c.test", "carol@c.test", "Hello again");
    reused.text = "A different question".into();
    added(&deliver(&store, inbox, 3, &reused).await);
    assert_eq!(store.count_raw(inbox, "duplicate").await.unwrap(), 1);
    // Both copies of it seen again are duplicates.
    assert_eq!(
        deliver(&store, inbox, 4, &reused).await,
        IngestOutcome::Duplicate
    );
    assert_eq!(
        deliver(&store, inbox, 5, &email).await,
        IngestOutcome::Duplicate
    );
    assert_eq!(store.count_raw(inbox, "duplicate").await.unwrap(), 3);
}

async fn quarantined_emails_keep_their_bytes_and_can_be_requeued(store: Store) {
    let inbox = support_inbox(&store).await;
    store_raws(&store, inbox, 1, 9, vec![b"\x00garbage".to_vec()]).await;
    let raw = store.pending_raw(None, 10).await.unwrap().remove(0);
    store
        .quarantine_raw(raw.id, "no header section")
        .await
        .unwrap();
    assert!(store.pending_raw(None, 10).await.unwrap().is_empty());
    let listed = store.list_quarantined().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].reason, "no header section");
    assert_eq!(listed[0].uid, 9);
    assert_eq!(
        store.find_raw(raw.id).await.unwrap().unwrap().bytes,
        b"\x00garbage"
    );
    store.requeue_raw(raw.id).await.unwrap();
    assert_eq!(store.pending_raw(None, 10).await.unwrap().len(), 1);
    assert!(matches!(
        store.requeue_raw(raw.id).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn exactly_one_of_many_concurrent_takes_wins(store: Store) {
    let inbox = support_inbox(&store).await;
    let (conversation, _, _) = added(
        &deliver(
            &store,
            inbox,
            1,
            &incoming("a@c.test", "carol@c.test", "Hi"),
        )
        .await,
    );
    let mut agents = Vec::new();
    for i in 0..6 {
        agents.push(user(&store, &format!("agent{i}"), Role::Agent).await);
    }
    let attempts = agents.iter().map(|agent| {
        let store = store.clone();
        let agent = agent.clone();
        tokio::spawn(async move { store.take_conversation(conversation, &agent).await })
    });
    let results: Vec<_> = futures::future::join_all(attempts)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(winners.len(), 1, "exactly one winner: {results:?}");
    let winner = winners[0].assignee_id.unwrap();
    let winner_name = agents
        .iter()
        .find(|a| a.id == winner)
        .unwrap()
        .username
        .clone();
    for r in &results {
        if let Err(e) = r {
            match e {
                TakeError::AlreadyTaken { by } => assert_eq!(by, &format!("@{winner_name}")),
                TakeError::Store(e) => panic!("a loser got a store error: {e}"),
            }
        }
    }
    let c = store
        .find_conversation(conversation)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.status, ConversationStatus::Open);
    assert!(store.is_member(conversation, winner).await.unwrap());
    let lines: Vec<String> = store
        .list_messages(conversation)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.kind == MessageKind::System)
        .map(|m| m.text)
        .collect();
    assert_eq!(lines, vec![format!("Taken by @{winner_name}")]);
}

async fn members_internal_messages_and_uploads(store: Store) {
    let inbox = support_inbox(&store).await;
    let alice = user(&store, "alice", Role::Agent).await;
    let bob = user(&store, "bob", Role::Agent).await;
    let (conversation, _, _) = added(
        &deliver(
            &store,
            inbox,
            1,
            &incoming("a@c.test", "carol@c.test", "Hi"),
        )
        .await,
    );
    store.take_conversation(conversation, &alice).await.unwrap();
    assert!(!store.is_member(conversation, bob.id).await.unwrap());

    let note = store
        .add_internal_message(conversation, alice.id, "Checking with billing")
        .await
        .unwrap();
    assert_eq!(note.kind, MessageKind::Internal);
    assert!(note.email.is_none());

    assert!(
        store
            .add_member(conversation, &bob, &alice)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .add_member(conversation, &bob, &alice)
            .await
            .unwrap()
            .is_none(),
        "inviting twice adds nothing"
    );
    assert!(store.is_member(conversation, bob.id).await.unwrap());

    let file = NewAttachment {
        filename: "report.pdf".into(),
        content_type: "application/pdf".into(),
        content_id: None,
        inline: false,
        bytes: b"%PDF-1.4 \x00\xff".to_vec(),
    };
    let upload = store.add_upload(conversation, bob.id, &file).await.unwrap();
    assert_eq!(upload.kind, MessageKind::Internal);
    assert_eq!(upload.attachments.len(), 1);
    assert_eq!(upload.attachments[0].size, 11);

    let texts: Vec<(MessageKind, String)> = store
        .list_messages(conversation)
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.kind, m.text))
        .collect();
    assert_eq!(
        texts,
        vec![
            (MessageKind::EmailIn, "body of a@c.test".into()),
            (MessageKind::System, "Taken by @alice".into()),
            (MessageKind::Internal, "Checking with billing".into()),
            (MessageKind::System, "@alice invited @bob".into()),
            (MessageKind::Internal, String::new()),
        ]
    );
    let invited = store
        .list_conversations(&ConversationFilter {
            member: Some(bob.id),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(invited.len(), 1);
}

async fn closing_and_a_new_email_reopens_into_the_queue(store: Store) {
    let inbox = support_inbox(&store).await;
    let alice = user(&store, "alice", Role::Agent).await;
    let (conversation, _, _) = added(
        &deliver(
            &store,
            inbox,
            1,
            &incoming("a@c.test", "carol@c.test", "Hi"),
        )
        .await,
    );
    store.take_conversation(conversation, &alice).await.unwrap();
    let closed = store
        .close_conversation(conversation, &alice, Some("solved"))
        .await
        .unwrap();
    assert_eq!(closed.status, ConversationStatus::Closed);
    assert!(closed.closed_at.is_some());

    let mut reply = incoming("b@c.test", "carol@c.test", "Re: Hi");
    reply.in_reply_to = Some("a@c.test".into());
    match deliver(&store, inbox, 2, &reply).await {
        IngestOutcome::Added {
            conversation_id,
            reopened,
            ..
        } => {
            assert_eq!(conversation_id, conversation);
            assert!(reopened);
        }
        other => panic!("expected the email to be added: {other:?}"),
    }
    let c = store
        .find_conversation(conversation)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.status, ConversationStatus::Queued);
    assert_eq!(c.assignee_id, None);
    let lines: Vec<String> = store
        .list_messages(conversation)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.kind == MessageKind::System)
        .map(|m| m.text)
        .collect();
    assert_eq!(lines[1], "Closed by @alice: solved");
    assert_eq!(
        lines[2],
        "Reopened by a new email from the contact (previously with @alice)"
    );
}

async fn our_email_keeps_its_bcc_and_html_for_the_agents(store: Store) {
    let inbox = support_inbox(&store).await;
    let agent = user(&store, "alice", Role::Agent).await;
    let (conversation, _, _) = added(
        &deliver(
            &store,
            inbox,
            1,
            &incoming("a@c.test", "carol@c.test", "Help"),
        )
        .await,
    );
    let mut email = queued("ours@example.test", None);
    email.bcc = vec![Addr {
        name: Some("Boss".into()),
        email: "boss@example.test".into(),
    }];
    email.html = Some("<p><strong>On it</strong></p>".into());
    let message = store
        .queue_email(conversation, agent.id, &email)
        .await
        .unwrap();
    let meta = message.email.as_ref().unwrap();
    assert_eq!(meta.bcc, email.bcc);
    assert_eq!(
        message.html.as_deref(),
        Some("<p><strong>On it</strong></p>")
    );
    // An inbound email has none.
    let inbound = store.list_messages(conversation).await.unwrap();
    assert!(inbound[0].email.as_ref().unwrap().bcc.is_empty());
}

/// The send-time collision check: queuing with the id of the newest email the agent had
/// seen fails, naming the newer emails (in or out), once one exists; internal notes do not
/// count.
async fn an_email_is_not_queued_after_newer_emails_than_the_one_seen(store: Store) {
    let inbox = support_inbox(&store).await;
    let agent = user(&store, "alice", Role::Agent).await;
    let (conversation, first, _) = added(
        &deliver(
            &store,
            inbox,
            1,
            &incoming("a@c.test", "carol@c.test", "Help"),
        )
        .await,
    );
    let note = store
        .add_internal_message(conversation, agent.id, "checking")
        .await
        .unwrap();
    let mut email = queued("ours1@example.test", None);
    email.seen_message_id = Some(first);
    let ours = store
        .queue_email(conversation, agent.id, &email)
        .await
        .expect("nothing newer than the email seen but a note");
    assert!(ours.id > note.id);

    let mut reply = incoming("b@c.test", "carol@c.test", "Re: Help");
    reply.in_reply_to = Some("ours1@example.test".into());
    let (_, theirs, _) = added(&deliver(&store, inbox, 2, &reply).await);
    let mut stale = queued("ours2@example.test", None);
    stale.seen_message_id = Some(first);
    match store.queue_email(conversation, agent.id, &stale).await {
        Err(StoreError::NewerMessages(ids)) => assert_eq!(ids, vec![ours.id, theirs]),
        other => panic!("expected NewerMessages, got {other:?}"),
    }
    let count = store.list_messages(conversation).await.unwrap().len();
    assert_eq!(count, 4, "nothing was stored");
    stale.seen_message_id = Some(theirs);
    store
        .queue_email(conversation, agent.id, &stale)
        .await
        .expect("up to date");
}

/// Five agents answer the same email at the same moment: the database lets exactly one
/// through, and the others learn of its email.
async fn of_five_agents_sending_at_once_after_the_same_email_exactly_one_sends(store: Store) {
    let inbox = support_inbox(&store).await;
    let agent = user(&store, "alice", Role::Agent).await;
    let (conversation, first, _) = added(
        &deliver(
            &store,
            inbox,
            1,
            &incoming("a@c.test", "carol@c.test", "Help"),
        )
        .await,
    );
    let sends = (0..5).map(|i| {
        let store = store.clone();
        let mut email = queued(&format!("race{i}@example.test"), None);
        email.seen_message_id = Some(first);
        tokio::spawn(async move { store.queue_email(conversation, agent.id, &email).await })
    });
    let results = futures::future::join_all(sends).await;
    let mut sent = Vec::new();
    for result in results {
        match result.unwrap() {
            Ok(message) => sent.push(message.id),
            Err(StoreError::NewerMessages(ids)) => assert_eq!(ids.len(), 1),
            Err(e) if e.is_transient() => panic!("a send failed instead of waiting: {e}"),
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(sent.len(), 1, "exactly one send: {sent:?}");
    let emails = store
        .list_messages(conversation)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.kind == MessageKind::EmailOut)
        .count();
    assert_eq!(emails, 1);
}

fn queued(message_id: &str, source: Option<postdesk_core::ids::MessageId>) -> QueuedEmail {
    QueuedEmail {
        text: "We are on it".into(),
        message_id: message_id.into(),
        in_reply_to: Some("a@c.test".into()),
        references: vec!["a@c.test".into()],
        from: Addr {
            name: Some("Example Support".into()),
            email: "support@example.test".into(),
        },
        to: vec![Addr {
            name: None,
            email: "carol@c.test".into(),
        }],
        cc: vec![],
        bcc: vec![],
        subject: "Re: Hi".into(),
        html: None,
        date: now_ms(),
        mime: b"From: x\r\n\r\nbody\r\n".to_vec(),
        mail_from: "support@example.test".into(),
        rcpt_to: vec!["carol@c.test".into()],
        source_message_id: source,
        seen_message_id: None,
    }
}

async fn outbox_rows_are_claimed_once_and_record_their_outcome(store: Store) {
    let inbox = support_inbox(&store).await;
    let alice = user(&store, "alice", Role::Agent).await;
    let (conversation, _, _) = added(
        &deliver(
            &store,
            inbox,
            1,
            &incoming("a@c.test", "carol@c.test", "Hi"),
        )
        .await,
    );
    let file = NewAttachment {
        filename: "a.txt".into(),
        content_type: "text/plain".into(),
        content_id: None,
        inline: false,
        bytes: b"abc".to_vec(),
    };
    let upload = store
        .add_upload(conversation, alice.id, &file)
        .await
        .unwrap();

    let email = store
        .queue_email(
            conversation,
            alice.id,
            &queued("out1@example.test", Some(upload.id)),
        )
        .await
        .unwrap();
    assert_eq!(email.kind, MessageKind::EmailOut);
    assert_eq!(
        email
            .email
            .as_ref()
            .unwrap()
            .delivery
            .as_ref()
            .unwrap()
            .status,
        DeliveryStatus::Queued
    );
    assert_eq!(
        email.attachments.len(),
        1,
        "the file message's attachment is carried"
    );
    assert_eq!(email.attachments[0].sha256, upload.attachments[0].sha256);
    assert_eq!(email.source_message_id, Some(upload.id));

    let item = store
        .claim_outbox(60_000)
        .await
        .unwrap()
        .expect("a due row");
    assert_eq!(item.attempts, 1);
    assert_eq!(item.message_id, email.id);
    assert_eq!(item.conversation_id, conversation);
    assert_eq!(item.rcpt_to, vec!["carol@c.test".to_owned()]);
    assert!(
        store.claim_outbox(60_000).await.unwrap().is_none(),
        "a claimed row is not claimed again"
    );

    let status = store
        .finish_outbox(
            &item,
            &SendOutcome::Retry {
                reason: "451 try later".into(),
            },
            now_ms() - 1,
        )
        .await
        .unwrap();
    assert_eq!(status, DeliveryStatus::Queued);
    let shown = delivery_of(&store, email.id).await;
    assert_eq!(
        shown.error.as_deref(),
        Some("451 try later"),
        "the retry reason is visible"
    );

    let again = store
        .claim_outbox(60_000)
        .await
        .unwrap()
        .expect("due again");
    assert_eq!(again.attempts, 2);
    store
        .finish_outbox(
            &again,
            &SendOutcome::Failed {
                reason: "550 no such user".into(),
            },
            now_ms(),
        )
        .await
        .unwrap();
    let failed = delivery_of(&store, email.id).await;
    assert_eq!(failed.status, DeliveryStatus::Failed);
    assert_eq!(failed.error.as_deref(), Some("550 no such user"));
    assert!(store.claim_outbox(60_000).await.unwrap().is_none());

    store.retry_email(email.id).await.unwrap();
    let retried = store
        .claim_outbox(60_000)
        .await
        .unwrap()
        .expect("queued again");
    assert_eq!(retried.attempts, 1);
    store
        .finish_outbox(&retried, &SendOutcome::Sent, now_ms())
        .await
        .unwrap();
    let sent = delivery_of(&store, email.id).await;
    assert_eq!(sent.status, DeliveryStatus::Sent);
    assert_eq!(sent.error, None);
    assert!(matches!(
        store.retry_email(email.id).await,
        Err(StoreError::Conflict(_))
    ));
}

async fn conversations_are_filtered_by_status_assignee_member_and_contact(store: Store) {
    let inbox = support_inbox(&store).await;
    let alice = user(&store, "alice", Role::Agent).await;
    let (first, _, _) = added(
        &deliver(
            &store,
            inbox,
            1,
            &incoming("a@c.test", "carol@c.test", "One"),
        )
        .await,
    );
    let (second, _, _) = added(
        &deliver(
            &store,
            inbox,
            2,
            &incoming("b@c.test", "dave@d.test", "Two"),
        )
        .await,
    );
    store.take_conversation(first, &alice).await.unwrap();

    let ids = |list: Vec<postdesk_store::Conversation>| {
        list.into_iter().map(|c| c.id).collect::<Vec<_>>()
    };
    let queued = store
        .list_conversations(&ConversationFilter {
            status: Some(ConversationStatus::Queued),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ids(queued), vec![second]);
    let mine = store
        .list_conversations(&ConversationFilter {
            status: Some(ConversationStatus::Open),
            assignee: Some(alice.id),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ids(mine), vec![first]);
    let by_contact = store
        .list_conversations(&ConversationFilter {
            contact: Some("DAVE".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ids(by_contact), vec![second]);
    let wildcard = store
        .list_conversations(&ConversationFilter {
            contact: Some("%".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        wildcard.len(),
        2,
        "a % in the search is not a wildcard trick, it is dropped"
    );
}

async fn an_auto_reply_joins_its_conversation_without_reopening_it(store: Store) {
    let inbox = support_inbox(&store).await;
    let alice = user(&store, "alice", Role::Agent).await;
    let conversation =
        closed_conversation(&store, inbox, 1, ("a@c.test", "carol@c.test"), &alice).await;
    let mut vacation = incoming("auto@c.test", "carol@c.test", "Out of office: Re: Hi");
    vacation.in_reply_to = Some("a@c.test".into());
    vacation.auto_reply = true;
    match deliver(&store, inbox, 2, &vacation).await {
        IngestOutcome::Added {
            conversation_id,
            new_conversation,
            reopened,
            ..
        } => {
            assert_eq!(conversation_id, conversation);
            assert!(!new_conversation && !reopened);
        }
        other => panic!("expected the email to be added: {other:?}"),
    }
    let c = store
        .find_conversation(conversation)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        c.status,
        ConversationStatus::Closed,
        "an auto-reply never reopens"
    );
    assert_eq!(
        store.list_messages(conversation).await.unwrap().len(),
        4,
        "email, taken, closed, auto-reply"
    );
}

async fn an_email_after_the_reopen_window_opens_a_follow_up(store: Store) {
    let mut settings = inbox_settings("support@example.test");
    settings.reopen_days = 0;
    let inbox = store.create_inbox(&settings).await.unwrap().id;
    let alice = user(&store, "alice", Role::Agent).await;
    let old = closed_conversation(&store, inbox, 1, ("a@c.test", "carol@c.test"), &alice).await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let mut late = incoming("late@c.test", "carol@c.test", "Re: Hi");
    late.in_reply_to = Some("a@c.test".into());
    let (new, _, is_new) = added(&deliver(&store, inbox, 2, &late).await);
    assert!(is_new);
    assert_ne!(new, old);
    let follow_up = store.find_conversation(new).await.unwrap().unwrap();
    assert_eq!(follow_up.follows_id, Some(old));
    assert_eq!(follow_up.status, ConversationStatus::Queued);
    assert_eq!(
        store.find_conversation(old).await.unwrap().unwrap().status,
        ConversationStatus::Closed
    );
    let lines: Vec<String> = store
        .list_messages(new)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.text)
        .collect();
    assert_eq!(
        lines[0],
        format!("Follows up on conversation #{old}, closed more than 0 days ago")
    );
}

/// The delivery of one of our emails, as stored now.
async fn delivery_of(store: &Store, id: postdesk_core::ids::MessageId) -> postdesk_store::Delivery {
    store
        .find_message(id)
        .await
        .unwrap()
        .unwrap()
        .email
        .unwrap()
        .delivery
        .unwrap()
}

/// The support inbox, a conversation in it, and our email queued in it with Message-ID
/// `ours@example.test` (what a bounce or a delay notice names).
async fn a_conversation_with_our_email(
    store: &Store,
) -> (
    postdesk_core::ids::InboxId,
    ConversationId,
    postdesk_store::Message,
) {
    let inbox = support_inbox(store).await;
    let alice = user(store, "alice", Role::Agent).await;
    let (conversation, _, _) =
        added(&deliver(store, inbox, 1, &incoming("a@c.test", "carol@c.test", "Hi")).await);
    let ours = store
        .queue_email(conversation, alice.id, &queued("ours@example.test", None))
        .await
        .unwrap();
    (inbox, conversation, ours)
}

/// A delay notice (RFC 3464 `Action: delayed`, or a server's own "still trying") marks our
/// email delayed, not failed; a bounce after it fails it; a late delay notice never undoes
/// the failure.
async fn a_delay_notice_marks_our_email_delayed_and_never_undoes_a_failure(store: Store) {
    let (inbox, _, ours) = a_conversation_with_our_email(&store).await;
    store_raws(
        &store,
        inbox,
        7,
        2,
        vec![
            b"delay".to_vec(),
            b"bounce".to_vec(),
            b"late delay".to_vec(),
        ],
    )
    .await;
    let raws = store.pending_raw(Some(inbox), 10).await.unwrap();
    let status = || async { delivery_of(&store, ours.id).await.status };
    let delayed = store
        .record_delivery_report(
            raws[0].id,
            inbox,
            "ours@example.test",
            DeliveryStatus::Delayed,
            "4.4.7 still trying",
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status().await, DeliveryStatus::Delayed);
    let line = store
        .find_message(delayed.notice_id)
        .await
        .unwrap()
        .unwrap()
        .text;
    assert!(
        line.contains("delayed"),
        "the system line says delayed: {line}"
    );
    assert!(!line.contains("bounced"), "and not that it bounced: {line}");
    store
        .record_bounce(raws[1].id, inbox, "ours@example.test", "5.1.1 user unknown")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status().await, DeliveryStatus::Failed);
    store
        .record_delivery_report(
            raws[2].id,
            inbox,
            "ours@example.test",
            DeliveryStatus::Delayed,
            "4.4.7 still trying",
        )
        .await
        .unwrap();
    assert_eq!(
        status().await,
        DeliveryStatus::Failed,
        "a late delay notice does not undo the failure"
    );
    assert!(
        store.pending_raw(Some(inbox), 10).await.unwrap().is_empty(),
        "every notice is processed"
    );
}

async fn a_bounce_of_our_email_marks_it_failed(store: Store) {
    let (inbox, conversation, ours) = a_conversation_with_our_email(&store).await;
    store_raws(&store, inbox, 7, 2, vec![b"bounce".to_vec()]).await;
    let raw = store.pending_raw(Some(inbox), 10).await.unwrap().remove(0);

    assert_eq!(
        store
            .record_bounce(raw.id, inbox, "not-ours@example.test", "5.1.1")
            .await
            .unwrap(),
        None
    );
    let recorded = store
        .record_bounce(raw.id, inbox, "ours@example.test", "5.1.1 user unknown")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(recorded.conversation_id, conversation);
    assert_eq!(recorded.message_id, ours.id);
    let delivery = delivery_of(&store, ours.id).await;
    assert_eq!(delivery.status, DeliveryStatus::Failed);
    assert_eq!(delivery.error.as_deref(), Some("5.1.1 user unknown"));
    let notice = store
        .find_message(recorded.notice_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        notice.text,
        "An email to the contact bounced: 5.1.1 user unknown"
    );
    assert!(
        store.pending_raw(Some(inbox), 10).await.unwrap().is_empty(),
        "the bounce is processed"
    );
    assert_eq!(
        store
            .list_conversations(&ConversationFilter::default())
            .await
            .unwrap()
            .len(),
        1,
        "no conversation opened"
    );
}

async fn a_too_large_email_carries_its_original_bytes(store: Store) {
    let inbox = support_inbox(&store).await;
    let mut big = incoming("big@c.test", "carol@c.test", "Huge");
    big.attach_original = true;
    let (_, message, _) = added(&deliver(&store, inbox, 1, &big).await);
    let m = store.find_message(message).await.unwrap().unwrap();
    assert_eq!(m.attachments.len(), 1);
    assert_eq!(m.attachments[0].filename, "original.eml");
    let (_, _, bytes) = store
        .find_attachment(m.attachments[0].id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        bytes, b"raw 1 big@c.test",
        "the original is the raw email, byte for byte"
    );
}

async fn emails_received_over_smtp_are_stored_raw_each_as_its_own_pending_row(store: Store) {
    let inbox = support_inbox(&store).await;
    let other = store
        .create_inbox(&inbox_settings("sales@example.test"))
        .await
        .unwrap()
        .id;
    let text = b"From: carol@c.test\r\nSubject: Hi\r\n\r\nHello\r\n".to_vec();
    let binary = vec![0, 159, 146, 150, 13, 10, 46, 13, 10];

    let first = store.store_received(inbox, &text).await.unwrap();
    let second = store.store_received(inbox, &binary).await.unwrap();
    let again = store.store_received(inbox, &text).await.unwrap();
    let elsewhere = store.store_received(other, &text).await.unwrap();
    assert_ne!(first, second);
    assert_ne!(
        first, again,
        "the same bytes received twice are two rows (Message-ID dedup comes later)"
    );

    let pending = store.pending_raw(Some(inbox), 10).await.unwrap();
    let ids: Vec<_> = pending.iter().map(|r| r.id).collect();
    assert_eq!(ids, vec![first, second, again], "all pending, oldest first");
    assert_eq!(pending[0].bytes, text, "bytes kept exactly");
    assert_eq!(pending[1].bytes, binary, "bytes kept exactly");
    assert_eq!(store.count_raw(inbox, "new").await.unwrap(), 3);
    let found = store.find_raw(elsewhere).await.unwrap().unwrap();
    assert_eq!((found.inbox_id, found.bytes), (other, text.clone()));
    assert_eq!(store.count_raw(other, "new").await.unwrap(), 1);
    assert_eq!(
        store.find_sync_state(inbox, "INBOX").await.unwrap(),
        None,
        "the IMAP watermark is not touched"
    );

    // Several SMTP sessions storing for one inbox at once each get their own row.
    let concurrent = futures::future::join_all((0..8u8).map(|i| {
        let store = store.clone();
        async move { store.store_received(inbox, &[i]).await }
    }))
    .await;
    let mut ids: Vec<_> = concurrent.into_iter().map(Result::unwrap).collect();
    ids.sort_by_key(|id| id.0);
    ids.dedup();
    assert_eq!(ids.len(), 8);
    assert_eq!(store.count_raw(inbox, "new").await.unwrap(), 11);
}

async fn a_raw_email_is_processed_once_when_processors_race(store: Store) {
    let inbox = support_inbox(&store).await;
    store_raws(&store, inbox, 1, 1, vec![b"raw".to_vec()]).await;
    let raw = store.pending_raw(Some(inbox), 10).await.unwrap().remove(0);
    let email = incoming("race@c.test", "carol@c.test", "Race");
    // Both processors read the raw email while it was pending; they store concurrently.
    let (a, b) = tokio::join!(
        store.ingest_email(raw.id, inbox, &email),
        store.ingest_email(raw.id, inbox, &email)
    );
    let outcomes = [a.unwrap(), b.unwrap()];
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| matches!(o, IngestOutcome::Added { .. }))
            .count(),
        1,
        "{outcomes:?}"
    );
    assert!(
        outcomes.contains(&IngestOutcome::AlreadyHandled),
        "{outcomes:?}"
    );
    // A late quarantine by the loser changes nothing.
    store.quarantine_raw(raw.id, "late").await.unwrap();
    assert!(store.list_quarantined().await.unwrap().is_empty());
    assert_eq!(
        store
            .list_conversations(&ConversationFilter::default())
            .await
            .unwrap()
            .len(),
        1
    );
}

/// Many emails in one `ingest_batch`: the outcome is what processing them one after another
/// gives, including replies to emails earlier in the same batch, and one email the database
/// refuses does not keep the others out.
async fn a_batch_threads_dedups_and_reopens_as_one_email_after_another_would(store: Store) {
    let inbox = support_inbox(&store).await;
    let alice = user(&store, "alice", Role::Agent).await;
    // Stored before the batch: a conversation with @alice, closed.
    let closed = closed_conversation(&store, inbox, 1, ("old@c.test", "dave@c.test"), &alice).await;

    let first = incoming("first@c.test", "carol@c.test", "Printer");
    let mut reply = incoming("second@c.test", "carol@c.test", "Re: Printer");
    reply.in_reply_to = Some("first@c.test".into());
    reply.contact.name = Some("Carol C.".into());
    let again = incoming("first@c.test", "carol@c.test", "Printer");
    let mut reopening = incoming("third@c.test", "dave@c.test", "Re: Hi");
    reopening.references = vec!["old@c.test".into()];
    let mut late = incoming("fourth@c.test", "erin@c.test", "Re: Printer");
    late.references = vec!["unknown@c.test".into(), "second@c.test".into()];
    let mut file = incoming("sixth@c.test", "gina@c.test", "Files");
    let bytes = b"same bytes twice".to_vec();
    for name in ["a.txt", "b.txt"] {
        file.attachments.push(NewAttachment {
            filename: name.into(),
            content_type: "text/plain".into(),
            content_id: None,
            inline: false,
            bytes: bytes.clone(),
        });
    }
    let emails = [first, reply, again, reopening, late, file];
    let raws = (0..emails.len()).map(|i| format!("raw {i}").into_bytes());
    store_raws(&store, inbox, 7, 10, raws.collect()).await;
    let pending = store.pending_raw(Some(inbox), 100).await.unwrap();
    assert_eq!(pending.len(), emails.len());
    let batch: Vec<_> = pending
        .iter()
        .zip(&emails)
        .map(|(raw, email)| (raw.id, email.clone()))
        .collect();
    let outcomes = store.ingest_batch(inbox, &batch).await.unwrap();
    assert_eq!(outcomes.len(), emails.len());

    let outcome = |i: usize| outcomes[i].as_ref().expect("stored");
    let (printer, first_id, new) = added(outcome(0));
    assert!(new);
    let (threaded, _, new) = added(outcome(1));
    assert_eq!(
        threaded, printer,
        "a reply to an email earlier in the batch"
    );
    assert!(!new);
    assert_eq!(outcome(2), &IngestOutcome::Duplicate);
    match outcome(3) {
        IngestOutcome::Added {
            conversation_id,
            reopened,
            ..
        } => {
            assert_eq!(*conversation_id, closed);
            assert!(reopened);
        }
        other => panic!("expected a reopen: {other:?}"),
    }
    assert_eq!(added(outcome(4)).0, printer, "by a References entry");
    let (files, files_message, new) = added(outcome(5));
    assert!(new);

    // What is stored matches the outcomes.
    let messages = store.list_messages(printer).await.unwrap();
    assert_eq!(
        messages
            .iter()
            .map(|m| m.email.as_ref().map_or("", |e| e.message_id.as_str()))
            .collect::<Vec<_>>(),
        vec!["first@c.test", "second@c.test", "fourth@c.test"]
    );
    assert_eq!(messages[0].id, first_id);
    let c = store.find_conversation(printer).await.unwrap().unwrap();
    assert_eq!(c.status, ConversationStatus::Queued);
    let reopened = store.find_conversation(closed).await.unwrap().unwrap();
    assert_eq!(reopened.status, ConversationStatus::Queued);
    assert_eq!(
        store
            .list_messages(closed)
            .await
            .unwrap()
            .iter()
            .filter(|m| m.kind == MessageKind::System)
            .map(|m| m.text.as_str())
            .next_back(),
        Some("Reopened by a new email from the contact (previously with @alice)")
    );
    let attachments = store.list_messages(files).await.unwrap();
    let stored_files = &attachments
        .iter()
        .find(|m| m.id == files_message)
        .unwrap()
        .attachments;
    assert_eq!(
        stored_files
            .iter()
            .map(|a| a.filename.as_str())
            .collect::<Vec<_>>(),
        vec!["a.txt", "b.txt"]
    );
    // The contact got the newest non-empty name.
    let conversations = store
        .list_conversations(&ConversationFilter::default())
        .await
        .unwrap();
    let carol = conversations.iter().find(|c| c.id == printer).unwrap();
    assert_eq!(carol.contact.name, "Carol C.");
    // Nothing is left pending; the duplicate is recorded as such.
    assert!(
        store
            .pending_raw(Some(inbox), 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.count_raw(inbox, "duplicate").await.unwrap(), 1);

    // A batch with an email the database refuses: PostgreSQL refuses NUL in text (SQLite
    // stores it). The batch is retried one email at a time, so only that email fails.
    let mut refused = incoming("nul@c.test", "frank@c.test", "Nul");
    refused.text = "before\0after".into();
    let emails = [
        incoming("g1@c.test", "hal@c.test", "One"),
        refused,
        incoming("g2@c.test", "ida@c.test", "Two"),
    ];
    let raws = (0..emails.len()).map(|i| format!("second batch {i}").into_bytes());
    store_raws(&store, inbox, 7, 200, raws.collect()).await;
    let pending = store.pending_raw(Some(inbox), 100).await.unwrap();
    let batch: Vec<_> = pending
        .iter()
        .zip(&emails)
        .map(|(raw, email)| (raw.id, email.clone()))
        .collect();
    let outcomes = store.ingest_batch(inbox, &batch).await.unwrap();
    assert!(added(outcomes[0].as_ref().unwrap()).2);
    assert!(added(outcomes[2].as_ref().unwrap()).2);
    match (store.backend(), &outcomes[1]) {
        (postdesk_store::Backend::Postgres, Err(e)) => assert!(!e.is_transient(), "{e}"),
        (postdesk_store::Backend::Sqlite, Ok(o)) => assert!(added(o).2),
        (_, other) => panic!("unexpected outcome for the NUL email: {other:?}"),
    }
}

/// A raw email larger than the read piece (4 MiB) comes back byte for byte, in order with the
/// small ones, and a batch stops at its byte bound (but always holds the oldest email).
async fn large_raw_emails_are_read_back_whole_and_batches_are_bounded_by_bytes(store: Store) {
    let inbox = support_inbox(&store).await;
    let large: Vec<u8> = (0..9 * 1024 * 1024 + 7).map(|i| (i % 251) as u8).collect();
    let raws = vec![b"small one".to_vec(), large.clone(), b"small two".to_vec()];
    store_raws(&store, inbox, 7, 1, raws).await;
    let all = store.pending_raw(Some(inbox), 10).await.unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].bytes, b"small one");
    assert!(all[1].bytes == large, "the large email differs");
    assert_eq!(all[2].bytes, b"small two");

    let bounded = store
        .pending_raw_within(Some(inbox), None, 10, 1024)
        .await
        .unwrap();
    assert_eq!(bounded.len(), 1, "stops before the large one");
    let oldest_alone = store
        .pending_raw_within(Some(inbox), Some(all[0].id), 10, 1024)
        .await
        .unwrap();
    assert_eq!(oldest_alone.len(), 1, "the oldest is taken however large");
    assert!(oldest_alone[0].bytes == large);
    let after = store
        .pending_raw_within(Some(inbox), Some(all[1].id), 10, u64::MAX)
        .await
        .unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].bytes, b"small two");
}

/// Two processors (two PostgreSQL nodes, or the IMAP reader and the SMTP ingress) storing
/// overlapping batches at once, with the same contacts in opposite orders: each email is added
/// exactly once, the other processor is told it was handled, and neither fails.
async fn two_processors_racing_over_overlapping_batches_add_each_email_once(store: Store) {
    let inbox = support_inbox(&store).await;
    let raws = (1..=40).map(|uid| format!("raw {uid}").into_bytes());
    store_raws(&store, inbox, 7, 1, raws.collect()).await;
    let pending = store.pending_raw(Some(inbox), 100).await.unwrap();
    let emails: Vec<_> = pending
        .iter()
        .enumerate()
        .map(|(i, raw)| {
            let contact = format!("c{}@c.test", i % 7);
            (
                raw.id,
                incoming(&format!("m{i}@c.test"), &contact, &format!("Subject {i}")),
            )
        })
        .collect();
    // One processor takes the first 30 in order, the other the last 30 backwards.
    let first: Vec<_> = emails[..30].to_vec();
    let mut second: Vec<_> = emails[10..].to_vec();
    second.reverse();
    let (a, b) = tokio::join!(
        store.ingest_batch(inbox, &first),
        store.ingest_batch(inbox, &second)
    );
    let outcomes: Vec<IngestOutcome> = a
        .unwrap()
        .into_iter()
        .chain(b.unwrap())
        .map(|o| o.expect("no email fails"))
        .collect();
    let added_count = outcomes
        .iter()
        .filter(|o| matches!(o, IngestOutcome::Added { .. }))
        .count();
    assert_eq!(added_count, 40, "{outcomes:?}");
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == IngestOutcome::AlreadyHandled)
            .count(),
        20
    );
    assert!(
        store
            .pending_raw(Some(inbox), 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .list_conversations(&ConversationFilter::default())
            .await
            .unwrap()
            .len(),
        40
    );
}

async fn sessions_are_listed_and_ended_one_by_one_or_by_a_password_change(store: Store) {
    let alice = user(&store, "alice", Role::Agent).await;
    let laptop = session(&store, alice.id, "laptop", now_ms() + 60_000).await;
    let phone = session(&store, alice.id, "phone", now_ms() + 60_000).await;
    let tablet = session(&store, alice.id, "tablet", now_ms() + 60_000).await;
    let listed: Vec<_> = store
        .list_sessions(alice.id)
        .await
        .unwrap()
        .iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(listed, vec![tablet, phone, laptop], "newest first");
    assert_eq!(
        store.list_sessions(alice.id).await.unwrap()[0].user_agent,
        "contract test"
    );

    // Another user cannot end alice's session by its id.
    let bob = user(&store, "bob", Role::Agent).await;
    assert!(!store.delete_user_session(bob.id, phone).await.unwrap());
    assert!(store.delete_user_session(alice.id, phone).await.unwrap());
    assert!(!store.session_is_valid(phone).await.unwrap());
    assert!(store.session_is_valid(laptop).await.unwrap());

    // A password change keeps only the session it was made in.
    store
        .set_password_hash(alice.id, "$argon2id$new", Some(laptop))
        .await
        .unwrap();
    assert!(store.session_is_valid(laptop).await.unwrap());
    assert!(!store.session_is_valid(tablet).await.unwrap());
    // A reset keeps none.
    store
        .set_password_hash(alice.id, "$argon2id$reset", None)
        .await
        .unwrap();
    assert!(store.list_sessions(alice.id).await.unwrap().is_empty());
    assert_eq!(
        store
            .find_user_credentials("alice")
            .await
            .unwrap()
            .unwrap()
            .1,
        "$argon2id$reset"
    );
}

async fn departments_decide_what_a_list_shows_each_role(store: Store) {
    use postdesk_core::access::ListScope;
    let sales = store.create_department("Sales").await.unwrap();
    let billing = store.create_department("Billing").await.unwrap();
    assert!(matches!(
        store.create_department("Sales").await,
        Err(StoreError::Conflict(_))
    ));
    let mut settings = inbox_settings("sales@example.test");
    settings.department_id = Some(sales.id.0);
    let sales_inbox = store.create_inbox(&settings).await.unwrap().id;
    let open_inbox = support_inbox(&store).await;
    let ana = user(&store, "ana", Role::Agent).await;
    let ben = user(&store, "ben", Role::Agent).await;
    let meg = user(&store, "meg", Role::Manager).await;
    assert!(store.add_department_member(sales.id, ana.id).await.unwrap());
    assert!(!store.add_department_member(sales.id, ana.id).await.unwrap());
    store
        .add_department_member(billing.id, ben.id)
        .await
        .unwrap();
    store.add_department_member(sales.id, meg.id).await.unwrap();
    assert_eq!(store.departments_of(ana.id).await.unwrap(), vec![sales.id]);

    let (sales_queued, _, _) = added(
        &deliver(
            &store,
            sales_inbox,
            1,
            &incoming("s1@c.test", "carol@c.test", "S1"),
        )
        .await,
    );
    let (sales_taken, _, _) = added(
        &deliver(
            &store,
            sales_inbox,
            2,
            &incoming("s2@c.test", "dave@d.test", "S2"),
        )
        .await,
    );
    let (everyones, _, _) = added(
        &deliver(
            &store,
            open_inbox,
            3,
            &incoming("o1@c.test", "erin@e.test", "O1"),
        )
        .await,
    );
    let other = user(&store, "olga", Role::Agent).await;
    store
        .add_department_member(sales.id, other.id)
        .await
        .unwrap();
    store.take_conversation(sales_taken, &other).await.unwrap();

    let scope = store
        .conversation_scope(sales_taken)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(scope.department, Some(sales.id));
    assert_eq!(scope.assignee, Some(other.id));
    let conversation = store.find_conversation(sales_taken).await.unwrap().unwrap();
    assert_eq!(conversation.department_id, Some(sales.id));

    let visible = |scope: ListScope| {
        let store = store.clone();
        async move {
            let mut ids: Vec<_> = store
                .list_conversations(&ConversationFilter {
                    visible: Some(scope),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_iter()
                .map(|c| c.id)
                .collect();
            ids.sort();
            ids
        }
    };
    assert_eq!(
        visible(ListScope::QueueAndMine(ana.id)).await,
        vec![sales_queued, everyones],
        "an agent: her department's queue and the queue of inboxes without one, not olga's"
    );
    assert_eq!(
        visible(ListScope::QueueAndMine(ben.id)).await,
        vec![everyones],
        "another department's agent sees none of Sales"
    );
    assert_eq!(
        visible(ListScope::Departments(meg.id)).await,
        vec![sales_queued, sales_taken, everyones],
        "a manager: everything of her department"
    );
    assert_eq!(visible(ListScope::All).await.len(), 3);
    // Asking for someone else's conversations does not widen what one sees.
    let snooped = store
        .list_conversations(&ConversationFilter {
            member: Some(other.id),
            visible: Some(ListScope::QueueAndMine(ben.id)),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(snooped.is_empty(), "{snooped:?}");

    // Leaving a department takes its queue away.
    assert!(
        store
            .remove_department_member(sales.id, ana.id)
            .await
            .unwrap()
    );
    assert_eq!(
        visible(ListScope::QueueAndMine(ana.id)).await,
        vec![everyones]
    );
    store
        .rename_department(billing.id, "Accounts")
        .await
        .unwrap();
    let names: Vec<String> = store
        .list_departments()
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.name)
        .collect();
    assert_eq!(names, vec!["Accounts", "Sales"]);
}

async fn a_previous_assignee_is_no_member_once_someone_else_takes_it(store: Store) {
    let inbox = support_inbox(&store).await;
    let alice = user(&store, "alice", Role::Agent).await;
    let bob = user(&store, "bob", Role::Agent).await;
    let carl = user(&store, "carl", Role::Agent).await;
    let conversation =
        closed_conversation(&store, inbox, 1, ("first@c.test", "carol@c.test"), &alice).await;
    assert!(store.is_member(conversation, alice.id).await.unwrap());
    // The contact writes again: back in the queue; bob takes it.
    deliver(
        &store,
        inbox,
        50,
        &IncomingEmail {
            in_reply_to: Some("first@c.test".into()),
            ..incoming("again@c.test", "carol@c.test", "Re: Help")
        },
    )
    .await;
    let reopened = store
        .find_conversation(conversation)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        reopened.status,
        ConversationStatus::Queued,
        "reopened into the queue"
    );
    store.take_conversation(conversation, &bob).await.unwrap();
    assert!(store.is_member(conversation, bob.id).await.unwrap());
    assert!(
        !store.is_member(conversation, alice.id).await.unwrap(),
        "the previous assignee's membership ended"
    );
    // Invited agents stay members whoever has it.
    assert!(
        store
            .add_member(conversation, &carl, &bob)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .add_member(conversation, &carl, &bob)
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.is_member(conversation, carl.id).await.unwrap());
    // The previous assignee can be invited back.
    assert!(
        store
            .add_member(conversation, &alice, &bob)
            .await
            .unwrap()
            .is_some()
    );
    assert!(store.is_member(conversation, alice.id).await.unwrap());
    assert_eq!(
        store
            .conversation_scope(conversation)
            .await
            .unwrap()
            .unwrap()
            .invited,
        {
            let mut invited = vec![alice.id, carl.id];
            invited.sort();
            invited
        }
    );
}

async fn a_closed_conversation_is_reopened_to_whoever_reopens_it(store: Store) {
    let inbox = support_inbox(&store).await;
    let alice = user(&store, "alice", Role::Agent).await;
    let conversation =
        closed_conversation(&store, inbox, 1, ("first@c.test", "carol@c.test"), &alice).await;
    let reopened = store
        .reopen_conversation(conversation, &alice)
        .await
        .unwrap()
        .expect("it was closed");
    assert_eq!(reopened.status, ConversationStatus::Open);
    assert_eq!(reopened.assignee_id, Some(alice.id));
    assert_eq!(reopened.closed_at, None);
    assert!(
        store
            .reopen_conversation(conversation, &alice)
            .await
            .unwrap()
            .is_none(),
        "an open conversation is not reopened again"
    );
    let last = store
        .list_messages(conversation)
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(last.text, "Reopened by @alice");
}

async fn the_audit_log_is_append_only_and_counts_failed_sign_ins(store: Store) {
    let entry = |action: &str, actor: &str, ip: &str| NewAuditEntry {
        actor_id: None,
        actor: actor.into(),
        action: action.into(),
        target: String::new(),
        ip: ip.into(),
        details: serde_json::json!({ "reason": "wrong password" }),
    };
    for _ in 0..3 {
        store
            .audit(&entry("sign_in.failed", "alice", "192.0.2.1"))
            .await
            .unwrap();
    }
    store
        .audit(&entry("sign_in.failed", "bob", "192.0.2.1"))
        .await
        .unwrap();
    let since = now_ms() - 60_000;
    let failures = store
        .sign_in_failures_for_account("alice", since)
        .await
        .unwrap();
    assert_eq!(failures.count, 3);
    assert!(failures.last_at.is_some());
    assert_eq!(
        store
            .sign_in_failures_from("192.0.2.1", since)
            .await
            .unwrap()
            .count,
        4
    );
    assert_eq!(
        store
            .sign_in_failures_from("192.0.2.9", since)
            .await
            .unwrap()
            .count,
        0
    );
    // A success restarts the account's count (not the address's).
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    store
        .audit(&entry("sign_in", "alice", "192.0.2.1"))
        .await
        .unwrap();
    assert_eq!(
        store
            .sign_in_failures_for_account("alice", since)
            .await
            .unwrap()
            .count,
        0
    );
    assert_eq!(
        store
            .sign_in_failures_from("192.0.2.1", since)
            .await
            .unwrap()
            .count,
        4
    );

    store
        .audit(&entry("user.create", "admin", "192.0.2.2"))
        .await
        .unwrap();
    let listed = store
        .list_audit(&AuditFilter {
            action: Some("user".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].action, "user.create");
    assert_eq!(listed[0].details["reason"], "wrong password");
    let by_alice = store
        .list_audit(&AuditFilter {
            actor: Some("alice".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(by_alice.len(), 4);
    let sign_ins = store
        .list_audit(&AuditFilter {
            action: Some("sign_in".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        sign_ins.len(),
        5,
        "sign_in and its family sign_in.*, an underscore is no wildcard"
    );
    assert!(
        by_alice.windows(2).all(|w| w[0].id > w[1].id),
        "newest first"
    );

    // The database itself refuses to change or delete a line.
    let pool = store.raw_pool();
    for sql in [
        "UPDATE audit_log SET actor = 'mallory'",
        "DELETE FROM audit_log",
    ] {
        let refused = sqlx::query(sql).execute(pool).await;
        assert!(refused.is_err(), "{sql} must be refused");
    }
    assert_eq!(
        store
            .list_audit(&AuditFilter {
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap()
            .len(),
        6
    );
}

// Contacts' data and retention.

fn file(filename: &str, bytes: &[u8]) -> NewAttachment {
    NewAttachment {
        filename: filename.into(),
        content_type: "application/octet-stream".into(),
        content_id: None,
        inline: false,
        bytes: bytes.to_vec(),
    }
}

/// Blobs that no attachment and no raw email refers to.
async fn orphaned_blobs(store: &Store) -> i64 {
    count(
        store,
        "SELECT COUNT(*) AS n FROM blobs b
         WHERE NOT EXISTS (SELECT 1 FROM attachments a WHERE a.sha256 = b.sha256)
           AND NOT EXISTS (SELECT 1 FROM raw_emails r WHERE r.sha256 = b.sha256)",
    )
    .await
}

async fn a_contacts_export_holds_their_conversations_messages_and_raw_emails(store: Store) {
    let inbox = support_inbox(&store).await;
    let alice = user(&store, "alice", Role::Agent).await;
    let mut first = incoming("c1@c.test", "carol@c.test", "Invoice");
    first.html = Some("<p>see attached</p>".into());
    first.attachments = vec![file("invoice.pdf", b"%PDF-1.4 carol")];
    let (invoice, first_message, _) = added(&deliver(&store, inbox, 1, &first).await);
    let (question, _, _) = added(
        &deliver(
            &store,
            inbox,
            2,
            &incoming("c2@c.test", "carol@c.test", "Question"),
        )
        .await,
    );
    store.take_conversation(invoice, &alice).await.unwrap();
    store
        .add_internal_message(invoice, alice.id, "checking the invoice")
        .await
        .unwrap();
    store
        .queue_email(invoice, alice.id, &queued("out1@example.test", None))
        .await
        .unwrap();
    // Dan's conversation, where Carol (in Cc) replies too.
    let (dans, _, _) = added(
        &deliver(
            &store,
            inbox,
            3,
            &incoming("d1@c.test", "dan@c.test", "Order"),
        )
        .await,
    );
    let mut in_cc = incoming("c3@c.test", "carol@c.test", "Re: Order");
    in_cc.in_reply_to = Some("d1@c.test".into());
    let (joined, carols_reply, new) = added(&deliver(&store, inbox, 4, &in_cc).await);
    assert!(!new);
    assert_eq!(joined, dans);

    let carol = store
        .find_conversation(invoice)
        .await
        .unwrap()
        .unwrap()
        .contact;
    let export = store
        .export_contact(carol.id)
        .await
        .unwrap()
        .expect("Carol's data");
    assert_eq!(export.contact, carol);
    assert!(export.created_at > 0);
    let conversations: Vec<ConversationId> = export
        .conversations
        .iter()
        .map(|c| c.conversation.id)
        .collect();
    assert_eq!(
        conversations,
        vec![invoice, question],
        "her conversations, not Dan's"
    );
    let messages = &export.conversations[0].messages;
    assert_eq!(
        messages,
        &store.list_messages(invoice).await.unwrap(),
        "every message of the conversation"
    );
    for kind in [
        MessageKind::EmailIn,
        MessageKind::System,
        MessageKind::Internal,
        MessageKind::EmailOut,
    ] {
        assert!(messages.iter().any(|m| m.kind == kind), "{kind:?}");
    }
    let email_in = messages.iter().find(|m| m.id == first_message).unwrap();
    assert_eq!(email_in.html.as_deref(), Some("<p>see attached</p>"));
    assert_eq!(email_in.email.as_ref().unwrap().message_id, "c1@c.test");
    assert_eq!(email_in.attachments[0].filename, "invoice.pdf");
    let email_out = messages
        .iter()
        .find(|m| m.kind == MessageKind::EmailOut)
        .unwrap();
    assert_eq!(
        email_out
            .email
            .as_ref()
            .unwrap()
            .delivery
            .as_ref()
            .unwrap()
            .status,
        DeliveryStatus::Queued
    );
    let elsewhere: Vec<_> = export.messages_elsewhere.iter().map(|m| m.id).collect();
    assert_eq!(
        elsewhere,
        vec![carols_reply],
        "her reply in Dan's conversation"
    );
    let raws: Vec<&[u8]> = export
        .raw_emails
        .iter()
        .map(|r| r.bytes.as_slice())
        .collect();
    assert_eq!(
        raws,
        vec![
            b"raw 1 c1@c.test".as_slice(),
            b"raw 2 c2@c.test",
            b"raw 4 c3@c.test"
        ],
        "the emails she sent, byte for byte, and not Dan's"
    );
    for raw in &export.raw_emails {
        assert_eq!(raw.inbox_id, inbox);
        assert_eq!(usize::try_from(raw.size).unwrap(), raw.bytes.len());
        assert_eq!(raw.sha256, postdesk_store::sha256_hex(&raw.bytes));
    }
    assert_eq!(
        store.export_contact(ContactId(999_999)).await.unwrap(),
        None
    );
}

async fn deleting_a_contact_removes_all_of_theirs_and_keeps_bytes_another_contact_shares(
    store: Store,
) {
    const SHARED: &[u8] = b"%PDF-1.4 the same price list";
    let mut settings = inbox_settings("support@example.test");
    settings.reopen_days = 0;
    let inbox = store.create_inbox(&settings).await.unwrap().id;
    let alice = user(&store, "alice", Role::Agent).await;
    let mut first = incoming("c1@c.test", "carol@c.test", "Price list");
    first.attachments = vec![file("prices.pdf", SHARED)];
    let (prices, _, _) = added(&deliver(&store, inbox, 1, &first).await);
    store.take_conversation(prices, &alice).await.unwrap();
    let upload = store
        .add_upload(
            prices,
            alice.id,
            &file("quote.pdf", b"only in Carol's conversation"),
        )
        .await
        .unwrap();
    store
        .queue_email(
            prices,
            alice.id,
            &queued("out1@example.test", Some(upload.id)),
        )
        .await
        .unwrap();
    assert_eq!(
        deliver(&store, inbox, 2, &first).await,
        IngestOutcome::Duplicate,
        "the same email fetched again: a second raw email of her message"
    );
    let old = closed_conversation(&store, inbox, 3, ("c2@c.test", "carol@c.test"), &alice).await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    // Dan answers her closed thread after the reopen window, with the same file: his
    // conversation follows hers.
    let mut dans = incoming("d1@c.test", "dan@c.test", "Re: Hi");
    dans.in_reply_to = Some("c2@c.test".into());
    dans.attachments = vec![file("prices.pdf", SHARED)];
    let (follow_up, dans_message, _) = added(&deliver(&store, inbox, 4, &dans).await);
    let find = |id| {
        let store = store.clone();
        async move { store.find_conversation(id).await.unwrap() }
    };
    assert_eq!(find(follow_up).await.unwrap().follows_id, Some(old));
    // And Carol replies in Dan's conversation.
    let mut in_cc = incoming("c3@c.test", "carol@c.test", "Re: Re: Hi");
    in_cc.in_reply_to = Some("d1@c.test".into());
    let (joined, _, _) = added(&deliver(&store, inbox, 5, &in_cc).await);
    assert_eq!(joined, follow_up);

    let carol = find(prices).await.unwrap().contact.id;
    let dans_file = store
        .find_message(dans_message)
        .await
        .unwrap()
        .unwrap()
        .attachments[0]
        .id;
    let her_messages = store.list_messages(prices).await.unwrap().len()
        + store.list_messages(old).await.unwrap().len()
        + 1;
    let blobs_before = count(&store, "SELECT COUNT(*) AS n FROM blobs").await;

    let report = store
        .delete_contact(carol)
        .await
        .unwrap()
        .expect("Carol is known");
    assert_eq!(
        report,
        DeletionReport {
            conversations: 2,
            messages: u64::try_from(her_messages).unwrap(),
            // The price list, the quote and the quote carried by the email.
            attachments: 3,
            // Her first email, its second copy, her second email, her reply to Dan.
            raw_emails: 4,
            // The four raw emails and the quote; the price list is Dan's too.
            blobs: 5,
        }
    );
    assert_eq!(
        count(&store, "SELECT COUNT(*) AS n FROM blobs").await,
        blobs_before - 5
    );
    assert_eq!(orphaned_blobs(&store).await, 0, "no bytes left behind");
    assert_eq!(find(prices).await, None);
    assert_eq!(find(old).await, None);
    let kept = find(follow_up).await.expect("Dan's conversation stays");
    assert_eq!(kept.contact.email, "dan@c.test");
    assert_eq!(kept.follows_id, None, "it no longer follows a deleted one");
    let authors: Vec<_> = store
        .list_messages(follow_up)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.author)
        .collect();
    assert!(
        !authors
            .iter()
            .any(|a| matches!(a, Author::Contact { id, .. } if *id == carol)),
        "her reply in Dan's conversation is gone too: {authors:?}"
    );
    let (_, _, bytes) = store.find_attachment(dans_file).await.unwrap().unwrap();
    assert_eq!(bytes, SHARED, "Dan's copy of the same file is intact");
    assert_eq!(count(&store, "SELECT COUNT(*) AS n FROM outbox").await, 0);
    assert_eq!(
        count(&store, "SELECT COUNT(*) AS n FROM raw_emails").await,
        1,
        "Dan's email"
    );
    assert_eq!(count(&store, "SELECT COUNT(*) AS n FROM contacts").await, 1);
    assert_eq!(store.export_contact(carol).await.unwrap(), None);
    assert_eq!(
        store.delete_contact(carol).await.unwrap(),
        None,
        "already gone"
    );
}

async fn retention_deletes_only_closed_conversations_older_than_their_inboxs_period(store: Store) {
    const LOGO: &[u8] = b"the same logo in two emails";
    const DAY: i64 = 86_400_000;
    let mut settings = inbox_settings("support@example.test");
    settings.retention_days = Some(30);
    let support = store.create_inbox(&settings).await.unwrap();
    assert_eq!(support.settings.retention_days, Some(30));
    let inbox = support.id;
    let forever = store
        .create_inbox(&inbox_settings("sales@example.test"))
        .await
        .unwrap()
        .id;
    let alice = user(&store, "alice", Role::Agent).await;
    let close_with_logo = async |uid: u32, message_id: &str| {
        let mut email = incoming(message_id, "carol@c.test", "Logo");
        email.attachments = vec![file("logo.png", LOGO)];
        let (conversation, _, _) = added(&deliver(&store, inbox, uid, &email).await);
        store.take_conversation(conversation, &alice).await.unwrap();
        store
            .close_conversation(conversation, &alice, None)
            .await
            .unwrap();
        conversation
    };
    let expired = close_with_logo(1, "old@c.test").await;
    let recent = close_with_logo(2, "recent@c.test").await;
    let (open, _, _) = added(
        &deliver(
            &store,
            inbox,
            3,
            &incoming("open@c.test", "carol@c.test", "Still open"),
        )
        .await,
    );
    let elsewhere =
        closed_conversation(&store, forever, 1, ("sales@c.test", "carol@c.test"), &alice).await;
    let now = now_ms();
    for (conversation, closed_at) in [
        (expired, Some(now - 31 * DAY)),
        (recent, Some(now - 29 * DAY)),
        (open, None),
        (elsewhere, Some(now - 365 * DAY)),
    ] {
        sqlx::query(
            "UPDATE conversations SET created_at = $1, last_message_at = $1, closed_at = $2 WHERE id = $3",
        )
        .bind(now - 400 * DAY)
        .bind(closed_at)
        .bind(conversation.0)
        .execute(store.raw_pool())
        .await
        .unwrap();
    }
    let expired_messages = store.list_messages(expired).await.unwrap().len();
    let recent_logo = store.list_messages(recent).await.unwrap()[0].attachments[0].id;

    let report = store.delete_expired_conversations(now).await.unwrap();
    assert_eq!(report.inboxes.len(), 1, "{report:?}");
    assert_eq!(report.inboxes[0].inbox_id, inbox);
    assert_eq!(report.inboxes[0].retention_days, 30);
    assert_eq!(
        report.total(),
        DeletionReport {
            conversations: 1,
            messages: u64::try_from(expired_messages).unwrap(),
            attachments: 1,
            raw_emails: 1,
            // Its raw email's bytes; the logo stays, the recent conversation has it too.
            blobs: 1,
        }
    );
    assert_eq!(store.find_conversation(expired).await.unwrap(), None);
    for kept in [recent, open, elsewhere] {
        assert!(
            store.find_conversation(kept).await.unwrap().is_some(),
            "conversation {kept} is kept"
        );
    }
    assert_eq!(orphaned_blobs(&store).await, 0);
    let (_, _, bytes) = store.find_attachment(recent_logo).await.unwrap().unwrap();
    assert_eq!(bytes, LOGO);
    let carol = store
        .find_conversation(open)
        .await
        .unwrap()
        .unwrap()
        .contact
        .id;
    assert_eq!(
        store
            .export_contact(carol)
            .await
            .unwrap()
            .expect("the contact stays")
            .conversations
            .len(),
        3
    );
    assert!(
        store
            .delete_expired_conversations(now)
            .await
            .unwrap()
            .is_empty(),
        "nothing more has expired"
    );
}

async fn sender_auth_verdicts_round_trip_and_a_dmarc_failure_marks_the_conversation(store: Store) {
    use postdesk_core::model::{AuthResult, SenderAuth};
    // Arrange: one conversation whose email passed, one whose email failed DMARC, and one
    // whose email was not checked.
    let inbox = support_inbox(&store).await;
    let passed = SenderAuth {
        spf: AuthResult::SoftFail,
        ..passed_like("good.test")
    };
    let spoofed = SenderAuth {
        dkim: AuthResult::Fail,
        spf: AuthResult::TempError,
        dmarc: AuthResult::Fail,
        from_domain: "bank.test".into(),
        aligned: false,
    };
    let good = incoming("good@good.test", "ann@good.test", "Hello");
    let good = checked(&store, inbox, 1, Some(passed.clone()), good).await;
    let bad = incoming("bad@bank.test", "ceo@bank.test", "Wire money");
    let bad = checked(&store, inbox, 2, Some(spoofed.clone()), bad).await;
    let unchecked = incoming("old@x.test", "old@x.test", "Old");
    let unchecked = checked(&store, inbox, 3, None, unchecked).await;

    // Act
    let auth_of = |id| {
        let store = store.clone();
        async move {
            store.list_messages(id).await.unwrap()[0]
                .email
                .clone()
                .unwrap()
                .auth
        }
    };
    let (good_auth, bad_auth, unchecked_auth) = (
        auth_of(good).await,
        auth_of(bad).await,
        auth_of(unchecked).await,
    );
    let queued = store
        .list_conversations(&ConversationFilter {
            status: Some(ConversationStatus::Queued),
            ..Default::default()
        })
        .await
        .unwrap();

    // Assert
    assert_eq!(good_auth, Some(passed), "a passing email's verdicts");
    assert_eq!(bad_auth, Some(spoofed), "a failing email's verdicts");
    assert_eq!(unchecked_auth, None, "an unchecked email has none");
    let marked: Vec<(ConversationId, bool)> =
        queued.iter().map(|c| (c.id, c.dmarc_failed)).collect();
    assert!(marked.contains(&(good, false)), "{marked:?}");
    assert!(marked.contains(&(bad, true)), "{marked:?}");
    assert!(marked.contains(&(unchecked, false)), "{marked:?}");
    let one = store.find_conversation(bad).await.unwrap().unwrap();
    assert!(one.dmarc_failed, "the conversation itself carries the mark");

    // A later passing email from the same contact does not clear it: the spoofed one is
    // still in the conversation.
    let later = IncomingEmail {
        in_reply_to: Some("bad@bank.test".into()),
        ..incoming("later@bank.test", "ceo@bank.test", "Re: Wire money")
    };
    let later = checked(&store, inbox, 4, Some(passed_like("bank.test")), later).await;
    assert_eq!(later, bad, "threads into the same conversation");
    let after = store.find_conversation(bad).await.unwrap().unwrap();
    assert!(after.dmarc_failed, "still marked");
}

/// Delivers `email` with the sender verdicts `auth` as UID `uid`; its conversation.
async fn checked(
    store: &Store,
    inbox: postdesk_core::ids::InboxId,
    uid: u32,
    auth: Option<postdesk_core::model::SenderAuth>,
    email: IncomingEmail,
) -> ConversationId {
    added(&deliver(store, inbox, uid, &IncomingEmail { auth, ..email }).await).0
}

fn passed_like(domain: &str) -> postdesk_core::model::SenderAuth {
    use postdesk_core::model::{AuthResult, SenderAuth};
    SenderAuth {
        dkim: AuthResult::Pass,
        spf: AuthResult::Pass,
        dmarc: AuthResult::Pass,
        from_domain: domain.into(),
        aligned: true,
    }
}

async fn emails_received_over_smtp_are_told_apart_from_fetched_ones(store: Store) {
    // Arrange
    let inbox = support_inbox(&store).await;
    store_raws(&store, inbox, 7, 1, vec![b"fetched".to_vec()]).await;
    let over_smtp = store.store_received(inbox, b"received").await.unwrap();

    // Act
    let pending = store.pending_raw(Some(inbox), 10).await.unwrap();
    let found = store.find_raw(over_smtp).await.unwrap().unwrap();

    // Assert
    let seen: Vec<(&[u8], bool)> = pending
        .iter()
        .map(|r| (r.bytes.as_slice(), r.via_smtp))
        .collect();
    assert_eq!(
        seen,
        vec![(&b"fetched"[..], false), (&b"received"[..], true)]
    );
    assert!(found.via_smtp);
}

// Mailbox sign-in with OAuth2.

fn provider_settings(name: &str) -> postdesk_store::OAuthProviderSettings {
    postdesk_store::OAuthProviderSettings {
        name: name.into(),
        kind: "generic".into(),
        client_id: "postdesk".into(),
        client_secret_encrypted: vec![9, 8, 7, 0, 255],
        auth_url: "https://id.example.test/authorize".into(),
        token_url: "https://id.example.test/token".into(),
        scopes: vec!["openid".into(), "email".into(), "mail".into()],
    }
}

/// An inbox signing in with OAuth2 at a new provider; returns (inbox, provider id).
async fn oauth_inbox(store: &Store, email: &str) -> (postdesk_store::Inbox, i64) {
    let provider = store
        .create_oauth_provider(&provider_settings(&format!("Provider of {email}")))
        .await
        .unwrap();
    let mut settings = inbox_settings(email);
    settings.imap.auth = postdesk_core::model::MailAuth::OAuth2;
    settings.smtp.auth = postdesk_core::model::MailAuth::OAuth2;
    settings.imap.password_encrypted = Vec::new();
    settings.oauth_provider_id = Some(provider.id);
    (store.create_inbox(&settings).await.unwrap(), provider.id)
}

async fn oauth_providers_keep_their_settings_and_cannot_be_deleted_while_used(store: Store) {
    let settings = provider_settings("Google Workspace");
    let provider = store.create_oauth_provider(&settings).await.unwrap();
    assert_eq!(
        provider.settings, settings,
        "every setting round-trips, scopes in order"
    );
    let dup = store.create_oauth_provider(&settings).await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");

    let mut changed = settings.clone();
    changed.scopes = vec!["https://mail.google.com/".into()];
    changed.client_secret_encrypted = vec![1];
    let updated = store
        .update_oauth_provider(provider.id, &changed)
        .await
        .unwrap();
    assert_eq!(updated.settings, changed);
    assert_eq!(store.list_oauth_providers().await.unwrap(), vec![updated]);

    let mut inbox = inbox_settings("support@example.test");
    inbox.imap.auth = postdesk_core::model::MailAuth::OAuth2;
    inbox.oauth_provider_id = Some(provider.id);
    let inbox = store.create_inbox(&inbox).await.unwrap();
    assert_eq!(inbox.settings.oauth_provider_id, Some(provider.id));
    assert_eq!(
        inbox.settings.imap.auth,
        postdesk_core::model::MailAuth::OAuth2
    );
    assert_eq!(
        inbox.settings.smtp.auth,
        postdesk_core::model::MailAuth::Password,
        "each server keeps its own sign-in method"
    );
    let refused = store.delete_oauth_provider(provider.id).await;
    assert!(
        matches!(&refused, Err(StoreError::Conflict(m)) if m.contains("support@example.test")),
        "{refused:?}"
    );

    let mut back = inbox.settings.clone();
    back.imap.auth = postdesk_core::model::MailAuth::Password;
    back.oauth_provider_id = None;
    store.update_inbox(inbox.id, &back).await.unwrap();
    store.delete_oauth_provider(provider.id).await.unwrap();
    assert!(store.list_oauth_providers().await.unwrap().is_empty());
    assert!(matches!(
        store.delete_oauth_provider(provider.id).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn oauth_tokens_keep_a_rotated_refresh_token_and_one_refresh_holds_the_lease(store: Store) {
    let (inbox, provider) = oauth_inbox(&store, "support@example.test").await;
    assert_eq!(store.find_oauth_tokens(inbox.id).await.unwrap(), None);
    assert!(
        !store
            .lease_oauth_refresh(inbox.id, now_ms() + 30_000)
            .await
            .unwrap(),
        "nothing to refresh before the inbox is connected"
    );

    store
        .connect_oauth(
            inbox.id,
            provider,
            Some(b"refresh-1"),
            b"access-1",
            Some(1_000),
        )
        .await
        .unwrap();
    let tokens = store.find_oauth_tokens(inbox.id).await.unwrap().unwrap();
    assert_eq!(
        tokens.refresh_token_encrypted.as_deref(),
        Some(&b"refresh-1"[..])
    );
    assert_eq!(
        tokens.access_token_encrypted.as_deref(),
        Some(&b"access-1"[..])
    );
    assert_eq!(tokens.access_expires_at, Some(1_000));
    assert_eq!(tokens.provider_id, provider);
    assert_eq!(tokens.refreshed_at, None);

    // Many callers at once (on any node): exactly one gets the lease.
    let mut racers = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        racers.push(tokio::spawn(async move {
            store
                .lease_oauth_refresh(inbox.id, now_ms() + 30_000)
                .await
                .unwrap()
        }));
    }
    let mut winners = 0;
    for racer in racers {
        winners += usize::from(racer.await.unwrap());
    }
    assert_eq!(winners, 1, "one refresh at a time per inbox");

    store
        .store_refreshed_oauth(inbox.id, b"access-2", Some(2_000), Some(b"refresh-2"))
        .await
        .unwrap();
    let tokens = store.find_oauth_tokens(inbox.id).await.unwrap().unwrap();
    assert_eq!(
        tokens.refresh_token_encrypted.as_deref(),
        Some(&b"refresh-2"[..]),
        "a rotated refresh token is stored with the new access token"
    );
    assert_eq!(
        tokens.access_token_encrypted.as_deref(),
        Some(&b"access-2"[..])
    );
    assert_eq!(tokens.access_expires_at, Some(2_000));
    assert!(tokens.refreshed_at.is_some());

    assert!(
        store
            .lease_oauth_refresh(inbox.id, now_ms() + 30_000)
            .await
            .unwrap(),
        "storing the result gives the lease back"
    );
    store
        .store_refreshed_oauth(inbox.id, b"access-3", Some(3_000), None)
        .await
        .unwrap();
    let tokens = store.find_oauth_tokens(inbox.id).await.unwrap().unwrap();
    assert_eq!(
        tokens.refresh_token_encrypted.as_deref(),
        Some(&b"refresh-2"[..]),
        "a provider that does not rotate keeps the refresh token"
    );

    assert!(
        store
            .lease_oauth_refresh(inbox.id, now_ms() + 30_000)
            .await
            .unwrap()
    );
    assert!(
        !store
            .lease_oauth_refresh(inbox.id, now_ms() + 30_000)
            .await
            .unwrap()
    );
    store.release_oauth_lease(inbox.id).await.unwrap();
    assert!(
        store
            .lease_oauth_refresh(inbox.id, now_ms() - 1)
            .await
            .unwrap()
    );
    assert!(
        store
            .lease_oauth_refresh(inbox.id, now_ms() + 30_000)
            .await
            .unwrap(),
        "a lease that ran out (its node died) is taken over"
    );
}

async fn a_refused_refresh_needs_reauth_until_the_inbox_is_connected_again(store: Store) {
    let (inbox, provider) = oauth_inbox(&store, "support@example.test").await;
    let (other, other_provider) = oauth_inbox(&store, "sales@example.test").await;
    for (id, p) in [(inbox.id, provider), (other.id, other_provider)] {
        store
            .connect_oauth(id, p, Some(b"refresh"), b"access", Some(1_000))
            .await
            .unwrap();
    }
    assert!(
        store
            .lease_oauth_refresh(inbox.id, now_ms() + 30_000)
            .await
            .unwrap()
    );
    store
        .oauth_refresh_refused(inbox.id, "grant request is invalid (invalid_grant)")
        .await
        .unwrap();

    let found = store.find_inbox(inbox.id).await.unwrap().unwrap();
    assert_eq!(found.status.state, InboxState::NeedsReauth);
    assert_eq!(
        found.status.last_error.as_deref(),
        Some("grant request is invalid (invalid_grant)")
    );
    let tokens = store.find_oauth_tokens(inbox.id).await.unwrap().unwrap();
    assert_eq!(
        tokens.reauth_error.as_deref(),
        Some("grant request is invalid (invalid_grant)")
    );
    assert_eq!(
        tokens.access_token_encrypted, None,
        "a refused grant's token is dropped"
    );
    assert!(
        !store
            .lease_oauth_refresh(inbox.id, now_ms() + 30_000)
            .await
            .unwrap(),
        "no refresh is tried again until the inbox is connected again"
    );
    let untouched = store.find_inbox(other.id).await.unwrap().unwrap();
    assert_ne!(
        untouched.status.state,
        InboxState::NeedsReauth,
        "other inboxes untouched"
    );
    assert!(
        store
            .find_oauth_tokens(other.id)
            .await
            .unwrap()
            .unwrap()
            .reauth_error
            .is_none()
    );

    store
        .connect_oauth(
            inbox.id,
            provider,
            Some(b"refresh-new"),
            b"access-new",
            Some(5_000),
        )
        .await
        .unwrap();
    let tokens = store.find_oauth_tokens(inbox.id).await.unwrap().unwrap();
    assert_eq!(tokens.reauth_error, None);
    assert_eq!(
        tokens.refresh_token_encrypted.as_deref(),
        Some(&b"refresh-new"[..])
    );
    assert!(
        store
            .lease_oauth_refresh(inbox.id, now_ms() + 30_000)
            .await
            .unwrap()
    );
}

async fn a_connection_under_way_is_taken_once_and_not_after_it_expired(store: Store) {
    let (inbox, provider) = oauth_inbox(&store, "support@example.test").await;
    let admin = store
        .create_user(&NewUser {
            username: "boss".into(),
            name: "Boss".into(),
            email: "boss@example.test".into(),
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            roles: vec![Role::Admin],
        })
        .await
        .unwrap();
    let pending = |state: &str, expires_at: i64| postdesk_store::OAuthPending {
        state: state.into(),
        inbox_id: inbox.id,
        provider_id: provider,
        session_hash: "session-hash".into(),
        user_id: admin.id,
        verifier_encrypted: vec![4, 5, 6],
        redirect_uri: "http://127.0.0.1:8080/api/v1/oauth/callback".into(),
        expires_at,
    };
    let live = pending("state-live", now_ms() + 600_000);
    store.save_oauth_pending(&live).await.unwrap();
    store
        .save_oauth_pending(&pending("state-old", now_ms() - 1))
        .await
        .unwrap();

    assert_eq!(
        store.take_oauth_pending("state-unknown").await.unwrap(),
        None
    );
    assert_eq!(
        store.take_oauth_pending("state-live").await.unwrap(),
        Some(live)
    );
    assert_eq!(
        store.take_oauth_pending("state-live").await.unwrap(),
        None,
        "a state works once"
    );
    assert_eq!(
        store.take_oauth_pending("state-old").await.unwrap(),
        None,
        "expired"
    );
}

async fn an_email_waiting_for_a_reconnect_keeps_its_attempts_and_is_due_once_connected(
    store: Store,
) {
    let (inbox, provider) = oauth_inbox(&store, "support@example.test").await;
    let alice = user(&store, "alice", Role::Agent).await;
    let (conversation, _, _) = added(
        &deliver(
            &store,
            inbox.id,
            1,
            &incoming("a@c.test", "carol@c.test", "Hi"),
        )
        .await,
    );
    let email = store
        .queue_email(conversation, alice.id, &queued("out1@example.test", None))
        .await
        .unwrap();
    let far = now_ms() + 3_600_000;
    for _ in 0..3 {
        let item = store.claim_outbox(60_000).await.unwrap().expect("due");
        assert_eq!(item.attempts, 1, "waiting never counts as an attempt");
        store
            .wait_for_reconnect(&item, now_ms() - 1, "connect the inbox again")
            .await
            .unwrap();
    }
    let item = store.claim_outbox(60_000).await.unwrap().expect("due");
    store
        .wait_for_reconnect(&item, far, "connect the inbox again")
        .await
        .unwrap();
    let message = store.find_message(email.id).await.unwrap().unwrap();
    let delivery = message.email.unwrap().delivery.unwrap();
    assert_eq!(delivery.status, DeliveryStatus::Queued);
    assert_eq!(delivery.error.as_deref(), Some("connect the inbox again"));
    assert!(
        store.claim_outbox(60_000).await.unwrap().is_none(),
        "not due yet"
    );

    store
        .connect_oauth(inbox.id, provider, Some(b"r"), b"a", None)
        .await
        .unwrap();
    let item = store.claim_outbox(60_000).await.unwrap();
    assert_eq!(
        item.map(|i| i.message_id),
        Some(email.id),
        "due at once when the inbox is connected again"
    );

    store.disconnect_oauth(inbox.id).await.unwrap();
    assert_eq!(store.find_oauth_tokens(inbox.id).await.unwrap(), None);
}

// Tags and full-text search.

/// Delivers a new email (Message-ID, from, subject) as UID `uid`; returns its conversation.
async fn opened(
    store: &Store,
    inbox: postdesk_core::ids::InboxId,
    uid: u32,
    (message_id, from, subject): (&str, &str, &str),
) -> ConversationId {
    added(&deliver(store, inbox, uid, &incoming(message_id, from, subject)).await).0
}

fn tags(list: &[&str]) -> postdesk_core::search::Tags {
    postdesk_core::search::Tags::parse(list).unwrap()
}

fn search_for(text: &str) -> postdesk_store::SearchQuery {
    postdesk_store::SearchQuery {
        terms: postdesk_core::search::SearchTerms::parse(text),
        status: None,
        inbox: None,
        visible: None,
        limit: 50,
    }
}

/// The conversations a search finds, best first.
async fn found(store: &Store, query: &postdesk_store::SearchQuery) -> Vec<ConversationId> {
    store
        .search(query)
        .await
        .unwrap()
        .iter()
        .map(|h| h.conversation.id)
        .collect()
}

/// How many rows the full-text indexes hold for `word`, whether or not their rows still
/// exist (ghosts included).
async fn indexed(store: &Store, word: &str) -> i64 {
    use sqlx::Row as _;
    let sql = match store.backend() {
        postdesk_store::Backend::Sqlite => {
            "SELECT (SELECT COUNT(*) FROM messages_fts WHERE messages_fts MATCH $1)
                  + (SELECT COUNT(*) FROM conversations_fts WHERE conversations_fts MATCH $1) AS n"
        }
        postdesk_store::Backend::Postgres => {
            "SELECT (SELECT COUNT(*) FROM message_search WHERE document @@ to_tsquery('simple', $1))
                  + (SELECT COUNT(*) FROM conversation_search WHERE document @@ to_tsquery('simple', $1)) AS n"
        }
    };
    sqlx::query(sql)
        .bind(word)
        .fetch_one(store.raw_pool())
        .await
        .unwrap()
        .try_get("n")
        .unwrap()
}

async fn tags_are_set_replaced_and_filter_the_list_within_what_one_may_see(store: Store) {
    use postdesk_core::access::ListScope;
    let sales = store.create_department("Sales").await.unwrap();
    let mut settings = inbox_settings("sales@example.test");
    settings.department_id = Some(sales.id.0);
    let sales_inbox = store.create_inbox(&settings).await.unwrap().id;
    let inbox = support_inbox(&store).await;
    let ben = user(&store, "ben", Role::Agent).await;
    let first = opened(&store, inbox, 1, ("t1@c.test", "carol@c.test", "One")).await;
    let second = opened(&store, inbox, 2, ("t2@c.test", "dave@c.test", "Two")).await;
    let hidden = opened(
        &store,
        sales_inbox,
        1,
        ("t3@c.test", "erin@c.test", "Three"),
    )
    .await;
    assert!(
        store
            .find_conversation(first)
            .await
            .unwrap()
            .unwrap()
            .tags
            .is_empty()
    );

    let tagged = store
        .set_tags(first, &tags(&["Billing", " VIP  customer "]))
        .await
        .unwrap();
    assert_eq!(tagged.tags, ["Billing", "VIP customer"]);
    store.set_tags(second, &tags(&["billing"])).await.unwrap();
    store
        .set_tags(hidden, &tags(&["BILLING", "secret"]))
        .await
        .unwrap();
    let with_tag = async |tag: &str, visible: Option<ListScope>| -> Vec<ConversationId> {
        let filter = ConversationFilter {
            tag: Some(tag.into()),
            visible,
            ..ConversationFilter::default()
        };
        let mut ids: Vec<_> = store
            .list_conversations(&filter)
            .await
            .unwrap()
            .iter()
            .map(|c| c.id)
            .collect();
        ids.sort_unstable();
        ids
    };
    assert_eq!(
        with_tag("bILLing", None).await,
        [first, second, hidden],
        "case does not matter"
    );
    assert_eq!(with_tag("vip customer", None).await, [first]);
    // Ben (no department) sees the queue of inboxes without one, never the Sales inbox's.
    let bens = Some(ListScope::QueueAndMine(ben.id));
    assert_eq!(with_tag("billing", bens.clone()).await, [first, second]);
    assert!(with_tag("secret", bens.clone()).await.is_empty());
    let status = ConversationFilter {
        tag: Some("billing".into()),
        status: Some(ConversationStatus::Open),
        ..ConversationFilter::default()
    };
    assert!(
        store.list_conversations(&status).await.unwrap().is_empty(),
        "combined with the status"
    );

    // Replaced, not added to.
    let replaced = store
        .set_tags(first, &tags(&["vip customer"]))
        .await
        .unwrap();
    assert_eq!(replaced.tags, ["vip customer"]);
    assert_eq!(with_tag("billing", None).await, [second, hidden]);
    assert_eq!(
        store
            .list_conversations(&ConversationFilter {
                tag: Some("vip customer".into()),
                ..ConversationFilter::default()
            })
            .await
            .unwrap()[0]
            .tags,
        ["vip customer"]
    );
    assert!(
        store
            .set_tags(first, &tags(&[]))
            .await
            .unwrap()
            .tags
            .is_empty()
    );
    assert!(matches!(
        store.set_tags(ConversationId(9999), &tags(&["x"])).await,
        Err(StoreError::NotFound(_))
    ));

    let in_use = store.tags_in_use(None, 10).await.unwrap();
    let in_use: Vec<(String, i64)> = in_use
        .into_iter()
        .map(|t| (t.tag.to_lowercase(), t.conversations))
        .collect();
    assert_eq!(
        in_use,
        [("billing".to_owned(), 2), ("secret".to_owned(), 1)]
    );
    let bens_tags = store.tags_in_use(bens.as_ref(), 10).await.unwrap();
    assert_eq!(
        bens_tags.len(),
        1,
        "only the tags of what Ben may see: {bens_tags:?}"
    );
    assert_eq!(
        (bens_tags[0].tag.as_str(), bens_tags[0].conversations),
        ("billing", 1)
    );
}

async fn search_ranks_a_subject_match_first_and_finds_message_text_and_contacts(store: Store) {
    let inbox = support_inbox(&store).await;
    let mut in_text = incoming("s1@c.test", "dave@c.test", "Hello there");
    in_text.text = "Our printer is broken again, see the invoice <b>attached</b> & more.".into();
    let (text_match, text_message, _) = added(&deliver(&store, inbox, 1, &in_text).await);
    let subject_match = opened(
        &store,
        inbox,
        2,
        ("s2@c.test", "carol@c.test", "Printer on fire"),
    )
    .await;
    let mut contact = incoming("s3@c.test", "zoe.quartz@example.org", "A question");
    contact.contact.name = Some("Zoë Quartz".into());
    let (contact_match, _, _) = added(&deliver(&store, inbox, 3, &contact).await);

    let hits = store.search(&search_for("printer")).await.unwrap();
    let ids: Vec<_> = hits.iter().map(|h| h.conversation.id).collect();
    assert_eq!(ids, [subject_match, text_match], "the subject match first");
    assert_eq!(hits[0].message_id, None);
    assert!(
        hits[0].snippet.contains("<mark>Printer</mark> on fire"),
        "{}",
        hits[0].snippet
    );
    assert_eq!(hits[1].message_id, Some(text_message));
    assert!(
        hits[1].snippet.contains("<mark>printer</mark>"),
        "{}",
        hits[1].snippet
    );

    // Escaped but for the marks; words are found by their start, every word must match.
    let hits = store.search(&search_for("INVOI brok")).await.unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].conversation.id, text_match);
    let snippet = &hits[0].snippet;
    assert!(
        snippet.contains("<mark>invoice</mark>") && snippet.contains("<mark>broken</mark>"),
        "{snippet}"
    );
    assert!(
        !snippet.contains("<b>") && !snippet.contains(" & "),
        "escaped: {snippet}"
    );
    assert!(
        found(&store, &search_for("printer xylophone"))
            .await
            .is_empty()
    );
    assert_eq!(
        found(&store, &search_for("\"printer is broken\"")).await,
        [text_match]
    );
    assert!(
        found(&store, &search_for("\"broken printer\""))
            .await
            .is_empty(),
        "a phrase keeps its order"
    );

    // Contacts by name and address; subject and contact together.
    for query in ["quartz", "zoe.quartz@example.org", "quartz question"] {
        assert_eq!(
            found(&store, &search_for(query)).await,
            [contact_match],
            "{query}"
        );
    }
    let hit = &store.search(&search_for("quartz")).await.unwrap()[0];
    assert!(
        hit.snippet.contains("<mark>Quartz</mark>"),
        "{}",
        hit.snippet
    );

    // Filters.
    let mut query = search_for("printer");
    query.status = Some(ConversationStatus::Closed);
    assert!(found(&store, &query).await.is_empty());
    query.status = Some(ConversationStatus::Queued);
    query.inbox = Some(inbox);
    query.limit = 1;
    assert_eq!(found(&store, &query).await, [subject_match]);
}

async fn search_keeps_in_step_with_batches_internal_messages_deletions_and_retention(store: Store) {
    let inbox = support_inbox(&store).await;
    let alice = user(&store, "alice", Role::Agent).await;

    // A batch of emails, as the IMAP reader stores them.
    let mut emails = Vec::new();
    for i in 0..5 {
        let mut email = incoming(
            &format!("b{i}@c.test"),
            &format!("c{i}@c.test"),
            &format!("Batch lime{i}"),
        );
        email.text = format!("kumquat number{i}");
        emails.push(email);
    }
    let mut reply = incoming("b5@c.test", "c0@c.test", "Re: Batch 0");
    reply.in_reply_to = Some("b0@c.test".into());
    reply.text = "tangerine in the reply".into();
    emails.push(reply);
    store_raws(
        &store,
        inbox,
        7,
        1,
        (0..emails.len())
            .map(|i| format!("raw {i}").into_bytes())
            .collect(),
    )
    .await;
    let pending = store.pending_raw(Some(inbox), 100).await.unwrap();
    let batch: Vec<_> = pending
        .iter()
        .zip(&emails)
        .map(|(raw, email)| (raw.id, email.clone()))
        .collect();
    let outcomes = store.ingest_batch(inbox, &batch).await.unwrap();
    let (first, _, _) = added(outcomes[0].as_ref().unwrap());
    assert_eq!(found(&store, &search_for("kumquat")).await.len(), 5);
    assert_eq!(found(&store, &search_for("kumquat number3")).await.len(), 1);
    assert_eq!(
        found(&store, &search_for("tangerine")).await,
        [first],
        "the threaded reply"
    );

    // An internal message is found; system lines are not indexed.
    store.take_conversation(first, &alice).await.unwrap();
    let note = store
        .add_internal_message(first, alice.id, "Call back about the pomelo")
        .await
        .unwrap();
    let hits = store.search(&search_for("pomelo")).await.unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].message_id, Some(note.id));
    assert!(
        found(&store, &search_for("taken")).await.is_empty(),
        "\"Taken by @alice\" is not indexed"
    );

    // A contact's new name is found in their conversations.
    let mut renamed = incoming("b6@c.test", "c1@c.test", "Batch 1 again");
    renamed.contact.name = Some("Quincy Renamed".into());
    renamed.text = "more".into();
    deliver(&store, inbox, 20, &renamed).await;
    assert_eq!(found(&store, &search_for("quincy")).await.len(), 2);

    // Deleting a contact leaves nothing of theirs in the indexes.
    let c2 = store
        .find_conversation(added(outcomes[2].as_ref().unwrap()).0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(indexed(&store, "number2").await, 1);
    store.delete_contact(c2.contact.id).await.unwrap().unwrap();
    assert_eq!(
        indexed(&store, "number2").await,
        0,
        "no ghost of the deleted messages"
    );
    assert!(found(&store, &search_for("number2")).await.is_empty());
    assert_eq!(found(&store, &search_for("kumquat")).await.len(), 4);

    // Retention deletes closed conversations: from the indexes too.
    let mut settings = inbox_settings("support@example.test");
    settings.retention_days = Some(1);
    store.update_inbox(inbox, &settings).await.unwrap();
    let c3 = added(outcomes[3].as_ref().unwrap()).0;
    store.take_conversation(c3, &alice).await.unwrap();
    store.close_conversation(c3, &alice, None).await.unwrap();
    sqlx::query("UPDATE conversations SET closed_at = $1 WHERE id = $2")
        .bind(now_ms() - 2 * 86_400_000)
        .bind(c3.0)
        .execute(store.raw_pool())
        .await
        .unwrap();
    assert_eq!(
        indexed(&store, "lime3").await + indexed(&store, "number3").await,
        2,
        "its subject and its message"
    );
    store.delete_expired_conversations(now_ms()).await.unwrap();
    assert_eq!(indexed(&store, "number3").await, 0);
    assert_eq!(indexed(&store, "lime3").await, 0);
    assert_eq!(found(&store, &search_for("kumquat")).await.len(), 3);
}

async fn an_agent_finds_only_what_they_may_open(store: Store) {
    use postdesk_core::access::ListScope;
    let sales = store.create_department("Sales").await.unwrap();
    let billing = store.create_department("Billing").await.unwrap();
    let mut settings = inbox_settings("sales@example.test");
    settings.department_id = Some(sales.id.0);
    let sales_inbox = store.create_inbox(&settings).await.unwrap().id;
    let ana = user(&store, "ana", Role::Agent).await;
    let olga = user(&store, "olga", Role::Agent).await;
    let ben = user(&store, "ben", Role::Agent).await;
    let meg = user(&store, "meg", Role::Manager).await;
    for (department, who) in [
        (sales.id, ana.id),
        (sales.id, olga.id),
        (billing.id, ben.id),
        (billing.id, meg.id),
    ] {
        store.add_department_member(department, who).await.unwrap();
    }
    let queued = opened(
        &store,
        sales_inbox,
        1,
        ("d1@c.test", "carol@c.test", "Walrus queued"),
    )
    .await;
    let taken = opened(
        &store,
        sales_inbox,
        2,
        ("d2@c.test", "dave@c.test", "Walrus taken"),
    )
    .await;
    store.take_conversation(taken, &ana).await.unwrap();
    store
        .add_internal_message(taken, ana.id, "internal walrus note")
        .await
        .unwrap();

    let as_user = async |scope: ListScope| {
        let mut query = search_for("walrus");
        query.visible = Some(scope);
        let mut ids = found(&store, &query).await;
        ids.sort_unstable();
        ids
    };
    assert_eq!(
        as_user(ListScope::QueueAndMine(ana.id)).await,
        [queued, taken]
    );
    assert_eq!(
        as_user(ListScope::QueueAndMine(olga.id)).await,
        [queued],
        "not Ana's conversation"
    );
    assert!(
        as_user(ListScope::QueueAndMine(ben.id)).await.is_empty(),
        "another department"
    );
    assert!(
        as_user(ListScope::Departments(meg.id)).await.is_empty(),
        "a manager of another department"
    );
    assert_eq!(as_user(ListScope::All).await, [queued, taken]);
    // Invited into it, Ben finds it, internal note included.
    store.add_member(taken, &ben, &ana).await.unwrap();
    let mut query = search_for("note");
    query.visible = Some(ListScope::QueueAndMine(ben.id));
    assert_eq!(found(&store, &query).await, [taken]);
}

async fn search_input_with_full_text_syntax_never_fails(store: Store) {
    let inbox = support_inbox(&store).await;
    let mut email = incoming("x1@c.test", "carol@c.test", "Order #42: NEAR the AND gate");
    email.text = "Don't \"quote\" me: C++ & (parens) * stars ^caret -minus col:value".into();
    let (conversation, _, _) = added(&deliver(&store, inbox, 1, &email).await);
    for hostile in [
        "\"",
        "\"\"",
        "*",
        "**",
        "NEAR(order 42)",
        "AND",
        "OR NOT",
        "order OR",
        "col:value",
        "'; DROP TABLE messages; --",
        "(!&|<->:*)",
        "^caret",
        "\"unclosed phrase",
        "-minus",
        "+",
        "c++",
        "🙂",
        "\u{0345}\u{0301}",
        "½",
        "a\u{0}b",
        "\\",
        "%_",
    ] {
        let result = store.search(&search_for(hostile)).await;
        assert!(result.is_ok(), "{hostile:?}: {result:?}");
    }
    assert!(found(&store, &search_for("!!! ... ???")).await.is_empty());
    for query in ["NEAR", "order #42", "(parens) col:value", "\"don't quote\""] {
        assert_eq!(
            found(&store, &search_for(query)).await,
            [conversation],
            "{query}"
        );
    }
}

/// Migration 0013 on a database that already holds conversations: what was stored before it
/// is found. The database is taken back to before 0013 (its tables, triggers and record
/// dropped), then connected again, which runs 0013 once more.
async fn the_search_migration_indexes_what_was_stored_before_it(url: &str) {
    let store = Store::connect(url).await.unwrap();
    let inbox = support_inbox(&store).await;
    let mut email = incoming("before@c.test", "zelda@c.test", "Stored earlier");
    email.text = "an ocelot in the text".into();
    let conversation = added(&deliver(&store, inbox, 1, &email).await).0;
    let undo: &[&str] = match store.backend() {
        postdesk_store::Backend::Sqlite => &[
            "DROP TRIGGER messages_fts_insert",
            "DROP TRIGGER messages_fts_delete",
            "DROP TRIGGER messages_fts_update",
            "DROP TRIGGER conversations_fts_insert",
            "DROP TRIGGER conversations_fts_delete",
            "DROP TRIGGER conversations_fts_update",
            "DROP TRIGGER contacts_fts_update",
            "DROP TABLE messages_fts",
            "DROP TABLE conversations_fts",
            "DROP TABLE conversation_tags",
            "ALTER TABLE conversations DROP COLUMN tags",
        ],
        postdesk_store::Backend::Postgres => &[
            "DROP TABLE message_search, conversation_search, conversation_tags",
            "DROP TRIGGER messages_search_insert ON messages",
            "DROP TRIGGER messages_search_update ON messages",
            "DROP TRIGGER conversations_search_insert ON conversations",
            "DROP TRIGGER conversations_search_update ON conversations",
            "DROP TRIGGER contacts_search_update ON contacts",
            "DROP FUNCTION message_search_insert, message_search_update, conversation_search_insert,
                 conversation_search_update, contact_search_update, conversation_document, search_document",
            "ALTER TABLE conversations DROP COLUMN tags",
        ],
    };
    for sql in undo
        .iter()
        .chain(&["DELETE FROM _sqlx_migrations WHERE version = 13"])
    {
        sqlx::query(sqlx::AssertSqlSafe(*sql))
            .execute(store.raw_pool())
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    store.close().await;

    let store = Store::connect(url).await.unwrap();
    for (words, message) in [("ocelot", true), ("zelda earlier", false)] {
        let hits = store.search(&search_for(words)).await.unwrap();
        assert_eq!(hits.len(), 1, "{words}");
        assert_eq!(hits[0].conversation.id, conversation);
        assert_eq!(hits[0].message_id.is_some(), message, "{words}");
    }
    assert!(
        store
            .find_conversation(conversation)
            .await
            .unwrap()
            .unwrap()
            .tags
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_search_migration_indexes_what_was_stored_before_it_on_sqlite() {
    postdesk_testkit::init();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/postdesk.db", dir.path().display());
    the_search_migration_indexes_what_was_stored_before_it(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_search_migration_indexes_what_was_stored_before_it_on_postgres() {
    postdesk_testkit::init();
    let db = postdesk_testkit::PgDatabase::create()
        .await
        .expect("PostgreSQL on 127.0.0.1:5432");
    the_search_migration_indexes_what_was_stored_before_it(db.url()).await;
}
