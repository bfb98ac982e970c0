//! Canned responses, on SQLite and PostgreSQL: a shortcut is unique within its scope and
//! owner whatever its case, a list holds what the policy's view shows in a fixed order, and
//! a canned response is found, changed and deleted.

#[macro_use]
mod common;

use common::user;
use postdesk_core::access::{CannedOwner, CannedView};
use postdesk_core::ids::{CannedResponseId, DepartmentId, UserId};
use postdesk_core::model::Role;
use postdesk_store::{CannedContent, CannedResponse, Store, StoreError};

contract!(
    shortcuts_are_unique_within_their_scope_and_owner_whatever_their_case,
    of_two_writers_racing_for_one_shortcut_in_two_cases_exactly_one_wins,
    a_list_holds_what_the_view_shows_most_personal_first,
    a_canned_response_is_found_changed_and_deleted,
);

fn content(shortcut: &str, owner: CannedOwner) -> CannedContent {
    CannedContent {
        shortcut: shortcut.into(),
        text: format!("Text of {shortcut}, {{{{contact.name}}}}"),
        owner,
    }
}

async fn add(store: &Store, shortcut: &str, owner: CannedOwner, by: UserId) -> CannedResponse {
    store
        .create_canned_response(&content(shortcut, owner), by)
        .await
        .unwrap_or_else(|e| panic!("!{shortcut} of {owner:?}: {e}"))
}

fn is_conflict(result: &Result<CannedResponse, StoreError>, shortcut: &str) -> bool {
    matches!(result, Err(StoreError::Conflict(words))
        if words.contains(&format!("A canned response !{shortcut} already exists")))
}

async fn shortcuts_are_unique_within_their_scope_and_owner_whatever_their_case(store: Store) {
    let admin = user(&store, "root", Role::Admin).await.id;
    let ann = user(&store, "ann", Role::Agent).await.id;
    let bob = user(&store, "bob", Role::Agent).await.id;
    let sales = store.create_department("Sales").await.unwrap().id;
    let billing = store.create_department("Billing").await.unwrap().id;

    let hello = add(&store, "Hello", CannedOwner::Global, admin).await;
    assert_eq!(hello.shortcut, "Hello", "stored as typed");
    let again = store
        .create_canned_response(&content("hELLO", CannedOwner::Global), admin)
        .await;
    assert!(is_conflict(&again, "hELLO"), "{again:?}");

    // The same shortcut under every other owner is another canned response.
    for owner in [
        CannedOwner::Department(sales),
        CannedOwner::Department(billing),
        CannedOwner::User(ann),
        CannedOwner::User(bob),
    ] {
        add(&store, "hello", owner, admin).await;
    }
    let twice = store
        .create_canned_response(&content("HELLO", CannedOwner::User(ann)), ann)
        .await;
    assert!(is_conflict(&twice, "HELLO"), "{twice:?}");

    // Beyond ASCII too, which the databases' own LOWER would not fold alike.
    add(&store, "Ärger", CannedOwner::Department(sales), admin).await;
    let umlaut = store
        .create_canned_response(&content("äRGER", CannedOwner::Department(sales)), admin)
        .await;
    assert!(is_conflict(&umlaut, "äRGER"), "{umlaut:?}");

    // A change of case of one's own shortcut is no conflict; moving onto a taken one is.
    let renamed = store
        .update_canned_response(hello.id, &content("HELLO", CannedOwner::Global))
        .await
        .unwrap();
    assert_eq!(renamed.shortcut, "HELLO");
    let bye = add(&store, "bye", CannedOwner::User(ann), ann).await;
    let moved = store
        .update_canned_response(bye.id, &content("Hello", CannedOwner::Global))
        .await;
    assert!(is_conflict(&moved, "Hello"), "{moved:?}");
    assert_eq!(
        store.find_canned_response(bye.id).await.unwrap().unwrap(),
        bye,
        "a refused change leaves it as it was"
    );
}

async fn of_two_writers_racing_for_one_shortcut_in_two_cases_exactly_one_wins(store: Store) {
    let admin = user(&store, "root", Role::Admin).await.id;
    for round in 0..5 {
        let lower = format!("race{round}");
        let upper = lower.to_uppercase();
        let (first, second) = (
            content(&lower, CannedOwner::Global),
            content(&upper, CannedOwner::Global),
        );
        let (a, b) = tokio::join!(
            store.create_canned_response(&first, admin),
            store.create_canned_response(&second, admin),
        );
        let won = [&a, &b].iter().filter(|r| r.is_ok()).count();
        assert_eq!(won, 1, "round {round}: {a:?} / {b:?}");
        assert!(
            is_conflict(&a, &lower) || is_conflict(&b, &upper),
            "the loser is told why: {a:?} / {b:?}"
        );
    }
}

async fn a_list_holds_what_the_view_shows_most_personal_first(store: Store) {
    let admin = user(&store, "root", Role::Admin).await.id;
    let ann = user(&store, "ann", Role::Agent).await.id;
    let bob = user(&store, "bob", Role::Agent).await.id;
    let sales = store.create_department("Sales").await.unwrap().id;
    let billing = store.create_department("Billing").await.unwrap().id;
    let global = add(&store, "thanks", CannedOwner::Global, admin).await;
    let sales_thanks = add(&store, "Thanks", CannedOwner::Department(sales), admin).await;
    let anns_thanks = add(&store, "THANKS", CannedOwner::User(ann), ann).await;
    let billing_refund = add(&store, "refund", CannedOwner::Department(billing), admin).await;
    let anns_address = add(&store, "address", CannedOwner::User(ann), ann).await;
    let bobs = add(&store, "bobs", CannedOwner::User(bob), bob).await;

    let ids = |list: Vec<CannedResponse>| -> Vec<CannedResponseId> {
        list.into_iter().map(|c| c.id).collect()
    };
    let view =
        |user: UserId, departments: Option<Vec<DepartmentId>>| CannedView { user, departments };
    // Ann in Sales: global, Sales' and her own; one shortcut in three scopes, hers first.
    let anns = store
        .list_canned_responses(&view(ann, Some(vec![sales])))
        .await
        .unwrap();
    assert_eq!(
        ids(anns),
        vec![anns_address.id, anns_thanks.id, sales_thanks.id, global.id]
    );
    // Bob in no department: the global one and his own.
    let bobs_list = store
        .list_canned_responses(&view(bob, Some(vec![])))
        .await
        .unwrap();
    assert_eq!(ids(bobs_list), vec![bobs.id, global.id]);
    // Every department's (an admin's view), but nobody else's own.
    let every = store
        .list_canned_responses(&view(admin, None))
        .await
        .unwrap();
    assert_eq!(
        ids(every),
        vec![billing_refund.id, sales_thanks.id, global.id]
    );
}

async fn a_canned_response_is_found_changed_and_deleted(store: Store) {
    let ann = user(&store, "ann", Role::Agent).await.id;
    let sales = store.create_department("Sales").await.unwrap().id;
    let created = add(&store, "hi", CannedOwner::User(ann), ann).await;
    assert_eq!(created.created_by, Some(ann));
    assert_eq!(created.created_at, created.updated_at);
    let found = store.find_canned_response(created.id).await.unwrap();
    assert_eq!(found.as_ref(), Some(&created));

    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let new = CannedContent {
        shortcut: "hi.there".into(),
        text: "Hello {{contact.name}}, this is {{agent.name}}".into(),
        owner: CannedOwner::Department(sales),
    };
    let changed = store
        .update_canned_response(created.id, &new)
        .await
        .unwrap();
    assert_eq!(
        (&changed.shortcut, &changed.text, changed.owner),
        (&new.shortcut, &new.text, new.owner)
    );
    assert_eq!(changed.created_by, Some(ann), "the author stays");
    assert_eq!(changed.created_at, created.created_at);
    assert!(changed.updated_at > created.updated_at);
    assert_eq!(
        store.find_canned_response(created.id).await.unwrap(),
        Some(changed)
    );

    assert!(store.delete_canned_response(created.id).await.unwrap());
    assert_eq!(store.find_canned_response(created.id).await.unwrap(), None);
    assert!(!store.delete_canned_response(created.id).await.unwrap());
    let gone = store.update_canned_response(created.id, &new).await;
    assert!(
        matches!(gone, Err(StoreError::NotFound("canned response"))),
        "{gone:?}"
    );
}
