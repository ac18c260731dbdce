//! `sipprov backup` and `sipprov restore` against the real server: a snapshot taken while the
//! server serves (and writes), restored after later changes, brings the old state back and
//! renders the same bytes; a restore is refused while a server runs, and a file that is not a
//! sipprov database, or one a newer sipprov migrated, is refused without touching the data
//! directory.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::{bin, TestServer};

const YEALINK: &str = "001565aabb01";
const SNOM: &str = "000413aabb02";

/// Every file the two devices receive, as the CLI renders them, plus the listings.
fn state(s: &TestServer) -> Vec<(String, Vec<u8>)> {
    let mut out = vec![];
    for mac in [YEALINK, SNOM] {
        out.push((format!("render {mac}"), s.render(mac, None)));
    }
    for args in [&["device", "list", "--json"][..], &["group", "show", "sales", "--json"], &["settings", "show"]] {
        out.push((args.join(" "), s.ok(args).into_bytes()));
    }
    out
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn backup_while_serving_then_restore_brings_the_old_state_back() {
    let mut s = TestServer::start_closed();
    s.ok(&["settings", "set", "line.1.registrar=pbx.example.com", "time.zone=Europe/Berlin"]);
    s.ok(&["group", "set", "sales", "line.1.registrar=sales-pbx.example.com"]);
    s.ok(&[
        "device",
        "add",
        YEALINK,
        "--vendor",
        "yealink",
        "--model",
        "T46S",
        "--group",
        "sales",
        "--set",
        "line.1.username=1001",
        "--set",
        "line.1.password=Backup-Secret-1",
    ]);
    s.ok(&["device", "add", SNOM, "--vendor", "snom", "--model", "D785", "--set", "line.1.username=1002"]);
    let before = state(&s);

    // The server keeps writing while the snapshot is taken.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, api, dir) = (stop.clone(), s.api.clone(), s.data_dir().to_path_buf());
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let out = std::process::Command::new(bin())
                    .args(["group", "set", "churn", &format!("line.1.registrar=churn{n}.example.com")])
                    .args(["--api", &format!("http://{api}")])
                    .arg("--data-dir")
                    .arg(&dir)
                    .output()
                    .unwrap();
                assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
                n += 1;
            }
            n
        })
    };
    let backups = tempfile::tempdir().unwrap();
    let file = backups.path().join("sipprov-backup.db");
    let said = s.ok(&["backup", file.to_str().unwrap()]);
    stop.store(true, Ordering::Relaxed);
    assert!(writer.join().unwrap() > 0);
    assert!(said.contains("2 devices"), "{said}");
    #[cfg(unix)]
    assert_eq!(mode(&file), 0o600, "a backup holds every password of the fleet");
    let leftovers: Vec<_> = std::fs::read_dir(backups.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 1, "no temporary file is left: {leftovers:?}");

    // Later changes, which the restore must undo.
    s.ok(&["settings", "set", "line.1.registrar=other.example.com"]);
    s.ok(&["group", "set", "sales", "line.1.registrar=elsewhere.example.com"]);
    s.ok(&["device", "rm", SNOM]);
    s.ok(&["device", "add", "001565aabb03", "--vendor", "yealink", "--model", "T46S"]);

    let refused = s.fails(&["restore", file.to_str().unwrap()]);
    assert!(refused.contains("using the data directory"), "{refused}");
    assert!(s.ok(&["device", "list"]).contains("001565aabb03"), "the refused restore changed nothing");

    s.stop();
    let said = s.ok(&["restore", file.to_str().unwrap()]);
    assert!(said.contains("kept as"), "{said}");
    let aside: Vec<_> = std::fs::read_dir(s.data_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("sipprov.db.before-restore-"))
        .collect();
    assert!(!aside.is_empty(), "the replaced database is kept aside");
    #[cfg(unix)]
    assert_eq!(mode(&s.data_dir().join("sipprov.db")), 0o600);

    s.spawn(&[]);
    let after = state(&s);
    for ((what, old), (_, new)) in before.iter().zip(&after) {
        assert!(
            old == new,
            "{what} differs after restore:\n{}\n---\n{}",
            String::from_utf8_lossy(old),
            String::from_utf8_lossy(new)
        );
    }
    assert!(!s.ok(&["device", "list"]).contains("001565aabb03"));
}

#[test]
fn restore_refuses_a_file_that_is_not_a_sipprov_database() {
    let mut s = TestServer::start_closed();
    s.ok(&["device", "add", YEALINK, "--vendor", "yealink", "--model", "T46S"]);
    s.stop();
    let db = s.data_dir().join("sipprov.db");
    let original = std::fs::read(&db).unwrap();
    let junk = s.data_dir().join("junk.db");
    std::fs::write(&junk, b"SQLite format 3\0 but not really, just bytes pretending to be one".repeat(64)).unwrap();
    let err = s.fails(&["restore", junk.to_str().unwrap()]);
    assert!(err.contains("restore refused") && err.contains("junk.db"), "{err}");
    let empty = s.data_dir().join("empty.txt");
    std::fs::write(&empty, b"").unwrap();
    let err = s.fails(&["restore", empty.to_str().unwrap()]);
    assert!(err.contains("restore refused"), "{err}");
    // A real backup, but from a sipprov with a migration this one does not know.
    let newer = s.data_dir().join("newer.db");
    s.ok(&["backup", newer.to_str().unwrap()]);
    let mark = "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); \
                c.execute(\"INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
                VALUES (99990101, 'from a newer sipprov', 1, x'00', 0)\"); c.commit()";
    common::run(std::process::Command::new("python3").args(["-c", mark]).arg(&newer));
    let err = s.fails(&["restore", newer.to_str().unwrap()]);
    assert!(err.contains("99990101") && err.contains("not known to this sipprov"), "{err}");
    assert_eq!(std::fs::read(&db).unwrap(), original, "the database is untouched");
    s.spawn(&[]);
    assert!(s.ok(&["device", "list"]).contains(YEALINK));
}

#[test]
fn a_second_server_on_the_same_data_directory_is_refused() {
    let s = TestServer::start_closed();
    let out = std::process::Command::new(bin())
        .args(["serve", "--data-dir"])
        .arg(s.data_dir())
        .args(["--http-listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0", "--sip-listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("using the data directory"));
}
