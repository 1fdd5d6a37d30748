//! A Yunzhi site holding the first `hosts` hosts of the fleet: its
//! database (the district, and each host's daily rollups as the ingest
//! writer leaves them) and its raw store (every reading, sealed into day
//! files). Built once into a folder and reused by later runs of the same
//! fleet; the database is restored from a pristine copy before each
//! measurement, so every run's first analysis pass starts with no findings.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use yunzhi_domain::monitoring::{Reading, Rollup};
use yunzhi_rawstore::{Config, Day, RawStore, Row};
use yunzhi_store::{Span, Store};

use super::district;
use super::generate::{Fleet, INTERVAL_SECS, READINGS_PER_DAY};

/// Bumped when the generator or the layout changes: a folder built by
/// another version is built again rather than measured (3: raw day files
/// of format 3, with the connections accepted).
const LAYOUT: u32 = 3;
/// Rows per raw-store append, each one fsync: the ingest writer's group commit.
const APPEND_ROWS: usize = 100_000;

/// What a built site holds, written last so a half-built site is not reused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Marker {
    layout: u32,
    seed: u64,
    hosts: usize,
    days: usize,
    last_day: String,
    ids: Vec<i64>,
}

pub struct Site {
    pub dir: PathBuf,
    pub hosts: usize,
    /// The hosts' resource ids, host by host (filled once built).
    pub ids: Vec<i64>,
}

impl Site {
    pub fn new(dir: PathBuf, hosts: usize) -> Site {
        Site { dir, hosts, ids: Vec::new() }
    }

    fn db(&self) -> PathBuf {
        self.dir.join("yunzhi.db")
    }

    fn pristine(&self) -> PathBuf {
        self.dir.join("yunzhi.pristine.db")
    }

    pub fn raw_dir(&self) -> PathBuf {
        self.dir.join("raw")
    }

    fn marker_path(&self) -> PathBuf {
        self.dir.join("site.json")
    }

    fn marker(&self, fleet: &Fleet) -> Marker {
        Marker {
            layout: LAYOUT,
            seed: fleet.seed(),
            hosts: self.hosts,
            days: fleet.days(),
            last_day: fleet.last_day().to_string(),
            ids: self.ids.clone(),
        }
    }

    /// Whether a previous run built this site for `fleet`; if so, takes its ids.
    pub fn reuse(&mut self, fleet: &Fleet) -> bool {
        let Ok(text) = std::fs::read(self.marker_path()) else { return false };
        let Ok(found) = serde_json::from_slice::<Marker>(&text) else { return false };
        let expected = Marker { ids: found.ids.clone(), ..self.marker(fleet) };
        if found == expected && found.ids.len() == self.hosts && self.pristine().is_file() {
            self.ids = found.ids;
            true
        } else {
            false
        }
    }

    pub fn raw_config(fleet: &Fleet) -> Config {
        Config { retention_days: fleet.days() as u32 + 1, ..Config::default() }
    }

    pub fn open_raw(&self, fleet: &Fleet) -> anyhow::Result<RawStore> {
        RawStore::open(&self.raw_dir(), Site::raw_config(fleet)).context("opening the raw store")
    }

    /// A working copy of the pristine database, opened and migrated.
    pub async fn open_db(&self) -> anyhow::Result<Store> {
        for suffix in ["", "-wal", "-shm"] {
            let p = PathBuf::from(format!("{}{suffix}", self.db().display()));
            if p.exists() {
                std::fs::remove_file(&p)?;
            }
        }
        std::fs::copy(self.pristine(), self.db()).context("restoring the pristine database")?;
        Ok(Store::open_and_migrate(&url(&self.db())).await?)
    }

    /// Bytes of the pristine database file.
    pub fn db_bytes(&self) -> u64 {
        std::fs::metadata(self.pristine()).map(|m| m.len()).unwrap_or(0)
    }
}

fn url(db: &Path) -> String {
    format!("sqlite://{}", db.display())
}

/// One day's rollups of one site, to be written in one transaction.
struct DayRollups {
    site: usize,
    day: Date,
    rollups: Vec<(i64, Rollup)>,
}

/// Builds `sites` (each the first `hosts` hosts of `fleet`) from one pass
/// of the generator: the district, then day by day every host's readings,
/// rolled up into the database and appended to the raw store, which seals
/// each day behind it.
pub async fn build(fleet: &Arc<Fleet>, sites: &mut [&mut Site]) -> anyhow::Result<()> {
    if sites.is_empty() {
        return Ok(());
    }
    let mut stores = Vec::new();
    for site in sites.iter_mut() {
        if site.dir.exists() {
            std::fs::remove_dir_all(&site.dir)?;
        }
        std::fs::create_dir_all(&site.dir)?;
        let store = Store::open_and_migrate(&url(&site.db())).await?;
        let started = Instant::now();
        site.ids = district::record(&store, fleet, site.hosts).await?;
        println!(
            "  recorded the district of {} hosts (units, systems, requests, resources, agents) in {:.1} s",
            site.hosts,
            started.elapsed().as_secs_f64()
        );
        stores.push(store);
    }
    let plan: Vec<(usize, Vec<i64>, PathBuf)> =
        sites.iter().map(|s| (s.hosts, s.ids.clone(), s.raw_dir())).collect();
    let (send, mut receive) = tokio::sync::mpsc::channel::<DayRollups>(2 * sites.len());
    let generator = {
        let fleet = Arc::clone(fleet);
        tokio::task::spawn_blocking(move || generate(&fleet, &plan, &send))
    };
    let started = Instant::now();
    let mut written = 0usize;
    while let Some(day) = receive.recv().await {
        let mut tx = stores[day.site].begin().await?;
        let key = day.day.to_string();
        for (id, r) in &day.rollups {
            tx.put_rollup(Span::Day, *id, &key, r).await?;
        }
        // Written now, but as of the end of their day, as a server that
        // took the readings as they came would have: the analysis' steady
        // state does not take this history for news.
        let end = day.day.tomorrow()?.to_zoned(yunzhi_domain::clock::district_zone())?.timestamp();
        tx.stamp_daily_changed(day.day, end.as_millisecond()).await?;
        tx.commit().await?;
        written += day.rollups.len();
    }
    generator.await??;
    println!(
        "  wrote {written} daily rollups in {:.1} s (one transaction per site and day)",
        started.elapsed().as_secs_f64()
    );
    for (site, store) in sites.iter_mut().zip(stores) {
        store.close().await;
        std::fs::rename(site.db(), site.pristine())?;
        for suffix in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", site.db().display()));
        }
        let marker = site.marker(fleet);
        std::fs::write(site.marker_path(), serde_json::to_vec_pretty(&marker)?)?;
    }
    Ok(())
}

/// The generator's side of [`build`]: readings host by host for each day,
/// rollups sent to the writer, rows appended and sealed here.
fn generate(
    fleet: &Fleet,
    plan: &[(usize, Vec<i64>, PathBuf)],
    send: &tokio::sync::mpsc::Sender<DayRollups>,
) -> anyhow::Result<()> {
    let raws: Vec<RawStore> = plan
        .iter()
        .map(|(_, _, dir)| RawStore::open(dir, Site::raw_config(fleet)))
        .collect::<Result<_, _>>()?;
    let most = plan.iter().map(|(hosts, _, _)| *hosts).max().unwrap_or(0);
    let hosts: Vec<_> = (0..most).map(|h| fleet.host(h)).collect();
    let mut readings: Vec<Reading> = Vec::with_capacity(READINGS_PER_DAY);
    let mut rows: Vec<Vec<Row>> =
        plan.iter().map(|(n, _, _)| Vec::with_capacity(n * READINGS_PER_DAY)).collect();
    let (started, mut sealing) = (Instant::now(), 0.0);
    for d in 0..fleet.days() {
        let mut rollups: Vec<Vec<(i64, Rollup)>> =
            plan.iter().map(|(n, _, _)| Vec::with_capacity(*n)).collect();
        rows.iter_mut().for_each(Vec::clear);
        for (h, host) in hosts.iter().enumerate() {
            readings.clear();
            fleet.readings_of(host, h, d, &mut readings);
            let mut rollup = Rollup::default();
            for r in &readings {
                // Evenly spaced readings: each stands for the interval since the previous one.
                rollup.add(r, INTERVAL_SECS as f64);
            }
            for (s, (n, ids, _)) in plan.iter().enumerate() {
                if h < *n {
                    rows[s].extend(readings.iter().map(|r| yunzhi_server::ingest::raw_row(ids[h], r)));
                    rollups[s].push((ids[h], rollup.clone()));
                }
            }
        }
        let day = fleet.date(d);
        for (s, rollups) in rollups.into_iter().enumerate() {
            send.blocking_send(DayRollups { site: s, day, rollups })
                .map_err(|_| anyhow::anyhow!("the rollup writer stopped"))?;
        }
        let seal_started = Instant::now();
        for (raw, rows) in raws.iter().zip(&rows) {
            for batch in rows.chunks(APPEND_ROWS) {
                raw.append(batch)?;
            }
            raw.seal(Day::from(fleet.date(d)).plus(1))?;
        }
        sealing += seal_started.elapsed().as_secs_f64();
        if (d + 1) % 10 == 0 || d + 1 == fleet.days() {
            println!(
                "  day {}/{} ({}) generated, rolled up, appended and sealed; {:.0} s so far ({:.0} s in the raw store)",
                d + 1,
                fleet.days(),
                fleet.date(d),
                started.elapsed().as_secs_f64(),
                sealing
            );
        }
    }
    Ok(())
}
