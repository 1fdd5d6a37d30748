//! Information systems (信息系统 / 上云项目): what a unit runs on the cloud,
//! with its MLPS level, project approval, quota and declared periodic load.

use jiff::civil::Date;
use serde::{Deserialize, Deserializer, Serialize};

use crate::ids::UnitId;
use crate::invalid::{Checker, FieldError, Invalid};
use crate::text;

/// 等保级别. The district cloud hosts levels 1 to 3 only (Art. 5, 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct MlpsLevel(u8);

impl MlpsLevel {
    pub fn parse(field: &str, raw: i64) -> Result<MlpsLevel, Invalid> {
        match raw {
            1..=3 => Ok(MlpsLevel(raw as u8)),
            _ => Err(FieldError::new(
                field,
                "mlps_level_out_of_range",
                format!(
                    "{field} must be 1, 2 or 3: the district e-government cloud hosts systems of MLPS level 3 and below only (Art. 5)"
                ),
            )
            .article(5)
            .into()),
        }
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

/// The processor architecture a system runs on; the district's cloud has both (Art. 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Arch {
    #[serde(rename = "x86_64")]
    X86_64,
    #[serde(rename = "aarch64")]
    Aarch64,
}

impl Arch {
    pub fn code(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }

    pub fn parse(field: &str, raw: &str) -> Result<Arch, Invalid> {
        match raw {
            "x86_64" => Ok(Arch::X86_64),
            "aarch64" => Ok(Arch::Aarch64),
            _ => {
                Err(FieldError::new(field, "unknown_arch", format!("{field} must be `x86_64` or `aarch64`"))
                    .into())
            }
        }
    }
}

/// The resources a system may hold (配额), fixed with its project approval (Art. 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
pub struct Quota {
    pub vcpu: u32,
    pub memory_gib: u32,
    pub storage_gib: u32,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuotaInput {
    pub vcpu: i64,
    pub memory_gib: i64,
    pub storage_gib: i64,
}

/// Upper bounds that catch a typo (an extra zero) rather than limit anyone:
/// far above what one district system could be granted.
const QUOTA_LIMITS: [(&str, i64); 3] = [("vcpu", 4096), ("memory_gib", 32768), ("storage_gib", 4_194_304)];

impl Quota {
    pub fn parse(input: &QuotaInput) -> Result<Quota, Invalid> {
        let mut c = Checker::new();
        let values = [input.vcpu, input.memory_gib, input.storage_gib];
        let mut out = [0u32; 3];
        for (i, ((name, max), value)) in QUOTA_LIMITS.iter().zip(values).enumerate() {
            if !(0..=*max).contains(&value) {
                c.push(FieldError::new(
                    format!("quota.{name}"),
                    "out_of_range",
                    format!("quota.{name} must be between 0 and {max}, it is {value}"),
                ));
            } else {
                out[i] = value as u32;
            }
        }
        if c.is_clean() && out.iter().all(|v| *v == 0) {
            c.push(
                FieldError::new(
                    "quota",
                    "quota_empty",
                    "quota must grant at least one resource class (Art. 8)",
                )
                .article(8),
            );
        }
        c.finish()?;
        Ok(Quota { vcpu: out[0], memory_gib: out[1], storage_gib: out[2] })
    }
}

/// A declared periodic load (周期性负载, Art. 8): busy in some months, quiet in
/// the others. The efficiency analysis must not call the quiet months idle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PeriodicLoad {
    pub description: String,
    pub months: Vec<u8>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PeriodicLoadInput {
    pub description: String,
    pub months: Vec<i64>,
}

impl PeriodicLoad {
    pub fn parse(input: &PeriodicLoadInput) -> Result<PeriodicLoad, Invalid> {
        let mut c = Checker::new();
        let description = c.take(text::bounded("periodic_load.description", &input.description, 1, 200));
        let mut months = Vec::new();
        for (i, m) in input.months.iter().enumerate() {
            match u8::try_from(*m) {
                Ok(m @ 1..=12) => months.push(m),
                _ => c.push(FieldError::new(
                    format!("periodic_load.months[{i}]"),
                    "month_out_of_range",
                    format!("periodic_load.months[{i}] must be a month from 1 to 12, it is {m}"),
                )),
            }
        }
        months.sort_unstable();
        months.dedup();
        if c.is_clean() && months.is_empty() {
            c.push(
                FieldError::new(
                    "periodic_load.months",
                    "required",
                    "periodic_load.months must name the busy months (Art. 8)",
                )
                .article(8),
            );
        }
        if months.len() == 12 {
            c.push(FieldError::new(
                "periodic_load.months",
                "not_periodic",
                "a load that is busy in all twelve months is not periodic; leave periodic_load empty",
            ));
        }
        c.finish()?;
        Ok(PeriodicLoad { description: description.unwrap_or_default(), months })
    }

    pub fn is_busy_in(&self, month: i8) -> bool {
        u8::try_from(month).is_ok_and(|m| self.months.contains(&m))
    }
}

/// Where a system stands in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SystemState {
    /// Registered by the unit, not yet checked by the Big Data Center.
    Draft,
    /// Registration and quota accepted; resources may be requested.
    Approved,
    /// Passed the go-live security gate (Art. 22) and serving.
    Online,
    /// No longer in use. Final.
    Retired,
}

impl SystemState {
    pub fn code(self) -> &'static str {
        match self {
            SystemState::Draft => "draft",
            SystemState::Approved => "approved",
            SystemState::Online => "online",
            SystemState::Retired => "retired",
        }
    }

    pub fn parse(field: &str, raw: &str) -> Result<SystemState, Invalid> {
        match raw {
            "draft" => Ok(SystemState::Draft),
            "approved" => Ok(SystemState::Approved),
            "online" => Ok(SystemState::Online),
            "retired" => Ok(SystemState::Retired),
            _ => Err(FieldError::new(
                field,
                "unknown_state",
                format!("{field} must be one of draft, approved, online, retired"),
            )
            .into()),
        }
    }

    /// Whether a system may move from `self` to `to`, given its go-live record.
    pub fn check_transition(self, to: SystemState, golive: &GoLiveChecks) -> Result<(), Invalid> {
        use SystemState::*;
        let allowed = matches!(
            (self, to),
            (Draft, Approved) | (Approved, Online) | (Draft | Approved | Online, Retired)
        );
        if !allowed {
            return Err(FieldError::new(
                "state",
                "invalid_transition",
                format!("a system cannot move from {} to {}", self.code(), to.code()),
            )
            .into());
        }
        if to == Online {
            golive.check_complete()?;
        }
        Ok(())
    }
}

/// The go-live gate of Art. 22: before a system goes online its unit records
/// a security self-check, a security assessment and hardening.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
pub struct GoLiveChecks {
    #[schema(value_type = Option<String>, format = Date)]
    pub self_check_on: Option<Date>,
    #[schema(value_type = Option<String>, format = Date)]
    pub assessment_on: Option<Date>,
    #[schema(value_type = Option<String>, format = Date)]
    pub hardening_on: Option<Date>,
}

#[derive(Debug, Clone, Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GoLiveInput {
    #[serde(default)]
    pub self_check_on: Option<String>,
    #[serde(default)]
    pub assessment_on: Option<String>,
    #[serde(default)]
    pub hardening_on: Option<String>,
}

impl GoLiveChecks {
    pub fn parse(input: &GoLiveInput, today: Date) -> Result<GoLiveChecks, Invalid> {
        let mut c = Checker::new();
        let mut one = |name: &str, raw: &Option<String>| {
            let field = format!("golive.{name}");
            raw.as_deref().and_then(|raw| c.take(parse_past_date(&field, raw, today)))
        };
        let self_check_on = one("self_check_on", &input.self_check_on);
        let assessment_on = one("assessment_on", &input.assessment_on);
        let hardening_on = one("hardening_on", &input.hardening_on);
        c.finish()?;
        Ok(GoLiveChecks { self_check_on, assessment_on, hardening_on })
    }

    pub fn check_complete(&self) -> Result<(), Invalid> {
        let mut c = Checker::new();
        for (name, value, what) in [
            ("self_check_on", self.self_check_on, "security self-check"),
            ("assessment_on", self.assessment_on, "security assessment"),
            ("hardening_on", self.hardening_on, "security hardening"),
        ] {
            if value.is_none() {
                c.push(
                    FieldError::new(
                        format!("golive.{name}"),
                        "golive_check_missing",
                        format!("the {what} must be recorded before the system goes online (Art. 22)"),
                    )
                    .article(22),
                );
            }
        }
        c.finish()
    }
}

/// A `YYYY-MM-DD` date that is not after `today`.
pub fn parse_past_date(field: &str, raw: &str, today: Date) -> Result<Date, Invalid> {
    let date = parse_date(field, raw)?;
    if date > today {
        return Err(FieldError::new(
            field,
            "date_in_future",
            format!("{field} cannot be after today ({today})"),
        )
        .into());
    }
    Ok(date)
}

pub fn parse_date(field: &str, raw: &str) -> Result<Date, Invalid> {
    let valid_shape = raw.len() == 10 && raw.as_bytes()[4] == b'-' && raw.as_bytes()[7] == b'-';
    match raw.parse::<Date>() {
        Ok(d) if valid_shape => Ok(d),
        _ => Err(FieldError::new(field, "date_format", format!("{field} must be a date written YYYY-MM-DD"))
            .into()),
    }
}

/// A system as a client asks to register it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SystemInput {
    #[serde(default)]
    pub unit_id: Option<i64>,
    pub name: String,
    pub mlps_level: i64,
    #[serde(default)]
    pub classified: bool,
    #[serde(default)]
    pub project_ref: Option<String>,
    pub arch: String,
    pub quota: QuotaInput,
    pub quota_basis: String,
    #[serde(default)]
    pub periodic_load: Option<PeriodicLoadInput>,
    #[serde(default)]
    pub description: Option<String>,
}

/// A checked new system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSystem {
    pub unit_id: UnitId,
    pub name: String,
    pub mlps_level: MlpsLevel,
    pub project_ref: Option<String>,
    pub arch: Arch,
    pub quota: Quota,
    pub quota_basis: String,
    pub periodic_load: Option<PeriodicLoad>,
    pub description: Option<String>,
}

fn refuse_classified(c: &mut Checker, classified: bool) {
    if classified {
        c.push(
            FieldError::new(
                "classified",
                "classified_refused",
                "classified (涉密) systems may not use the district e-government cloud, which serves non-classified systems only (Art. 5, 7)",
            )
            .article(5),
        );
    }
}

impl NewSystem {
    /// Checks a registration; `unit_id` is the unit the caller registers for.
    pub fn parse(input: &SystemInput, unit_id: UnitId) -> Result<NewSystem, Invalid> {
        let mut c = Checker::new();
        let name = c.take(text::bounded("name", &input.name, 2, 100));
        let mlps_level = c.take(MlpsLevel::parse("mlps_level", input.mlps_level));
        refuse_classified(&mut c, input.classified);
        let project_ref = c.take(text::optional("project_ref", input.project_ref.as_deref(), 64)).flatten();
        let arch = c.take(Arch::parse("arch", &input.arch));
        let quota = c.take(Quota::parse(&input.quota));
        let quota_basis = c.take(quota_basis(&input.quota_basis));
        let periodic_load = input.periodic_load.as_ref().and_then(|p| c.take(PeriodicLoad::parse(p)));
        let description = c.take(text::optional("description", input.description.as_deref(), 1000)).flatten();
        c.finish()?;
        match (name, mlps_level, arch, quota, quota_basis) {
            (Some(name), Some(mlps_level), Some(arch), Some(quota), Some(quota_basis)) => Ok(NewSystem {
                unit_id,
                name,
                mlps_level,
                project_ref,
                arch,
                quota,
                quota_basis,
                periodic_load,
                description,
            }),
            // Every `None` above pushed an error, so `finish` returned early.
            _ => Err(Invalid::one(FieldError::new("", "invalid", "invalid system"))),
        }
    }
}

fn quota_basis(raw: &str) -> Result<String, Invalid> {
    text::bounded("quota_basis", raw, 1, 500).map_err(|e| {
        Invalid(
            e.0.into_iter()
                .map(|mut f| {
                    if f.code == "required" {
                        f.detail = "quota_basis must state the basis of the quota, as the project approval does (Art. 8)".into();
                        f.article = Some(8);
                    }
                    f
                })
                .collect(),
        )
    })
}

/// Deserialises a field that may be absent (leave as is), `null` (clear) or a value (set).
fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// A change to a system as a client sends it; absent fields stay as they are.
#[derive(Debug, Clone, Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SystemPatchInput {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub mlps_level: Option<i64>,
    #[serde(default)]
    pub classified: Option<bool>,
    #[serde(default, deserialize_with = "double_option")]
    pub project_ref: Option<Option<String>>,
    #[serde(default)]
    pub arch: Option<String>,
    #[serde(default)]
    pub quota: Option<QuotaInput>,
    #[serde(default)]
    pub quota_basis: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    pub periodic_load: Option<Option<PeriodicLoadInput>>,
    #[serde(default, deserialize_with = "double_option")]
    pub description: Option<Option<String>>,
    #[serde(default)]
    pub golive: Option<GoLiveInput>,
    #[serde(default)]
    pub state: Option<String>,
}

/// A checked change.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SystemPatch {
    pub name: Option<String>,
    pub mlps_level: Option<MlpsLevel>,
    pub project_ref: Option<Option<String>>,
    pub arch: Option<Arch>,
    pub quota: Option<Quota>,
    pub quota_basis: Option<String>,
    pub periodic_load: Option<Option<PeriodicLoad>>,
    pub description: Option<Option<String>>,
    pub golive: Option<GoLiveChecks>,
    pub state: Option<SystemState>,
}

impl SystemPatch {
    pub fn parse(input: &SystemPatchInput, today: Date) -> Result<SystemPatch, Invalid> {
        let mut c = Checker::new();
        let name = input.name.as_deref().and_then(|n| c.take(text::bounded("name", n, 2, 100)));
        let mlps_level = input.mlps_level.and_then(|l| c.take(MlpsLevel::parse("mlps_level", l)));
        refuse_classified(&mut c, input.classified == Some(true));
        let project_ref =
            input.project_ref.as_ref().and_then(|p| c.take(text::optional("project_ref", p.as_deref(), 64)));
        let arch = input.arch.as_deref().and_then(|a| c.take(Arch::parse("arch", a)));
        let quota = input.quota.as_ref().and_then(|q| c.take(Quota::parse(q)));
        let quota_basis = input.quota_basis.as_deref().and_then(|b| c.take(quota_basis(b)));
        let periodic_load = match &input.periodic_load {
            None => None,
            Some(None) => Some(None),
            Some(Some(p)) => c.take(PeriodicLoad::parse(p)).map(Some),
        };
        let description = input
            .description
            .as_ref()
            .and_then(|d| c.take(text::optional("description", d.as_deref(), 1000)));
        let golive = input.golive.as_ref().and_then(|g| c.take(GoLiveChecks::parse(g, today)));
        let state = input.state.as_deref().and_then(|s| c.take(SystemState::parse("state", s)));
        c.finish()?;
        Ok(SystemPatch {
            name,
            mlps_level,
            project_ref,
            arch,
            quota,
            quota_basis,
            periodic_load,
            description,
            golive,
            state,
        })
    }

    pub fn is_empty(&self) -> bool {
        *self == SystemPatch::default()
    }

    /// Whether the change touches what the Big Data Center accepted on
    /// approval: the quota and its basis, the architecture, the MLPS level.
    pub fn touches_approved_terms(&self) -> bool {
        self.quota.is_some() || self.quota_basis.is_some() || self.arch.is_some() || self.mlps_level.is_some()
    }
}

/// Whether a unit may still edit the approved terms of a system in `state`
/// itself. Once approved, the quota changes only through the Big Data Center
/// (an expansion request, Art. 10, or its cloud resource admin).
pub fn unit_may_edit_terms(state: SystemState) -> bool {
    state == SystemState::Draft
}

/// An information system's registered facts: everything but its identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct System {
    pub name: String,
    #[schema(value_type = u8)]
    pub mlps_level: MlpsLevel,
    pub project_ref: Option<String>,
    #[schema(value_type = String)]
    pub arch: Arch,
    #[schema(value_type = Object)]
    pub quota: Quota,
    pub quota_basis: String,
    #[schema(value_type = Option<Object>)]
    pub periodic_load: Option<PeriodicLoad>,
    pub description: Option<String>,
    #[schema(value_type = String)]
    pub state: SystemState,
    #[schema(value_type = Object)]
    pub golive: GoLiveChecks,
}

/// Who is editing a system: its own unit's staff, or the Big Data Center.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Editor {
    UnitStaff,
    CloudAdmin,
}

/// Why an edit was refused: bad values, or a change this editor may not make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EditRefusal {
    Invalid(Invalid),
    NotAllowed(FieldError),
}

impl From<Invalid> for EditRefusal {
    fn from(e: Invalid) -> Self {
        EditRefusal::Invalid(e)
    }
}

impl System {
    pub fn new(n: &NewSystem) -> System {
        System {
            name: n.name.clone(),
            mlps_level: n.mlps_level,
            project_ref: n.project_ref.clone(),
            arch: n.arch,
            quota: n.quota,
            quota_basis: n.quota_basis.clone(),
            periodic_load: n.periodic_load.clone(),
            description: n.description.clone(),
            state: SystemState::Draft,
            golive: GoLiveChecks::default(),
        }
    }

    /// The system after `patch` by `editor`, or why not.
    ///
    /// * A retired system is not edited.
    /// * The approved terms (quota and basis, architecture, MLPS level,
    ///   project reference) are the unit's to set while the system is a
    ///   draft; afterwards only the Big Data Center changes them, and a unit
    ///   asks for more through an expansion request (Art. 10).
    /// * The Big Data Center approves a draft; the unit or the Big Data
    ///   Center takes it online (after the go-live gate, Art. 22) or retires it.
    pub fn apply(&self, patch: &SystemPatch, editor: Editor) -> Result<System, EditRefusal> {
        if self.state == SystemState::Retired {
            return Err(EditRefusal::NotAllowed(FieldError::new(
                "state",
                "system_retired",
                "a retired system can no longer be changed",
            )));
        }
        let terms = patch.touches_approved_terms() || patch.project_ref.is_some();
        if editor == Editor::UnitStaff && terms && !unit_may_edit_terms(self.state) {
            let field = if patch.quota.is_some() { "quota" } else { "state" };
            return Err(EditRefusal::NotAllowed(
                FieldError::new(
                    field,
                    "terms_locked",
                    "once a system is approved its quota, basis, architecture, MLPS level and project reference \
                     change only through the Big Data Center; ask for more with an expansion request (Art. 10)",
                )
                .article(10),
            ));
        }
        if patch.state == Some(SystemState::Approved) && editor != Editor::CloudAdmin {
            return Err(EditRefusal::NotAllowed(FieldError::new(
                "state",
                "approval_by_big_data_center",
                "only the Big Data Center's cloud resource admin approves a system's registration (Art. 4)",
            )));
        }
        let mut next = self.clone();
        if let Some(v) = &patch.name {
            next.name = v.clone();
        }
        if let Some(v) = patch.mlps_level {
            next.mlps_level = v;
        }
        if let Some(v) = &patch.project_ref {
            next.project_ref = v.clone();
        }
        if let Some(v) = patch.arch {
            next.arch = v;
        }
        if let Some(v) = patch.quota {
            next.quota = v;
        }
        if let Some(v) = &patch.quota_basis {
            next.quota_basis = v.clone();
        }
        if let Some(v) = &patch.periodic_load {
            next.periodic_load = v.clone();
        }
        if let Some(v) = &patch.description {
            next.description = v.clone();
        }
        if let Some(g) = patch.golive {
            // Recorded checks are kept when a later patch names only some of them.
            next.golive = GoLiveChecks {
                self_check_on: g.self_check_on.or(next.golive.self_check_on),
                assessment_on: g.assessment_on.or(next.golive.assessment_on),
                hardening_on: g.hardening_on.or(next.golive.hardening_on),
            };
        }
        if let Some(to) = patch.state
            && to != self.state
        {
            self.state.check_transition(to, &next.golive)?;
            next.state = to;
        }
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> SystemInput {
        serde_json::from_value(serde_json::json!({
            "name": "招生入学系统",
            "mlps_level": 2,
            "project_ref": "青发改〔2026〕12号",
            "arch": "x86_64",
            "quota": {"vcpu": 32, "memory_gib": 64, "storage_gib": 2048},
            "quota_basis": "feasibility study §4.2",
            "periodic_load": {"description": "enrolment", "months": [8, 7]}
        }))
        .unwrap()
    }

    #[test]
    fn the_enrolment_system_of_the_stories_registers() {
        let s = NewSystem::parse(&input(), UnitId(1)).unwrap();
        assert_eq!(s.quota, Quota { vcpu: 32, memory_gib: 64, storage_gib: 2048 });
        assert_eq!(s.periodic_load.unwrap().months, vec![7, 8]);
    }

    #[test]
    fn an_mlps_level_above_three_is_refused_citing_article_5() {
        let mut i = input();
        i.mlps_level = 4;
        let e = NewSystem::parse(&i, UnitId(1)).unwrap_err();
        assert_eq!(
            (e.first().field.as_str(), e.first().code, e.first().article),
            ("mlps_level", "mlps_level_out_of_range", Some(5))
        );
    }

    #[test]
    fn a_classified_system_is_refused() {
        let mut i = input();
        i.classified = true;
        assert_eq!(NewSystem::parse(&i, UnitId(1)).unwrap_err().first().code, "classified_refused");
    }

    #[test]
    fn a_quota_without_its_basis_is_refused_citing_article_8() {
        let mut i = input();
        i.quota_basis = " ".into();
        let e = NewSystem::parse(&i, UnitId(1)).unwrap_err();
        assert_eq!((e.first().field.as_str(), e.first().article), ("quota_basis", Some(8)));
    }

    #[test]
    fn a_negative_or_absurd_quota_is_refused_per_field() {
        let mut i = input();
        i.quota = QuotaInput { vcpu: -1, memory_gib: 64, storage_gib: 99_999_999 };
        let fields: Vec<_> =
            NewSystem::parse(&i, UnitId(1)).unwrap_err().0.into_iter().map(|e| e.field).collect();
        assert_eq!(fields, ["quota.vcpu", "quota.storage_gib"]);
    }

    #[test]
    fn an_all_zero_quota_is_refused() {
        let q = Quota::parse(&QuotaInput { vcpu: 0, memory_gib: 0, storage_gib: 0 });
        assert_eq!(q.unwrap_err().first().code, "quota_empty");
    }

    #[test]
    fn a_periodic_load_needs_real_months_and_is_not_all_year() {
        let bad = PeriodicLoadInput { description: "tax".into(), months: vec![0, 13] };
        assert_eq!(PeriodicLoad::parse(&bad).unwrap_err().0.len(), 2);
        let all = PeriodicLoadInput { description: "always".into(), months: (1..=12).collect() };
        assert_eq!(PeriodicLoad::parse(&all).unwrap_err().first().code, "not_periodic");
    }

    #[test]
    fn a_system_goes_online_only_after_the_go_live_gate() {
        let none = GoLiveChecks::default();
        let e = SystemState::Approved.check_transition(SystemState::Online, &none).unwrap_err();
        assert_eq!(e.0.len(), 3);
        assert!(e.0.iter().all(|f| f.article == Some(22)));
        let d = Date::constant(2026, 5, 1);
        let done = GoLiveChecks { self_check_on: Some(d), assessment_on: Some(d), hardening_on: Some(d) };
        assert!(SystemState::Approved.check_transition(SystemState::Online, &done).is_ok());
    }

    #[test]
    fn a_draft_cannot_skip_approval_and_a_retired_system_stays_retired() {
        let g = GoLiveChecks::default();
        assert!(SystemState::Draft.check_transition(SystemState::Online, &g).is_err());
        assert!(SystemState::Retired.check_transition(SystemState::Approved, &g).is_err());
        assert!(SystemState::Online.check_transition(SystemState::Retired, &g).is_ok());
    }

    #[test]
    fn a_go_live_date_in_the_future_is_refused() {
        let g = GoLiveInput { self_check_on: Some("2026-12-01".into()), ..Default::default() };
        let e = GoLiveChecks::parse(&g, Date::constant(2026, 11, 26)).unwrap_err();
        assert_eq!(e.first().code, "date_in_future");
    }

    #[test]
    fn a_patch_can_clear_a_nullable_field_or_leave_it() {
        let clear: SystemPatchInput = serde_json::from_str(r#"{"periodic_load": null}"#).unwrap();
        let leave: SystemPatchInput = serde_json::from_str(r#"{}"#).unwrap();
        let today = Date::constant(2026, 1, 1);
        assert_eq!(SystemPatch::parse(&clear, today).unwrap().periodic_load, Some(None));
        assert_eq!(SystemPatch::parse(&leave, today).unwrap().periodic_load, None);
    }

    fn system() -> System {
        System::new(&NewSystem::parse(&input(), UnitId(1)).unwrap())
    }

    fn patch(json: serde_json::Value) -> SystemPatch {
        SystemPatch::parse(&serde_json::from_value(json).unwrap(), Date::constant(2026, 11, 26)).unwrap()
    }

    #[test]
    fn a_unit_edits_its_quota_while_the_system_is_a_draft() {
        let s = system().apply(
            &patch(serde_json::json!({"quota": {"vcpu": 8, "memory_gib": 16, "storage_gib": 0}})),
            Editor::UnitStaff,
        );
        assert_eq!(s.unwrap().quota.vcpu, 8);
    }

    #[test]
    fn a_unit_cannot_change_the_quota_of_an_approved_system() {
        let mut s = system();
        s.state = SystemState::Approved;
        let e = s.apply(
            &patch(serde_json::json!({"quota": {"vcpu": 64, "memory_gib": 64, "storage_gib": 0}})),
            Editor::UnitStaff,
        );
        match e {
            Err(EditRefusal::NotAllowed(f)) => {
                assert_eq!((f.code, f.article), ("terms_locked", Some(10)))
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn only_the_big_data_center_approves_a_registration() {
        let p = patch(serde_json::json!({"state": "approved"}));
        assert!(matches!(system().apply(&p, Editor::UnitStaff), Err(EditRefusal::NotAllowed(_))));
        assert_eq!(system().apply(&p, Editor::CloudAdmin).unwrap().state, SystemState::Approved);
    }

    #[test]
    fn go_live_checks_recorded_in_one_patch_let_the_system_go_online() {
        let mut s = system();
        s.state = SystemState::Approved;
        let p = patch(serde_json::json!({"state": "online", "golive": {
            "self_check_on": "2026-11-01", "assessment_on": "2026-11-10", "hardening_on": "2026-11-20"}}));
        assert_eq!(s.apply(&p, Editor::UnitStaff).unwrap().state, SystemState::Online);
    }

    #[test]
    fn a_retired_system_is_not_edited() {
        let mut s = system();
        s.state = SystemState::Retired;
        assert!(s.apply(&patch(serde_json::json!({"name": "新名字"})), Editor::CloudAdmin).is_err());
    }

    #[test]
    fn dates_must_be_written_in_full() {
        assert!(parse_date("d", "2026-1-5").is_err());
        assert!(parse_date("d", "2026-02-30").is_err());
        assert_eq!(parse_date("d", "2026-02-28").unwrap(), Date::constant(2026, 2, 28));
    }
}
