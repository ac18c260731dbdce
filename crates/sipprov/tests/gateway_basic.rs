//! AudioCodes MP-11x (MP-11x & MP-124 User's Manual LTRT-65432 §33.2.4 "Access Authentication with
//! HTTP Server"): HTTP Basic as the gateway does it, with the credentials in the
//! URL its file names (`IniFileURL = 'http://user:password@host/<MAC>.ini'`), fetched by curl
//! exactly as written there.

mod common;

use common::{curl, curl_with, TestServer};

const MAC: &str = "00908F1DD0D3";
const UA: &str = "Mozilla/4.0 (compatible; AudioCodes; MP-118;6.60.A.332.003;00908F1DD0D3;)";

/// The `IniFileURL` of a rendered gateway file, `<MAC>` expanded as the gateway does.
fn ini_file_url(ini: &str) -> String {
    let line = ini.lines().find(|l| l.starts_with("IniFileURL = ")).unwrap_or_else(|| panic!("no IniFileURL:\n{ini}"));
    line["IniFileURL = ".len()..].trim_matches('\'').replace("<MAC>", MAC)
}

/// The gateway's next fetch uses the credentials its first file gave it: here the ones the
/// server generated at that first fetch (the device has none of its own), percent-encoded in
/// `IniFileURL`. Over plain HTTP only because `http.allow_basic_plain = 1` says so.
#[test]
fn the_gateway_fetches_again_with_the_basic_credentials_of_its_file() {
    let s = TestServer::start_closed();
    s.ok(&["device", "add", MAC, "--vendor", "audiocodes", "--model", "MP-118"]);
    let base = format!("http://{}/", s.http);
    s.ok(&["settings", "set", &format!("provisioning.url={base}"), "http.auth=basic", "http.allow_basic_plain=1"]);
    let first = curl(&format!("{base}{MAC}.ini"), UA, &[]);
    assert_eq!(first.status, 200, "the first fetch is served without credentials: {}", s.log());
    let url = ini_file_url(&first.text());
    let (userinfo, _) = url["http://".len()..].split_once('@').unwrap_or_else(|| panic!("no credentials in {url}"));
    let (user, password) = userinfo.split_once(':').unwrap();
    assert!(!user.is_empty() && password.len() >= 16, "{userinfo}");

    // Without them the next fetch is challenged; with the URL from the file it is served.
    assert_eq!(curl(&format!("{base}{MAC}.ini"), UA, &[]).status, 401);
    let (next, trace) = curl_with(&url, UA, &[]);
    assert!(trace.contains("Authorization: Basic"), "curl sent Basic from the URL: {trace}");
    assert_eq!(next.status, 200, "{}", s.log());
    assert_eq!(ini_file_url(&next.text()), url, "the file keeps handing out the same URL");
    // A wrong password in the URL is refused.
    let wrong = url.replacen(&format!(":{password}@"), ":wrong@", 1);
    assert_eq!(curl(&wrong, UA, &[]).status, 401);
    assert!(!s.log().contains(password), "the password never reaches the log");
}
