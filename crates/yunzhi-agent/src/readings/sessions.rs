//! Logged-in user sessions from the binary utmp file.
//!
//! glibc's `struct utmp` on Linux x86_64 and aarch64 (both little-endian, and
//! both use the same 32-bit-time layout for compatibility): 384-byte records,
//! `ut_type` a `short` at offset 0 (7 = USER_PROCESS), `ut_pid` an `int` at
//! offset 4. A record stays USER_PROCESS when its login process died without
//! cleaning up (a crash, a killed sshd child), so only records whose process
//! still exists count.

use std::fs;
use std::io;

use crate::host::{HostRoot, ReadError};

const RECORD_LEN: usize = 384;
const USER_PROCESS: i16 = 7;

pub fn count(host: &HostRoot) -> Result<u32, ReadError> {
    let path = host.utmp();
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        // Minimal images and some containers keep no utmp: nobody logged in
        // the classic way, which is what 0 sessions says.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(source) => return Err(ReadError::Io { path, source }),
    };
    let live = user_process_pids(&bytes).filter(|pid| host.proc(&pid.to_string()).exists()).count();
    Ok(u32::try_from(live).unwrap_or(u32::MAX))
}

/// The pids of USER_PROCESS records; a trailing partial record (utmp being
/// written while read) is ignored.
fn user_process_pids(bytes: &[u8]) -> impl Iterator<Item = i32> + '_ {
    bytes.chunks_exact(RECORD_LEN).filter_map(|record| {
        let ut_type = i16::from_ne_bytes([record[0], record[1]]);
        let pid = i32::from_ne_bytes([record[4], record[5], record[6], record[7]]);
        (ut_type == USER_PROCESS && pid > 0).then_some(pid)
    })
}

#[cfg(test)]
pub(crate) fn record(ut_type: i16, pid: i32, user: &str) -> Vec<u8> {
    let mut r = vec![0u8; RECORD_LEN];
    r[0..2].copy_from_slice(&ut_type.to_ne_bytes());
    r[4..8].copy_from_slice(&pid.to_ne_bytes());
    r[8..8 + 5].copy_from_slice(b"pts/0");
    r[44..44 + user.len()].copy_from_slice(user.as_bytes());
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::readings::fixture::Fixture;

    const BOOT_TIME: i16 = 2;
    const LOGIN_PROCESS: i16 = 6;
    const DEAD_PROCESS: i16 = 8;

    #[test]
    fn sessions_are_user_process_records_whose_process_is_still_alive() {
        let fx = Fixture::new();
        let mut utmp = record(BOOT_TIME, 0, "reboot");
        utmp.extend(record(LOGIN_PROCESS, 300, "LOGIN"));
        utmp.extend(record(USER_PROCESS, 1234, "alice"));
        utmp.extend(record(USER_PROCESS, 1235, "bob"));
        utmp.extend(record(USER_PROCESS, 4321, "carol")); // its sshd crashed: stale
        utmp.extend(record(DEAD_PROCESS, 1236, "dave"));
        fx.write_bytes("var/run/utmp", &utmp);
        for pid in [300, 1234, 1235, 1236] {
            fx.mkdir(&format!("proc/{pid}"));
        }
        assert_eq!(count(&fx.host).expect("reads"), 2);
    }

    #[test]
    fn a_host_without_utmp_has_no_sessions() {
        let fx = Fixture::new();
        assert_eq!(count(&fx.host).expect("missing utmp is fine"), 0);
    }

    #[test]
    fn a_partial_record_at_the_end_is_ignored() {
        let mut utmp = record(USER_PROCESS, 1, "root");
        utmp.extend(&record(USER_PROCESS, 2, "root")[..100]);
        assert_eq!(user_process_pids(&utmp).collect::<Vec<_>>(), [1]);
    }
}
