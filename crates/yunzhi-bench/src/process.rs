//! What a process used, read from `/proc`: its CPU time and its memory.

use anyhow::Context;

/// Clock ticks per second of `/proc/<pid>/stat`'s times (`USER_HZ`), which
/// Linux fixes at 100 for user space on every architecture it ships.
const USER_HZ: f64 = 100.0;

/// CPU seconds (user + system) the process `pid` has used so far, its
/// threads included.
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    stat_cpu_seconds(&stat)
}

/// User + system CPU seconds of a `/proc/…/stat` line.
fn stat_cpu_seconds(stat: &str) -> anyhow::Result<f64> {
    // The command name (field 2) may hold spaces and parentheses: count
    // fields from the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).context("a /proc stat line without ')'")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state is field 3, so utime (14) and stime (15) are at 11 and 12.
    let ticks = |i: usize| -> anyhow::Result<f64> {
        Ok(fields.get(i).context("a short /proc stat line")?.parse::<u64>()? as f64)
    };
    Ok((ticks(11)? + ticks(12)?) / USER_HZ)
}

/// One thread of a process and the CPU seconds it has used so far.
#[derive(Debug, Clone, PartialEq)]
pub struct ThreadCpu {
    pub tid: u32,
    /// Its name as the kernel keeps it (`comm`: at most 15 bytes).
    pub name: String,
    pub cpu_seconds: f64,
}

/// Every live thread of `pid` with the CPU time it has used: where a
/// server's time goes, without a profiler. Threads that ended are missing.
pub fn threads(pid: u32) -> anyhow::Result<Vec<ThreadCpu>> {
    let mut out = Vec::new();
    for entry in
        std::fs::read_dir(format!("/proc/{pid}/task")).with_context(|| format!("listing /proc/{pid}/task"))?
    {
        let Ok(tid) = entry?.file_name().to_string_lossy().parse::<u32>() else { continue };
        // A thread may end between the listing and the read.
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")) else { continue };
        let name = stat
            .split_once('(')
            .and_then(|(_, r)| r.rsplit_once(')'))
            .map(|(n, _)| n.to_owned())
            .unwrap_or_default();
        out.push(ThreadCpu { tid, name, cpu_seconds: stat_cpu_seconds(&stat)? });
    }
    Ok(out)
}

/// CPU seconds this process has used so far.
pub fn own_cpu_seconds() -> anyhow::Result<f64> {
    cpu_seconds(std::process::id())
}

/// Bytes the process `pid` has had read from storage so far (`read_bytes`
/// of `/proc/<pid>/io`): what the page cache did not hold, whether read
/// with `read` or faulted in through a mapping.
pub fn storage_read_bytes(pid: u32) -> anyhow::Result<u64> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io"))
        .with_context(|| format!("reading /proc/{pid}/io"))?;
    let line = io
        .lines()
        .find(|l| l.starts_with("read_bytes:"))
        .with_context(|| format!("no read_bytes in /proc/{pid}/io"))?;
    Ok(line.split_whitespace().nth(1).context("an empty read_bytes line")?.parse()?)
}

/// Resident memory of `pid` now and at its peak, in bytes (`VmRSS`, `VmHWM`).
pub fn memory(pid: u32) -> anyhow::Result<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let kib = |key: &str| -> anyhow::Result<u64> {
        let line = status
            .lines()
            .find(|l| l.starts_with(key))
            .with_context(|| format!("no {key} in /proc/{pid}/status"))?;
        Ok(line.split_whitespace().nth(1).context("an empty status line")?.parse::<u64>()? * 1024)
    };
    Ok(Memory { resident: kib("VmRSS:")?, peak: kib("VmHWM:")? })
}

/// Starts the peak (`VmHWM`) of `pid` over from its resident size now, so
/// that [`memory`] afterwards gives the peak of what ran in between rather
/// than of the process's whole life. Linux resets it when `5` is written to
/// `/proc/<pid>/clear_refs` (since 4.0; the caller must own the process).
pub fn reset_peak(pid: u32) -> anyhow::Result<()> {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5")
        .with_context(|| format!("resetting the peak memory of {pid} (/proc/{pid}/clear_refs)"))
}

/// Hands the heap memory this process has freed back to the system.
///
/// glibc keeps freed memory for reuse, so after a step that allocated and
/// freed a lot (a fleet's rollups) the resident size stays high, and a
/// later step's peak would show the earlier step's leftovers rather than
/// what it holds itself. Measure a step's memory after calling this.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn release_freed_memory() {
    unsafe extern "C" {
        fn malloc_trim(pad: usize) -> std::ffi::c_int;
    }
    // SAFETY: glibc's malloc_trim takes the allocator's own locks and only
    // returns pages of free chunks to the kernel; memory in use is untouched.
    unsafe {
        malloc_trim(0);
    }
}

/// Elsewhere there is nothing to hand back that this could reach.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release_freed_memory() {}

/// Resident memory of a process, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    pub resident: u64,
    pub peak: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_loop_shows_up_as_cpu_time() {
        // On a shared machine the loop may get a small share of a core:
        // spin until the counter moves, or give up after half a minute.
        let before = own_cpu_seconds().expect("own stat");
        let start = std::time::Instant::now();
        let mut x = 0u64;
        let mut used = 0.0;
        while used < 0.2 && start.elapsed() < std::time::Duration::from_secs(30) {
            for _ in 0..1_000_000 {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
            used = own_cpu_seconds().expect("own stat") - before;
        }
        assert!(used >= 0.2, "{:?} of spinning counted as {used} CPU seconds", start.elapsed());
    }

    #[test]
    fn a_spinning_thread_is_found_by_its_name_with_its_cpu_time() {
        let spinner = std::thread::Builder::new()
            .name("bench-spinner".into())
            .spawn(|| {
                // Until this thread has had 0.1 s of CPU, however busy the machine.
                let start = std::time::Instant::now();
                let mut x = 0u64;
                loop {
                    for _ in 0..1_000_000 {
                        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                    }
                    let seen = threads(std::process::id()).expect("own threads");
                    let mine = seen.iter().find(|t| t.name == "bench-spinner").map_or(0.0, |t| t.cpu_seconds);
                    if mine >= 0.1 || start.elapsed() > std::time::Duration::from_secs(30) {
                        return seen;
                    }
                }
            })
            .expect("a thread");
        let seen = spinner.join().expect("the spinner");
        let me = seen.iter().find(|t| t.name == "bench-spinner").expect("the spinner among the threads");
        assert!(me.cpu_seconds >= 0.1, "{me:?}");
    }

    #[test]
    fn a_reset_peak_forgets_memory_used_and_freed_before_it() {
        let me = std::process::id();
        let big = std::hint::black_box(vec![1u8; 256 << 20]);
        drop(big);
        let before = memory(me).expect("own status").peak;
        reset_peak(me).expect("own clear_refs");
        let after = memory(me).expect("own status").peak;
        assert!(after + (128 << 20) < before, "peak {before} before the reset, {after} after");
    }

    #[test]
    fn freed_small_allocations_are_handed_back() {
        let me = std::process::id();
        // Many small blocks, as a fleet's rollups are: glibc keeps them once freed.
        let blocks: Vec<Vec<u64>> = (0..300_000).map(|i| vec![i; 101]).collect();
        let held = memory(me).expect("own status").resident;
        drop(std::hint::black_box(blocks));
        release_freed_memory();
        let after = memory(me).expect("own status").resident;
        assert!(after + (100 << 20) < held, "{held} resident while held, {after} after release");
    }

    #[test]
    fn the_own_memory_is_nonzero_and_the_peak_is_at_least_the_current() {
        let m = memory(std::process::id()).expect("own status");
        assert!(m.resident > 0);
        assert!(m.peak >= m.resident);
    }
}
