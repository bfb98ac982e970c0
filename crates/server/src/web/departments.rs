//! Departments: create (admins), rename and change members (admins, and managers of that
//! department). An inbox of a department offers its conversations to its members only.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use postdesk_core::access::Rule;
use postdesk_core::ids::{DepartmentId, UserId};
use postdesk_store::Department;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::ApiJson;
use super::limits::Client;
use super::policy::Route;
use super::{ApiError, AppState, AuthUser};

pub(super) fn routes() -> Vec<Route> {
    vec![
        Route::get("/departments", Rule::SignedIn, list),
        Route::post("/departments", Rule::Admin, create),
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

fn department_json(d: &Department) -> Value {
    json!({ "id": d.id, "name": d.name, "members": d.members })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DepartmentForm {
    name: String,
}

fn name_of(form: &DepartmentForm) -> Result<&str, ApiError> {
    let name = form.name.trim();
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

async fn list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let departments: Vec<Value> = state
        .store
        .list_departments()
        .await?
        .iter()
        .map(department_json)
        .collect();
    Ok(Json(json!({ "departments": departments })))
}

async fn create(
    State(state): State<AppState>,
    auth: AuthUser,
    client: Client,
    ApiJson(form): ApiJson<DepartmentForm>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let department = state.store.create_department(name_of(&form)?).await?;
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
    Ok((StatusCode::CREATED, Json(department_json(&department))))
}

async fn rename(
    State(state): State<AppState>,
    auth: AuthUser,
    client: Client,
    Path(id): Path<i64>,
    ApiJson(form): ApiJson<DepartmentForm>,
) -> Result<Json<Value>, ApiError> {
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
    Ok(Json(department_json(&department)))
}

async fn change_member(
    state: &AppState,
    auth: &AuthUser,
    client: &Client,
    (id, user_id): (i64, i64),
    add: bool,
) -> Result<Json<Value>, ApiError> {
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
        state
            .store
            .remove_department_member(department.id, user.id)
            .await?
    };
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
    Ok(Json(department_json(&department)))
}

async fn add_member(
    State(state): State<AppState>,
    auth: AuthUser,
    client: Client,
    Path(ids): Path<(i64, i64)>,
) -> Result<Json<Value>, ApiError> {
    change_member(&state, &auth, &client, ids, true).await
}

async fn remove_member(
    State(state): State<AppState>,
    auth: AuthUser,
    client: Client,
    Path(ids): Path<(i64, i64)>,
) -> Result<Json<Value>, ApiError> {
    change_member(&state, &auth, &client, ids, false).await
}
