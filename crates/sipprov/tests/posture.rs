//! The default posture end to end: a device's file is served once without credentials (its
//! first-fetch window), then refused; Yealink, AudioCodes MP-11x, Grandstream and Snom files carry
//! generated credentials that authenticate from then on, Cisco's `Profile_Rule` the ones set;
//! racing first fetches; unlock, restart and removal; open groups; and the start-up and add-time
//! warnings about who is open or locked out.

mod common;

use std::time::Duration;

use common::{accepted_by, curl_with, fetches_accepted_by, TestServer};

const MAC: &str = "001565aabbcc";
const UA: &str = "Yealink SIP-T46S 66.86.0.15 00:15:65:aa:bb:cc";
const HTTP_PASSWORD: &str = "Pr0v-Secret-1";
const SIP_PASSWORD: &str = "s1p-Secret-9";
const GIGASET_MAC: &str = "7c2f80e0d605";
const CLOSED_IN_OPEN_GROUP: &str = "001565aabbdd";

/// The `static.auto_provision.server.<field>` value in a Yealink file.
fn yealink_value(text: &str, field: &str) -> String {
    let prefix = format!("static.auto_provision.server.{field} = ");
    text.lines().find_map(|l| l.strip_prefix(&prefix)).unwrap_or_else(|| panic!("no {field} in:\n{text}")).to_string()
}

#[test]
fn default_posture_one_fetch_without_credentials_then_generated_ones() {
    let mut s = TestServer::start_closed();
    s.ok(&["device", "add", MAC, "--vendor", "yealink", "--model", "T46S", "--set", "line.1.username=1001"]);
    s.ok(&["device", "set", MAC, &format!("line.1.password={SIP_PASSWORD}")]);
    let shown = s.ok(&["device", "show", MAC]);
    assert!(
        shown.contains("credentials generated at its first fetch") && shown.contains("first-fetch window"),
        "{shown}"
    );
    let url = format!("http://{}/{MAC}.cfg", s.http);
    assert_eq!(s.fetch(&format!("/{MAC}.cfg"), "", &[]).status, 200, "any requester, even without a User-Agent");
    let shown = s.ok(&["device", "show", MAC]);
    assert!(shown.contains("generated credentials") && !shown.contains("first-fetch window"), "{shown}");
    // That was the device's one fetch without credentials: whoever makes it closes the window.
    assert_eq!(curl_with(&url, UA, &[]).0.status, 401, "the window closes at the first fetch");
    s.ok(&["device", "unlock", MAC]);
    let (first, _) = curl_with(&url, UA, &[]);
    assert_eq!(first.status, 200, "{}", s.log());
    let text = first.text();
    let user = yealink_value(&text, "username");
    let password = yealink_value(&text, "password");
    assert_eq!(user, format!("sipprov-{MAC}"));
    assert!(password.len() >= 20 && password.bytes().all(|b| b.is_ascii_alphanumeric()), "{password}");
    assert_eq!(curl_with(&url, UA, &[]).0.status, 401);
    let (again, _) = curl_with(&url, UA, &["--digest", "--user", &format!("{user}:{password}")]);
    assert_eq!(again.status, 200, "the generated credentials authenticate: {}", s.log());
    assert_eq!(again.body, first.body, "and the file still carries the same ones");
    assert_eq!(s.render(MAC, None), first.body);
    // Kept secret: not in listings, history or the log.
    for text in [s.log(), s.ok(&["device", "show", MAC, "--json"]), s.ok(&["device", "log", MAC, "--json"])] {
        assert!(!text.contains(&password), "the generated password leaked:\n{text}");
    }
    let log = s.ok(&["device", "log", MAC, "--json"]);
    assert_eq!(fetches_accepted_by(&log, "first-fetch-window"), 2, "{log}");

    // A restart keeps both the closed window and the credentials.
    s.stop();
    s.spawn(&[]);
    let url = format!("http://{}/{MAC}.cfg", s.http);
    assert_eq!(curl_with(&url, UA, &[]).0.status, 401);
    let (after, _) = curl_with(&url, UA, &["--digest", "--user", &format!("{user}:{password}")]);
    assert_eq!((after.status, after.body), (200, first.body.clone()), "{}", s.log());
    // An unlock gives a reset phone the same credentials again.
    s.ok(&["device", "unlock", MAC]);
    assert_eq!(curl_with(&url, UA, &[]).0.body, first.body);

    // A device removed and added again starts afresh: a new window and new credentials, kept.
    s.ok(&["device", "rm", MAC]);
    s.ok(&["device", "add", MAC, "--vendor", "yealink", "--model", "T46S"]);
    let (fresh, _) = curl_with(&url, UA, &[]);
    assert_eq!(fresh.status, 200);
    let new_password = yealink_value(&fresh.text(), "password");
    assert_ne!(new_password, password);
    s.stop();
    s.spawn(&[]);
    let url = format!("http://{}/{MAC}.cfg", s.http);
    let (kept, _) = curl_with(&url, UA, &["--digest", "--user", &format!("{user}:{new_password}")]);
    assert_eq!(kept.status, 200, "{}", s.log());

    // Of concurrent first fetches, exactly one gets the file.
    let other = "001565aabbdd";
    s.ok(&["device", "add", other, "--vendor", "yealink", "--model", "T46S"]);
    let racers: Vec<_> = (0..8)
        .map(|_| {
            let url = format!("http://{}/{other}.cfg", s.http);
            std::thread::spawn(move || curl_with(&url, "Yealink SIP-T46S 66.86.0.15", &[]).0.status)
        })
        .collect();
    let statuses: Vec<u16> = racers.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(statuses.iter().filter(|c| **c == 200).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|c| *c == 200 || *c == 401), "{statuses:?}");
}

#[test]
fn audiocodes_gateways_get_generated_credentials_too() {
    let s = TestServer::start_closed();
    let mac = "00908f1dd0d3";
    let ua = "Mozilla/4.0 (compatible; AudioCodes; MP-118;6.60.200.001;00908F1DD0D3;1)";
    s.ok(&["device", "add", mac, "--vendor", "audiocodes", "--model", "MP-118", "--set", "line.1.username=2001"]);
    let url = format!("http://{}/00908F1DD0D3.ini", s.http);
    let (first, _) = curl_with(&url, ua, &[]);
    assert_eq!(first.status, 200, "{}", s.log());
    let text = first.text();
    let value = |name: &str| {
        let line = text.lines().find(|l| l.trim_start().starts_with(name)).unwrap_or_else(|| panic!("{name}: {text}"));
        line.split('\'').nth(1).unwrap_or_default().to_string()
    };
    let (user, password) = (value("AUPDDigestUsername"), value("AUPDDigestPassword"));
    assert_eq!(user, format!("sipprov-{mac}"));
    assert_eq!(password.len(), 24, "{text}");
    assert_eq!(curl_with(&url, ua, &[]).0.status, 401);
    let (again, _) = curl_with(&url, ua, &["--digest", "--user", &format!("{user}:{password}")]);
    assert_eq!((again.status, again.body), (200, first.body));
}

/// Grandstream files carry the config server's HTTP user name and password (`P1360`/`P1361`):
/// a new device gets generated credentials in its first file and authenticates with them.
#[test]
fn grandstream_devices_get_generated_credentials_too() {
    let s = TestServer::start_closed();
    let mac = "c074ad2bd859";
    let ua = "Grandstream Model HW GXP1628 SW 1.0.4.138 DevId c074ad2bd859";
    s.ok(&["device", "add", mac, "--vendor", "grandstream", "--model", "GXP1628", "--set", "line.1.username=3001"]);
    assert!(s.ok(&["device", "show", mac]).contains("credentials generated at its first fetch"));
    let url = format!("http://{}/cfg{mac}.xml", s.http);
    let (first, _) = curl_with(&url, ua, &[]);
    assert_eq!(first.status, 200, "{}", s.log());
    let text = first.text();
    let value = |p: &str| {
        let open = format!("<{p}>");
        let start = text.find(&open).unwrap_or_else(|| panic!("no {p} in {text}")) + open.len();
        text[start..].split('<').next().unwrap_or_default().to_string()
    };
    let (user, password) = (value("P1360"), value("P1361"));
    assert_eq!(user, format!("sipprov-{mac}"));
    assert_eq!(password.len(), 24, "{text}");
    assert_eq!(curl_with(&url, ua, &[]).0.status, 401, "the window closed at the first fetch");
    let (again, _) = curl_with(&url, ua, &["--digest", "--user", &format!("{user}:{password}")]);
    assert_eq!((again.status, again.body), (200, first.body), "{}", s.log());
}

/// Snom phones take their HTTP client credentials from `http_client_user`/`http_client_pass`,
/// the password at most 20 characters long (Snom's limit).
#[test]
fn snom_devices_get_generated_credentials_too() {
    let s = TestServer::start_closed();
    let mac = "000413922d24";
    let ua = "Mozilla/4.0 (compatible; snomD785-SIP 10.1.33.33 2010.12-00004-g9ba52f5 000413922D24 SXM:0 UXM:0)";
    s.ok(&["device", "add", mac, "--vendor", "snom", "--model", "D785", "--set", "line.1.username=4001"]);
    let url = format!("http://{}/000413922D24.xml", s.http);
    let (first, _) = curl_with(&url, ua, &[]);
    assert_eq!(first.status, 200, "{}", s.log());
    let text = first.text();
    let value = |name: &str| {
        let open = format!(r#"<{name} perm="R">"#);
        let start = text.find(&open).unwrap_or_else(|| panic!("no {name} in {text}")) + open.len();
        text[start..].split('<').next().unwrap_or_default().to_string()
    };
    let (user, password) = (value("http_client_user"), value("http_client_pass"));
    assert_eq!(user, format!("sipprov-{mac}"));
    assert_eq!(password.len(), 20, "{text}");
    assert_eq!(curl_with(&url, ua, &[]).0.status, 401);
    let (again, _) = curl_with(&url, ua, &["--digest", "--user", &format!("{user}:{password}")]);
    assert_eq!((again.status, again.body), (200, first.body), "{}", s.log());
}

/// Cisco phones take HTTP credentials only inside `Profile_Rule` (`[--uid u --pwd p]URL`), so
/// none are generated for them; the ones an operator sets reach the file and authenticate.
#[test]
fn cisco_profile_rule_carries_the_credentials_set() {
    let s = TestServer::start_closed();
    let mac = "00562b043615";
    let ua = "Cisco-CP-8851-3PCC/12.0.1 (00562b043615)";
    let rule = format!("provisioning.url=http://{}/", s.http);
    s.ok(&["device", "add", mac, "--vendor", "cisco", "--model", "CP-8851-3PCC", "--set", &rule]);
    assert!(!s.ok(&["device", "show", mac]).contains("credentials generated at its first fetch"));
    s.ok(&["device", "set", mac, "http.username=cp-8851", "http.password=Pr0v-Secret-2"]);
    let url = format!("http://{}/{mac}.xml", s.http);
    let (first, _) = curl_with(&url, ua, &[]);
    assert_eq!(first.status, 200, "{}", s.log());
    let want = format!("<Profile_Rule>[--uid cp-8851 --pwd Pr0v-Secret-2]http://{}/$MA.xml</Profile_Rule>", s.http);
    assert!(first.text().contains(&want), "{}", first.text());
    assert_eq!(curl_with(&url, ua, &[]).0.status, 401);
    let (again, _) = curl_with(&url, ua, &["--digest", "--user", "cp-8851:Pr0v-Secret-2"]);
    assert_eq!((again.status, again.body), (200, first.body), "{}", s.log());
    // Credentials the rule's options could not carry are refused when set.
    let refused = s.fails(&["device", "set", mac, "http.password=two words"]);
    assert!(refused.contains("Profile_Rule"), "{refused}");
}

#[test]
fn open_groups_serve_freely_and_lockouts_are_announced() {
    let mut s = TestServer::start_closed();
    s.ok(&["group", "set", "lab", "security.open_device_files=1"]);
    s.ok(&["device", "add", MAC, "--vendor", "yealink", "--model", "T46S", "--group", "lab"]);
    s.ok(&["device", "add", GIGASET_MAC, "--vendor", "gigaset", "--model", "N870"]);
    // In the open group but closed by its own setting: start-up must read the device's level,
    // not only its group's.
    s.ok(&["device", "add", CLOSED_IN_OPEN_GROUP, "--vendor", "yealink", "--model", "T46S", "--group", "lab"]);
    s.ok(&["device", "set", CLOSED_IN_OPEN_GROUP, "security.open_device_files=0"]);
    let added = s.log();
    let warning = added.lines().find(|l| l.contains("added devices without HTTP credentials")).unwrap_or_default();
    assert!(warning.contains(GIGASET_MAC) && !warning.contains(MAC), "warned when added: {added}");
    let url = format!("http://{}/{MAC}.cfg", s.http);
    for _ in 0..3 {
        assert_eq!(curl_with(&url, UA, &[]).0.status, 200, "an open group serves every time");
    }
    let log = s.ok(&["device", "log", MAC, "--json"]);
    assert_eq!(fetches_accepted_by(&log, "open"), 3, "{log}");
    assert!(accepted_by(&log).iter().all(|how| how == "open"), "{log}");
    // The Gigaset's file cannot carry credentials: once fetched, it is refused, and says why.
    let gigaset_ua = format!("Gigaset N870 IP PRO/83.V2.11.0+build.a546b91;{}", GIGASET_MAC.to_uppercase());
    let gigaset = format!("http://{}/provisioning.xml", s.http);
    assert_eq!(curl_with(&gigaset, &gigaset_ua, &[]).0.status, 200);
    assert_eq!(curl_with(&gigaset, &gigaset_ua, &[]).0.status, 401);
    let log = s.ok(&["device", "log", GIGASET_MAC, "--json"]);
    assert!(log.contains("no HTTP credentials and its first-fetch window is closed"), "{log}");
    assert!(s.ok(&["device", "show", GIGASET_MAC]).contains("no credentials: after its first fetch"));
    assert!(s.ok(&["device", "show", MAC]).contains("open to anyone"));
    s.stop();
    s.spawn(&[]);
    // The posture is logged beside the start-up, not before listening: its last line comes
    // shortly after (the first start logged none of these, its inventory was empty).
    let locked_line = "whose first-fetch window is closed";
    assert!(common::eventually(Duration::from_secs(10), || s.log().contains(locked_line)), "{}", s.log());
    let log = s.log();
    let line = |needle: &str| log.lines().rev().find(|l| l.contains(needle)).unwrap_or_default().to_string();
    let open = line("open to anyone");
    assert!(open.contains("lab") && open.contains(MAC), "start-up names the open group: {log}");
    assert!(open.contains("devices=1") && !open.contains(CLOSED_IN_OPEN_GROUP), "{open}");
    let cannot = line("cannot give them any");
    assert!(cannot.contains("gigaset") && cannot.contains(GIGASET_MAC), "{log}");
    assert!(line("first-fetch window is closed").contains(GIGASET_MAC), "{log}");
}

#[test]
fn first_fetch_window_times_out_and_unlock_reopens_it() {
    let mut s = TestServer::start_closed_with_config("[security]\nfirst_fetch_window_secs = 5\n");
    let password = format!("http.password={HTTP_PASSWORD}");
    let sip = format!("line.1.password={SIP_PASSWORD}");
    s.ok(&["device", "add", MAC, "--vendor", "yealink", "--model", "T46S", "--set", "http.username=phone1"]);
    s.ok(&["device", "set", MAC, &password, &sip]);
    let url = format!("http://{}/{MAC}.cfg", s.http);
    assert_eq!(curl_with(&url, UA, &["-I"]).0.status, 401, "a HEAD does not use the window");
    // Unused, the window closes when its time is up.
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(curl_with(&url, UA, &[]).0.status, 401);
    assert_eq!(curl_with(&url, UA, &["--digest", "--user", &format!("phone1:{HTTP_PASSWORD}")]).0.status, 200);
    let out = s.ok(&["device", "unlock", MAC]);
    assert!(out.contains("window open"), "{out}");
    assert!(s.ok(&["device", "log", MAC]).contains("unlocked"));
    // A restart keeps the window the operator opened.
    s.stop();
    let config = s.data_dir().join("sipprov.toml");
    s.spawn(&["--config", config.to_str().unwrap()]);
    let url = format!("http://{}/{MAC}.cfg", s.http);
    let (first, _) = curl_with(&url, UA, &[]);
    assert_eq!(first.status, 200, "the unlock was lost in the restart: {}", s.log());
    assert!(first.text().contains("static.auto_provision.server.username = phone1"));
    assert_eq!(curl_with(&url, UA, &[]).0.status, 401, "and it closes at that fetch");
    assert!(accepted_by(&s.ok(&["device", "log", MAC, "--json"])).contains(&"first-fetch-window".to_string()));
    for text in [s.log(), s.ok(&["device", "show", MAC, "--json"]), s.ok(&["device", "log", MAC, "--json"])] {
        assert!(!text.contains(HTTP_PASSWORD) && !text.contains(SIP_PASSWORD), "a password leaked:\n{text}");
    }
}
