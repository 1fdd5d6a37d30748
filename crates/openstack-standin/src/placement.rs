//! Placement: resource providers (one per hypervisor), their inventories of
//! VCPU, MEMORY_MB and DISK_GB, and their usages (the flavors of the servers
//! placed on them).

use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use crate::state::{Cloud, Inventory, Provider};
use crate::{Req, reply, require_microversion};

const MIN: (u32, u32) = (1, 0);
const MAX: (u32, u32) = (1, 39);

/// Placement's error body, unlike Nova's: `{"errors": [{status, title, detail}]}`.
fn error(status: StatusCode, detail: String) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    reply(status, json!({"errors": [{"status": status.as_u16(), "title": title, "detail": detail}]}))
}

pub(crate) fn handle(cloud: &Cloud, req: &Req<'_>) -> Response {
    let version = match require_microversion(req, "placement", MIN, MAX) {
        Ok(v) => v,
        Err(response) => return *response,
    };
    if req.method != Method::GET {
        return error(StatusCode::METHOD_NOT_ALLOWED, "the stand-in's Placement is read-only".into());
    }
    let find = |uuid: &str| cloud.providers.iter().find(|p| p.uuid == uuid);
    match req.segs.as_slice() {
        ["resource_providers"] => {
            let providers: Vec<Value> = cloud.providers.iter().map(|p| provider(p, version)).collect();
            reply(StatusCode::OK, json!({ "resource_providers": providers }))
        }
        ["resource_providers", uuid, "inventories"] => match find(uuid) {
            Some(p) => {
                let inv = |i: &Inventory, max_unit: u64| {
                    json!({"total": i.total, "reserved": i.reserved, "min_unit": 1, "max_unit": max_unit,
                           "step_size": 1, "allocation_ratio": i.allocation_ratio})
                };
                reply(
                    StatusCode::OK,
                    json!({"resource_provider_generation": 1, "inventories": {
                        "VCPU": inv(&p.vcpu, p.vcpu.total),
                        "MEMORY_MB": inv(&p.memory_mb, p.memory_mb.total),
                        "DISK_GB": inv(&p.disk_gb, p.disk_gb.total),
                    }}),
                )
            }
            None => not_found(uuid),
        },
        ["resource_providers", uuid, "usages"] => match find(uuid) {
            Some(p) => {
                let (vcpu, memory_mb, disk_gb) = cloud.usage(&p.uuid);
                reply(
                    StatusCode::OK,
                    json!({"resource_provider_generation": 1,
                           "usages": {"VCPU": vcpu, "MEMORY_MB": memory_mb, "DISK_GB": disk_gb}}),
                )
            }
            None => not_found(uuid),
        },
        _ => error(StatusCode::NOT_FOUND, "The resource could not be found.".into()),
    }
}

fn not_found(uuid: &str) -> Response {
    error(StatusCode::NOT_FOUND, format!("No resource provider with uuid {uuid} found"))
}

fn provider(p: &Provider, version: (u32, u32)) -> Value {
    let link = |rel: &str, suffix: &str| json!({"rel": rel, "href": format!("/placement/resource_providers/{}{suffix}", p.uuid)});
    let mut v = json!({
        "generation": 1,
        "uuid": p.uuid,
        "name": p.name,
        "links": [link("self", ""), link("inventories", "/inventories"), link("usages", "/usages")],
    });
    // Nested providers are reported from 1.14.
    if version >= (1, 14) {
        v["parent_provider_uuid"] = Value::Null;
        v["root_provider_uuid"] = json!(p.uuid);
    }
    v
}
