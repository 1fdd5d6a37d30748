//! Network throughput from `/proc/net/dev`, every interface but loopback.
//!
//! Traffic that crosses a bridge or veth pair on the way out is seen on each
//! interface it passes; that overstates a busy host but never makes an idle
//! one look busy, which is what the efficiency analysis needs to tell apart.

use std::collections::BTreeMap;

use crate::host::{HostRoot, ReadError, read_to_string};

/// Cumulative bytes received and sent per interface.
pub type NetCounters = BTreeMap<String, (u64, u64)>;

pub fn read(host: &HostRoot) -> Result<NetCounters, ReadError> {
    let path = host.proc("net/dev");
    Ok(parse(&read_to_string(&path)?))
}

fn parse(text: &str) -> NetCounters {
    text.lines()
        .filter_map(|line| {
            // "  eth0: 1234 ..." — with large counters the number can touch
            // the colon, so split on it rather than on whitespace.
            let (name, rest) = line.split_once(':')?;
            let name = name.trim();
            if name == "lo" {
                return None;
            }
            let f: Vec<&str> = rest.split_whitespace().collect();
            // rx: bytes packets errs drop fifo frame compressed multicast; tx: bytes ...
            let rx = f.first()?.parse().ok()?;
            let tx = f.get(8)?.parse().ok()?;
            Some((name.to_owned(), (rx, tx)))
        })
        .collect()
}

/// Bytes per second received and sent; interfaces present in only one of the
/// reads are left out, counters that went backwards count as 0.
pub fn rates(before: &NetCounters, after: &NetCounters, seconds: f64) -> (f64, f64) {
    if seconds <= 0.0 {
        return (0.0, 0.0);
    }
    let (mut rx, mut tx) = (0u64, 0u64);
    for (name, (r1, t1)) in after {
        if let Some((r0, t0)) = before.get(name) {
            rx += r1.saturating_sub(*r0);
            tx += t1.saturating_sub(*t0);
        }
    }
    (rx as f64 / seconds, tx as f64 / seconds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::readings::fixture::Fixture;

    const HEADER: &str = "Inter-|   Receive                                                |  Transmit\n \
face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n";

    #[test]
    fn network_throughput_is_the_byte_delta_of_every_interface_but_loopback() {
        let fx = Fixture::new();
        fx.write(
            "proc/net/dev",
            &format!(
                "{HEADER}    lo: 5000 50 0 0 0 0 0 0 5000 50 0 0 0 0 0 0\n  eth0: 1000 10 0 0 0 0 0 0 2000 20 0 0 0 0 0 0\n"
            ),
        );
        let before = read(&fx.host).expect("first read");
        fx.write(
            "proc/net/dev",
            &format!(
                "{HEADER}    lo: 9000 90 0 0 0 0 0 0 9000 90 0 0 0 0 0 0\n  eth0:1600 16 0 0 0 0 0 0 2400 24 0 0 0 0 0 0\n"
            ),
        );
        let after = read(&fx.host).expect("second read");
        assert_eq!(after.keys().collect::<Vec<_>>(), ["eth0"]);
        assert_eq!(rates(&before, &after, 2.0), (300.0, 200.0));
    }

    #[test]
    fn an_interface_that_appears_between_reads_is_left_out_of_that_sample() {
        let before = NetCounters::from([("eth0".to_owned(), (0, 0))]);
        let after = NetCounters::from([("eth0".to_owned(), (10, 10)), ("eth1".to_owned(), (1 << 40, 1))]);
        assert_eq!(rates(&before, &after, 1.0), (10.0, 10.0));
    }
}
