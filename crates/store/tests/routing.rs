//! Routing, on SQLite and PostgreSQL: round robin and load balancing, limits, availability, two
//! stores assigning at once, and conversations returned to the queue when their agent leaves.

#[macro_use]
mod common;

use std::collections::{HashMap, HashSet};

use common::inbox_settings;
use postdesk_core::ids::{ConversationId, DepartmentId, InboxId, UserId};
use postdesk_core::model::{Availability, ConversationStatus, MessageKind, Role, Routing};
use postdesk_store::{
    Addr, DepartmentSettings, IncomingEmail, IngestOutcome, NewSession, Store, StoreFetched, User,
    now_ms,
};

contract!(
    round_robin_takes_turns_by_user_id_and_goes_on_where_it_stopped,
    load_balancing_gives_to_the_fewest_open_and_on_hold_does_not_count,
    with_nobody_available_the_queue_waits_then_goes_out_in_arrival_order,
    limits_stop_assignment_and_agents_becoming_available_get_the_rest,
    manual_departments_and_inboxes_without_one_are_not_routed,
    an_agent_whose_last_session_ends_turns_offline,
    leaving_a_department_returns_ones_conversations_of_it_to_the_queue,
    deactivating_returns_every_conversation_of_the_agent_to_the_queue,
    department_settings_replace_the_agents,
);

async fn agent(store: &Store, username: &str) -> User {
    common::user(store, username, Role::Agent).await
}

fn email(n: u32) -> IncomingEmail {
    let from = format!("contact{n}@customers.test");
    IncomingEmail {
        message_id: format!("m{n}@customers.test"),
        in_reply_to: None,
        references: vec![],
        contact: Addr {
            name: None,
            email: from.clone(),
        },
        from: Some(Addr {
            name: None,
            email: from,
        }),
        to: vec![Addr {
            name: None,
            email: "support@example.test".into(),
        }],
        cc: vec![],
        subject: format!("Question {n}"),
        date: None,
        text: format!("question {n}"),
        html: None,
        attachments: vec![],
        auto_reply: false,
        attach_original: false,
        auth: None,
    }
}

/// A department with `routing`, `limit` and `agents`, and an inbox of it.
async fn department(
    store: &Store,
    routing: Routing,
    limit: Option<i64>,
    agents: &[&User],
) -> (DepartmentId, InboxId) {
    let department = store.create_department("Support").await.unwrap().id;
    store
        .update_department(
            department,
            &DepartmentSettings {
                name: "Support".into(),
                agents: agents.iter().map(|a| a.id).collect(),
                routing,
                max_chats_per_agent: limit,
            },
        )
        .await
        .unwrap();
    let mut settings = inbox_settings("support@example.test");
    settings.department_id = Some(department.0);
    let inbox = store.create_inbox(&settings).await.unwrap().id;
    (department, inbox)
}

/// Delivers emails `first..first + count` (each from another contact) in one batch: that many
/// new queued conversations, in arrival order.
async fn arrive(store: &Store, inbox: InboxId, first: u32, count: u32) -> Vec<ConversationId> {
    let fetched: Vec<StoreFetched> = (first..first + count)
        .map(|uid| StoreFetched {
            uid,
            bytes: format!("raw {uid}").into_bytes(),
        })
        .collect();
    store
        .store_fetched(inbox, "INBOX", 7, fetched, first + count)
        .await
        .unwrap();
    let pending = store.pending_raw(Some(inbox), 10_000).await.unwrap();
    let emails: Vec<_> = pending
        .iter()
        .zip(first..)
        .map(|(raw, n)| (raw.id, email(n)))
        .collect();
    store
        .ingest_batch(inbox, &emails)
        .await
        .unwrap()
        .into_iter()
        .map(|outcome| match outcome.unwrap() {
            IngestOutcome::Added {
                conversation_id,
                new_conversation: true,
                ..
            } => conversation_id,
            other => panic!("not a new conversation: {other:?}"),
        })
        .collect()
}

async fn available(store: &Store, users: &[&User]) {
    for user in users {
        store
            .set_availability(user.id, Availability::Available)
            .await
            .unwrap();
    }
}

/// Every assignment `department` makes now, until it gives no more: (conversation, agent).
async fn route(store: &Store, department: DepartmentId) -> Vec<(ConversationId, UserId)> {
    let mut all = Vec::new();
    loop {
        let batch = store.assign_queued(department).await.unwrap();
        all.extend(batch.iter().map(|a| (a.conversation_id, a.assignee_id)));
        if batch.len() < postdesk_store::ROUTING_BATCH {
            return all;
        }
    }
}

async fn status_of(store: &Store, id: ConversationId) -> (ConversationStatus, Option<UserId>) {
    let c = store.find_conversation(id).await.unwrap().unwrap();
    (c.status, c.assignee_id)
}

async fn last_system_line(store: &Store, id: ConversationId) -> String {
    store
        .list_messages(id)
        .await
        .unwrap()
        .into_iter()
        .rev()
        .find(|m| m.kind == MessageKind::System)
        .map(|m| m.text)
        .unwrap_or_default()
}

async fn round_robin_takes_turns_by_user_id_and_goes_on_where_it_stopped(store: Store) {
    let ann = agent(&store, "ann").await;
    let bob = agent(&store, "bob").await;
    let cid = agent(&store, "cid").await;
    let (department, inbox) =
        department(&store, Routing::RoundRobin, None, &[&ann, &bob, &cid]).await;
    available(&store, &[&ann, &bob, &cid]).await;
    let queued = arrive(&store, inbox, 1, 4).await;
    let assigned = route(&store, department).await;
    assert_eq!(
        assigned,
        vec![
            (queued[0], ann.id),
            (queued[1], bob.id),
            (queued[2], cid.id),
            (queued[3], ann.id)
        ]
    );
    for (id, who) in &assigned {
        assert_eq!(
            status_of(&store, *id).await,
            (ConversationStatus::Open, Some(*who))
        );
    }
    assert_eq!(
        last_system_line(&store, queued[1]).await,
        "Assigned to @bob by round robin"
    );
    // The turn is kept: the next goes to bob, even in a later run.
    let next = arrive(&store, inbox, 5, 1).await;
    assert_eq!(route(&store, department).await, vec![(next[0], bob.id)]);
    // Nothing left: a run gives nothing.
    assert!(route(&store, department).await.is_empty());
}

async fn load_balancing_gives_to_the_fewest_open_and_on_hold_does_not_count(store: Store) {
    let ann = agent(&store, "ann").await;
    let bob = agent(&store, "bob").await;
    let (department, inbox) = department(&store, Routing::LoadBalancing, None, &[&ann, &bob]).await;
    // Ann already has two open conversations (taken by hand), bob one on hold.
    let earlier = arrive(&store, inbox, 1, 3).await;
    store.take_conversation(earlier[0], &ann).await.unwrap();
    store.take_conversation(earlier[1], &ann).await.unwrap();
    store.take_conversation(earlier[2], &bob).await.unwrap();
    sqlx::query("UPDATE conversations SET status = 'on_hold' WHERE id = $1")
        .bind(earlier[2].0)
        .execute(store.raw_pool())
        .await
        .unwrap();
    available(&store, &[&ann, &bob]).await;
    let queued = arrive(&store, inbox, 4, 4).await;
    let assigned = route(&store, department).await;
    // Bob (0 open: on hold does not count) gets two, then they alternate by id on ties.
    assert_eq!(
        assigned,
        vec![
            (queued[0], bob.id),
            (queued[1], bob.id),
            (queued[2], ann.id),
            (queued[3], bob.id)
        ]
    );
    assert_eq!(
        last_system_line(&store, queued[0]).await,
        "Assigned to @bob by load balancing"
    );
}

async fn with_nobody_available_the_queue_waits_then_goes_out_in_arrival_order(store: Store) {
    let ann = agent(&store, "ann").await;
    let bob = agent(&store, "bob").await;
    let (department, inbox) = department(&store, Routing::RoundRobin, Some(2), &[&ann, &bob]).await;
    // Bob is away, ann offline (the default).
    store
        .set_availability(bob.id, Availability::Away)
        .await
        .unwrap();
    let first = arrive(&store, inbox, 1, 2).await;
    let second = arrive(&store, inbox, 3, 1).await;
    assert!(route(&store, department).await.is_empty());
    assert!(store.departments_to_route().await.unwrap().is_empty());
    for id in first.iter().chain(&second) {
        assert_eq!(
            status_of(&store, *id).await,
            (ConversationStatus::Queued, None)
        );
    }
    // Ann becomes available: she gets the two oldest (her limit), the newest still waits.
    available(&store, &[&ann]).await;
    assert_eq!(
        store.departments_to_route().await.unwrap(),
        vec![department]
    );
    assert_eq!(
        route(&store, department).await,
        vec![(first[0], ann.id), (first[1], ann.id)]
    );
    assert_eq!(
        status_of(&store, second[0]).await,
        (ConversationStatus::Queued, None)
    );
    // Then bob: the one left.
    available(&store, &[&bob]).await;
    assert_eq!(route(&store, department).await, vec![(second[0], bob.id)]);
}

async fn limits_stop_assignment_and_agents_becoming_available_get_the_rest(store: Store) {
    let ann = agent(&store, "ann").await;
    let bob = agent(&store, "bob").await;
    let (department, inbox) =
        department(&store, Routing::LoadBalancing, Some(2), &[&ann, &bob]).await;
    available(&store, &[&ann]).await;
    let queued = arrive(&store, inbox, 1, 5).await;
    assert_eq!(
        route(&store, department).await,
        vec![(queued[0], ann.id), (queued[1], ann.id)]
    );
    available(&store, &[&bob]).await;
    assert_eq!(
        route(&store, department).await,
        vec![(queued[2], bob.id), (queued[3], bob.id)]
    );
    assert_eq!(
        status_of(&store, queued[4]).await,
        (ConversationStatus::Queued, None)
    );
    // Ann closes one: she has room again, and gets the last.
    store
        .close_conversation(queued[0], &ann, None)
        .await
        .unwrap();
    assert_eq!(route(&store, department).await, vec![(queued[4], ann.id)]);
}

async fn manual_departments_and_inboxes_without_one_are_not_routed(store: Store) {
    let ann = agent(&store, "ann").await;
    let (department, inbox) = department(&store, Routing::Manual, None, &[&ann]).await;
    available(&store, &[&ann]).await;
    let queued = arrive(&store, inbox, 1, 1).await;
    assert!(route(&store, department).await.is_empty());
    assert!(store.departments_to_route().await.unwrap().is_empty());
    assert_eq!(
        status_of(&store, queued[0]).await,
        (ConversationStatus::Queued, None)
    );
    let everyone = store
        .create_inbox(&inbox_settings("everyone@example.test"))
        .await
        .unwrap()
        .id;
    let loose = arrive(&store, everyone, 1, 1).await;
    assert_eq!(
        store
            .find_conversation(loose[0])
            .await
            .unwrap()
            .unwrap()
            .department_id,
        None
    );
    assert!(store.departments_to_route().await.unwrap().is_empty());
}

async fn an_agent_whose_last_session_ends_turns_offline(store: Store) {
    let ann = agent(&store, "ann").await;
    assert_eq!(ann.availability, Availability::Offline);
    for token in ["one", "two"] {
        store
            .create_session(&NewSession {
                user_id: ann.id,
                token_hash: token.into(),
                expires_at: now_ms() + 60_000,
                ip: "127.0.0.1".into(),
                user_agent: "test".into(),
                method: "password".into(),
            })
            .await
            .unwrap();
    }
    assert!(
        store
            .set_availability(ann.id, Availability::Available)
            .await
            .unwrap()
    );
    assert!(
        !store
            .set_availability(ann.id, Availability::Available)
            .await
            .unwrap(),
        "already available"
    );
    store.delete_session("one").await.unwrap();
    assert!(store.offline_without_sessions().await.unwrap().is_empty());
    let found = store.find_user(ann.id).await.unwrap().unwrap();
    assert_eq!(found.availability, Availability::Available);
    store.delete_session("two").await.unwrap();
    assert_eq!(
        store.offline_without_sessions().await.unwrap(),
        vec![ann.id]
    );
    let found = store.find_user(ann.id).await.unwrap().unwrap();
    assert_eq!(found.availability, Availability::Offline);
    assert!(store.offline_without_sessions().await.unwrap().is_empty());
    // Bob is away with a session that has expired: offline too.
    let bob = agent(&store, "bob").await;
    store
        .create_session(&NewSession {
            user_id: bob.id,
            token_hash: "expired".into(),
            expires_at: now_ms() - 1,
            ip: "127.0.0.1".into(),
            user_agent: "test".into(),
            method: "password".into(),
        })
        .await
        .unwrap();
    store
        .set_availability(bob.id, Availability::Away)
        .await
        .unwrap();
    assert_eq!(
        store.offline_without_sessions().await.unwrap(),
        vec![bob.id]
    );
    assert!(
        store
            .set_availability(UserId(9999), Availability::Away)
            .await
            .is_err(),
        "an unknown user"
    );
}

async fn leaving_a_department_returns_ones_conversations_of_it_to_the_queue(store: Store) {
    let ann = agent(&store, "ann").await;
    let bob = agent(&store, "bob").await;
    let (department, inbox) = department(&store, Routing::Manual, None, &[&ann, &bob]).await;
    let other = store
        .create_inbox(&inbox_settings("other@example.test"))
        .await
        .unwrap()
        .id;
    let queued = arrive(&store, inbox, 1, 3).await;
    let elsewhere = arrive(&store, other, 1, 1).await;
    for id in queued.iter().chain(&elsewhere) {
        store.take_conversation(*id, &ann).await.unwrap();
    }
    sqlx::query("UPDATE conversations SET status = 'on_hold' WHERE id = $1")
        .bind(queued[1].0)
        .execute(store.raw_pool())
        .await
        .unwrap();
    store
        .close_conversation(queued[2], &ann, None)
        .await
        .unwrap();
    let returned = store
        .leave_department(department, ann.id)
        .await
        .unwrap()
        .expect("ann was in it");
    let ids: Vec<_> = returned.iter().map(|r| r.conversation_id).collect();
    assert_eq!(
        ids,
        vec![queued[0], queued[1]],
        "open and on hold, of Support"
    );
    assert!(returned.iter().all(|r| r.department_id == Some(department)));
    for id in &ids {
        assert_eq!(
            status_of(&store, *id).await,
            (ConversationStatus::Queued, None)
        );
        assert_eq!(
            last_system_line(&store, *id).await,
            "Returned to the queue: @ann left Support"
        );
        let c = store.find_conversation(*id).await.unwrap().unwrap();
        assert!(c.queued_at.is_some());
    }
    assert_eq!(
        status_of(&store, queued[2]).await.0,
        ConversationStatus::Closed
    );
    assert_eq!(
        status_of(&store, elsewhere[0]).await,
        (ConversationStatus::Open, Some(ann.id)),
        "another inbox's conversation stays hers"
    );
    assert!(
        store
            .leave_department(department, ann.id)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store
            .find_department(department)
            .await
            .unwrap()
            .unwrap()
            .members,
        vec![bob.id]
    );
}

async fn deactivating_returns_every_conversation_of_the_agent_to_the_queue(store: Store) {
    let ann = agent(&store, "ann").await;
    let (department, inbox) = department(&store, Routing::RoundRobin, None, &[&ann]).await;
    available(&store, &[&ann]).await;
    let everyone = store
        .create_inbox(&inbox_settings("other@example.test"))
        .await
        .unwrap()
        .id;
    let routed = arrive(&store, inbox, 1, 1).await;
    assert_eq!(route(&store, department).await, vec![(routed[0], ann.id)]);
    let loose = arrive(&store, everyone, 1, 1).await;
    store.take_conversation(loose[0], &ann).await.unwrap();
    let returned = store.set_user_active(ann.id, false).await.unwrap();
    let mut ids: Vec<_> = returned.iter().map(|r| r.conversation_id).collect();
    ids.sort_unstable();
    assert_eq!(ids, vec![routed[0], loose[0]]);
    for id in &ids {
        assert_eq!(
            status_of(&store, *id).await,
            (ConversationStatus::Queued, None)
        );
        assert_eq!(
            last_system_line(&store, *id).await,
            "Returned to the queue: @ann was deactivated"
        );
    }
    let found = store.find_user(ann.id).await.unwrap().unwrap();
    assert!(!found.active);
    assert_eq!(found.availability, Availability::Offline);
    // A deactivated agent is given nothing, even if marked available.
    sqlx::query("UPDATE users SET availability = 'available' WHERE id = $1")
        .bind(ann.id.0)
        .execute(store.raw_pool())
        .await
        .unwrap();
    assert!(route(&store, department).await.is_empty());
}

async fn department_settings_replace_the_agents(store: Store) {
    let ann = agent(&store, "ann").await;
    let bob = agent(&store, "bob").await;
    let cid = agent(&store, "cid").await;
    let (department, inbox) = department(&store, Routing::Manual, None, &[&ann, &bob]).await;
    let queued = arrive(&store, inbox, 1, 1).await;
    store.take_conversation(queued[0], &ann).await.unwrap();
    let returned = store
        .update_department(
            department,
            &DepartmentSettings {
                name: "Help".into(),
                agents: vec![cid.id, bob.id],
                routing: Routing::LoadBalancing,
                max_chats_per_agent: Some(3),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        returned
            .iter()
            .map(|r| r.conversation_id)
            .collect::<Vec<_>>(),
        vec![queued[0]]
    );
    assert_eq!(
        last_system_line(&store, queued[0]).await,
        "Returned to the queue: @ann left Help"
    );
    let found = store.find_department(department).await.unwrap().unwrap();
    assert_eq!(found.name, "Help");
    assert_eq!(found.members, vec![bob.id, cid.id]);
    assert_eq!(found.routing, Routing::LoadBalancing);
    assert_eq!(found.max_chats_per_agent, Some(3));
    let other = store.create_department("Sales").await.unwrap();
    let clash = store
        .update_department(
            other.id,
            &DepartmentSettings {
                name: "Help".into(),
                agents: vec![],
                routing: Routing::Manual,
                max_chats_per_agent: None,
            },
        )
        .await;
    assert!(
        matches!(clash, Err(postdesk_store::StoreError::Conflict(_))),
        "{clash:?}"
    );
}

/// Two stores on one database (two postdesk nodes) assign the same department's queue at
/// once, again and again, while agents become available: nobody goes over the limit, no
/// conversation is assigned twice, and every conversation there is room for is assigned.
async fn two_stores_assigning_at_once(url: &str) {
    const LIMIT: i64 = 3;
    let one = Store::connect(url).await.unwrap();
    let two = Store::connect(url).await.unwrap();
    let mut agents = Vec::new();
    for name in ["ann", "bob", "cid", "dan", "eve"] {
        agents.push(agent(&one, name).await);
    }
    let refs: Vec<&User> = agents.iter().collect();
    let (department, inbox) = department(&one, Routing::LoadBalancing, Some(LIMIT), &refs).await;
    // A second department shares ann and bob, with round robin: its runs race over their
    // open counts too.
    let second = one.create_department("Sales").await.unwrap().id;
    one.update_department(
        second,
        &DepartmentSettings {
            name: "Sales".into(),
            agents: vec![agents[0].id, agents[1].id],
            routing: Routing::RoundRobin,
            max_chats_per_agent: Some(LIMIT),
        },
    )
    .await
    .unwrap();
    let mut settings = inbox_settings("sales@example.test");
    settings.department_id = Some(second.0);
    let sales_inbox = one.create_inbox(&settings).await.unwrap().id;
    let queued = arrive(&one, inbox, 1, 40).await;
    let sales_queued = arrive(&one, sales_inbox, 1, 10).await;
    let run = |store: Store, departments: [DepartmentId; 2]| async move {
        let mut assigned = Vec::new();
        for _ in 0..20 {
            for d in departments {
                loop {
                    match store.assign_queued(d).await {
                        Ok(batch) => {
                            assigned.extend(batch);
                            break;
                        }
                        // A PostgreSQL deadlock or serialization failure: tried again.
                        Err(e) if e.is_transient() => {}
                        Err(e) => panic!("{e}"),
                    }
                }
            }
            tokio::task::yield_now().await;
        }
        assigned
    };
    let becoming_available = {
        let store = one.clone();
        let agents = agents.clone();
        async move {
            for a in &agents {
                store
                    .set_availability(a.id, Availability::Available)
                    .await
                    .unwrap();
                tokio::task::yield_now().await;
            }
        }
    };
    let (first, second_run, ()) = tokio::join!(
        tokio::spawn(run(one.clone(), [department, second])),
        tokio::spawn(run(two.clone(), [second, department])),
        becoming_available
    );
    // Everything still assignable, once everybody is available.
    let last = run(one.clone(), [department, second]).await;
    let all: Vec<_> = first
        .unwrap()
        .into_iter()
        .chain(second_run.unwrap())
        .chain(last)
        .collect();
    let mut seen = HashSet::new();
    for a in &all {
        assert!(
            seen.insert(a.conversation_id),
            "{} assigned twice",
            a.conversation_id
        );
    }
    let mut open: HashMap<UserId, i64> = HashMap::new();
    for id in queued.iter().chain(&sales_queued) {
        let (status, assignee) = status_of(&one, *id).await;
        match status {
            ConversationStatus::Open => *open.entry(assignee.unwrap()).or_default() += 1,
            ConversationStatus::Queued => assert_eq!(assignee, None),
            other => panic!("{other}"),
        }
    }
    for a in &agents {
        assert_eq!(
            open.get(&a.id).copied().unwrap_or(0),
            LIMIT,
            "{} has exactly the limit: no more, and every place filled",
            a.username
        );
    }
    assert_eq!(seen.len(), agents.len() * 3, "one assignment per place");
    // What each store reported matches the database.
    for a in &all {
        assert_eq!(
            status_of(&one, a.conversation_id).await,
            (ConversationStatus::Open, Some(a.assignee_id))
        );
    }
    // The queue left is the newest: each department served its oldest first.
    let left: Vec<_> = queued
        .iter()
        .filter(|id| !seen.contains(id))
        .copied()
        .collect();
    assert!(
        left.iter()
            .all(|id| queued.iter().position(|q| q == id) >= Some(queued.len() - left.len()))
    );
    one.close().await;
    two.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_stores_assigning_at_once_on_sqlite() {
    let fixture = common::sqlite().await;
    let dir = fixture._sqlite_dir.as_ref().unwrap();
    let url = format!("sqlite://{}/postdesk.db", dir.path().display());
    two_stores_assigning_at_once(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_stores_assigning_at_once_on_postgres() {
    let fixture = common::postgres().await;
    let url = fixture._pg.as_ref().unwrap().url().to_owned();
    two_stores_assigning_at_once(&url).await;
}
