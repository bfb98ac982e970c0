//! Several nodes on one database, on SQLite and PostgreSQL: inbox readers' leases (claimed by
//! one node only, renewed, expired, released, fencing stale writers), nodes and their
//! heartbeats, the shared event log, and the outbox and snooze wake-ups worked by two nodes
//! at once.

#[macro_use]
mod common;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use common::inbox_settings;
use postdesk_core::ids::InboxId;
use postdesk_store::{
    Addr, Fence, HeldLease, NodeInfo, QueuedEmail, Store, StoreError, StoreFetched, Waiting,
};

contract!(
    leases_are_claimed_by_one_node_renewed_released_and_fence_writes,
    an_expired_lease_is_taken_over_with_a_new_epoch,
    nodes_are_listed_with_their_heartbeat,
    events_are_kept_in_order_and_pruned_without_reusing_ids,
);

on_one_database!(
    two_stores_racing_for_leases,
    two_stores_deliver_and_wake_each_once,
);

const MINUTE: i64 = 60_000;

fn node(id: &str) -> NodeInfo {
    NodeInfo {
        id: id.to_owned(),
        hostname: format!("host-{id}"),
        pid: 4242,
        version: "0.0.0-test".to_owned(),
        started_at: postdesk_store::now_ms(),
    }
}

async fn inboxes(store: &Store, n: usize) -> Vec<InboxId> {
    let mut out = Vec::new();
    for i in 0..n {
        let inbox = store
            .create_inbox(&inbox_settings(&format!("inbox{i}@example.test")))
            .await
            .unwrap();
        out.push(inbox.id);
    }
    out
}

fn ids(leases: &[HeldLease]) -> Vec<InboxId> {
    leases.iter().map(|l| l.inbox_id).collect()
}

fn fetched(uid: u32) -> Vec<StoreFetched> {
    vec![StoreFetched {
        uid,
        bytes: format!("Subject: {uid}\r\n\r\nHello\r\n").into_bytes(),
    }]
}

async fn leases_are_claimed_by_one_node_renewed_released_and_fence_writes(store: Store) {
    let all = inboxes(&store, 3).await;
    let mut off = inbox_settings("inbox2@example.test");
    off.active = false;
    store.update_inbox(all[2], &off).await.unwrap();
    let (a, b) = (node("a"), node("b"));
    store.join_cluster(&a).await.unwrap();
    store.join_cluster(&b).await.unwrap();

    // A claims every active inbox, B then finds none free; an inactive inbox is never claimed.
    let won = store.claim_leases(&a.id, MINUTE, None).await.unwrap();
    assert_eq!(ids(&won), vec![all[0], all[1]]);
    assert!(won.iter().all(|l| l.epoch == 1), "{won:?}");
    assert!(
        store
            .claim_leases(&b.id, MINUTE, None)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .claim_leases(&b.id, MINUTE, Some(all[2]))
            .await
            .unwrap()
            .is_empty()
    );

    // The heartbeat renews what A holds, with the same epochs.
    let renewed = store.heartbeat(&a, 2 * MINUTE).await.unwrap();
    assert_eq!(ids(&renewed), vec![all[0], all[1]]);
    assert!(renewed[0].expires_at > won[0].expires_at);
    assert_eq!(renewed[0].epoch, 1);
    assert!(store.heartbeat(&b, MINUTE).await.unwrap().is_empty());

    // Only the holder with its epoch may store under the lease.
    let a1 = Fence {
        node_id: a.id.clone(),
        epoch: 1,
    };
    store
        .store_fetched_fenced(Some(&a1), all[0], "INBOX", 7, fetched(1), 2)
        .await
        .unwrap();
    for (who, epoch) in [(&b.id, 1), (&a.id, 2)] {
        let fence = Fence {
            node_id: who.clone(),
            epoch,
        };
        let refused = store
            .store_fetched_fenced(Some(&fence), all[0], "INBOX", 7, fetched(2), 3)
            .await;
        assert!(
            matches!(refused, Err(StoreError::LeaseLost(inbox)) if inbox == all[0]),
            "{refused:?}"
        );
    }
    assert_eq!(
        store.find_sync_state(all[0], "INBOX").await.unwrap(),
        Some((7, 2)),
        "a refused write moved nothing"
    );

    // A releases inbox 0: B takes it at once, with the next epoch; A's writes are refused
    // from then on and its heartbeat no longer renews it.
    store.release_leases(&a.id, Some(all[0])).await.unwrap();
    let taken = store.claim_leases(&b.id, MINUTE, None).await.unwrap();
    assert_eq!(ids(&taken), vec![all[0]]);
    assert_eq!(taken[0].epoch, 2);
    let stale = store
        .store_fetched_fenced(Some(&a1), all[0], "INBOX", 7, fetched(3), 4)
        .await;
    assert!(matches!(stale, Err(StoreError::LeaseLost(_))), "{stale:?}");
    assert_eq!(
        ids(&store.heartbeat(&a, MINUTE).await.unwrap()),
        vec![all[1]]
    );

    // Who reads what, with the node's machine.
    let readers: HashMap<InboxId, (String, String, i64)> = store
        .reader_leases(None)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.inbox_id, (r.node_id, r.hostname, r.epoch)))
        .collect();
    assert_eq!(readers.len(), 2, "{readers:?}");
    assert_eq!(readers[&all[0]], ("b".into(), "host-b".into(), 2));
    assert_eq!(readers[&all[1]], ("a".into(), "host-a".into(), 1));

    // A node leaving frees its leases at once.
    store.leave_cluster(&a.id).await.unwrap();
    let readers = store.reader_leases(None).await.unwrap();
    assert_eq!(store.reader_leases(Some(all[1])).await.unwrap(), vec![]);
    assert_eq!(store.reader_leases(Some(all[0])).await.unwrap(), readers);
    assert_eq!(readers.len(), 1);
    assert_eq!(readers[0].inbox_id, all[0]);
    let taken = store.claim_leases(&b.id, MINUTE, None).await.unwrap();
    assert_eq!(ids(&taken), vec![all[1]]);
    assert_eq!(taken[0].epoch, 2, "the epoch grows across releases");
}

async fn an_expired_lease_is_taken_over_with_a_new_epoch(store: Store) {
    let all = inboxes(&store, 1).await;
    let (a, b) = (node("a"), node("b"));
    store.join_cluster(&a).await.unwrap();
    store.join_cluster(&b).await.unwrap();
    assert_eq!(
        store.claim_leases(&a.id, 150, None).await.unwrap()[0].epoch,
        1
    );
    assert!(
        store
            .claim_leases(&b.id, MINUTE, None)
            .await
            .unwrap()
            .is_empty(),
        "not before it expires"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A did not renew in time: its heartbeat no longer holds it, and B takes it.
    assert!(store.heartbeat(&a, MINUTE).await.unwrap().is_empty());
    let taken = store.claim_leases(&b.id, MINUTE, None).await.unwrap();
    assert_eq!(ids(&taken), all);
    assert_eq!(taken[0].epoch, 2);
    let refused = store
        .store_fetched_fenced(
            Some(&Fence {
                node_id: a.id.clone(),
                epoch: 1,
            }),
            all[0],
            "INBOX",
            1,
            fetched(1),
            2,
        )
        .await;
    assert!(
        matches!(refused, Err(StoreError::LeaseLost(_))),
        "{refused:?}"
    );
    assert_eq!(store.find_sync_state(all[0], "INBOX").await.unwrap(), None);
}

async fn nodes_are_listed_with_their_heartbeat(store: Store) {
    let (a, b) = (node("a"), node("b"));
    store.join_cluster(&a).await.unwrap();
    store.join_cluster(&b).await.unwrap();
    let listed = store.list_nodes(MINUTE).await.unwrap();
    let ids: Vec<&str> = listed.iter().map(|n| n.info.id.as_str()).collect();
    match store.backend() {
        // One node by definition: joining forgets the others.
        postdesk_store::Backend::Sqlite => assert_eq!(ids, vec!["b"]),
        postdesk_store::Backend::Postgres => assert_eq!(ids, vec!["a", "b"]),
    }
    let b_listed = listed.iter().find(|n| n.info.id == "b").unwrap();
    assert_eq!(b_listed.info, b);
    assert!(b_listed.alive);
    assert!(b_listed.heartbeat_at > 0);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        store.list_nodes(20).await.unwrap().iter().all(|n| !n.alive),
        "no heartbeat within the last 20 ms"
    );
    // A heartbeat puts back a node that was forgotten, and makes it alive.
    store.heartbeat(&a, MINUTE).await.unwrap();
    let listed = store.list_nodes(MINUTE).await.unwrap();
    assert!(listed.iter().any(|n| n.info.id == "a" && n.alive));
    store.leave_cluster(&a.id).await.unwrap();
    assert!(
        store
            .list_nodes(MINUTE)
            .await
            .unwrap()
            .iter()
            .all(|n| n.info.id != "a")
    );
}

async fn events_are_kept_in_order_and_pruned_without_reusing_ids(store: Store) {
    assert_eq!(store.latest_events(10).await.unwrap(), (vec![], 0));
    let first: Vec<String> = (0..3).map(|i| format!("{{\"n\":{i}}}")).collect();
    let last = store.append_events(&first).await.unwrap();
    let many: Vec<String> = (3..1200).map(|i| format!("{{\"n\":{i}}}")).collect();
    let last_of_many = store.append_events(&many).await.unwrap();
    assert!(last_of_many > last);
    let mut read = Vec::new();
    let mut after = 0;
    loop {
        let page = store.events_after(after, 1000).await.unwrap();
        let Some(end) = page.last() else { break };
        after = end.id;
        read.extend(page);
    }
    assert_eq!(read.len(), 1200);
    assert!(read.windows(2).all(|w| w[0].id < w[1].id), "in id order");
    let texts: Vec<&str> = read.iter().map(|e| e.event.as_str()).collect();
    let written: Vec<&str> = first.iter().chain(&many).map(String::as_str).collect();
    assert_eq!(texts, written, "in the order written");
    assert_eq!(read.last().unwrap().id, last_of_many);

    let (latest, top) = store.latest_events(2).await.unwrap();
    assert_eq!(top, last_of_many);
    assert_eq!(
        latest.iter().map(|e| e.event.as_str()).collect::<Vec<_>>(),
        vec!["{\"n\":1198}", "{\"n\":1199}"]
    );

    // Keep the last 10, then none: ids are never given again.
    assert_eq!(store.prune_events(10, MINUTE).await.unwrap(), 1190);
    assert_eq!(store.events_after(0, 100).await.unwrap().len(), 10);
    assert_eq!(store.prune_events(0, MINUTE).await.unwrap(), 10);
    let next = store.append_events(&["{}".to_owned()]).await.unwrap();
    assert!(next > last_of_many, "{next} after {last_of_many}");
    // And by age: an hour-old limit keeps what was just written.
    assert_eq!(store.prune_events(1000, 60 * MINUTE).await.unwrap(), 0);
}

/// How long the racing nodes' leases last (ms).
const SHORT: i64 = 20;

/// Two stores on one database (two nodes) claim the same short leases again and again, so
/// that many claims race and many leases expire between them: every (inbox, epoch) is won
/// exactly once, each inbox's epochs are 1, 2, 3, … without a gap, and no lease is won while
/// the previous holder's was still valid (as last renewed).
async fn two_stores_racing_for_leases(url: &str) {
    let one = Store::connect(url).await.unwrap();
    let two = Store::connect(url).await.unwrap();
    let all = inboxes(&one, 8).await;
    let nodes = ["n1", "n2", "n3", "n4"].map(node);
    for n in &nodes {
        one.join_cluster(n).await.unwrap();
    }
    // Every claim won and every renewal, as (inbox, epoch, expires_at, claimed).
    let race = |store: Store, node: NodeInfo| async move {
        let mut seen = Vec::new();
        for round in 0..40 {
            // Some rounds renew what is held, with a lease short enough to expire meanwhile.
            if round % 3 == 0 {
                loop {
                    match store.heartbeat(&node, SHORT).await {
                        Ok(renewed) => {
                            seen.extend(
                                renewed
                                    .iter()
                                    .map(|l| (l.inbox_id, l.epoch, l.expires_at, false)),
                            );
                            break;
                        }
                        Err(e) if e.is_transient() => {}
                        Err(e) => panic!("{e}"),
                    }
                }
            }
            loop {
                match store.claim_leases(&node.id, SHORT, None).await {
                    Ok(claimed) => {
                        seen.extend(
                            claimed
                                .iter()
                                .map(|l| (l.inbox_id, l.epoch, l.expires_at, true)),
                        );
                        break;
                    }
                    Err(e) if e.is_transient() => {}
                    Err(e) => panic!("{e}"),
                }
            }
            tokio::time::sleep(Duration::from_millis(7)).await;
        }
        seen
    };
    let runs: Vec<_> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let store = if i % 2 == 0 { one.clone() } else { two.clone() };
            tokio::spawn(race(store, n.clone()))
        })
        .collect();
    let mut seen = Vec::new();
    let mut winners = HashSet::new();
    for (i, run) in runs.into_iter().enumerate() {
        let node_saw = run.await.unwrap();
        if node_saw.iter().any(|s| s.3) {
            winners.insert(i);
        }
        seen.extend(node_saw);
    }
    let claims: Vec<(InboxId, i64)> = seen.iter().filter(|s| s.3).map(|s| (s.0, s.1)).collect();
    let unique: HashSet<(InboxId, i64)> = claims.iter().copied().collect();
    assert_eq!(unique.len(), claims.len(), "a lease won twice: {claims:?}");
    for inbox in &all {
        let mut epochs: Vec<i64> = claims
            .iter()
            .filter(|(i, _)| i == inbox)
            .map(|(_, e)| *e)
            .collect();
        epochs.sort_unstable();
        assert!(epochs.len() > 1, "{inbox} changed hands: {epochs:?}");
        assert_eq!(
            epochs,
            (1..=i64::try_from(epochs.len()).unwrap()).collect::<Vec<_>>(),
            "one claim per epoch for {inbox}"
        );
        // Epoch e + 1 was won (at its expiry minus the lease) no earlier than the last
        // expiry epoch e was renewed to.
        for e in 1..i64::try_from(epochs.len()).unwrap() {
            let held_until = seen
                .iter()
                .filter(|s| s.0 == *inbox && s.1 == e)
                .map(|s| s.2)
                .max()
                .unwrap();
            let next_won_at = seen
                .iter()
                .find(|s| s.0 == *inbox && s.1 == e + 1 && s.3)
                .map(|s| s.2 - SHORT)
                .unwrap();
            assert!(
                next_won_at >= held_until,
                "{inbox}: epoch {} won at {next_won_at} while epoch {e} held until {held_until}",
                e + 1
            );
        }
    }
    assert!(winners.len() > 1, "the leases went to several nodes");
    one.close().await;
    two.close().await;
}

/// A new conversation in `inbox` from contact `n`, taken by `agent`.
async fn taken_conversation(
    store: &Store,
    inbox: InboxId,
    n: u32,
    agent: &postdesk_store::User,
) -> postdesk_core::ids::ConversationId {
    let conversation = common::arrive(store, inbox, &format!("contact{n}@customers.test")).await;
    store.take_conversation(conversation, agent).await.unwrap();
    conversation
}

/// Two stores on one database (two nodes) work the outbox and the snooze wake-ups at once:
/// every queued email is claimed by exactly one of them, and every snooze is woken once.
async fn two_stores_deliver_and_wake_each_once(url: &str) {
    let one = Store::connect(url).await.unwrap();
    let two = Store::connect(url).await.unwrap();
    let inbox = inboxes(&one, 1).await[0];
    let ann = common::user(&one, "ann", postdesk_core::model::Role::Agent).await;
    let mut queued = HashSet::new();
    let mut to_snooze = Vec::new();
    for n in 1..=30 {
        let conversation = taken_conversation(&one, inbox, n, &ann).await;
        if n % 3 == 0 {
            to_snooze.push(conversation);
            continue;
        }
        let message = one
            .queue_email(
                conversation,
                ann.id,
                &QueuedEmail {
                    text: "On it".into(),
                    message_id: format!("reply{n}@example.test"),
                    in_reply_to: None,
                    references: vec![],
                    from: Addr {
                        name: None,
                        email: "inbox0@example.test".into(),
                    },
                    to: vec![],
                    cc: vec![],
                    bcc: vec![],
                    subject: "Re: Question".into(),
                    html: None,
                    date: postdesk_store::now_ms(),
                    mime: b"From: x\r\n\r\nbody\r\n".to_vec(),
                    mail_from: "inbox0@example.test".into(),
                    rcpt_to: vec![format!("contact{n}@customers.test")],
                    source_message_id: None,
                    seen_message_id: None,
                },
            )
            .await
            .unwrap();
        queued.insert(message.id);
    }
    let until = postdesk_store::now_ms() + 300;
    let mut snoozed = HashSet::new();
    for conversation in to_snooze {
        one.set_waiting(conversation, &ann, Waiting::Snooze { until })
            .await
            .unwrap();
        snoozed.insert(conversation);
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    let work = |store: Store| async move {
        let (mut sent, mut woken) = (Vec::new(), Vec::new());
        loop {
            let claimed = store.claim_outbox(60_000).await;
            let wake = store.wake_snoozed(postdesk_store::now_ms()).await;
            let mut idle = true;
            match claimed {
                Ok(Some(item)) => {
                    sent.push(item.message_id);
                    idle = false;
                }
                Ok(None) => {}
                Err(e) if e.is_transient() => idle = false,
                Err(e) => panic!("{e}"),
            }
            match wake {
                Ok(w) => woken.extend(w.into_iter().map(|w| w.conversation_id)),
                Err(e) if e.is_transient() => idle = false,
                Err(e) => panic!("{e}"),
            }
            if idle {
                return (sent, woken);
            }
        }
    };
    let (a, b) = tokio::join!(
        tokio::spawn(work(one.clone())),
        tokio::spawn(work(two.clone()))
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let sent: Vec<_> = a.0.iter().chain(&b.0).copied().collect();
    let woken: Vec<_> = a.1.iter().chain(&b.1).copied().collect();
    assert_eq!(
        sent.len(),
        queued.len(),
        "each email claimed once: {sent:?}"
    );
    assert_eq!(sent.iter().copied().collect::<HashSet<_>>(), queued);
    assert_eq!(
        woken.len(),
        snoozed.len(),
        "each snooze woken once: {woken:?}"
    );
    assert_eq!(woken.iter().copied().collect::<HashSet<_>>(), snoozed);
    one.close().await;
    two.close().await;
}

/// On PostgreSQL a listening node is woken by events another node adds, and when its
/// connection is cut it says so (so it fetches what it may have missed), then hears again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_is_woken_and_told_when_its_connection_was_lost() {
    let fixture = common::postgres().await;
    let url = fixture._pg.as_ref().unwrap().url().to_owned();
    let writer = Store::connect(&url).await.unwrap();
    let mut listener = fixture.store.listen_for_events().await.unwrap();
    writer.append_events(&["{}".to_owned()]).await.unwrap();
    assert!(wait(&mut listener).await, "a notice");
    // Cut the listening connection from the server's side.
    let cut = sqlx::query(
        "SELECT pg_terminate_backend(pid)::text AS done FROM pg_stat_activity
         WHERE datname = current_database() AND query LIKE 'LISTEN%'",
    )
    .fetch_all(writer.raw_pool())
    .await
    .unwrap();
    assert_eq!(cut.len(), 1, "one listening connection");
    assert!(!wait(&mut listener).await, "told the connection was lost");
    writer.append_events(&["{}".to_owned()]).await.unwrap();
    assert!(wait(&mut listener).await, "hears again");
}

/// Listening needs PostgreSQL: on SQLite it is refused with words saying so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listening_for_events_needs_postgresql() {
    let fixture = common::sqlite().await;
    let refused = fixture.store.listen_for_events().await.unwrap_err();
    assert!(refused.to_string().contains("PostgreSQL"), "{refused}");
}

async fn wait(listener: &mut postdesk_store::EventListener) -> bool {
    tokio::time::timeout(Duration::from_secs(10), listener.wait())
        .await
        .expect("woken within 10 s")
        .unwrap()
}
