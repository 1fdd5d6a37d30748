//! What a new installation starts with (the default catalog), and the demo
//! district of `yunzhi serve --demo`.

use yunzhi_domain::access::{Actor, Scope};
use yunzhi_domain::calendar::Calendar;
use yunzhi_domain::ids::{UnitId, UserId};
use yunzhi_domain::platform::{Capacity, DriverKind, NewPlatform, Overcommit};
use yunzhi_domain::request::{self, Decision, Demand, RequestDraft, RequestKind, RequestState, SlaPolicy};
use yunzhi_domain::resource::ResourceState;
use yunzhi_domain::role::{Role, RoleSet};
use yunzhi_domain::system::{
    Arch, Editor, GoLiveChecks, MlpsLevel, NewSystem, PeriodicLoad, Quota, SystemPatch, SystemState,
};
use yunzhi_domain::unit::{Contact, CreditCode, NewUnit};
use yunzhi_domain::user::NewUser;
use yunzhi_store::{AuditCtx, NewRequest, Store};

use crate::auth;

pub const DEFAULT_DEMO_PASSWORD: &str = "Yunzhi@Demo2026";
const DEMO_SEEDED: &str = "demo_district_seeded";

/// The identity under which the server itself acts (seeding, jobs): it holds
/// the role whose permission each step needs, so its work goes through the
/// same capability checks as everyone else.
pub(crate) fn internal_actor(role: Role) -> Actor {
    Actor {
        user_id: UserId(0),
        username: "yunzhi".into(),
        roles: RoleSet::from_stored(vec![role]),
        unit_id: None,
    }
}

/// The server's own reading permission on platforms, for its background work.
pub(crate) fn internal_platform_reader() -> yunzhi_domain::access::PlatformReader {
    match internal_actor(Role::CloudAdmin).platform_reader() {
        Some(r) => r,
        None => unreachable!("the cloud resource admin reads platforms"),
    }
}

/// Seeds the default catalog into an empty database, and the shipped
/// calendar years the database does not have.
pub async fn defaults(store: &Store, now: jiff::Timestamp) -> anyhow::Result<()> {
    let ctx = AuditCtx::system("yunzhi", now);
    let editor = internal_actor(Role::SysAdmin)
        .calendar_editor()
        .ok_or_else(|| anyhow::anyhow!("sys_admin edits the calendar"))?;
    let mut tx = store.begin().await?;
    let items = tx.seed_default_catalog(&ctx).await?;
    let years = tx.seed_calendar(&editor, &ctx).await?;
    tx.commit().await?;
    if items > 0 {
        tracing::info!(items, "seeded the default service catalog");
    }
    if years > 0 {
        tracing::info!(years, "loaded the shipped working-day calendar");
    }
    Ok(())
}

struct DemoUnit {
    name: &'static str,
    code_seq: u32,
    contact: (&'static str, &'static str),
}

const UNITS: [DemoUnit; 6] = [
    DemoUnit { name: "青浦区教育局", code_seq: 1, contact: ("王老师", "021-59721001") },
    DemoUnit { name: "青浦区卫生健康委员会", code_seq: 2, contact: ("李医生", "021-59721002") },
    DemoUnit { name: "青浦区民政局", code_seq: 3, contact: ("张科长", "021-59721003") },
    DemoUnit {
        name: "青浦区朱家角镇人民政府", code_seq: 4, contact: ("陈主任", "021-59721004")
    },
    DemoUnit { name: "青浦区练塘镇人民政府", code_seq: 5, contact: ("周主任", "021-59721005") },
    DemoUnit { name: "青浦区市场监督管理局", code_seq: 6, contact: ("吴科长", "021-59721006") },
];

struct DemoSystem {
    unit: usize,
    name: &'static str,
    mlps: u8,
    project_ref: Option<&'static str>,
    arch: Arch,
    quota: (u32, u32, u32),
    basis: &'static str,
    periodic: Option<(&'static str, &'static [u8])>,
    state: SystemState,
}

const SYSTEMS: [DemoSystem; 14] = [
    DemoSystem {
        unit: 0,
        name: "招生入学系统",
        mlps: 2,
        project_ref: Some("青发改〔2026〕12号"),
        arch: Arch::X86_64,
        quota: (32, 64, 2048),
        basis: "可行性研究报告 §4.2",
        periodic: Some(("招生季：7—8月", &[7, 8])),
        state: SystemState::Online,
    },
    DemoSystem {
        unit: 0,
        name: "智慧校园平台",
        mlps: 2,
        project_ref: Some("青发改〔2025〕31号"),
        arch: Arch::X86_64,
        quota: (64, 128, 4096),
        basis: "初步设计 §3.1",
        periodic: None,
        state: SystemState::Online,
    },
    DemoSystem {
        unit: 0,
        name: "教师继续教育管理系统",
        mlps: 2,
        project_ref: Some("青发改〔2025〕47号"),
        arch: Arch::Aarch64,
        quota: (8, 16, 500),
        basis: "可行性研究报告 §5",
        periodic: None,
        state: SystemState::Approved,
    },
    DemoSystem {
        unit: 1,
        name: "区域卫生信息平台",
        mlps: 3,
        project_ref: Some("青发改〔2024〕88号"),
        arch: Arch::X86_64,
        quota: (64, 256, 8192),
        basis: "初步设计 §6.2",
        periodic: None,
        state: SystemState::Online,
    },
    DemoSystem {
        unit: 1,
        name: "家庭医生签约服务系统",
        mlps: 2,
        project_ref: Some("青发改〔2025〕15号"),
        arch: Arch::Aarch64,
        quota: (16, 32, 1000),
        basis: "可行性研究报告 §4",
        periodic: None,
        state: SystemState::Online,
    },
    DemoSystem {
        unit: 1,
        name: "疫苗接种管理系统",
        mlps: 3,
        project_ref: Some("青发改〔2025〕16号"),
        arch: Arch::X86_64,
        quota: (16, 32, 1000),
        basis: "初步设计 §2.4",
        periodic: Some(("流感疫苗接种季：10—11月", &[10, 11])),
        state: SystemState::Online,
    },
    DemoSystem {
        unit: 2,
        name: "社会救助管理系统",
        mlps: 2,
        project_ref: Some("青发改〔2024〕52号"),
        arch: Arch::X86_64,
        quota: (16, 32, 1000),
        basis: "可行性研究报告 §3",
        periodic: None,
        state: SystemState::Online,
    },
    DemoSystem {
        unit: 2,
        name: "婚姻登记系统",
        mlps: 2,
        project_ref: Some("青发改〔2025〕09号"),
        arch: Arch::Aarch64,
        quota: (8, 16, 500),
        basis: "初步设计 §2",
        periodic: None,
        state: SystemState::Online,
    },
    DemoSystem {
        unit: 2,
        name: "人口普查试点",
        mlps: 1,
        project_ref: None,
        arch: Arch::X86_64,
        quota: (8, 16, 200),
        basis: "临时工作需要（未立项）",
        periodic: None,
        state: SystemState::Approved,
    },
    DemoSystem {
        unit: 3,
        name: "镇级网格化管理平台",
        mlps: 2,
        project_ref: Some("青发改〔2025〕61号"),
        arch: Arch::X86_64,
        quota: (16, 32, 1000),
        basis: "可行性研究报告 §4.3",
        periodic: None,
        state: SystemState::Online,
    },
    DemoSystem {
        unit: 3,
        name: "旧版行政审批系统",
        mlps: 2,
        project_ref: Some("青发改〔2019〕27号"),
        arch: Arch::X86_64,
        quota: (8, 16, 500),
        basis: "初步设计 §3",
        periodic: None,
        state: SystemState::Online,
    },
    DemoSystem {
        unit: 4,
        name: "农村集体资产管理系统",
        mlps: 2,
        project_ref: Some("青发改〔2025〕70号"),
        arch: Arch::Aarch64,
        quota: (8, 16, 500),
        basis: "可行性研究报告 §2.5",
        periodic: None,
        state: SystemState::Online,
    },
    DemoSystem {
        unit: 4,
        name: "防汛防台指挥系统",
        mlps: 2,
        project_ref: Some("青发改〔2024〕33号"),
        arch: Arch::X86_64,
        quota: (16, 32, 800),
        basis: "初步设计 §4",
        periodic: Some(("汛期：6—9月", &[6, 7, 8, 9])),
        state: SystemState::Online,
    },
    DemoSystem {
        unit: 5,
        name: "市场主体年报系统",
        mlps: 2,
        project_ref: Some("青发改〔2025〕22号"),
        arch: Arch::X86_64,
        quota: (16, 32, 1000),
        basis: "可行性研究报告 §3.3",
        periodic: Some(("年报期：1—6月", &[1, 2, 3, 4, 5, 6])),
        state: SystemState::Draft,
    },
];

const ACCOUNTS: [(&str, &str, Role, Option<usize>); 11] = [
    ("cloud_admin", "云资源管理员（演示）", Role::CloudAdmin, None),
    ("infra_chief", "基础设施科科长（演示）", Role::InfraChief, None),
    ("bdc_leader", "分管领导（演示）", Role::BdcLeader, None),
    ("office", "区政务服务办公室（演示）", Role::Office, None),
    ("sys_admin", "系统管理员（演示）", Role::SysAdmin, None),
    ("sec_admin", "安全管理员（演示）", Role::SecAdmin, None),
    ("audit_admin", "审计管理员（演示）", Role::AuditAdmin, None),
    ("unit1_user", "教育局经办人（演示）", Role::UnitUser, Some(0)),
    ("unit1_admin", "教育局管理员（演示）", Role::UnitAdmin, Some(0)),
    ("unit2_user", "卫健委经办人（演示）", Role::UnitUser, Some(1)),
    ("unit2_admin", "卫健委管理员（演示）", Role::UnitAdmin, Some(1)),
];

/// A valid unified social credit code for demo unit `seq`: `11` (an organ
/// of state), the district's administrative division, a made-up org code.
fn demo_credit_code(seq: u32) -> String {
    CreditCode::with_check_character(&format!("11310118{:09}", 2_469_800 + seq * 137)).unwrap_or_default()
}

/// Seeds the demo district once; later starts find it and leave it be.
pub async fn demo_district(store: &Store, now: jiff::Timestamp, password: &str) -> anyhow::Result<bool> {
    if store.setting(DEMO_SEEDED).await?.is_some() {
        return Ok(false);
    }
    let ctx = AuditCtx::system("demo-seed", now);
    let sys_admin = internal_actor(Role::SysAdmin);
    let cloud_admin = internal_actor(Role::CloudAdmin);
    let registrar = sys_admin.unit_registrar().ok_or_else(|| anyhow::anyhow!("sys_admin registers units"))?;
    let accounts = sys_admin.account_admin().ok_or_else(|| anyhow::anyhow!("sys_admin manages accounts"))?;
    let systems =
        cloud_admin.system_registrar().ok_or_else(|| anyhow::anyhow!("cloud_admin registers systems"))?;
    let operator =
        cloud_admin.cloud_operator().ok_or_else(|| anyhow::anyhow!("cloud_admin adds platforms"))?;

    // Hash once: every demo account shares the password.
    let pw = password.to_owned();
    let hash = tokio::task::spawn_blocking(move || auth::hash_password(&pw)).await??;
    let today = now.to_zoned(yunzhi_domain::clock::district_zone()).date();

    let mut tx = store.begin().await?;
    for (name, arch, cap, over) in [
        (
            "青浦政务云 X86 资源池",
            Arch::X86_64,
            Capacity { vcpu: 2048, memory_gib: 8192, storage_gib: 500_000 },
            Overcommit { cpu: 2.0, memory: 1.0 },
        ),
        (
            "青浦政务云 ARM 资源池（鲲鹏）",
            Arch::Aarch64,
            Capacity { vcpu: 1024, memory_gib: 4096, storage_gib: 200_000 },
            Overcommit { cpu: 1.5, memory: 1.0 },
        ),
    ] {
        let new = NewPlatform {
            name: name.into(),
            arch,
            driver: DriverKind::Simulator,
            endpoint: None,
            capacity: cap,
            overcommit: over,
            config: None,
        };
        tx.create_platform(&operator, &ctx, &new, None).await?;
    }
    let mut unit_ids: Vec<UnitId> = Vec::new();
    for u in &UNITS {
        let new = NewUnit {
            name: u.name.into(),
            credit_code: CreditCode::parse("credit_code", &demo_credit_code(u.code_seq))?,
            contacts: vec![Contact { name: u.contact.0.into(), phone: u.contact.1.into(), email: None }],
        };
        unit_ids.push(tx.create_unit(&registrar, &ctx, &new).await?.id);
    }
    let mut records = Vec::new();
    for s in &SYSTEMS {
        let new = NewSystem {
            unit_id: unit_ids[s.unit],
            name: s.name.into(),
            mlps_level: MlpsLevel::parse("mlps_level", i64::from(s.mlps))?,
            project_ref: s.project_ref.map(str::to_owned),
            arch: s.arch,
            quota: Quota { vcpu: s.quota.0, memory_gib: s.quota.1, storage_gib: s.quota.2 },
            quota_basis: s.basis.into(),
            periodic_load: s
                .periodic
                .map(|(d, m)| PeriodicLoad { description: d.into(), months: m.to_vec() }),
            description: None,
        };
        let Some(mut record) = tx.create_system(&systems, &ctx, &new).await? else {
            continue;
        };
        let steps: &[SystemState] = match s.state {
            SystemState::Draft => &[],
            SystemState::Approved => &[SystemState::Approved],
            _ => &[SystemState::Approved, SystemState::Online],
        };
        let checked = today.checked_sub(jiff::Span::new().days(30)).unwrap_or(today);
        record = advance_system(&mut tx, &systems, &ctx, record, steps, checked).await?;
        records.push(record);
    }
    let mut users = std::collections::HashMap::new();
    for (username, display, role, unit) in ACCOUNTS {
        let new = NewUser {
            username: username.into(),
            display_name: display.into(),
            password: String::new(),
            roles: RoleSet::from_stored(vec![role]),
            unit_id: unit.map(|i| unit_ids[i]),
            email: None,
        };
        let user = tx.create_user(&accounts, &ctx, &new, &hash, None, true).await?;
        users.insert(username, user.id.0);
    }
    let calendar = store.calendar().await?;
    let seeder = RequestSeeder { now, calendar, users };
    seeder.seed(&mut tx, &records).await?;
    tx.set_setting(DEMO_SEEDED, &today.to_string()).await?;
    tx.commit().await?;
    tracing::info!(
        units = UNITS.len(),
        systems = SYSTEMS.len(),
        accounts = ACCOUNTS.len(),
        "seeded the demo district"
    );
    Ok(true)
}

/// Requests of the demo district: the online systems' resources, handed
/// over weeks ago through the whole approval; a few requests waiting at
/// each level; and the census pilot's borrowed hosts, about to expire.
struct RequestSeeder {
    now: jiff::Timestamp,
    calendar: Calendar,
    users: std::collections::HashMap<&'static str, i64>,
}

enum Stop {
    /// Waiting for the decision at this step of the route.
    AtStep(usize),
    /// Carried out.
    Fulfilled,
}

impl RequestSeeder {
    fn ctx(&self, who: &str, days_ago: i64) -> AuditCtx {
        let at = self.now.checked_sub(jiff::SignedDuration::from_hours(24 * days_ago)).unwrap_or(self.now);
        AuditCtx {
            actor_id: self.users.get(who).copied(),
            actor: who.to_owned(),
            roles: who.trim_start_matches("unit1_").trim_start_matches("unit2_").to_owned(),
            source: Some("demo-seed".into()),
            at,
        }
    }

    async fn seed(
        &self,
        tx: &mut yunzhi_store::Tx,
        systems: &[yunzhi_store::SystemRecord],
    ) -> anyhow::Result<()> {
        let find = |name: &str| systems.iter().find(|s| s.system.name == name);
        for s in systems.iter().filter(|s| s.system.state == SystemState::Online) {
            let host = if s.system.arch == Arch::X86_64 { "ecs.x86.c4m8" } else { "ecs.arm.c4m8" };
            let hosts = (s.system.quota.vcpu / 8).max(1);
            let disk = (s.system.quota.storage_gib / 4).saturating_sub(hosts * 100).max(100);
            self.request(
                tx,
                s,
                RequestKind::New,
                &[(host, hosts), ("evs.ssd", disk)],
                "系统上线",
                60,
                Stop::Fulfilled,
            )
            .await?;
        }
        if let Some(s) = find("招生入学系统") {
            let items = [("ecs.x86.c4m8", 2), ("evs.ssd", 200)];
            self.request(tx, s, RequestKind::New, &items, "新学期扩充应用服务器", 1, Stop::AtStep(0)).await?;
        }
        if let Some(s) = find("区域卫生信息平台") {
            let items = [("ecs.x86.c8m16", 2)];
            self.request(tx, s, RequestKind::Expansion, &items, "新增区域影像业务", 2, Stop::AtStep(1))
                .await?;
        }
        if let Some(s) = find("智慧校园平台") {
            let items = [("ecs.x86.c8m16", 1)];
            self.request(tx, s, RequestKind::New, &items, "校园安防分析服务", 3, Stop::AtStep(2)).await?;
        }
        if let Some(s) = find("人口普查试点") {
            let items = [("ecs.x86.c2m4", 2)];
            self.request(tx, s, RequestKind::Temporary, &items, "人口普查试点临时使用", 72, Stop::Fulfilled)
                .await?;
        }
        Ok(())
    }

    #[expect(clippy::too_many_arguments, reason = "a seeded request's whole story")]
    async fn request(
        &self,
        tx: &mut yunzhi_store::Tx,
        system: &yunzhi_store::SystemRecord,
        kind: RequestKind,
        items: &[(&str, u32)],
        why: &str,
        days_ago: i64,
        stop: Stop,
    ) -> anyhow::Result<()> {
        let clerk = if system.unit_id == UnitId(1) {
            "unit1_user"
        } else if system.unit_id == UnitId(2) {
            "unit2_user"
        } else {
            "demo-seed"
        };
        let submitted = self.ctx(clerk, days_ago);
        let received = submitted.at.to_zoned(yunzhi_domain::clock::district_zone()).date();
        let Ok(due_on) = SlaPolicy::default().due_on(&self.calendar, kind, received) else {
            tracing::warn!(system = %system.system.name, "the calendar does not know the demo's dates; request not seeded");
            return Ok(());
        };
        let mut demand = Demand::default();
        let mut lines = Vec::new();
        for (code, qty) in items {
            let item = tx
                .catalog_item_by_code(code)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no catalog item {code}"))?;
            demand = demand + Demand::of(&item.spec, *qty);
            lines.push((item.id.0, *qty));
        }
        let draft = RequestDraft {
            kind,
            system_id: system.id.0,
            items: lines,
            justification: why.into(),
            backup_confirmed: false,
            resource_ids: vec![],
            until: None,
            exception_reason: None,
        };
        let route = request::route(kind, false);
        let new = NewRequest {
            unit: system.unit_id,
            draft: &draft,
            route: &route,
            exception: false,
            demand,
            due_on,
        };
        let mut r = tx.create_request(&submitted, &new).await?;
        let decide_until = match stop {
            Stop::AtStep(n) => n,
            Stop::Fulfilled => route.len(),
        };
        for (i, role) in route.iter().enumerate().take(decide_until) {
            let last = i + 1 == route.len();
            let (state, step) = if last {
                (RequestState::Approved, i as i64)
            } else {
                (RequestState::InReview, i as i64 + 1)
            };
            let ctx = self.ctx(role.code(), days_ago);
            r = tx.decide_request(&ctx, &r, *role, Decision::Approve, "同意", state, step, due_on).await?;
        }
        if matches!(stop, Stop::Fulfilled) {
            let ctx = self.ctx("job-runner", days_ago);
            crate::worker::provision_in(tx, &ctx, &r, received, false).await?;
            tx.fulfil_request(&ctx, &r).await?;
        }
        Ok(())
    }
}

/// Records on the simulated platforms every live resource placed on them
/// that they do not have yet (the demo's seeded ones, made "before" the
/// server started), keyed by its id, with a utilisation profile for each
/// host, and records the platform's name for it.
/// Takes a registered system through `steps` (approved, then online) as
/// the Big Data Center would, its go-live checks done on `checked`: the
/// demo district's systems and the benchmarks' fleets.
pub async fn advance_system(
    tx: &mut yunzhi_store::Tx,
    systems: &yunzhi_domain::access::SystemRegistrar,
    ctx: &AuditCtx,
    mut record: yunzhi_store::SystemRecord,
    steps: &[SystemState],
    checked: jiff::civil::Date,
) -> anyhow::Result<yunzhi_store::SystemRecord> {
    for step in steps {
        let patch = SystemPatch {
            state: Some(*step),
            golive: (*step == SystemState::Online).then_some(GoLiveChecks {
                self_check_on: Some(checked),
                assessment_on: Some(checked),
                hardening_on: Some(checked),
            }),
            ..SystemPatch::default()
        };
        let next = record.system.apply(&patch, Editor::CloudAdmin).map_err(|e| anyhow::anyhow!("{e:?}"))?;
        record = tx.update_system(systems, ctx, &record, &next).await?;
    }
    Ok(record)
}

pub async fn place_on_simulators(state: &crate::state::AppState) -> anyhow::Result<usize> {
    let mut made = 0;
    for platform in state.store.platforms_all().await? {
        if platform.driver != DriverKind::Simulator {
            continue;
        }
        state.driver(platform.id).await?;
        let Some(sim) = state.drivers.simulator(platform.id).await else { continue };
        let resources = state.store.begin().await?.live_resources_on(platform.id).await?;
        for res in
            resources.iter().filter(|r| r.remote_id.is_none() && r.state != ResourceState::Provisioning)
        {
            let spec = crate::worker::spec_of(res);
            let running = if res.state == ResourceState::Suspended {
                yunzhi_drivers::RemoteState::Stopped
            } else {
                yunzhi_drivers::RemoteState::Active
            };
            let remote = sim.adopt(&spec, running).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            let mut tx = state.store.begin().await?;
            tx.set_remote_id(res.id, &remote.remote_id).await?;
            let system = tx.system(Scope::AllUnits, res.system_id).await?;
            tx.commit().await?;
            if let Some(system) = system
                && res.kind == yunzhi_domain::catalog::CatalogKind::CloudHost
            {
                let profile = demo_profile(&system.system.name, system.system.periodic_load.as_ref());
                sim.set_profile(&spec.key, profile).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            }
            made += 1;
        }
    }
    Ok(made)
}

/// How the demo district's hosts are used: a season for the systems that
/// declared one (Art. 8), an idle continuing-education system, a zombie
/// legacy approval system, a busy health platform, office hours elsewhere.
fn demo_profile(
    system: &str,
    periodic: Option<&yunzhi_domain::system::PeriodicLoad>,
) -> yunzhi_drivers::simulator::guest::Profile {
    use yunzhi_drivers::simulator::guest::Profile;
    if let Some(p) = periodic {
        return Profile::Periodic { months: p.months.clone() };
    }
    match system {
        "旧版行政审批系统" => Profile::Zombie,
        "教师继续教育管理系统" | "农村集体资产管理系统" => Profile::Idle,
        "区域卫生信息平台" | "社会救助管理系统" => Profile::Busy,
        _ => Profile::Diurnal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_credit_codes_are_valid_and_distinct() {
        let codes: std::collections::HashSet<_> =
            UNITS.iter().map(|u| demo_credit_code(u.code_seq)).collect();
        assert_eq!(codes.len(), UNITS.len());
        for c in codes {
            assert!(CreditCode::parse("c", &c).is_ok(), "{c}");
        }
    }

    #[test]
    fn the_demo_password_meets_the_password_policy() {
        assert!(yunzhi_domain::password::check("p", DEFAULT_DEMO_PASSWORD, "unit1_admin").is_ok());
    }
}
