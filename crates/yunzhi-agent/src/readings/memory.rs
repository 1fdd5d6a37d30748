//! Memory use from `/proc/meminfo`.

use crate::host::{HostRoot, ReadError, read_to_string};

/// Share of memory in use: (MemTotal - MemAvailable) / MemTotal, in percent.
/// MemAvailable is the kernel's own estimate of what can be had without
/// swapping, so page cache does not make an idle host look busy.
pub fn read_percent(host: &HostRoot) -> Result<f64, ReadError> {
    let path = host.proc("meminfo");
    let text = read_to_string(&path)?;
    parse_percent(&text).ok_or_else(|| ReadError::format(&path, "no usable MemTotal / MemAvailable"))
}

fn parse_percent(text: &str) -> Option<f64> {
    let field = |name: &str| -> Option<u64> {
        text.lines().find_map(|l| {
            let (key, rest) = l.split_once(':')?;
            (key.trim() == name).then(|| rest.split_whitespace().next()?.parse().ok())?
        })
    };
    let total = field("MemTotal").filter(|t| *t > 0)?;
    // Kernels before 3.14 have no MemAvailable: the classic approximation.
    let available = field("MemAvailable")
        .or_else(|| Some(field("MemFree")? + field("Buffers").unwrap_or(0) + field("Cached").unwrap_or(0)))?;
    let used = total.saturating_sub(available);
    Some(used as f64 * 100.0 / total as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::readings::fixture::Fixture;

    #[test]
    fn memory_use_is_the_share_of_total_memory_that_is_not_available() {
        let fx = Fixture::new();
        fx.write(
            "proc/meminfo",
            "MemTotal:        8000000 kB\nMemFree:          500000 kB\nMemAvailable:    6000000 kB\n\
             Buffers:          100000 kB\nCached:          4000000 kB\n",
        );
        let pct = read_percent(&fx.host).expect("reads");
        assert!((pct - 25.0).abs() < 1e-9, "{pct}");
    }

    #[test]
    fn without_mem_available_free_buffers_and_cache_count_as_available() {
        let pct = parse_percent("MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 100 kB\nCached: 300 kB\n");
        assert_eq!(pct, Some(50.0));
    }

    #[test]
    fn a_meminfo_without_a_total_is_an_error_naming_the_file() {
        let fx = Fixture::new();
        fx.write("proc/meminfo", "MemFree: 1 kB\n");
        let err = read_percent(&fx.host).expect_err("no total").to_string();
        assert!(err.contains("proc/meminfo"), "{err}");
    }
}
