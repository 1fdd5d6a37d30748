//! The OpenAPI document, generated from the handlers' annotations.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{
    agents, audit, calendar, catalog, demo, documents, efficiency, exports, findings, health, ingest, jobs,
    notifications, platforms, requests, resources, session, systems, units, users, warnings,
};

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Operation ids as `<tag>_<handler>` (`units_create`, `documents_upload`):
/// handler names alone repeat across modules, and client generators need
/// unique ids.
struct OperationIds;

impl Modify for OperationIds {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let ops = [&mut item.get, &mut item.post, &mut item.put, &mut item.patch, &mut item.delete];
            for op in ops.into_iter().flatten() {
                let tag = op.tags.as_ref().and_then(|t| t.first()).cloned().unwrap_or_default();
                if let Some(id) = &op.operation_id
                    && !id.starts_with(&format!("{tag}_"))
                {
                    op.operation_id = Some(format!("{tag}_{id}"));
                }
            }
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Yunzhi (云治) API",
        description = "The district e-government cloud management platform. Errors are application/problem+json \
                       with a stable `code`, the `field` at fault and the `article` of the regulation where one applies."
    ),
    paths(
        health::healthz, health::metrics,
        session::login, session::logout, session::whoami, session::change_password, session::new_totp_secret, session::enrol_totp,
        calendar::add, calendar::count, calendar::years, calendar::year, calendar::put_year,
        units::list, units::get_one, units::create, units::update,
        systems::list, systems::get_one, systems::create, systems::update,
        catalog::list, catalog::get_one, catalog::create, catalog::update,
        platforms::list, platforms::get_one, platforms::create, platforms::update, platforms::reconcile,
        requests::create, requests::list, requests::overdue, requests::get_one, requests::decide, requests::resubmit, requests::withdraw,
        jobs::list, jobs::get_one, jobs::retry, jobs::cancel,
        resources::list, resources::get_one, resources::act, notifications::list, notifications::read,
        findings::list, findings::get_one, findings::analyse, warnings::review,
        warnings::list, warnings::get_one, warnings::respond, warnings::decide,
        agents::enrollment_code, agents::enroll, agents::report, agents::agent_of, agents::metrics, agents::readings, efficiency::rules, efficiency::set_rules, efficiency::source, efficiency::set_source,
        ingest::write, ingest::create_token, ingest::list_tokens, ingest::revoke_token,
        users::list, users::create, users::reset_password, users::unlock,
        documents::upload, documents::list, documents::download, documents::upload_to_request, documents::list_for_request,
        exports::systems, exports::units,
        audit::list, audit::verify,
        demo::set_clock,
    ),
    components(schemas(crate::error::Problem)),
    modifiers(&BearerAuth, &OperationIds),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// The document as pretty JSON, for `yunzhi openapi` and client generators.
pub fn document_json() -> serde_json::Result<String> {
    serde_json::to_string_pretty(&ApiDoc::openapi())
}
