//! The host's readings, from `/proc` and `/sys` only. Rates (CPU, disk,
//! network) and connections accepted are deltas between two [`Snapshot`]s;
//! levels (memory, sessions, listening sockets) are read when the sample is
//! taken.

pub mod accepted;
pub mod cpu;
pub mod disk;
pub mod listening;
pub mod memory;
pub mod net;
pub mod sessions;

use std::time::{Instant, SystemTime};

use crate::host::{HostRoot, ReadError};
use crate::report::Sample;
use crate::time::rfc3339;

/// The cumulative counters at one moment.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Monotonic, so a clock step between reads cannot distort a rate.
    taken: Instant,
    cpu: cpu::CpuTimes,
    disk: disk::DiskCounters,
    net: net::NetCounters,
    accepted: Option<u64>,
}

impl Snapshot {
    pub fn take(host: &HostRoot) -> Result<Self, ReadError> {
        Ok(Snapshot {
            taken: Instant::now(),
            cpu: cpu::read(host)?,
            disk: disk::read(host)?,
            net: net::read(host)?,
            accepted: accepted::read(host)?,
        })
    }
}

/// Takes a new snapshot and makes a sample of what happened since `before`,
/// which it replaces with the new snapshot.
pub fn sample_since(host: &HostRoot, before: &mut Snapshot) -> Result<Sample, ReadError> {
    let after = Snapshot::take(host)?;
    let at = rfc3339(SystemTime::now());
    let seconds = after.taken.duration_since(before.taken).as_secs_f64();
    let (disk_read_bps, disk_write_bps) = disk::rates(&before.disk, &after.disk, seconds);
    let (net_rx_bps, net_tx_bps) = net::rates(&before.net, &after.net, seconds);
    let sample = Sample {
        at,
        cpu_pct: round2(cpu::percent(before.cpu, after.cpu)),
        memory_pct: round2(memory::read_percent(host)?),
        disk_read_bps: round2(disk_read_bps),
        disk_write_bps: round2(disk_write_bps),
        net_rx_bps: round2(net_rx_bps),
        net_tx_bps: round2(net_tx_bps),
        sessions: sessions::count(host)?,
        listening: listening::count(host)?,
        accepted: accepted::since(before.accepted, after.accepted),
    };
    *before = after;
    Ok(sample)
}

/// Hundredths are more precision than any reading here has; the rest is noise
/// on the wire.
fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
pub(crate) mod fixture {
    //! A fake host root in a temporary directory.

    use std::fs;

    use crate::host::HostRoot;

    pub struct Fixture {
        pub dir: tempfile::TempDir,
        pub host: HostRoot,
    }

    impl Fixture {
        pub fn new() -> Self {
            let dir = tempfile::tempdir().expect("temp dir");
            let host = HostRoot::new(dir.path());
            Fixture { dir, host }
        }

        pub fn write(&self, rel: &str, text: &str) {
            self.write_bytes(rel, text.as_bytes());
        }

        pub fn write_bytes(&self, rel: &str, bytes: &[u8]) {
            let path = self.dir.path().join(rel);
            fs::create_dir_all(path.parent().expect("has a parent")).expect("mkdir");
            fs::write(path, bytes).expect("write fixture");
        }

        pub fn mkdir(&self, rel: &str) {
            fs::create_dir_all(self.dir.path().join(rel)).expect("mkdir");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixture::Fixture;
    use super::*;

    fn host_at(fx: &Fixture, user: u64, idle: u64, rx: u64) {
        fx.write("proc/stat", &format!("cpu {user} 0 0 {idle} 0 0 0 0 0 0\n"));
        fx.write("proc/diskstats", " 253 0 vda 0 0 0 0 0 0 0 0 0 0 0\n");
        fx.write("proc/net/dev", &format!("h\nh\n  eth0: {rx} 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"));
        fx.write("proc/meminfo", "MemTotal: 100 kB\nMemAvailable: 60 kB\n");
        fx.write("proc/net/tcp", "h\n 0: 0:16 0:0 0A\n");
        fx.write("proc/net/snmp", &format!("Tcp: ActiveOpens PassiveOpens\nTcp: 9 {}\n", rx / 100));
        fx.mkdir("sys/block/vda/device");
    }

    #[test]
    fn a_sample_combines_rates_since_the_last_snapshot_with_current_levels() {
        let fx = Fixture::new();
        host_at(&fx, 0, 0, 0);
        let mut before = Snapshot::take(&fx.host).expect("first snapshot");
        host_at(&fx, 25, 75, 1000);
        let sample = sample_since(&fx.host, &mut before).expect("sample");
        assert_eq!(sample.cpu_pct, 25.0);
        assert_eq!(sample.memory_pct, 40.0);
        assert!(sample.net_rx_bps > 0.0);
        assert_eq!((sample.sessions, sample.listening), (0, 1));
        assert_eq!(sample.accepted, Some(10), "connections taken since the last snapshot");
        assert_eq!(before.cpu.total, 100, "the new snapshot replaces the old one");
    }
}
