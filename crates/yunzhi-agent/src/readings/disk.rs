//! Disk throughput from `/proc/diskstats`, whole disks only.
//!
//! Which devices count: a partition's I/O is also its disk's, and loop,
//! ram, zram, device-mapper (`dm-`) and md devices pass their I/O on to the
//! disks under them, so counting any of them would count the same bytes
//! twice. A device counts when `/sys/block/<name>/device` exists: whole disks
//! appear in `/sys/block` (partitions do not), and only those backed by a
//! (virtual) hardware device have a `device` link. Where `/sys/block` cannot
//! be read (a container without `/sys`) a name rule stands in for it.

use std::collections::BTreeMap;
use std::path::Path;

use crate::host::{HostRoot, ReadError, read_to_string};

/// diskstats always counts in 512-byte sectors, whatever the device's own
/// sector size.
const SECTOR_BYTES: u64 = 512;

/// Cumulative bytes read and written per whole disk.
pub type DiskCounters = BTreeMap<String, (u64, u64)>;

pub fn read(host: &HostRoot) -> Result<DiskCounters, ReadError> {
    let path = host.proc("diskstats");
    let text = read_to_string(&path)?;
    let sys_block = host.sys("block");
    let counts: Box<dyn Fn(&str) -> bool> = if sys_block.is_dir() {
        Box::new(move |name: &str| backed_by_a_device(&sys_block, name))
    } else {
        Box::new(looks_like_a_whole_disk)
    };
    Ok(parse(&text).into_iter().filter(|(name, _)| counts(name)).collect())
}

fn parse(text: &str) -> DiskCounters {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            // major minor name reads merged sectors_read ms writes merged sectors_written ...
            let name = f.get(2)?;
            let read: u64 = f.get(5)?.parse().ok()?;
            let written: u64 = f.get(9)?.parse().ok()?;
            Some((name.to_string(), (read * SECTOR_BYTES, written * SECTOR_BYTES)))
        })
        .collect()
}

fn backed_by_a_device(sys_block: &Path, name: &str) -> bool {
    sys_block.join(name).join("device").exists()
}

/// The fallback rule: virtual stacks by prefix, partitions by their
/// conventional names (`sda1`, `vdb2`, `xvda1`, `nvme0n1p1`, `mmcblk0p1`).
fn looks_like_a_whole_disk(name: &str) -> bool {
    const VIRTUAL: [&str; 7] = ["loop", "ram", "zram", "dm-", "md", "nbd", "sr"];
    if VIRTUAL.iter().any(|p| name.starts_with(p)) {
        return false;
    }
    let ends_in_digit = name.ends_with(|c: char| c.is_ascii_digit());
    if name.starts_with("nvme") || name.starts_with("mmcblk") {
        // Their disks end in digits too; partitions add `p<N>`.
        let stem = name.trim_end_matches(|c: char| c.is_ascii_digit());
        return !(ends_in_digit && stem.ends_with('p'));
    }
    !ends_in_digit
}

/// Bytes per second read and written across all counted disks. A disk that
/// appeared or vanished between the reads is left out; a counter that went
/// backwards (device re-attached) counts as 0.
pub fn rates(before: &DiskCounters, after: &DiskCounters, seconds: f64) -> (f64, f64) {
    if seconds <= 0.0 {
        return (0.0, 0.0);
    }
    let (mut read, mut written) = (0u64, 0u64);
    for (name, (r1, w1)) in after {
        if let Some((r0, w0)) = before.get(name) {
            read += r1.saturating_sub(*r0);
            written += w1.saturating_sub(*w0);
        }
    }
    (read as f64 / seconds, written as f64 / seconds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::readings::fixture::Fixture;

    const FIRST: &str = "\
 253       0 vda 1000 0 2000 100 500 0 4000 50 0 100 150 0 0 0 0\n\
 253       1 vda1 900 0 1800 90 400 0 3000 40 0 90 130 0 0 0 0\n\
   7       0 loop0 50 0 100 1 0 0 0 0 0 1 1 0 0 0 0\n\
 252       0 dm-0 900 0 1800 90 400 0 3000 40 0 90 130 0 0 0 0\n\
 259       0 nvme0n1 10 0 20 1 10 0 20 1 0 1 2 0 0 0 0\n";
    const SECOND: &str = "\
 253       0 vda 1100 0 2200 110 600 0 4400 60 0 110 170 0 0 0 0\n\
 253       1 vda1 1000 0 2000 100 500 0 3400 50 0 100 150 0 0 0 0\n\
   7       0 loop0 60 0 200 1 0 0 0 0 0 1 1 0 0 0 0\n\
 252       0 dm-0 1000 0 2000 100 500 0 3400 50 0 100 150 0 0 0 0\n\
 259       0 nvme0n1 10 0 28 1 10 0 20 1 0 1 2 0 0 0 0\n";

    fn with_sys_block(fx: &Fixture) {
        // vda and nvme0n1 are whole disks with a device; loop0 and dm-0 are in
        // /sys/block but virtual; vda1 is a partition and not in /sys/block.
        fx.mkdir("sys/block/vda/device");
        fx.mkdir("sys/block/nvme0n1/device");
        fx.mkdir("sys/block/loop0");
        fx.mkdir("sys/block/dm-0");
    }

    #[test]
    fn disk_throughput_is_the_sector_delta_of_whole_disks_only_in_bytes_per_second() {
        let fx = Fixture::new();
        with_sys_block(&fx);
        fx.write("proc/diskstats", FIRST);
        let before = read(&fx.host).expect("first read");
        fx.write("proc/diskstats", SECOND);
        let after = read(&fx.host).expect("second read");
        assert_eq!(after.keys().collect::<Vec<_>>(), ["nvme0n1", "vda"]);
        // vda: +200 sectors read, +400 written; nvme0n1: +8 read; over 2 s.
        let (read_bps, write_bps) = rates(&before, &after, 2.0);
        assert_eq!(read_bps, (208 * 512) as f64 / 2.0);
        assert_eq!(write_bps, (400 * 512) as f64 / 2.0);
    }

    #[test]
    fn without_sys_block_partitions_and_virtual_devices_are_recognised_by_name() {
        let fx = Fixture::new();
        fx.write("proc/diskstats", FIRST);
        let counted = read(&fx.host).expect("reads");
        assert_eq!(counted.keys().collect::<Vec<_>>(), ["nvme0n1", "vda"]);
        for partition in ["sda1", "xvda2", "nvme0n1p1", "mmcblk0p2", "dm-3", "md127", "zram0"] {
            assert!(!looks_like_a_whole_disk(partition), "{partition}");
        }
        for disk in ["sda", "xvdb", "nvme1n1", "mmcblk0", "vdaa"] {
            assert!(looks_like_a_whole_disk(disk), "{disk}");
        }
    }

    #[test]
    fn a_disk_counter_that_goes_backwards_counts_as_no_traffic() {
        let before = DiskCounters::from([("vda".to_owned(), (1000, 1000))]);
        let after = DiskCounters::from([("vda".to_owned(), (10, 2000))]);
        assert_eq!(rates(&before, &after, 1.0), (0.0, 1000.0));
    }
}
