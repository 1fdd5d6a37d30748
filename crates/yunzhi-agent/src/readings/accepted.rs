//! TCP connections the host accepted: the kernel's `Tcp: PassiveOpens`
//! counter in `/proc/net/snmp`, which counts every connection a listening
//! socket took, however short (a one-request HTTP call between two samples
//! included, which a look at the open sockets would miss). The difference
//! between two samples is how much the host's listening processes were
//! called on: a host whose services nobody calls is a candidate zombie.

use std::io;

use crate::host::{HostRoot, ReadError, read_to_string};

/// The counter's value now; `None` where the kernel keeps no SNMP table
/// (a host namespace without `/proc/net/snmp`).
pub fn read(host: &HostRoot) -> Result<Option<u64>, ReadError> {
    let path = host.proc("net/snmp");
    let text = match read_to_string(&path) {
        Ok(text) => text,
        Err(ReadError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    passive_opens(&text).map(Some).ok_or_else(|| ReadError::format(&path, "no Tcp PassiveOpens counter"))
}

/// The `Tcp:` section is two lines, names then values, matched by position:
/// the kernel has added columns over the years, never moved one by name.
fn passive_opens(text: &str) -> Option<u64> {
    let mut tcp = text.lines().filter_map(|line| line.strip_prefix("Tcp:"));
    let (names, values) = (tcp.next()?, tcp.next()?);
    let at = names.split_whitespace().position(|n| n == "PassiveOpens")?;
    values.split_whitespace().nth(at)?.parse().ok()
}

/// Connections accepted between two readings of the counter; `None` when
/// either is unknown or the counter went back (it does not, within a boot).
pub fn since(before: Option<u64>, after: Option<u64>) -> Option<u32> {
    let n = after?.checked_sub(before?)?;
    Some(u32::try_from(n).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::readings::fixture::Fixture;

    const SNMP: &str = "Ip: Forwarding DefaultTTL InReceives\n\
                        Ip: 1 64 12345\n\
                        Icmp: InMsgs InErrors\n\
                        Icmp: 3 0\n\
                        Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab\n\
                        Tcp: 1 200 120000 -1 5120 {N} 12 40 7\n\
                        Udp: InDatagrams NoPorts\n\
                        Udp: 100 2\n";

    #[test]
    fn accepted_connections_are_the_growth_of_the_tcp_passive_opens_counter() {
        let fx = Fixture::new();
        fx.write("proc/net/snmp", &SNMP.replace("{N}", "981"));
        let before = read(&fx.host).expect("reads");
        assert_eq!(before, Some(981), "PassiveOpens, not ActiveOpens next to it");
        fx.write("proc/net/snmp", &SNMP.replace("{N}", "1024"));
        let after = read(&fx.host).expect("reads");
        assert_eq!(since(before, after), Some(43));
    }

    #[test]
    fn a_host_without_an_snmp_table_does_not_say_and_a_garbled_one_is_an_error_naming_the_file() {
        let fx = Fixture::new();
        assert_eq!(read(&fx.host).expect("may be missing"), None);
        assert_eq!(since(None, Some(5)), None);
        fx.write("proc/net/snmp", "Ip: Forwarding\nIp: 1\n");
        let e = read(&fx.host).expect_err("no Tcp section");
        assert!(e.to_string().contains("net/snmp"), "{e}");
    }

    #[test]
    fn a_counter_that_went_back_gives_no_count_rather_than_a_huge_one() {
        assert_eq!(since(Some(10), Some(3)), None);
        assert_eq!(since(Some(3), Some(3)), Some(0));
    }
}
