//! Drill hooks for the crash tests: a named point in the code where the
//! process stops, when `YUNZHI_FAILPOINT` names it, until it is killed.
//! Outside a drill the variable is unset and every point is a no-op.

/// Stops here forever if `YUNZHI_FAILPOINT` is `name`, after saying so on
/// standard error (the test watching the process then kills it).
pub async fn hit(name: &str) {
    if std::env::var("YUNZHI_FAILPOINT").is_ok_and(|v| v == name) {
        eprintln!("yunzhi: failpoint {name} reached; waiting to be killed");
        std::future::pending::<()>().await;
    }
}
