//! Plain lines on stderr. Under systemd (which sets `JOURNAL_STREAM`) each line
//! starts with a `<N>` syslog priority, which journald turns into the entry's
//! level, so `journalctl -p warning -u yunzhi-agent` finds the trouble; in a
//! terminal or cron mail the lines carry the level as a word instead.

use std::sync::OnceLock;

#[derive(Clone, Copy)]
pub enum Level {
    Error,
    Warn,
    Info,
}

fn under_journald() -> bool {
    static JOURNAL: OnceLock<bool> = OnceLock::new();
    *JOURNAL.get_or_init(|| std::env::var_os("JOURNAL_STREAM").is_some())
}

pub fn line(level: Level, message: std::fmt::Arguments<'_>) {
    let (priority, word) = match level {
        Level::Error => (3, "error"),
        Level::Warn => (4, "warning"),
        Level::Info => (6, "info"),
    };
    if under_journald() {
        eprintln!("<{priority}>{message}");
    } else {
        eprintln!("yunzhi-agent: {word}: {message}");
    }
}

macro_rules! error { ($($t:tt)*) => { $crate::log::line($crate::log::Level::Error, format_args!($($t)*)) } }
macro_rules! warning { ($($t:tt)*) => { $crate::log::line($crate::log::Level::Warn, format_args!($($t)*)) } }
macro_rules! info { ($($t:tt)*) => { $crate::log::line($crate::log::Level::Info, format_args!($($t)*)) } }
pub(crate) use {error, info, warning};
