//! The libvirt driver: hosts are persistent domains and volumes are storage
//! volumes on one libvirt connection (`qemu:///system`, `qemu+ssh://…`, or
//! the in-process `test:///…` hypervisor the tests use).
//!
//! Everything is found again by name, so every call is idempotent: a host
//! is the domain named by its Yunzhi key, with the key also kept in its
//! `<metadata>` (which is how `list` tells our domains from everybody
//! else's), and its disk is the volume `<key>-disk.<ext>`; a volume is
//! `<key>.<ext>`, where `<ext>` is `qcow2` on file-backed pools and `raw`
//! on the others.
//!
//! The libvirt C API blocks, so every call runs on tokio's blocking pool.
//! `virt::connect::Connect` is `Send + Sync` (libvirt connections are
//! thread-safe), so one connection is shared behind a mutex that is only
//! held to hand out a reference; it is reopened when a failed call finds it
//! dead.
//!
//! Sizes reported for a host are those of its persistent definition, not
//! of the running instance: a resize changes the definition only, and takes
//! effect at the next start (suspend and resume), so what is reported is
//! what is allocated.

mod xml;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Deserialize;
use virt::connect::Connect;
use virt::domain::{Domain, DomainState};
use virt::error::{Error as VirtError, ErrorDomain, ErrorNumber};
use virt::storage_pool::StoragePool;
use virt::storage_vol::StorageVol;
use virt::sys;

use crate::{
    CapacityReport, CloudDriver, DriverError, DriverFuture, Remote, RemoteState, ResourceKind, ResourceSpec,
};

/// The XML namespace of the `<metadata>` element Yunzhi puts on its domains.
pub const METADATA_NAMESPACE: &str = "https://yunzhi.dev/xmlns/libvirt/1";

const GIB: u64 = 1 << 30;
const KIB_PER_GIB: u64 = 1 << 20;
/// The device name of a host's disk inside the guest definition.
const DISK_TARGET: &str = "vda";

/// The guest CPU architecture of a platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Arch {
    #[serde(rename = "x86_64")]
    X86_64,
    #[serde(rename = "aarch64")]
    Aarch64,
}

/// How to reach a libvirt platform; stored as JSON with the platform.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LibvirtConfig {
    /// The connection URI: `qemu:///system`, `qemu+ssh://host/system`, `test:///default`.
    pub uri: String,
    /// The storage pool disks and volumes are made in.
    #[serde(default = "default_pool")]
    pub storage_pool: String,
    /// The libvirt network hosts get an interface on; `null` for none.
    #[serde(default = "default_network")]
    pub network: Option<String>,
    pub arch: Arch,
    /// The domain type: `kvm` on real hosts, `test` on the test hypervisor.
    #[serde(default = "default_domain_type")]
    pub domain_type: String,
    /// The path of a volume every host's disk starts as a copy of.
    #[serde(default)]
    pub base_image: Option<String>,
    /// How long a graceful shutdown may take before the host is powered off.
    #[serde(default = "default_shutdown_timeout")]
    pub shutdown_timeout_secs: u64,
}

fn default_pool() -> String {
    "default".into()
}

fn default_network() -> Option<String> {
    Some("default".into())
}

fn default_domain_type() -> String {
    "kvm".into()
}

fn default_shutdown_timeout() -> u64 {
    60
}

/// A libvirt platform.
pub struct Libvirt {
    shared: Arc<Shared>,
}

/// What the blocking calls need, owned so it can move to the blocking pool.
struct Shared {
    name: String,
    config: LibvirtConfig,
    /// The open connection and a generation number, so a call that finds
    /// the connection dead only forgets the one it used.
    conn: Mutex<(u64, Option<Connect>)>,
}

impl Libvirt {
    /// A driver for the platform `name`; it connects on first use, so a
    /// platform that is down does not stop the server from starting.
    pub fn new(name: &str, config: LibvirtConfig) -> Result<Libvirt, DriverError> {
        if config.uri.trim().is_empty() {
            return Err(DriverError::Rejected(format!("{name}: the libvirt URI is empty")));
        }
        if config.storage_pool.trim().is_empty() {
            return Err(DriverError::Rejected(format!("{name}: the storage pool name is empty")));
        }
        if !config.domain_type.chars().all(|c| c.is_ascii_alphanumeric()) || config.domain_type.is_empty() {
            return Err(DriverError::Rejected(format!(
                "{name}: {:?} is not a libvirt domain type",
                config.domain_type
            )));
        }
        // libvirt prints every error to stderr by default; ours are
        // returned and logged by the caller instead.
        virt::error::clear_error_callback();
        Ok(Libvirt {
            shared: Arc::new(Shared { name: name.to_owned(), config, conn: Mutex::new((0, None)) }),
        })
    }

    /// Runs a raw libvirt call on the driver's connection, for diagnostics
    /// and tests (the test hypervisor's state lives in the connection).
    pub async fn with_connection<T, F>(&self, f: F) -> Result<T, DriverError>
    where
        T: Send + 'static,
        F: FnOnce(&Connect) -> Result<T, VirtError> + Send + 'static,
    {
        self.run(move |ctx| f(ctx.conn).map_err(|e| fault(&e, "the call"))).await
    }

    /// Runs `f` with a live connection on the blocking pool.
    async fn run<T, F>(&self, f: F) -> Result<T, DriverError>
    where
        T: Send + 'static,
        F: FnOnce(&Ctx<'_>) -> Result<T, DriverError> + Send + 'static,
    {
        let shared = Arc::clone(&self.shared);
        let name = shared.name.clone();
        tokio::task::spawn_blocking(move || shared.call(f))
            .await
            .map_err(|e| DriverError::Unavailable(format!("{name}: a libvirt call did not finish: {e}")))?
    }
}

impl Shared {
    fn call<T>(&self, f: impl FnOnce(&Ctx<'_>) -> Result<T, DriverError>) -> Result<T, DriverError> {
        let (generation, conn) = self.connection()?;
        let ctx = Ctx { conn: &conn, cfg: &self.config, platform: &self.name };
        let out = f(&ctx);
        if out.is_err() && !conn.is_alive().unwrap_or(false) {
            // Whatever the call said, its outcome is unknown: the caller
            // retries, which is safe because every call is idempotent.
            self.forget(generation);
            return Err(DriverError::Unavailable(format!(
                "{}: lost the connection to {}",
                self.name, self.config.uri
            )));
        }
        out
    }

    fn connection(&self) -> Result<(u64, Connect), DriverError> {
        let mut slot = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(conn) = &slot.1 {
            return Ok((slot.0, conn.clone()));
        }
        let conn = Connect::open(Some(&self.config.uri)).map_err(|e| {
            DriverError::Unavailable(format!(
                "{}: cannot connect to {}: {}",
                self.name,
                self.config.uri,
                e.message()
            ))
        })?;
        slot.0 += 1;
        slot.1 = Some(conn.clone());
        tracing::info!(platform = %self.name, uri = %self.config.uri, "connected to libvirt");
        Ok((slot.0, conn))
    }

    fn forget(&self, generation: u64) {
        let mut slot = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.0 == generation {
            slot.1 = None;
            tracing::warn!(platform = %self.name, uri = %self.config.uri, "libvirt connection lost");
        }
    }
}

/// Maps a libvirt error: connection trouble is worth retrying, anything
/// else is libvirt refusing, with its message and what we were doing.
fn fault(e: &VirtError, doing: &str) -> DriverError {
    let transient = e.code().is_any(vec![
        ErrorNumber::NoConnect,
        ErrorNumber::InvalidConn,
        ErrorNumber::OperationTimeout,
        ErrorNumber::AuthUnavailable,
        ErrorNumber::AgentUnresponsive,
        ErrorNumber::ResourceBusy,
    ]) || e.domain().is_any(vec![ErrorDomain::Rpc, ErrorDomain::Remote]);
    let msg = format!("{doing}: {}", e.message());
    if transient { DriverError::Unavailable(msg) } else { DriverError::Rejected(msg) }
}

fn is(e: &VirtError, code: ErrorNumber) -> bool {
    e.code().is(code)
}

fn gib_up(bytes: u64) -> u32 {
    u32::try_from(bytes.div_ceil(GIB)).unwrap_or(u32::MAX)
}

/// How disks are stored in a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DiskFormat {
    /// Files, where qcow2 gives thin provisioning and snapshots.
    Qcow2,
    /// Block-backed pools (LVM, iSCSI, RBD…), which hold raw volumes only.
    Raw,
}

impl DiskFormat {
    fn of_pool_type(pool_type: &str) -> DiskFormat {
        match pool_type {
            "dir" | "fs" | "netfs" | "gluster" | "vstorage" => DiskFormat::Qcow2,
            _ => DiskFormat::Raw,
        }
    }

    fn ext(self) -> &'static str {
        match self {
            DiskFormat::Qcow2 => "qcow2",
            DiskFormat::Raw => "raw",
        }
    }
}

fn disk_volume_name(key: &str, format: DiskFormat) -> String {
    format!("{key}-disk.{}", format.ext())
}

fn volume_name(key: &str, format: DiskFormat) -> String {
    format!("{key}.{}", format.ext())
}

/// Whether a name is a Yunzhi key (`yz-res-<id>`, earlier `yz-r<n>-<m>`).
fn is_key(name: &str) -> bool {
    name.starts_with("yz-")
}

/// The key of a Yunzhi volume's name; host disks (`…-disk.<ext>`) are
/// reported through their domain, not as volumes of their own.
fn volume_key(name: &str, format: DiskFormat) -> Option<&str> {
    let key = name.strip_suffix(format.ext())?.strip_suffix('.')?;
    (is_key(key) && !key.ends_with("-disk")).then_some(key)
}

/// Refuses a shrink; `Some(bytes)` when the disk must grow.
fn disk_growth(key: &str, current_bytes: u64, wanted_gib: u32) -> Result<Option<u64>, DriverError> {
    let wanted = u64::from(wanted_gib) * GIB;
    if wanted < current_bytes {
        return Err(DriverError::Rejected(format!(
            "{key}: its disk is {} GiB and a disk cannot shrink to {wanted_gib} GiB",
            gib_up(current_bytes)
        )));
    }
    Ok((wanted > current_bytes).then_some(wanted))
}

/// One call's view of the platform.
struct Ctx<'a> {
    conn: &'a Connect,
    cfg: &'a LibvirtConfig,
    platform: &'a str,
}

impl Ctx<'_> {
    fn pool(&self) -> Result<(StoragePool, DiskFormat), DriverError> {
        let name = &self.cfg.storage_pool;
        let pool = self
            .conn
            .lookup_storage_pool_by_name(name)
            .map_err(|e| fault(&e, &format!("{}: storage pool {name}", self.platform)))?;
        let desc = pool.xml_desc(0).map_err(|e| fault(&e, &format!("reading storage pool {name}")))?;
        let pool_type = xml::root_attr(&desc, "pool", "type").unwrap_or_default();
        Ok((pool, DiskFormat::of_pool_type(&pool_type)))
    }

    fn domain(&self, key: &str) -> Result<Option<Domain>, DriverError> {
        match self.conn.lookup_domain_by_name(key) {
            Ok(d) => Ok(Some(d)),
            Err(e) if is(&e, ErrorNumber::NoDomain) => Ok(None),
            Err(e) => Err(fault(&e, &format!("looking up domain {key}"))),
        }
    }

    fn volume(&self, pool: &StoragePool, name: &str) -> Result<Option<StorageVol>, DriverError> {
        match pool.lookup_storage_vol_by_name(name) {
            Ok(v) => Ok(Some(v)),
            Err(e) if is(&e, ErrorNumber::NoStorageVolume) => Ok(None),
            Err(e) => Err(fault(&e, &format!("looking up volume {name}"))),
        }
    }

    /// The volume `name`, made now (as a copy of `base` if given) unless an
    /// earlier attempt made it already.
    fn ensure_volume(
        &self,
        pool: &StoragePool,
        format: DiskFormat,
        name: &str,
        gib: u32,
        base: Option<&str>,
    ) -> Result<StorageVol, DriverError> {
        if let Some(v) = self.volume(pool, name)? {
            return Ok(v);
        }
        let desc = xml::volume(name, u64::from(gib) * GIB, format);
        let made = match base {
            Some(path) => {
                let base = self
                    .conn
                    .lookup_storage_vol_by_path(path)
                    .map_err(|e| fault(&e, &format!("base image {path}")))?;
                StorageVol::create_xml_from(pool, &desc, &base, 0)
            }
            None => StorageVol::create_xml(pool, &desc, 0),
        };
        match made {
            Ok(v) => Ok(v),
            // Made meanwhile by a concurrent retry.
            Err(e) if is(&e, ErrorNumber::StorageVolExist) => self
                .volume(pool, name)?
                .ok_or_else(|| DriverError::Unavailable(format!("volume {name} came and went"))),
            Err(e) => Err(fault(&e, &format!("creating volume {name} of {gib} GiB"))),
        }
    }

    fn create_host(&self, spec: &ResourceSpec) -> Result<Remote, DriverError> {
        let (pool, format) = self.pool()?;
        let disk = disk_volume_name(&spec.key, format);
        self.ensure_volume(&pool, format, &disk, spec.storage_gib, self.cfg.base_image.as_deref())?;
        let dom = match self.domain(&spec.key)? {
            Some(d) => d,
            None => {
                let desc = xml::domain(self.cfg, spec, &disk, format);
                self.conn
                    .define_domain_xml(&desc)
                    .map_err(|e| fault(&e, &format!("defining domain {}", spec.key)))?
            }
        };
        // A retried create also starts what an interrupted one defined:
        // until create succeeds, nobody has been handed the host.
        if !self.active(&dom, &spec.key)? {
            dom.create().map_err(|e| fault(&e, &format!("starting domain {}", spec.key)))?;
        }
        self.host(&dom, Some(&pool), format)
    }

    fn create_volume(&self, spec: &ResourceSpec) -> Result<Remote, DriverError> {
        let (pool, format) = self.pool()?;
        let name = volume_name(&spec.key, format);
        let vol = self.ensure_volume(&pool, format, &name, spec.storage_gib, None)?;
        self.volume_remote(&vol, &spec.key)
    }

    fn active(&self, dom: &Domain, key: &str) -> Result<bool, DriverError> {
        dom.is_active().map_err(|e| fault(&e, &format!("reading the state of {key}")))
    }

    /// The Yunzhi key in a domain's metadata; `None` for other domains.
    fn key_of(&self, dom: &Domain, name: &str) -> Result<Option<String>, DriverError> {
        match dom.metadata(sys::VIR_DOMAIN_METADATA_ELEMENT as i32, Some(METADATA_NAMESPACE), 0) {
            Ok(m) => Ok(xml::root_attr(&m, "resource", "key")),
            Err(e) if is(&e, ErrorNumber::NoDomainMetadata) => Ok(None),
            Err(e) => Err(fault(&e, &format!("reading the metadata of {name}"))),
        }
    }

    /// A domain as Yunzhi sees it; `pool` is where its disk is, when known.
    fn host(
        &self,
        dom: &Domain,
        pool: Option<&StoragePool>,
        format: DiskFormat,
    ) -> Result<Remote, DriverError> {
        let name = dom.name().map_err(|e| fault(&e, "reading a domain's name"))?;
        let key = self.key_of(dom, &name)?;
        let (state, _) = dom.state().map_err(|e| fault(&e, &format!("reading the state of {name}")))?;
        let state = match state.known() {
            Some(
                DomainState::Running | DomainState::Blocked | DomainState::Shutdown | DomainState::NoState,
            ) => RemoteState::Active,
            _ => RemoteState::Stopped,
        };
        let (vcpu, memory_kib) = self.configured_size(dom, &name)?;
        let storage_gib = match (&key, pool) {
            (Some(k), Some(pool)) => match self.volume(pool, &disk_volume_name(k, format))? {
                Some(v) => {
                    gib_up(v.info().map_err(|e| fault(&e, &format!("reading the disk of {k}")))?.capacity)
                }
                None => 0,
            },
            _ => 0,
        };
        Ok(Remote {
            remote_id: dom.uuid_string().map_err(|e| fault(&e, &format!("reading the UUID of {name}")))?,
            key: key.unwrap_or_default(),
            name: name.clone(),
            kind: ResourceKind::Host,
            state,
            vcpu,
            memory_gib: u32::try_from(memory_kib.div_ceil(KIB_PER_GIB)).unwrap_or(u32::MAX),
            storage_gib,
        })
    }

    /// vCPUs and memory (KiB) of the persistent definition, which is what
    /// the next start gets; the running instance may still have the old.
    fn configured_size(&self, dom: &Domain, name: &str) -> Result<(u32, u64), DriverError> {
        let flags = if dom.is_persistent().unwrap_or(true) { sys::VIR_DOMAIN_XML_INACTIVE } else { 0 };
        let desc =
            dom.xml_desc(flags).map_err(|e| fault(&e, &format!("reading the definition of {name}")))?;
        match xml::domain_size(&desc) {
            Some(size) => Ok(size),
            None => {
                let info = dom.info().map_err(|e| fault(&e, &format!("reading the size of {name}")))?;
                Ok((info.nr_virt_cpu, info.max_mem))
            }
        }
    }

    fn volume_remote(&self, vol: &StorageVol, key: &str) -> Result<Remote, DriverError> {
        let info = vol.info().map_err(|e| fault(&e, &format!("reading volume {key}")))?;
        Ok(Remote {
            remote_id: vol.key().map_err(|e| fault(&e, &format!("reading the key of volume {key}")))?,
            key: key.to_owned(),
            name: vol.name().unwrap_or_default(),
            kind: ResourceKind::Volume,
            state: RemoteState::Active,
            vcpu: 0,
            memory_gib: 0,
            storage_gib: gib_up(info.capacity),
        })
    }

    fn get(&self, key: &str) -> Result<Option<Remote>, DriverError> {
        let dom = self.domain(key)?;
        // The pool is only needed for the disk or the volume; a host whose
        // pool is gone is still reported.
        let pool = match self.pool() {
            Ok(p) => Some(p),
            Err(e) if dom.is_some() => {
                tracing::warn!(platform = %self.platform, key, error = %e, "storage pool unreadable");
                None
            }
            Err(e) => return Err(e),
        };
        let format = pool.as_ref().map_or(DiskFormat::Qcow2, |p| p.1);
        if let Some(dom) = dom {
            return self.host(&dom, pool.as_ref().map(|p| &p.0), format).map(Some);
        }
        let Some((pool, format)) = pool else { return Ok(None) };
        match self.volume(&pool, &volume_name(key, format))? {
            Some(v) => self.volume_remote(&v, key).map(Some),
            None => Ok(None),
        }
    }

    fn must_get(&self, key: &str) -> Result<Remote, DriverError> {
        self.get(key)?
            .ok_or_else(|| DriverError::NotFound(format!("{}: nothing has key {key}", self.platform)))
    }

    /// Changes the persistent definition only: a running host keeps its
    /// vCPUs and memory until its next start, and is not restarted here, as
    /// that is the owner's call. Its disk grows at once, through the domain
    /// when it runs.
    fn resize(&self, key: &str, vcpu: u32, memory_gib: u32, storage_gib: u32) -> Result<Remote, DriverError> {
        let (pool, format) = self.pool()?;
        let Some(dom) = self.domain(key)? else {
            let name = volume_name(key, format);
            let vol = self
                .volume(&pool, &name)?
                .ok_or_else(|| DriverError::NotFound(format!("{}: nothing has key {key}", self.platform)))?;
            self.grow_volume(&vol, key, storage_gib, None)?;
            return self.volume_remote(&vol, key);
        };
        let disk = self.volume(&pool, &disk_volume_name(key, format))?;
        // Refuse a shrink before changing anything else.
        if let Some(disk) = &disk {
            let info = disk.info().map_err(|e| fault(&e, &format!("reading the disk of {key}")))?;
            disk_growth(key, info.capacity, storage_gib)?;
        }
        let (cur_vcpu, cur_kib) = self.configured_size(&dom, key)?;
        if vcpu != cur_vcpu {
            self.set_vcpus(&dom, key, cur_vcpu, vcpu)?;
        }
        let kib = u64::from(memory_gib) * KIB_PER_GIB;
        if kib != cur_kib {
            self.set_memory(&dom, key, cur_kib, kib)?;
        }
        if let Some(disk) = &disk {
            let running = self.active(&dom, key)?;
            self.grow_volume(disk, key, storage_gib, running.then_some(&dom))?;
        }
        self.host(&dom, Some(&pool), format)
    }

    /// Sets the definition's vCPU count; the maximum moves with it, first
    /// when growing and last when shrinking, as libvirt keeps count ≤ maximum.
    fn set_vcpus(&self, dom: &Domain, key: &str, from: u32, to: u32) -> Result<(), DriverError> {
        let max = sys::VIR_DOMAIN_VCPU_CONFIG | sys::VIR_DOMAIN_VCPU_MAXIMUM;
        let steps =
            if to > from { [max, sys::VIR_DOMAIN_VCPU_CONFIG] } else { [sys::VIR_DOMAIN_VCPU_CONFIG, max] };
        for flags in steps {
            dom.set_vcpus_flags(to, flags).map_err(|e| fault(&e, &format!("setting {key} to {to} vCPU")))?;
        }
        Ok(())
    }

    fn set_memory(&self, dom: &Domain, key: &str, from_kib: u64, to_kib: u64) -> Result<(), DriverError> {
        let max = sys::VIR_DOMAIN_MEM_CONFIG | sys::VIR_DOMAIN_MEM_MAXIMUM;
        let steps = if to_kib > from_kib {
            [max, sys::VIR_DOMAIN_MEM_CONFIG]
        } else {
            [sys::VIR_DOMAIN_MEM_CONFIG, max]
        };
        for flags in steps {
            dom.set_memory_flags(to_kib, flags).map_err(|e| {
                fault(&e, &format!("setting {key} to {} GiB of memory", to_kib / KIB_PER_GIB))
            })?;
        }
        Ok(())
    }

    /// Grows a volume; one in use by a running domain is grown through the
    /// domain, so the hypervisor, which holds the image open, does it.
    fn grow_volume(
        &self,
        vol: &StorageVol,
        key: &str,
        gib: u32,
        running: Option<&Domain>,
    ) -> Result<(), DriverError> {
        let info = vol.info().map_err(|e| fault(&e, &format!("reading the size of {key}'s storage")))?;
        let Some(bytes) = disk_growth(key, info.capacity, gib)? else { return Ok(()) };
        let grown = match running {
            Some(dom) => dom.block_resize(DISK_TARGET, bytes, sys::VIR_DOMAIN_BLOCK_RESIZE_BYTES),
            None => vol.resize(bytes, 0),
        };
        grown.map_err(|e| fault(&e, &format!("growing the storage of {key} to {gib} GiB")))
    }

    fn suspend(&self, key: &str) -> Result<Remote, DriverError> {
        let Some(dom) = self.domain(key)? else { return self.must_get(key) };
        let (state, _) = dom.state().map_err(|e| fault(&e, &format!("reading the state of {key}")))?;
        match state.known() {
            Some(DomainState::Shutoff | DomainState::Crashed) => {}
            // A paused guest cannot answer the ACPI power button.
            Some(DomainState::Paused | DomainState::PMSuspended) => self.destroy(&dom, key)?,
            _ => {
                if let Err(e) = dom.shutdown() {
                    tracing::info!(platform = %self.platform, key, error = %e.message(), "graceful shutdown refused");
                }
                let deadline = Instant::now() + Duration::from_secs(self.cfg.shutdown_timeout_secs);
                while self.active(&dom, key)? && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(250));
                }
                if self.active(&dom, key)? {
                    tracing::warn!(platform = %self.platform, key, "guest did not shut down in time; powering off");
                    self.destroy(&dom, key)?;
                }
            }
        }
        self.must_get(key)
    }

    /// Powers a domain off; one that stopped meanwhile is fine.
    fn destroy(&self, dom: &Domain, key: &str) -> Result<(), DriverError> {
        match dom.destroy() {
            Ok(()) => Ok(()),
            Err(e) if is(&e, ErrorNumber::OperationInvalid) && !self.active(dom, key)? => Ok(()),
            Err(e) => Err(fault(&e, &format!("powering off {key}"))),
        }
    }

    fn resume(&self, key: &str) -> Result<Remote, DriverError> {
        let Some(dom) = self.domain(key)? else { return self.must_get(key) };
        let (state, _) = dom.state().map_err(|e| fault(&e, &format!("reading the state of {key}")))?;
        match state.known() {
            Some(DomainState::Paused) => dom.resume().map_err(|e| fault(&e, &format!("unpausing {key}")))?,
            Some(DomainState::Shutoff | DomainState::Crashed) => {
                dom.create().map_err(|e| fault(&e, &format!("starting {key}")))?
            }
            _ => {}
        }
        self.must_get(key)
    }

    fn delete(&self, key: &str) -> Result<(), DriverError> {
        if let Some(dom) = self.domain(key)? {
            if self.active(&dom, key)? {
                self.destroy(&dom, key)?;
            }
            self.undefine(&dom, key)?;
        }
        let (pool, format) = self.pool()?;
        for name in [disk_volume_name(key, format), volume_name(key, format)] {
            if let Some(vol) = self.volume(&pool, &name)? {
                match vol.delete(0) {
                    Ok(()) => {}
                    Err(e) if is(&e, ErrorNumber::NoStorageVolume) => {}
                    Err(e) => return Err(fault(&e, &format!("deleting volume {name}"))),
                }
            }
        }
        Ok(())
    }

    /// Undefines a domain with its managed save, snapshot metadata and
    /// UEFI variables; drivers that do not know a flag are asked again
    /// without it.
    fn undefine(&self, dom: &Domain, key: &str) -> Result<(), DriverError> {
        let base = sys::VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | sys::VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA;
        let mut last = None;
        for flags in [base | sys::VIR_DOMAIN_UNDEFINE_NVRAM, base, 0] {
            match dom.undefine_flags(flags) {
                Ok(()) => return Ok(()),
                Err(e) if is(&e, ErrorNumber::NoDomain) => return Ok(()),
                Err(e) if is(&e, ErrorNumber::InvalidArg) || is(&e, ErrorNumber::NoSupport) => last = Some(e),
                Err(e) => return Err(fault(&e, &format!("undefining {key}"))),
            }
        }
        Err(last.map_or_else(
            || DriverError::Rejected(format!("undefining {key} failed")),
            |e| fault(&e, &format!("undefining {key}")),
        ))
    }

    fn list(&self) -> Result<Vec<Remote>, DriverError> {
        let (pool, format) = self.pool()?;
        let domains = self.conn.list_all_domains(0).map_err(|e| fault(&e, "listing domains"))?;
        let mut out = Vec::with_capacity(domains.len());
        for dom in &domains {
            out.push(self.host(dom, Some(&pool), format)?);
        }
        for vol in pool.list_all_volumes(0).map_err(|e| fault(&e, "listing volumes"))? {
            let name = vol.name().map_err(|e| fault(&e, "reading a volume's name"))?;
            if let Some(key) = volume_key(&name, format) {
                out.push(self.volume_remote(&vol, key)?);
            }
        }
        Ok(out)
    }

    fn capacity(&self) -> Result<CapacityReport, DriverError> {
        let node = self.conn.node_info().map_err(|e| fault(&e, "reading the node's size"))?;
        let (pool, _) = self.pool()?;
        let pool_info = pool.info().map_err(|e| fault(&e, "reading the storage pool's size"))?;
        let (mut used_vcpu, mut used_kib) = (0u64, 0u64);
        for dom in self.conn.list_all_domains(0).map_err(|e| fault(&e, "listing domains"))? {
            let name = dom.name().map_err(|e| fault(&e, "reading a domain's name"))?;
            let (vcpu, kib) = self.configured_size(&dom, &name)?;
            used_vcpu += u64::from(vcpu);
            used_kib += kib;
        }
        let mut used_bytes = 0u64;
        for vol in pool.list_all_volumes(0).map_err(|e| fault(&e, "listing volumes"))? {
            used_bytes += vol.info().map_err(|e| fault(&e, "reading a volume's size"))?.capacity;
        }
        Ok(CapacityReport {
            vcpu: u64::from(node.cpus),
            memory_gib: node.memory / KIB_PER_GIB,
            storage_gib: pool_info.capacity / GIB,
            used_vcpu,
            used_memory_gib: used_kib.div_ceil(KIB_PER_GIB),
            used_storage_gib: used_bytes.div_ceil(GIB),
        })
    }
}

impl CloudDriver for Libvirt {
    fn create<'a>(&'a self, spec: &'a ResourceSpec) -> DriverFuture<'a, Remote> {
        let spec = spec.clone();
        Box::pin(async move {
            match spec.kind {
                ResourceKind::Host => self.run(move |ctx| ctx.create_host(&spec)).await,
                ResourceKind::Volume => self.run(move |ctx| ctx.create_volume(&spec)).await,
                ResourceKind::Service => Err(DriverError::Rejected(format!(
                    "{}: a libvirt platform provides hosts and volumes, not managed services ({})",
                    self.shared.name, spec.key
                ))),
            }
        })
    }

    fn get<'a>(&'a self, key: &'a str) -> DriverFuture<'a, Option<Remote>> {
        let key = key.to_owned();
        Box::pin(self.run(move |ctx| ctx.get(&key)))
    }

    fn resize<'a>(
        &'a self,
        key: &'a str,
        vcpu: u32,
        memory_gib: u32,
        storage_gib: u32,
    ) -> DriverFuture<'a, Remote> {
        let key = key.to_owned();
        Box::pin(self.run(move |ctx| ctx.resize(&key, vcpu, memory_gib, storage_gib)))
    }

    fn suspend<'a>(&'a self, key: &'a str) -> DriverFuture<'a, Remote> {
        let key = key.to_owned();
        Box::pin(self.run(move |ctx| ctx.suspend(&key)))
    }

    fn resume<'a>(&'a self, key: &'a str) -> DriverFuture<'a, Remote> {
        let key = key.to_owned();
        Box::pin(self.run(move |ctx| ctx.resume(&key)))
    }

    fn delete<'a>(&'a self, key: &'a str) -> DriverFuture<'a, ()> {
        let key = key.to_owned();
        Box::pin(self.run(move |ctx| ctx.delete(&key)))
    }

    fn list(&self) -> DriverFuture<'_, Vec<Remote>> {
        Box::pin(self.run(|ctx| ctx.list()))
    }

    fn capacity(&self) -> DriverFuture<'_, CapacityReport> {
        Box::pin(self.run(|ctx| ctx.capacity()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_gets_its_defaults_and_refuses_unknown_fields() {
        let c: LibvirtConfig = serde_json::from_str(r#"{"uri":"qemu:///system","arch":"aarch64"}"#).unwrap();
        assert_eq!(c.storage_pool, "default");
        assert_eq!(c.network.as_deref(), Some("default"));
        assert_eq!(c.domain_type, "kvm");
        assert_eq!(c.arch, Arch::Aarch64);
        let c: LibvirtConfig =
            serde_json::from_str(r#"{"uri":"test:///default","arch":"x86_64","network":null}"#).unwrap();
        assert_eq!(c.network, None);
        assert!(serde_json::from_str::<LibvirtConfig>(r#"{"uri":"x","arch":"x86_64","pool":"p"}"#).is_err());
        assert!(serde_json::from_str::<LibvirtConfig>(r#"{"uri":"x","arch":"riscv64"}"#).is_err());
    }

    #[test]
    fn host_disks_are_not_volumes_of_their_own() {
        assert_eq!(volume_key("yz-res-7.qcow2", DiskFormat::Qcow2), Some("yz-res-7"));
        assert_eq!(volume_key("yz-res-7-disk.qcow2", DiskFormat::Qcow2), None);
        assert_eq!(volume_key("base.qcow2", DiskFormat::Qcow2), None);
        assert_eq!(volume_key("yz-res-7.qcow2", DiskFormat::Raw), None);
        assert_eq!(DiskFormat::of_pool_type("logical"), DiskFormat::Raw);
    }

    #[test]
    fn a_disk_grows_stays_or_is_refused_a_shrink() {
        assert_eq!(disk_growth("k", 10 * GIB, 20).unwrap(), Some(20 * GIB));
        assert_eq!(disk_growth("k", 10 * GIB, 10).unwrap(), None);
        assert!(matches!(disk_growth("k", 10 * GIB, 5), Err(DriverError::Rejected(_))));
    }
}
