//! Nova: flavors, servers, server actions, metadata and volume attachments,
//! in the shapes of compute microversion 2.47 and later (the server embeds
//! its flavor's vcpus/ram/disk instead of a flavor id).

use std::collections::BTreeMap;

use axum::http::{Method, StatusCode, header};
use axum::response::Response;
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::keystone::stamp;
use crate::state::{Cloud, PROJECT_ID, Server, USER_ID};
use crate::{Req, fault, reply, require_microversion};

/// The stand-in only speaks the shapes of 2.47 onwards; a client asking for
/// less would read fields the stand-in does not send.
const MIN: (u32, u32) = (2, 47);
const MAX: (u32, u32) = (2, 96);

pub(crate) fn handle(cloud: &mut Cloud, req: &Req<'_>) -> Response {
    let version = match require_microversion(req, "compute", MIN, MAX) {
        Ok(v) => v,
        Err(response) => return *response,
    };
    let mut response = route(cloud, req);
    if let Ok(v) = format!("compute {}.{}", version.0, version.1).parse() {
        response.headers_mut().insert("openstack-api-version", v);
        response
            .headers_mut()
            .insert(header::VARY, header::HeaderValue::from_static("OpenStack-API-Version"));
    }
    response
}

fn route(cloud: &mut Cloud, req: &Req<'_>) -> Response {
    let m = req.method;
    match req.segs.as_slice() {
        ["flavors", "detail"] if m == Method::GET => flavors(cloud, req),
        ["servers", "detail"] if m == Method::GET => list(cloud, req),
        ["servers"] if m == Method::POST => create(cloud, req),
        ["servers", id] if m == Method::GET => match cloud.servers.iter().find(|s| s.id == *id) {
            Some(s) => reply(StatusCode::OK, json!({"server": view(s, req)})),
            None => not_found(id),
        },
        ["servers", id] if m == Method::DELETE => delete(cloud, id),
        ["servers", id, "action"] if m == Method::POST => action(cloud, req, id),
        ["servers", id, "metadata"] if m == Method::GET || m == Method::PUT => metadata(cloud, req, id),
        ["servers", id, "os-volume_attachments"] if m == Method::POST => attach(cloud, req, id),
        _ => fault(StatusCode::NOT_FOUND, "itemNotFound", "The resource could not be found."),
    }
}

fn not_found(id: &str) -> Response {
    fault(StatusCode::NOT_FOUND, "itemNotFound", format!("Instance {id} could not be found."))
}

fn bad_request(message: impl Into<String>) -> Response {
    fault(StatusCode::BAD_REQUEST, "badRequest", message)
}

fn conflict(id: &str, action: &str, state: &str) -> Response {
    fault(
        StatusCode::CONFLICT,
        "conflictingRequest",
        format!("Cannot '{action}' instance {id} while it is in vm_state {state}"),
    )
}

fn flavors(cloud: &Cloud, req: &Req<'_>) -> Response {
    let flavors: Vec<Value> = cloud
        .flavors
        .iter()
        .map(|f| {
            json!({
                "id": f.id, "name": f.name, "vcpus": f.vcpus, "ram": f.ram, "disk": f.disk,
                "OS-FLV-EXT-DATA:ephemeral": 0, "OS-FLV-DISABLED:disabled": false,
                "os-flavor-access:is_public": true, "rxtx_factor": 1.0, "swap": "",
                "description": null,
                "links": [{"href": format!("{}/flavors/{}", req.endpoint, f.id), "rel": "self"}],
            })
        })
        .collect();
    reply(StatusCode::OK, json!({ "flavors": flavors }))
}

/// A server in the shape of GET /servers/{id} at 2.47+.
fn view(s: &Server, req: &Req<'_>) -> Value {
    let vm_state = match s.status.as_str() {
        "SHUTOFF" => "stopped",
        "VERIFY_RESIZE" => "resized",
        "ERROR" => "error",
        _ => "active",
    };
    let mut v = json!({
        "id": s.id,
        "name": s.name,
        "status": s.status,
        "tenant_id": PROJECT_ID,
        "user_id": USER_ID,
        "metadata": s.metadata,
        "hostId": s.provider.as_deref().map(|p| format!("host-{p}")).unwrap_or_default(),
        "image": s.image_id.as_ref().map_or(json!(""), |id| json!({"id": id})),
        "flavor": {
            "vcpus": s.flavor.vcpus, "ram": s.flavor.ram, "disk": s.flavor.disk,
            "ephemeral": 0, "swap": 0, "original_name": s.flavor.name, "extra_specs": {},
        },
        "created": stamp(s.created),
        "updated": stamp(Timestamp::now()),
        "addresses": {},
        "accessIPv4": "",
        "accessIPv6": "",
        "links": [{"href": format!("{}/servers/{}", req.endpoint, s.id), "rel": "self"}],
        "OS-DCF:diskConfig": "MANUAL",
        "OS-EXT-AZ:availability_zone": "nova",
        "OS-EXT-STS:power_state": if s.status == "SHUTOFF" { 4 } else { 1 },
        "OS-EXT-STS:task_state": null,
        "OS-EXT-STS:vm_state": vm_state,
        "os-extended-volumes:volumes_attached":
            s.volume_ids.iter().map(|v| json!({"id": v, "delete_on_termination": false})).collect::<Vec<_>>(),
        "locked": false,
        "description": null,
        "tags": [],
        "security_groups": [{"name": "default"}],
    });
    if let Some(message) = &s.fault {
        v["fault"] = json!({"code": 500, "created": stamp(s.created), "message": message});
    }
    v
}

/// `name` is a regular expression in Nova; the stand-in understands the
/// anchored, escaped literal a careful client sends, and plain substrings.
fn name_matches(pattern: &str, name: &str) -> bool {
    let anchored_start = pattern.starts_with('^');
    let anchored_end = pattern.ends_with('$') && !pattern.ends_with("\\$");
    let inner = pattern.trim_start_matches('^');
    let inner = if anchored_end { &inner[..inner.len() - 1] } else { inner };
    let mut literal = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        literal.push(if c == '\\' { chars.next().unwrap_or('\\') } else { c });
    }
    match (anchored_start, anchored_end) {
        (true, true) => name == literal,
        (true, false) => name.starts_with(&literal),
        (false, true) => name.ends_with(&literal),
        (false, false) => name.contains(&literal),
    }
}

fn list(cloud: &Cloud, req: &Req<'_>) -> Response {
    let mut servers: Vec<&Server> = cloud
        .servers
        .iter()
        .filter(|s| req.query.get("name").is_none_or(|p| name_matches(p, &s.name)))
        .filter(|s| req.query.get("status").is_none_or(|st| st.eq_ignore_ascii_case(&s.status)))
        .collect();
    if let Some(marker) = req.query.get("marker") {
        let Some(at) = servers.iter().position(|s| &s.id == marker) else {
            return bad_request(format!("marker [{marker}] not found"));
        };
        servers.drain(..=at);
    }
    let limit = req.query.get("limit").and_then(|l| l.parse::<usize>().ok()).unwrap_or(1000);
    let more = servers.len() > limit;
    servers.truncate(limit);
    let mut body = json!({"servers": servers.iter().map(|s| view(s, req)).collect::<Vec<_>>()});
    if more && let Some(last) = servers.last() {
        let href = format!("{}/servers/detail?limit={limit}&marker={}", req.endpoint, last.id);
        body["servers_links"] = json!([{"href": href, "rel": "next"}]);
    }
    reply(StatusCode::OK, body)
}

fn string_map(v: &Value) -> Option<BTreeMap<String, String>> {
    v.as_object()?.iter().map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned()))).collect()
}

fn create(cloud: &mut Cloud, req: &Req<'_>) -> Response {
    let Some(s) = req.body.as_ref().map(|b| &b["server"]).filter(|s| s.is_object()) else {
        return bad_request("Invalid input for field/attribute server.");
    };
    let Some(name) = s["name"].as_str().filter(|n| !n.trim().is_empty()) else {
        return bad_request("Invalid input for field/attribute name.");
    };
    let Some(flavor_ref) = s["flavorRef"].as_str() else {
        return bad_request("'flavorRef' is a required property");
    };
    let Some(flavor) = cloud.flavors.iter().find(|f| f.id == flavor_ref).cloned() else {
        return bad_request(format!("Flavor {flavor_ref} could not be found."));
    };
    let Some(image_id) = s["imageRef"].as_str() else {
        return bad_request(
            "Block Device Mapping is Invalid: Boot sequence for the instance and image/block device mapping combination is not valid.",
        );
    };
    // Since 2.37 `networks` is required: "auto", "none" or a list.
    let network_ids: Vec<String> = match &s["networks"] {
        Value::String(n) if n == "auto" || n == "none" => Vec::new(),
        Value::Array(list) => {
            let ids: Option<Vec<String>> =
                list.iter().map(|n| n["uuid"].as_str().map(str::to_owned)).collect();
            match ids {
                Some(ids) => ids,
                None => return bad_request("Invalid input for field/attribute networks."),
            }
        }
        _ => return bad_request("'networks' is a required property"),
    };
    let metadata = match &s["metadata"] {
        Value::Null => BTreeMap::new(),
        v => match string_map(v) {
            Some(m) => m,
            None => return bad_request("Invalid input for field/attribute metadata."),
        },
    };
    let id = cloud.new_id(0x5e);
    let provider = cloud.place(&flavor);
    let (status, fault) = match provider {
        Some(_) => ("ACTIVE", None),
        None => ("ERROR", Some("No valid host was found. There are not enough hosts available.".to_owned())),
    };
    cloud.servers.push(Server {
        id: id.clone(),
        name: name.to_owned(),
        status: status.into(),
        flavor,
        old_flavor: None,
        status_before_resize: None,
        image_id: Some(image_id.to_owned()),
        network_ids,
        metadata,
        volume_ids: Vec::new(),
        provider,
        fault,
        created: Timestamp::now(),
    });
    let location = format!("{}/servers/{id}", req.endpoint);
    let mut response = reply(
        StatusCode::ACCEPTED,
        json!({"server": {
            "id": id,
            "links": [{"href": location, "rel": "self"}],
            "OS-DCF:diskConfig": "MANUAL",
            "security_groups": [{"name": "default"}],
            "adminPass": "standinAdminPass",
        }}),
    );
    if let Ok(v) = location.parse() {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}

fn delete(cloud: &mut Cloud, id: &str) -> Response {
    let Some(at) = cloud.servers.iter().position(|s| s.id == id) else {
        return not_found(id);
    };
    let server = cloud.servers.remove(at);
    for v in cloud.volumes.iter_mut().filter(|v| server.volume_ids.contains(&v.id)) {
        v.status = "available".into();
        v.attached_to = None;
    }
    Response::builder().status(StatusCode::NO_CONTENT).body(axum::body::Body::empty()).unwrap_or_default()
}

fn action(cloud: &mut Cloud, req: &Req<'_>, id: &str) -> Response {
    let flavors = cloud.flavors.clone();
    let Some(s) = cloud.servers.iter_mut().find(|s| s.id == id) else {
        return not_found(id);
    };
    let Some((name, args)) = req.body.as_ref().and_then(Value::as_object).and_then(|o| o.iter().next())
    else {
        return bad_request("There is no such action");
    };
    match name.as_str() {
        "os-stop" => {
            if s.status != "ACTIVE" {
                return conflict(id, "stop", &s.status.to_lowercase());
            }
            s.status = "SHUTOFF".into();
        }
        "os-start" => {
            if s.status != "SHUTOFF" {
                return conflict(id, "start", &s.status.to_lowercase());
            }
            s.status = "ACTIVE".into();
        }
        "resize" => {
            if s.status != "ACTIVE" && s.status != "SHUTOFF" {
                return conflict(id, "resize", &s.status.to_lowercase());
            }
            let Some(flavor_ref) = args["flavorRef"].as_str() else {
                return bad_request("'flavorRef' is a required property");
            };
            let Some(flavor) = flavors.into_iter().find(|f| f.id == flavor_ref) else {
                return bad_request(format!("Flavor {flavor_ref} could not be found."));
            };
            if flavor == s.flavor {
                return bad_request("When resizing, instances must change flavor!");
            }
            s.old_flavor = Some(std::mem::replace(&mut s.flavor, flavor));
            s.status_before_resize = Some(std::mem::replace(&mut s.status, "VERIFY_RESIZE".into()));
        }
        "confirmResize" => {
            if s.status != "VERIFY_RESIZE" {
                return conflict(id, "confirmResize", &s.status.to_lowercase());
            }
            s.old_flavor = None;
            s.status = s.status_before_resize.take().unwrap_or_else(|| "ACTIVE".into());
            return Response::builder()
                .status(StatusCode::NO_CONTENT)
                .body(axum::body::Body::empty())
                .unwrap_or_default();
        }
        other => return bad_request(format!("The stand-in does not know the action {other}")),
    }
    Response::builder().status(StatusCode::ACCEPTED).body(axum::body::Body::empty()).unwrap_or_default()
}

fn metadata(cloud: &mut Cloud, req: &Req<'_>, id: &str) -> Response {
    let Some(s) = cloud.servers.iter_mut().find(|s| s.id == id) else {
        return not_found(id);
    };
    if req.method == Method::PUT {
        let Some(m) = req.body.as_ref().and_then(|b| string_map(&b["metadata"])) else {
            return bad_request("Invalid input for field/attribute metadata.");
        };
        s.metadata = m;
    }
    reply(StatusCode::OK, json!({"metadata": s.metadata}))
}

fn attach(cloud: &mut Cloud, req: &Req<'_>, id: &str) -> Response {
    let Some(volume_id) = req.body.as_ref().and_then(|b| b["volumeAttachment"]["volumeId"].as_str()) else {
        return bad_request("'volumeId' is a required property");
    };
    let Some(server) = cloud.servers.iter_mut().find(|s| s.id == id) else {
        return not_found(id);
    };
    if server.status != "ACTIVE" && server.status != "SHUTOFF" {
        return conflict(id, "attach_volume", &server.status.to_lowercase());
    }
    let Some(volume) = cloud.volumes.iter_mut().find(|v| v.id == volume_id) else {
        return fault(
            StatusCode::NOT_FOUND,
            "itemNotFound",
            format!("Volume {volume_id} could not be found."),
        );
    };
    if volume.status != "available" {
        return bad_request(format!(
            "Invalid volume: volume {volume_id} status must be available, but current status is: {}",
            volume.status
        ));
    }
    volume.status = "in-use".into();
    volume.attached_to = Some(id.to_owned());
    server.volume_ids.push(volume_id.to_owned());
    let device = format!("/dev/vd{}", char::from(b'a' + server.volume_ids.len().min(24) as u8));
    reply(
        StatusCode::OK,
        json!({"volumeAttachment": {"device": device, "id": volume_id, "serverId": id, "volumeId": volume_id}}),
    )
}
