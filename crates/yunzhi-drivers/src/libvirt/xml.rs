//! The libvirt XML the driver writes (domains, volumes) and the few values
//! it reads back. Reading is by string search, not a parser: the documents
//! come from libvirt's own formatter, whose layout is fixed, and only a
//! handful of top-level values are needed.

use super::{Arch, DISK_TARGET, DiskFormat, LibvirtConfig, METADATA_NAMESPACE};
use crate::ResourceSpec;

/// Escapes text for an XML element or a quoted attribute.
pub(super) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// The start tag `<name …>` or `<prefix:name …>` first found in `xml`,
/// without its angle brackets, and the offset just past it.
fn start_tag<'a>(xml: &'a str, name: &str) -> Option<(&'a str, usize)> {
    let mut from = 0;
    while let Some(at) = xml[from..].find('<') {
        let open = from + at + 1;
        let close = open + xml[open..].find('>')?;
        let tag = &xml[open..close];
        let tag_name = tag.split(|c: char| c.is_whitespace() || c == '/').next().unwrap_or_default();
        let local = tag_name.rsplit(':').next().unwrap_or_default();
        if local == name && !tag.starts_with('/') {
            return Some((tag, close + 1));
        }
        from = close + 1;
    }
    None
}

fn attr(tag: &str, attr: &str) -> Option<String> {
    for quote in ['\'', '"'] {
        let needle = format!(" {attr}={quote}");
        if let Some(at) = tag.find(&needle) {
            let rest = &tag[at + needle.len()..];
            return rest.find(quote).map(|end| unescape(&rest[..end]));
        }
    }
    None
}

/// An attribute of the first `element` in `xml`.
pub(super) fn root_attr(xml: &str, element: &str, name: &str) -> Option<String> {
    attr(start_tag(xml, element)?.0, name)
}

/// The start tag and text of the first `element` in `xml`.
fn element<'a>(xml: &'a str, name: &str) -> Option<(&'a str, &'a str)> {
    let (tag, body) = start_tag(xml, name)?;
    let end = body + xml[body..].find('<')?;
    Some((tag, xml[body..end].trim()))
}

/// vCPUs (the active count) and memory in KiB of a domain definition.
pub(super) fn domain_size(desc: &str) -> Option<(u32, u64)> {
    // Other applications' metadata could hold elements of any name.
    let desc = desc.find("</metadata>").map_or(desc, |at| &desc[at..]);
    let (vcpu_tag, vcpus) = element(desc, "vcpu")?;
    let vcpu = match attr(vcpu_tag, "current") {
        Some(current) => current.parse().ok()?,
        None => vcpus.parse().ok()?,
    };
    let (mem_tag, mem) = element(desc, "memory")?;
    let factor = match attr(mem_tag, "unit").as_deref() {
        None | Some("KiB" | "k") => 1,
        Some("MiB" | "M") => 1 << 10,
        Some("GiB" | "G") => 1 << 20,
        Some(_) => return None,
    };
    Some((vcpu, mem.parse::<u64>().ok()? * factor))
}

/// A storage volume of `bytes`.
pub(super) fn volume(name: &str, bytes: u64, format: DiskFormat) -> String {
    // Block-backed pools know one format and refuse to be told it.
    let target = match format {
        DiskFormat::Qcow2 => "<target><format type='qcow2'/></target>",
        DiskFormat::Raw => "",
    };
    format!("<volume><name>{}</name><capacity unit='bytes'>{bytes}</capacity>{target}</volume>", escape(name))
}

/// A persistent domain for `spec`, its disk the volume `disk` of the pool.
pub(super) fn domain(cfg: &LibvirtConfig, spec: &ResourceSpec, disk: &str, format: DiskFormat) -> String {
    let kib = u64::from(spec.memory_gib) << 20;
    let key = escape(&spec.key);
    let kvm = cfg.domain_type == "kvm";
    let (arch, os, features) = match cfg.arch {
        // x86_64 takes the hypervisor's default machine type and firmware.
        Arch::X86_64 => ("x86_64", "<os>", "<acpi/><apic/>"),
        // aarch64 has no default machine type and boots through UEFI.
        Arch::Aarch64 => ("aarch64", "<os firmware='efi'>", "<acpi/><gic version='host'/>"),
    };
    let machine = match cfg.arch {
        Arch::Aarch64 => " machine='virt'",
        Arch::X86_64 => "",
    };
    // Without KVM there is no host CPU to pass through, nor a host GIC.
    let features = if kvm { features.to_owned() } else { features.replace("<gic version='host'/>", "") };
    let cpu = if kvm { "<cpu mode='host-passthrough'/>" } else { "" };
    let interface = cfg.network.as_deref().map_or_else(String::new, |net| {
        format!(
            "<interface type='network'><source network='{}'/><model type='virtio'/></interface>",
            escape(net)
        )
    });
    format!(
        "<domain type='{domain_type}'>\
<name>{key}</name>\
<title>{title}</title>\
<metadata><yz:resource xmlns:yz='{ns}' key='{key}' kind='host'/></metadata>\
<memory unit='KiB'>{kib}</memory>\
<currentMemory unit='KiB'>{kib}</currentMemory>\
<vcpu placement='static'>{vcpu}</vcpu>\
{os}<type arch='{arch}'{machine}>hvm</type><boot dev='hd'/></os>\
<features>{features}</features>{cpu}\
<devices>\
<disk type='volume' device='disk'><driver name='qemu' type='{fmt}'/>\
<source pool='{pool}' volume='{disk}'/><target dev='{target}' bus='virtio'/></disk>\
{interface}<console type='pty'/>\
</devices>\
</domain>",
        domain_type = escape(&cfg.domain_type),
        title = escape(&spec.name),
        ns = METADATA_NAMESPACE,
        vcpu = spec.vcpu,
        fmt = format.ext(),
        pool = escape(&cfg.storage_pool),
        disk = escape(disk),
        target = DISK_TARGET,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(arch: &str, domain_type: &str) -> LibvirtConfig {
        serde_json::from_value(serde_json::json!({
            "uri": "qemu:///system", "arch": arch, "domain_type": domain_type, "storage_pool": "images"
        }))
        .unwrap()
    }

    fn spec() -> ResourceSpec {
        ResourceSpec {
            key: "yz-res-9".into(),
            name: "s3-r12 <ecs> & 01".into(),
            kind: crate::ResourceKind::Host,
            vcpu: 4,
            memory_gib: 8,
            storage_gib: 100,
            image: None,
        }
    }

    #[test]
    fn an_aarch64_kvm_domain_boots_uefi_on_the_virt_machine_with_the_host_cpu() {
        let x = domain(&config("aarch64", "kvm"), &spec(), "yz-res-9-disk.qcow2", DiskFormat::Qcow2);
        assert!(x.starts_with("<domain type='kvm'>"), "{x}");
        assert!(x.contains("<os firmware='efi'><type arch='aarch64' machine='virt'>hvm</type>"), "{x}");
        assert!(x.contains("<cpu mode='host-passthrough'/>") && x.contains("<gic version='host'/>"), "{x}");
        assert!(x.contains("<title>s3-r12 &lt;ecs&gt; &amp; 01</title>"), "{x}");
        assert!(x.contains("<source pool='images' volume='yz-res-9-disk.qcow2'/>"), "{x}");
        assert!(x.contains("<source network='default'/>"), "{x}");
        assert_eq!(domain_size(&x), Some((4, 8 << 20)));
        assert_eq!(root_attr(&x, "resource", "key").as_deref(), Some("yz-res-9"));
    }

    #[test]
    fn an_x86_domain_without_kvm_passes_no_host_cpu_through() {
        let x = domain(&config("x86_64", "test"), &spec(), "d.raw", DiskFormat::Raw);
        assert!(x.contains("<type arch='x86_64'>hvm</type>") && !x.contains("host-passthrough"), "{x}");
        assert!(x.contains("<driver name='qemu' type='raw'/>"), "{x}");
    }

    #[test]
    fn sizes_are_read_past_other_metadata_and_honour_the_current_vcpu_count() {
        let x = "<domain><metadata><app:memory xmlns:app='x'>1</app:memory></metadata>\
                 <memory unit='KiB'>2097152</memory><vcpu placement='static' current='2'>8</vcpu></domain>";
        assert_eq!(domain_size(x), Some((2, 2097152)));
        assert_eq!(root_attr("<pool type='logical'>", "pool", "type").as_deref(), Some("logical"));
        assert_eq!(root_attr(r#"<resource key="a&amp;b"/>"#, "resource", "key").as_deref(), Some("a&b"));
    }

    #[test]
    fn a_volume_of_a_block_pool_names_no_format() {
        assert_eq!(
            volume("v.raw", 1 << 30, DiskFormat::Raw),
            "<volume><name>v.raw</name><capacity unit='bytes'>1073741824</capacity></volume>"
        );
        assert!(volume("v.qcow2", 1, DiskFormat::Qcow2).contains("<format type='qcow2'/>"));
    }
}
