//! Databases for the command line's tests: a fresh PostgreSQL database, and
//! a direct connection for the statements a test makes behind Yunzhi's back.
#![allow(dead_code)]

use sqlx::Connection;

/// A PostgreSQL database of this test's own, dropped by [`PgDb::drop_db`].
pub struct PgDb {
    pub url: String,
    name: String,
    admin: sqlx::PgConnection,
}

impl PgDb {
    pub async fn new(suffix: &str) -> PgDb {
        let admin_url = std::env::var("YUNZHI_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap_or_else(|e| {
            panic!("the PostgreSQL tests need a server at {admin_url}: {e}; `.ci/run` starts one")
        });
        let name = format!("yunzhi_t_{}_{suffix}", std::process::id());
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .unwrap();
        let url = format!("{}/{name}", admin_url.rsplit_once('/').unwrap().0);
        PgDb { url, name, admin }
    }

    pub async fn drop_db(mut self) {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE {} WITH (FORCE)", self.name)))
            .execute(&mut self.admin)
            .await
            .unwrap();
    }
}

/// Runs `sql` directly on the database at `url`.
pub async fn exec(url: &str, sql: &str) {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await.expect("a connection");
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned())).execute(&mut conn).await.expect("the statement runs");
    conn.close().await.ok();
}
