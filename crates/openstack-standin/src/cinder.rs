//! Cinder v3: volumes under `/v3/{project_id}`, and the `os-extend` action
//! (an in-use volume only from microversion 3.42, as Cinder has it).

use std::collections::BTreeMap;

use axum::http::{Method, StatusCode};
use axum::response::Response;
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::keystone::stamp;
use crate::state::{Cloud, PROJECT_ID, USER_ID, Volume};
use crate::{Req, fault, reply, require_microversion};

const MIN: (u32, u32) = (3, 0);
const MAX: (u32, u32) = (3, 70);

pub(crate) fn handle(cloud: &mut Cloud, req: &Req<'_>) -> Response {
    let version = match require_microversion(req, "volume", MIN, MAX) {
        Ok(v) => v,
        Err(response) => return *response,
    };
    let m = req.method;
    match req.segs.as_slice() {
        ["volumes"] if m == Method::POST => create(cloud, req),
        ["volumes", "detail"] if m == Method::GET => list(cloud, req),
        ["volumes", id] if m == Method::GET => match cloud.volumes.iter().find(|v| v.id == *id) {
            Some(v) => reply(StatusCode::OK, json!({"volume": view(v, req)})),
            None => not_found(id),
        },
        ["volumes", id] if m == Method::DELETE => delete(cloud, id),
        ["volumes", id, "action"] if m == Method::POST => action(cloud, req, id, version),
        _ => fault(StatusCode::NOT_FOUND, "itemNotFound", "The resource could not be found."),
    }
}

fn not_found(id: &str) -> Response {
    fault(StatusCode::NOT_FOUND, "itemNotFound", format!("Volume {id} could not be found."))
}

fn bad_request(message: impl Into<String>) -> Response {
    fault(StatusCode::BAD_REQUEST, "badRequest", message)
}

fn view(v: &Volume, req: &Req<'_>) -> Value {
    let attachments: Vec<Value> = v
        .attached_to
        .iter()
        .map(|server| {
            json!({"server_id": server, "attachment_id": format!("att-{}", v.id), "volume_id": v.id,
                   "id": v.id, "device": "/dev/vdb", "host_name": null, "attached_at": stamp(v.created)})
        })
        .collect();
    json!({
        "id": v.id,
        "name": v.name,
        "size": v.size,
        "status": v.status,
        "metadata": v.metadata,
        "volume_type": v.volume_type.as_deref().unwrap_or("__DEFAULT__"),
        "attachments": attachments,
        "availability_zone": "nova",
        "bootable": "false",
        "encrypted": false,
        "multiattach": false,
        "description": null,
        "created_at": stamp(v.created),
        "updated_at": stamp(Timestamp::now()),
        "os-vol-tenant-attr:tenant_id": PROJECT_ID,
        "user_id": USER_ID,
        "snapshot_id": null,
        "source_volid": null,
        "replication_status": null,
        "consistencygroup_id": null,
        "links": [{"href": format!("{}/volumes/{}", req.endpoint, v.id), "rel": "self"}],
    })
}

fn create(cloud: &mut Cloud, req: &Req<'_>) -> Response {
    let Some(body) = req.body.as_ref().map(|b| &b["volume"]).filter(|v| v.is_object()) else {
        return bad_request("Missing required element 'volume' in request body.");
    };
    let Some(size) = body["size"].as_u64().filter(|s| *s > 0) else {
        return bad_request("Invalid input for field/attribute size.");
    };
    let metadata: BTreeMap<String, String> = match body["metadata"].as_object() {
        None => BTreeMap::new(),
        Some(m) => match m.iter().map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned()))).collect() {
            Some(m) => m,
            None => return bad_request("Invalid input for field/attribute metadata."),
        },
    };
    let id = cloud.new_id(0x0c);
    // A volume the backends have no room for ends in error, as Cinder's
    // scheduler leaves it.
    let status = if cloud.volume_usage() + size > cloud.volume_capacity_gib { "error" } else { "available" };
    let volume = Volume {
        id,
        name: body["name"].as_str().map(str::to_owned),
        size,
        status: status.into(),
        metadata,
        volume_type: body["volume_type"].as_str().map(str::to_owned),
        attached_to: None,
        created: Timestamp::now(),
    };
    let mut shown = view(&volume, req);
    shown["status"] = json!("creating");
    cloud.volumes.push(volume);
    reply(StatusCode::ACCEPTED, json!({ "volume": shown }))
}

fn list(cloud: &Cloud, req: &Req<'_>) -> Response {
    let mut volumes: Vec<&Volume> = cloud.volumes.iter().collect();
    if let Some(marker) = req.query.get("marker") {
        let Some(at) = volumes.iter().position(|v| &v.id == marker) else {
            return bad_request(format!("marker [{marker}] not found"));
        };
        volumes.drain(..=at);
    }
    let limit = req.query.get("limit").and_then(|l| l.parse::<usize>().ok()).unwrap_or(1000);
    let more = volumes.len() > limit;
    volumes.truncate(limit);
    let mut body = json!({"volumes": volumes.iter().map(|v| view(v, req)).collect::<Vec<_>>()});
    if more && let Some(last) = volumes.last() {
        let href = format!("{}/volumes/detail?limit={limit}&marker={}", req.endpoint, last.id);
        body["volumes_links"] = json!([{"href": href, "rel": "next"}]);
    }
    reply(StatusCode::OK, body)
}

fn delete(cloud: &mut Cloud, id: &str) -> Response {
    let Some(at) = cloud.volumes.iter().position(|v| v.id == id) else {
        return not_found(id);
    };
    let status = cloud.volumes[at].status.clone();
    if status != "available" && status != "error" {
        return bad_request(format!(
            "Invalid volume: Volume status must be available or error or error_restoring or error_extending \
             or error_managing and must not be migrating, attached, belong to a group, have snapshots, \
             awaiting a transfer, or be disassociated from snapshots after volume transfer. (status {status})"
        ));
    }
    cloud.volumes.remove(at);
    Response::builder().status(StatusCode::ACCEPTED).body(axum::body::Body::empty()).unwrap_or_default()
}

fn action(cloud: &mut Cloud, req: &Req<'_>, id: &str, version: (u32, u32)) -> Response {
    let capacity = cloud.volume_capacity_gib;
    let used = cloud.volume_usage();
    let Some(v) = cloud.volumes.iter_mut().find(|v| v.id == id) else {
        return not_found(id);
    };
    let Some(new_size) = req.body.as_ref().and_then(|b| b["os-extend"]["new_size"].as_u64()) else {
        return bad_request("The stand-in knows only the os-extend action, with new_size.");
    };
    match v.status.as_str() {
        "available" => {}
        "in-use" if version >= (3, 42) => {}
        status => {
            return bad_request(format!(
                "Invalid volume: Volume status must be 'available' or 'in-use' (from 3.42) to extend, \
                 but it is {status}."
            ));
        }
    }
    if new_size <= v.size {
        return bad_request("Invalid input received: New size for extend must be greater than current size.");
    }
    if used - v.size + new_size > capacity {
        return fault(
            StatusCode::PAYLOAD_TOO_LARGE,
            "overLimit",
            "VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed gigabytes quota.",
        );
    }
    v.size = new_size;
    Response::builder().status(StatusCode::ACCEPTED).body(axum::body::Body::empty()).unwrap_or_default()
}
