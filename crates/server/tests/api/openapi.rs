//! `GET /api/v1/openapi.json`: the OpenAPI document covers exactly the router's routes, each
//! with its method, path parameters, security and answers, and every schema it names exists.
//! (`tests/openapi.rs` runs schemathesis against a live server with it.)

use std::collections::BTreeSet;

use postdesk_core::access::Rule;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::{Db, spawn_app};

/// Every `$ref` in `value`.
fn refs(value: &Value, found: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                match (key.as_str(), inner) {
                    ("$ref", Value::String(target)) => {
                        found.insert(target.clone());
                    }
                    _ => refs(inner, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| refs(i, found)),
        _ => {}
    }
}

#[tokio::test]
async fn the_openapi_document_describes_every_route() {
    let app = spawn_app(Db::Sqlite).await;

    // Public, JSON, OpenAPI 3.1, the same bytes each time (built once).
    let response = app
        .client
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let text = response.text().await.unwrap();
    let again = app
        .client
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(text, again);
    let document: Value = serde_json::from_str(&text).unwrap();
    assert!(
        document["openapi"].as_str().unwrap().starts_with("3.1."),
        "{}",
        document["openapi"]
    );

    // Every route of the router is in the document, as the router declares it.
    let routes = postdesk::web::route_list();
    let mut ids = BTreeSet::new();
    for route in &routes {
        let method = route.method.as_str().to_ascii_lowercase();
        let operation = &document["paths"][&route.path][&method];
        let what = format!("{} {}", route.method, route.path);
        assert!(
            operation.is_object(),
            "{what} is not in the OpenAPI document: add #[utoipa::path] to its handler and \
             list the handler in its file's Api"
        );
        assert!(
            ids.insert(operation["operationId"].as_str().unwrap().to_owned()),
            "{what}: its operationId is not unique"
        );
        let responses = operation["responses"].as_object().unwrap();
        assert!(
            responses
                .keys()
                .any(|s| s.starts_with('2') || s.starts_with('3')),
            "{what} documents no success: {responses:?}"
        );
        let schemes: BTreeSet<&str> = operation["security"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|requirement| requirement.as_object().unwrap().keys())
            .map(String::as_str)
            .collect();
        if route.rule == Rule::Public {
            assert!(
                !schemes.contains("bearer") && !schemes.contains("session_cookie"),
                "{what} is public: no sign-in is asked ({schemes:?})"
            );
        } else {
            assert_eq!(
                schemes,
                BTreeSet::from(["bearer", "session_cookie"]),
                "{what}: a signed-in route takes a bearer token or the session cookie"
            );
            assert!(responses.contains_key("401"), "{what} documents no 401");
            assert!(responses.contains_key("403"), "{what} documents no 403");
        }
        // Each placeholder of the path is a documented path parameter.
        let placeholders: BTreeSet<&str> = route
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        let parameters: BTreeSet<&str> = operation["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["in"] == "path")
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            placeholders, parameters,
            "{what}: its path parameters are not all documented"
        );
    }

    // And nothing else: the document has no operation the router lacks.
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            assert!(
                routes
                    .iter()
                    .any(|r| r.path == *path && r.method.as_str().eq_ignore_ascii_case(method)),
                "{} {path} is in the OpenAPI document but not in the router",
                method.to_uppercase()
            );
        }
    }

    // An answer has every field (null for none); a form's optional fields stay optional; the
    // extra fields of an error are left out when they do not apply.
    let schemas = &document["components"]["schemas"];
    let required = |name: &str| -> BTreeSet<String> {
        schemas[name]["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap().to_owned())
            .collect()
    };
    assert!(required("Conversation").contains("closed_at"));
    assert!(required("Message").contains("email"));
    assert!(!required("DraftForm").contains("to"));
    assert_eq!(required("Error"), BTreeSet::from(["error".to_owned()]));

    // Every schema the document names is in it.
    let mut found = BTreeSet::new();
    refs(&document, &mut found);
    assert!(found.contains("#/components/schemas/Conversation"));
    for target in found {
        let name = target
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("{target} is not a schema of the document"));
        assert!(
            document["components"]["schemas"][name].is_object(),
            "{target} is named but not in the document"
        );
    }
}

/// An id in the path that is not a number is refused in the API's error shape, as the
/// document says (it was axum's plain text; found by schemathesis).
#[tokio::test]
async fn a_path_id_that_is_not_a_number_is_a_json_400() {
    let app = spawn_app(Db::Sqlite).await;
    for (method, path) in [
        (Method::GET, "/api/v1/users/abc/sessions"),
        (Method::GET, "/api/v1/inboxes/9223372036854775808"),
        (Method::PUT, "/api/v1/departments/1/members/x"),
    ] {
        let response = app
            .client
            .request(method, app.url(path))
            .bearer_auth(&app.admin)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/json",
            "{path}"
        );
        let body: Value = response.json().await.unwrap();
        assert!(
            body["error"].as_str().unwrap().contains("Cannot parse"),
            "{path}: {body}"
        );
    }
}

/// A query string that cannot be read is refused in the API's error shape too (it was axum's
/// plain text; found by schemathesis).
#[tokio::test]
async fn a_query_that_cannot_be_read_is_a_json_400() {
    let app = spawn_app(Db::Sqlite).await;
    for path in [
        "/api/v1/conversations?status=open&status=closed",
        "/api/v1/audit?unknown=1",
        "/api/v1/search?q=x&limit=many",
        "/login?wait=soon",
    ] {
        let response = app
            .client
            .get(app.url(path))
            .bearer_auth(&app.admin)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/json",
            "{path}"
        );
        let body: Value = response.json().await.unwrap();
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("Failed to deserialize query string"),
            "{path}: {body}"
        );
    }
}

/// A `Last-Event-ID` as large as a u64 goes opens the stream like any other (it overflowed
/// and ended the request without an answer).
#[tokio::test]
async fn the_largest_last_event_id_opens_the_stream() {
    let app = spawn_app(Db::Sqlite).await;
    let response = app
        .client
        .get(app.url("/api/v1/events"))
        .bearer_auth(&app.admin)
        .header("Last-Event-ID", u64::MAX.to_string())
        .send()
        .await
        .expect("an answer");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
}
