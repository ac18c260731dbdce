//! Helpers shared by the store's test binaries: every test runs on SQLite, and on
//! PostgreSQL too when SIPPROV_TEST_POSTGRES_URL is set.

use sipprov_model::{Mac, Settings};
use sipprov_store::{FetchInfo, NewDevice, Store};

pub(crate) fn device(mac: &str, group: Option<&str>) -> NewDevice {
    NewDevice {
        mac: mac.parse().unwrap(),
        vendor: "yealink".into(),
        model: "T46S".into(),
        group: group.map(String::from),
        contact: None,
        settings: Settings::parse_assignments(["line.1.username=1001"]).unwrap(),
    }
}

/// The `n`th test device's MAC (Yealink's OUI 001565).
#[allow(dead_code)] // for the fetch tests; not every binary has them
pub(crate) fn nth_mac(n: u32) -> Mac {
    format!("001565{n:06x}").parse().unwrap()
}

/// A fetch of `file` by `mac` at `at` from 192.0.2.1, its hash `h<at>`, reporting `model`.
#[allow(dead_code)] // for the fetch tests; not every binary has them
pub(crate) fn fetch_at(mac: Mac, file: &str, at: i64, model: Option<&str>) -> FetchInfo {
    FetchInfo {
        mac,
        at,
        ip: "192.0.2.1".into(),
        file: file.into(),
        hash: format!("h{at}"),
        reported_model: model.map(String::from),
        reported_firmware: None,
    }
}

pub(crate) async fn stores() -> Vec<(Store, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let mut out = vec![(Store::open_sqlite(&dir.path().join("t.db")).await.unwrap(), Some(dir))];
    if let Ok(url) = std::env::var("SIPPROV_TEST_POSTGRES_URL") {
        out.push((Store::open(&fresh_postgres_database(&url).await).await.unwrap(), None));
    }
    out
}

/// A new, empty database on the test server, so tests running in parallel never share tables.
pub(crate) async fn fresh_postgres_database(base_url: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let name = format!("sipprov_t_{}_{}_{nanos}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(base_url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&pool).await.unwrap();
    let (prefix, _) = base_url.rsplit_once('/').unwrap();
    format!("{prefix}/{name}")
}
