//! The conversation lists at scale (issue 11), on SQLite and PostgreSQL: Queued Chats oldest
//! first, every list paged by a cursor to its end with a true total, each list only what the
//! caller may see, and each list's query walking an index.

use std::collections::HashSet;

use postdesk_core::access::{self, Action, Actor, ListScope};
use postdesk_core::ids::{ContactId, ConversationId, DepartmentId, InboxId, UserId};
use postdesk_core::model::{ConversationStatus, Role};
#[macro_use]
mod common;

use common::{arrive, inbox_settings, user};
use postdesk_store::{
    ContactCursor, ContactFilter, ConversationFilter, ListCursor, ListOrder, Store, User,
};

contract!(
    queued_chats_come_oldest_first_and_page_to_the_end_while_new_ones_arrive,
    an_agent_with_300_chats_in_progress_pages_through_all_300_and_the_total_says_so,
    each_list_shows_only_what_the_caller_may_see,
    tag_contact_and_inbox_filters_page_with_true_totals,
    the_queue_and_an_agents_lists_walk_an_index,
    contacts_are_paged_searched_and_renamed_within_what_one_may_see,
);

// Arrange helpers.

async fn inbox(store: &Store, email: &str, department: Option<DepartmentId>) -> InboxId {
    let mut settings = inbox_settings(email);
    settings.department_id = department.map(|d| d.0);
    store.create_inbox(&settings).await.unwrap().id
}

/// The contact of a conversation.
async fn contact_of(store: &Store, conversation: ConversationId) -> ContactId {
    store
        .find_conversation(conversation)
        .await
        .unwrap()
        .unwrap()
        .contact
        .id
}

/// Adds `count` conversations of `inbox` and `contact` in `status`, assigned to `assignee`,
/// their activity (and queue time) one millisecond apart from `from_ms` on, in one statement.
async fn bulk(
    store: &Store,
    count: i64,
    (inbox, department, contact): (InboxId, Option<DepartmentId>, ContactId),
    status: &str,
    assignee: Option<UserId>,
    from_ms: i64,
) {
    sqlx::query(
        "INSERT INTO conversations (inbox_id, contact_id, subject, status, assignee_id, created_at,
             updated_at, last_message_at, queued_at, department_id)
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1)
         SELECT $2, $3, 'Bulk', $4, $5, $6 + i, $6 + i, $6 + i,
                CASE WHEN $4 = 'queued' THEN $6 + i ELSE NULL END, $7
         FROM n",
    )
    .bind(count)
    .bind(inbox.0)
    .bind(contact.0)
    .bind(status)
    .bind(assignee.map(|u| u.0))
    .bind(from_ms)
    .bind(department.map(|d| d.0))
    .execute(store.raw_pool())
    .await
    .unwrap();
}

/// Every page of `filter`, `page` at a time, calling `between` after each page; the ids in the
/// order given.
async fn all_pages(
    store: &Store,
    filter: &ConversationFilter,
    page: i64,
    mut between: impl AsyncFnMut(usize),
) -> Vec<ConversationId> {
    let mut filter = ConversationFilter {
        limit: Some(page),
        ..filter.clone()
    };
    let mut ids = Vec::new();
    for n in 0.. {
        let got = store.conversation_page(&filter).await.unwrap();
        assert!(got.conversations.len() <= usize::try_from(page).unwrap());
        ids.extend(got.conversations.iter().map(|c| c.id));
        between(n).await;
        match got.next_cursor {
            Some(cursor) => {
                assert_eq!(cursor.order, filter.order());
                // Through its text, as a client sends it back.
                filter.after = Some(ListCursor::parse(&cursor.encode()).unwrap());
            }
            None => break,
        }
        assert!(n < 10_000, "the pages never end");
    }
    ids
}

fn no_duplicates(ids: &[ConversationId]) {
    let unique: HashSet<_> = ids.iter().collect();
    assert_eq!(
        unique.len(),
        ids.len(),
        "a conversation shown twice: {ids:?}"
    );
}

fn queued() -> ConversationFilter {
    ConversationFilter {
        status: Some(ConversationStatus::Queued),
        ..ConversationFilter::default()
    }
}

// The contract.

async fn queued_chats_come_oldest_first_and_page_to_the_end_while_new_ones_arrive(store: Store) {
    // Arrange: seven customers waiting, the first the longest.
    let inbox = inbox(&store, "support@example.test", None).await;
    let ana = user(&store, "ana", Role::Agent).await;
    let mut waiting = Vec::new();
    for n in 0..7 {
        waiting.push(arrive(&store, inbox, &format!("c{n}@c.test")).await);
    }
    assert_eq!(queued().order(), ListOrder::OldestQueuedFirst);

    // Act: three at a time; after the first page two more arrive and one of the unseen
    // ones is taken.
    let mut late = Vec::new();
    let taken = waiting[5];
    let seen = all_pages(&store, &queued(), 3, async |page| {
        if page == 0 {
            for n in 0..2 {
                late.push(arrive(&store, inbox, &format!("late{n}@c.test")).await);
            }
            store.take_conversation(taken, &ana).await.unwrap();
        }
    })
    .await;

    // Assert: oldest first, every one still waiting shown once, the late ones at the end.
    no_duplicates(&seen);
    let mut expected: Vec<_> = waiting.iter().copied().filter(|c| *c != taken).collect();
    expected.extend(late.iter().copied());
    assert_eq!(
        seen, expected,
        "oldest first, none missed, the taken one gone"
    );
    let total = store.count_conversations(&queued()).await.unwrap();
    assert_eq!(total, 8, "the total counts every page");
    let first_page = store
        .conversation_page(&ConversationFilter {
            limit: Some(3),
            ..queued()
        })
        .await
        .unwrap();
    let times: Vec<i64> = first_page
        .conversations
        .iter()
        .map(|c| c.queued_at.expect("a queued conversation knows since when"))
        .collect();
    assert!(times.is_sorted(), "oldest first: {times:?}");
    assert!(first_page.next_cursor.is_some());
}

async fn an_agent_with_300_chats_in_progress_pages_through_all_300_and_the_total_says_so(
    store: Store,
) {
    // Arrange: ana has 300 chats in progress and 20 on hold; bob 50 in progress.
    let inbox = inbox(&store, "support@example.test", None).await;
    let ana = user(&store, "ana", Role::Agent).await;
    let bob = user(&store, "bob", Role::Agent).await;
    let first = arrive(&store, inbox, "carol@c.test").await;
    let contact = contact_of(&store, first).await;
    let at = (inbox, None, contact);
    bulk(&store, 300, at, "open", Some(ana.id), 1_000_000).await;
    bulk(&store, 20, at, "on_hold", Some(ana.id), 2_000_000).await;
    bulk(&store, 50, at, "open", Some(bob.id), 3_000_000).await;
    let in_progress = ConversationFilter {
        status: Some(ConversationStatus::Open),
        assignee: Some(ana.id),
        visible: Some(ListScope::QueueAndMine(ana.id)),
        ..ConversationFilter::default()
    };

    // Act
    let seen = all_pages(&store, &in_progress, 70, async |_| {}).await;
    let total = store.count_conversations(&in_progress).await.unwrap();
    let counts = store
        .conversation_counts(ana.id, Some(ListScope::QueueAndMine(ana.id)))
        .await
        .unwrap();

    // Assert
    no_duplicates(&seen);
    assert_eq!(seen.len(), 300, "every chat in progress, through the pages");
    assert_eq!(total, 300);
    assert_eq!(
        (counts.queued, counts.open, counts.on_hold, counts.snoozed),
        (1, 300, 20, 0)
    );
    let mut newest_first = Vec::new();
    for page in [
        None,
        Some(
            ListCursor::parse(
                &ListCursor {
                    order: ListOrder::NewestActivityFirst,
                    key: 1_000_150,
                    id: ConversationId(i64::MAX),
                }
                .encode(),
            )
            .unwrap(),
        ),
    ] {
        let got = store
            .conversation_page(&ConversationFilter {
                limit: Some(5),
                after: page,
                ..in_progress.clone()
            })
            .await
            .unwrap();
        newest_first.push(
            got.conversations
                .iter()
                .map(|c| c.last_message_at)
                .collect::<Vec<_>>(),
        );
    }
    assert_eq!(
        newest_first,
        vec![
            vec![1_000_300, 1_000_299, 1_000_298, 1_000_297, 1_000_296],
            vec![1_000_150, 1_000_149, 1_000_148, 1_000_147, 1_000_146],
        ],
        "newest activity first, and a page starts after its cursor"
    );
}

/// The conversations `actor` may read by the policy itself, among `all`, matching `keep`.
async fn readable(
    store: &Store,
    actor: &Actor,
    all: &[ConversationId],
    keep: impl Fn(&postdesk_core::access::ConversationScope) -> bool,
) -> HashSet<ConversationId> {
    let mut ids = HashSet::new();
    for id in all {
        let scope = store.conversation_scope(*id).await.unwrap().unwrap();
        if access::decide(actor, Action::Read, &scope).is_ok() && keep(&scope) {
            ids.insert(*id);
        }
    }
    ids
}

async fn each_list_shows_only_what_the_caller_may_see(store: Store) {
    // Arrange: Sales and Billing each with an inbox, and an inbox without a department; in
    // each, conversations queued, taken and closed, one with an invited agent.
    let sales = store.create_department("Sales").await.unwrap().id;
    let billing = store.create_department("Billing").await.unwrap().id;
    let ana = user(&store, "ana", Role::Agent).await;
    let ben = user(&store, "ben", Role::Agent).await;
    let meg = user(&store, "meg", Role::Manager).await;
    let root = user(&store, "root", Role::Admin).await;
    store.add_department_member(sales, ana.id).await.unwrap();
    store.add_department_member(billing, ben.id).await.unwrap();
    store.add_department_member(sales, meg.id).await.unwrap();
    let mut all = Vec::new();
    for (n, department) in [Some(sales), Some(billing), None].into_iter().enumerate() {
        let inbox = inbox(&store, &format!("in{n}@example.test"), department).await;
        for k in 0..4 {
            all.push(arrive(&store, inbox, &format!("c{n}{k}@c.test")).await);
        }
    }
    // Sales: ana has one; ben another, with ana invited; meg closes a third.
    store.take_conversation(all[0], &ana).await.unwrap();
    store.take_conversation(all[1], &ben).await.unwrap();
    store.add_member(all[1], &ana, &ben).await.unwrap();
    store.take_conversation(all[2], &meg).await.unwrap();
    store.close_conversation(all[2], &meg, None).await.unwrap();
    // Billing: ben has one, and ana is invited into a queued one.
    store.take_conversation(all[4], &ben).await.unwrap();
    store.add_member(all[5], &ana, &ben).await.unwrap();
    // Without a department: ana has one, closed.
    store.take_conversation(all[8], &ana).await.unwrap();
    store.close_conversation(all[8], &ana, None).await.unwrap();

    let statuses = [
        None,
        Some(ConversationStatus::Queued),
        Some(ConversationStatus::Open),
        Some(ConversationStatus::Closed),
    ];
    for who in [&ana, &ben, &meg, &root] {
        let role = who.roles[0];
        let actor = Actor {
            id: who.id,
            roles: who.roles.clone(),
            departments: store.departments_of(who.id).await.unwrap(),
        };
        let scope = access::list_scope(&actor);
        for status in statuses {
            for mine in [false, true] {
                // Act
                let filter = ConversationFilter {
                    status,
                    member: mine.then_some(who.id),
                    visible: Some(scope.clone()),
                    ..ConversationFilter::default()
                };
                let listed = all_pages(&store, &filter, 2, async |_| {}).await;
                let total = store.count_conversations(&filter).await.unwrap();

                // Assert: exactly what the policy lets them read.
                no_duplicates(&listed);
                let expected = readable(&store, &actor, &all, |s| {
                    status.is_none_or(|st| s.status == st) && (!mine || s.is_member(who.id))
                })
                .await;
                let listed: HashSet<_> = listed.into_iter().collect();
                assert_eq!(
                    listed, expected,
                    "{role:?} {} status {status:?} member {mine}",
                    who.username
                );
                assert_eq!(total, i64::try_from(expected.len()).unwrap());
            }
        }
    }
    // Asking for another agent's conversations does not widen what one sees.
    let snooped = store
        .count_conversations(&ConversationFilter {
            assignee: Some(ben.id),
            visible: Some(ListScope::QueueAndMine(ana.id)),
            ..ConversationFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(
        snooped, 1,
        "of ben's, ana sees only the one she was invited into"
    );
    let queue = store
        .conversation_counts(ana.id, Some(ListScope::QueueAndMine(ana.id)))
        .await
        .unwrap()
        .queued;
    // Sales' queue (all[3]), the department-less queue (all[9..12]) and billing's queued
    // conversation she is invited into (all[5]).
    assert_eq!(queue, 5);
}

async fn tag_contact_and_inbox_filters_page_with_true_totals(store: Store) {
    // Arrange
    let support = inbox(&store, "support@example.test", None).await;
    let sales = inbox(&store, "sales@example.test", None).await;
    let mut carols = Vec::new();
    for _ in 0..5 {
        carols.push(arrive(&store, support, "carol@c.test").await);
    }
    let dave = arrive(&store, sales, "dave@d.test").await;
    let carol = contact_of(&store, carols[0]).await;
    let tags = postdesk_core::search::Tags::parse(&["VIP".to_owned()]).unwrap();
    for id in [carols[1], carols[3], dave] {
        store.set_tags(id, &tags).await.unwrap();
    }

    // Act and assert: each filter alone, paged by two, with its total.
    let cases: [(ConversationFilter, Vec<ConversationId>); 4] = [
        (
            ConversationFilter {
                tag: Some("vip".into()),
                ..ConversationFilter::default()
            },
            vec![dave, carols[3], carols[1]],
        ),
        (
            ConversationFilter {
                contact_id: Some(carol),
                ..ConversationFilter::default()
            },
            carols.iter().rev().copied().collect(),
        ),
        (
            ConversationFilter {
                contact: Some("DAVE@".into()),
                ..ConversationFilter::default()
            },
            vec![dave],
        ),
        (
            ConversationFilter {
                inbox: Some(sales),
                ..ConversationFilter::default()
            },
            vec![dave],
        ),
    ];
    for (filter, expected) in cases {
        let listed = all_pages(&store, &filter, 2, async |_| {}).await;
        assert_eq!(listed, expected, "newest first: {filter:?}");
        assert_eq!(
            store.count_conversations(&filter).await.unwrap(),
            i64::try_from(expected.len()).unwrap(),
            "{filter:?}"
        );
    }
    let combined = ConversationFilter {
        tag: Some("VIP".into()),
        contact_id: Some(carol),
        status: Some(ConversationStatus::Queued),
        ..ConversationFilter::default()
    };
    assert_eq!(
        all_pages(&store, &combined, 1, async |_| {}).await,
        vec![carols[1], carols[3]],
        "combined, the queue oldest first"
    );
}

/// The plan's lines that read the conversations table without an index: a full scan.
fn full_scans(plan: &str) -> Vec<&str> {
    plan.lines()
        .filter(|line| {
            let line = line.trim();
            // SQLite: `SCAN c` alone reads the table; `SCAN c USING INDEX i` walks an index
            // in order (and stops after the page). PostgreSQL: a sequential scan.
            ((line.contains("SCAN c") || line.contains("SCAN conversations"))
                && !line.contains("USING")
                && !line.contains("INDEX"))
                || line.contains("Seq Scan on conversations")
        })
        .collect()
}

async fn the_queue_and_an_agents_lists_walk_an_index(store: Store) {
    // Arrange: thousands of conversations in two departments and every status, then the
    // planner's statistics.
    let sales = store.create_department("Sales").await.unwrap().id;
    let billing = store.create_department("Billing").await.unwrap().id;
    let ana = user(&store, "ana", Role::Agent).await;
    let meg = user(&store, "meg", Role::Manager).await;
    let others: Vec<User> = futures::future::join_all((0..20).map(|n| {
        let store = store.clone();
        async move { user(&store, &format!("agent{n}"), Role::Agent).await }
    }))
    .await;
    store.add_department_member(sales, ana.id).await.unwrap();
    store.add_department_member(sales, meg.id).await.unwrap();
    let sales_inbox = inbox(&store, "sales@example.test", Some(sales)).await;
    let billing_inbox = inbox(&store, "billing@example.test", Some(billing)).await;
    let first = arrive(&store, sales_inbox, "carol@c.test").await;
    let contact = contact_of(&store, first).await;
    let bulk_one = arrive(&store, sales_inbox, "many@c.test").await;
    let many = contact_of(&store, bulk_one).await;
    let mut at = 10_000_000;
    for (inbox, department) in [(sales_inbox, sales), (billing_inbox, billing)] {
        bulk(
            &store,
            3,
            (inbox, Some(department), contact),
            "closed",
            None,
            at,
        )
        .await;
        let place = (inbox, Some(department), many);
        bulk(&store, 300, place, "queued", None, at).await;
        at += 10_000;
        for (n, agent) in others.iter().enumerate() {
            let status = ["open", "closed", "closed", "on_hold"][n % 4];
            bulk(&store, 150, place, status, Some(agent.id), at).await;
            at += 10_000;
        }
        bulk(&store, 30, place, "open", Some(ana.id), at).await;
        at += 10_000;
    }
    let analyze = match store.backend() {
        postdesk_store::Backend::Sqlite => "ANALYZE",
        postdesk_store::Backend::Postgres => "ANALYZE conversations",
    };
    sqlx::query(analyze)
        .execute(store.raw_pool())
        .await
        .unwrap();
    let cursor = Some(ListCursor {
        order: ListOrder::NewestActivityFirst,
        key: at,
        id: ConversationId(i64::MAX),
    });
    let agent = Some(ListScope::QueueAndMine(ana.id));
    let cases = [
        (
            "Queued Chats of an agent",
            ConversationFilter {
                visible: agent.clone(),
                ..queued()
            },
            &["conversations_queue"][..],
        ),
        (
            "Queued Chats, second page",
            ConversationFilter {
                visible: agent.clone(),
                after: Some(ListCursor {
                    order: ListOrder::OldestQueuedFirst,
                    key: 10_000_100,
                    id: ConversationId(1),
                }),
                ..queued()
            },
            &["conversations_queue"][..],
        ),
        (
            "Chats in Progress",
            ConversationFilter {
                status: Some(ConversationStatus::Open),
                assignee: Some(ana.id),
                visible: agent.clone(),
                ..ConversationFilter::default()
            },
            &["conversations_assignee_activity"][..],
        ),
        (
            "On Hold, second page",
            ConversationFilter {
                status: Some(ConversationStatus::OnHold),
                assignee: Some(ana.id),
                visible: agent.clone(),
                after: cursor,
                ..ConversationFilter::default()
            },
            &["conversations_assignee_activity"][..],
        ),
        (
            "a contact's page",
            ConversationFilter {
                contact_id: Some(contact),
                visible: Some(ListScope::Departments(meg.id)),
                ..ConversationFilter::default()
            },
            &["conversations_contact_activity"][..],
        ),
        (
            "closed, for a manager",
            ConversationFilter {
                status: Some(ConversationStatus::Closed),
                visible: Some(ListScope::Departments(meg.id)),
                ..ConversationFilter::default()
            },
            // Most are closed: walking all by activity is as good.
            &["conversations_status_activity", "conversations_activity"][..],
        ),
    ];
    let mut failures = Vec::new();
    for (what, filter, indexes) in cases {
        // Act
        let plan = store
            .explain_conversation_list(&ConversationFilter {
                limit: Some(50),
                ..filter
            })
            .await
            .unwrap();

        // Assert (every list's plan, then the failures together)
        if !full_scans(&plan).is_empty() {
            failures.push(format!("{what} reads the whole table:\n{plan}"));
        } else if !indexes.iter().any(|index| plan.contains(index)) {
            failures.push(format!("{what} does not walk {indexes:?}:\n{plan}"));
        } else if plan.contains("TEMP B-TREE FOR ORDER BY") {
            failures.push(format!(
                "{what} sorts every match instead of walking {indexes:?} in order:\n{plan}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

async fn contacts_are_paged_searched_and_renamed_within_what_one_may_see(store: Store) {
    // Arrange: five contacts write to Sales, one to Billing; carol twice.
    let sales = store.create_department("Sales").await.unwrap().id;
    let billing = store.create_department("Billing").await.unwrap().id;
    let ana = user(&store, "ana", Role::Agent).await;
    store.add_department_member(sales, ana.id).await.unwrap();
    let sales_inbox = inbox(&store, "sales@example.test", Some(sales)).await;
    let billing_inbox = inbox(&store, "billing@example.test", Some(billing)).await;
    let mut newest_first = Vec::new();
    for name in ["carol", "dave", "erin", "frank", "grace"] {
        let id = arrive(&store, sales_inbox, &format!("{name}@c.test")).await;
        newest_first.insert(0, contact_of(&store, id).await);
    }
    arrive(&store, sales_inbox, "carol@c.test").await;
    let hidden = arrive(&store, billing_inbox, "zoe@z.test").await;
    let zoe = contact_of(&store, hidden).await;
    let agent = Some(ListScope::QueueAndMine(ana.id));

    // Act: every page of two, as the admin and as ana.
    let pages = |visible: Option<ListScope>| {
        let store = store.clone();
        async move {
            let mut filter = ContactFilter {
                visible,
                limit: Some(2),
                ..ContactFilter::default()
            };
            let mut seen = Vec::new();
            loop {
                let page = store.list_contacts(&filter).await.unwrap();
                seen.extend(
                    page.contacts
                        .iter()
                        .map(|c| (c.contact.id, c.conversations)),
                );
                match page.next_cursor {
                    Some(cursor) => {
                        filter.after = Some(ContactCursor::parse(&cursor.encode()).unwrap());
                    }
                    None => break seen,
                }
            }
        }
    };
    let everyone = pages(None).await;
    let anas = pages(agent.clone()).await;

    // Assert
    let mut expected: Vec<_> = newest_first.iter().map(|id| (*id, 1)).collect();
    expected[4].1 = 2;
    assert_eq!(
        anas, expected,
        "newest first, only those she may see, carol's two counted"
    );
    expected.insert(0, (zoe, 1));
    assert_eq!(everyone, expected);
    let found = store
        .list_contacts(&ContactFilter {
            text: Some("ERIN".into()),
            visible: agent.clone(),
            ..ContactFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(found.contacts.len(), 1);
    assert_eq!(found.contacts[0].contact.email, "erin@c.test");
    assert!(
        store
            .find_contact(zoe, agent.as_ref())
            .await
            .unwrap()
            .is_none(),
        "a contact ana may see no conversation of is unknown to her"
    );
    assert_eq!(
        store
            .find_contact(zoe, None)
            .await
            .unwrap()
            .unwrap()
            .conversations,
        1
    );
    assert!(ContactCursor::parse("bm90IGEgY3Vyc29y").is_err());

    // A given name stays when the contact writes again under another display name.
    let carol = newest_first[4];
    let renamed = store
        .rename_contact(carol, "Carol Customer")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(renamed.name, "Carol Customer");
    arrive(&store, sales_inbox, "carol@c.test").await;
    let carol = store
        .find_contact(carol, agent.as_ref())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(carol.contact.name, "Carol Customer");
    assert_eq!(carol.conversations, 3);
    assert!(
        store
            .rename_contact(postdesk_core::ids::ContactId(999_999), "x")
            .await
            .unwrap()
            .is_none()
    );
}
