//! The efficiency analysis' checkpoint: a restarted server takes the
//! fleet's days from its data folder instead of reading every host's
//! window from the database, then reads what changed since, and finds
//! what a full read would have found. A checkpoint the database does not
//! name, or a damaged one, is not used.

mod common;

use common::*;
use serde_json::Value;
use yunzhi_server::AppState;
use yunzhi_server::worker::analysis::{self, checkpoint};

on_both_backends!(
    a_restarted_analysis_takes_its_days_from_the_checkpoint_and_reads_what_changed_since,
    a_checkpoint_the_database_does_not_name_or_a_damaged_one_is_not_used,
);

/// The server's state as a restart makes it: the same database, clock and
/// data folder, the analysis holding nothing.
fn restarted(s: &TestServer) -> AppState {
    let mut state = s.state().clone();
    state.fleet = Default::default();
    state
}

fn checkpoint_file(s: &TestServer) -> std::path::PathBuf {
    checkpoint::path(s.state().analysis_dir.as_deref().expect("the tests' servers keep a data folder"))
}

async fn open_zombies(s: &TestServer) -> Vec<Value> {
    let office = s.login("office").await;
    s.all(&office, "/api/v1/findings?kind=zombie&state=open").await
}

/// A cloud host of a system without a declared periodic load that no
/// zombie finding names yet.
async fn another_steady_host(s: &TestServer, not: &[Value]) -> i64 {
    let ca = s.login("cloud_admin").await;
    let systems = s.all(&ca, "/api/v1/systems").await;
    let steady = |system: &Value| systems.iter().any(|x| x["id"] == *system && x["periodic_load"].is_null());
    s.all(&ca, "/api/v1/resources?state=active")
        .await
        .into_iter()
        .find(|r| {
            r["kind"] == "cloud_host"
                && steady(&r["system_id"])
                && !not.iter().any(|f| f["resource_id"] == r["id"])
        })
        .and_then(|r| r["id"].as_i64())
        .expect("another steady cloud host")
}

async fn a_restarted_analysis_takes_its_days_from_the_checkpoint_and_reads_what_changed_since(
    backend: Backend,
) {
    let s = TestServer::demo(backend).await;
    let zombie = zombie_host(&s).await;
    // The hourly job: a pass, then its checkpoint (unless one holds the
    // same window already: the server's first pass at start wrote it).
    analyse(&s).await;
    assert!(checkpoint_file(&s).exists(), "the analysis job leaves a checkpoint");
    let before = open_zombies(&s).await;
    assert!(before.iter().any(|f| f["resource_id"] == zombie["id"]));
    // A server started without a checkpoint: its first pass reads the
    // zombie's days from the database, and checkpoints them.
    std::fs::remove_file(checkpoint_file(&s)).expect("removed");
    let first = restarted(&s);
    analysis::analyse(&first).await.expect("a pass");
    let saved = checkpoint::save(&first).await.expect("saved");
    assert!(saved.is_some_and(|c| (c.hosts, c.days) == (1, 30)), "{saved:?}");

    // Written after the checkpoint: another host's quiet days.
    let second = another_steady_host(&s, &before).await;
    quiet_for_45_days(&s, second).await;

    let state = restarted(&s);
    let report = analysis::analyse(&state).await.expect("a pass after the restart");
    // The shipped rules look 30 days back.
    assert_eq!(report.restored_days, 30, "the zombie's days come from the checkpoint: {report:?}");
    assert_eq!(report.new_findings, 1, "the days written since are read too: {report:?}");
    assert_eq!(report.resolved, 0, "{report:?}");
    let after = open_zombies(&s).await;
    assert!(after.iter().any(|f| f["resource_id"] == zombie["id"]));
    assert!(after.iter().any(|f| f["resource_id"] == second), "{after:?}");
    assert_eq!(after.len(), before.len() + 1);

    // Within the same window the checkpoint is kept as it is: a restart
    // reads what changed since it. The next day's window gets a new one.
    assert!(checkpoint::save(&state).await.expect("saved").is_none(), "the same window");
    s.clock.advance(jiff::SignedDuration::from_hours(24));
    let report = analysis::analyse(&state).await.expect("the next day's pass");
    assert_eq!(report.restored_days, 0, "{report:?}");
    let saved = checkpoint::save(&state).await.expect("saved");
    // The day just ended has no rollups: each host's 29 days still in the window.
    assert!(saved.is_some_and(|c| (c.hosts, c.days) == (2, 58)), "both hosts' days kept: {saved:?}");
    s.stop().await;
}

async fn a_checkpoint_the_database_does_not_name_or_a_damaged_one_is_not_used(backend: Backend) {
    let s = TestServer::demo(backend).await;
    let zombie = zombie_host(&s).await;
    analyse(&s).await;
    let before = open_zombies(&s).await;

    // Another checkpoint named in the database (a restored backup, another
    // server's): this file is not the one.
    s.exec_sql(
        "UPDATE settings SET value = '00000000000000000000000000000001' WHERE key = 'analysis_checkpoint'",
    )
    .await;
    let report = analysis::analyse(&restarted(&s)).await.expect("a pass");
    assert_eq!(report.restored_days, 0, "{report:?}");
    assert_eq!(report.rows_read, 30, "the window read whole: {report:?}");
    assert_eq!((report.new_findings, report.resolved), (0, 0), "{report:?}");

    // The database names the file again, but a byte of it changed.
    let state = restarted(&s);
    analysis::analyse(&state).await.expect("a pass");
    checkpoint::save(&state).await.expect("saved").expect("a checkpoint written: none was used");
    let file = checkpoint_file(&s);
    let mut bytes = std::fs::read(&file).expect("the checkpoint");
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    std::fs::write(&file, bytes).expect("damaged");
    let report = analysis::analyse(&restarted(&s)).await.expect("a pass");
    assert_eq!(report.restored_days, 0, "{report:?}");
    assert_eq!((report.new_findings, report.resolved), (0, 0), "{report:?}");
    let after = open_zombies(&s).await;
    assert_eq!(after.len(), before.len());
    assert!(after.iter().any(|f| f["resource_id"] == zombie["id"]));
    s.stop().await;
}
