//! The JSON API under `/api/v1`, plus `/healthz` and `/metrics`.
//!
//! Handlers parse input into domain values, prove the caller's permission
//! by obtaining a capability handle from the domain (`Actor::reader()`,
//! `Actor::unit_registrar()`, …), and call the store with it. They never
//! hold SQL and never call a cloud platform.

pub mod agents;
pub mod audit;
pub mod calendar;
pub mod catalog;
pub mod demo;
pub mod documents;
pub mod efficiency;
pub mod exports;
pub mod findings;
pub mod health;
pub mod ingest;
pub mod jobs;
pub mod notifications;
pub mod openapi;
pub mod platforms;
pub mod requests;
pub mod resources;
pub mod session;
pub mod systems;
pub mod units;
pub mod users;
pub mod warnings;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use axum::routing::{get, post};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use yunzhi_domain::document::MAX_DOCUMENT_BYTES;
use yunzhi_store::PageRequest;

use crate::error::ApiError;
use crate::state::AppState;

pub fn router(demo: bool) -> Router<AppState> {
    let api = Router::new()
        .route("/openapi.json", get(openapi::document))
        .route("/calendar/working-days/add", get(calendar::add))
        .route("/calendar/working-days/count", get(calendar::count))
        .route("/calendar/years", get(calendar::years))
        .route("/calendar/years/{year}", get(calendar::year).put(calendar::put_year))
        .route("/session", post(session::login).delete(session::logout).get(session::whoami))
        .route("/session/password", post(session::change_password))
        .route("/session/totp/secret", post(session::new_totp_secret))
        .route("/session/totp", axum::routing::put(session::enrol_totp))
        .route("/units", get(units::list).post(units::create))
        .route("/units/{id}", get(units::get_one).patch(units::update))
        .route("/systems", get(systems::list).post(systems::create))
        .route("/systems/{id}", get(systems::get_one).patch(systems::update))
        .route(
            "/systems/{id}/documents",
            get(documents::list)
                .post(documents::upload)
                .layer(DefaultBodyLimit::max(MAX_DOCUMENT_BYTES + 1024)),
        )
        .route("/documents/{id}", get(documents::download))
        .route("/catalog", get(catalog::list).post(catalog::create))
        .route("/catalog/{id}", get(catalog::get_one).patch(catalog::update))
        .route("/platforms", get(platforms::list).post(platforms::create))
        .route("/platforms/{id}", get(platforms::get_one).patch(platforms::update))
        .route("/platforms/{id}/reconcile", post(platforms::reconcile))
        .route("/requests", get(requests::list).post(requests::create))
        .route("/requests/overdue", get(requests::overdue))
        .route("/requests/{id}", get(requests::get_one).patch(requests::resubmit))
        .route("/requests/{id}/decisions", post(requests::decide))
        .route("/requests/{id}/withdraw", post(requests::withdraw))
        .route(
            "/requests/{id}/documents",
            get(documents::list_for_request)
                .post(documents::upload_to_request)
                .layer(DefaultBodyLimit::max(MAX_DOCUMENT_BYTES + 1024)),
        )
        .route("/resources", get(resources::list))
        .route("/resources/{id}", get(resources::get_one))
        .route("/resources/{id}/actions", post(resources::act))
        .route("/resources/{id}/enrollment", post(agents::enrollment_code))
        .route("/resources/{id}/agent", get(agents::agent_of))
        .route("/resources/{id}/metrics", get(agents::metrics))
        .route("/resources/{id}/readings", get(agents::readings))
        .route("/agent/enroll", post(agents::enroll))
        .route("/agent/report", post(agents::report))
        .route("/write", post(ingest::write))
        .route("/ingest-tokens", get(ingest::list_tokens).post(ingest::create_token))
        .route("/efficiency/rules", get(efficiency::rules).put(efficiency::set_rules))
        .route("/efficiency/source", get(efficiency::source).put(efficiency::set_source))
        .route("/ingest-tokens/{id}", axum::routing::delete(ingest::revoke_token))
        .route("/findings", get(findings::list))
        .route("/findings/{id}", get(findings::get_one))
        .route("/findings/{id}/review", post(warnings::review))
        .route("/findings/analysis", post(findings::analyse))
        .route("/warnings", get(warnings::list))
        .route("/warnings/{id}", get(warnings::get_one))
        .route("/warnings/{id}/response", post(warnings::respond))
        .route("/warnings/{id}/decision", post(warnings::decide))
        .route("/jobs", get(jobs::list))
        .route("/jobs/{id}", get(jobs::get_one))
        .route("/jobs/{id}/retry", post(jobs::retry))
        .route("/jobs/{id}/cancel", post(jobs::cancel))
        .route("/notifications", get(notifications::list))
        .route("/notifications/{id}/read", post(notifications::read))
        .route("/users", get(users::list).post(users::create))
        .route("/users/{id}/password", post(users::reset_password))
        .route("/users/{id}/unlock", post(users::unlock))
        .route("/exports/systems.csv", get(exports::systems))
        .route("/exports/units.csv", get(exports::units))
        .route("/audit", get(audit::list))
        .route("/audit/verify", get(audit::verify));
    // Outside demo mode the clock endpoint does not exist at all (API.md).
    let api = if demo { api.route("/demo/clock", post(demo::set_clock)) } else { api };
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(health::metrics))
        .nest("/api/v1", api)
}

/// A query string that fails as a problem naming the parameter.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::try_from_uri(&parts.uri).map(|q| ApiQuery(q.0)).map_err(|e| {
            ApiError::bad_request(
                "bad_query",
                format!("the query string is not understood: {}", e.body_text()),
            )
        })
    }
}

/// `?limit=&cursor=`.
#[derive(Debug, Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// How many items, 1 to 500 (default 50).
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl PageQuery {
    pub fn page(&self) -> Result<PageRequest, ApiError> {
        Ok(PageRequest::parse(self.limit, self.cursor.as_deref())?)
    }
}

/// A path id. One that is not a number names nothing that exists: 404.
pub fn path_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>().ok().filter(|id| *id > 0).ok_or(ApiError::NotFound)
}
