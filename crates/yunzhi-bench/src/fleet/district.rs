//! The district that runs the generated fleet, recorded through the store
//! as the server records one: units, their information systems (online,
//! seasonal ones with their declared periodic load), one approved and
//! fulfilled request per system, its hosts as live cloud hosts, and each
//! host's agent enrolled and reporting.

use jiff::Timestamp;
use jiff::civil::Date;
use yunzhi_domain::access::Actor;
use yunzhi_domain::catalog::CatalogKind;
use yunzhi_domain::ids::UserId;
use yunzhi_domain::platform::{Capacity, DriverKind, NewPlatform, Overcommit};
use yunzhi_domain::request::{self, Decision, Demand, RequestDraft, RequestKind, RequestState, SlaPolicy};
use yunzhi_domain::role::{Role, RoleSet};
use yunzhi_domain::system::{Arch, MlpsLevel, NewSystem, PeriodicLoad, Quota, SystemState};
use yunzhi_domain::unit::{Contact, CreditCode, NewUnit};
use yunzhi_store::{AuditCtx, Enrolment, NewRequest, NewResource, Store};

use super::generate::{Fleet, Profile, SEASONS};

/// The catalog item every generated host is: 4 vCPU, 8 GiB.
const HOST_ITEM: &str = "ecs.x86.c4m8";

const UNITS: [&str; 6] = [
    "青浦区教育局",
    "青浦区卫生健康委员会",
    "青浦区民政局",
    "青浦区朱家角镇人民政府",
    "青浦区练塘镇人民政府",
    "青浦区市场监督管理局",
];

/// Ordinary systems, (unit, name); the seasonal ones follow [`SEASONS`].
const SYSTEMS: [(usize, &str); 12] = [
    (0, "智慧校园平台"),
    (0, "教师继续教育管理系统"),
    (1, "区域卫生信息平台"),
    (1, "家庭医生签约服务系统"),
    (2, "社会救助管理系统"),
    (2, "婚姻登记系统"),
    (3, "镇级网格化管理平台"),
    (3, "旧版行政审批系统"),
    (4, "农村集体资产管理系统"),
    (4, "河长制信息平台"),
    (5, "市场主体信用监管系统"),
    (5, "食品安全追溯平台"),
];

/// The seasonal systems' units and names, one per entry of [`SEASONS`].
const SEASONAL_SYSTEMS: [(usize, &str); 2] = [(1, "疫苗接种管理系统"), (4, "防汛防台指挥系统")];

/// The server's own identity holding `role`, for the capability handles.
fn actor(role: Role) -> Actor {
    Actor {
        user_id: UserId(0),
        username: "yunzhi-bench".into(),
        roles: RoleSet::from_stored(vec![role]),
        unit_id: None,
    }
}

fn need<T>(handle: Option<T>, what: &str) -> anyhow::Result<T> {
    handle.ok_or_else(|| anyhow::anyhow!("the bench's actor lacks the permission to {what}"))
}

/// When the district was recorded: a month before the fleet's first day.
pub fn recorded_at(first_day: Date) -> anyhow::Result<Timestamp> {
    let day = first_day.checked_sub(jiff::Span::new().days(30))?;
    Ok(day.at(10, 0, 0, 0).to_zoned(yunzhi_domain::clock::district_zone())?.timestamp())
}

/// The instant the analysis runs at: 00:30 Beijing time the day after the
/// fleet's last day, so every day of the fleet is complete.
pub fn analysed_at(last_day: Date) -> anyhow::Result<Timestamp> {
    let day = last_day.tomorrow()?;
    Ok(day.at(0, 30, 0, 0).to_zoned(yunzhi_domain::clock::district_zone())?.timestamp())
}

/// Which system of [`record`]'s list a host belongs to.
fn system_of(fleet: &Fleet, h: usize) -> usize {
    match fleet.host(h).profile {
        Profile::Seasonal(i) => SYSTEMS.len() + i,
        _ => h % SYSTEMS.len(),
    }
}

/// Records the district of the first `hosts` hosts of `fleet` in a freshly
/// migrated `store` and returns their resource ids, host by host.
pub async fn record(store: &Store, fleet: &Fleet, hosts: usize) -> anyhow::Result<Vec<i64>> {
    let at = recorded_at(fleet.first_day())?;
    let ctx = AuditCtx::system("yunzhi-bench", at);
    yunzhi_server::seed::defaults(store, at).await?;
    let calendar = store.calendar().await?;
    let registrar = need(actor(Role::SysAdmin).unit_registrar(), "register units")?;
    let systems = need(actor(Role::CloudAdmin).system_registrar(), "register systems")?;
    let operator = need(actor(Role::CloudAdmin).cloud_operator(), "add platforms")?;

    let mut tx = store.begin().await?;
    let new_platform = NewPlatform {
        name: "青浦政务云 X86 资源池".into(),
        arch: Arch::X86_64,
        driver: DriverKind::Simulator,
        endpoint: None,
        capacity: Capacity { vcpu: 200_000, memory_gib: 400_000, storage_gib: 10_000_000 },
        overcommit: Overcommit { cpu: 2.0, memory: 1.0 },
        config: None,
    };
    let platform = tx.create_platform(&operator, &ctx, &new_platform, None).await?;
    let mut units = Vec::new();
    for (i, name) in UNITS.iter().enumerate() {
        let prefix = format!("11310118{:09}", 3_100_000 + i * 211);
        let code = CreditCode::with_check_character(&prefix)
            .ok_or_else(|| anyhow::anyhow!("no check character for {prefix}"))?;
        let new = NewUnit {
            name: (*name).into(),
            credit_code: CreditCode::parse("credit_code", &code)?,
            contacts: vec![Contact {
                name: "信息科".into(),
                phone: format!("021-5972{:04}", 2001 + i),
                email: None,
            }],
        };
        units.push(tx.create_unit(&registrar, &ctx, &new).await?.id);
    }
    let checked = at.to_zoned(yunzhi_domain::clock::district_zone()).date();
    let mut records = Vec::new();
    let all =
        SYSTEMS.iter().map(|s| (*s, None)).chain(SEASONAL_SYSTEMS.iter().zip(&SEASONS).map(|(s, season)| {
            (
                *s,
                Some(PeriodicLoad { description: season.description.into(), months: season.months.to_vec() }),
            )
        }));
    for ((unit, name), periodic_load) in all {
        let new = NewSystem {
            unit_id: units[unit],
            name: name.into(),
            mlps_level: MlpsLevel::parse("mlps_level", 2)?,
            project_ref: Some(format!("青发改〔2025〕{}号", 100 + records.len())),
            arch: Arch::X86_64,
            quota: Quota { vcpu: 40_000, memory_gib: 80_000, storage_gib: 1_000_000 },
            quota_basis: "可行性研究报告".into(),
            periodic_load,
            description: None,
        };
        let mut record = tx
            .create_system(&systems, &ctx, &new)
            .await?
            .ok_or_else(|| anyhow::anyhow!("system {name} was not created"))?;
        record = yunzhi_server::seed::advance_system(
            &mut tx,
            &systems,
            &ctx,
            record,
            &[SystemState::Approved, SystemState::Online],
            checked,
        )
        .await?;
        records.push(record);
    }

    // One request per system for all of its hosts, approved at every step.
    let item = tx.catalog_item_by_code(HOST_ITEM).await?.ok_or_else(|| anyhow::anyhow!("no {HOST_ITEM}"))?;
    let of_system: Vec<usize> = (0..hosts).map(|h| system_of(fleet, h)).collect();
    let received = checked;
    let due_on = SlaPolicy::default()
        .due_on(&calendar, RequestKind::New, received)
        .map_err(|e| anyhow::anyhow!("the calendar does not know {}: the fleet starts too early", e.year))?;
    let mut requests = Vec::new();
    for (s, system) in records.iter().enumerate() {
        let count = of_system.iter().filter(|x| **x == s).count() as u32;
        let draft = RequestDraft {
            kind: RequestKind::New,
            system_id: system.id.0,
            items: vec![(item.id.0, count.max(1))],
            justification: "系统上线".into(),
            backup_confirmed: false,
            resource_ids: vec![],
            until: None,
            exception_reason: None,
        };
        let route = request::route(RequestKind::New, false);
        let new = NewRequest {
            unit: system.unit_id,
            draft: &draft,
            route: &route,
            exception: false,
            demand: Demand::of(&item.spec, count.max(1)),
            due_on,
        };
        let mut r = tx.create_request(&ctx, &new).await?;
        for (i, role) in route.iter().enumerate() {
            let last = i + 1 == route.len();
            let (state, step) = if last {
                (RequestState::Approved, i as i64)
            } else {
                (RequestState::InReview, i as i64 + 1)
            };
            r = tx.decide_request(&ctx, &r, *role, Decision::Approve, "同意", state, step, due_on).await?;
        }
        requests.push(r);
    }
    let mut ids = Vec::with_capacity(hosts);
    for (h, s) in of_system.iter().enumerate() {
        let (system, r) = (&records[*s], &requests[*s]);
        let new = NewResource {
            unit: system.unit_id,
            system: system.id,
            request: r.id,
            catalog_item: item.id,
            kind: CatalogKind::CloudHost,
            name: format!("s{}-host-{h:05}", system.id),
            platform: Some(platform.id),
            demand: Demand::of(&item.spec, 1),
            quantity: 1,
            temporary: false,
            expires_on: None,
            provisioning: false,
        };
        ids.push(tx.create_resource(&ctx, &new).await?.id);
    }
    for r in &requests {
        tx.fulfil_request(&ctx, r).await?;
    }
    tx.commit().await?;

    // Every host's agent enrolled and reporting up to the analysis.
    let last_report = analysed_at(fleet.last_day())? - jiff::SignedDuration::from_mins(1);
    let mut tx = store.begin().await?;
    for (h, id) in ids.iter().enumerate() {
        let unit = records[of_system[h]].unit_id;
        let digest = format!("bench-credential-{id}");
        let hostname = format!("host-{h:05}");
        let enrolment = Enrolment {
            resource_id: *id,
            credential_digest: &digest,
            hostname: &hostname,
            machine_id: None,
            version: "bench",
            binary_sm3: "bench",
        };
        let mut agent = tx.enroll_agent(&ctx, unit.0, &enrolment).await?;
        // It reported a minute before the analysis: not silent.
        agent.last_sequence = 1;
        agent.last_report_at = Some(yunzhi_domain::clock::At(last_report));
        agent.last_sample_at = Some(yunzhi_domain::clock::At(last_report));
        agent.last_clock_skew_ms = Some(0);
        tx.update_agents(&[agent]).await?;
    }
    tx.commit().await?;
    Ok(ids)
}

/// The declared periodic load of each host's system, host by host: what
/// the rules need beside the daily figures.
pub fn periodic_loads(fleet: &Fleet) -> Vec<Option<PeriodicLoad>> {
    (0..fleet.hosts())
        .map(|h| match fleet.host(h).profile {
            Profile::Seasonal(i) => Some(PeriodicLoad {
                description: SEASONS[i].description.into(),
                months: SEASONS[i].months.to_vec(),
            }),
            _ => None,
        })
        .collect()
}
