//! Departments: create (admins), change — name, agents, routing, per-agent limit — (admins,
//! and managers of that department). An inbox of a department offers its conversations to its
//! members only. An agent who leaves a department (removed, or left out of `agent_ids`) has
//! their conversations of it returned to its queue, and routing runs whenever a department's
//! routing or agents change.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use postdesk_core::access::Rule;
use postdesk_core::ids::{DepartmentId, UserId};
use postdesk_core::model::Routing;
use postdesk_store::{Department, DepartmentSettings};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::error::{ApiJson, ErrorBody, Path};
use super::limits::Client;
use super::policy::Route;
use super::{ApiError, AppState, AuthUser};

pub(super) fn routes() -> Vec<Route> {
    vec![
        Route::get("/departments", Rule::SignedIn, list),
        Route::post("/departments", Rule::Admin, create),
        Route::put("/departments/{id}", Rule::Staff, update),
        Route::patch("/departments/{id}", Rule::Staff, rename),
        Route::put(
            "/departments/{id}/members/{user_id}",
            Rule::Staff,
            add_member,
        ),
        Route::delete(
            "/departments/{id}/members/{user_id}",
            Rule::Staff,
            remove_member,
        ),
    ]
}

/// This file's routes in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(list, create, update, rename, add_member, remove_member))]
pub(super) struct Api;

/// A department as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Department)]
struct DepartmentOut {
    id: DepartmentId,
    name: String,
    /// Its agents (and managers), by id.
    agent_ids: Vec<UserId>,
    /// The same ids as `agent_ids`.
    members: Vec<UserId>,
    routing: Routing,
    /// The most `open` conversations routing gives an agent; null: no limit.
    max_chats_per_agent: Option<i64>,
}

impl From<&Department> for DepartmentOut {
    fn from(d: &Department) -> Self {
        Self {
            id: d.id,
            name: d.name.clone(),
            agent_ids: d.members.clone(),
            members: d.members.clone(),
            routing: d.routing,
            max_chats_per_agent: d.max_chats_per_agent,
        }
    }
}

/// `POST /departments`: only the name is required (no agents, `manual` routing, no limit).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewDepartmentForm {
    /// One line of 1 to 100 characters.
    #[schema(min_length = 1, max_length = 100)]
    name: String,
    /// Its agents: active users.
    #[serde(default)]
    agent_ids: Vec<i64>,
    /// Default `manual`; another word is 422.
    #[schema(value_type = Option<Routing>)]
    routing: Option<String>,
    /// At least 1; left out or null: no limit.
    #[schema(minimum = 1)]
    max_chats_per_agent: Option<i64>,
}

/// `PUT /departments/{id}`: the whole department (`max_chats_per_agent` left out: no limit).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct DepartmentSettingsForm {
    /// One line of 1 to 100 characters.
    #[schema(min_length = 1, max_length = 100)]
    name: String,
    /// Its agents, replacing the current ones: active users.
    agent_ids: Vec<i64>,
    /// Another word is 422.
    #[schema(value_type = Routing)]
    routing: String,
    /// At least 1; left out or null: no limit.
    #[schema(minimum = 1)]
    max_chats_per_agent: Option<i64>,
}

/// Checks a department's settings: a known routing word, a limit of at least 1, agents that
/// exist and are active.
async fn settings_of(
    state: &AppState,
    name: &str,
    agent_ids: &[i64],
    routing: &str,
    max_chats_per_agent: Option<i64>,
) -> Result<DepartmentSettings, ApiError> {
    let name = valid_name(name)?.to_owned();
    let routing = Routing::parse(routing).map_err(|_| {
        ApiError::Unprocessable(format!(
            "Unknown routing {routing:?}: use manual, round_robin or load_balancing"
        ))
    })?;
    if let Some(max) = max_chats_per_agent
        && max < 1
    {
        return Err(ApiError::Unprocessable(format!(
            "max_chats_per_agent must be at least 1 (or left out for no limit), not {max}"
        )));
    }
    let mut agents = Vec::with_capacity(agent_ids.len());
    for id in agent_ids {
        let user = state
            .store
            .find_user(UserId(*id))
            .await?
            .ok_or_else(|| ApiError::Unprocessable(format!("There is no user with id {id}")))?;
        if !user.active {
            return Err(ApiError::Unprocessable(format!(
                "@{} is deactivated: activate them before adding them to a department",
                user.username
            )));
        }
        if !agents.contains(&user.id) {
            agents.push(user.id);
        }
    }
    Ok(DepartmentSettings {
        name,
        agents,
        routing,
        max_chats_per_agent,
    })
}

/// Stores `settings`, puts back in the queue what the agents who left had, routes the
/// department and records it in the audit log.
async fn apply(
    state: &AppState,
    auth: &AuthUser,
    client: &Client,
    department: &Department,
    settings: &DepartmentSettings,
) -> Result<Department, ApiError> {
    let returned = state
        .store
        .update_department(department.id, settings)
        .await?;
    state.routing.returned(&state.bus, &returned);
    state.routing.nudge(department.id);
    let target = format!("department:{}", department.id);
    super::audit::record(
        state,
        auth,
        client,
        "department.update",
        &target,
        json!({
            "name": settings.name,
            "agent_ids": settings.agents,
            "routing": settings.routing,
            "max_chats_per_agent": settings.max_chats_per_agent,
            "returned_to_queue": returned.len(),
        }),
    )
    .await;
    state
        .store
        .find_department(department.id)
        .await?
        .ok_or_else(|| ApiError::NotFound("department not found".into()))
}

/// A department's new name.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct DepartmentForm {
    /// One line of 1 to 100 characters.
    #[schema(min_length = 1, max_length = 100)]
    name: String,
}

fn name_of(form: &DepartmentForm) -> Result<&str, ApiError> {
    valid_name(&form.name)
}

fn valid_name(name: &str) -> Result<&str, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.contains(['\r', '\n']) {
        return Err(ApiError::Unprocessable(
            "A department's name is one line of 1 to 100 characters".into(),
        ));
    }
    Ok(name)
}

/// A department the caller may change: admins any, managers their own.
async fn managed(state: &AppState, auth: &AuthUser, id: i64) -> Result<Department, ApiError> {
    let department = state
        .store
        .find_department(DepartmentId(id))
        .await?
        .ok_or_else(|| ApiError::NotFound("department not found".into()))?;
    if !auth.actor().supervises(Some(department.id)) {
        return Err(ApiError::Forbidden(
            "Only an admin or a manager of this department can change it".into(),
        ));
    }
    Ok(department)
}

/// The departments.
#[derive(Debug, Serialize, ToSchema)]
struct DepartmentList {
    departments: Vec<DepartmentOut>,
}

/// Every department (every signed-in user may list them).
#[utoipa::path(get, path = "/departments", responses((status = 200, description = "The departments", body = DepartmentList)))]
async fn list(State(state): State<AppState>) -> Result<Json<DepartmentList>, ApiError> {
    let departments = state
        .store
        .list_departments()
        .await?
        .iter()
        .map(DepartmentOut::from)
        .collect();
    Ok(Json(DepartmentList { departments }))
}

/// Creates a department.
#[utoipa::path(post, path = "/departments", request_body = NewDepartmentForm,
    responses(
        (status = 201, description = "The department", body = DepartmentOut),
        (status = 409, description = "The name is taken", body = ErrorBody),
        (status = 422, description = "A bad name, an unknown routing word, a limit below 1, an unknown or deactivated user", body = ErrorBody),
    ))]
async fn create(
    State(state): State<AppState>,
    auth: AuthUser,
    client: Client,
    ApiJson(form): ApiJson<NewDepartmentForm>,
) -> Result<(StatusCode, Json<DepartmentOut>), ApiError> {
    let settings = settings_of(
        &state,
        &form.name,
        &form.agent_ids,
        form.routing.as_deref().unwrap_or(Routing::Manual.as_str()),
        form.max_chats_per_agent,
    )
    .await?;
    let mut department = state.store.create_department(&settings.name).await?;
    let target = format!("department:{}", department.id);
    super::audit::record(
        &state,
        &auth,
        &client,
        "department.create",
        &target,
        json!({ "name": department.name }),
    )
    .await;
    if settings.agents.is_empty()
        && settings.routing == Routing::Manual
        && settings.max_chats_per_agent.is_none()
    {
        return Ok((StatusCode::CREATED, Json(DepartmentOut::from(&department))));
    }
    department = apply(&state, &auth, &client, &department, &settings).await?;
    Ok((StatusCode::CREATED, Json(DepartmentOut::from(&department))))
}

/// Sets a department's name, agents, routing and limit.
#[utoipa::path(put, path = "/departments/{id}", params(("id" = i64, Path, description = "The department")), request_body = DepartmentSettingsForm,
    responses(
        (status = 200, description = "The department", body = DepartmentOut),
        (status = 403, description = "A manager of another department", body = ErrorBody),
        (status = 404, description = "No such department", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
        (status = 422, description = "A bad name, an unknown routing word, a limit below 1, an unknown or deactivated user", body = ErrorBody),
    ))]
async fn update(
    State(state): State<AppState>,
    auth: AuthUser,
    client: Client,
    Path(id): Path<i64>,
    ApiJson(form): ApiJson<DepartmentSettingsForm>,
) -> Result<Json<DepartmentOut>, ApiError> {
    let department = managed(&state, &auth, id).await?;
    let settings = settings_of(
        &state,
        &form.name,
        &form.agent_ids,
        &form.routing,
        form.max_chats_per_agent,
    )
    .await?;
    let department = apply(&state, &auth, &client, &department, &settings).await?;
    Ok(Json(DepartmentOut::from(&department)))
}

/// Renames a department.
#[utoipa::path(patch, path = "/departments/{id}", params(("id" = i64, Path, description = "The department")), request_body = DepartmentForm,
    responses(
        (status = 200, description = "The department", body = DepartmentOut),
        (status = 403, description = "A manager of another department", body = ErrorBody),
        (status = 404, description = "No such department", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
        (status = 422, description = "A bad name", body = ErrorBody),
    ))]
async fn rename(
    State(state): State<AppState>,
    auth: AuthUser,
    client: Client,
    Path(id): Path<i64>,
    ApiJson(form): ApiJson<DepartmentForm>,
) -> Result<Json<DepartmentOut>, ApiError> {
    let department = managed(&state, &auth, id).await?;
    let name = name_of(&form)?;
    state.store.rename_department(department.id, name).await?;
    let target = format!("department:{}", department.id);
    super::audit::record(
        &state,
        &auth,
        &client,
        "department.rename",
        &target,
        json!({ "from": department.name, "to": name }),
    )
    .await;
    let department = managed(&state, &auth, id).await?;
    Ok(Json(DepartmentOut::from(&department)))
}

async fn change_member(
    state: &AppState,
    auth: &AuthUser,
    client: &Client,
    (id, user_id): (i64, i64),
    add: bool,
) -> Result<Json<DepartmentOut>, ApiError> {
    let department = managed(state, auth, id).await?;
    let user = state
        .store
        .find_user(UserId(user_id))
        .await?
        .ok_or_else(|| ApiError::NotFound("user not found".into()))?;
    let changed = if add {
        state
            .store
            .add_department_member(department.id, user.id)
            .await?
    } else {
        let left = state.store.leave_department(department.id, user.id).await?;
        if let Some(returned) = &left {
            state.routing.returned(&state.bus, returned);
        }
        left.is_some()
    };
    if changed {
        state.routing.nudge(department.id);
    }
    if changed {
        let action = if add {
            "department.member_add"
        } else {
            "department.member_remove"
        };
        let target = format!("department:{}", department.id);
        super::audit::record(
            state,
            auth,
            client,
            action,
            &target,
            json!({ "user_id": user.id, "username": user.username }),
        )
        .await;
    }
    let department = managed(state, auth, id).await?;
    Ok(Json(DepartmentOut::from(&department)))
}

/// Adds a user to a department.
#[utoipa::path(put, path = "/departments/{id}/members/{user_id}",
    params(("id" = i64, Path, description = "The department"), ("user_id" = i64, Path, description = "The user")),
    responses(
        (status = 200, description = "The department, the user in it", body = DepartmentOut),
        (status = 403, description = "A manager of another department", body = ErrorBody),
        (status = 404, description = "No such department or user", body = ErrorBody),
    ))]
async fn add_member(
    State(state): State<AppState>,
    auth: AuthUser,
    client: Client,
    Path(ids): Path<(i64, i64)>,
) -> Result<Json<DepartmentOut>, ApiError> {
    change_member(&state, &auth, &client, ids, true).await
}

/// Takes a user out of a department; their conversations of it return to its queue.
#[utoipa::path(delete, path = "/departments/{id}/members/{user_id}",
    params(("id" = i64, Path, description = "The department"), ("user_id" = i64, Path, description = "The user")),
    responses(
        (status = 200, description = "The department, the user out of it", body = DepartmentOut),
        (status = 403, description = "A manager of another department", body = ErrorBody),
        (status = 404, description = "No such department or user", body = ErrorBody),
    ))]
async fn remove_member(
    State(state): State<AppState>,
    auth: AuthUser,
    client: Client,
    Path(ids): Path<(i64, i64)>,
) -> Result<Json<DepartmentOut>, ApiError> {
    change_member(&state, &auth, &client, ids, false).await
}
