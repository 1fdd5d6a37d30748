//! yunzhi-agent: the monitoring agent the regulation requires on every cloud
//! host. It reads the host's use from /proc and /sys and pushes it to Yunzhi,
//! whose efficiency analysis finds idle and zombie systems.

mod agent;
mod client;
mod digest;
mod host;
mod log;
mod readings;
mod report;
mod spool;
mod state;
mod time;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Pushes this host's CPU, memory, disk, network, session, listening-socket
/// and accepted-connection readings to Yunzhi.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Yunzhi's base URL, e.g. https://yunzhi.example.gov.cn
    #[arg(long)]
    server: String,
    /// The one-time enrolment code; needed only until the host is enrolled.
    #[arg(long, env = "YUNZHI_AGENT_ENROLL")]
    enroll: Option<String>,
    /// Keeps the credential, the sequence counter and undelivered batches.
    #[arg(long)]
    state_dir: PathBuf,
    /// Seconds between samples (default: what the server said at enrolment, else 60).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    interval: Option<u64>,
    /// Take one sample, send what is waiting, and exit: 0 when delivered, 75
    /// when kept for the next run, 78 when (re-)enrolment is needed, 1 on
    /// other failures.
    #[arg(long)]
    once: bool,
    /// Where proc/, sys/, etc/ and var/run/utmp are found: for tests.
    #[arg(long, hide = true, default_value = "/")]
    host_root: PathBuf,
}

/// EX_TEMPFAIL from sysexits.h.
const EXIT_KEPT: u8 = 75;
/// EX_CONFIG from sysexits.h; the systemd unit's RestartPreventExitStatus.
const EXIT_NEEDS_ENROLMENT: u8 = 78;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let exit = agent::run(agent::Options {
        server: cli.server,
        enroll: cli.enroll,
        state_dir: cli.state_dir,
        interval_secs: cli.interval,
        once: cli.once,
        host_root: cli.host_root,
    });
    match exit {
        agent::Exit::Delivered => ExitCode::SUCCESS,
        agent::Exit::Kept => ExitCode::from(EXIT_KEPT),
        agent::Exit::Failed => ExitCode::FAILURE,
        agent::Exit::NeedsEnrolment => ExitCode::from(EXIT_NEEDS_ENROLMENT),
    }
}
