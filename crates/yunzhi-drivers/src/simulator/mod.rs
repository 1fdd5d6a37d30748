//! The built-in simulator: a platform of finite capacity whose inventory
//! lives in a JSON file (so it outlives a crashed server, as a real
//! platform would), with latency and fault injection for tests and demos:
//! calls that fail, and calls that succeed on the platform but whose
//! answer is lost on the way back. It also plays the guest side for the
//! demo ([`guest`]): each host has a utilisation profile whose readings
//! feed the monitoring.

pub mod guest;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::{CapacityReport, CloudDriver, DriverError, DriverFuture, Remote, RemoteState, ResourceSpec};

/// What can go wrong, on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Faults {
    /// Share of calls that fail before touching anything (0.0–1.0).
    pub failure_rate: f64,
    /// Share of changing calls that succeed but whose answer is lost.
    pub lost_answer_rate: f64,
    /// Added to every call (a platform's API is never instant; creates take
    /// five times as long, as a real boot does).
    pub latency: Duration,
    /// Share of calls that are slow: `slow_latency` more.
    pub slow_rate: f64,
    pub slow_latency: Duration,
    /// Seeds the choice of which calls fail, so a test repeats exactly.
    pub seed: u64,
}

/// The platform's allocatable capacity (after overcommit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool {
    pub vcpu: u64,
    pub memory_gib: u64,
    pub storage_gib: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Inventory {
    next_id: u64,
    resources: Vec<Remote>,
    /// How each host is used, by key; a host without one is an office system.
    #[serde(default)]
    profiles: std::collections::BTreeMap<String, guest::Profile>,
}

pub struct Simulator {
    name: String,
    pool: Pool,
    faults: Faults,
    file: Option<PathBuf>,
    inventory: Mutex<Inventory>,
    calls: AtomicU64,
}

impl Simulator {
    /// A simulator named `name` whose inventory is kept in `file` (read if it
    /// exists), or only in memory when `None`.
    pub fn open(name: &str, pool: Pool, faults: Faults, file: Option<&Path>) -> std::io::Result<Simulator> {
        let inventory = match file {
            Some(f) if f.exists() => serde_json::from_slice(&std::fs::read(f)?)?,
            _ => Inventory::default(),
        };
        Ok(Simulator {
            name: name.to_owned(),
            pool,
            faults,
            file: file.map(Path::to_path_buf),
            inventory: Mutex::new(inventory),
            calls: AtomicU64::new(0),
        })
    }

    /// A deterministic draw in [0, 1) for the n-th call (splitmix64).
    fn draw(&self, n: u64, salt: u64) -> f64 {
        let mut z = self.faults.seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ salt;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Latency and the chance of an outright failure, before a call.
    async fn enter(&self) -> Result<u64, DriverError> {
        self.enter_weighted(1).await
    }

    /// As [`Self::enter`], for a call `weight` times as long as most.
    async fn enter_weighted(&self, weight: u32) -> Result<u64, DriverError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        let mut wait = self.faults.latency * weight;
        if self.draw(n, 3) < self.faults.slow_rate {
            wait += self.faults.slow_latency;
        }
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        if self.draw(n, 1) < self.faults.failure_rate {
            return Err(DriverError::Unavailable(format!("{}: simulated failure of call {n}", self.name)));
        }
        Ok(n)
    }

    /// The chance that a change made is not reported back.
    fn answer<T>(&self, n: u64, value: T) -> Result<T, DriverError> {
        if self.draw(n, 2) < self.faults.lost_answer_rate {
            return Err(DriverError::Unavailable(format!("{}: the answer to call {n} was lost", self.name)));
        }
        Ok(value)
    }

    /// Writes the inventory durably: a new file, synced, renamed over the old.
    fn persist(&self, inv: &Inventory) -> Result<(), DriverError> {
        let Some(file) = &self.file else { return Ok(()) };
        let write = || -> std::io::Result<()> {
            let tmp = file.with_extension("tmp");
            let bytes = serde_json::to_vec(inv)?;
            {
                use std::io::Write;
                let mut f = std::fs::File::create(&tmp)?;
                f.write_all(&bytes)?;
                f.sync_all()?;
            }
            std::fs::rename(&tmp, file)
        };
        write()
            .map_err(|e| DriverError::Unavailable(format!("{}: cannot write its inventory: {e}", self.name)))
    }

    fn used(inv: &Inventory) -> (u64, u64, u64) {
        inv.resources.iter().fold((0, 0, 0), |(v, m, s), r| {
            (v + u64::from(r.vcpu), m + u64::from(r.memory_gib), s + u64::from(r.storage_gib))
        })
    }

    async fn change(
        &self,
        key: &str,
        apply: impl FnOnce(&mut Remote, (u64, u64, u64), Pool) -> Result<(), DriverError>,
    ) -> Result<Remote, DriverError> {
        let n = self.enter().await?;
        let mut inv = self.inventory.lock().await;
        let used = Self::used(&inv);
        let pool = self.pool;
        let r = inv
            .resources
            .iter_mut()
            .find(|r| r.key == key)
            .ok_or_else(|| DriverError::NotFound(key.to_owned()))?;
        apply(r, used, pool)?;
        let out = r.clone();
        self.persist(&inv)?;
        self.answer(n, out)
    }
}

impl Simulator {
    /// Records a resource the platform already runs, as it stands, without
    /// the latency and faults of a call: the demo district's history, which
    /// was made before the server started. Idempotent by key.
    pub async fn adopt(&self, spec: &ResourceSpec, state: RemoteState) -> Result<Remote, DriverError> {
        let mut inv = self.inventory.lock().await;
        if let Some(existing) = inv.resources.iter().find(|r| r.key == spec.key) {
            return Ok(existing.clone());
        }
        inv.next_id += 1;
        let remote = Remote {
            remote_id: format!("sim-{}-{:06}", self.name, inv.next_id),
            key: spec.key.clone(),
            name: spec.name.clone(),
            kind: spec.kind,
            state,
            vcpu: spec.vcpu,
            memory_gib: spec.memory_gib,
            storage_gib: spec.storage_gib,
        };
        inv.resources.push(remote.clone());
        self.persist(&inv)?;
        Ok(remote)
    }

    /// Sets how the host under `key` is used (the demo's guest side).
    pub async fn set_profile(&self, key: &str, profile: guest::Profile) -> Result<(), DriverError> {
        let mut inv = self.inventory.lock().await;
        if !inv.resources.iter().any(|r| r.key == key) {
            return Err(DriverError::NotFound(key.to_owned()));
        }
        inv.profiles.insert(key.to_owned(), profile);
        self.persist(&inv)
    }

    /// What an agent inside the host under `key` would read at `at`; `None`
    /// when there is no such host or it is stopped (a stopped host reports
    /// nothing).
    pub async fn guest_sample(&self, key: &str, at: jiff::Timestamp) -> Option<guest::GuestSample> {
        let inv = self.inventory.lock().await;
        let host = inv.resources.iter().find(|r| r.key == key)?;
        if host.state != RemoteState::Active || host.kind != crate::ResourceKind::Host {
            return None;
        }
        let profile = inv.profiles.get(key).cloned().unwrap_or(guest::Profile::Diurnal);
        Some(guest::sample(&profile, guest::seed_of(key), at))
    }
}

impl CloudDriver for Simulator {
    fn create<'a>(&'a self, spec: &'a ResourceSpec) -> DriverFuture<'a, Remote> {
        Box::pin(async move {
            let n = self.enter_weighted(5).await?;
            let mut inv = self.inventory.lock().await;
            if let Some(existing) = inv.resources.iter().find(|r| r.key == spec.key) {
                return Ok(existing.clone());
            }
            let (v, m, s) = Self::used(&inv);
            let fits = v + u64::from(spec.vcpu) <= self.pool.vcpu
                && m + u64::from(spec.memory_gib) <= self.pool.memory_gib
                && s + u64::from(spec.storage_gib) <= self.pool.storage_gib;
            if !fits {
                return Err(DriverError::NoCapacity(format!(
                    "{} has {} vCPU, {} GiB memory, {} GiB storage left",
                    self.name,
                    self.pool.vcpu - v,
                    self.pool.memory_gib - m,
                    self.pool.storage_gib - s
                )));
            }
            inv.next_id += 1;
            let remote = Remote {
                remote_id: format!("sim-{}-{:06}", self.name, inv.next_id),
                key: spec.key.clone(),
                name: spec.name.clone(),
                kind: spec.kind,
                state: RemoteState::Active,
                vcpu: spec.vcpu,
                memory_gib: spec.memory_gib,
                storage_gib: spec.storage_gib,
            };
            inv.resources.push(remote.clone());
            self.persist(&inv)?;
            self.answer(n, remote)
        })
    }

    fn get<'a>(&'a self, key: &'a str) -> DriverFuture<'a, Option<Remote>> {
        Box::pin(async move {
            self.enter().await?;
            Ok(self.inventory.lock().await.resources.iter().find(|r| r.key == key).cloned())
        })
    }

    fn resize<'a>(
        &'a self,
        key: &'a str,
        vcpu: u32,
        memory_gib: u32,
        storage_gib: u32,
    ) -> DriverFuture<'a, Remote> {
        Box::pin(self.change(key, move |r, (v, m, s), pool| {
            let grow =
                |used: u64, old: u32, new: u32, cap: u64| used - u64::from(old) + u64::from(new) <= cap;
            if !(grow(v, r.vcpu, vcpu, pool.vcpu)
                && grow(m, r.memory_gib, memory_gib, pool.memory_gib)
                && grow(s, r.storage_gib, storage_gib, pool.storage_gib))
            {
                return Err(DriverError::NoCapacity(format!("no room to resize {}", r.key)));
            }
            if storage_gib < r.storage_gib {
                return Err(DriverError::Rejected("a disk cannot shrink".into()));
            }
            r.vcpu = vcpu;
            r.memory_gib = memory_gib;
            r.storage_gib = storage_gib;
            Ok(())
        }))
    }

    fn suspend<'a>(&'a self, key: &'a str) -> DriverFuture<'a, Remote> {
        Box::pin(self.change(key, |r, _, _| {
            r.state = RemoteState::Stopped;
            Ok(())
        }))
    }

    fn resume<'a>(&'a self, key: &'a str) -> DriverFuture<'a, Remote> {
        Box::pin(self.change(key, |r, _, _| {
            r.state = RemoteState::Active;
            Ok(())
        }))
    }

    fn delete<'a>(&'a self, key: &'a str) -> DriverFuture<'a, ()> {
        Box::pin(async move {
            let n = self.enter().await?;
            let mut inv = self.inventory.lock().await;
            inv.resources.retain(|r| r.key != key);
            inv.profiles.remove(key);
            self.persist(&inv)?;
            self.answer(n, ())
        })
    }

    fn list(&self) -> DriverFuture<'_, Vec<Remote>> {
        Box::pin(async move {
            self.enter().await?;
            Ok(self.inventory.lock().await.resources.clone())
        })
    }

    fn capacity(&self) -> DriverFuture<'_, CapacityReport> {
        Box::pin(async move {
            self.enter().await?;
            let (v, m, s) = Self::used(&*self.inventory.lock().await);
            Ok(CapacityReport {
                vcpu: self.pool.vcpu,
                memory_gib: self.pool.memory_gib,
                storage_gib: self.pool.storage_gib,
                used_vcpu: v,
                used_memory_gib: m,
                used_storage_gib: s,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool() -> Pool {
        Pool { vcpu: 16, memory_gib: 64, storage_gib: 1000 }
    }

    fn host(key: &str, vcpu: u32) -> ResourceSpec {
        ResourceSpec {
            key: key.into(),
            name: format!("test-{key}"),
            kind: crate::ResourceKind::Host,
            vcpu,
            memory_gib: 8,
            storage_gib: 100,
            image: Some("openEuler".into()),
        }
    }

    #[tokio::test]
    async fn creating_the_same_key_twice_makes_one_resource() {
        let sim = Simulator::open("x86", pool(), Faults::default(), None).unwrap();
        let a = sim.create(&host("yz-r1-1", 4)).await.unwrap();
        let b = sim.create(&host("yz-r1-1", 4)).await.unwrap();
        assert_eq!(a, b);
        assert_eq!(sim.list().await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_full_platform_answers_no_capacity_and_makes_nothing() {
        let sim = Simulator::open("x86", pool(), Faults::default(), None).unwrap();
        sim.create(&host("a", 12)).await.unwrap();
        let e = sim.create(&host("b", 8)).await.unwrap_err();
        assert!(matches!(e, DriverError::NoCapacity(_)) && e.is_transient(), "{e}");
        assert_eq!(sim.capacity().await.unwrap().used_vcpu, 12);
    }

    #[tokio::test]
    async fn a_lost_answer_is_recovered_by_retrying_with_the_same_key() {
        let faults = Faults { lost_answer_rate: 1.0, ..Faults::default() };
        let sim = Simulator::open("x86", pool(), faults, None).unwrap();
        let e = sim.create(&host("yz-r2-1", 2)).await.unwrap_err();
        assert!(e.is_transient());
        // The platform made it; the retry finds it rather than making another.
        let again = sim.create(&host("yz-r2-1", 2)).await.unwrap();
        assert_eq!(again.key, "yz-r2-1");
        assert_eq!(sim.list().await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn the_inventory_outlives_the_simulator_process() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("x86.json");
        {
            let sim = Simulator::open("x86", pool(), Faults::default(), Some(&file)).unwrap();
            sim.create(&host("kept", 2)).await.unwrap();
            sim.suspend("kept").await.unwrap();
        }
        let sim = Simulator::open("x86", pool(), Faults::default(), Some(&file)).unwrap();
        let r = sim.get("kept").await.unwrap().unwrap();
        assert_eq!(r.state, RemoteState::Stopped);
        sim.delete("kept").await.unwrap();
        sim.delete("kept").await.unwrap();
        assert!(sim.get("kept").await.unwrap().is_none(), "deleting twice is fine");
    }

    #[tokio::test]
    async fn injected_failures_follow_their_rate_and_seed() {
        let faults = Faults { failure_rate: 0.3, seed: 7, ..Faults::default() };
        let sim = Simulator::open(
            "x86",
            Pool { vcpu: 10_000, memory_gib: 100_000, storage_gib: 1_000_000 },
            faults,
            None,
        )
        .unwrap();
        let mut failed = 0;
        for i in 0..1000 {
            if sim.create(&host(&format!("k{i}"), 1)).await.is_err() {
                failed += 1;
            }
        }
        assert!((250..350).contains(&failed), "{failed} of 1000 failed at a 30 % rate");
    }

    #[tokio::test]
    async fn a_resize_that_does_not_fit_is_refused_and_a_disk_never_shrinks() {
        let sim = Simulator::open("x86", pool(), Faults::default(), None).unwrap();
        sim.create(&host("r", 4)).await.unwrap();
        assert_eq!(sim.resize("r", 8, 16, 100).await.unwrap().vcpu, 8);
        assert!(matches!(sim.resize("r", 32, 16, 100).await, Err(DriverError::NoCapacity(_))));
        assert!(matches!(sim.resize("r", 8, 16, 50).await, Err(DriverError::Rejected(_))));
        assert!(matches!(sim.suspend("missing").await, Err(DriverError::NotFound(_))));
    }
}
