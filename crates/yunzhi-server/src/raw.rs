//! Upkeep of this server's raw readings: every complete Beijing day is
//! sealed into its Parquet file, and days past the retention window are
//! deleted. Each server keeps the readings it received, so this runs on
//! every server rather than as a job one of them claims.

use std::time::Duration;

use tokio::sync::watch;
use yunzhi_rawstore::Day;

use crate::state::AppState;

/// How often the raw store is looked after. A day is sealed within this
/// long of its end; until then its readings are in the log, and read from there.
const EVERY: Duration = Duration::from_secs(600);

/// The district's day offset from UTC, which the raw store's days follow.
const BEIJING: i32 = 8 * 3600;

/// Seals and prunes now, then every ten minutes, until `stop`.
pub fn spawn(state: AppState, mut stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let Some(store) = state.raw.clone() else { return };
        loop {
            let today = Day::of_ms(state.now().as_millisecond(), BEIJING);
            let store = store.clone();
            let done = tokio::task::spawn_blocking(move || -> yunzhi_rawstore::Result<(usize, usize)> {
                let sealed = store.seal(today)?.written.len();
                let pruned = store.prune(today)?;
                Ok((sealed, pruned))
            })
            .await;
            match done {
                Ok(Ok((0, 0))) => {}
                Ok(Ok((sealed, pruned))) => {
                    tracing::info!(sealed, pruned, "raw readings: days sealed and pruned")
                }
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "raw readings could not be sealed or pruned; trying again later")
                }
                Err(e) => tracing::error!(error = %e, "the raw store's upkeep stopped unexpectedly"),
            }
            tokio::select! {
                _ = tokio::time::sleep(EVERY) => {}
                _ = stop.changed() => return,
            }
        }
    })
}
