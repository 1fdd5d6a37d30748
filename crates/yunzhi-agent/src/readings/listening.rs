//! Listening TCP sockets from `/proc/net/tcp` and `/proc/net/tcp6`: a host
//! that offers no service at all is a candidate zombie.

use std::io;

use crate::host::{HostRoot, ReadError, read_to_string};

/// TCP_LISTEN in the kernel's hex state column.
const LISTEN: &str = "0A";

pub fn count(host: &HostRoot) -> Result<u32, ReadError> {
    let mut total = 0u32;
    for file in ["net/tcp", "net/tcp6"] {
        let path = host.proc(file);
        match read_to_string(&path) {
            Ok(text) => total = total.saturating_add(count_listening(&text)),
            // tcp6 is absent where IPv6 is disabled.
            Err(ReadError::Io { source, .. })
                if source.kind() == io::ErrorKind::NotFound && file == "net/tcp6" => {}
            Err(e) => return Err(e),
        }
    }
    Ok(total)
}

fn count_listening(text: &str) -> u32 {
    let n = text
        .lines()
        .skip(1) // the header
        .filter(|line| line.split_whitespace().nth(3) == Some(LISTEN))
        .count();
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::readings::fixture::Fixture;

    const HEADER: &str =
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";

    #[test]
    fn listening_counts_tcp_and_tcp6_sockets_in_the_listen_state_only() {
        let fx = Fixture::new();
        fx.write(
            "proc/net/tcp",
            &format!(
                "{HEADER}   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0\n\
                 1: 0100007F:0019 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0\n\
                 2: 0F02000A:0016 0202000A:C350 01 00000000:00000000 02:00000000 00000000     0        0 3 4 0 20 4 30 10 -1\n"
            ),
        );
        fx.write(
            "proc/net/tcp6",
            &format!(
                "{HEADER}   0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4 1 0 100 0 0 10 0\n\
                 1: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 06 00000000:00000000 00:00000000 00000000     0        0 5 1 0 100 0 0 10 0\n"
            ),
        );
        assert_eq!(count(&fx.host).expect("reads"), 3);
    }

    #[test]
    fn a_host_without_ipv6_counts_only_ipv4_listeners() {
        let fx = Fixture::new();
        fx.write("proc/net/tcp", &format!("{HEADER}   0: 00000000:0016 00000000:0000 0A 0 0 0 0 0 0\n"));
        assert_eq!(count(&fx.host).expect("tcp6 may be missing"), 1);
    }
}
