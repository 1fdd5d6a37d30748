//! The Yunzhi side: a fresh data folder prepared as an operator would
//! (the schema by `yunzhi migrate`, then a unit, a system, a platform, the
//! fleet's hosts and an ingest token through the store's own functions),
//! and `yunzhi serve` on it as a child process, measured from outside.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use yunzhi_domain::access::Actor;
use yunzhi_domain::ids::UserId;
use yunzhi_domain::platform::{Capacity, DriverKind, NewPlatform, Overcommit, PlatformState};
use yunzhi_domain::request::{self, Decision, Demand, RequestDraft, RequestKind, RequestState, SlaPolicy};
use yunzhi_domain::role::{Role, RoleSet};
use yunzhi_domain::system::{Arch, MlpsLevel, NewSystem, Quota, SystemState};
use yunzhi_domain::unit::{Contact, CreditCode, NewUnit};
use yunzhi_store::{AuditCtx, NewRequest, NewResource, Store};

use super::payload::Host;

/// The catalog item every host of the fleet is: 4 vCPU, 8 GiB.
const HOST_ITEM: &str = "ecs.x86.c4m8";

/// What the server needs to be sent to: its hosts and a sender's token.
pub struct Prepared {
    pub hosts: Vec<Host>,
    pub token: String,
}

/// The server's own identity for one role, as the server acts for itself.
fn acting_as(role: Role) -> Actor {
    Actor {
        user_id: UserId(0),
        username: "bench".into(),
        roles: RoleSet::from_stored(vec![role]),
        unit_id: None,
    }
}

fn database_url(data: &Path) -> String {
    format!("sqlite://{}", data.join("yunzhi.db").display())
}

/// A command of `bin` that ignores the caller's database and listen
/// settings and logs as `yunzhi serve` does by default.
fn yunzhi(bin: &Path) -> Command {
    let mut c = Command::new(bin);
    c.env_remove("YUNZHI_DATABASE_URL")
        .env_remove("YUNZHI_LISTEN")
        .env_remove("YUNZHI_DATA")
        .env("RUST_LOG", "info,sqlx=warn,tower_http=warn");
    c
}

/// Migrates a fresh database in `data` with `bin migrate`, then records the
/// fleet: a unit, an online system, a platform, `hosts` cloud hosts handed
/// over through an approved request, and an ingest token.
pub async fn prepare(bin: &Path, data: &Path, hosts: usize) -> anyhow::Result<Prepared> {
    let out = yunzhi(bin)
        .arg("migrate")
        .arg("--data")
        .arg(data)
        .output()
        .with_context(|| format!("running {} migrate", bin.display()))?;
    if !out.status.success() {
        bail!(
            "{} migrate failed ({}): {}",
            bin.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).chars().take(2000).collect::<String>()
        );
    }
    let store = Store::open(&database_url(data)).await?;
    let prepared = record_fleet(&store, hosts).await;
    store.close().await;
    prepared
}

async fn record_fleet(store: &Store, hosts: usize) -> anyhow::Result<Prepared> {
    let now = jiff::Timestamp::now();
    // The catalog the server would seed at its first start: the hosts are of it.
    yunzhi_server::seed::defaults(store, now).await?;
    let ctx = AuditCtx::system("bench", now);
    let sys_admin = acting_as(Role::SysAdmin);
    let cloud_admin = acting_as(Role::CloudAdmin);
    let registrar = sys_admin.unit_registrar().context("sys_admin registers units")?;
    let systems = cloud_admin.system_registrar().context("cloud_admin registers systems")?;
    let operator = cloud_admin.cloud_operator().context("cloud_admin adds platforms")?;
    let today = now.to_zoned(yunzhi_domain::clock::district_zone()).date();
    let calendar = store.calendar().await?;
    let n = u32::try_from(hosts).context("too many hosts")?;

    let mut tx = store.begin().await?;
    let platform = tx
        .create_platform(
            &operator,
            &ctx,
            &NewPlatform {
                name: "基准测试 X86 资源池".into(),
                arch: Arch::X86_64,
                driver: DriverKind::Simulator,
                endpoint: None,
                capacity: Capacity {
                    vcpu: 8 * n.max(1),
                    memory_gib: 16 * n.max(1),
                    storage_gib: 200 * n.max(1),
                },
                overcommit: Overcommit { cpu: 1.0, memory: 1.0 },
                config: None,
            },
            None,
        )
        .await?;
    let code = CreditCode::with_check_character("11310118002469999").context("a credit code")?;
    let unit = tx
        .create_unit(
            &registrar,
            &ctx,
            &NewUnit {
                name: "基准测试单位".into(),
                credit_code: CreditCode::parse("credit_code", &code)?,
                contacts: vec![Contact { name: "测试".into(), phone: "021-59720000".into(), email: None }],
            },
        )
        .await?;
    let new_system = NewSystem {
        unit_id: unit.id,
        name: "基准测试系统".into(),
        mlps_level: MlpsLevel::parse("mlps_level", 2)?,
        project_ref: None,
        arch: Arch::X86_64,
        quota: Quota { vcpu: 4 * n, memory_gib: 8 * n, storage_gib: 100 * n },
        quota_basis: "基准测试".into(),
        periodic_load: None,
        description: None,
    };
    let mut system = tx.create_system(&systems, &ctx, &new_system).await?.context("the system")?;
    system = yunzhi_server::seed::advance_system(
        &mut tx,
        &systems,
        &ctx,
        system,
        &[SystemState::Approved, SystemState::Online],
        today,
    )
    .await?;

    // The hosts come from a request approved along its whole route.
    let item =
        tx.catalog_item_by_code(HOST_ITEM).await?.with_context(|| format!("no catalog item {HOST_ITEM}"))?;
    let kind = RequestKind::New;
    let draft = RequestDraft {
        kind,
        system_id: system.id.0,
        items: vec![(item.id.0, n)],
        justification: "基准测试主机".into(),
        backup_confirmed: false,
        resource_ids: vec![],
        until: None,
        exception_reason: None,
    };
    let route = request::route(kind, false);
    let due_on = SlaPolicy::default().due_on(&calendar, kind, today).unwrap_or(today);
    let mut r = tx
        .create_request(
            &ctx,
            &NewRequest {
                unit: unit.id,
                draft: &draft,
                route: &route,
                exception: false,
                demand: Demand::of(&item.spec, n),
                due_on,
            },
        )
        .await?;
    for (i, role) in route.iter().enumerate() {
        let (state, step) = if i + 1 == route.len() {
            (RequestState::Approved, i as i64)
        } else {
            (RequestState::InReview, i as i64 + 1)
        };
        r = tx.decide_request(&ctx, &r, *role, Decision::Approve, "同意", state, step, due_on).await?;
    }
    let mut fleet = Vec::with_capacity(hosts);
    for i in 0..hosts {
        let name = format!("host-{:05}", i + 1);
        let host = tx
            .create_resource(
                &ctx,
                &NewResource {
                    unit: unit.id,
                    system: system.id,
                    request: r.id,
                    catalog_item: item.id,
                    kind: item.spec.kind,
                    name: name.clone(),
                    platform: Some(platform.id),
                    demand: Demand::of(&item.spec, 1),
                    quantity: 1,
                    temporary: false,
                    expires_on: None,
                    provisioning: false,
                },
            )
            .await?;
        fleet.push(Host { resource_id: host.id, name });
    }
    tx.fulfil_request(&ctx, &r).await?;
    // The simulated platform never made these hosts: left enabled, its
    // inventory pass would flag every one of them as missing in the middle
    // of the measurement. Disabled, it keeps them and is not reconciled.
    tx.set_platform_state(&operator, &ctx, platform.id, PlatformState::Disabled).await?;
    let token = yunzhi_server::auth::new_token()?;
    tx.create_ingest_token(&ctx, "bench-prometheus", &yunzhi_server::auth::token_digest(&token)).await?;
    tx.commit().await?;
    Ok(Prepared { hosts: fleet, token })
}

/// `yunzhi serve` as a child, stopped when dropped.
pub struct Server {
    child: Child,
    pub port: u16,
    log: PathBuf,
}

impl Server {
    /// Starts `bin serve` on `data` and waits until `/healthz` answers.
    pub async fn start(bin: &Path, data: &Path, remote_write_idle: Duration) -> anyhow::Result<Server> {
        let port = crate::prometheus::free_port()?;
        let log = data.join("yunzhi-serve.log");
        let child = yunzhi(bin)
            .arg("serve")
            .arg("--data")
            .arg(data)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--remote-write-idle-seconds")
            .arg(remote_write_idle.as_secs().to_string())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .with_context(|| format!("starting {} serve", bin.display()))?;
        let mut server = Server { child, port, log };
        let client = reqwest::Client::new();
        let start = Instant::now();
        loop {
            server.check_running()?;
            if let Ok(r) = client.get(format!("{}/healthz", server.url())).send().await
                && r.status().is_success()
            {
                return Ok(server);
            }
            if start.elapsed() > Duration::from_secs(120) {
                bail!("yunzhi serve did not answer within 2 minutes; its log ends:\n{}", server.log_tail());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Fails, with the end of its log, if the server has exited.
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("yunzhi serve exited with {status}; its log ends:\n{}", self.log_tail());
        }
        Ok(())
    }

    /// The last lines of the server's log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
