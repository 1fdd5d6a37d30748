//! The command line's administrator chores, against real databases.

use std::process::{Command, Output};

mod common;

use common::{PgDb, exec};

fn yunzhi(db: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_yunzhi"))
        .args(args)
        .env("YUNZHI_DATABASE_URL", db)
        .env("RUST_LOG", "warn")
        .env("YUNZHI_SECRET_KEY", "000102030405060708090a0b0c0d0e0f")
        .output()
        .expect("yunzhi runs")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn create_user(url: &str, username: &str, roles: &[&str], password: &str) -> Output {
    let mut args = vec!["admin", "create-user", "--username", username, "--display-name", "管理员"];
    for r in roles {
        args.extend(["--role", r]);
    }
    args.extend(["--password", password]);
    yunzhi(url, &args)
}

async fn chores(url: &str) {
    let o = yunzhi(url, &["migrate"]);
    assert!(o.status.success(), "{}", text(&o));
    let shipped = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../yunzhi-store/migrations"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "sql"))
        .count();
    let applied = format!("{shipped} migration(s) applied");
    assert!(text(&o).contains(&applied), "{applied}: {}", text(&o));
    let o = yunzhi(url, &["migrate"]);
    assert!(text(&o).contains("0 migration(s) applied"), "migrating twice changes nothing: {}", text(&o));

    let weak = create_user(url, "root_admin", &["sys_admin"], "short");
    assert!(!weak.status.success());
    assert!(text(&weak).contains("password"), "{}", text(&weak));

    let o = create_user(url, "root_admin", &["sys_admin"], "Root-Admin-2026");
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("otpauth://totp/Yunzhi:root_admin?secret="),
        "a sys_admin gets a second factor: {}",
        text(&o)
    );

    let mixed = create_user(url, "both", &["sys_admin", "audit_admin"], "Root-Admin-2026");
    assert!(!mixed.status.success());
    assert!(text(&mixed).contains("three-admin separation"), "{}", text(&mixed));

    let o = yunzhi(
        url,
        &["admin", "reset-password", "--username", "root_admin", "--password", "Root-Admin-2027"],
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = yunzhi(url, &["admin", "unlock", "--username", "root_admin"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = yunzhi(url, &["admin", "unlock", "--username", "nobody"]);
    assert!(!o.status.success());

    let o = yunzhi(url, &["admin", "calendar", "list"]);
    assert!(text(&o).contains("2026  33 holidays, 6 make-up working days"), "{}", text(&o));
    // Each test its own file: the SQLite and PostgreSQL runs go at once.
    let file = tempfile::NamedTempFile::new().unwrap().into_temp_path();
    std::fs::write(
        &file,
        r#"{"years": [{"year": 2027, "source": "测试", "holidays": ["2027-01-01"], "workdays": []}]}"#,
    )
    .unwrap();
    let o = yunzhi(url, &["admin", "calendar", "import", file.to_str().unwrap()]);
    assert!(o.status.success() && text(&o).contains("2027: loaded"), "{}", text(&o));
    let o = yunzhi(url, &["admin", "calendar", "import", file.to_str().unwrap()]);
    assert!(text(&o).contains("2027: unchanged"), "{}", text(&o));
    std::fs::write(
        &file,
        r#"{"years": [{"year": 2027, "source": "x", "holidays": ["2027-13-01"], "workdays": []}]}"#,
    )
    .unwrap();
    let o = yunzhi(url, &["admin", "calendar", "import", file.to_str().unwrap()]);
    assert!(!o.status.success() && text(&o).contains("years[0].holidays[0]"), "{}", text(&o));

    let o = yunzhi(url, &["admin", "audit-verify"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("\"ok\": true"), "{}", text(&o));

    exec(url, "UPDATE audit SET actor = 'someone-else' WHERE id = 2").await;
    let o = yunzhi(url, &["admin", "audit-verify"]);
    assert!(!o.status.success(), "a broken chain fails the command");
    assert!(text(&o).contains("\"first_bad\": 2"), "{}", text(&o));
}

#[tokio::test]
async fn the_admin_chores_work_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("yunzhi.db").display());
    chores(&url).await;
}

#[tokio::test]
async fn the_admin_chores_work_on_postgres() {
    let db = PgDb::new("cli").await;
    chores(&db.url).await;
    db.drop_db().await;
}

#[test]
fn agent_digest_prints_each_binarys_sm3_in_the_form_the_releases_file_takes() {
    let dir = tempfile::tempdir().unwrap();
    let agent = dir.path().join("yunzhi-agent-x86_64");
    std::fs::write(&agent, b"abc").unwrap();
    let o = yunzhi("sqlite://unused", &["agent-digest", agent.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let line = String::from_utf8_lossy(&o.stdout).trim_end().to_owned();
    // GB/T 32905-2016's first example: SM3("abc").
    assert_eq!(
        line,
        format!("66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0  {}", agent.display())
    );
    // What it prints is what `serve --agent-releases` reads; a file that
    // holds anything else stops the server at start, naming the line.
    let releases = dir.path().join("releases.txt");
    std::fs::write(&releases, format!("{line}\nyunzhi-agent-aarch64\n")).unwrap();
    let data = dir.path().join("data");
    let o = Command::new(env!("CARGO_BIN_EXE_yunzhi"))
        .args(["serve", "--data", data.to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .args(["--agent-releases", releases.to_str().unwrap()])
        .env("RUST_LOG", "warn")
        .env("RUST_BACKTRACE", "0")
        .env("YUNZHI_SECRET_KEY", "000102030405060708090a0b0c0d0e0f")
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(text(&o).contains("line 2: «yunzhi-agent-aarch64» is not an SM3 digest"), "{}", text(&o));
    let o = Command::new(env!("CARGO_BIN_EXE_yunzhi"))
        .args(["serve", "--data", data.to_str().unwrap(), "--rollup-retention-days", "90"])
        .env("RUST_BACKTRACE", "0")
        .env("YUNZHI_SECRET_KEY", "000102030405060708090a0b0c0d0e0f")
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(text(&o).contains("--rollup-retention-days must be between 400"), "{}", text(&o));
}
