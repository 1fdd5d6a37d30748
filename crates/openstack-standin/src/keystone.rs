//! Keystone v3: `POST /v3/auth/tokens` with the password or
//! application_credential method, answering 201 with `X-Subject-Token` and a
//! token carrying `expires_at` and the service catalog.

use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::Response;
use jiff::{Timestamp, ToSpan, Unit};
use serde_json::{Value, json};

use crate::state::{
    APP_CREDENTIAL_ID, APP_CREDENTIAL_SECRET, Cloud, INTERFACES, PASSWORD, PROJECT_ID, PROJECT_NAME, REGIONS,
    Token, USER_ID, USERNAME,
};
use crate::{Req, fault, reply};

fn unauthorized(message: &str) -> Response {
    reply(
        StatusCode::UNAUTHORIZED,
        json!({"error": {"code": 401, "title": "Unauthorized", "message": message}}),
    )
}

/// Keystone's timestamps: RFC 3339 in UTC, to the microsecond.
pub(crate) fn stamp(t: Timestamp) -> String {
    t.round(Unit::Microsecond).map_or_else(|_| t.to_string(), |t| t.to_string())
}

fn is_default_domain(domain: &Value) -> bool {
    domain["name"] == "Default" || domain["id"] == "default"
}

pub(crate) fn handle(cloud: &mut Cloud, req: &Req<'_>, base: &str) -> Response {
    if req.method != Method::POST || req.segs != ["auth", "tokens"] {
        return fault(StatusCode::NOT_FOUND, "itemNotFound", "the stand-in's Keystone only issues tokens");
    }
    let Some(auth) = req.body.as_ref().map(|b| &b["auth"]) else {
        return fault(StatusCode::BAD_REQUEST, "badRequest", "auth is a required property");
    };
    let identity = &auth["identity"];
    let methods: Vec<&str> = identity["methods"]
        .as_array()
        .map(|m| m.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let method = match methods.as_slice() {
        ["password"] => {
            let user = &identity["password"]["user"];
            if user["name"] != USERNAME || user["password"] != PASSWORD || !is_default_domain(&user["domain"])
            {
                return unauthorized("The request you have made requires authentication.");
            }
            let project = &auth["scope"]["project"];
            let by_name = project["name"] == PROJECT_NAME && is_default_domain(&project["domain"]);
            if !(by_name || project["id"] == PROJECT_ID) {
                return unauthorized("User has no access to the project asked for.");
            }
            "password"
        }
        ["application_credential"] => {
            let cred = &identity["application_credential"];
            if cred["id"] != APP_CREDENTIAL_ID || cred["secret"] != APP_CREDENTIAL_SECRET {
                return unauthorized("The request you have made requires authentication.");
            }
            // An application credential is bound to its project already.
            if !auth["scope"].is_null() {
                return unauthorized("Application credentials cannot request a scope.");
            }
            "application_credential"
        }
        _ => return fault(StatusCode::BAD_REQUEST, "badRequest", "unsupported authentication methods"),
    };
    let issued = Timestamp::now();
    let expires = issued.checked_add(cloud.token_lifetime_secs.seconds()).unwrap_or(issued);
    let id = format!("gAAAAAstandin{:06}", cloud.tokens.len() + 1);
    cloud.tokens.push(Token { id: id.clone(), expires_at: expires, revoked: false });

    let domain = json!({"id": "default", "name": "Default"});
    let mut token = json!({
        "methods": [method],
        "user": {"domain": domain, "id": USER_ID, "name": USERNAME, "password_expires_at": null},
        "audit_ids": [format!("audit{:06}", cloud.tokens.len())],
        "issued_at": stamp(issued),
        "expires_at": stamp(expires),
        "project": {"domain": domain, "id": PROJECT_ID, "name": PROJECT_NAME},
        "is_domain": false,
        "roles": [{"id": "9fe2ff9ee4384b1894a90878d3e92bab", "name": "member"},
                  {"id": "1b2c3d4e5f6a4b7c8d9e0f1a2b3c4d5e", "name": "reader"}],
        "catalog": catalog(cloud, base),
    });
    if method == "application_credential" {
        token["application_credential"] =
            json!({"id": APP_CREDENTIAL_ID, "name": "yunzhi", "restricted": true});
    }
    let mut response = reply(StatusCode::CREATED, json!({ "token": token }));
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-subject-token", v);
    }
    response
}

/// Every service in every region at every interface, each at its own path.
fn catalog(cloud: &Cloud, base: &str) -> Value {
    let services = [
        ("identity", "keystone", "/identity/v3".to_owned()),
        ("compute", "nova", "compute/v2.1".to_owned()),
        ("volumev3", "cinderv3", format!("volume/v3/{PROJECT_ID}")),
        ("placement", "placement", "placement".to_owned()),
    ];
    let entries: Vec<Value> = services
        .iter()
        .enumerate()
        .filter(|(_, (kind, _, _))| !cloud.hidden_services.iter().any(|h| h == kind))
        .map(|(n, (kind, name, path))| {
            let mut endpoints = Vec::new();
            for region in REGIONS {
                for interface in INTERFACES {
                    let url = if path.starts_with('/') {
                        format!("{base}{path}")
                    } else {
                        format!("{base}/{region}/{interface}/{path}")
                    };
                    endpoints.push(json!({
                        "id": format!("ep-{kind}-{region}-{interface}"),
                        "interface": interface,
                        "region": region,
                        "region_id": region,
                        "url": url,
                    }));
                }
            }
            json!({"endpoints": endpoints, "id": format!("svc{n:02}"), "type": kind, "name": name})
        })
        .collect();
    Value::Array(entries)
}
