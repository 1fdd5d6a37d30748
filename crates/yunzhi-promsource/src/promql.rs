//! The PromQL the analysis asks, built from the site's label names (checked
//! by [`PromSourceConfig::validate`], so they can be pasted in).
//!
//! Every figure is grouped by one host key computed inside the query:
//! `yunzhi_host` is the resource id label where present, else the instance
//! label. Grouping by the key rather than by `instance` keeps a host whose
//! address changed mid-day one host, which a client-side merge could not do
//! for averages and percentiles. The resource label is kept beside it only
//! so the answer says which of the two the key is.

use crate::config::PromSourceConfig;

/// The label the queries put the host key in.
pub(crate) const HOST_LABEL: &str = "yunzhi_host";

/// One day's look-back, one millisecond short of 24 hours, for the
/// `_over_time` figures. Prometheus 2.x windows are closed at both ends, so
/// `[1d]` would also take the sample at the previous midnight, which
/// describes the previous day's last step; 3.x windows are open at the start
/// and give the same points either way. With it a day has exactly
/// 86400 / step points, the first one step after midnight.
const DAY_LOOKBACK: &str = "86399999ms";

pub(crate) struct Queries<'a> {
    config: &'a PromSourceConfig,
}

impl<'a> Queries<'a> {
    pub(crate) fn new(config: &'a PromSourceConfig) -> Self {
        Self { config }
    }

    /// The labels every answer is grouped by.
    fn by(&self) -> String {
        format!("{HOST_LABEL}, {}", self.config.resource_label)
    }

    /// Adds the host key label to every series of `expr`.
    fn keyed(&self, expr: &str) -> String {
        let PromSourceConfig { resource_label, instance_label, .. } = self.config;
        // The second replacement only fires on a non-empty resource id, so
        // the instance stays the key where there is none.
        format!(
            "label_replace(label_replace({expr}, \"{HOST_LABEL}\", \"$1\", \"{instance_label}\", \"(.*)\"), \
             \"{HOST_LABEL}\", \"$1\", \"{resource_label}\", \"(.+)\")"
        )
    }

    /// CPU utilisation in percent, one series per host, one point per step.
    ///
    /// Idle and iowait count as not working, as Yunzhi's own agent counts
    /// them (iowait is waiting for the disk, and the disk figure tells that
    /// story); steal counts as working, also as the agent does. The modes are
    /// summed per CPU first and only then averaged over CPUs: averaging the
    /// idle and iowait series together, as `avg by (instance)` straight over
    /// them would, divides by twice the number of CPUs and reports a fully
    /// idle host as 50 % busy. Clamped because scrape jitter can make an idle
    /// CPU's idle rate exceed one second per second.
    pub(crate) fn cpu_percent(&self) -> String {
        let window = self.config.rate_window_secs;
        let per_cpu_idle =
            format!("sum without (mode) (rate(node_cpu_seconds_total{{mode=~\"idle|iowait\"}}[{window}s]))");
        format!("clamp(100 * (1 - avg by ({}) ({})), 0, 100)", self.by(), self.keyed(&per_cpu_idle))
    }

    /// Memory in use in percent: what the kernel could not hand out without
    /// swapping (MemAvailable), not MemFree, which counts the page cache as
    /// used.
    pub(crate) fn memory_percent(&self) -> String {
        let by = self.by();
        format!(
            "100 * (1 - sum by ({by}) ({}) / sum by ({by}) ({}))",
            self.keyed("node_memory_MemAvailable_bytes"),
            self.keyed("node_memory_MemTotal_bytes")
        )
    }

    /// `call` (a function name and any leading arguments, up to the range
    /// argument) over a day of `inner` sampled every step, asked at the
    /// day's end.
    fn over_day(&self, call: &str, inner: &str) -> String {
        format!("{call}({inner})[{DAY_LOOKBACK}:{}s])", self.config.step_secs)
    }

    pub(crate) fn cpu_avg(&self) -> String {
        self.over_day("avg_over_time(", &self.cpu_percent())
    }

    pub(crate) fn cpu_max(&self) -> String {
        self.over_day("max_over_time(", &self.cpu_percent())
    }

    /// Prometheus' quantile interpolates between ranks (φ·(n−1)), where
    /// Yunzhi's own rollups take the nearest rank; on 288 points a day the
    /// two differ by less than the gap between neighbouring samples.
    pub(crate) fn cpu_p95(&self) -> String {
        self.over_day("quantile_over_time(0.95, ", &self.cpu_percent())
    }

    /// How many CPU points the day has: 0 to 86400 / step, whatever the
    /// scrape interval, so that a missing hour shows as missing points.
    pub(crate) fn cpu_samples(&self) -> String {
        self.over_day("count_over_time(", &self.cpu_percent())
    }

    pub(crate) fn memory_avg(&self) -> String {
        self.over_day("avg_over_time(", &self.memory_percent())
    }

    /// Bytes a counter family grew by over the day, summed over devices.
    ///
    /// `increase` over a full `[1d]`: in Prometheus 2.x the window holds the
    /// sample at the previous midnight, so the difference spans the day
    /// exactly; 3.x leaves that sample out and extrapolates the missing step
    /// from the rate, which for a steady counter is the same number. Each
    /// counter is its own query rather than a `__name__=~` selector: once
    /// `increase` drops the metric name, receive and transmit of one device
    /// have the same labels and Prometheus 2.x refuses the vector.
    pub(crate) fn daily_increase(&self, metric: &str, device_filter: &str) -> String {
        format!(
            "sum by ({}) ({})",
            self.by(),
            self.keyed(&format!("increase({metric}{{{device_filter}}}[1d])"))
        )
    }

    /// TCP connections accepted over the day, from node_exporter's netstat
    /// collector (on by default): the kernel's `PassiveOpens` counter,
    /// which node_exporter exports untyped, so `increase` is asked of it as
    /// of any counter.
    pub(crate) fn accepted(&self) -> String {
        self.daily_increase("node_netstat_Tcp_PassiveOpens", "")
    }

    /// The most interactive sessions at once, from node_exporter's logind
    /// collector (off by default at most sites, then the figure is 0).
    pub(crate) fn sessions_max(&self) -> String {
        let sessions = format!(
            "sum by ({}) ({})",
            self.by(),
            self.keyed("node_logind_sessions{class=\"user\",type=~\"tty|x11|wayland|mir|unspecified\"}")
        );
        self.over_day("max_over_time(", &sessions)
    }

    /// When each host was last scraped, as Unix seconds: the newest sample
    /// time of its first CPU's idle counter (Linux always numbers a CPU 0;
    /// one series per host keeps the question cheap), looked for every
    /// `step_secs` over the `range_secs` before the instant asked.
    ///
    /// `timestamp()` is applied to the selector itself: on any other
    /// expression Prometheus answers the evaluation time, not the sample's.
    /// Each step sees a sample up to the store's look-back (5 minutes by
    /// default) old, so the answer is exact where a step falls within that
    /// of the last scrape and up to a step early otherwise.
    pub(crate) fn last_scrape(&self, range_secs: u32, step_secs: u32) -> String {
        let stamped = self.keyed("timestamp(node_cpu_seconds_total{mode=\"idle\",cpu=\"0\"})");
        format!("max by ({}) (max_over_time(({stamped})[{range_secs}s:{step_secs}s]))", self.by())
    }

    /// The fleet question in one query: each host's CPU p95 over the whole
    /// window ending at the instant asked.
    pub(crate) fn cpu_p95_over(&self, window_days: u32) -> String {
        let lookback_ms = i64::from(window_days) * 86_400_000 - 1;
        format!(
            "quantile_over_time(0.95, ({})[{lookback_ms}ms:{}s])",
            self.cpu_percent(),
            self.config.step_secs
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_is_averaged_over_cpus_after_summing_idle_modes_per_cpu() {
        let config = PromSourceConfig::default();
        let q = Queries::new(&config).cpu_percent();
        let sum = q.find("sum without (mode)").expect("sum per cpu");
        let avg = q.find("avg by (yunzhi_host, yunzhi_resource_id)").expect("avg over cpus");
        assert!(avg < sum, "the average encloses the per-CPU sum: {q}");
        assert!(q.contains("[300s]"), "{q}");
    }

    #[test]
    fn the_host_key_prefers_a_non_empty_resource_id() {
        let config = PromSourceConfig {
            resource_label: "rid".to_owned(),
            instance_label: "node".to_owned(),
            ..Default::default()
        };
        let q = Queries::new(&config).memory_percent();
        assert!(q.contains(
            "\"yunzhi_host\", \"$1\", \"node\", \"(.*)\"), \"yunzhi_host\", \"$1\", \"rid\", \"(.+)\""
        ));
    }

    #[test]
    fn percentile_query_puts_the_quantile_first() {
        let config = PromSourceConfig::default();
        let q = Queries::new(&config).cpu_p95();
        assert!(q.starts_with("quantile_over_time(0.95, (clamp("), "{q}");
        assert!(q.ends_with(")[86399999ms:300s])"), "{q}");
    }

    #[test]
    fn the_last_scrape_stamps_the_selector_itself_not_a_computed_vector() {
        let config = PromSourceConfig::default();
        let q = Queries::new(&config).last_scrape(7200, 60);
        assert!(
            q.contains("(timestamp(node_cpu_seconds_total{mode=\"idle\",cpu=\"0\"}), \"yunzhi_host\""),
            "{q}"
        );
        assert!(q.ends_with(")[7200s:60s]))"), "{q}");
    }

    #[test]
    fn a_fleet_window_of_thirty_days_looks_back_thirty_days_minus_a_millisecond() {
        let config = PromSourceConfig::default();
        assert!(Queries::new(&config).cpu_p95_over(30).contains("[2591999999ms:300s]"));
    }
}
