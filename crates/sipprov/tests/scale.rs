//! Large inventories: the CSV import streams a file larger than any body the API buffers and
//! stays all or nothing, and the byte-bounded render cache evicts yet serves the same bytes.

mod common;

use std::fmt::Write as _;

use common::TestServer;

const YEALINK_UA: &str = "Yealink SIP-T46S 66.86.0.15";

fn mac_of(i: usize) -> String {
    format!("{:012x}", 0x0015_6500_0000_usize + i)
}

/// Peak resident memory of a process, in KiB (`VmHWM`).
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("process status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

fn device_count(s: &TestServer) -> usize {
    s.json(&["device", "list", "--json"]).as_array().expect("a list").len()
}

/// A file of 70 MB, past the 64 MiB the API used to buffer at most, goes in: the server reads
/// it as it arrives (its peak memory grows by much less than the file), and the devices are
/// served with their settings merged over the group's and the global ones, before and after
/// a restart (which loads them from the store).
#[test]
fn a_file_larger_than_the_old_body_limit_is_streamed_in_and_served() {
    let mut s = TestServer::start();
    s.ok(&["settings", "set", "time.ntp_server=ntp.example.com", "line.1.registrar=global.example.com"]);
    s.ok(&["group", "set", "floor1", "line.1.registrar=group.example.com"]);
    let rows = 7_000;
    // Each row carries 10 KB of blanks around one value; cells are trimmed, so only the file
    // is large, not what is stored.
    let pad = " ".repeat(10_000);
    let mut text = String::from("mac,vendor,model,group,line.1.username,line.1.display_name\n");
    for i in 0..rows {
        let group = if i % 2 == 0 { "floor1" } else { "" };
        writeln!(text, "{},yealink,T46S,{group},{},{pad}User {i}{pad}", mac_of(i), 1000 + i).unwrap();
    }
    assert!(text.len() > 64 << 20, "larger than the old limit");
    let file = s.data_dir().join("big.csv");
    std::fs::write(&file, &text).unwrap();
    drop(text);
    let pid = s.child.as_ref().expect("running").id();
    let before = peak_rss_kib(pid);
    let out = s.ok(&["device", "import", file.to_str().unwrap()]);
    assert!(out.contains(&format!("imported {rows}")), "{out}");
    let growth_mib = (peak_rss_kib(pid) - before) / 1024;
    assert!(growth_mib < 48, "the server grew by {growth_mib} MiB reading a 70 MB file: it held it whole");
    assert_eq!(device_count(&s), rows);

    let check = |s: &TestServer, i: usize, registrar: &str| {
        let r = s.fetch(&format!("/{}.cfg", mac_of(i)), YEALINK_UA, &[]);
        assert_eq!(r.status, 200, "{}", s.log());
        let body = r.text();
        assert!(body.contains(&format!("account.1.user_name = {}\n", 1000 + i)), "{body}");
        assert!(body.contains(&format!("account.1.display_name = User {i}\n")), "{body}");
        assert!(body.contains(&format!("account.1.sip_server.1.address = {registrar}\n")), "{body}");
        assert!(body.contains("ntp.example.com"), "{body}");
        r.body
    };
    let first = check(&s, 4, "group.example.com");
    let odd = check(&s, rows - 1, "global.example.com");
    s.stop();
    s.spawn(&[]);
    assert_eq!(check(&s, 4, "group.example.com"), first, "the same bytes after a restart");
    assert_eq!(check(&s, rows - 1, "global.example.com"), odd);
}

/// A bad cell near the end of a large file refuses the whole file, naming the line and the
/// column, after the rows before it were already written into the import's transaction: none
/// of them stays. A MAC already stored, late in a file, does the same.
#[test]
fn a_bad_line_late_in_a_big_file_refuses_everything() {
    let s = TestServer::start();
    let rows = 30_000;
    let bad_row = rows - 7;
    let mut text = String::from("mac,vendor,model,group,line.1.username,line.1.port\n");
    for i in 0..rows {
        let port = if i == bad_row { "notaport" } else { "5060" };
        writeln!(text, "{},yealink,T46S,g{},{},{port}", mac_of(i), i % 5, 1000 + i).unwrap();
    }
    let file = s.data_dir().join("bad.csv");
    std::fs::write(&file, &text).unwrap();
    let e = s.fails(&["device", "import", file.to_str().unwrap()]);
    // The header is line 1, so row i is on line i + 2.
    let line = bad_row + 2;
    assert!(e.contains(&format!("line {line}")) && e.contains("line.1.port"), "{e}");
    assert!(e.contains("nothing was imported"), "{e}");
    assert_eq!(device_count(&s), 0, "nothing written");
    assert_eq!(s.fetch(&format!("/{}.cfg", mac_of(0)), YEALINK_UA, &[]).status, 404);

    // A device that exists already, near the end of the file.
    s.ok(&["device", "add", &mac_of(rows + 100), "--vendor", "yealink", "--model", "T46S"]);
    let mut text = String::from("mac,vendor,model\n");
    for i in 0..rows {
        let i = if i == bad_row { rows + 100 } else { i };
        writeln!(text, "{},yealink,T46S", mac_of(i)).unwrap();
    }
    std::fs::write(&file, &text).unwrap();
    let e = s.fails(&["device", "import", file.to_str().unwrap()]);
    assert!(e.contains("already exists") && e.contains(&format!("line {line}")), "{e}");
    assert_eq!(device_count(&s), 1, "only the device added before");

    // The same file without the conflict goes in whole.
    let text = text.replace(&mac_of(rows + 100), &mac_of(bad_row));
    std::fs::write(&file, &text).unwrap();
    assert!(s.ok(&["device", "import", file.to_str().unwrap()]).contains(&format!("imported {rows}")));
    assert_eq!(device_count(&s), rows + 1);
}

/// With a render cache bounded to a few files, fetching many devices evicts, and every fetch,
/// first or again after its file was evicted, gets exactly the bytes its device renders to.
#[test]
fn a_bounded_render_cache_evicts_and_still_serves_the_right_bytes() {
    let s = TestServer::start_with_config("[cache]\nmax_bytes = 8000\n");
    let devices = 40;
    import_numbered_phones(&s, devices);
    let fetch = |i: usize| {
        let r = s.fetch(&format!("/{}.cfg", mac_of(i)), YEALINK_UA, &[]);
        assert_eq!(r.status, 200, "{}", s.log());
        assert!(r.text().contains(&format!("account.1.user_name = {}\n", 5000 + i)));
        r.body
    };
    let first: Vec<Vec<u8>> = (0..devices).map(fetch).collect();
    // Device 0 keeps fetching while the others pass through the cache twice more.
    for round in 0..2 {
        for (i, expected) in first.iter().enumerate() {
            assert_eq!(&fetch(i), expected, "device {i}, round {round}");
            assert_eq!(fetch(0), first[0]);
        }
    }
    // A change still reaches the device whose file may or may not be cached.
    s.ok(&["device", "set", &mac_of(3), "line.1.username=7777"]);
    let r = s.fetch(&format!("/{}.cfg", mac_of(3)), YEALINK_UA, &[]);
    assert!(r.text().contains("account.1.user_name = 7777\n"), "{}", r.text());
}

/// A file declared larger than the import's 512 MiB limit is refused with 413 before its body
/// is read, and nothing is imported.
#[test]
fn a_file_declared_past_the_limit_is_refused_before_it_is_read() {
    use std::io::{Read, Write};
    let s = TestServer::start();
    let token = std::fs::read_to_string(s.data_dir().join("api-token")).unwrap();
    let mut conn = std::net::TcpStream::connect(&s.api).unwrap();
    conn.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
    let head = format!(
        "POST /api/v1/devices/import HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: text/csv\r\nContent-Length: {}\r\n\r\nmac,vendor,model\n",
        s.api,
        token.trim(),
        600u64 << 20
    );
    conn.write_all(head.as_bytes()).unwrap();
    let mut answer = [0u8; 512];
    let n = conn.read(&mut answer).unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert_eq!(device_count(&s), 0);
}

/// What each device fetched last reads the same in the device list after a restart: loading
/// hands each device's last fetch from the store to the compact last-seen index (the record no
/// longer keeps a copy), and the index gives back the exact file name, hash, address and
/// reported firmware.
#[test]
fn last_seen_reads_the_same_after_a_restart() {
    let mut s = TestServer::start();
    let devices = 30;
    import_numbered_phones(&s, devices);
    for i in 0..20 {
        let agent = format!("Yealink SIP-T46S 66.86.0.{}", 10 + i % 3);
        assert_eq!(s.fetch(&format!("/{}.cfg", mac_of(i)), &agent, &[]).status, 200, "{}", s.log());
    }
    let seen = |s: &TestServer| -> Vec<(String, serde_json::Value)> {
        let list = s.json(&["device", "list", "--json"]);
        let mut out: Vec<_> = list
            .as_array()
            .expect("a list")
            .iter()
            .map(|d| (d["mac"].as_str().expect("mac").to_string(), d["last_fetch"].clone()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    };
    let before = seen(&s);
    assert_eq!(before.len(), devices);
    for (i, (mac, last)) in before.iter().enumerate() {
        if i >= 20 {
            assert!(last.is_null(), "{mac} never fetched");
            continue;
        }
        assert_eq!(last["file"], format!("{mac}.cfg"));
        assert_eq!(last["ip"], "127.0.0.1");
        assert_eq!(last["reported_firmware"], format!("66.86.0.{}", 10 + i % 3));
        assert_eq!(last["hash"].as_str().map(str::len), Some(64), "{last}");
    }
    s.stop();
    s.spawn(&[]);
    assert_eq!(seen(&s), before, "the same after the restart");
}

/// Imports `devices` Yealink T46S phones, `mac_of(0)` onward, each with its own line username.
fn import_numbered_phones(s: &TestServer, devices: usize) {
    let mut text = String::from("mac,vendor,model,line.1.username\n");
    for i in 0..devices {
        writeln!(text, "{},yealink,T46S,{}", mac_of(i), 5000 + i).unwrap();
    }
    let file = s.data_dir().join("devices.csv");
    std::fs::write(&file, &text).unwrap();
    s.ok(&["device", "import", file.to_str().unwrap()]);
}
