//! CPU use from the aggregate `cpu` line of `/proc/stat`.

use crate::host::{HostRoot, ReadError, read_to_string};

/// Cumulative jiffies of all CPUs since boot, split into busy and total.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuTimes {
    pub busy: u64,
    pub total: u64,
}

pub fn read(host: &HostRoot) -> Result<CpuTimes, ReadError> {
    let path = host.proc("stat");
    let text = read_to_string(&path)?;
    parse(&text).ok_or_else(|| ReadError::format(&path, "no aggregate `cpu` line with at least 4 counters"))
}

/// Fields: user nice system idle iowait irq softirq steal guest guest_nice.
/// iowait is waiting, not working, so it counts as idle; guest and guest_nice
/// are already included in user and nice, so they are left out to avoid
/// counting them twice. Older kernels print fewer fields: missing ones are 0.
fn parse(text: &str) -> Option<CpuTimes> {
    let line = text.lines().find(|l| l.split_whitespace().next() == Some("cpu"))?;
    let fields: Vec<u64> = line.split_whitespace().skip(1).map(|f| f.parse().ok()).collect::<Option<_>>()?;
    if fields.len() < 4 {
        return None;
    }
    let at = |i: usize| fields.get(i).copied().unwrap_or(0);
    let (user, nice, system, idle, iowait, irq, softirq, steal) =
        (at(0), at(1), at(2), at(3), at(4), at(5), at(6), at(7));
    let busy = user + nice + system + irq + softirq + steal;
    Some(CpuTimes { busy, total: busy + idle + iowait })
}

/// Percentage of the jiffies between two reads that were busy; 0 when no
/// time passed (two reads within one tick).
pub fn percent(before: CpuTimes, after: CpuTimes) -> f64 {
    let total = after.total.saturating_sub(before.total);
    if total == 0 {
        return 0.0;
    }
    let busy = after.busy.saturating_sub(before.busy).min(total);
    busy as f64 * 100.0 / total as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::readings::fixture::Fixture;

    const FIRST: &str = "cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 50 0 25 400 25 0 0 0 0 0\nintr 12345\n";
    const SECOND: &str = "cpu  160 0 70 900 70 10 10 0 30 0\ncpu0 80 0 35 450 35 5 5 0 15 0\nintr 12399\n";

    #[test]
    fn cpu_use_is_the_busy_share_of_the_jiffies_between_two_reads() {
        let fx = Fixture::new();
        fx.write("proc/stat", FIRST);
        let before = read(&fx.host).expect("first read");
        fx.write("proc/stat", SECOND);
        let after = read(&fx.host).expect("second read");
        // busy: +60 user +20 system +10 irq +10 softirq = 100; idle +100, iowait +20.
        assert_eq!(after.busy - before.busy, 100);
        assert_eq!(after.total - before.total, 220);
        let pct = percent(before, after);
        assert!((pct - 100.0 * 100.0 / 220.0).abs() < 1e-9, "{pct}");
    }

    #[test]
    fn iowait_counts_as_idle_and_guest_time_is_not_counted_twice() {
        let times = parse("cpu 10 0 0 0 90 0 0 0 10 0\n").expect("parses");
        assert_eq!(times, CpuTimes { busy: 10, total: 100 });
    }

    #[test]
    fn an_old_kernel_with_only_four_counters_is_understood() {
        assert_eq!(parse("cpu 1 2 3 4\n"), Some(CpuTimes { busy: 6, total: 10 }));
    }

    #[test]
    fn two_reads_within_one_tick_are_zero_percent_not_a_division_by_zero() {
        let t = CpuTimes { busy: 5, total: 10 };
        assert_eq!(percent(t, t), 0.0);
    }

    #[test]
    fn a_stat_file_without_a_cpu_line_is_an_error_naming_the_file() {
        let fx = Fixture::new();
        fx.write("proc/stat", "intr 1\n");
        let err = read(&fx.host).expect_err("no cpu line").to_string();
        assert!(err.contains("proc/stat"), "{err}");
    }
}
