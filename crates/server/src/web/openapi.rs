//! `GET /api/v1/openapi.json`: the OpenAPI 3.1 document of the whole HTTP API, generated from
//! the code, never written by hand.
//!
//! - Each file's handlers carry `#[utoipa::path]`: method, path, parameters, body and the
//!   answers of that handler, with the types it really takes and returns (its forms derive
//!   `ToSchema`/`IntoParams`, its answers are `Serialize + ToSchema` structs). Each file lists
//!   them in its `Api`, next to its `routes()`.
//! - What depends on a route's access [`Rule`] comes from [`super::route_list`], the list the
//!   router is built from: the security (a bearer token or the session cookie; none for a
//!   public route), and the answers every route of its kind gives before or around its
//!   handler (401 and 403 from the policy, 404 and 409 for a conversation's routes, 400 for
//!   parameters or a body that cannot be read, 413 for a body over the limit).
//! - An answer's fields that may be `null` are required (an answer always sends them), in the
//!   schemas only answers use.
//!
//! The API test `openapi.rs` checks that every route is in the document with its method and
//! security, and that the document has nothing else; `tests/openapi.rs` runs schemathesis
//! against a live server with it.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use axum::http::{Method, header};
use axum::response::{IntoResponse as _, Response};
use postdesk_core::access::{Action, Rule};
use serde_json::Value;
use utoipa::OpenApi as _;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{
    ContentBuilder, InfoBuilder, LicenseBuilder, OpenApi, OpenApiBuilder, Ref, RefOr,
    ResponseBuilder,
};

use super::error::ErrorBody;
use super::policy::{Route, RouteInfo};

pub(super) fn routes() -> Vec<Route> {
    vec![Route::get("/openapi.json", Rule::Public, serve)]
}

/// This file's route in the document, and the error answer every route may give.
#[derive(utoipa::OpenApi)]
#[openapi(paths(serve), components(schemas(ErrorBody)))]
struct Api;

/// This document: the OpenAPI 3.1 description of every route, generated from the code.
#[utoipa::path(get, path = "/openapi.json",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json", body = Object)))]
async fn serve() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        document_json(),
    )
        .into_response()
}

/// The document as JSON, built at the first call.
#[must_use]
pub fn document_json() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| document().to_string())
}

/// Each file's part of the document: the prefix its routes are mounted under (as in
/// [`super::routes`]), and the tag of its operations.
fn parts() -> Vec<(&'static str, &'static str, OpenApi)> {
    const API: &str = "/api/v1";
    vec![
        ("", "Service", super::Api::openapi()),
        ("", "Web app", super::ui::Api::openapi()),
        ("", "Service", super::metrics::Api::openapi()),
        (API, "Session", super::session::Api::openapi()),
        (API, "Single sign-on", super::oidc::Api::openapi()),
        (API, "Two-factor sign-in", super::two_factor::Api::openapi()),
        (API, "Users", super::users::Api::openapi()),
        (API, "Users", super::availability::Api::openapi()),
        (API, "Departments", super::departments::Api::openapi()),
        (API, "Inboxes", super::inboxes::Api::openapi()),
        (API, "Several nodes", super::cluster::Api::openapi()),
        (API, "Mailbox OAuth2", super::mail_oauth::Api::openapi()),
        (API, "Conversations", super::conversations::Api::openapi()),
        (API, "Conversations", super::presence::Api::openapi()),
        (API, "Drafts", super::drafts::Api::openapi()),
        (API, "Conversation lists", super::lists::Api::openapi()),
        (API, "Contacts", super::contacts::Api::openapi()),
        (API, "Tags and search", super::search::Api::openapi()),
        (API, "Canned responses", super::canned::Api::openapi()),
        (API, "Events", super::events::Api::openapi()),
        (API, "Audit log", super::audit::Api::openapi()),
        (API, "Mail server push", super::push::Api::openapi()),
        (API, "Service", Api::openapi()),
    ]
}

/// The whole document, as JSON: the files' parts under their prefixes, then each route's
/// security and the answers of its rule.
#[must_use]
pub fn document() -> Value {
    let mut document = OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("postdesk")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "The HTTP API of postdesk, a team email inbox. Generated from the code; \
                     docs/api.md says what each call does.",
                ))
                .license(Some(
                    LicenseBuilder::new()
                        .name("AGPL-3.0-or-later")
                        .identifier(Some("AGPL-3.0-or-later"))
                        .build(),
                )),
        )
        .build();
    for (prefix, tag, mut part) in parts() {
        for (path, mut item) in std::mem::take(&mut part.paths.paths) {
            for (_, operation) in operations(&mut item) {
                operation.tags = Some(vec![tag.to_owned()]);
            }
            let path = format!("{prefix}{path}");
            match document.paths.paths.get_mut(&path) {
                Some(existing) => existing.merge_operations(item),
                None => {
                    document.paths.paths.insert(path, item);
                }
            }
        }
        document.merge(part);
    }
    let components = document.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        BEARER,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some("The `token` of `POST /api/v1/login`"))
                .build(),
        ),
    );
    components.add_security_scheme(
        COOKIE,
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            super::auth::SESSION_COOKIE,
            "The web app's session cookie; a call that changes anything must also send the \
             session's CSRF token in `X-CSRF-Token`",
        ))),
    );
    components.add_security_scheme(
        "push_secret",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Basic)
                .description(Some(
                    "The mail server's push hook: HTTP Basic with the password `POSTDESK_PUSH_SECRET`",
                ))
                .build(),
        ),
    );
    for route in super::route_list() {
        let Some(item) = document.paths.paths.get_mut(&route.path) else {
            continue;
        };
        if let Some(operation) = operation(item, &route.method) {
            describe_route(operation, &route);
        }
    }
    answers_have_every_field(document)
}

/// An answer has every field of its type, `null` for none: the fields that may be `null` are
/// required in the schemas only answers use (a form's may be left out). The few fields an
/// answer leaves out when empty are `#[schema(nullable = false)]`: never `null`, and not
/// required.
fn answers_have_every_field(document: OpenApi) -> Value {
    let mut json = serde_json::to_value(&document).expect("an OpenAPI document serialises");
    let inputs = schemas_of_inputs(&json);
    if let Some(schemas) = json
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        for (name, schema) in schemas {
            if !inputs.contains(name) {
                require_nullable_fields(schema);
            }
        }
    }
    json
}

/// Every schema a request body or a parameter names, and those they name.
fn schemas_of_inputs(document: &Value) -> BTreeSet<String> {
    let mut todo = BTreeSet::new();
    for item in document["paths"]
        .as_object()
        .into_iter()
        .flat_map(|p| p.values())
    {
        for operation in item.as_object().into_iter().flat_map(|o| o.values()) {
            refs(&operation["requestBody"], &mut todo);
            refs(&operation["parameters"], &mut todo);
        }
    }
    let mut inputs = BTreeSet::new();
    while let Some(name) = todo.pop_first() {
        if inputs.insert(name.clone()) {
            refs(&document["components"]["schemas"][&name], &mut todo);
        }
    }
    inputs
}

/// The names of the schemas `value` refers to.
fn refs(value: &Value, found: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                match (key.as_str(), inner.as_str()) {
                    ("$ref", Some(target)) => {
                        if let Some(name) = target.strip_prefix("#/components/schemas/") {
                            found.insert(name.to_owned());
                        }
                    }
                    _ => refs(inner, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| refs(i, found)),
        _ => {}
    }
}

/// Makes the fields of `schema` (and of the objects it joins) that may be `null` required.
fn require_nullable_fields(schema: &mut Value) {
    if let Some(parts) = schema.get_mut("allOf").and_then(Value::as_array_mut) {
        parts.iter_mut().for_each(require_nullable_fields);
    }
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    let nullable: Vec<Value> = properties
        .iter()
        .filter(|(_, property)| may_be_null(property))
        .map(|(name, _)| Value::String(name.clone()))
        .collect();
    let required = schema
        .as_object_mut()
        .map(|object| {
            object
                .entry("required")
                .or_insert_with(|| Value::Array(Vec::new()))
        })
        .and_then(Value::as_array_mut);
    if let Some(required) = required {
        for name in nullable {
            if !required.contains(&name) {
                required.push(name);
            }
        }
    }
}

/// Whether a property's schema lets it be `null`.
fn may_be_null(property: &Value) -> bool {
    let null_type =
        |t: &Value| t == "null" || t.as_array().is_some_and(|a| a.iter().any(|t| t == "null"));
    property.get("type").is_some_and(null_type)
        || property
            .get("oneOf")
            .and_then(Value::as_array)
            .is_some_and(|options| options.iter().any(may_be_null))
}

/// The security scheme of a bearer token.
const BEARER: &str = "bearer";
/// The security scheme of the session cookie.
const COOKIE: &str = "session_cookie";

/// The operations of a path, by method.
fn operations(item: &mut PathItem) -> impl Iterator<Item = (Method, &mut Operation)> {
    [
        (Method::GET, item.get.as_mut()),
        (Method::PUT, item.put.as_mut()),
        (Method::POST, item.post.as_mut()),
        (Method::DELETE, item.delete.as_mut()),
        (Method::PATCH, item.patch.as_mut()),
    ]
    .into_iter()
    .filter_map(|(method, operation)| operation.map(|o| (method, o)))
}

/// The operation of `method`, when the path has one.
pub(crate) fn operation<'i>(item: &'i mut PathItem, method: &Method) -> Option<&'i mut Operation> {
    operations(item)
        .find(|(m, _)| m == method)
        .map(|(_, operation)| operation)
}

/// Sets what the route's rule decides: its id, its security, and the answers the policy and
/// the extractors give before the handler's own.
fn describe_route(operation: &mut Operation, route: &RouteInfo) {
    operation.operation_id = Some(operation_id(route));
    if route.rule != Rule::Public {
        operation.security = Some(vec![
            SecurityRequirement::new(BEARER, Vec::<String>::new()),
            SecurityRequirement::new(COOKIE, Vec::<String>::new()),
        ]);
        answer(
            operation,
            401,
            "Not signed in: no valid bearer token or session cookie",
        );
        answer(
            operation,
            403,
            "Not allowed: the access policy's refusal in words, a missing CSRF token with the \
             session cookie, or two-factor sign-in to set up first (`totp_enrolment_required`)",
        );
    }
    if let Rule::Conversation(action) = route.rule {
        answer(
            operation,
            404,
            "No such conversation (or message, or attachment)",
        );
        if action != Action::Read {
            answer(
                operation,
                409,
                "The conversation's state refuses it: closed, or still queued (Take it! first)",
            );
        }
    }
    let has_parameters = operation.parameters.as_ref().is_some_and(|p| !p.is_empty());
    let json_body = operation.request_body.as_ref().is_some_and(
        |body| matches!(body, RefOr::T(body) if body.content.contains_key("application/json")),
    );
    if json_body {
        answer(
            operation,
            413,
            "The body is larger than the call takes (512 KiB)",
        );
    }
    if has_parameters || json_body {
        answer(
            operation,
            400,
            "A parameter or the body cannot be read: not a number, bad JSON, an unknown field",
        );
    }
}

/// `get_conversations_id_messages` for `GET /api/v1/conversations/{id}/messages`;
/// `get_web_login` for the login page `GET /login` (outside the API).
fn operation_id(route: &RouteInfo) -> String {
    let (path, outside) = match route.path.strip_prefix("/api/v1") {
        Some(path) => (path, None),
        None => (route.path.as_str(), Some("web")),
    };
    let words: Vec<String> = outside
        .into_iter()
        .chain(path.split(|c: char| !c.is_ascii_alphanumeric()))
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    let method = route.method.as_str().to_ascii_lowercase();
    if words.is_empty() {
        method
    } else {
        format!("{method}_{}", words.join("_"))
    }
}

/// Adds the error answer `status` unless the handler describes it already.
fn answer(operation: &mut Operation, status: u16, description: &str) {
    operation
        .responses
        .responses
        .entry(status.to_string())
        .or_insert_with(|| {
            RefOr::T(
                ResponseBuilder::new()
                    .description(description)
                    .content(
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name("Error")))
                            .build(),
                    )
                    .build(),
            )
        });
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::Schema;

    /// The document keeps one schema per name (the first file's): two types of one name in two
    /// files would describe one of them wrongly.
    #[test]
    fn every_schema_name_stands_for_one_schema() {
        let mut seen: BTreeMap<String, (&str, RefOr<Schema>)> = BTreeMap::new();
        for (_, tag, part) in super::parts() {
            for (name, schema) in part.components.into_iter().flat_map(|c| c.schemas) {
                match seen.get(&name) {
                    Some((first, other)) => assert!(
                        *other == schema,
                        "{name} is two different schemas, in {first} and in {tag}: rename one \
                         with #[schema(as = …)]"
                    ),
                    None => {
                        seen.insert(name, (tag, schema));
                    }
                }
            }
        }
        assert!(seen.contains_key("Conversation"));
    }
}
