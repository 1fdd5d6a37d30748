//! The job table: enqueue with dedup, claim with a lease, retry, and two
//! workers never holding the same job.

mod common;

use common::{Backend, TestDb, TestServer};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use yunzhi_server::Settings;
use yunzhi_store::{NewJob, Store};

on_both_backends!(
    a_job_is_claimed_once_retried_and_finally_failed,
    a_job_whose_worker_died_is_claimed_again_after_its_lease,
    racing_workers_never_claim_the_same_job,
    one_server_at_a_time_holds_the_scheduler_lease,
    a_job_holding_the_writer_is_not_stalled_by_its_own_lease_renewals,
);

/// A lease renewed every 10 ms ticks many times while an analysis pass
/// holds its write transaction. The renewal must wait beside the job: had
/// it run in the job's place, on SQLite it would wait for the one writer
/// the job holds, the job would not move, and both would stand until the
/// pool gave up (15 s), failing the renewal.
async fn a_job_holding_the_writer_is_not_stalled_by_its_own_lease_renewals(backend: Backend) {
    let settings = Settings { demo: true, job_lease: SignedDuration::from_millis(30), ..Settings::default() };
    let s = TestServer::start(backend, settings).await;
    let ca = s.login("cloud_admin").await;
    for _ in 0..3 {
        let job = s.post(&ca, "/api/v1/findings/analysis", json!(null)).await.expect(202).body;
        let asked = std::time::Instant::now();
        let mut state = Value::Null;
        // Well under the pool's 15 s: a stalled pass cannot finish in time.
        while asked.elapsed() < std::time::Duration::from_secs(8) {
            state =
                s.get(&ca, &format!("/api/v1/jobs/{}", job["id"])).await.expect(200).body["state"].clone();
            if state == "done" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(state, "done", "the analysis pass finished while its lease was renewed every 10 ms");
    }
    s.stop().await;
}

async fn one_server_at_a_time_holds_the_scheduler_lease(backend: Backend) {
    let (store, db) = store(backend).await;
    let now = 1_000_000;
    let mut tx = store.begin().await.unwrap();
    assert!(tx.acquire_lease("scheduler", "a", now, 60_000).await.unwrap(), "a free lease is taken");
    assert!(!tx.acquire_lease("scheduler", "b", now + 1_000, 60_000).await.unwrap(), "a held lease is not");
    assert!(tx.acquire_lease("scheduler", "a", now + 30_000, 60_000).await.unwrap(), "the holder renews it");
    assert!(!tx.acquire_lease("scheduler", "b", now + 80_000, 60_000).await.unwrap(), "renewed, it lasts");
    assert!(
        tx.acquire_lease("scheduler", "b", now + 91_000, 60_000).await.unwrap(),
        "run out, another takes it"
    );
    assert!(!tx.acquire_lease("scheduler", "a", now + 92_000, 60_000).await.unwrap());
    tx.commit().await.unwrap();
    store.close().await;
    db.drop_db().await;
}

fn job(key: &str, at: Timestamp) -> NewJob {
    NewJob {
        kind: "provision".into(),
        dedup_key: Some(key.into()),
        payload: json!({"request": key}),
        run_at: at,
        max_attempts: 2,
    }
}

async fn store(backend: Backend) -> (Store, TestDb) {
    let db = TestDb::new(backend).await;
    (Store::open_and_migrate(&db.url).await.unwrap(), db)
}

async fn a_job_is_claimed_once_retried_and_finally_failed(backend: Backend) {
    let (store, db) = store(backend).await;
    let now = Timestamp::now();
    let mut tx = store.begin().await.unwrap();
    let a = tx.enqueue_job(&job("req-1", now), now).await.unwrap();
    let again = tx.enqueue_job(&job("req-1", now), now).await.unwrap();
    assert_eq!(a.id, again.id, "the same dedup key is one job");
    tx.enqueue_job(&job("later", now + SignedDuration::from_hours(1)), now).await.unwrap();
    tx.commit().await.unwrap();

    let lease = SignedDuration::from_mins(5);
    let mut tx = store.begin().await.unwrap();
    let claimed = tx.claim_job("w1", now, lease).await.unwrap().expect("a due job");
    assert_eq!((claimed.id, claimed.attempts, claimed.state.as_str()), (a.id, 1, "running"));
    assert!(tx.claim_job("w2", now, lease).await.unwrap().is_none(), "the other job is not due yet");
    tx.fail_job(claimed.id, "w1", "platform timed out", now, now + SignedDuration::from_secs(30))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut tx = store.begin().await.unwrap();
    assert!(tx.claim_job("w1", now, lease).await.unwrap().is_none(), "backing off");
    let retry = tx.claim_job("w1", now + SignedDuration::from_secs(31), lease).await.unwrap().unwrap();
    assert_eq!((retry.attempts, retry.last_error.as_deref()), (2, Some("platform timed out")));
    tx.fail_job(retry.id, "w1", "still down", now, now + SignedDuration::from_secs(60)).await.unwrap();
    assert!(
        tx.claim_job("w1", now + SignedDuration::from_mins(2), lease).await.unwrap().is_none(),
        "attempts spent"
    );
    tx.commit().await.unwrap();
    store.close().await;
    db.drop_db().await;
}

async fn a_job_whose_worker_died_is_claimed_again_after_its_lease(backend: Backend) {
    let (store, db) = store(backend).await;
    let now = Timestamp::now();
    let mut tx = store.begin().await.unwrap();
    tx.enqueue_job(&job("req-2", now), now).await.unwrap();
    let first = tx.claim_job("dies", now, SignedDuration::from_mins(1)).await.unwrap().unwrap();
    assert!(
        tx.claim_job("other", now + SignedDuration::from_secs(59), SignedDuration::from_mins(1))
            .await
            .unwrap()
            .is_none()
    );
    let second = tx
        .claim_job("other", now + SignedDuration::from_secs(61), SignedDuration::from_mins(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((second.id, second.attempts), (first.id, 2));
    // The first worker comes back late: its word no longer counts.
    tx.complete_job(first.id, "dies", now).await.unwrap();
    assert_eq!(tx.job(first.id).await.unwrap().unwrap().state, "running");
    tx.complete_job(second.id, "other", now).await.unwrap();
    assert_eq!(tx.job(first.id).await.unwrap().unwrap().state, "done");
    assert!(
        tx.claim_job("other", now + SignedDuration::from_hours(1), SignedDuration::from_mins(1))
            .await
            .unwrap()
            .is_none()
    );
    tx.commit().await.unwrap();
    store.close().await;
    db.drop_db().await;
}

async fn racing_workers_never_claim_the_same_job(backend: Backend) {
    let (store, db) = store(backend).await;
    let now = Timestamp::now();
    let mut tx = store.begin().await.unwrap();
    for i in 0..40 {
        tx.enqueue_job(&job(&format!("job-{i}"), now), now).await.unwrap();
    }
    tx.commit().await.unwrap();
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..4 {
        let store = store.clone();
        workers.spawn(async move {
            let mut mine = Vec::new();
            loop {
                let mut tx = store.begin().await.unwrap();
                let Some(j) =
                    tx.claim_job(&format!("w{w}"), now, SignedDuration::from_mins(5)).await.unwrap()
                else {
                    return mine;
                };
                tx.complete_job(j.id, &format!("w{w}"), now).await.unwrap();
                tx.commit().await.unwrap();
                mine.push(j.id);
            }
        });
    }
    let mut all = Vec::new();
    while let Some(done) = workers.join_next().await {
        all.extend(done.unwrap());
    }
    all.sort();
    let before = all.len();
    all.dedup();
    assert_eq!((before, all.len()), (40, 40), "every job done exactly once");
    store.close().await;
    db.drop_db().await;
}
