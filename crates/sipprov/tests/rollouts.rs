//! Firmware targets and rollouts in waves, against the real server: SIPp phones take the
//! check-sync, curl plays the phones fetching their config (with the new version in their
//! User-Agent once their file names the firmware, or never coming back).

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{curl, eventually, scenario, write, TestServer};
use serde_json::Value;
use sipprov_testkit::Sipp;

const OLD: &str = "66.86.0.15";
const NEW: &str = "66.86.0.160";
/// The catalog's file for NEW on the T46S, as the device file names it.
const NEW_URL: &str = "http://prov.example/files/T46S-66.86.0.160.rom";
const OLD_URL: &str = "http://prov.example/files/T46S-66.86.0.15.rom";

/// A server with short SIP timers, the T46S firmware files of OLD and NEW in its catalog
/// (uploaded with `sipprov firmware add`), and a provisioning URL.
fn server() -> TestServer {
    let mut s = TestServer::start();
    s.stop();
    let cfg = s.data_dir().join("fast-sip.toml");
    write(cfg.clone(), "[sip]\nt1_ms = 50\n");
    s.spawn(&["--config", cfg.to_str().unwrap()]);
    s.ok(&["settings", "set", "provisioning.url=http://prov.example/"]);
    for v in [OLD, NEW] {
        let image = s.data_dir().join(format!("image-{v}"));
        write(image.clone(), &format!("firmware {v}"));
        let name = format!("T46S-{v}.rom");
        s.ok(&[
            "firmware",
            "add",
            image.to_str().unwrap(),
            "--vendor",
            "yealink",
            "--model",
            "T46S",
            "--version",
            v,
            "--name",
            &name,
        ]);
    }
    s
}

fn mac(i: u32) -> String {
    format!("001565{i:06x}")
}

fn ua(i: u32, version: &str) -> String {
    let m = mac(i);
    let colon: Vec<&str> = (0..6).map(|k| &m[2 * k..2 * k + 2]).collect();
    format!("Yealink SIP-T46S {version} {}", colon.join(":"))
}

/// Imports devices `first..first+count` (T46S, or `model`) in `group`, contacts at `port`.
fn import(s: &TestServer, first: u32, count: u32, port: u16, group: &str, model: &str) {
    let mut csv = String::from("mac,vendor,model,group,contact,line.1.username\n");
    for i in first..first + count {
        csv.push_str(&format!("{},yealink,{model},{group},sip:{}@127.0.0.1:{port},{}\n", mac(i), 10000 + i, 10000 + i));
    }
    let path = s.data_dir().join(format!("devices-{first}.csv"));
    write(path.clone(), &csv);
    s.ok(&["device", "import", path.to_str().unwrap()]);
}

/// Device `i`'s config as a phone reporting `version` gets it.
fn config(http: &str, i: u32, version: &str) -> String {
    let r = curl(&format!("http://{http}/{}.cfg", mac(i)), &ua(i, version), &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    r.text()
}

fn rollout(s: &TestServer, id: &str) -> Value {
    s.json(&["rollout", "show", id, "--json"])
}

fn count(r: &Value, state: &str) -> u64 {
    r["counts"][state].as_u64().unwrap_or(0)
}

fn wait_state(s: &TestServer, id: &str, state: &str, limit: Duration) -> Value {
    assert!(
        eventually(limit, || rollout(s, id)["state"] == state),
        "rollout {id} not {state}: {}\n{}",
        rollout(s, id),
        s.log()
    );
    rollout(s, id)
}

/// Phones that upgrade: each polls its config reporting OLD and, once the file names the
/// firmware of NEW, fetches again reporting NEW (as a phone does after flashing it).
struct Upgraders {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Upgraders {
    fn start(http: String, devices: Vec<u32>) -> Upgraders {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(Mutex::new(HashSet::new()));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                for i in &devices {
                    if done.lock().unwrap().contains(i) {
                        continue;
                    }
                    if config(&http, *i, OLD).contains(NEW_URL) {
                        config(&http, *i, NEW);
                        done.lock().unwrap().insert(*i);
                    }
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        Upgraders { stop, thread: Some(thread) }
    }
}

impl Drop for Upgraders {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn firmware_pins(s: &TestServer) -> u64 {
    let db = s.data_dir().join("sipprov.db");
    let script = format!(
        "import sqlite3\nprint(sqlite3.connect({db:?}).execute('SELECT COUNT(*) FROM firmware_pins').fetchone()[0])"
    );
    let out = std::process::Command::new("python3").arg("-c").arg(&script).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[test]
fn the_render_names_the_target_firmware_unless_the_phone_runs_it() {
    let s = server();
    import(&s, 0, 1, 5060, "office", "T46S");
    import(&s, 1, 1, 5060, "office", "T48S");
    // No target: no firmware URL, and the device view has no firmware status.
    assert!(!config(&s.http, 0, OLD).contains("firmware.url"));
    assert!(s.json(&["device", "show", &mac(0), "--json"]).get("firmware").is_none());
    s.ok(&["group", "set", "office", &format!("firmware.version={NEW}")]);
    // A phone on the old firmware is told where the new one is; one on the target is not, and
    // the two renderings have different ETags (the cache keeps them apart).
    let old = s.fetch(&format!("/{}.cfg", mac(0)), &ua(0, OLD), &[]);
    assert!(old.text().contains(&format!("static.firmware.url = {NEW_URL}")), "{}", old.text());
    let on = s.fetch(&format!("/{}.cfg", mac(0)), &ua(0, NEW), &[]);
    assert!(!on.text().contains("firmware.url"), "{}", on.text());
    assert_ne!(old.header("etag"), on.header("etag"));
    // A validator of one rendering does not get a 304 for the other.
    let etag = old.header("etag").unwrap().to_string();
    let again = s.fetch(&format!("/{}.cfg", mac(0)), &ua(0, NEW), &[&format!("If-None-Match: {etag}")]);
    assert_eq!(again.status, 200);
    // `render` (no phone asking) goes by what the device reported last: NEW, so no URL; and
    // `--changed` finds nothing: the hash it computes is that of what the phone was served.
    assert!(!String::from_utf8_lossy(&s.render(&mac(0), None)).contains("firmware.url"));
    let err = s.fails(&["resync", &mac(0), "--changed"]);
    assert!(err.contains("no device is selected"), "{err}");
    let shown = s.json(&["device", "show", &mac(0), "--json"]);
    assert_eq!(shown["firmware"], serde_json::json!({"target": NEW, "image": null, "state": "on-target"}), "{shown}");
    config(&s.http, 0, OLD);
    assert!(String::from_utf8_lossy(&s.render(&mac(0), None)).contains(NEW_URL));
    let err = s.fails(&["resync", &mac(0), "--changed"]);
    assert!(err.contains("no device is selected"), "{err}");
    // The device views say the same as the render: offered (naming the image), or no image.
    let shown = s.json(&["device", "show", &mac(0), "--json"]);
    assert_eq!(shown["firmware"]["state"], "offered", "{shown}");
    assert_eq!(shown["firmware"]["image"], format!("T46S-{NEW}.rom"), "{shown}");
    let shown = s.json(&["device", "show", &mac(1), "--json"]);
    assert_eq!(shown["firmware"]["state"], "no-image", "{shown}");
    assert!(s.ok(&["device", "show", &mac(1)]).contains(&format!("{NEW} (no-image)")));
    // A model without a file for the target: no URL, and the log says why.
    let t48 = curl(&format!("http://{}/{}.cfg", s.http, mac(1)), "Yealink SIP-T48S 66.86.0.15 00:15:65:00:00:01", &[]);
    assert!(!t48.text().contains("firmware.url"), "{}", t48.text());
    assert!(eventually(Duration::from_secs(5), || s.log().contains("has no firmware file for this model")));
    // Once the catalog has one, the cached rendering is dropped and the file names it.
    let image = s.data_dir().join("t48s-image");
    write(image.clone(), "t48s firmware");
    s.ok(&[
        "firmware",
        "add",
        image.to_str().unwrap(),
        "--vendor",
        "yealink",
        "--model",
        "T48S",
        "--version",
        NEW,
        "--name",
        "T48S.rom",
    ]);
    let t48 = curl(&format!("http://{}/{}.cfg", s.http, mac(1)), "Yealink SIP-T48S 66.86.0.15 00:15:65:00:00:01", &[]);
    assert!(t48.text().contains("static.firmware.url = http://prov.example/files/T48S.rom"), "{}", t48.text());
    // No provisioning URL to build the firmware URL from: the render fails naming it.
    s.ok(&["settings", "set", "provisioning.url="]);
    let failed = s.fetch(&format!("/{}.cfg", mac(0)), &ua(0, OLD), &[]);
    assert_eq!(failed.status, 500, "{}", failed.text());
    assert!(s.log().contains("provisioning.url"));
}

#[test]
fn a_rollout_moves_the_group_in_waves_and_records_every_step() {
    let s = server();
    let phones = Sipp::start_calls(scenario("uas_200_linger.xml"), "udp", 50);
    import(&s, 0, 6, phones.port(), "sales", "T46S");
    import(&s, 6, 1, phones.port(), "sales", "T48S");
    // A Polycom phone reads its firmware from the shared master file only: even with an image
    // for its model it is left out, with the vendor's reason, rather than failed later.
    let image = s.data_dir().join("vvx400-image");
    write(image.clone(), "polycom firmware");
    let image = image.to_str().unwrap();
    s.ok(&[
        "firmware",
        "add",
        image,
        "--vendor",
        "polycom",
        "--model",
        "VVX400",
        "--version",
        NEW,
        "--name",
        "vvx400.ld",
    ]);
    let csv = s.data_dir().join("polycom.csv");
    write(csv.clone(), &format!("mac,vendor,model,group\n{},polycom,VVX400,sales\n", mac(7)));
    s.ok(&["device", "import", csv.to_str().unwrap()]);
    for i in 0..6 {
        config(&s.http, i, if i == 5 { NEW } else { OLD });
    }
    let _phones = Upgraders::start(s.http.clone(), (0..5).collect());
    let out = s.ok(&[
        "rollout",
        "start",
        "--group",
        "sales",
        "--to",
        NEW,
        "--canary",
        "1",
        "--wave",
        "50%",
        "--window",
        "20s",
        "--halt-on",
        "20%",
        "--wait",
    ]);
    assert!(out.contains("rollout 1 started") && out.contains("2 skipped"), "{out}");
    let r = wait_state(&s, "1", "done", Duration::from_secs(60));
    assert_eq!(count(&r, "succeeded"), 6, "{r}");
    assert_eq!(count(&r, "skipped"), 2, "{r}");
    assert_eq!(r["waves"], 3, "the canary, then two waves of 50% of the 4 others: {r}");
    let skipped = r["devices"].as_array().unwrap().iter().find(|d| d["mac"] == mac(6)).unwrap().clone();
    assert!(skipped["reason"].as_str().unwrap().contains("no firmware file for yealink T48S"), "{skipped}");
    let polycom = r["devices"].as_array().unwrap().iter().find(|d| d["mac"] == mac(7)).unwrap().clone();
    let reason = polycom["reason"].as_str().unwrap();
    assert!(reason.contains("polycom VVX400") && reason.contains("firmware.url"), "{polycom}");
    // The group's target is the new version now (audited), and no pin is left.
    let group = s.json(&["group", "show", "sales", "--json"]);
    assert_eq!(group["settings"]["firmware.version"], NEW, "{group}");
    assert_eq!(firmware_pins(&s), 0);
    assert!(s.ok(&["audit"]).contains("rollout.create"));
    // Each moved device's history has every step.
    let log = s.ok(&["device", "log", &mac(2)]);
    for step in ["rollout-pinned", "notify", "rollout-succeeded", "rollout-unpinned"] {
        assert!(log.contains(step), "{step} missing:\n{log}");
    }
    // The device already on NEW succeeded at once and was never notified; its config names no
    // firmware.
    let log = s.ok(&["device", "log", &mac(5)]);
    assert!(log.contains("rollout-succeeded") && !log.contains("notify"), "{log}");
    assert!(!config(&s.http, 5, NEW).contains("firmware.url"));
    assert!(s.ok(&["rollout", "list"]).contains("done"));
}

#[test]
fn a_rollout_halts_at_the_threshold_and_resumes() {
    let s = server();
    let phones = Sipp::start_calls(scenario("uas_200_linger.xml"), "udp", 50);
    import(&s, 0, 6, phones.port(), "sales", "T46S");
    // Device 1 (in the canary) never comes back.
    let _phones = Upgraders::start(s.http.clone(), vec![0, 2, 3, 4, 5]);
    s.ok(&[
        "rollout",
        "start",
        "--group",
        "sales",
        "--to",
        NEW,
        "--canary",
        "2",
        "--wave",
        "50%",
        "--window",
        "3s",
        "--halt-on",
        "40%",
    ]);
    // Only one rollout per group at a time.
    let err = s.fails(&["rollout", "start", "--group", "sales", "--to", NEW]);
    assert!(err.contains("already has rollout 1"), "{err}");
    let r = wait_state(&s, "1", "halted", Duration::from_secs(30));
    assert_eq!(count(&r, "failed"), 1, "{r}");
    assert_eq!(count(&r, "waiting"), 4, "the next waves did not start: {r}");
    assert!(r["reason"].as_str().unwrap().contains("1 of 2"), "{r}");
    assert!(s.ok(&["device", "log", &mac(1)]).contains("rollout-failed"));
    // The image the pinned devices are told to fetch cannot be removed meanwhile.
    let err = s.fails(&["firmware", "rm", "T46S-66.86.0.160.rom"]);
    assert!(err.contains("is pinned to 66.86.0.160 by rollout 1"), "{err}");
    // Resume: the next waves run, counted afresh, and the rollout completes.
    s.ok(&["rollout", "resume", "1"]);
    let r = wait_state(&s, "1", "done", Duration::from_secs(60));
    assert_eq!(count(&r, "succeeded"), 5, "{r}");
    assert_eq!(count(&r, "failed"), 1, "{r}");
    assert!(s.ok(&["audit"]).contains("rollout.resume"));
    assert_eq!(firmware_pins(&s), 0);
}

#[test]
fn a_halted_rollout_rolls_back_to_the_previous_version() {
    let s = server();
    let phones = Sipp::start_calls(scenario("uas_200_linger.xml"), "udp", 50);
    import(&s, 0, 4, phones.port(), "sales", "T46S");
    s.ok(&["group", "set", "sales", &format!("firmware.version={OLD}")]);
    let _phones = Upgraders::start(s.http.clone(), vec![0]);
    s.ok(&[
        "rollout",
        "start",
        "--group",
        "sales",
        "--to",
        NEW,
        "--canary",
        "2",
        "--wave",
        "100%",
        "--window",
        "3s",
        "--halt-on",
        "0%",
    ]);
    let r = wait_state(&s, "1", "halted", Duration::from_secs(30));
    assert_eq!((count(&r, "succeeded"), count(&r, "failed")), (1, 1), "{r}");
    drop(_phones);
    s.ok(&["rollout", "rollback", "1"]);
    // The upgraded device is pinned back to OLD: running NEW, its file names OLD's firmware.
    assert!(config(&s.http, 0, NEW).contains(OLD_URL));
    // It comes back reporting OLD; the other never does and its window closes.
    config(&s.http, 0, OLD);
    let r = wait_state(&s, "1", "rolled-back", Duration::from_secs(30));
    assert_eq!(count(&r, "rolled-back"), 2, "{r}");
    assert_eq!(count(&r, "cancelled"), 2, "{r}");
    assert_eq!(firmware_pins(&s), 0);
    let log = s.ok(&["device", "log", &mac(0)]);
    assert!(log.matches("rollout-pinned").count() == 2 && log.contains("rollout-unpinned"), "{log}");
    // The group still targets OLD, which device 0 runs: no URL.
    assert!(!config(&s.http, 0, OLD).contains("firmware.url"));
    assert!(s.ok(&["audit"]).contains("rollout.rollback"));
}

#[test]
fn a_rollout_carries_on_after_a_restart_and_abort_unpins() {
    let mut s = server();
    let phones = Sipp::start_calls(scenario("uas_200_linger.xml"), "udp", 50);
    import(&s, 0, 3, phones.port(), "sales", "T46S");
    import(&s, 10, 2, phones.port(), "lab", "T46S");
    s.ok(&["rollout", "start", "--group", "sales", "--to", NEW, "--canary", "1", "--wave", "100%", "--window", "60s"]);
    assert!(eventually(Duration::from_secs(10), || config(&s.http, 0, OLD).contains(NEW_URL)));
    // The server stops mid-rollout; the pin survives, and the engine picks the rollout up.
    s.stop();
    let cfg = s.data_dir().join("fast-sip.toml");
    s.spawn(&["--config", cfg.to_str().unwrap()]);
    assert!(config(&s.http, 0, OLD).contains(NEW_URL), "the pin did not survive the restart");
    config(&s.http, 0, NEW);
    assert!(eventually(Duration::from_secs(15), || count(&rollout(&s, "1"), "upgrading") == 2), "{}", rollout(&s, "1"));
    for i in 1..3 {
        assert!(config(&s.http, i, OLD).contains(NEW_URL));
        config(&s.http, i, NEW);
    }
    let r = wait_state(&s, "1", "done", Duration::from_secs(30));
    assert_eq!(count(&r, "succeeded"), 3, "{r}");

    // Abort: the undecided devices are unpinned, their files no longer name the firmware.
    s.ok(&["rollout", "start", "--group", "lab", "--to", NEW, "--canary", "2", "--window", "60s"]);
    assert!(eventually(Duration::from_secs(10), || config(&s.http, 10, OLD).contains(NEW_URL)));
    s.ok(&["rollout", "abort", "2"]);
    let r = rollout(&s, "2");
    assert_eq!(r["state"], "aborted");
    assert_eq!(count(&r, "cancelled"), 2, "{r}");
    assert!(!config(&s.http, 10, OLD).contains("firmware.url"));
    assert_eq!(firmware_pins(&s), 0);
    assert!(s.ok(&["device", "log", &mac(10)]).contains("rollout-unpinned"));
    let err = s.fails(&["rollout", "resume", "2"]);
    assert!(err.contains("not halted"), "{err}");
}

/// A console user added with the CLI (password on stdin), then logged in: the session cookie.
fn console_login(s: &TestServer, name: &str, role: &str) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new(common::bin())
        .args(["user", "add", name, "--role", role, "--password-stdin", "--api"])
        .arg(format!("http://{}", s.api))
        .arg("--data-dir")
        .arg(s.data_dir())
        .env_remove("SIPPROV_TOKEN")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "correct horse battery").unwrap();
    assert!(child.wait_with_output().unwrap().status.success());
    let login = console_post(s, None, "/console/login", &[("user", name), ("password", "correct horse battery")]);
    login.header("set-cookie").unwrap().split(';').next().unwrap().to_string()
}

fn console_post(s: &TestServer, cookie: Option<&str>, path: &str, form: &[(&str, &str)]) -> common::Fetched {
    let origin = format!("http://{}", s.api);
    let mut args = vec!["-H".to_string(), format!("Origin: {origin}")];
    if let Some(c) = cookie {
        args.extend(["-H".into(), format!("Cookie: {c}")]);
    }
    for (k, v) in form {
        args.extend(["--data-urlencode".into(), format!("{k}={v}")]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    common::curl_with(&format!("{origin}{path}"), "test", &args).0
}

fn console_get(s: &TestServer, cookie: &str, path: &str) -> common::Fetched {
    let header = format!("Cookie: {cookie}");
    common::curl_with(&format!("http://{}{path}", s.api), "test", &["-H", &header]).0
}

fn csrf_of(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a form with a CSRF token") + 19;
    page[at..].split('"').next().unwrap().to_string()
}

#[test]
fn the_console_starts_follows_and_aborts_a_rollout() {
    let s = server();
    let phones = Sipp::start_calls(scenario("uas_200_linger.xml"), "udp", 10);
    import(&s, 0, 2, phones.port(), "sales", "T46S");
    let viewer = console_login(&s, "viewer", "read-only");
    let op = console_login(&s, "op", "operator");
    let page = console_get(&s, &op, "/console/rollouts").text();
    assert!(page.contains("New rollout") && page.contains("<option>sales</option>"), "{page}");
    let csrf = csrf_of(&page);
    let form =
        [("group", "sales"), ("version", NEW), ("canary", "1"), ("wave", "100"), ("window", "60"), ("halt", "5")];
    // Without the session's CSRF token, and for a read-only user, nothing starts.
    assert_eq!(console_post(&s, Some(&op), "/console/rollouts", &form).status, 403);
    let viewer_csrf = csrf_of(&console_get(&s, &viewer, "/console/devices").text());
    let mut with_token = form.to_vec();
    with_token.push(("csrf", &viewer_csrf));
    assert_eq!(console_post(&s, Some(&viewer), "/console/rollouts", &with_token).status, 403);
    assert!(s.json(&["rollout", "list", "--json"]).as_array().unwrap().is_empty());
    let mut with_token = form.to_vec();
    with_token.push(("csrf", &csrf));
    let started = console_post(&s, Some(&op), "/console/rollouts", &with_token);
    assert_eq!((started.status, started.header("location")), (303, Some("/console/rollouts/1")), "{}", started.text());
    let page = console_get(&s, &op, "/console/rollouts/1").text();
    assert!(page.contains("Rollout 1: sales to 66.86.0.160") && page.contains(">Abort</button>"), "{page}");
    // A pinned device's page shows its target and the image its file names.
    let offered = format!("offered as T46S-{NEW}.rom");
    let device_page = || console_get(&s, &op, &format!("/console/devices/{}", mac(0))).text();
    assert!(eventually(Duration::from_secs(10), || device_page().contains(&offered)), "{}", device_page());
    assert!(device_page().contains("Firmware target"));
    // Live progress: the stream's first event carries the counts (it runs on while the rollout
    // does, so curl stops reading after a moment).
    let header = format!("Cookie: {op}");
    let url = format!("http://{}/console/rollouts/1/events", s.api);
    let out =
        std::process::Command::new("curl").args(["-sN", "--max-time", "2", "-H", &header, &url]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("event: progress") && text.contains("\"upgrading\""), "{text}");
    let aborted = console_post(&s, Some(&op), "/console/rollouts/1/abort", &[("csrf", &csrf)]);
    assert_eq!(aborted.status, 200);
    assert!(aborted.text().contains("Rollout 1 aborted."), "{}", aborted.text());
    assert_eq!(rollout(&s, "1")["state"], "aborted");
    assert!(s.ok(&["audit"]).contains("rollout.abort"));
}

#[test]
fn a_campaign_confirms_phones_on_their_target_and_phones_still_moving() {
    let s = server();
    let phones = Sipp::start_calls(scenario("uas_200_linger.xml"), "udp", 10);
    import(&s, 0, 2, phones.port(), "office", "T46S");
    s.ok(&["group", "set", "office", &format!("firmware.version={NEW}")]);
    s.ok(&["resync", "--group", "office", "--confirm-window", "20"]);
    let campaign = || s.json(&["campaign", "show", "1", "--json"]);
    assert!(
        eventually(Duration::from_secs(15), || campaign()["counts"]["awaiting-confirmation"] == 2),
        "{}",
        campaign()
    );
    // One phone runs the target (its file names no firmware), the other does not (it does):
    // each fetch of its current rendering confirms it.
    assert!(!config(&s.http, 0, NEW).contains("firmware.url"));
    assert!(config(&s.http, 1, OLD).contains(NEW_URL));
    assert!(eventually(Duration::from_secs(15), || campaign()["counts"]["confirmed"] == 2), "{}", campaign());
    // And neither counts as changed afterwards: the hash `--changed` computes is what each got.
    let err = s.fails(&["resync", "--group", "office", "--changed"]);
    assert!(err.contains("no device is selected"), "{err}");
}
