//! The analysis' fleet days kept in a file of the server's data folder
//! between runs, so that a restarted server does not read every host's
//! whole window from the database again (900,000 daily rows for 10,000
//! hosts: seconds) but only the rows written since the checkpoint.
//!
//! The file is a cache, never the record: the rollups in the database are.
//! It is used only when it is the one the database names (setting
//! `analysis_checkpoint`, written after the file), so a database restored
//! from a backup, another server's checkpoint or a file from another
//! database is not taken for this one; a damaged file fails its checksum.
//! Either way the analysis reads the whole window, as on a first start.
//! For the same reason the file is not synced to disk before it replaces
//! the previous one: a crash can at worst cost the next start its shortcut.
//!
//! Layout (little-endian): `YZFLEET1`, the checkpoint's id (16 bytes), the
//! CRC-32 of the body, the body's length (8 bytes), then the body: when the
//! read it holds started (ms), its first and last day, every host's days
//! (id, count, and 70 bytes a day), and the digests of the findings the
//! last pass wrote (key, digest).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use jiff::civil::Date;
use yunzhi_domain::efficiency::DailyStats;

use super::FleetDays;
use crate::state::AppState;

const MAGIC: &[u8; 8] = b"YZFLEET1";
/// The database's record of the checkpoint file that matches it.
const SETTING: &str = "analysis_checkpoint";
const FILE: &str = "fleet-days.checkpoint";
const HEADER: usize = 8 + 16 + 4 + 8;

/// The checkpoint file in `dir`.
pub fn path(dir: &Path) -> PathBuf {
    dir.join(FILE)
}

/// What saving wrote.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Saved {
    pub bytes: usize,
    pub hosts: usize,
    pub days: usize,
}

/// Writes the fleet's days to the checkpoint file and names it in the
/// database. `None` when the checkpoint already holds this window (it is
/// written once a day, after the first pass of a new window) or there is
/// no data folder.
pub async fn save(state: &AppState) -> anyhow::Result<Option<Saved>> {
    let Some(dir) = state.analysis_dir.clone() else { return Ok(None) };
    let id = u128::from_le_bytes(
        crate::auth::random_bytes(16)?.try_into().map_err(|_| anyhow::anyhow!("16 random bytes"))?,
    );
    let (bytes, saved) = {
        let mut fleet = state.fleet.lock().await;
        if fleet.saved {
            return Ok(None);
        }
        let Some((bytes, saved)) = encode(&fleet, id) else { return Ok(None) };
        fleet.saved = true;
        (bytes, saved)
    };
    tokio::task::spawn_blocking(move || replace(&dir, &bytes)).await??;
    let mut tx = state.store.begin().await?;
    tx.set_setting(SETTING, &format!("{id:032x}")).await?;
    tx.commit().await?;
    Ok(Some(saved))
}

/// Writes `bytes` as the checkpoint file in `dir`: to a new file first,
/// which then replaces the old one, so a reader never sees half of one.
fn replace(dir: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!("{FILE}.tmp"));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path(dir))
}

/// The fleet's days from the checkpoint file, if it is the one the
/// database names and it is whole; `None` otherwise (said in the log when
/// a file was there but could not be used).
pub(super) async fn restore(state: &AppState) -> anyhow::Result<Option<FleetDays>> {
    let Some(dir) = state.analysis_dir.clone() else { return Ok(None) };
    let Some(named) = state.store.setting(SETTING).await? else { return Ok(None) };
    let Ok(expected) = u128::from_str_radix(&named, 16) else {
        tracing::warn!(setting = SETTING, value = %named, "not a checkpoint id; reading the fleet's days whole");
        return Ok(None);
    };
    let file = path(&dir);
    let read = tokio::task::spawn_blocking(move || match std::fs::read(&file) {
        Ok(bytes) => Ok(Some(decode(&bytes, expected).map_err(|e| (file, e)))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    })
    .await??;
    match read {
        None => Ok(None),
        Some(Ok(fleet)) => Ok(Some(fleet)),
        Some(Err((file, e))) => {
            tracing::warn!(file = %file.display(), error = %e, "the analysis checkpoint was not used; reading the fleet's days whole");
            Ok(None)
        }
    }
}

/// Why a checkpoint file was not used.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Unusable {
    NotACheckpoint,
    /// Another checkpoint than the one the database names: older, newer,
    /// or another database's.
    NotTheDatabases,
    Damaged(&'static str),
}

impl std::fmt::Display for Unusable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unusable::NotACheckpoint => f.write_str("not a fleet-days checkpoint of this version"),
            Unusable::NotTheDatabases => f.write_str("not the checkpoint the database names"),
            Unusable::Damaged(what) => write!(f, "damaged: {what}"),
        }
    }
}

pub(super) fn encode(fleet: &FleetDays, id: u128) -> Option<(Vec<u8>, Saved)> {
    let (read_at, from, to) = (fleet.read_at?, fleet.from?, fleet.to?);
    let days: usize = fleet.hosts.values().map(Vec::len).sum();
    let mut body = Vec::with_capacity(32 + fleet.hosts.len() * 12 + days * DAY + fleet.written.len() * 40);
    body.extend_from_slice(&read_at.to_le_bytes());
    put_date(&mut body, from);
    put_date(&mut body, to);
    body.extend_from_slice(&(fleet.hosts.len() as u32).to_le_bytes());
    for (id, host_days) in &fleet.hosts {
        body.extend_from_slice(&id.to_le_bytes());
        body.extend_from_slice(&(host_days.len() as u32).to_le_bytes());
        for d in host_days {
            put_day(&mut body, d);
        }
    }
    body.extend_from_slice(&(fleet.written.len() as u32).to_le_bytes());
    for (key, digest) in &fleet.written {
        // Dedup keys are short ("zombie:1234"); a longer one is not kept,
        // which only costs its finding one rewrite after a restart.
        let Ok(len) = u16::try_from(key.len()) else { continue };
        body.extend_from_slice(&len.to_le_bytes());
        body.extend_from_slice(key.as_bytes());
        body.extend_from_slice(&digest.to_le_bytes());
    }
    let mut out = Vec::with_capacity(HEADER + body.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&body);
    let saved = Saved { bytes: out.len(), hosts: fleet.hosts.len(), days };
    Some((out, saved))
}

pub(super) fn decode(bytes: &[u8], expected: u128) -> Result<FleetDays, Unusable> {
    if bytes.len() < HEADER || &bytes[..8] != MAGIC {
        return Err(Unusable::NotACheckpoint);
    }
    let mut header = Reader(&bytes[8..HEADER]);
    if header.u128()? != expected {
        return Err(Unusable::NotTheDatabases);
    }
    let (crc, len) = (header.u32()?, header.u64()?);
    let body = &bytes[HEADER..];
    if body.len() as u64 != len {
        return Err(Unusable::Damaged("its length"));
    }
    if crc32fast::hash(body) != crc {
        return Err(Unusable::Damaged("its checksum"));
    }
    let mut r = Reader(body);
    let read_at = r.i64()?;
    let (from, to) = (r.date()?, r.date()?);
    // Counts are checked against the bytes left before anything is
    // reserved for them: a bad count must not ask for gigabytes.
    let hosts_len = r.u32()? as usize;
    if hosts_len > r.0.len() / 12 {
        return Err(Unusable::Damaged("the count of hosts"));
    }
    let mut hosts = HashMap::with_capacity(hosts_len);
    for _ in 0..hosts_len {
        let id = r.i64()?;
        let n = r.u32()? as usize;
        if n > r.0.len() / DAY {
            return Err(Unusable::Damaged("a host's count of days"));
        }
        let mut days = Vec::with_capacity(n);
        for _ in 0..n {
            let d = r.day()?;
            // The analysis relies on each host's days being in order and
            // in the window.
            if d.day < from || d.day > to || days.last().is_some_and(|p: &DailyStats| p.day >= d.day) {
                return Err(Unusable::Damaged("a host's days out of order or out of the window"));
            }
            days.push(d);
        }
        hosts.insert(id, days);
    }
    let written_len = r.u32()? as usize;
    if written_len > r.0.len() / 10 {
        return Err(Unusable::Damaged("the count of findings"));
    }
    let mut written = HashMap::with_capacity(written_len);
    for _ in 0..written_len {
        let len = usize::from(r.u16()?);
        let key = std::str::from_utf8(r.take(len)?).map_err(|_| Unusable::Damaged("a finding's key"))?;
        written.insert(key.to_owned(), r.u64()?);
    }
    if !r.0.is_empty() {
        return Err(Unusable::Damaged("bytes after the end"));
    }
    Ok(FleetDays {
        read_at: Some(read_at),
        from: Some(from),
        to: Some(to),
        hosts,
        judged: HashMap::new(),
        written,
        saved: true,
    })
}

/// Bytes a day takes: the date (4), samples (4), six figures (48), most
/// sessions (4), and connections accepted: whether counted (1), how many (8).
const DAY: usize = 4 + 4 + 6 * 8 + 4 + 1 + 8;

fn put_date(out: &mut Vec<u8>, d: Date) {
    out.extend_from_slice(&d.year().to_le_bytes());
    out.push(d.month() as u8);
    out.push(d.day() as u8);
}

fn put_day(out: &mut Vec<u8>, d: &DailyStats) {
    put_date(out, d.day);
    out.extend_from_slice(&d.samples.to_le_bytes());
    for x in [d.cpu_avg, d.cpu_max, d.cpu_p95, d.memory_avg, d.net_bytes, d.disk_bytes] {
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.extend_from_slice(&d.sessions_max.to_le_bytes());
    out.push(u8::from(d.accepted.is_some()));
    out.extend_from_slice(&d.accepted.unwrap_or(0).to_le_bytes());
}

/// Reads a body front to back; running out of bytes means damage.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Unusable> {
        if self.0.len() < n {
            return Err(Unusable::Damaged("cut short"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Unusable> {
        // `take(N)` returned exactly N bytes.
        Ok(self.take(N)?.try_into().unwrap_or([0; N]))
    }

    fn u16(&mut self) -> Result<u16, Unusable> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32, Unusable> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, Unusable> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    fn i64(&mut self) -> Result<i64, Unusable> {
        Ok(i64::from_le_bytes(self.array()?))
    }
    fn u128(&mut self) -> Result<u128, Unusable> {
        Ok(u128::from_le_bytes(self.array()?))
    }
    fn f64(&mut self) -> Result<f64, Unusable> {
        Ok(f64::from_le_bytes(self.array()?))
    }

    fn date(&mut self) -> Result<Date, Unusable> {
        let [y0, y1, m, d] = self.array()?;
        Date::new(i16::from_le_bytes([y0, y1]), m as i8, d as i8).map_err(|_| Unusable::Damaged("a date"))
    }

    fn day(&mut self) -> Result<DailyStats, Unusable> {
        let day = self.date()?;
        let samples = self.u32()?;
        let [cpu_avg, cpu_max, cpu_p95, memory_avg, net_bytes, disk_bytes] =
            [self.f64()?, self.f64()?, self.f64()?, self.f64()?, self.f64()?, self.f64()?];
        let sessions_max = self.u32()?;
        let counted = self.array::<1>()?[0];
        let accepted = self.u64()?;
        let accepted = match counted {
            0 => None,
            1 => Some(accepted),
            _ => return Err(Unusable::Damaged("a day's connections accepted")),
        };
        Ok(DailyStats {
            day,
            samples,
            cpu_avg,
            cpu_max,
            cpu_p95,
            memory_avg,
            net_bytes,
            disk_bytes,
            sessions_max,
            accepted,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: Date, accepted: Option<u64>) -> DailyStats {
        DailyStats {
            day: d,
            samples: 288,
            cpu_avg: 1.25,
            cpu_max: 9.5,
            cpu_p95: 2.0,
            memory_avg: f64::NAN,
            net_bytes: 1e6,
            disk_bytes: 3.5e6,
            sessions_max: 2,
            accepted,
        }
    }

    fn fleet() -> FleetDays {
        let (a, b) = (jiff::civil::date(2026, 9, 1), jiff::civil::date(2026, 9, 2));
        FleetDays {
            read_at: Some(1_790_000_000_000),
            from: Some(a),
            to: Some(b),
            hosts: HashMap::from([(7, vec![day(a, None), day(b, Some(12))]), (9, vec![day(b, Some(0))])]),
            judged: HashMap::new(),
            written: HashMap::from([("zombie:7".to_owned(), 42u64)]),
            saved: false,
        }
    }

    fn same(a: &DailyStats, b: &DailyStats) -> bool {
        // NaN (a figure not kept before migration 17) must come back NaN.
        format!("{a:?}") == format!("{b:?}")
    }

    #[test]
    fn a_checkpoint_gives_back_every_day_and_digest_it_was_written_with() {
        let f = fleet();
        let (bytes, saved) = encode(&f, 5).expect("a fleet that was read");
        assert_eq!((saved.hosts, saved.days, saved.bytes), (2, 3, bytes.len()));
        let back = decode(&bytes, 5).expect("whole");
        assert_eq!((back.read_at, back.from, back.to), (f.read_at, f.from, f.to));
        for (id, days) in &f.hosts {
            let got = &back.hosts[id];
            assert_eq!(got.len(), days.len());
            assert!(days.iter().zip(got).all(|(a, b)| same(a, b)), "host {id}: {got:?}");
        }
        assert_eq!(back.written, f.written);
        assert!(back.saved);
    }

    #[test]
    fn a_checkpoint_the_database_does_not_name_is_not_used() {
        let (bytes, _) = encode(&fleet(), 5).expect("a fleet that was read");
        assert_eq!(decode(&bytes, 6).err(), Some(Unusable::NotTheDatabases));
    }

    #[test]
    fn a_damaged_or_cut_checkpoint_is_not_used() {
        let (bytes, _) = encode(&fleet(), 5).expect("a fleet that was read");
        let mut flipped = bytes.clone();
        let last = flipped.len() - 20;
        flipped[last] ^= 1;
        assert_eq!(decode(&flipped, 5).err(), Some(Unusable::Damaged("its checksum")));
        assert_eq!(decode(&bytes[..bytes.len() - 3], 5).err(), Some(Unusable::Damaged("its length")));
        assert_eq!(decode(b"YZFLEET0", 5).err(), Some(Unusable::NotACheckpoint));
        assert_eq!(decode(&[], 5).err(), Some(Unusable::NotACheckpoint));
    }

    #[test]
    fn a_count_larger_than_the_bytes_left_is_damage_not_an_allocation() {
        let (mut bytes, _) = encode(&fleet(), 5).expect("a fleet that was read");
        // The count of hosts follows the read time (8) and the window (4 + 4).
        let at = HEADER + 16;
        bytes[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        let body = bytes[HEADER..].to_vec();
        bytes[24..28].copy_from_slice(&crc32fast::hash(&body).to_le_bytes());
        assert_eq!(decode(&bytes, 5).err(), Some(Unusable::Damaged("the count of hosts")));
    }

    #[test]
    fn a_fleet_never_read_has_no_checkpoint() {
        assert!(encode(&FleetDays::default(), 1).is_none());
    }
}
