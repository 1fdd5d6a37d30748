//! A local stand-in for an OpenStack cloud, for tests only: Keystone v3,
//! Nova, Cinder v3 and Placement over real HTTP on 127.0.0.1, keeping
//! state (tokens, flavors, servers, volumes, finite hypervisors), checking
//! tokens and microversion headers, recording every request, and failing on
//! purpose (503s, answers lost after the work was done).
//!
//! Shapes follow the OpenStack API reference:
//! - Identity v3: <https://docs.openstack.org/api-ref/identity/v3/> (password
//!   and application credential authentication, the token's `catalog`)
//! - Compute: <https://docs.openstack.org/api-ref/compute/> (flavors, servers,
//!   server actions, metadata, volume attachments; the server's embedded
//!   `flavor` as of microversion 2.47)
//! - Block Storage v3: <https://docs.openstack.org/api-ref/block-storage/v3/>
//!   (volumes, the `os-extend` action; extending an in-use volume from 3.42)
//! - Placement: <https://docs.openstack.org/api-ref/placement/> (resource
//!   providers, inventories, usages)
//!
//! Endpoints live under `/{region}/{interface}/{service}` so a test sees from
//! the path which catalog entry a client chose; Keystone is at `/identity`.
//! State changes happen at once (a created server is ACTIVE on the next read).

mod cinder;
mod keystone;
mod nova;
mod placement;
mod state;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};

use state::Cloud;
pub use state::{
    APP_CREDENTIAL_ID, APP_CREDENTIAL_SECRET, Flavor, INTERFACES, Inventory, PASSWORD, PROJECT_ID,
    PROJECT_NAME, Provider, REGIONS, Server, USERNAME, Volume,
};

/// One request as the stand-in received it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recorded {
    pub method: String,
    /// Path and query, as sent (`/RegionOne/public/compute/v2.1/servers/detail?name=...`).
    pub path: String,
    /// The headers that matter to OpenStack, by lower-case name.
    pub headers: BTreeMap<String, String>,
    /// The JSON body, if there was one.
    pub body: Option<Value>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str)
    }

    /// The path without its query.
    pub fn path_only(&self) -> &str {
        self.path.split('?').next().unwrap_or(&self.path)
    }
}

const RECORDED_HEADERS: [&str; 5] =
    ["x-auth-token", "openstack-api-version", "x-openstack-nova-api-version", "content-type", "accept"];

/// How the answer to a create is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LostAnswer {
    /// The work is done, then the client is told 503.
    ServiceUnavailable,
    /// The work is done, then the connection breaks before the body is sent.
    DroppedConnection,
}

#[derive(Default)]
struct Faults {
    fail_next: u32,
    lose_next_create: Option<LostAnswer>,
}

struct Shared {
    cloud: Mutex<Cloud>,
    requests: Mutex<Vec<Recorded>>,
    faults: Mutex<Faults>,
    base: String,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking test thread must not take the stand-in down with it.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A running stand-in. It serves from its own thread and runtime, so it
/// keeps answering whatever the test's own runtime does (or whether it has
/// one), and stops when dropped.
pub struct StandIn {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl StandIn {
    /// Starts a stand-in on a random port of 127.0.0.1.
    pub async fn start() -> StandIn {
        StandIn::start_blocking()
    }

    /// Starts a stand-in from synchronous code (a crash test that keeps it up
    /// while it kills a server process).
    ///
    /// # Panics
    /// When no port can be bound or no thread started: a test cannot go on.
    pub fn start_blocking() -> StandIn {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("a non-blocking listener");
        let addr = listener.local_addr().expect("the bound address");
        let shared = Arc::new(Shared {
            cloud: Mutex::new(Cloud::default()),
            requests: Mutex::new(Vec::new()),
            faults: Mutex::new(Faults::default()),
            base: format!("http://{addr}"),
        });
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let app = axum::Router::new().fallback(handle).with_state(shared.clone());
        std::thread::Builder::new()
            .name(format!("openstack-standin-{}", addr.port()))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()
                    .expect("a runtime for the stand-in");
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
                    // Not a graceful shutdown: clients keep idle connections
                    // open, and a stand-in that is dropped is simply gone.
                    tokio::select! {
                        _ = axum::serve(listener, app) => {}
                        _ = rx => {}
                    }
                });
            })
            .expect("a thread for the stand-in");
        StandIn { addr, shared, shutdown: Some(tx) }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        self.shared.base.clone()
    }

    /// The Keystone v3 URL to configure a client with.
    pub fn auth_url(&self) -> String {
        format!("{}/identity/v3", self.shared.base)
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.shared.requests).clone()
    }

    pub fn clear_requests(&self) {
        lock(&self.shared.requests).clear();
    }

    pub fn servers(&self) -> Vec<Server> {
        lock(&self.shared.cloud).servers.clone()
    }

    pub fn volumes(&self) -> Vec<Volume> {
        lock(&self.shared.cloud).volumes.clone()
    }

    pub fn flavors(&self) -> Vec<Flavor> {
        lock(&self.shared.cloud).flavors.clone()
    }

    /// Makes every token issued so far invalid (401 from then on).
    pub fn expire_tokens(&self) {
        for t in &mut lock(&self.shared.cloud).tokens {
            t.revoked = true;
        }
    }

    /// How long tokens issued from now on live.
    pub fn set_token_lifetime(&self, secs: i64) {
        lock(&self.shared.cloud).token_lifetime_secs = secs;
    }

    /// The next `n` requests, of any kind, answer 503 and do nothing.
    pub fn fail_next(&self, n: u32) {
        lock(&self.shared.faults).fail_next = n;
    }

    /// The next create (server or volume) is made, and its answer lost on a
    /// broken connection.
    pub fn lose_next_create_answer(&self) {
        self.lose_next_create_answer_with(LostAnswer::DroppedConnection);
    }

    pub fn lose_next_create_answer_with(&self, how: LostAnswer) {
        lock(&self.shared.faults).lose_next_create = Some(how);
    }

    /// Replaces the hypervisors servers are placed on.
    pub fn set_providers(&self, providers: Vec<Provider>) {
        lock(&self.shared.cloud).providers = providers;
    }

    pub fn providers(&self) -> Vec<Provider> {
        lock(&self.shared.cloud).providers.clone()
    }

    pub fn set_volume_capacity(&self, gib: u64) {
        lock(&self.shared.cloud).volume_capacity_gib = gib;
    }

    /// Leaves a service type (`placement`, `volumev3`...) out of catalogs
    /// issued from now on.
    pub fn hide_service(&self, service_type: &str) {
        lock(&self.shared.cloud).hidden_services.push(service_type.to_owned());
    }

    /// Puts an ACTIVE server on the cloud directly, as someone working in the
    /// cloud's own console would (an orphan to Yunzhi unless it carries a
    /// `yunzhi_key`). Returns its id.
    ///
    /// # Panics
    /// When `flavor_id` is not one of the stand-in's flavors.
    pub fn add_server(&self, name: &str, flavor_id: &str, metadata: &[(&str, &str)]) -> String {
        let mut cloud = lock(&self.shared.cloud);
        let flavor =
            cloud.flavors.iter().find(|f| f.id == flavor_id).cloned().expect("a flavor of the stand-in");
        let id = cloud.new_id(0x5e);
        let provider = cloud.place(&flavor);
        cloud.servers.push(Server {
            id: id.clone(),
            name: name.to_owned(),
            status: "ACTIVE".into(),
            flavor,
            old_flavor: None,
            status_before_resize: None,
            image_id: None,
            network_ids: Vec::new(),
            metadata: metadata.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            volume_ids: Vec::new(),
            provider,
            fault: None,
            created: jiff::Timestamp::now(),
        });
        id
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// What a handler got: the request, split up.
pub(crate) struct Req<'a> {
    pub method: &'a Method,
    /// Path segments after `/{region}/{interface}/{service}` (or `/identity`).
    pub segs: Vec<&'a str>,
    pub query: BTreeMap<String, String>,
    pub headers: &'a HeaderMap,
    pub body: Option<Value>,
    /// The base URL of the endpoint answering, for links.
    pub endpoint: String,
}

impl Req<'_> {
    /// The microversion asked for `service` (`compute`, `volume`,
    /// `placement`), as (major, minor).
    pub fn microversion(&self, service: &str) -> Option<(u32, u32)> {
        let parse = |v: &str| {
            let (major, minor) = v.trim().split_once('.')?;
            Some((major.parse().ok()?, minor.parse().ok()?))
        };
        for value in self.headers.get_all("openstack-api-version") {
            for part in value.to_str().unwrap_or("").split(',') {
                if let Some((s, v)) = part.trim().split_once(' ')
                    && s.eq_ignore_ascii_case(service)
                {
                    return parse(v);
                }
            }
        }
        if service == "compute" {
            return parse(self.headers.get("x-openstack-nova-api-version")?.to_str().ok()?);
        }
        None
    }
}

/// Nova and Cinder's error body: `{"itemNotFound": {"code": 404, "message": ...}}`.
pub(crate) fn fault(status: StatusCode, kind: &str, message: impl Into<String>) -> Response {
    let body = json!({ kind: { "code": status.as_u16(), "message": message.into() } });
    (status, axum::Json(body)).into_response()
}

pub(crate) fn reply(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

/// Checks the microversion header a service needs: absent is refused (the
/// stand-in wants every client to say which shapes it expects), out of the
/// supported range is 406, as the real services answer.
pub(crate) fn require_microversion(
    req: &Req<'_>,
    service: &str,
    min: (u32, u32),
    max: (u32, u32),
) -> Result<(u32, u32), Box<Response>> {
    let Some(v) = req.microversion(service) else {
        return Err(Box::new(fault(
            StatusCode::BAD_REQUEST,
            "badRequest",
            format!("the stand-in requires an explicit `OpenStack-API-Version: {service} X.Y` header"),
        )));
    };
    if v < min || v > max {
        return Err(Box::new(fault(
            StatusCode::NOT_ACCEPTABLE,
            "notAcceptable",
            format!(
                "Version {}.{} is not supported by the API. Minimum is {}.{} and maximum is {}.{}.",
                v.0, v.1, min.0, min.1, max.0, max.1
            ),
        )));
    }
    Ok(v)
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body: Option<Value> = if body.is_empty() {
        None
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => Some(v),
            Err(e) => {
                return fault(StatusCode::BAD_REQUEST, "badRequest", format!("malformed JSON: {e}"));
            }
        }
    };
    let path = uri.path_and_query().map_or_else(|| uri.path().to_owned(), |pq| pq.as_str().to_owned());
    lock(&shared.requests).push(Recorded {
        method: method.to_string(),
        path,
        headers: RECORDED_HEADERS
            .iter()
            .filter_map(|h| Some(((*h).to_owned(), headers.get(*h)?.to_str().ok()?.to_owned())))
            .collect(),
        body: body.clone(),
    });
    {
        let mut faults = lock(&shared.faults);
        if faults.fail_next > 0 {
            faults.fail_next -= 1;
            return fault(StatusCode::SERVICE_UNAVAILABLE, "serviceUnavailable", "injected failure");
        }
    }
    let query = Query::<BTreeMap<String, String>>::try_from_uri(&uri).map(|q| q.0).unwrap_or_default();
    let segs: Vec<&str> = uri.path().split('/').filter(|s| !s.is_empty()).collect();

    if let ["identity", "v3", rest @ ..] = segs.as_slice() {
        let req = Req {
            method: &method,
            segs: rest.to_vec(),
            query,
            headers: &headers,
            body,
            endpoint: format!("{}/identity/v3", shared.base),
        };
        let mut cloud = lock(&shared.cloud);
        return keystone::handle(&mut cloud, &req, &shared.base);
    }
    let [region, interface, service, rest @ ..] = segs.as_slice() else {
        return fault(StatusCode::NOT_FOUND, "itemNotFound", "no such endpoint");
    };
    if !REGIONS.contains(region) || !INTERFACES.contains(interface) {
        return fault(StatusCode::NOT_FOUND, "itemNotFound", "no such region or interface");
    }
    let token = headers.get("x-auth-token").and_then(|v| v.to_str().ok()).unwrap_or("");
    let mut cloud = lock(&shared.cloud);
    if !cloud.token_valid(token) {
        let body = json!({"error": {"code": 401, "title": "Unauthorized",
            "message": "The request you have made requires authentication."}});
        return reply(StatusCode::UNAUTHORIZED, body);
    }
    let (prefix, rest) = match (*service, rest) {
        ("compute", ["v2.1", rest @ ..]) => ("compute/v2.1", rest),
        ("volume", ["v3", project, rest @ ..]) if *project == PROJECT_ID => ("volume/v3", rest),
        ("placement", rest) => ("placement", rest),
        _ => return fault(StatusCode::NOT_FOUND, "itemNotFound", "no such service path"),
    };
    let endpoint = match *service {
        "volume" => format!("{}/{region}/{interface}/volume/v3/{PROJECT_ID}", shared.base),
        _ => format!("{}/{region}/{interface}/{prefix}", shared.base),
    };
    let is_create = method == Method::POST && matches!(rest, ["servers"] | ["volumes"]);
    let req = Req { method: &method, segs: rest.to_vec(), query, headers: &headers, body, endpoint };
    let response = match *service {
        "compute" => nova::handle(&mut cloud, &req),
        "volume" => cinder::handle(&mut cloud, &req),
        _ => placement::handle(&cloud, &req),
    };
    drop(cloud);
    if is_create
        && response.status().is_success()
        && let Some(how) = lock(&shared.faults).lose_next_create.take()
    {
        return lost(how);
    }
    response
}

/// The answer to work that was done, lost on the way back.
fn lost(how: LostAnswer) -> Response {
    match how {
        LostAnswer::ServiceUnavailable => {
            fault(StatusCode::SERVICE_UNAVAILABLE, "serviceUnavailable", "the gateway timed out")
        }
        LostAnswer::DroppedConnection => {
            let mut response = Response::new(Body::new(Broken));
            *response.status_mut() = StatusCode::ACCEPTED;
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response
        }
    }
}

/// A body that fails at once: hyper then breaks the connection, and the
/// client never reads an answer.
struct Broken;

impl http_body::Body for Broken {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        Poll::Ready(Some(Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "the stand-in drops this answer",
        ))))
    }
}
