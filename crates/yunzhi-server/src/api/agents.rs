//! Monitoring agents (Art. 13): a host's one-time enrolment code, the
//! agent's enrolment that trades it for a credential, and the agent's
//! reports.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use yunzhi_domain::FieldError;
use yunzhi_domain::catalog::CatalogKind;
use yunzhi_domain::clock::{At, Clock};
use yunzhi_domain::invalid::Checker;
use yunzhi_domain::monitoring::{Reading, check_readings};
use yunzhi_store::{AuditCtx, Enrolment};

use super::path_id;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Caller};
use crate::ingest::{Applied, Batch, RETRY_AFTER};
use crate::state::AppState;

/// How long an enrolment code works.
const CODE_LIFE: jiff::SignedDuration = jiff::SignedDuration::from_hours(72);
/// How often agents report, as told at enrolment.
const INTERVAL_SECS: u64 = 60;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EnrollmentCode {
    /// Give it to whoever installs the agent; it works once.
    pub code: String,
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: At,
}

/// `YZ-XXXX-XXXX-XXXX-XXXX`: 80 random bits in a base32 alphabet without
/// look-alike letters, easy to read out over the phone.
fn new_code() -> anyhow::Result<String> {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let bytes = crate::auth::random_bytes(16)?;
    let chars: Vec<char> = bytes.iter().map(|b| ALPHABET[usize::from(b & 31)] as char).collect();
    let groups: Vec<String> = chars.chunks(4).map(|c| c.iter().collect()).collect();
    Ok(format!("YZ-{}", groups.join("-")))
}

/// Codes are compared by digest, without the dashes and case a person may
/// get wrong when typing them.
fn code_digest(code: &str) -> String {
    let clean: String = code.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    crate::auth::token_digest(&clean.to_ascii_uppercase())
}

#[utoipa::path(post, path = "/api/v1/resources/{id}/enrollment", tag = "agents",
    params(("id" = i64, Path, description = "The object's id")),
    responses((status = 201, description = "A one-time enrolment code for the host's agent", body = EnrollmentCode),
        (status = 404, description = "No such object, or another unit's", body = crate::error::Problem),
        (status = 409, description = "Not a live cloud host", body = crate::error::Problem)))]
pub async fn enrollment_code(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<EnrollmentCode>)> {
    let enroller = caller.actor.agent_enroller().ok_or_else(|| {
        ApiError::forbidden(
            "the cloud resource admin, or the unit admin for its own hosts, issues enrolment codes",
        )
    })?;
    let res = state.store.resource(enroller.scope(), path_id(&id)?).await?.ok_or(ApiError::NotFound)?;
    if res.kind != CatalogKind::CloudHost || !res.state.is_live() {
        return Err(ApiError::Conflict {
            code: "not_a_host",
            detail: format!(
                "resource {} is a {} that is {}; agents run on live cloud hosts",
                res.id,
                res.kind.code(),
                res.state.code()
            ),
            field: None,
        });
    }
    let code = new_code()?;
    let now = state.now();
    let expires_at = now + CODE_LIFE;
    let mut tx = state.store.begin().await?;
    tx.create_enrollment_code(&caller.audit(now), res.id, res.unit_id.0, &code_digest(&code), expires_at)
        .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(EnrollmentCode { code, expires_at: At(expires_at) })))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct EnrollInput {
    pub code: String,
    pub hostname: String,
    #[serde(default)]
    pub machine_id: Option<String>,
    pub version: String,
    /// Lowercase hex SM3 digest of the agent's own binary.
    pub binary_sm3: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Enrolled {
    pub resource_id: i64,
    /// The host's credential: send it as a bearer token with every report.
    pub credential: String,
    pub interval_secs: u64,
}

fn check_agent_identity(c: &mut Checker, version: &str, sm3: &str) {
    if version.is_empty() || version.len() > 64 {
        c.push(FieldError::new("version", "out_of_range", "version must be 1 to 64 characters"));
    }
    if sm3.len() != 64 || !sm3.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        c.push(FieldError::new(
            "binary_sm3",
            "not_a_digest",
            "binary_sm3 must be the 64 lowercase hex digits of an SM3 digest",
        ));
    }
}

#[utoipa::path(post, path = "/api/v1/agent/enroll", tag = "agents", request_body = EnrollInput,
    security(()),
    responses((status = 201, description = "Enrolled: the host's credential", body = Enrolled),
        (status = 401, description = "The code is unknown, used or expired", body = crate::error::Problem),
        (status = 422, description = "Invalid input: the field, the rule and the article", body = crate::error::Problem)))]
pub async fn enroll(
    State(state): State<AppState>,
    body: ApiJson<EnrollInput>,
) -> ApiResult<(StatusCode, Json<Enrolled>)> {
    let input = &body.value;
    let mut c = Checker::new();
    c.take(yunzhi_domain::text::bounded("hostname", &input.hostname, 1, 253));
    check_agent_identity(&mut c, &input.version, &input.binary_sm3);
    c.finish()?;
    let now = state.now();
    let mut tx = state.store.begin().await?;
    let Some(resource_id) = tx.use_enrollment_code(&code_digest(&input.code), now).await? else {
        return Err(ApiError::unauthorized(
            "invalid_enrollment_code",
            "this enrolment code is unknown, already used or expired; ask the Big Data Center or your unit admin for a new one",
        ));
    };
    let res = tx.resource(resource_id).await?.ok_or(ApiError::NotFound)?;
    let credential = crate::auth::new_token()?;
    let digest = crate::auth::token_digest(&credential);
    let ctx = AuditCtx::system(&format!("agent:{}", input.hostname), now);
    let e = Enrolment {
        resource_id,
        credential_digest: &digest,
        hostname: &input.hostname,
        machine_id: input.machine_id.as_deref(),
        version: &input.version,
        binary_sm3: &input.binary_sm3,
    };
    tx.enroll_agent(&ctx, res.unit_id.0, &e).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(Enrolled { resource_id, credential, interval_secs: INTERVAL_SECS })))
}

/// An agent's report. Unknown members are ignored, not refused: an agent
/// newer than its server must still be heard.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ReportInput {
    pub sequence: i64,
    #[serde(default)]
    pub boot_id: Option<String>,
    pub version: String,
    pub binary_sm3: String,
    #[schema(value_type = String, format = DateTime)]
    pub sent_at: jiff::Timestamp,
    pub samples: Vec<Reading>,
    /// Batches the agent had to drop from its full buffer since the last report.
    #[serde(default)]
    pub dropped_batches: i64,
}

#[utoipa::path(post, path = "/api/v1/agent/report", tag = "agents", request_body = ReportInput,
    security(("bearer" = [])),
    responses((status = 202, description = "Stored", body = Object),
        (status = 200, description = "Already received: nothing new in it", body = Object),
        (status = 401, description = "Unknown or replaced host credential", body = crate::error::Problem),
        (status = 422, description = "Invalid input: the field, the rule and the article", body = crate::error::Problem),
        (status = 503, description = "Busy: send again after Retry-After seconds", body = crate::error::Problem)))]
pub async fn report(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: ApiJson<ReportInput>,
) -> ApiResult<(StatusCode, Json<Applied>)> {
    let credential = crate::extract::bearer_token(&headers).unwrap_or_default();
    let applied = accept_report(&state, credential, body.value).await?;
    let status = if applied.duplicate { StatusCode::OK } else { StatusCode::ACCEPTED };
    Ok((status, Json(applied)))
}

/// An agent's report, from its host credential on: identified, checked,
/// queued and answered once durable. The HTTP handler and the demo's
/// simulated agents both report through here.
pub async fn accept_report(state: &AppState, credential: &str, input: ReportInput) -> ApiResult<Applied> {
    let Some(resource_id) = state.store.agent_by_credential(&crate::auth::token_digest(credential)).await?
    else {
        return Err(ApiError::unauthorized(
            "invalid_credential",
            "this host credential is unknown or was replaced by a new enrolment",
        ));
    };
    let now = state.now();
    let mut c = Checker::new();
    check_agent_identity(&mut c, &input.version, &input.binary_sm3);
    if input.sequence < 1 {
        c.push(FieldError::new(
            "sequence",
            "out_of_range",
            "sequence starts at 1 and grows by one per batch",
        ));
    }
    if input.dropped_batches < 0 {
        c.push(FieldError::new("dropped_batches", "out_of_range", "dropped_batches cannot be negative"));
    }
    c.finish()?;
    check_readings(&input.samples, now)?;
    let batch = Batch {
        resource_id,
        sequence: Some(input.sequence),
        boot_id: input.boot_id,
        version: Some(input.version),
        binary_sm3: Some(input.binary_sm3),
        sent_at: input.sent_at,
        received_at: now,
        dropped_batches: input.dropped_batches,
        readings: input.samples,
        source: "agent",
    };
    let busy = || ApiError::Busy {
        detail: "the server is storing other reports; send this one again shortly".into(),
        retry_after_secs: RETRY_AFTER.as_secs(),
    };
    let done = state.ingest.submit(batch).map_err(|_| busy())?;
    match done.await {
        Ok(Ok(a)) => Ok(a),
        Ok(Err(e)) => Err(ApiError::Internal(anyhow::anyhow!("storing a report: {e}"))),
        Err(_) => Err(busy()),
    }
}

#[utoipa::path(get, path = "/api/v1/resources/{id}/agent", tag = "agents",
    params(("id" = i64, Path, description = "The object's id")),
    responses((status = 200, description = "The host's agent: enrolment, last report, version and digest", body = yunzhi_store::AgentRecord),
        (status = 404, description = "No such object, another unit's, or no agent enrolled", body = crate::error::Problem)))]
pub async fn agent_of(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<yunzhi_store::AgentRecord>> {
    let res = readable_resource(&state, &caller, &id).await?;
    state.store.agent(res.id).await?.map(Json).ok_or(ApiError::NotFound)
}

/// The resource `id` if the caller may read it; another unit's is missing.
async fn readable_resource(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> ApiResult<yunzhi_store::ResourceRecord> {
    let reader =
        caller.actor.reader().ok_or_else(|| ApiError::forbidden("this role does not read resources"))?;
    state.store.resource(reader.scope(), path_id(id)?).await?.ok_or(ApiError::NotFound)
}

/// A day given as `field` (`YYYY-MM-DD`), if it was given; a bad one is noted in `c`.
fn day(c: &mut Checker, field: &str, raw: &Option<String>) -> Option<jiff::civil::Date> {
    raw.as_deref().and_then(|r| c.take(yunzhi_domain::system::parse_date(field, r)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MetricsQuery {
    /// `hour` or `day` (default).
    pub span: Option<String>,
    /// First day (`YYYY-MM-DD`, Beijing time); default 30 days before `to`.
    pub from: Option<String>,
    /// Last day; default today.
    pub to: Option<String>,
}

/// One point of a host's utilisation chart.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MetricPoint {
    /// The hour's start, or the day.
    pub at: String,
    pub samples: u64,
    pub cpu_avg: f64,
    pub cpu_min: f64,
    pub cpu_max: f64,
    pub cpu_p95: f64,
    pub memory_avg: f64,
    /// Memory use's least and p95; null for spans stored before they were kept.
    pub memory_min: Option<f64>,
    pub memory_max: f64,
    pub memory_p95: Option<f64>,
    /// Bytes moved over the span, network (both directions) and disk
    /// (read and write).
    pub net_bytes: f64,
    pub disk_bytes: f64,
    /// Throughput in bytes per second: average over the span, least, most
    /// and p95 of the readings (p95 within a factor of √2); null for spans
    /// stored before they were kept.
    pub net_avg_bps: Option<f64>,
    pub net_min_bps: Option<f64>,
    pub net_max_bps: Option<f64>,
    pub net_p95_bps: Option<f64>,
    pub disk_avg_bps: Option<f64>,
    pub disk_min_bps: Option<f64>,
    pub disk_max_bps: Option<f64>,
    pub disk_p95_bps: Option<f64>,
    pub sessions_max: u64,
    /// TCP connections the host accepted over the span; null where its
    /// sender does not count them.
    pub accepted: Option<u64>,
}

fn point(at: String, r: &yunzhi_domain::monitoring::Rollup) -> MetricPoint {
    MetricPoint {
        at,
        samples: r.samples,
        cpu_avg: r.cpu_avg(),
        cpu_min: if r.cpu_min.is_finite() { r.cpu_min } else { 0.0 },
        cpu_max: r.cpu_max,
        cpu_p95: r.cpu_quantile(0.95),
        memory_avg: r.memory_avg(),
        memory_min: r.memory_min.is_finite().then_some(r.memory_min),
        memory_max: r.memory_max,
        memory_p95: r.memory_quantile(0.95),
        net_bytes: r.net_bytes,
        disk_bytes: r.disk_bytes,
        // Kept since the span's time was: a span stored before has none.
        net_avg_bps: r.net_avg_bps(),
        net_min_bps: r.net_min_bps.is_finite().then_some(r.net_min_bps),
        net_max_bps: r.net_avg_bps().map(|_| r.net_max_bps),
        net_p95_bps: r.net_quantile(0.95),
        disk_avg_bps: r.disk_avg_bps(),
        disk_min_bps: r.disk_min_bps.is_finite().then_some(r.disk_min_bps),
        disk_max_bps: r.disk_avg_bps().map(|_| r.disk_max_bps),
        disk_p95_bps: r.disk_quantile(0.95),
        sessions_max: r.sessions_max,
        accepted: r.accepted,
    }
}

#[utoipa::path(get, path = "/api/v1/resources/{id}/metrics", tag = "agents",
    params(("id" = i64, Path, description = "The object's id"), MetricsQuery),
    responses((status = 200, description = "The host's utilisation, by hour or by day", body = Vec<MetricPoint>),
        (status = 404, description = "No such object, or another unit's", body = crate::error::Problem),
        (status = 422, description = "Invalid input: the field, the rule and the article", body = crate::error::Problem)))]
pub async fn metrics(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    super::ApiQuery(q): super::ApiQuery<MetricsQuery>,
) -> ApiResult<Json<Vec<MetricPoint>>> {
    let res = readable_resource(&state, &caller, &id).await?;
    let mut c = Checker::new();
    let to = day(&mut c, "to", &q.to).unwrap_or_else(|| state.clock.today());
    let from = day(&mut c, "from", &q.from).unwrap_or_else(|| to.saturating_sub(jiff::Span::new().days(30)));
    let hourly = match q.span.as_deref() {
        None | Some("day") => false,
        Some("hour") => true,
        Some(_) => {
            c.push(FieldError::new("span", "unknown_span", "span must be hour or day"));
            false
        }
    };
    if from > to || (to - from).get_days() > 400 {
        c.push(FieldError::new(
            "from",
            "out_of_range",
            "from must not be after to, nor more than 400 days before it",
        ));
    }
    if hourly && (to - from).get_days() > 35 {
        c.push(FieldError::new("from", "out_of_range", "hourly points cover at most 35 days; ask for days"));
    }
    c.finish()?;
    if hourly {
        let tz = yunzhi_domain::clock::district_zone();
        let start = from.to_zoned(tz.clone()).map_err(|e| ApiError::Internal(e.into()))?.timestamp();
        let end =
            to.tomorrow().and_then(|d| d.to_zoned(tz)).map_err(|e| ApiError::Internal(e.into()))?.timestamp();
        let rows = state.store.hourly_rollups(res.id, start, end).await?;
        return Ok(Json(rows.iter().map(|(at, r)| point(At(*at).to_string(), r)).collect()));
    }
    let rows = state.store.daily_rollups(res.id, from, to).await?;
    Ok(Json(rows.iter().map(|(d, r)| point(d.to_string(), r)).collect()))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReadingsQuery {
    /// First day (`YYYY-MM-DD`, Beijing time); default `to`.
    pub from: Option<String>,
    /// Last day; default today. At most 2 days from `from`.
    pub to: Option<String>,
}

/// Days of raw readings one answer covers at most (2 880 readings at one a minute).
const READINGS_DAYS: i32 = 2;

#[utoipa::path(get, path = "/api/v1/resources/{id}/readings", tag = "agents",
    params(("id" = i64, Path, description = "The object's id"), ReadingsQuery),
    responses((status = 200, description = "The host's raw readings, oldest first, as its agent (or remote-write) sent them", body = Vec<Reading>),
        (status = 404, description = "No such object, or another unit's", body = crate::error::Problem),
        (status = 422, description = "Invalid input: the field, the rule and the article", body = crate::error::Problem)))]
pub async fn readings(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    super::ApiQuery(q): super::ApiQuery<ReadingsQuery>,
) -> ApiResult<Json<Vec<Reading>>> {
    let res = readable_resource(&state, &caller, &id).await?;
    let mut c = Checker::new();
    let to = day(&mut c, "to", &q.to).unwrap_or_else(|| state.clock.today());
    let from = day(&mut c, "from", &q.from).unwrap_or(to);
    if from > to || (to - from).get_days() >= READINGS_DAYS {
        c.push(FieldError::new(
            "from",
            "out_of_range",
            "from must not be after to, and raw readings are given for at most 2 days at a time; ask the \
             metrics for longer spans",
        ));
    }
    c.finish()?;
    let Some(raw) = state.raw.clone() else {
        return Err(ApiError::bad_request(
            "raw_readings_not_kept",
            "this server keeps only the hourly and daily rollups; ask /metrics",
        ));
    };
    let as_day = |d: jiff::civil::Date| {
        yunzhi_rawstore::Day::parse(&d.to_string())
            .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("day {d}")))
    };
    let (from, to) = (as_day(from)?, as_day(to)?);
    let rows = tokio::task::spawn_blocking(move || -> yunzhi_rawstore::Result<Vec<yunzhi_rawstore::Row>> {
        let mut rows = Vec::new();
        raw.scan(from, to, Some(&[res.id]), |batch| {
            rows.extend((0..batch.len()).filter_map(|i| batch.row(i)))
        })?;
        Ok(rows)
    })
    .await
    .map_err(|e| ApiError::Internal(e.into()))?
    .map_err(|e| ApiError::Internal(e.into()))?;
    let mut out: Vec<Reading> = rows
        .iter()
        .filter_map(|r| {
            Some(Reading {
                at: jiff::Timestamp::from_millisecond(r.at_ms).ok()?,
                cpu_pct: f64::from(r.cpu_pct),
                memory_pct: f64::from(r.memory_pct),
                disk_read_bps: f64::from(r.disk_read_bps),
                disk_write_bps: f64::from(r.disk_write_bps),
                net_rx_bps: f64::from(r.net_rx_bps),
                net_tx_bps: f64::from(r.net_tx_bps),
                sessions: u32::from(r.sessions),
                listening: u32::from(r.listening),
                accepted: r.accepted,
            })
        })
        .collect();
    // A day's rows come sorted, but late rows (and the log) in batches of their own.
    out.sort_by_key(|r| r.at);
    out.dedup_by_key(|r| r.at);
    Ok(Json(out))
}
