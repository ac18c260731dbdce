//! End to end: the server on ephemeral ports, managed by its CLI, fetched by curl as each vendor's phone would.

mod common;

use std::time::Duration;

use common::{write, TestServer};
use sipprov_testkit::assert_well_formed_xml;

const YEALINK_UA: &str = "Yealink SIP-T46S 66.86.0.15 00:15:65:aa:bb:cc";
const GIGASET_UA: &str = "Gigaset N870 IP PRO/83.V2.11.0+build.a546b91;7C2F80E0D605";
const AUDC_PHONE_UA: &str = "AUDC-IPPhone/2.2.8.61 (440HDG-Rev0; 00908F602AAC)";
const SNOM_UA: &str =
    "Mozilla/4.0 (compatible; snomD345-SIP 10.1.33.33 2010.12-00004-g9ba52f5 000413A11FA7 SXM:0 UXM:0)";
const GRANDSTREAM_UA: &str = "Grandstream Model HW GXP1628 SW 1.0.4.138 DevId c074ad2bd859";
const CISCO_MPP_UA: &str = "Cisco-CP-8841-3PCC/11.0 (00562b043615)";
const AUDC_MP_UA: &str = "Mozilla/4.0 (compatible; AudioCodes; MP-118;6.60.200.001;00908F1DD0D3;1)";

fn add_yealink(s: &TestServer) {
    s.ok(&[
        "device",
        "add",
        "00:15:65:AA:BB:CC",
        "--vendor",
        "yealink",
        "--model",
        "T46S",
        "--group",
        "sales",
        "--set",
        "line.1.username=1001",
        "--set",
        "line.1.password=s3cret-yl",
        "--set",
        "line.1.registrar=pbx.example.com",
        "--set",
        "line.1.display_name=Alice",
    ]);
}

#[test]
fn yealink_phone_gets_common_and_mac_files() {
    let s = TestServer::start();
    add_yealink(&s);
    s.ok(&["settings", "set", "provisioning.url=http://prov.example.com/", "time.ntp_server=pool.ntp.org"]);

    let mac_file = s.fetch("/001565aabbcc.cfg", YEALINK_UA, &[]);
    assert_eq!(mac_file.status, 200, "{}", s.log());
    let text = mac_file.text();
    assert!(text.starts_with("#!version:1.0.0.1\n"), "{text}");
    assert!(text.contains("1001") && text.contains("pbx.example.com") && text.contains("s3cret-yl"), "{text}");
    assert_eq!(mac_file.body, s.render("001565aabbcc", None), "render prints exactly what the phone gets");

    let common = s.fetch("/y000000000066.cfg", YEALINK_UA, &[]);
    assert_eq!(common.status, 200);
    assert!(common.text().starts_with("#!version:1.0.0.1\n"));
    assert!(!common.text().contains("s3cret-yl"), "the common file must hold no secrets");
    assert!(common.text().contains("http://prov.example.com/"), "{}", common.text());

    // A phone pointed at a sub-directory works too; the MAC may be in any case.
    assert_eq!(s.fetch("/yealink/001565AABBCC.cfg", YEALINK_UA, &[]).body, mac_file.body);
}

/// A T28P never ran firmware past v7x: its files carry the v7x parameter names.
#[test]
fn yealink_legacy_t28p_gets_the_v7x_names() {
    let s = TestServer::start();
    let mut args = vec!["device", "add", "001565123456", "--vendor", "yealink", "--model", "T28P"];
    for set in ["line.1.username=2001", "line.1.registrar=pbx.example.com", "line.1.port=5062", "line.1.transport=tcp"]
    {
        args.extend(["--set", set]);
    }
    s.ok(&args);
    s.ok(&["settings", "set", "provisioning.url=http://prov.example.com/", "provisioning.interval_minutes=60"]);
    let ua = "Yealink SIP-T28P 2.73.0.50 00:15:65:12:34:56";
    let mac_file = s.fetch("/001565123456.cfg", ua, &[]);
    assert_eq!(mac_file.status, 200, "{}", s.log());
    let text = mac_file.text();
    for line in [
        "account.1.sip_server_host = pbx.example.com\n",
        "account.1.sip_server_port = 5062\n",
        "account.1.transport = 1\n",
        "auto_provision.server.url = http://prov.example.com/\n",
    ] {
        assert!(text.contains(line), "{line:?} missing:\n{text}");
    }
    assert!(!text.contains("static.") && !text.contains("sip_server.1."), "v8x names:\n{text}");
    let common = s.fetch("/y000000000000.cfg", ua, &[]);
    assert_eq!(common.status, 200);
    assert!(common.text().starts_with("#!version:1.0.0.1\nauto_provision.server.url = http://prov.example.com/\n"));
    // The polling interval has no v7x name: refused on the device with the reason.
    let err = s.fails(&["device", "set", "001565123456", "provisioning.interval_minutes=30"]);
    assert!(err.contains("T28P") && err.contains("provisioning.interval_minutes"), "{err}");
}

#[test]
fn gigaset_and_audiocodes_phones_get_their_formats() {
    let s = TestServer::start();
    s.ok(&[
        "device",
        "add",
        "7c2f80e0d605",
        "--vendor",
        "gigaset",
        "--model",
        "N870",
        "--set",
        "line.1.username=2001",
        "--set",
        "line.1.display_name=Bob & \"Co\"",
        "--set",
        "sip.notify_reboot=1",
    ]);
    let xml = s.fetch("/7C2F80E0D605.xml", GIGASET_UA, &[]);
    assert_eq!(xml.status, 200, "{}", s.log());
    let text = xml.text();
    assert!(text.contains("<provisioning version=\"1.1\" productID=\"e2\">"), "{text}");
    assert!(text.contains("SystemSettings.global.CheckSyncRebootEnabled"), "{text}");
    assert!(text.contains("Bob &amp; &quot;Co&quot;") || text.contains("Bob &amp; &#34;Co&#34;"), "{text}");
    // Pointed at the base URL, the N870 asks for provisioning.xml and is known by its User-Agent.
    assert_eq!(s.fetch("/provisioning.xml", GIGASET_UA, &[]).body, xml.body);

    s.ok(&[
        "device",
        "add",
        "00908F602AAC",
        "--vendor",
        "audiocodes",
        "--model",
        "440HD",
        "--set",
        "line.1.username=3001",
    ]);
    let cfg = s.fetch("/00908F602AAC.cfg", AUDC_PHONE_UA, &[]);
    assert_eq!(cfg.status, 200);
    assert!(cfg.text().contains("3001"), "{}", cfg.text());

    s.ok(&[
        "device",
        "add",
        "00908F1DD0D3",
        "--vendor",
        "audiocodes",
        "--model",
        "MP-118",
        "--set",
        "line.1.username=4001",
    ]);
    let ini = s.fetch("/00908F1DD0D3.ini", AUDC_MP_UA, &[]);
    assert_eq!(ini.status, 200, "{}", s.log());
    assert!(ini.text().contains("EnableSIPRemoteReset"), "{}", ini.text());
    assert!(ini.text().ends_with('\n'));
}

#[test]
fn snom_phone_gets_its_settings_under_both_names() {
    let s = TestServer::start();
    s.ok(&["settings", "set", "provisioning.url=http://prov.example.com/snom/", "provisioning.interval_minutes=60"]);
    s.ok(&[
        "device",
        "add",
        "00:04:13:a1:1f:a7",
        "--vendor",
        "snom",
        "--model",
        "D345",
        "--set",
        "line.1.username=5001",
        "--set",
        "line.1.password=s3cret&<sn>",
        "--set",
        "line.1.registrar=pbx.example.com",
        "--set",
        "line.1.display_name=Carol & Co",
    ]);
    let htm = s.fetch("/snomD345-000413A11FA7.htm", SNOM_UA, &[]);
    assert_eq!(htm.status, 200, "{}", s.log());
    assert_eq!(htm.header("content-type"), Some("application/xml"));
    let text = htm.text();
    assert!(text.starts_with("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<settings><phone-settings>\n"), "{text}");
    for element in [
        r#"<setting_server perm="R">http://prov.example.com/snom/</setting_server>"#,
        r#"<user_name idx="1" perm="R">5001</user_name>"#,
        r#"<user_pass idx="1" perm="R">s3cret&amp;&lt;sn&gt;</user_pass>"#,
        r#"<user_host idx="1" perm="R">pbx.example.com</user_host>"#,
        r#"<user_realname idx="1" perm="R">Carol &amp; Co</user_realname>"#,
        r#"<prov_polling_period perm="R">3600</prov_polling_period>"#,
    ] {
        assert!(text.contains(element), "{element} missing from {text}");
    }
    assert_well_formed_xml(&htm.body);

    let xml = s.fetch("/000413A11FA7.xml", SNOM_UA, &[]);
    assert_eq!(xml.status, 200, "{}", s.log());
    assert_eq!(xml.header("content-type"), Some("application/xml"));
    assert_eq!(xml.body, htm.body);
    // PnP gives Snom `{mac}.xml`, which the phone expands in lower case.
    assert_eq!(s.fetch("/000413a11fa7.xml", SNOM_UA, &[]).body, htm.body);
    assert_eq!(xml.body, s.render("000413a11fa7", None), "render prints exactly what the phone gets");
    // Another model's name for this MAC is not this phone's file.
    assert_eq!(s.fetch("/snomD785-000413A11FA7.htm", SNOM_UA, &[]).status, 404);
}

#[test]
fn grandstream_phone_gets_its_p_values() {
    let s = TestServer::start();
    s.ok(&["settings", "set", "provisioning.url=https://prov.example.com/gs/", "provisioning.interval_minutes=1440"]);
    s.ok(&[
        "device",
        "add",
        "C0:74:AD:2B:D8:59",
        "--vendor",
        "grandstream",
        "--model",
        "GXP1628",
        "--set",
        "line.1.username=6001",
        "--set",
        "line.1.password=s3cret&<gs>",
        "--set",
        "line.1.registrar=pbx.example.com",
        "--set",
        "line.1.port=5060",
        "--set",
        "line.1.display_name=Dave & Co",
    ]);
    let res = s.fetch("/cfgc074ad2bd859.xml", GRANDSTREAM_UA, &[]);
    assert_eq!(res.status, 200, "{}", s.log());
    assert_eq!(res.header("content-type"), Some("application/xml"));
    let text = res.text();
    assert!(text.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<gs_provision version=\"1\">\n"), "{text}");
    for element in [
        "<mac>c074ad2bd859</mac>",
        "<P271>1</P271>",
        "<P270>Dave &amp; Co</P270>",
        "<P47>pbx.example.com:5060</P47>",
        "<P35>6001</P35>",
        "<P36>6001</P36>",
        "<P34>s3cret&amp;&lt;gs&gt;</P34>",
        "<P3>Dave &amp; Co</P3>",
        "<P26015>1</P26015>",
        "<P212>2</P212>",
        "<P237>prov.example.com/gs</P237>",
        "<P194>1</P194>",
        "<P193>1440</P193>",
    ] {
        assert!(text.contains(element), "{element} missing from {text}");
    }
    assert_well_formed_xml(&res.body);
    assert_eq!(res.body, s.render("c074ad2bd859", None), "render prints exactly what the phone gets");
    // Names are matched ignoring case; the binary and model files are not served.
    assert_eq!(s.fetch("/CFGC074AD2BD859.XML", GRANDSTREAM_UA, &[]).body, res.body);
    for name in ["/cfgc074ad2bd859", "/cfggxp1628.xml", "/cfg.xml"] {
        assert_eq!(s.fetch(name, GRANDSTREAM_UA, &[]).status, 404, "{name}");
    }
}

#[test]
fn cisco_mpp_phone_gets_its_flat_profile() {
    let s = TestServer::start();
    s.ok(&[
        "settings",
        "set",
        "provisioning.url=https://prov.example.com/cisco/",
        "provisioning.interval_minutes=1440",
    ]);
    s.ok(&[
        "device",
        "add",
        "00:56:2B:04:36:15",
        "--vendor",
        "cisco",
        "--model",
        "CP-8841-3PCC",
        "--set",
        "line.1.username=7001",
        "--set",
        "line.1.password=s3cret&<cp>",
        "--set",
        "line.1.registrar=pbx.example.com",
        "--set",
        "line.1.port=5060",
        "--set",
        "line.1.display_name=Erin & Co",
    ]);
    let res = s.fetch("/00562b043615.xml", CISCO_MPP_UA, &[]);
    assert_eq!(res.status, 200, "{}", s.log());
    assert_eq!(res.header("content-type"), Some("application/xml"));
    let text = res.text();
    assert!(
        text.starts_with("<flat-profile>\n"),
        "as in Cisco's provisioning guide examples, no XML declaration: {text}"
    );
    for element in [
        "<Line_Enable_1_>Yes</Line_Enable_1_>",
        "<Display_Name_1_>Erin &amp; Co</Display_Name_1_>",
        "<User_ID_1_>7001</User_ID_1_>",
        "<Use_Auth_ID_1_>Yes</Use_Auth_ID_1_>",
        "<Auth_ID_1_>7001</Auth_ID_1_>",
        "<Password_1_>s3cret&amp;&lt;cp&gt;</Password_1_>",
        "<Proxy_1_>pbx.example.com:5060</Proxy_1_>",
        "<Provision_Enable>Yes</Provision_Enable>",
        "<Resync_On_Reset>Yes</Resync_On_Reset>",
        "<Resync_Periodic>86400</Resync_Periodic>",
        "<Resync_From_SIP>Yes</Resync_From_SIP>",
        "<Profile_Rule>https://prov.example.com/cisco/$MA.xml</Profile_Rule>",
    ] {
        assert!(text.contains(element), "{element} missing from {text}");
    }
    assert_well_formed_xml(&res.body);
    assert_eq!(res.body, s.render("00562b043615", None), "render prints exactly what the phone gets");
    // Names are matched ignoring case; the model-wide files are not served.
    assert_eq!(s.fetch("/00562B043615.XML", CISCO_MPP_UA, &[]).body, res.body);
    for name in ["/CP-8841-3PCC.xml", "/spa504G.cfg"] {
        assert_eq!(s.fetch(name, CISCO_MPP_UA, &[]).status, 404, "{name}");
    }
}

#[test]
fn conditional_requests_and_etag_follow_changes() {
    let s = TestServer::start();
    add_yealink(&s);
    let first = s.fetch("/001565aabbcc.cfg", YEALINK_UA, &[]);
    let etag = first.header("etag").unwrap().to_string();
    let last_modified = first.header("last-modified").unwrap().to_string();
    assert!(etag.starts_with('"') && !etag.starts_with("W/"), "a strong ETag: {etag}");

    let again = s.fetch("/001565aabbcc.cfg", YEALINK_UA, &[]);
    assert_eq!(again.body, first.body, "byte-stable");
    assert_eq!(again.header("etag"), Some(etag.as_str()));

    let inm = s.fetch("/001565aabbcc.cfg", YEALINK_UA, &[&format!("If-None-Match: {etag}")]);
    assert_eq!(inm.status, 304);
    assert!(inm.body.is_empty());
    let ims = s.fetch("/001565aabbcc.cfg", YEALINK_UA, &[&format!("If-Modified-Since: {last_modified}")]);
    assert_eq!(ims.status, 304);
    // The AudioCodes lenient date form (full month name, day without its zero) of the same date.
    let lenient =
        s.fetch("/001565aabbcc.cfg", YEALINK_UA, &[&format!("If-Modified-Since: {}", lenient(&last_modified))]);
    assert_eq!(lenient.status, 304);
    // A date after the server's clock is no Last-Modified it sent: it proves nothing.
    let future = s.fetch("/001565aabbcc.cfg", YEALINK_UA, &["If-Modified-Since: Mon, 1 January 2035 19:43:31 GMT"]);
    assert_eq!(future.status, 200);
    // Nor does If-None-Match: * name any content: the file is sent.
    assert_eq!(s.fetch("/001565aabbcc.cfg", YEALINK_UA, &["If-None-Match: *"]).status, 200);
    let old = s.fetch("/001565aabbcc.cfg", YEALINK_UA, &["If-Modified-Since: Mon, 1 January 2001 19:43:31 GMT"]);
    assert_eq!(old.status, 200);

    s.ok(&["device", "set", "001565aabbcc", "line.1.display_name=Alice Smith"]);
    let changed = s.fetch("/001565aabbcc.cfg", YEALINK_UA, &[&format!("If-None-Match: {etag}")]);
    assert_eq!(changed.status, 200, "a change invalidates the cache");
    assert_ne!(changed.header("etag"), Some(etag.as_str()));
    assert!(changed.text().contains("Alice Smith"));

    // A group change reaches the device's file too.
    s.ok(&["group", "set", "sales", "time.ntp_server=ntp.example.org"]);
    let grouped = s.fetch("/001565aabbcc.cfg", YEALINK_UA, &[]);
    assert_ne!(grouped.header("etag"), changed.header("etag"));
    assert!(grouped.text().contains("ntp.example.org"), "{}", grouped.text());
}

/// `Sat, 05 Dec 2026 07:41:16 GMT` as an AudioCodes gateway writes it: `Sat, 5 December 2026 07:41:16 GMT`.
fn lenient(http_date: &str) -> String {
    const MONTHS: [(&str, &str); 12] = [
        ("Jan", "January"),
        ("Feb", "February"),
        ("Mar", "March"),
        ("Apr", "April"),
        ("May", "May"),
        ("Jun", "June"),
        ("Jul", "July"),
        ("Aug", "August"),
        ("Sep", "September"),
        ("Oct", "October"),
        ("Nov", "November"),
        ("Dec", "December"),
    ];
    let parts: Vec<&str> = http_date.split(' ').collect();
    let month = MONTHS.iter().find(|(short, _)| *short == parts[2]).map(|(_, long)| *long).unwrap();
    format!("{} {} {month} {} {} GMT", parts[0], parts[1].trim_start_matches('0'), parts[3], parts[4])
}

/// Seconds since the epoch of an HTTP date, read by GNU date.
fn epoch(http_date: &str) -> u64 {
    let out = std::process::Command::new("date").args(["-u", "-d", http_date, "+%s"]).output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().parse().unwrap_or_else(|_| panic!("not a date: {http_date}"))
}

fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// Sleeps until shortly after the next whole second of the wall clock.
fn start_of_next_second() {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    std::thread::sleep(Duration::from_millis(1000 - u64::from(now.subsec_millis())) + Duration::from_millis(10));
}

const AUDC_MP_USER: &str = "mp118:gw-pass-1";

/// An AudioCodes MP-118 with HTTP credentials (so every fetch authenticates, as a provisioned
/// gateway does): it keeps its file and asks with If-Modified-Since only (AudioCodes MP-11x user manual, "Automatic Update").
fn add_audiocodes_mp(s: &TestServer) {
    let (user, pass) = AUDC_MP_USER.split_once(':').unwrap();
    s.ok(&["device", "add", "00908F1DD0D3", "--vendor", "audiocodes", "--model", "MP-118"]);
    s.ok(&["device", "set", "00908F1DD0D3", &format!("http.username={user}"), &format!("http.password={pass}")]);
}

/// GET, a change within the same second, then If-Modified-Since with the
/// Last-Modified the gateway got must bring the new file, never a 304 that keeps the old one;
/// and the change times survive a restart.
#[test]
fn a_change_within_the_same_second_is_never_hidden_from_if_modified_since() {
    let mut s = TestServer::start();
    add_audiocodes_mp(&s);
    let get = |s: &TestServer, headers: &[&str]| s.fetch_digest("/00908f1dd0d3.ini", AUDC_MP_UA, AUDC_MP_USER, headers);
    let ims = |lm: &str| format!("If-Modified-Since: {lm}");
    // The GET and the change must fall within one second of the wall clock; on a loaded machine
    // that may take a few tries (each one is a real change too).
    let mut tested = 0;
    for attempt in 0..5 {
        start_of_next_second();
        let before = get(&s, &[]);
        assert_eq!(before.status, 200, "{}", before.text());
        let lm = before.header("last-modified").unwrap().to_string();
        s.ok(&["device", "set", "00908F1DD0D3", &format!("time.ntp_server=10.0.0.{attempt}")]);
        if now_secs() != epoch(&lm) {
            continue; // not within the same second: try again
        }
        tested += 1;
        let after = get(&s, &[&ims(&lm)]);
        assert_eq!(after.status, 200, "a change in the same second as {lm} was hidden by a 304");
        assert_ne!(after.body, before.body);
        assert!(after.text().contains(&format!("10.0.0.{attempt}")), "{}", after.text());
        let new_lm = after.header("last-modified").unwrap();
        assert!(epoch(new_lm) > epoch(&lm), "Last-Modified {new_lm} is not later than {lm}");
        // RFC 9110 §8.8.2.1: never later than the response's Date.
        assert!(epoch(new_lm) <= epoch(after.header("date").unwrap()), "{new_lm} is in the future");
        assert_eq!(get(&s, &[&ims(new_lm)]).status, 304, "unchanged since: 304 again");
        break;
    }
    assert_eq!(tested, 1, "no attempt managed a GET and a change within one second");

    // After a restart: the same validators, and the rule still holds.
    let current = get(&s, &[]);
    let lm = current.header("last-modified").unwrap().to_string();
    std::thread::sleep(Duration::from_millis(600)); // let the writer persist the change time
    s.stop();
    s.spawn(&[]);
    let again = get(&s, &[]);
    assert_eq!(again.body, current.body);
    assert_eq!(again.header("last-modified"), Some(lm.as_str()), "Last-Modified is when the content changed");
    assert_eq!(get(&s, &[&ims(&lm)]).status, 304);
    s.ok(&["device", "set", "00908F1DD0D3", "time.ntp_server=10.9.9.9"]);
    let changed = get(&s, &[&ims(&lm)]);
    assert_eq!(changed.status, 200);
    assert!(changed.text().contains("10.9.9.9"), "{}", changed.text());
    assert!(epoch(changed.header("last-modified").unwrap()) > epoch(&lm));
}

#[test]
fn restart_keeps_etag_and_last_modified() {
    let mut s = TestServer::start();
    add_yealink(&s);
    let before = s.fetch("/001565aabbcc.cfg", YEALINK_UA, &[]);
    std::thread::sleep(Duration::from_millis(600)); // let the writer persist the change time
    s.stop();
    std::thread::sleep(Duration::from_millis(1100));
    s.spawn(&[]);
    let after = s.fetch("/001565aabbcc.cfg", YEALINK_UA, &[]);
    assert_eq!(after.body, before.body);
    assert_eq!(after.header("etag"), before.header("etag"));
    assert_eq!(after.header("last-modified"), before.header("last-modified"), "Last-Modified is when content changed");
}

#[test]
fn unknown_devices_mismatches_and_odd_paths_get_nothing() {
    let s = TestServer::start();
    add_yealink(&s);
    let unknown = s.fetch("/001565000001.cfg", "Yealink SIP-T46S 66.86.0.15 00:15:65:00:00:01", &[]);
    assert_eq!(unknown.status, 404);
    assert!(unknown.body.is_empty(), "404 without detail");

    let mismatch = s.fetch("/001565aabbcc.cfg", "Yealink SIP-T46S 66.86.0.15 00:15:65:00:00:99", &[]);
    assert_eq!(mismatch.status, 403);
    assert!(s.log().contains("contradicts"), "the refusal is logged");
    let log = s.ok(&["device", "log", "001565aabbcc"]);
    assert!(log.contains("refused"), "{log}");

    for path in ["/../../etc/passwd", "/%2e%2e/etc/passwd", "/.git/config", &format!("/{}", "a".repeat(400))] {
        let r = s.fetch(path, YEALINK_UA, &[]);
        assert!(r.status == 400 || r.status == 404, "{path}: {}", r.status);
        assert!(r.body.is_empty());
    }
    assert!(s.log().contains("refused odd request path"));
}

#[test]
fn fetches_are_recorded_on_the_device() {
    let s = TestServer::start();
    add_yealink(&s);
    let served = s.fetch("/001565aabbcc.cfg", YEALINK_UA, &[]);
    let show = s.json(&["device", "show", "001565aabbcc", "--json"]);
    let last = &show["last_fetch"];
    assert_eq!(last["ip"], "127.0.0.1");
    assert_eq!(last["reported_model"], "T46S");
    assert_eq!(last["reported_firmware"], "66.86.0.15");
    assert_eq!(last["file"], "001565aabbcc.cfg");
    let etag = served.header("etag").unwrap().trim_matches('"');
    assert!(last["hash"].as_str().unwrap().starts_with(etag));
    let text = s.ok(&["device", "show", "001565aabbcc"]);
    assert!(text.contains("66.86.0.15") && text.contains("127.0.0.1"), "{text}");
    let log = s.ok(&["device", "log", "001565aabbcc"]);
    assert!(log.contains("fetch"), "{log}");
}

fn now_ms() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock after 1970");
    i64::try_from(since.as_millis()).expect("ms fit")
}

fn fetch_events(s: &TestServer, mac: &str) -> Vec<serde_json::Value> {
    let log = s.json(&["device", "log", mac, "--json"]);
    log.as_array().expect("a JSON list").iter().filter(|e| e["kind"] == "fetch").cloned().collect()
}

/// Repeats of one fetch within the fetch log's write interval are one history event: its count
/// is the number of fetches, its time the first one's, `last_at` the last one's; none is lost.
#[test]
fn a_burst_of_fetches_is_one_event_with_its_count_and_first_and_last_time() {
    // An interval far longer than the test: only the reads below (which flush) write the batch.
    // No merge window, so each written batch is its own event; the window, which extends the
    // event a later interval repeats, is pinned in fetch_records.rs.
    let s = TestServer::start_with_config("[fetch_log]\ninterval_ms = 60000\nmerge_window_ms = 0\n");
    add_yealink(&s);
    // The first fetch renders the file, and its content change time is written promptly (with
    // the fetch); reading the log writes whatever is pending: the burst starts a new batch.
    assert_eq!(s.fetch("/001565aabbcc.cfg", YEALINK_UA, &[]).status, 200);
    assert_eq!(fetch_events(&s, "001565aabbcc").len(), 1);
    const BURST: u64 = 20;
    let before = now_ms();
    for _ in 0..BURST {
        assert_eq!(s.fetch("/001565aabbcc.cfg", YEALINK_UA, &[]).status, 200);
    }
    let after = now_ms();
    let fetches = fetch_events(&s, "001565aabbcc");
    assert_eq!(fetches.len(), 2, "{fetches:?}");
    let (event, detail) = (&fetches[1], &fetches[1]["detail"]);
    assert_eq!(detail["count"], BURST, "{event}");
    let first = event["at"].as_i64().expect("at");
    let last = detail["last_at"].as_i64().expect("last_at");
    assert!(before <= first && first < last && last <= after, "{before} <= {first} < {last} <= {after}");
    assert_eq!(detail["file"], "001565aabbcc.cfg");
    assert_eq!(detail["ip"], "127.0.0.1");
    assert_eq!(detail["auth"], "open");
    let text = s.ok(&["device", "log", "001565aabbcc"]);
    assert!(text.contains(&format!("count={BURST}")) && text.contains("last_at="), "{text}");
    // The device's last-seen time is the last fetch's.
    let show = s.json(&["device", "show", "001565aabbcc", "--json"]);
    assert_eq!(show["last_fetch"]["at"], last, "{show}");

    // After a write, the next fetch is a new event: one per interval, never merged backwards.
    assert_eq!(s.fetch("/001565aabbcc.cfg", YEALINK_UA, &[]).status, 200);
    let fetches = fetch_events(&s, "001565aabbcc");
    let counts: Vec<_> = fetches.iter().map(|e| e["detail"]["count"].clone()).collect();
    assert_eq!(counts, vec![serde_json::json!(1), serde_json::json!(BURST), serde_json::json!(1)], "{fetches:?}");
    assert!(fetches[2]["detail"].get("last_at").is_none(), "a single fetch has no last_at: {fetches:?}");
}

#[test]
fn listings_never_show_secrets() {
    let s = TestServer::start();
    add_yealink(&s);
    s.ok(&["settings", "set", "admin.password=adm1n-secret"]);
    for args in [
        &["device", "list", "--json"][..],
        &["device", "show", "001565aabbcc"],
        &["device", "show", "001565aabbcc", "--json"],
        &["settings", "show"],
        &["group", "show", "sales"],
    ] {
        let out = s.ok(args);
        assert!(!out.contains("s3cret-yl") && !out.contains("adm1n-secret"), "{args:?} leaked: {out}");
    }
    s.fetch("/001565aabbcc.cfg", YEALINK_UA, &[]);
    assert!(!s.log().contains("s3cret-yl") && !s.log().contains("adm1n-secret"));
}

#[test]
fn bad_input_is_refused_with_a_named_reason() {
    let s = TestServer::start();
    assert!(s
        .fails(&["device", "add", "00:15:65:aa:bb", "--vendor", "yealink", "--model", "T46S"])
        .contains("invalid MAC"));
    assert!(s
        .fails(&["device", "add", "001565aabbcc", "--vendor", "acme", "--model", "T46S"])
        .contains("unknown vendor \"acme\""));
    assert!(s
        .fails(&["device", "add", "001565aabbcc", "--vendor", "yealink", "--model", "Z99"])
        .contains("unknown model \"Z99\""));
    let e = s.fails(&[
        "device",
        "add",
        "001565aabbcc",
        "--vendor",
        "yealink",
        "--model",
        "T46S",
        "--set",
        "line.1.port=99999",
    ]);
    assert!(e.contains("line.1.port"), "{e}");
    add_yealink(&s);
    assert!(s
        .fails(&["device", "add", "001565aabbcc", "--vendor", "yealink", "--model", "T46S"])
        .contains("already exists"));
    assert!(s
        .fails(&["device", "set", "001565aabbcc", "line.1.transport=carrier-pigeon"])
        .contains("line.1.transport"));
    assert!(s.fails(&["device", "show", "001565000042"]).contains("not found"));
}

#[test]
fn csv_import_is_all_or_nothing() {
    let s = TestServer::start();
    let bad = s.data_dir().join("bad.csv");
    write(
        bad.clone(),
        "mac,vendor,model,group,line.1.username,line.1.port\n\
         001565000001,yealink,T46S,sales,1001,5060\n\
         001565000002,yealink,T46S,sales,1002,notaport\n",
    );
    let e = s.fails(&["device", "import", bad.to_str().unwrap()]);
    assert!(e.contains("line 3") && e.contains("line.1.port"), "{e}");
    assert_eq!(s.json(&["device", "list", "--json"]).as_array().unwrap().len(), 0, "nothing imported");

    let good = s.data_dir().join("good.csv");
    let mut text = String::from("mac,vendor,model,group,line.1.username\n");
    for i in 1..=50 {
        text.push_str(&format!("00:15:65:00:01:{i:02x},yealink,T46S,floor{},{}\n", i % 3, 1000 + i));
    }
    write(good.clone(), &text);
    assert!(s.ok(&["device", "import", good.to_str().unwrap()]).contains("imported 50"));
    assert_eq!(s.json(&["device", "list", "--json"]).as_array().unwrap().len(), 50);
    let r = s.fetch("/001565000132.cfg", "Yealink SIP-T46S 66.86.0.15 00:15:65:00:01:32", &[]);
    assert_eq!(r.status, 200);
    assert!(r.text().contains("1050"));
    // Importing again conflicts and changes nothing.
    assert!(s.fails(&["device", "import", good.to_str().unwrap()]).contains("already exists"));
}

/// A named time zone is validated when set and reaches each vendor's file in its own
/// spelling, daylight-saving rule included.
#[test]
fn named_time_zones_reach_the_files_or_are_refused() {
    let s = TestServer::start();
    let e = s.fails(&["settings", "set", "time.zone=Europe/Atlantis"]);
    assert!(e.contains("time.zone") && e.contains("IANA"), "{e}");
    s.ok(&["settings", "set", "time.zone=europe/berlin", "time.ntp_server=ntp.example.com"]);
    s.ok(&["device", "add", "c074ad2bd859", "--vendor", "grandstream", "--model", "GXP1628"]);
    let gs = s.fetch("/cfgc074ad2bd859.xml", GRANDSTREAM_UA, &[]);
    assert_eq!(gs.status, 200, "{}", s.log());
    let text = gs.text();
    assert!(
        text.contains("<P64>CET-1CEST,M3.5.0,M10.5.0/3</P64>") && text.contains("<P30>ntp.example.com</P30>"),
        "{text}"
    );
    assert_well_formed_xml(&gs.body);
    s.ok(&["device", "add", "00562b043615", "--vendor", "cisco", "--model", "CP-8841-3PCC"]);
    let cisco = s.fetch("/00562b043615.xml", CISCO_MPP_UA, &[]).text();
    assert!(cisco.contains("<Daylight_Saving_Time_Rule>start=3/-1/7/2;end=10/-1/7/3;save=1<"), "{cisco}");
    s.ok(&["device", "add", "001565aabbcc", "--vendor", "yealink", "--model", "T46S"]);
    let yealink = s.fetch("/001565aabbcc.cfg", YEALINK_UA, &[]).text();
    assert!(yealink.contains("local_time.start_time = 3/5/7/2\n"), "{yealink}");
    // Polycom: the standard offset and the rule, in the site file every phone reads.
    let site = s.fetch("/polycom/site.cfg", "FileTransport PolycomVVX-VVX_410-UA/5.9.5.0614 Type/Application", &[]);
    assert_eq!(site.status, 200, "{}", s.log());
    let site = site.text();
    for attribute in [
        r#"tcpIpApp.sntp.gmtOffset="3600""#,
        r#"tcpIpApp.sntp.daylightSavings.enable="1""#,
        r#"tcpIpApp.sntp.daylightSavings.start.month="3""#,
        r#"tcpIpApp.sntp.daylightSavings.start.dayOfWeek.lastInMonth="1""#,
        r#"tcpIpApp.sntp.daylightSavings.stop.time="3""#,
    ] {
        assert!(site.contains(attribute), "{attribute} missing from {site}");
    }
    // Snom: the standard offset in seconds and the DST rule, Snom's own zone code left empty.
    s.ok(&["device", "add", "000413A11FA7", "--vendor", "snom", "--model", "D345"]);
    let snom = s.fetch("/000413A11FA7.xml", SNOM_UA, &[]).text();
    for element in [
        r#"<timezone perm="R"></timezone>"#,
        r#"<utc_offset perm="R">+3600</utc_offset>"#,
        r#"<dst perm="R">3600 03.05.07 02:00:00 10.05.07 03:00:00</dst>"#,
    ] {
        assert!(snom.contains(element), "{element} missing from {snom}");
    }
}

/// Cisco element names are case-sensitive, so an imported `vendor.<name>` column keeps
/// its case all the way into the served file (neutral column names are still case-insensitive).
#[test]
fn csv_import_keeps_the_case_of_raw_vendor_names() {
    let s = TestServer::start();
    let csv = s.data_dir().join("cisco.csv");
    write(
        csv.clone(),
        "MAC,Vendor,Model,Line.1.Username,Vendor.SIP_Transport_1_\n001122334455,cisco,CP-8841-3PCC,1001,TLS\n",
    );
    assert!(s.ok(&["device", "import", csv.to_str().unwrap()]).contains("imported 1"));
    let shown = s.json(&["device", "show", "001122334455", "--json"]).to_string();
    assert!(shown.contains("vendor.SIP_Transport_1_") && !shown.contains("sip_transport_1_"), "{shown}");
    let r = s.fetch("/001122334455.xml", "Cisco-CP-8841-3PCC/11.0 (001122334455)", &[]);
    assert_eq!(r.status, 200);
    let body = r.text();
    assert!(body.contains("<SIP_Transport_1_>TLS</SIP_Transport_1_>") && body.contains("1001"), "{body}");
}

#[test]
fn config_file_and_flags() {
    let mut s = TestServer::start();
    s.stop();
    let cfg = s.data_dir().join("sipprov.toml");
    write(cfg.clone(), "[http]\nlisten = \"127.0.0.1:1\"\n[api]\nlisten = \"127.0.0.1:0\"\n");
    // The flag wins over the file's unusable port 1.
    s.spawn(&["--config", cfg.to_str().unwrap()]);
    assert_ne!(s.http, "127.0.0.1:1");
    s.stop();
    write(cfg.clone(), "[http]\nlisen = \"127.0.0.1:0\"\n");
    let out = std::process::Command::new(common::bin())
        .args(["serve", "--config", cfg.to_str().unwrap(), "--data-dir", s.data_dir().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("lisen"), "an unknown key is named");
}

#[test]
fn the_api_requires_its_token() {
    let s = TestServer::start();
    let r = common::curl(&format!("http://{}/api/v1/devices", s.api), "curl", &[]);
    assert_eq!(r.status, 401);
    let r = common::curl(&format!("http://{}/api/v1/devices", s.api), "curl", &["Authorization: Bearer wrong"]);
    assert_eq!(r.status, 401);
    let out = std::process::Command::new(common::bin())
        .args(["device", "list", "--api", &format!("http://{}", s.api), "--data-dir", "/nonexistent"])
        .env_remove("SIPPROV_TOKEN")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("SIPPROV_TOKEN"));
    let metrics = common::curl(&format!("http://{}/metrics", s.api), "curl", &[]);
    assert!(metrics.text().contains("sipprov_devices 0"));
}
