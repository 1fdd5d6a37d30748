//! The service catalog (服务目录, Art. 5): what a unit can ask for, with its
//! specification and unit of measure. Editable data, seeded with a default
//! modelled on what district government clouds offer.

use serde::{Deserialize, Serialize};

use crate::invalid::{Checker, FieldError, Invalid};
use crate::system::Arch;
use crate::text;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CatalogKind {
    CloudHost,
    BlockStorage,
    ObjectStorage,
    FileStorage,
    Database,
    LoadBalancer,
    IpBandwidth,
    SecurityService,
}

impl CatalogKind {
    pub const ALL: [CatalogKind; 8] = [
        CatalogKind::CloudHost,
        CatalogKind::BlockStorage,
        CatalogKind::ObjectStorage,
        CatalogKind::FileStorage,
        CatalogKind::Database,
        CatalogKind::LoadBalancer,
        CatalogKind::IpBandwidth,
        CatalogKind::SecurityService,
    ];

    pub fn code(self) -> &'static str {
        match self {
            CatalogKind::CloudHost => "cloud_host",
            CatalogKind::BlockStorage => "block_storage",
            CatalogKind::ObjectStorage => "object_storage",
            CatalogKind::FileStorage => "file_storage",
            CatalogKind::Database => "database",
            CatalogKind::LoadBalancer => "load_balancer",
            CatalogKind::IpBandwidth => "ip_bandwidth",
            CatalogKind::SecurityService => "security_service",
        }
    }

    pub fn parse(field: &str, raw: &str) -> Result<CatalogKind, Invalid> {
        CatalogKind::ALL.into_iter().find(|k| k.code() == raw).ok_or_else(|| {
            let all: Vec<_> = CatalogKind::ALL.iter().map(|k| k.code()).collect();
            FieldError::new(field, "unknown_kind", format!("{field} must be one of {}", all.join(", ")))
                .into()
        })
    }

    /// Whether a request's `quantity` counts GiB of this item (storage) rather than pieces.
    pub fn counts_gib(self) -> bool {
        matches!(self, CatalogKind::BlockStorage | CatalogKind::ObjectStorage | CatalogKind::FileStorage)
    }
}

/// One thing the catalog offers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogSpec {
    /// A stable code, e.g. `ecs.x86.c4m8`, that survives renames.
    pub code: String,
    pub kind: CatalogKind,
    /// The Chinese name shown to users.
    pub name: String,
    pub name_en: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<Arch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vcpu: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_gib: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_gib: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    /// What one `quantity` of this item is: `host`, `GiB`, `instance`, `Mbps`.
    pub measure: String,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CatalogItemInput {
    pub code: String,
    pub kind: String,
    pub name: String,
    pub name_en: String,
    #[serde(default)]
    pub arch: Option<String>,
    #[serde(default)]
    pub vcpu: Option<i64>,
    #[serde(default)]
    pub memory_gib: Option<i64>,
    #[serde(default)]
    pub disk_gib: Option<i64>,
    #[serde(default)]
    pub images: Vec<String>,
    #[serde(default)]
    pub engine: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

fn positive(c: &mut Checker, field: &str, raw: Option<i64>, max: i64, required: bool) -> Option<u32> {
    match raw {
        None if required => {
            c.push(FieldError::new(field, "required", format!("{field} is required for a cloud host")));
            None
        }
        None => None,
        Some(v) if (1..=max).contains(&v) => Some(v as u32),
        Some(v) => {
            c.push(FieldError::new(
                field,
                "out_of_range",
                format!("{field} must be between 1 and {max}, it is {v}"),
            ));
            None
        }
    }
}

impl CatalogSpec {
    pub fn parse(input: &CatalogItemInput) -> Result<CatalogSpec, Invalid> {
        let mut c = Checker::new();
        let code = c.take(text::bounded("code", &input.code, 2, 48));
        if let Some(code) = &code
            && !code.chars().all(|ch| ch.is_ascii_alphanumeric() || "._-".contains(ch))
        {
            c.push(FieldError::new(
                "code",
                "code_format",
                "code may contain only letters, digits, `.`, `_` and `-`",
            ));
        }
        let kind = c.take(CatalogKind::parse("kind", &input.kind));
        let name = c.take(text::bounded("name", &input.name, 1, 64));
        let name_en = c.take(text::bounded("name_en", &input.name_en, 1, 64));
        let is_host = kind == Some(CatalogKind::CloudHost);
        let arch = match input.arch.as_deref() {
            Some(a) => c.take(Arch::parse("arch", a)),
            None if is_host => {
                c.push(FieldError::new("arch", "required", "arch is required for a cloud host"));
                None
            }
            None => None,
        };
        let vcpu = positive(&mut c, "vcpu", input.vcpu, 512, is_host);
        let memory_gib = positive(&mut c, "memory_gib", input.memory_gib, 4096, is_host);
        let disk_gib = positive(&mut c, "disk_gib", input.disk_gib, 65536, is_host);
        if is_host && input.images.is_empty() {
            c.push(FieldError::new("images", "required", "a cloud host must offer at least one image"));
        }
        let mut images = Vec::new();
        for (i, img) in input.images.iter().enumerate() {
            if let Some(ok) = c.take(text::bounded(&format!("images[{i}]"), img, 1, 64)) {
                images.push(ok);
            }
        }
        let engine = c.take(text::optional("engine", input.engine.as_deref(), 64)).flatten();
        let description = c.take(text::optional("description", input.description.as_deref(), 500)).flatten();
        c.finish()?;
        let kind = kind.unwrap_or(CatalogKind::CloudHost);
        Ok(CatalogSpec {
            code: code.unwrap_or_default(),
            kind,
            name: name.unwrap_or_default(),
            name_en: name_en.unwrap_or_default(),
            arch,
            vcpu,
            memory_gib,
            disk_gib,
            images,
            engine,
            measure: default_measure(kind).to_owned(),
            description: description.unwrap_or_default(),
        })
    }
}

/// A change to a catalog item. Its `code`, kind, architecture and size stay:
/// requests and resources refer to them; a different size is a new item,
/// and an item no longer offered is made inactive rather than deleted.
#[derive(Debug, Clone, Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CatalogPatchInput {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub name_en: Option<String>,
    #[serde(default)]
    pub images: Option<Vec<String>>,
    #[serde(default)]
    pub description: Option<String>,
    /// `false` withdraws the item from new requests.
    #[serde(default)]
    pub active: Option<bool>,
}

impl CatalogSpec {
    /// The item after `patch`, and whether it is active, or why not.
    pub fn apply(&self, active: bool, patch: &CatalogPatchInput) -> Result<(CatalogSpec, bool), Invalid> {
        let mut c = Checker::new();
        let mut next = self.clone();
        if let Some(n) = patch.name.as_deref().and_then(|n| c.take(text::bounded("name", n, 1, 64))) {
            next.name = n;
        }
        if let Some(n) = patch.name_en.as_deref().and_then(|n| c.take(text::bounded("name_en", n, 1, 64))) {
            next.name_en = n;
        }
        if let Some(d) = &patch.description {
            next.description =
                c.take(text::optional("description", Some(d), 500)).flatten().unwrap_or_default();
        }
        if let Some(images) = &patch.images {
            if self.kind == CatalogKind::CloudHost && images.is_empty() {
                c.push(FieldError::new("images", "required", "a cloud host must offer at least one image"));
            }
            let mut checked = Vec::new();
            for (i, img) in images.iter().enumerate() {
                if let Some(ok) = c.take(text::bounded(&format!("images[{i}]"), img, 1, 64)) {
                    checked.push(ok);
                }
            }
            next.images = checked;
        }
        c.finish()?;
        let nothing = patch.name.is_none()
            && patch.name_en.is_none()
            && patch.images.is_none()
            && patch.description.is_none()
            && patch.active.is_none();
        if nothing {
            return Err(FieldError::new("", "empty_patch", "the request changes nothing").into());
        }
        Ok((next, patch.active.unwrap_or(active)))
    }
}

pub fn default_measure(kind: CatalogKind) -> &'static str {
    match kind {
        CatalogKind::CloudHost => "host",
        CatalogKind::BlockStorage | CatalogKind::ObjectStorage | CatalogKind::FileStorage => "GiB",
        CatalogKind::IpBandwidth => "Mbps",
        CatalogKind::Database | CatalogKind::LoadBalancer | CatalogKind::SecurityService => "instance",
    }
}

const X86_IMAGES: &[&str] = &[
    "Kylin Server V10 SP3",
    "UOS Server 20 (1070e)",
    "openEuler 22.03 LTS SP4",
    "Anolis OS 8.9",
    "Windows Server 2019 Datacenter",
];
const ARM_IMAGES: &[&str] =
    &["Kylin Server V10 SP3 (aarch64)", "UOS Server 20 (1070a)", "openEuler 22.03 LTS SP4 (aarch64)"];

fn host(arch: Arch, vcpu: u32, memory_gib: u32, family: &str) -> CatalogSpec {
    let (a, images, zh) = match arch {
        Arch::X86_64 => ("x86", X86_IMAGES, "X86"),
        Arch::Aarch64 => ("arm", ARM_IMAGES, "ARM"),
    };
    CatalogSpec {
        code: format!("ecs.{a}.{family}{vcpu}m{memory_gib}"),
        kind: CatalogKind::CloudHost,
        name: format!("{zh}云主机 {vcpu}核{memory_gib}G"),
        name_en: format!("{zh} cloud host {vcpu} vCPU / {memory_gib} GiB"),
        arch: Some(arch),
        vcpu: Some(vcpu),
        memory_gib: Some(memory_gib),
        disk_gib: Some(100),
        images: images.iter().map(|s| s.to_string()).collect(),
        engine: None,
        measure: "host".into(),
        description: String::new(),
    }
}

fn item(code: &str, kind: CatalogKind, name: &str, name_en: &str, description: &str) -> CatalogSpec {
    CatalogSpec {
        code: code.into(),
        kind,
        name: name.into(),
        name_en: name_en.into(),
        arch: None,
        vcpu: None,
        memory_gib: None,
        disk_gib: None,
        images: vec![],
        engine: None,
        measure: default_measure(kind).into(),
        description: description.into(),
    }
}

fn database(code: &str, name: &str, name_en: &str, engine: &str, vcpu: u32, memory_gib: u32) -> CatalogSpec {
    CatalogSpec {
        vcpu: Some(vcpu),
        memory_gib: Some(memory_gib),
        engine: Some(engine.into()),
        ..item(code, CatalogKind::Database, name, name_en, "")
    }
}

/// The catalog a new installation starts with.
pub fn default_catalog() -> Vec<CatalogSpec> {
    use CatalogKind::*;
    let mut items = Vec::new();
    for (vcpu, mem, family) in
        [(2, 4, "c"), (4, 8, "c"), (8, 16, "c"), (16, 32, "c"), (8, 64, "r"), (32, 64, "c")]
    {
        items.push(host(Arch::X86_64, vcpu, mem, family));
    }
    for (vcpu, mem) in [(2, 4), (4, 8), (8, 16), (16, 32)] {
        items.push(host(Arch::Aarch64, vcpu, mem, "c"));
    }
    items.extend([
        item("evs.ssd", BlockStorage, "SSD云硬盘", "SSD block storage", "高性能块存储，适合数据库与交易系统"),
        item("evs.sata", BlockStorage, "SATA云硬盘", "SATA block storage", "容量型块存储，适合归档与日志"),
        item("obs.standard", ObjectStorage, "对象存储", "Object storage", "S3兼容对象存储"),
        item("nas.standard", FileStorage, "文件存储", "File storage (NAS)", "NFS/CIFS共享文件存储"),
        database(
            "rds.mysql8.c4m8",
            "MySQL 8.0 数据库 4核8G",
            "MySQL 8.0 database 4 vCPU / 8 GiB",
            "MySQL 8.0",
            4,
            8,
        ),
        database(
            "rds.pg15.c4m8",
            "PostgreSQL 15 数据库 4核8G",
            "PostgreSQL 15 database 4 vCPU / 8 GiB",
            "PostgreSQL 15",
            4,
            8,
        ),
        database(
            "rds.dm8.c4m16",
            "达梦 DM8 数据库 4核16G",
            "Dameng DM8 database 4 vCPU / 16 GiB",
            "DM8",
            4,
            16,
        ),
        database(
            "rds.kingbase.c4m16",
            "人大金仓 KingbaseES V8 数据库 4核16G",
            "KingbaseES V8 database 4 vCPU / 16 GiB",
            "KingbaseES V8R6",
            4,
            16,
        ),
        item("slb.standard", LoadBalancer, "负载均衡", "Load balancer", "四层/七层负载均衡实例"),
        item("eip.egov", IpBandwidth, "政务外网IP及带宽", "E-gov network IP and bandwidth", "按带宽Mbps计"),
        item("eip.internet", IpBandwidth, "互联网IP及带宽", "Internet IP and bandwidth", "按带宽Mbps计"),
        item("sec.waf", SecurityService, "Web应用防火墙", "Web application firewall", ""),
        item("sec.hids", SecurityService, "主机安全", "Host security (HIDS)", ""),
        item("sec.bastion", SecurityService, "堡垒机", "Bastion host", ""),
        item("sec.vulnscan", SecurityService, "漏洞扫描", "Vulnerability scan", ""),
        item("sec.dbaudit", SecurityService, "数据库审计", "Database audit", ""),
    ]);
    items
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn the_default_catalog_offers_every_kind() {
        let kinds: HashSet<_> = default_catalog().into_iter().map(|i| i.kind).collect();
        assert_eq!(kinds.len(), CatalogKind::ALL.len());
    }

    #[test]
    fn the_default_catalog_has_unique_codes() {
        let items = default_catalog();
        let codes: HashSet<_> = items.iter().map(|i| i.code.as_str()).collect();
        assert_eq!(codes.len(), items.len());
    }

    #[test]
    fn the_default_catalog_has_domestic_images_for_both_architectures() {
        for arch in [Arch::X86_64, Arch::Aarch64] {
            let host = default_catalog().into_iter().find(|i| i.arch == Some(arch)).unwrap();
            assert!(host.images.iter().any(|i| i.starts_with("Kylin")));
            assert!(host.images.iter().any(|i| i.starts_with("openEuler")));
        }
    }

    #[test]
    fn a_cloud_host_without_its_size_or_image_is_refused() {
        let input = CatalogItemInput {
            code: "ecs.x".into(),
            kind: "cloud_host".into(),
            name: "主机".into(),
            name_en: "host".into(),
            arch: None,
            vcpu: Some(0),
            memory_gib: None,
            disk_gib: Some(10),
            images: vec![],
            engine: None,
            description: None,
        };
        let fields: Vec<_> = CatalogSpec::parse(&input).unwrap_err().0.into_iter().map(|e| e.field).collect();
        assert_eq!(fields, ["arch", "vcpu", "memory_gib", "images"]);
    }

    #[test]
    fn a_host_item_keeps_at_least_one_image_and_can_be_withdrawn() {
        let host = default_catalog().into_iter().next().unwrap();
        let none = CatalogPatchInput { images: Some(vec![]), ..Default::default() };
        assert_eq!(host.apply(true, &none).unwrap_err().first().field, "images");
        let withdraw = CatalogPatchInput { active: Some(false), ..Default::default() };
        let (same, active) = host.apply(true, &withdraw).unwrap();
        assert_eq!((same, active), (host.clone(), false));
        assert!(host.apply(true, &CatalogPatchInput::default()).is_err());
    }

    #[test]
    fn storage_is_counted_in_gib() {
        assert!(CatalogKind::BlockStorage.counts_gib());
        assert!(!CatalogKind::CloudHost.counts_gib());
    }
}
