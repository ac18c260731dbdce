//! Policy decisions, without a network.

use super::*;

fn device(mac: &str, created_at: i64) -> DeviceRecord {
    DeviceRecord {
        mac: mac.parse().unwrap(),
        vendor: "yealink".into(),
        model: "T46S".into(),
        group: None,
        contact: None,
        settings: Settings::new(),
        created_at,
        updated_at: created_at,
        last_fetch: None,
    }
}

fn facts<'a>(authorization: Option<&'a str>, tls: bool, cert_macs: Option<&'a [Mac]>) -> RequestFacts<'a> {
    RequestFacts { method: "GET", uri: "/001565aabbcc.cfg", authorization, tls, cert_macs, ip: [10, 0, 0, 1].into() }
}

fn settings(items: &[&str]) -> Settings {
    Settings::parse_assignments(items.iter().copied()).unwrap()
}

#[test]
fn credentials_default_to_digest_and_basic_needs_tls() {
    let sec = Security::new(&SecurityConfig::default());
    let d = device("001565aabbcc", 0);
    let s = settings(&["http.username=u", "http.password=p"]);
    match sec.decide(&d, &Policy::from_settings(&s), &facts(None, false, None), 1) {
        Decision::Challenge { headers, failure: None } => {
            assert!(headers[0].contains("SHA-256") && headers[1].contains("MD5"), "{headers:?}");
        }
        other => panic!("{other:?}"),
    }
    let basic = settings(&["http.auth=basic", "http.username=u", "http.password=p"]);
    assert!(matches!(
        sec.decide(&d, &Policy::from_settings(&basic), &facts(None, false, None), 1),
        Decision::Refuse { failure: false, .. }
    ));
    let good = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("u:p"));
    assert_eq!(
        sec.decide(&d, &Policy::from_settings(&basic), &facts(Some(&good), true, None), 1),
        Decision::Allow("basic")
    );
    let bad = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("u:x"));
    assert!(matches!(
        sec.decide(&d, &Policy::from_settings(&basic), &facts(Some(&bad), true, None), 1),
        Decision::Challenge { failure: Some(_), .. }
    ));
    let missing = settings(&["http.auth=digest"]);
    assert!(matches!(
        sec.decide(&d, &Policy::from_settings(&missing), &facts(None, true, None), 1),
        Decision::Refuse { .. }
    ));
}

#[test]
fn certificates_allow_lists_and_the_first_fetch_window() {
    let cfg = SecurityConfig { first_fetch_window_secs: 60, ..SecurityConfig::default() };
    let sec = Security::new(&cfg);
    let d = device("001565aabbcc", 1_000);
    let s = settings(&["http.username=u", "http.password=p", "http.allow_from=10.0.0.0/8"]);
    let own = [d.mac];
    let other: [Mac; 1] = ["001565000001".parse().unwrap()];
    assert_eq!(
        sec.decide(&d, &Policy::from_settings(&s), &facts(None, true, Some(&own)), 2_000),
        Decision::Allow("client-certificate")
    );
    assert!(matches!(
        sec.decide(&d, &Policy::from_settings(&s), &facts(None, true, Some(&other)), 2_000),
        Decision::Refuse { failure: true, .. }
    ));
    assert_eq!(
        sec.decide(&d, &Policy::from_settings(&s), &facts(None, false, None), 2_000),
        Decision::Allow("first-fetch-window")
    );
    assert!(matches!(
        sec.decide(&d, &Policy::from_settings(&s), &facts(None, false, None), 70_000),
        Decision::Challenge { .. }
    ));
    sec.unlock(d.mac, 69_000);
    assert_eq!(
        sec.decide(&d, &Policy::from_settings(&s), &facts(None, false, None), 70_000),
        Decision::Allow("first-fetch-window")
    );
    let mut outside = facts(None, false, None);
    outside.ip = [192, 0, 2, 1].into();
    assert!(matches!(
        sec.decide(&d, &Policy::from_settings(&s), &outside, 2_000),
        Decision::Refuse { failure: true, .. }
    ));
}

#[test]
fn policies_are_cached_per_generation() {
    let sec = Security::new(&SecurityConfig::default());
    let mac: Mac = "001565aabbcc".parse().unwrap();
    let mut merges = 0;
    let mut merged = |items: &[&str]| {
        merges += 1;
        settings(items)
    };
    let p = sec.policy(mac, 1, || merged(&["http.username=u", "http.password=p"]));
    assert!(matches!(p.scheme, Scheme::Digest(_)));
    let p = sec.policy(mac, 1, || merged(&[]));
    assert!(matches!(p.scheme, Scheme::Digest(_)), "same generation: cached");
    let p = sec.policy(mac, 2, || merged(&["http.auth=none"]));
    assert!(matches!(p.scheme, Scheme::None), "a new generation recomputes");
    let _ = sec.policy(mac, 1, || merged(&[]));
    assert!(
        matches!(sec.policy(mac, 2, || merged(&["http.auth=basic"])).scheme, Scheme::None),
        "old readers do not wipe"
    );
    assert_eq!(merges, 3, "the stale reader computed its own without storing it");
}

#[test]
fn a_policy_debug_shows_no_password() {
    let policy = Policy::from_settings(&settings(&["http.username=phone1", "http.password=P0licy-Secret"]));
    let shown = format!("{policy:?} {policy:#?}");
    assert!(!shown.contains("P0licy-Secret") && shown.contains("phone1"), "{shown}");
}
