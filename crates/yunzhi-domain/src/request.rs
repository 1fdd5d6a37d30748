//! Requests (申请) and their approval: new resources (Art. 9), expansion
//! (Art. 10), reclaim (Art. 11), temporary resources and their extension
//! (Art. 12), each on the statutory working-day clock.
//!
//! Everything here is a pure function of the facts the caller loads: the
//! system, the catalog items asked for, what the system already holds, the
//! calendar and today's date.

use jiff::ToSpan;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::calendar::{Calendar, YearUnknown};
use crate::catalog::{CatalogKind, CatalogSpec};
use crate::invalid::{Checker, FieldError, Invalid};
use crate::role::Role;
use crate::system::{Arch, Quota, System, SystemState, parse_date};
use crate::text;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestKind {
    New,
    Expansion,
    Reclaim,
    Temporary,
    Extension,
}

impl RequestKind {
    pub const ALL: [RequestKind; 5] = [
        RequestKind::New,
        RequestKind::Expansion,
        RequestKind::Reclaim,
        RequestKind::Temporary,
        RequestKind::Extension,
    ];

    pub fn code(self) -> &'static str {
        match self {
            RequestKind::New => "new",
            RequestKind::Expansion => "expansion",
            RequestKind::Reclaim => "reclaim",
            RequestKind::Temporary => "temporary",
            RequestKind::Extension => "extension",
        }
    }

    pub fn parse(field: &str, raw: &str) -> Result<RequestKind, Invalid> {
        RequestKind::ALL.into_iter().find(|k| k.code() == raw).ok_or_else(|| {
            FieldError::new(
                field,
                "unknown_kind",
                format!("{field} must be new, expansion, reclaim, temporary or extension"),
            )
            .into()
        })
    }

    /// Whether the request asks for resources from the catalog.
    pub fn asks_for_items(self) -> bool {
        matches!(self, RequestKind::New | RequestKind::Expansion | RequestKind::Temporary)
    }

    /// Whether the request names existing resources.
    pub fn names_resources(self) -> bool {
        matches!(self, RequestKind::Reclaim | RequestKind::Extension)
    }

    /// The article of the regulation the process comes from.
    pub fn article(self) -> u8 {
        match self {
            RequestKind::New => 9,
            RequestKind::Expansion => 10,
            RequestKind::Reclaim => 11,
            RequestKind::Temporary | RequestKind::Extension => 12,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestState {
    /// Waiting for the decision of the step whose turn it is.
    InReview,
    /// Sent back to the unit for changes; the unit edits and resubmits.
    Returned,
    /// Every step approved; being carried out (provisioning, reclaim).
    Approved,
    /// Carried out: resources handed over, reclaimed or extended.
    Fulfilled,
    Rejected,
    Withdrawn,
}

impl RequestState {
    pub const ALL: [RequestState; 6] = [
        RequestState::InReview,
        RequestState::Returned,
        RequestState::Approved,
        RequestState::Fulfilled,
        RequestState::Rejected,
        RequestState::Withdrawn,
    ];

    pub fn code(self) -> &'static str {
        match self {
            RequestState::InReview => "in_review",
            RequestState::Returned => "returned",
            RequestState::Approved => "approved",
            RequestState::Fulfilled => "fulfilled",
            RequestState::Rejected => "rejected",
            RequestState::Withdrawn => "withdrawn",
        }
    }

    pub fn parse(field: &str, raw: &str) -> Result<RequestState, Invalid> {
        RequestState::ALL.into_iter().find(|k| k.code() == raw).ok_or_else(|| {
            let all: Vec<_> = RequestState::ALL.iter().map(|s| s.code()).collect();
            FieldError::new(field, "unknown_state", format!("{field} must be one of {}", all.join(", ")))
                .into()
        })
    }

    pub fn is_final(self) -> bool {
        matches!(self, RequestState::Fulfilled | RequestState::Rejected | RequestState::Withdrawn)
    }

    /// Whether the request still holds quota: a rejected or withdrawn one
    /// releases it, a fulfilled one's resources hold it instead.
    pub fn holds_quota(self) -> bool {
        matches!(self, RequestState::InReview | RequestState::Returned | RequestState::Approved)
    }
}

/// Who decides, in order (Art. 9, 10, 11, 12).
///
/// * new: cloud resource admin → infrastructure section chief → leader in charge;
/// * expansion: cloud resource admin → section chief, and the leader in
///   charge too when it is an exception beyond the 120 % limit;
/// * reclaim: the cloud resource admin for the Big Data Center;
/// * temporary and extension: the District Government Services Office.
pub fn route(kind: RequestKind, exception: bool) -> Vec<Role> {
    match kind {
        RequestKind::New => vec![Role::CloudAdmin, Role::InfraChief, Role::BdcLeader],
        RequestKind::Expansion if exception => vec![Role::CloudAdmin, Role::InfraChief, Role::BdcLeader],
        RequestKind::Expansion => vec![Role::CloudAdmin, Role::InfraChief],
        RequestKind::Reclaim => vec![Role::CloudAdmin],
        RequestKind::Temporary | RequestKind::Extension => vec![Role::Office],
    }
}

/// Deadlines in working days. The regulation's own, and Yunzhi's service
/// targets where the regulation names none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SlaPolicy {
    /// Art. 9: approval and provisioning within 7 working days of receipt.
    pub new: u32,
    /// Art. 10: review within 3 working days…
    pub expansion_review: u32,
    /// …and provisioning within 3 working days of approval.
    pub expansion_provision: u32,
    /// Art. 11: review (and reclaim) within 5 working days.
    pub reclaim: u32,
    /// Art. 12 names no deadline for the office; a service target.
    pub temporary: u32,
    pub extension: u32,
    /// Expansion beyond the quota is refused past this share of it (Art. 10: 120 %).
    pub expansion_limit_percent: u32,
}

impl Default for SlaPolicy {
    fn default() -> Self {
        SlaPolicy {
            new: 7,
            expansion_review: 3,
            expansion_provision: 3,
            reclaim: 5,
            temporary: 5,
            extension: 5,
            expansion_limit_percent: 120,
        }
    }
}

impl SlaPolicy {
    /// The deadline of a request received on `received`.
    pub fn due_on(
        &self,
        calendar: &Calendar,
        kind: RequestKind,
        received: Date,
    ) -> Result<Date, YearUnknown> {
        let days = match kind {
            RequestKind::New => self.new,
            RequestKind::Expansion => self.expansion_review,
            RequestKind::Reclaim => self.reclaim,
            RequestKind::Temporary => self.temporary,
            RequestKind::Extension => self.extension,
        };
        calendar.due_on(received, days)
    }

    /// The deadline once approved: an expansion gets its own provisioning
    /// period (Art. 10); the others keep theirs.
    pub fn due_after_approval(
        &self,
        calendar: &Calendar,
        kind: RequestKind,
        approved: Date,
        current: Date,
    ) -> Result<Date, YearUnknown> {
        match kind {
            RequestKind::Expansion => calendar.due_on(approved, self.expansion_provision),
            _ => Ok(current),
        }
    }
}

/// How a request stands against its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Sla {
    OnTime,
    /// The deadline is today or the next working day.
    DueSoon,
    Overdue,
    /// Finished by its deadline.
    Met,
    /// Finished after its deadline.
    Missed,
}

impl Sla {
    pub fn parse(field: &str, raw: &str) -> Result<Sla, Invalid> {
        match raw {
            "on_time" => Ok(Sla::OnTime),
            "due_soon" => Ok(Sla::DueSoon),
            "overdue" => Ok(Sla::Overdue),
            "met" => Ok(Sla::Met),
            "missed" => Ok(Sla::Missed),
            _ => Err(FieldError::new(
                field,
                "unknown_sla",
                format!("{field} must be on_time, due_soon, overdue, met or missed"),
            )
            .into()),
        }
    }
}

/// Where a request stands: `finished_on` is when it was fulfilled (or
/// rejected, withdrawn); `None` while open.
pub fn sla(calendar: &Calendar, today: Date, due_on: Date, finished_on: Option<Date>) -> Sla {
    match finished_on {
        Some(done) if done <= due_on => Sla::Met,
        Some(_) => Sla::Missed,
        None if today > due_on => Sla::Overdue,
        None => match calendar.count_working_days(today, due_on) {
            Ok(n) if n <= 1 => Sla::DueSoon,
            Ok(_) => Sla::OnTime,
            // A deadline in a year the calendar does not know is far off.
            Err(_) => Sla::OnTime,
        },
    }
}

/// Resources in the three classes a quota counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Demand {
    pub vcpu: u64,
    pub memory_gib: u64,
    pub storage_gib: u64,
}

impl std::ops::Add for Demand {
    type Output = Demand;
    fn add(self, o: Demand) -> Demand {
        Demand {
            vcpu: self.vcpu + o.vcpu,
            memory_gib: self.memory_gib + o.memory_gib,
            storage_gib: self.storage_gib + o.storage_gib,
        }
    }
}

impl Demand {
    /// What `quantity` of a catalog item takes from the quota: hosts and
    /// databases their size, storage its GiB; load balancers, addresses and
    /// security services no quota class.
    pub fn of(spec: &CatalogSpec, quantity: u32) -> Demand {
        let q = u64::from(quantity);
        let per = |v: Option<u32>| u64::from(v.unwrap_or(0)) * q;
        match spec.kind {
            CatalogKind::CloudHost => Demand {
                vcpu: per(spec.vcpu),
                memory_gib: per(spec.memory_gib),
                storage_gib: per(spec.disk_gib),
            },
            CatalogKind::Database => {
                Demand { vcpu: per(spec.vcpu), memory_gib: per(spec.memory_gib), storage_gib: 0 }
            }
            k if k.counts_gib() => Demand { vcpu: 0, memory_gib: 0, storage_gib: q },
            _ => Demand::default(),
        }
    }

    /// The share of `quota` this is, in whole percent, per class (a class
    /// the quota does not grant is 0 % when unused, else over any limit).
    pub fn percent_of(&self, quota: &Quota) -> QuotaShare {
        let pct = |used: u64, granted: u32| {
            if granted == 0 {
                if used == 0 { 0 } else { u64::MAX }
            } else {
                (used * 100).div_ceil(u64::from(granted))
            }
        };
        QuotaShare {
            vcpu: pct(self.vcpu, quota.vcpu),
            memory_gib: pct(self.memory_gib, quota.memory_gib),
            storage_gib: pct(self.storage_gib, quota.storage_gib),
        }
    }

    fn within(&self, quota: &Quota, percent: u32) -> bool {
        let cap = |granted: u32| u64::from(granted) * u64::from(percent);
        self.vcpu * 100 <= cap(quota.vcpu)
            && self.memory_gib * 100 <= cap(quota.memory_gib)
            && self.storage_gib * 100 <= cap(quota.storage_gib)
    }
}

/// Use of a quota in percent, per class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct QuotaShare {
    pub vcpu: u64,
    pub memory_gib: u64,
    pub storage_gib: u64,
}

impl QuotaShare {
    pub fn max(&self) -> u64 {
        self.vcpu.max(self.memory_gib).max(self.storage_gib)
    }
}

/// The outcome of the quota check of a request that asks for resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct QuotaCheck {
    /// Held now: live resources plus requests in flight.
    pub in_use: Demand,
    pub asked: Demand,
    /// The share of the quota in use once this request is granted.
    pub after: QuotaShare,
    /// Beyond the expansion limit, admitted only as a flagged exception.
    pub exception: bool,
}

fn describe(total: Demand, quota: &Quota) -> String {
    let share = total.percent_of(quota);
    let mut parts = Vec::new();
    for (name, used, granted, pct) in [
        ("vCPU", total.vcpu, quota.vcpu, share.vcpu),
        ("memory GiB", total.memory_gib, quota.memory_gib, share.memory_gib),
        ("storage GiB", total.storage_gib, quota.storage_gib, share.storage_gib),
    ] {
        if used > 0 {
            let pct = if pct == u64::MAX { "no quota".to_owned() } else { format!("{pct} %") };
            parts.push(format!("{name} {used} of {granted} ({pct})"));
        }
    }
    parts.join(", ")
}

/// Checks what a request asks for against the system's quota.
///
/// New and temporary resources stay within the quota (Art. 8, 9). An
/// expansion may take the system up to `limit_percent` of it (Art. 10: in
/// principle 120 %); beyond that only as an exception with a reason, which
/// the leader in charge must also approve.
pub fn check_quota(
    kind: RequestKind,
    quota: &Quota,
    in_use: Demand,
    asked: Demand,
    limit_percent: u32,
    exception_reason: Option<&str>,
) -> Result<QuotaCheck, FieldError> {
    let total = in_use + asked;
    let after = total.percent_of(quota);
    let ok = |exception| Ok(QuotaCheck { in_use, asked, after, exception });
    match kind {
        RequestKind::Expansion => {
            if total.within(quota, limit_percent) {
                return ok(false);
            }
            if exception_reason.is_some() {
                return ok(true);
            }
            Err(FieldError::new(
                "items",
                "quota_exceeded",
                format!(
                    "after this expansion the system would hold {}; the regulation allows at most {limit_percent} % of \
                     the quota (Art. 10). Ask for less, or mark the request as an exception with its reason: the leader \
                     in charge then decides on it too",
                    describe(total, quota)
                ),
            )
            .article(10))
        }
        _ => {
            if total.within(quota, 100) {
                return ok(false);
            }
            Err(FieldError::new(
                "items",
                "quota_exceeded",
                format!(
                    "the system would hold {}, more than its quota (Art. 8). Ask for less, or ask for an expansion \
                     (Art. 10) once these resources are in use",
                    describe(total, quota)
                ),
            )
            .article(8))
        }
    }
}

/// The longest temporary use (Art. 12): three months from hand-over.
pub fn temporary_expiry(handed_over: Date) -> Date {
    handed_over.checked_add(3.months()).unwrap_or(handed_over)
}

/// An extension must be asked at least two weeks before expiry (Art. 12).
pub const EXTENSION_NOTICE_DAYS: i64 = 14;

/// The last day an extension of resources expiring on `expires_on` may be asked.
pub fn last_day_to_extend(expires_on: Date) -> Date {
    expires_on.checked_sub(EXTENSION_NOTICE_DAYS.days()).unwrap_or(expires_on)
}

/// Checks an extension asked on `today` of resources expiring on
/// `expires_on`, to run until `until`: asked in time (Art. 12), later than
/// the present expiry, and at most three months beyond it.
pub fn check_extension(today: Date, expires_on: Date, until: Date) -> Result<(), FieldError> {
    let last = last_day_to_extend(expires_on);
    if today > last {
        return Err(FieldError::new(
            "resource_ids",
            "deadline_missed",
            format!(
                "an extension must be asked at least two weeks before the resources expire on {expires_on}, that is \
                 by {last} (Art. 12)"
            ),
        )
        .article(12));
    }
    if until <= expires_on {
        return Err(FieldError::new(
            "until",
            "until_not_later",
            format!("until must be after the present expiry, {expires_on}"),
        ));
    }
    let max = temporary_expiry(expires_on);
    if until > max {
        return Err(FieldError::new(
            "until",
            "extension_too_long",
            format!("temporary resources are extended by at most three months at a time, here until {max} (Art. 12)"),
        )
        .article(12));
    }
    Ok(())
}

/// What Yunzhi knows of a resource a reclaim or an extension names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NamedResource {
    pub id: i64,
    pub live: bool,
    pub temporary: bool,
    pub expires_on: Option<Date>,
}

/// Checks the resources a reclaim (Art. 11) or an extension (Art. 12)
/// names: each must be the system's and live; an extension names temporary
/// resources only, asked in time for the earliest expiry among them.
pub fn check_named_resources(
    kind: RequestKind,
    named: &[i64],
    found: &[NamedResource],
    today: Date,
    until: Option<Date>,
) -> Result<(), FieldError> {
    for id in named {
        match found.iter().find(|r| r.id == *id) {
            None => {
                return Err(FieldError::new(
                    "resource_ids",
                    "unknown_resource",
                    format!("the system has no resource {id}"),
                ));
            }
            Some(r) if !r.live => {
                return Err(FieldError::new(
                    "resource_ids",
                    "already_reclaimed",
                    format!("resource {id} is already reclaimed"),
                ));
            }
            Some(r) if kind == RequestKind::Extension && !r.temporary => {
                return Err(FieldError::new(
                    "resource_ids",
                    "not_temporary",
                    format!("resource {id} is not a temporary resource; only those expire and are extended"),
                ));
            }
            Some(_) => {}
        }
    }
    if kind == RequestKind::Extension {
        let expiry = found.iter().filter(|r| named.contains(&r.id)).filter_map(|r| r.expires_on).min();
        if let (Some(expiry), Some(until)) = (expiry, until) {
            check_extension(today, expiry, until)?;
        }
    }
    Ok(())
}

/// What happens to a temporary resource because its expiry has come (Art. 12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiryStep {
    /// At expiry: suspended, still recoverable by an extension.
    Suspend,
    /// After the grace period: reclaimed for good.
    Reclaim,
}

/// The step due today for a temporary resource expiring on `expires_on`,
/// `suspended` or not, with `grace_days` of grace after expiry.
pub fn expiry_step(today: Date, expires_on: Date, grace_days: i64, suspended: bool) -> Option<ExpiryStep> {
    let reclaim_on = expires_on.checked_add(grace_days.days()).unwrap_or(expires_on);
    if today >= reclaim_on {
        Some(ExpiryStep::Reclaim)
    } else if today >= expires_on && !suspended {
        Some(ExpiryStep::Suspend)
    } else {
        None
    }
}

/// When the notices before expiry go out: four and two weeks before.
pub fn expiry_notice_dates(expires_on: Date) -> [Date; 2] {
    [
        expires_on.checked_sub(28.days()).unwrap_or(expires_on),
        expires_on.checked_sub(14.days()).unwrap_or(expires_on),
    ]
}

/// One line of a request as a client sends it.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemInput {
    pub catalog_item_id: i64,
    /// Hosts for a cloud host; GiB for storage; instances or Mbps otherwise.
    pub quantity: i64,
}

/// A request as a client sends it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestInput {
    pub kind: String,
    pub system_id: i64,
    #[serde(default)]
    pub items: Vec<ItemInput>,
    #[serde(default)]
    pub justification: String,
    /// Reclaim: the unit confirms it has backed up and migrated its
    /// application and data (Art. 11).
    #[serde(default)]
    pub backup_confirmed: Option<bool>,
    /// Reclaim and extension: the resources concerned.
    #[serde(default)]
    pub resource_ids: Vec<i64>,
    /// Extension: the new expiry, `YYYY-MM-DD`.
    #[serde(default)]
    pub until: Option<String>,
    /// Expansion beyond the 120 % limit: why it is an exception (Art. 10).
    #[serde(default)]
    pub exception_reason: Option<String>,
}

/// A request checked for shape, before its facts (system, catalog,
/// resources) are looked at. Also what is stored as a request's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestDraft {
    pub kind: RequestKind,
    pub system_id: i64,
    pub items: Vec<(i64, u32)>,
    pub justification: String,
    pub backup_confirmed: bool,
    pub resource_ids: Vec<i64>,
    pub until: Option<Date>,
    pub exception_reason: Option<String>,
}

pub const MAX_ITEMS: usize = 20;

impl RequestDraft {
    pub fn parse(input: &RequestInput) -> Result<RequestDraft, Invalid> {
        let mut c = Checker::new();
        let kind = c.take(RequestKind::parse("kind", &input.kind));
        let justification = c.take(text::bounded("justification", &input.justification, 1, 2000).map_err(|e| {
            Invalid(
                e.0.into_iter()
                    .map(|mut f| {
                        if f.code == "required" {
                            f.detail = "justification must say why: the basis of the request (Art. 10 requires it \
                                        for an expansion)"
                                .into();
                        }
                        f
                    })
                    .collect(),
            )
        }));
        let mut items = Vec::new();
        if let Some(k) = kind {
            if k.asks_for_items() && input.items.is_empty() {
                c.push(FieldError::new(
                    "items",
                    "required",
                    "items must name what is asked for from the catalog",
                ));
            }
            if !k.asks_for_items() && !input.items.is_empty() {
                c.push(FieldError::new(
                    "items",
                    "not_allowed",
                    format!("a {} request names resources, not items", k.code()),
                ));
            }
            if k.names_resources() && input.resource_ids.is_empty() {
                c.push(FieldError::new(
                    "resource_ids",
                    "required",
                    "resource_ids must name the resources concerned",
                ));
            }
            if !k.names_resources() && !input.resource_ids.is_empty() {
                c.push(FieldError::new(
                    "resource_ids",
                    "not_allowed",
                    format!("a {} request asks for items", k.code()),
                ));
            }
            if k == RequestKind::Reclaim && input.backup_confirmed != Some(true) {
                c.push(
                    FieldError::new(
                        "backup_confirmed",
                        "backup_confirmation_required",
                        "reclaim is irreversible: confirm that the application and its data have been backed up and \
                         migrated (Art. 11)",
                    )
                    .article(11),
                );
            }
            if k == RequestKind::Extension && input.until.is_none() {
                c.push(FieldError::new("until", "required", "until must give the new expiry date"));
            }
            if k != RequestKind::Expansion && input.exception_reason.is_some() {
                c.push(FieldError::new(
                    "exception_reason",
                    "not_allowed",
                    "only an expansion can be an exception",
                ));
            }
        }
        if input.items.len() > MAX_ITEMS {
            c.push(FieldError::new(
                "items",
                "too_many",
                format!("a request may list at most {MAX_ITEMS} items"),
            ));
        }
        for (i, item) in input.items.iter().enumerate() {
            match u32::try_from(item.quantity) {
                Ok(q) if (1..=1_000_000).contains(&q) => items.push((item.catalog_item_id, q)),
                _ => c.push(FieldError::new(
                    format!("items[{i}].quantity"),
                    "out_of_range",
                    format!("items[{i}].quantity must be a whole number from 1 to 1000000"),
                )),
            }
        }
        let mut resource_ids = input.resource_ids.clone();
        resource_ids.sort_unstable();
        resource_ids.dedup();
        let until = input.until.as_deref().and_then(|u| c.take(parse_date("until", u)));
        let exception_reason =
            c.take(text::optional("exception_reason", input.exception_reason.as_deref(), 1000)).flatten();
        c.finish()?;
        Ok(RequestDraft {
            kind: kind.unwrap_or(RequestKind::New),
            system_id: input.system_id,
            items,
            justification: justification.unwrap_or_default(),
            backup_confirmed: input.backup_confirmed == Some(true),
            resource_ids,
            until,
            exception_reason,
        })
    }
}

/// Whether `system` may file a request of `kind` at all.
///
/// New and expansion requests need an approved project (Art. 9); temporary
/// resources are for work without one (Art. 12). A draft or retired system
/// asks for nothing.
pub fn check_system(kind: RequestKind, system: &System) -> Result<(), FieldError> {
    if !matches!(system.state, SystemState::Approved | SystemState::Online) {
        return Err(FieldError::new(
            "system_id",
            "system_not_approved",
            format!(
                "the system is {}: resources are requested for a system whose registration the Big Data Center has \
                 approved",
                system.state.code()
            ),
        ));
    }
    match kind {
        RequestKind::New | RequestKind::Expansion if system.project_ref.is_none() => Err(FieldError::new(
            "system_id",
            "project_required",
            "the system has no approved project: new resources and expansions need one (Art. 9); work without a \
             project asks for temporary resources (Art. 12)",
        )
        .article(9)),
        RequestKind::Temporary if system.project_ref.is_some() => Err(FieldError::new(
            "kind",
            "project_exists",
            "temporary resources are for work without an approved project (Art. 12); this system has one, so it \
             asks for new resources or an expansion",
        )
        .article(12)),
        _ => Ok(()),
    }
}

/// Whether a catalog item can be asked for by a system of `arch`.
pub fn check_item(index: usize, spec: &CatalogSpec, active: bool, arch: Arch) -> Result<(), FieldError> {
    let field = format!("items[{index}].catalog_item_id");
    if !active {
        return Err(FieldError::new(field, "item_withdrawn", format!("{} is no longer offered", spec.name)));
    }
    if spec.arch.is_some_and(|a| a != arch) {
        return Err(FieldError::new(
            field,
            "arch_mismatch",
            format!(
                "{} is for {}, the system runs on {}",
                spec.name,
                spec.arch.map(|a| a.code()).unwrap_or(""),
                arch.code()
            ),
        ));
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Approve,
    Reject,
    Return,
}

impl Decision {
    pub fn parse(field: &str, raw: &str) -> Result<Decision, Invalid> {
        match raw {
            "approve" => Ok(Decision::Approve),
            "reject" => Ok(Decision::Reject),
            "return" => Ok(Decision::Return),
            _ => Err(FieldError::new(
                field,
                "unknown_decision",
                format!("{field} must be approve, reject or return"),
            )
            .into()),
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Decision::Approve => "approve",
            Decision::Reject => "reject",
            Decision::Return => "return",
        }
    }
}

/// Why a decision was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecisionRefusal {
    /// The request is not waiting for a decision.
    NotInReview(RequestState),
    /// It is someone else's turn.
    NotYourTurn {
        turn: Role,
    },
    /// The decider's own step of this round is already decided (a racing
    /// or repeated decision): the request has moved on to `turn`.
    AlreadyDecided {
        turn: Role,
    },
    Invalid(Invalid),
}

/// What a decision does to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// On to the next step.
    Next {
        step: usize,
    },
    /// The last step approved: carry it out.
    Approved,
    Rejected,
    Returned,
}

/// Applies `decision` by someone holding `roles` to a request at `step` of
/// `route`. Rejecting and returning need a reason.
pub fn decide(
    state: RequestState,
    route: &[Role],
    step: usize,
    roles: &[Role],
    decision: Decision,
    comment: &str,
) -> Result<Outcome, DecisionRefusal> {
    if state != RequestState::InReview {
        return Err(DecisionRefusal::NotInReview(state));
    }
    let Some(turn) = route.get(step).copied() else {
        return Err(DecisionRefusal::NotInReview(state));
    };
    if !roles.contains(&turn) {
        if route[..step].iter().any(|r| roles.contains(r)) {
            return Err(DecisionRefusal::AlreadyDecided { turn });
        }
        return Err(DecisionRefusal::NotYourTurn { turn });
    }
    if decision != Decision::Approve && comment.trim().is_empty() {
        return Err(DecisionRefusal::Invalid(
            FieldError::new(
                "comment",
                "required",
                "a rejection or a return for changes gives its reason in comment",
            )
            .into(),
        ));
    }
    Ok(match decision {
        Decision::Approve if step + 1 < route.len() => Outcome::Next { step: step + 1 },
        Decision::Approve => Outcome::Approved,
        Decision::Reject => Outcome::Rejected,
        Decision::Return => Outcome::Returned,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::default_catalog;

    fn quota() -> Quota {
        Quota { vcpu: 32, memory_gib: 64, storage_gib: 2048 }
    }

    fn d(y: i16, m: i8, day: i8) -> Date {
        Date::constant(y, m, day)
    }

    #[test]
    fn four_hosts_of_4_vcpu_and_a_terabyte_use_half_the_enrolment_quota() {
        let host = default_catalog().into_iter().find(|i| i.code == "ecs.x86.c4m8").unwrap();
        let ssd = default_catalog().into_iter().find(|i| i.code == "evs.ssd").unwrap();
        let asked = Demand::of(&host, 4) + Demand::of(&ssd, 624);
        assert_eq!(asked, Demand { vcpu: 16, memory_gib: 32, storage_gib: 1024 });
        let check = check_quota(RequestKind::New, &quota(), Demand::default(), asked, 120, None).unwrap();
        assert_eq!(check.after.max(), 50);
    }

    #[test]
    fn an_expansion_to_exactly_120_percent_of_quota_passes() {
        let in_use = Demand { vcpu: 32, memory_gib: 0, storage_gib: 0 };
        let asked = Demand { vcpu: 6, memory_gib: 0, storage_gib: 0 };
        let check = check_quota(
            RequestKind::Expansion,
            &Quota { vcpu: 32, memory_gib: 1, storage_gib: 1 },
            in_use,
            asked,
            120,
            None,
        );
        // 38.4 would be 120 %; 38 is within.
        assert!(check.is_ok());
        let exact = check_quota(
            RequestKind::Expansion,
            &Quota { vcpu: 40, memory_gib: 1, storage_gib: 1 },
            Demand { vcpu: 40, ..Default::default() },
            Demand { vcpu: 8, ..Default::default() },
            120,
            None,
        );
        assert_eq!(exact.unwrap().after.vcpu, 120);
    }

    #[test]
    fn an_expansion_past_120_percent_of_quota_is_refused_citing_article_10() {
        let e = check_quota(
            RequestKind::Expansion,
            &Quota { vcpu: 40, memory_gib: 1, storage_gib: 1 },
            Demand { vcpu: 40, ..Default::default() },
            Demand { vcpu: 9, ..Default::default() },
            120,
            None,
        )
        .unwrap_err();
        assert_eq!((e.code, e.article), ("quota_exceeded", Some(10)));
        assert!(e.detail.contains("123 %"), "{}", e.detail);
    }

    #[test]
    fn an_expansion_past_the_limit_with_a_reason_is_a_flagged_exception() {
        let check = check_quota(
            RequestKind::Expansion,
            &quota(),
            Demand { vcpu: 32, ..Default::default() },
            Demand { vcpu: 8, ..Default::default() },
            120,
            Some("enrolment peak"),
        )
        .unwrap();
        assert!(check.exception);
        assert_eq!(route(RequestKind::Expansion, true).last(), Some(&Role::BdcLeader));
        assert_eq!(route(RequestKind::Expansion, false).last(), Some(&Role::InfraChief));
    }

    #[test]
    fn new_resources_beyond_the_quota_are_refused_citing_article_8() {
        let e = check_quota(
            RequestKind::New,
            &quota(),
            Demand { vcpu: 30, ..Default::default() },
            Demand { vcpu: 4, ..Default::default() },
            120,
            None,
        )
        .unwrap_err();
        assert_eq!((e.code, e.article), ("quota_exceeded", Some(8)));
    }

    #[test]
    fn a_class_the_quota_does_not_grant_cannot_be_asked_for() {
        let q = Quota { vcpu: 8, memory_gib: 16, storage_gib: 0 };
        assert!(
            check_quota(
                RequestKind::New,
                &q,
                Demand::default(),
                Demand { storage_gib: 1, ..Default::default() },
                120,
                None
            )
            .is_err()
        );
    }

    #[test]
    fn the_three_levels_decide_in_order() {
        let r = route(RequestKind::New, false);
        let s = RequestState::InReview;
        assert_eq!(
            decide(s, &r, 0, &[Role::CloudAdmin], Decision::Approve, ""),
            Ok(Outcome::Next { step: 1 })
        );
        assert_eq!(
            decide(s, &r, 1, &[Role::CloudAdmin], Decision::Approve, ""),
            Err(DecisionRefusal::AlreadyDecided { turn: Role::InfraChief })
        );
        assert_eq!(
            decide(s, &r, 0, &[Role::BdcLeader], Decision::Approve, ""),
            Err(DecisionRefusal::NotYourTurn { turn: Role::CloudAdmin })
        );
        assert_eq!(
            decide(s, &r, 1, &[Role::InfraChief], Decision::Approve, ""),
            Ok(Outcome::Next { step: 2 })
        );
        assert_eq!(decide(s, &r, 2, &[Role::BdcLeader], Decision::Approve, ""), Ok(Outcome::Approved));
    }

    #[test]
    fn a_rejection_or_return_needs_a_reason_and_a_decided_request_takes_no_more_decisions() {
        let r = route(RequestKind::Reclaim, false);
        assert!(matches!(
            decide(RequestState::InReview, &r, 0, &[Role::CloudAdmin], Decision::Reject, " "),
            Err(DecisionRefusal::Invalid(_))
        ));
        assert_eq!(
            decide(RequestState::InReview, &r, 0, &[Role::CloudAdmin], Decision::Return, "add the data plan"),
            Ok(Outcome::Returned)
        );
        assert_eq!(
            decide(RequestState::Returned, &r, 0, &[Role::CloudAdmin], Decision::Approve, ""),
            Err(DecisionRefusal::NotInReview(RequestState::Returned))
        );
    }

    #[test]
    fn an_extension_asked_15_days_before_expiry_is_in_time_and_13_days_is_not() {
        let expiry = d(2026, 6, 3);
        let until = d(2026, 9, 3);
        assert!(check_extension(d(2026, 5, 19), expiry, until).is_ok());
        assert!(check_extension(d(2026, 5, 20), expiry, until).is_ok(), "exactly two weeks before");
        let e = check_extension(d(2026, 5, 21), expiry, until).unwrap_err();
        assert_eq!((e.code, e.article), ("deadline_missed", Some(12)));
        assert!(e.detail.contains("2026-05-20"), "the missed date is named: {}", e.detail);
    }

    #[test]
    fn an_extension_runs_at_most_three_months_beyond_expiry() {
        let expiry = d(2026, 6, 3);
        assert!(check_extension(d(2026, 5, 1), expiry, d(2026, 9, 3)).is_ok());
        assert_eq!(
            check_extension(d(2026, 5, 1), expiry, d(2026, 9, 4)).unwrap_err().code,
            "extension_too_long"
        );
        assert_eq!(
            check_extension(d(2026, 5, 1), expiry, d(2026, 6, 3)).unwrap_err().code,
            "until_not_later"
        );
    }

    #[test]
    fn borrowed_hosts_handed_over_on_3_march_expire_on_3_june_with_notices_on_6_and_20_may() {
        let expiry = temporary_expiry(d(2026, 3, 3));
        assert_eq!(expiry, d(2026, 6, 3));
        assert_eq!(expiry_notice_dates(expiry), [d(2026, 5, 6), d(2026, 5, 20)]);
        assert_eq!(last_day_to_extend(expiry), d(2026, 5, 20));
    }

    #[test]
    fn borrowed_resources_are_suspended_at_expiry_and_reclaimed_after_the_grace() {
        let expiry = d(2026, 6, 3);
        assert_eq!(expiry_step(d(2026, 6, 2), expiry, 14, false), None);
        assert_eq!(expiry_step(d(2026, 6, 3), expiry, 14, false), Some(ExpiryStep::Suspend));
        assert_eq!(expiry_step(d(2026, 6, 10), expiry, 14, true), None, "already suspended");
        assert_eq!(expiry_step(d(2026, 6, 17), expiry, 14, true), Some(ExpiryStep::Reclaim));
    }

    #[test]
    fn only_the_systems_live_temporary_resources_are_extended() {
        let found = [
            NamedResource { id: 1, live: true, temporary: true, expires_on: Some(d(2026, 6, 3)) },
            NamedResource { id: 2, live: false, temporary: true, expires_on: Some(d(2026, 6, 3)) },
            NamedResource { id: 3, live: true, temporary: false, expires_on: None },
        ];
        let today = d(2026, 5, 1);
        let until = Some(d(2026, 9, 3));
        assert!(check_named_resources(RequestKind::Extension, &[1], &found, today, until).is_ok());
        let code = |ids: &[i64]| {
            check_named_resources(RequestKind::Extension, ids, &found, today, until).unwrap_err().code
        };
        assert_eq!(code(&[9]), "unknown_resource");
        assert_eq!(code(&[2]), "already_reclaimed");
        assert_eq!(code(&[3]), "not_temporary");
        assert!(check_named_resources(RequestKind::Reclaim, &[1, 3], &found, today, None).is_ok());
    }

    #[test]
    fn a_reclaim_without_backup_confirmation_is_refused_naming_the_field() {
        let input: RequestInput = serde_json::from_value(serde_json::json!({
            "kind": "reclaim", "system_id": 1, "resource_ids": [3], "justification": "retired"
        }))
        .unwrap();
        let e = RequestDraft::parse(&input).unwrap_err();
        assert_eq!(
            (e.first().field.as_str(), e.first().code, e.first().article),
            ("backup_confirmed", "backup_confirmation_required", Some(11))
        );
    }

    #[test]
    fn temporary_resources_are_for_systems_without_a_project_and_new_ones_need_one() {
        let mut s = System::new(&crate::system::NewSystem {
            unit_id: crate::ids::UnitId(1),
            name: "普查".into(),
            mlps_level: crate::system::MlpsLevel::parse("m", 1).unwrap(),
            project_ref: None,
            arch: Arch::X86_64,
            quota: quota(),
            quota_basis: "x".into(),
            periodic_load: None,
            description: None,
        });
        s.state = SystemState::Approved;
        assert!(check_system(RequestKind::Temporary, &s).is_ok());
        assert_eq!(check_system(RequestKind::New, &s).unwrap_err().code, "project_required");
        s.project_ref = Some("青发改〔2026〕1号".into());
        assert_eq!(check_system(RequestKind::Temporary, &s).unwrap_err().code, "project_exists");
        s.state = SystemState::Draft;
        assert_eq!(check_system(RequestKind::New, &s).unwrap_err().code, "system_not_approved");
    }

    #[test]
    fn an_arm_host_cannot_be_asked_for_an_x86_system() {
        let arm = default_catalog().into_iter().find(|i| i.arch == Some(Arch::Aarch64)).unwrap();
        assert_eq!(check_item(0, &arm, true, Arch::X86_64).unwrap_err().code, "arch_mismatch");
        assert!(check_item(0, &arm, true, Arch::Aarch64).is_ok());
        assert_eq!(check_item(0, &arm, false, Arch::Aarch64).unwrap_err().code, "item_withdrawn");
    }

    #[test]
    fn the_deadline_states_follow_the_calendar() {
        let cal = Calendar::new(Calendar::shipped().unwrap());
        let due = d(2026, 10, 15);
        assert_eq!(sla(&cal, d(2026, 10, 9), due, None), Sla::OnTime);
        assert_eq!(sla(&cal, d(2026, 10, 14), due, None), Sla::DueSoon);
        assert_eq!(sla(&cal, d(2026, 10, 16), due, None), Sla::Overdue);
        assert_eq!(sla(&cal, d(2026, 10, 16), due, Some(d(2026, 10, 15))), Sla::Met);
        assert_eq!(sla(&cal, d(2026, 10, 16), due, Some(d(2026, 10, 16))), Sla::Missed);
    }
}
