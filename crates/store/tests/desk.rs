//! The team desk's actions, on SQLite and PostgreSQL: transfer, On Hold and resume, snooze
//! and its wake-ups, merge.

#[macro_use]
mod common;

use std::sync::atomic::{AtomicU32, Ordering};

use postdesk_core::access::{self, Action, Actor, Denial, ListScope};
use postdesk_core::ids::{ConversationId, DepartmentId, InboxId, MessageId};
use postdesk_core::model::{ConversationStatus, MessageKind, Role};
use postdesk_core::search::{SearchTerms, Tags};
use postdesk_store::{
    Addr, ConversationFilter, DeskError, IncomingEmail, IngestOutcome, NewUser, SearchQuery, Store,
    StoreFetched, TransferTarget, User, Waiting, now_ms,
};

contract!(
    transfer_to_an_agent_makes_them_the_assignee_and_ends_the_previous_membership,
    transfer_to_an_agent_is_refused_with_words_when_they_cannot_take_it,
    transfer_to_a_department_puts_it_in_that_queue,
    hold_and_resume_keep_the_assignee_and_refuse_other_statuses,
    an_email_from_the_contact_resumes_a_conversation_on_hold,
    a_snooze_needs_a_time_within_a_year_and_ends_at_that_time,
    the_contacts_email_ends_a_snooze_before_its_time,
    merge_moves_the_messages_in_order_unites_tags_and_keeps_members,
    replies_to_either_merged_conversation_land_in_the_survivor_also_through_chains,
    search_finds_moved_messages_under_the_survivor,
    merge_is_refused_into_itself_into_a_merged_one_and_from_a_closed_one,
    an_agent_who_may_not_write_one_of_them_cannot_merge,
);

/// An inbox in Sales; ann and bob are Sales agents, carl a Billing agent, mona a Sales
/// manager, dave a deactivated Sales agent.
struct Desk {
    store: Store,
    inbox: InboxId,
    sales: DepartmentId,
    billing: DepartmentId,
    ann: User,
    bob: User,
    carl: User,
    mona: User,
    dave: User,
    next_uid: AtomicU32,
}

impl Desk {
    async fn new(store: Store) -> Self {
        let sales = store.create_department("Sales").await.unwrap().id;
        let billing = store.create_department("Billing").await.unwrap().id;
        let mut settings = common::inbox_settings("support@example.test");
        settings.department_id = Some(sales.0);
        let inbox = store.create_inbox(&settings).await.unwrap().id;
        let mut people = Vec::new();
        for (name, role, department) in [
            ("ann", Role::Agent, sales),
            ("bob", Role::Agent, sales),
            ("carl", Role::Agent, billing),
            ("mona", Role::Manager, sales),
            ("dave", Role::Agent, sales),
        ] {
            let user = store
                .create_user(&NewUser {
                    username: name.into(),
                    name: name.to_uppercase(),
                    email: format!("{name}@agents.test"),
                    password_hash: "$argon2id$fake".into(),
                    roles: vec![role],
                })
                .await
                .unwrap();
            store
                .add_department_member(department, user.id)
                .await
                .unwrap();
            people.push(user);
        }
        store.set_user_active(people[4].id, false).await.unwrap();
        let mut people = people.into_iter();
        let mut next = || people.next().unwrap();
        Desk {
            inbox,
            sales,
            billing,
            ann: next(),
            bob: next(),
            carl: next(),
            mona: next(),
            dave: next(),
            store,
            next_uid: AtomicU32::new(1),
        }
    }

    /// An email from carol, replying to `in_reply_to` when given, stored and ingested.
    async fn email_with(
        &self,
        message_id: &str,
        in_reply_to: Option<&str>,
        auto_reply: bool,
    ) -> IngestOutcome {
        let address = Addr {
            name: Some("Carol".into()),
            email: "carol@c.test".into(),
        };
        let email = IncomingEmail {
            message_id: message_id.into(),
            in_reply_to: in_reply_to.map(Into::into),
            references: in_reply_to.map(|r| vec![r.to_owned()]).unwrap_or_default(),
            contact: address.clone(),
            from: Some(address),
            to: vec![],
            cc: vec![],
            subject: format!("About {message_id}"),
            date: None,
            text: format!("text of {message_id}"),
            html: None,
            attachments: vec![],
            auto_reply,
            attach_original: false,
            auth: None,
        };
        let uid = self.next_uid.fetch_add(1, Ordering::SeqCst);
        self.store
            .store_fetched(
                self.inbox,
                "INBOX",
                1,
                vec![StoreFetched {
                    uid,
                    bytes: message_id.as_bytes().to_vec(),
                }],
                uid + 1,
            )
            .await
            .unwrap();
        let raw = self.store.pending_raw(Some(self.inbox), 1).await.unwrap();
        self.store
            .ingest_email(raw[0].id, self.inbox, &email)
            .await
            .unwrap()
    }

    async fn email(
        &self,
        message_id: &str,
        in_reply_to: Option<&str>,
    ) -> (ConversationId, MessageId, bool) {
        match self.email_with(message_id, in_reply_to, false).await {
            IngestOutcome::Added {
                conversation_id,
                message_id,
                resumed,
                ..
            } => (conversation_id, message_id, resumed),
            other => panic!("{message_id} was not added: {other:?}"),
        }
    }

    /// A new conversation from carol, taken by `agent`.
    async fn taken(&self, message_id: &str, agent: &User) -> ConversationId {
        let (id, _, _) = self.email(message_id, None).await;
        self.store.take_conversation(id, agent).await.unwrap();
        id
    }

    /// The texts of a conversation's messages (only its system lines: `system_only`), in
    /// order.
    async fn texts(&self, id: ConversationId, system_only: bool) -> Vec<String> {
        self.store
            .list_messages(id)
            .await
            .unwrap()
            .into_iter()
            .filter(|m| !system_only || m.kind == MessageKind::System)
            .map(|m| m.text)
            .collect()
    }

    /// The texts of a conversation's system lines, in order.
    async fn lines(&self, id: ConversationId) -> Vec<String> {
        self.texts(id, true).await
    }

    async fn status(&self, id: ConversationId) -> ConversationStatus {
        self.store
            .find_conversation(id)
            .await
            .unwrap()
            .unwrap()
            .status
    }
}

fn invalid(result: Result<impl std::fmt::Debug, DeskError>) -> String {
    match result {
        Err(DeskError::Invalid(words)) => words,
        other => panic!("expected a refusal (422), got {other:?}"),
    }
}

fn conflict(result: Result<impl std::fmt::Debug, DeskError>) -> String {
    match result {
        Err(DeskError::Conflict(words)) => words,
        other => panic!("expected a conflict (409), got {other:?}"),
    }
}

async fn transfer_to_an_agent_makes_them_the_assignee_and_ends_the_previous_membership(
    store: Store,
) {
    let desk = Desk::new(store).await;
    let store = &desk.store;
    let id = desk.taken("t1@c.test", &desk.ann).await;

    // Act: ann hands it to bob.
    let done = store
        .transfer_conversation(
            id,
            &desk.ann,
            TransferTarget::Agent(desk.bob.id),
            Some(" customer speaks German "),
        )
        .await
        .unwrap();

    // Assert
    assert_eq!(done.previous_assignee, Some(desk.ann.id));
    assert_eq!(done.conversation.status, ConversationStatus::Open);
    assert_eq!(done.conversation.assignee_id, Some(desk.bob.id));
    assert_eq!(done.conversation.department_id, Some(desk.sales));
    assert!(store.is_member(id, desk.bob.id).await.unwrap());
    assert!(
        !store.is_member(id, desk.ann.id).await.unwrap(),
        "ann is out"
    );
    assert_eq!(
        desk.lines(id).await.last().unwrap(),
        "Transferred by @ann to @bob: customer speaks German"
    );

    // An invited previous assignee stays a member: bob invites ann, hands it back to her;
    // she hands it to the manager, and is still in by her invitation; bob, never invited,
    // is out.
    store.add_member(id, &desk.ann, &desk.bob).await.unwrap();
    store
        .transfer_conversation(id, &desk.bob, TransferTarget::Agent(desk.ann.id), None)
        .await
        .unwrap();
    assert_eq!(
        desk.lines(id).await.last().unwrap(),
        "Transferred by @bob to @ann"
    );
    store
        .transfer_conversation(id, &desk.ann, TransferTarget::Agent(desk.mona.id), None)
        .await
        .unwrap();
    assert!(store.is_member(id, desk.ann.id).await.unwrap(), "invited");
    assert!(!store.is_member(id, desk.bob.id).await.unwrap());
    assert!(store.is_member(id, desk.mona.id).await.unwrap());
}

async fn transfer_to_an_agent_is_refused_with_words_when_they_cannot_take_it(store: Store) {
    let desk = Desk::new(store).await;
    let store = &desk.store;
    let id = desk.taken("t2@c.test", &desk.ann).await;
    let to = |user: &User| TransferTarget::Agent(user.id);

    let words = invalid(
        store
            .transfer_conversation(id, &desk.ann, to(&desk.carl), None)
            .await,
    );
    assert!(
        words.contains("@carl is not in the Sales department"),
        "{words}"
    );
    let words = invalid(
        store
            .transfer_conversation(id, &desk.ann, to(&desk.dave), None)
            .await,
    );
    assert!(words.contains("@dave is deactivated"), "{words}");
    let words = invalid(
        store
            .transfer_conversation(id, &desk.ann, to(&desk.ann), None)
            .await,
    );
    assert!(words.contains("already with @ann"), "{words}");
    let words = invalid(
        store
            .transfer_conversation(
                id,
                &desk.ann,
                TransferTarget::Agent(postdesk_core::ids::UserId(999)),
                None,
            )
            .await,
    );
    assert!(words.contains("no user #999"), "{words}");
    // Nothing changed.
    let c = store.find_conversation(id).await.unwrap().unwrap();
    assert_eq!(c.assignee_id, Some(desk.ann.id));
    assert_eq!(desk.lines(id).await, vec!["Taken by @ann"]);

    // Closed: a conflict, not a transfer.
    store.close_conversation(id, &desk.ann, None).await.unwrap();
    let words = conflict(
        store
            .transfer_conversation(id, &desk.ann, to(&desk.bob), None)
            .await,
    );
    assert!(words.contains("closed"), "{words}");
}

async fn transfer_to_a_department_puts_it_in_that_queue(store: Store) {
    let desk = Desk::new(store).await;
    let store = &desk.store;
    let id = desk.taken("t3@c.test", &desk.ann).await;
    store
        .set_waiting(
            id,
            &desk.ann,
            Waiting::Snooze {
                until: now_ms() + 3_600_000,
            },
        )
        .await
        .unwrap();
    let before = now_ms();

    // Act
    let done = store
        .transfer_conversation(
            id,
            &desk.ann,
            TransferTarget::Department(desk.billing),
            Some("needs a refund"),
        )
        .await
        .unwrap();

    // Assert
    let c = &done.conversation;
    assert_eq!(c.status, ConversationStatus::Queued);
    assert_eq!(c.assignee_id, None);
    assert_eq!(c.department_id, Some(desk.billing));
    assert_eq!(c.snoozed_until, None);
    assert!(c.queued_at.is_some_and(|at| at >= before), "{c:?}");
    assert_eq!(
        desk.lines(id).await.last().unwrap(),
        "Transferred by @ann to the Billing queue: needs a refund"
    );
    // Billing's agent sees it in the queue; ann, out of it, no longer does.
    let queue = |user: &User| ConversationFilter {
        status: Some(ConversationStatus::Queued),
        visible: Some(ListScope::QueueAndMine(user.id)),
        ..ConversationFilter::default()
    };
    let seen = store.list_conversations(&queue(&desk.carl)).await.unwrap();
    assert_eq!(seen.iter().map(|c| c.id).collect::<Vec<_>>(), vec![id]);
    assert!(
        store
            .list_conversations(&queue(&desk.ann))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(!store.is_member(id, desk.ann.id).await.unwrap());

    let words = invalid(
        store
            .transfer_conversation(
                id,
                &desk.mona,
                TransferTarget::Department(desk.billing),
                None,
            )
            .await,
    );
    assert!(words.contains("already in the Billing queue"), "{words}");
    let words = invalid(
        store
            .transfer_conversation(
                id,
                &desk.mona,
                TransferTarget::Department(DepartmentId(999)),
                None,
            )
            .await,
    );
    assert!(words.contains("no department #999"), "{words}");
    // Carl (Billing) may now be given it straight from the queue.
    let done = store
        .transfer_conversation(id, &desk.mona, TransferTarget::Agent(desk.carl.id), None)
        .await
        .unwrap();
    assert_eq!(done.conversation.status, ConversationStatus::Open);
    assert_eq!(done.conversation.assignee_id, Some(desk.carl.id));
}

async fn hold_and_resume_keep_the_assignee_and_refuse_other_statuses(store: Store) {
    let desk = Desk::new(store).await;
    let store = &desk.store;
    let (queued, _, _) = desk.email("h0@c.test", None).await;
    let id = desk.taken("h1@c.test", &desk.ann).await;

    let held = store
        .set_waiting(id, &desk.ann, Waiting::Hold)
        .await
        .unwrap();
    assert_eq!(held.status, ConversationStatus::OnHold);
    assert_eq!(held.assignee_id, Some(desk.ann.id));
    let on_hold = ConversationFilter {
        status: Some(ConversationStatus::OnHold),
        ..ConversationFilter::default()
    };
    let listed = store.list_conversations(&on_hold).await.unwrap();
    assert_eq!(listed.iter().map(|c| c.id).collect::<Vec<_>>(), vec![id]);
    let words = conflict(store.set_waiting(id, &desk.ann, Waiting::Hold).await);
    assert!(words.contains("this one is on hold"), "{words}");

    let resumed = store
        .set_waiting(id, &desk.ann, Waiting::Resume)
        .await
        .unwrap();
    assert_eq!(resumed.status, ConversationStatus::Open);
    assert_eq!(resumed.assignee_id, Some(desk.ann.id));
    let words = conflict(store.set_waiting(id, &desk.ann, Waiting::Resume).await);
    assert!(
        words.contains("this one is in Chats in Progress"),
        "{words}"
    );
    let words = conflict(store.set_waiting(queued, &desk.ann, Waiting::Hold).await);
    assert!(words.contains("still in Queued Chats"), "{words}");
    assert_eq!(
        desk.lines(id).await,
        vec!["Taken by @ann", "Put on hold by @ann", "Resumed by @ann"]
    );
}

async fn an_email_from_the_contact_resumes_a_conversation_on_hold(store: Store) {
    let desk = Desk::new(store).await;
    let store = &desk.store;
    let id = desk.taken("r1@c.test", &desk.ann).await;
    store
        .set_waiting(id, &desk.ann, Waiting::Hold)
        .await
        .unwrap();

    // An auto-reply joins but leaves it on hold.
    desk.email_with("r2@c.test", Some("r1@c.test"), true).await;
    assert_eq!(desk.status(id).await, ConversationStatus::OnHold);

    // Act: the contact writes.
    let (conversation, message, resumed) = desk.email("r3@c.test", Some("r1@c.test")).await;

    // Assert
    assert_eq!(conversation, id);
    assert!(resumed);
    let c = store.find_conversation(id).await.unwrap().unwrap();
    assert_eq!(c.status, ConversationStatus::Open);
    assert_eq!(c.assignee_id, Some(desk.ann.id));
    let messages = store.list_messages(id).await.unwrap();
    let at = messages.iter().position(|m| m.id == message).unwrap();
    assert_eq!(
        messages[at - 1].text,
        "Resumed by a new email from the contact"
    );
    // A later email to the open conversation resumes nothing.
    let (_, _, resumed) = desk.email("r4@c.test", Some("r3@c.test")).await;
    assert!(!resumed);
}

async fn a_snooze_needs_a_time_within_a_year_and_ends_at_that_time(store: Store) {
    let desk = Desk::new(store).await;
    let store = &desk.store;
    let id = desk.taken("s1@c.test", &desk.ann).await;
    let now = now_ms();
    let words = invalid(
        store
            .set_waiting(id, &desk.ann, Waiting::Snooze { until: now - 1000 })
            .await,
    );
    assert!(words.contains("future"), "{words}");
    let words = invalid(
        store
            .set_waiting(
                id,
                &desk.ann,
                Waiting::Snooze {
                    until: now + postdesk_store::MAX_SNOOZE_MS + 60_000,
                },
            )
            .await,
    );
    assert!(words.contains("at most a year"), "{words}");

    let until = now + 600_000;
    let snoozed = store
        .set_waiting(id, &desk.ann, Waiting::Snooze { until })
        .await
        .unwrap();
    assert_eq!(snoozed.status, ConversationStatus::Snoozed);
    assert_eq!(snoozed.snoozed_until, Some(until));
    assert!(
        desk.lines(id)
            .await
            .last()
            .unwrap()
            .starts_with("Snoozed by @ann until ")
    );
    assert_eq!(store.next_snooze_end().await.unwrap(), Some(until));
    let snoozed_list = ConversationFilter {
        status: Some(ConversationStatus::Snoozed),
        ..ConversationFilter::default()
    };
    assert_eq!(
        store.list_conversations(&snoozed_list).await.unwrap().len(),
        1
    );

    // Act and assert: not before its time; at its time, once.
    assert!(store.wake_snoozed(until - 1).await.unwrap().is_empty());
    let woken = store.wake_snoozed(until).await.unwrap();
    assert_eq!(woken.len(), 1);
    assert_eq!(woken[0].conversation_id, id);
    assert!(store.wake_snoozed(until + 1).await.unwrap().is_empty());
    let c = store.find_conversation(id).await.unwrap().unwrap();
    assert_eq!(c.status, ConversationStatus::Open);
    assert_eq!(c.assignee_id, Some(desk.ann.id));
    assert_eq!(c.snoozed_until, None);
    assert_eq!(desk.lines(id).await.last().unwrap(), "Snooze ended");
    assert_eq!(store.next_snooze_end().await.unwrap(), None);
}

async fn the_contacts_email_ends_a_snooze_before_its_time(store: Store) {
    let desk = Desk::new(store).await;
    let store = &desk.store;
    let id = desk.taken("e1@c.test", &desk.ann).await;
    let until = now_ms() + 600_000;
    store
        .set_waiting(id, &desk.ann, Waiting::Snooze { until })
        .await
        .unwrap();

    let (conversation, _, resumed) = desk.email("e2@c.test", Some("e1@c.test")).await;

    assert_eq!((conversation, resumed), (id, true));
    let c = store.find_conversation(id).await.unwrap().unwrap();
    assert_eq!(c.status, ConversationStatus::Open);
    assert_eq!(c.assignee_id, Some(desk.ann.id));
    assert_eq!(c.snoozed_until, None);
    assert!(
        desk.lines(id)
            .await
            .contains(&"Snooze ended by a new email from the contact".to_owned())
    );
    assert!(
        store.wake_snoozed(until).await.unwrap().is_empty(),
        "nothing left to wake"
    );
}

/// Two stores on one database (two nodes) wake the same due snoozes at once: each
/// conversation is woken by exactly one of them.
async fn two_nodes_wake_each_snooze_once(url: &str) {
    let first = Store::connect(url).await.unwrap();
    let desk = Desk::new(first.clone()).await;
    let second = Store::connect(url).await.unwrap();
    let until = now_ms() + 600_000;
    let mut snoozed = Vec::new();
    for n in 0..12 {
        let id = desk.taken(&format!("w{n}@c.test"), &desk.ann).await;
        first
            .set_waiting(id, &desk.ann, Waiting::Snooze { until })
            .await
            .unwrap();
        snoozed.push(id);
    }

    let (a, b) = tokio::join!(first.wake_snoozed(until), second.wake_snoozed(until));

    let mut woken: Vec<ConversationId> = a
        .unwrap()
        .into_iter()
        .chain(b.unwrap())
        .map(|w| w.conversation_id)
        .collect();
    woken.sort_unstable();
    assert_eq!(woken, snoozed, "every one woken, none twice");
    for id in snoozed {
        let ended = desk
            .lines(id)
            .await
            .iter()
            .filter(|l| *l == "Snooze ended")
            .count();
        assert_eq!(ended, 1, "conversation {id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_wake_each_snooze_once_on_sqlite() {
    postdesk_testkit::init();
    let dir = tempfile::tempdir().unwrap();
    two_nodes_wake_each_snooze_once(&format!("sqlite://{}/postdesk.db", dir.path().display()))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_wake_each_snooze_once_on_postgres() {
    postdesk_testkit::init();
    let db = postdesk_testkit::PgDatabase::create().await.unwrap();
    two_nodes_wake_each_snooze_once(db.url()).await;
}

/// Carol's conversations A (an email, taken by `a_agent`) and B (an email, taken by
/// `b_agent`), then a note in each, tagged. Returns (A, B).
async fn pair(desk: &Desk, a_agent: &User, b_agent: &User) -> (ConversationId, ConversationId) {
    let store = &desk.store;
    let a = desk.taken("a1@c.test", a_agent).await;
    let b = desk.taken("b1@c.test", b_agent).await;
    for (id, agent, note, tags) in [
        (a, a_agent, "note in A", ["Billing", "urgent"]),
        (b, b_agent, "note in B", ["billing", "VIP"]),
    ] {
        store
            .add_internal_message(id, agent.id, note)
            .await
            .unwrap();
        store
            .set_tags(id, &Tags::parse(&tags).unwrap())
            .await
            .unwrap();
    }
    (a, b)
}

/// [`pair`], both ann's, with A merged into B.
async fn merged_pair(desk: &Desk) -> (ConversationId, ConversationId) {
    let (a, b) = pair(desk, &desk.ann, &desk.ann).await;
    desk.store
        .merge_conversations(a, b, &desk.ann)
        .await
        .unwrap();
    (a, b)
}

async fn merge_moves_the_messages_in_order_unites_tags_and_keeps_members(store: Store) {
    let desk = Desk::new(store).await;
    let store = &desk.store;
    let (a, b) = pair(&desk, &desk.ann, &desk.bob).await;
    store.add_member(a, &desk.mona, &desk.ann).await.unwrap();

    // Act: bob merges A into B.
    let merged = store.merge_conversations(a, b, &desk.bob).await.unwrap();

    // Assert: B holds both timelines interleaved in the order they happened.
    let texts = desk.texts(b, false).await;
    assert_eq!(
        texts,
        vec![
            "text of a1@c.test",
            "Taken by @ann",
            "text of b1@c.test",
            "Taken by @bob",
            "note in A",
            "note in B",
            "@ann invited @mona",
            &format!("@bob merged #{a} into #{b}"),
        ],
    );
    assert_eq!(merged.into.tags, vec!["billing", "VIP", "urgent"]);
    let tagged = ConversationFilter {
        tag: Some("URGENT".into()),
        ..ConversationFilter::default()
    };
    let with_tag: Vec<ConversationId> = store
        .list_conversations(&tagged)
        .await
        .unwrap()
        .iter()
        .map(|c| c.id)
        .collect();
    assert!(with_tag.contains(&b), "{with_tag:?}");
    // A: closed, pointing at B, with only the line that says so.
    assert_eq!(merged.merged.status, ConversationStatus::Closed);
    assert_eq!(merged.merged.merged_into_id, Some(b));
    assert_eq!(
        desk.lines(a).await,
        vec![format!("Merged into #{b} by @bob")]
    );
    assert_eq!(store.list_messages(a).await.unwrap().len(), 1);
    assert!(
        store
            .reopen_conversation(a, &desk.bob)
            .await
            .unwrap()
            .is_none(),
        "a merged conversation is not reopened"
    );
    // Whoever could read A's messages still can: ann (its assignee) and mona (invited).
    assert!(store.is_member(b, desk.ann.id).await.unwrap());
    assert!(store.is_member(b, desk.mona.id).await.unwrap());
    assert_eq!(merged.into.assignee_id, Some(desk.bob.id));
}

async fn replies_to_either_merged_conversation_land_in_the_survivor_also_through_chains(
    store: Store,
) {
    let desk = Desk::new(store).await;
    let store = &desk.store;
    let (a, b) = merged_pair(&desk).await;

    let (to_a, _, _) = desk.email("a2@c.test", Some("a1@c.test")).await;
    let (to_b, _, _) = desk.email("b2@c.test", Some("b1@c.test")).await;

    assert_eq!((to_a, to_b), (b, b));
    assert_eq!(
        desk.status(a).await,
        ConversationStatus::Closed,
        "A is not reopened"
    );
    assert_eq!(desk.status(b).await, ConversationStatus::Open);

    // B merged into C in turn: a reply to A's first email lands in C.
    let c = desk.taken("c1@c.test", &desk.ann).await;
    store.merge_conversations(b, c, &desk.ann).await.unwrap();
    let (to_a_again, _, _) = desk.email("a3@c.test", Some("a1@c.test")).await;
    assert_eq!(to_a_again, c);
    assert_eq!(
        store
            .find_conversation(a)
            .await
            .unwrap()
            .unwrap()
            .merged_into_id,
        Some(b),
        "the chain is followed, not rewritten"
    );
}

async fn search_finds_moved_messages_under_the_survivor(store: Store) {
    let desk = Desk::new(store).await;
    let store = &desk.store;
    let (a, b) = merged_pair(&desk).await;

    let hits = store
        .search(&SearchQuery {
            terms: SearchTerms::parse("note in A"),
            status: None,
            inbox: None,
            visible: Some(ListScope::QueueAndMine(desk.ann.id)),
            limit: 10,
        })
        .await
        .unwrap();

    let found: Vec<(ConversationId, bool)> = hits
        .iter()
        .map(|h| (h.conversation.id, h.message_id.is_some()))
        .collect();
    assert!(found.contains(&(b, true)), "{found:?}");
    assert!(
        !found.contains(&(a, true)),
        "no message hit left under A: {found:?}"
    );
    let hit = hits.iter().find(|h| h.conversation.id == b).unwrap();
    let message = store
        .find_message(hit.message_id.unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(message.conversation_id, b);
    assert_eq!(message.text, "note in A");
}

async fn merge_is_refused_into_itself_into_a_merged_one_and_from_a_closed_one(store: Store) {
    let desk = Desk::new(store).await;
    let store = &desk.store;
    let (a, b) = merged_pair(&desk).await;
    let c = desk.taken("c1@c.test", &desk.ann).await;

    let words = invalid(store.merge_conversations(b, b, &desk.ann).await);
    assert!(words.contains("into itself"), "{words}");
    let words = invalid(store.merge_conversations(c, a, &desk.ann).await);
    assert!(
        words.contains(&format!("#{a} was merged into #{b}")),
        "{words}"
    );
    let words = conflict(store.merge_conversations(a, c, &desk.ann).await);
    assert!(words.contains("closed"), "{words}");
    let (queued, _, _) = desk.email("q1@c.test", None).await;
    let words = conflict(store.merge_conversations(c, queued, &desk.ann).await);
    assert!(words.contains("Queued Chats"), "{words}");
    // Nothing moved.
    assert_eq!(store.list_messages(c).await.unwrap().len(), 2);
}

async fn an_agent_who_may_not_write_one_of_them_cannot_merge(store: Store) {
    let desk = Desk::new(store).await;
    let store = &desk.store;
    let mine = desk.taken("m1@c.test", &desk.ann).await;
    let bobs = desk.taken("m2@c.test", &desk.bob).await;
    let ann = Actor {
        id: desk.ann.id,
        roles: vec![Role::Agent],
        departments: store.departments_of(desk.ann.id).await.unwrap(),
    };
    let scope = |id| async move { store.conversation_scope(id).await.unwrap().unwrap() };

    // What the merge route asks: Write on the path's conversation and on into_id.
    assert_eq!(
        access::decide(&ann, Action::Write, &scope(mine).await),
        Ok(())
    );
    assert_eq!(
        access::decide(&ann, Action::Write, &scope(bobs).await),
        Err(Denial::NotMember)
    );
    let mona = Actor {
        id: desk.mona.id,
        roles: vec![Role::Manager],
        departments: vec![desk.sales],
    };
    assert_eq!(
        access::decide(&mona, Action::Write, &scope(bobs).await),
        Ok(())
    );
    assert_eq!(
        access::decide(&mona, Action::Write, &scope(mine).await),
        Ok(())
    );
}
