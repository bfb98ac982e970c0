//! API errors: one enum, one JSON shape `{"error": "..."}`, the right status code. Internal
//! causes are logged with their chain and answered with a generic message.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use postdesk_store::StoreError;
use serde::Serialize;

use super::conversations::MessageOut;

/// An error answered to an API client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// 401: no valid login.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: logged in, but not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 409: the state changed under the caller (already taken, already exists).
    #[error("{0}")]
    Conflict(String),
    /// 409 of the send-time collision check: `new_messages` are the emails the sender had not
    /// seen.
    #[error("{message}")]
    NewerMessages {
        /// What happened and what to do.
        message: String,
        /// The messages, as the API shows them.
        new_messages: Vec<MessageOut>,
    },
    /// 422: well-formed but not acceptable.
    #[error("{0}")]
    Unprocessable(String),
    /// 413: the request body is larger than the route takes.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 429: too many attempts or connections; `retry_after` in seconds, when known.
    #[error("{message}")]
    TooManyRequests {
        /// What to do.
        message: String,
        /// When trying again can work (seconds), sent as `Retry-After` and `retry_after`.
        retry_after: Option<u64>,
    },
    /// 401 after a right password: the second factor is due (`totp_required: true`).
    #[error("{0}")]
    TwoFactorRequired(String),
    /// 403: two-factor sign-in must be set up before anything else (`totp_enrolment_required`).
    #[error("{0}")]
    EnrolmentRequired(String),
    /// 500: our fault; the cause is logged, not shown.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) | ApiError::NewerMessages { .. } => StatusCode::CONFLICT,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::TwoFactorRequired(_) => StatusCode::UNAUTHORIZED,
            ApiError::EnrolmentRequired(_) => StatusCode::FORBIDDEN,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ApiError::NotFound(format!("{what} not found")),
            StoreError::Conflict(message) => ApiError::Conflict(message),
            other => ApiError::Internal(other.into()),
        }
    }
}

/// Every error answer: `error` in words, and the extra fields of some.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    /// What is wrong, in words a person can act on.
    error: String,
    /// 429: when trying again can work (seconds; also the `Retry-After` header).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    retry_after: Option<u64>,
    /// 401 after a right password: send the second factor (`totp`) too.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    totp_required: Option<bool>,
    /// 403: two-factor sign-in must be set up before anything else (`POST /me/totp`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    totp_enrolment_required: Option<bool>,
    /// 409 of Reply via Email's collision check: the emails the sender had not seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    new_messages: Option<Vec<MessageOut>>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            ApiError::Internal(cause) => {
                tracing::error!("Internal error: {cause:#}");
                "Internal server error; the cause is in the server log".to_owned()
            }
            other => other.to_string(),
        };
        let mut body = ErrorBody {
            error: message,
            retry_after: None,
            totp_required: None,
            totp_enrolment_required: None,
            new_messages: None,
        };
        match self {
            ApiError::TooManyRequests {
                retry_after: Some(seconds),
                ..
            } => {
                body.retry_after = Some(seconds);
                return (
                    status,
                    [(axum::http::header::RETRY_AFTER, seconds.to_string())],
                    Json(body),
                )
                    .into_response();
            }
            ApiError::TwoFactorRequired(_) => body.totp_required = Some(true),
            ApiError::EnrolmentRequired(_) => body.totp_enrolment_required = Some(true),
            ApiError::NewerMessages { new_messages, .. } => body.new_messages = Some(new_messages),
            _ => {}
        }
        (status, Json(body)).into_response()
    }
}

/// A JSON body whose rejection (bad syntax, wrong fields, wrong content type) is a 400 with
/// the parser's message in our error shape.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T, S> axum::extract::FromRequest<S> for ApiJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(ApiJson(value)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(too_large())
            }
            Err(rejection) => Err(ApiError::BadRequest(rejection.body_text())),
        }
    }
}

/// Path parameters whose rejection (an id that is not a number) is a 400 in our error shape,
/// not axum's plain text.
#[derive(Debug, Clone, Copy, Default)]
pub struct Path<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for Path<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(rejection) => Err(rejected(rejection.status(), rejection.body_text())),
        }
    }
}

/// A query string whose rejection (a field given twice, a number that is not one, an unknown
/// field where the route refuses them) is a 400 in our error shape, not axum's plain text.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for Query<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Query(value)),
            Err(rejection) => Err(rejected(rejection.status(), rejection.body_text())),
        }
    }
}

/// An extractor's refusal in our error shape: its words for a 4xx, a logged cause for a 5xx
/// (a route declared without the parameters its handler reads).
fn rejected(status: StatusCode, words: String) -> ApiError {
    if status.is_server_error() {
        ApiError::Internal(anyhow::anyhow!(words))
    } else {
        ApiError::BadRequest(words)
    }
}

/// The answer to a body over the route's limit.
pub fn too_large() -> ApiError {
    ApiError::PayloadTooLarge(format!(
        "The request is too large: this call takes at most {} KiB (files go through the upload)",
        super::MAX_JSON_BYTES / 1024
    ))
}
