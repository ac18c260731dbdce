//! Policy decisions, without a network.

use super::*;
use sipprov_model::Settings;

const MAC: &str = "001565aabbcc";

fn mac() -> Mac {
    MAC.parse().unwrap()
}

fn device(created_at: i64) -> DeviceRecord {
    DeviceRecord {
        mac: mac(),
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

fn policy(items: &[&str]) -> Policy {
    Policy::from_settings(&settings(items))
}

#[test]
fn credentials_default_to_digest_and_basic_needs_tls() {
    let sec = Security::new(&SecurityConfig::default());
    let p = policy(&["http.username=u", "http.password=p"]);
    match sec.decide(mac(), &p, &facts(None, false, None), None) {
        Decision::Challenge { headers, failure } => {
            assert!(headers[0].contains("SHA-256") && headers[1].contains("MD5"), "{headers:?}");
            assert!(failure.unauthenticated);
        }
        other => panic!("{other:?}"),
    }
    let basic = policy(&["http.auth=basic", "http.username=u", "http.password=p"]);
    assert!(matches!(sec.decide(mac(), &basic, &facts(None, false, None), None), Decision::Refuse(_)));
    let good = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("u:p"));
    assert_eq!(sec.decide(mac(), &basic, &facts(Some(&good), true, None), None), Decision::Allow("basic"));
    let bad = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("u:x"));
    assert!(matches!(
        sec.decide(mac(), &basic, &facts(Some(&bad), true, None), None),
        Decision::Challenge { failure: Failure { unauthenticated: false, .. }, .. }
    ));
}

#[test]
fn devices_without_credentials_are_closed_and_answer_like_the_rest() {
    let sec = Security::new(&SecurityConfig::default());
    for items in [&[][..], &["http.auth=digest"], &["http.auth=none", "http.username=u", "http.password=p"]] {
        let p = policy(items);
        assert!(p.is_locked(), "{items:?}");
        match sec.decide(mac(), &p, &facts(None, false, None), None) {
            Decision::Challenge { headers, .. } => assert!(headers[0].starts_with("Digest "), "{headers:?}"),
            other => panic!("{items:?}: {other:?}"),
        }
        // No password opens it, not even the empty one.
        let guess = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(":"));
        assert!(matches!(sec.decide(mac(), &p, &facts(Some(&guess), true, None), None), Decision::Challenge { .. }));
    }
    let open = policy(&["security.open_device_files=1"]);
    assert_eq!(sec.decide(mac(), &open, &facts(None, false, None), None), Decision::Allow("open"));
}

#[test]
fn unknown_macs_get_the_global_answer() {
    let sec = Security::new(&SecurityConfig::default());
    let none = settings(&[]);
    assert!(matches!(
        sec.unknown_device(&none, mac(), &facts(None, false, None)),
        Some(Decision::Challenge { failure: Failure { unauthenticated: true, .. }, .. })
    ));
    let own = [mac()];
    assert_eq!(sec.unknown_device(&none, mac(), &facts(None, true, Some(&own))), None, "its own certificate");
    let other: [Mac; 1] = ["001565000001".parse().unwrap()];
    assert!(matches!(sec.unknown_device(&none, mac(), &facts(None, true, Some(&other))), Some(Decision::Refuse(_))));
    assert_eq!(
        sec.unknown_device(&settings(&["security.open_device_files=1"]), mac(), &facts(None, false, None)),
        None
    );
}

#[test]
fn certificates_allow_lists_and_the_first_fetch_window() {
    let cfg = SecurityConfig { first_fetch_window_secs: 60, ..SecurityConfig::default() };
    let sec = Security::new(&cfg);
    let d = device(1_000);
    let p = policy(&["http.username=u", "http.password=p", "http.allow_from=10.0.0.0/8"]);
    let own = [d.mac];
    let other: [Mac; 1] = ["001565000001".parse().unwrap()];
    assert_eq!(sec.decide(d.mac, &p, &facts(None, true, Some(&own)), None), Decision::Allow("client-certificate"));
    assert!(matches!(sec.decide(d.mac, &p, &facts(None, true, Some(&other)), None), Decision::Refuse(_)));
    let window = sec.open_window(&d, 2_000);
    assert_eq!(window, Some(1_000));
    assert_eq!(sec.decide(d.mac, &p, &facts(None, false, None), window), Decision::FirstFetch { opened_at: 1_000 });
    let mut head = facts(None, false, None);
    head.method = "HEAD";
    assert!(matches!(sec.decide(d.mac, &p, &head, window), Decision::Challenge { .. }), "a HEAD does not use it");
    // Used: closed, though the time is not up.
    sec.windows.used(d.mac, 2_000);
    assert_eq!(sec.open_window(&d, 3_000), None);
    assert_eq!(sec.open_window(&device(1_000), 70_000), None);
    sec.unlock(d.mac, 69_000);
    assert_eq!(sec.open_window(&d, 70_000), Some(69_000), "an unlock re-opens it");
    let mut outside = facts(None, false, None);
    outside.ip = [192, 0, 2, 1].into();
    assert!(matches!(sec.decide(d.mac, &p, &outside, Some(69_000)), Decision::Refuse(_)));
}

#[test]
fn policies_are_cached_per_generation() {
    let sec = Security::new(&SecurityConfig::default());
    let mut merges = 0;
    let mut merged = |items: &[&str]| {
        merges += 1;
        settings(items)
    };
    let p = sec.policy(mac(), 1, || merged(&["http.username=u", "http.password=p"]));
    assert!(!p.is_locked());
    let p = sec.policy(mac(), 1, || merged(&[]));
    assert!(!p.is_locked(), "same generation: cached");
    let p = sec.policy(mac(), 2, || merged(&["http.auth=none"]));
    assert!(p.is_locked(), "a new generation recomputes");
    let _ = sec.policy(mac(), 1, || merged(&[]));
    assert!(sec.policy(mac(), 2, || merged(&["security.open_device_files=1"])).is_locked(), "old readers do not wipe");
    assert_eq!(merges, 3, "the stale reader computed its own without storing it");
}

#[test]
fn devices_with_equal_policies_share_one() {
    let sec = Security::new(&SecurityConfig::default());
    let other: Mac = "001565000099".parse().unwrap();
    let group = ["http.username=g", "http.password=same"];
    let a = sec.policy(mac(), 1, || settings(&group));
    let b = sec.policy(other, 1, || settings(&group));
    assert!(Arc::ptr_eq(&a, &b), "one value for equal policies");
    let own = sec.policy("001565000098".parse().unwrap(), 1, || settings(&["http.username=g", "http.password=own"]));
    assert!(!Arc::ptr_eq(&a, &own) && !own.is_locked(), "a device's own credentials are its own");
    // A new generation shares anew: nothing of the old one is handed out.
    let c = sec.policy(mac(), 2, || settings(&group));
    assert!(!Arc::ptr_eq(&a, &c));
    assert!(Arc::ptr_eq(&c, &sec.policy(other, 2, || settings(&group))));
}

#[test]
fn a_policy_debug_shows_no_password() {
    let policy = Policy::from_settings(&settings(&["http.username=phone1", "http.password=P0licy-Secret"]));
    let shown = format!("{policy:?} {policy:#?}");
    assert!(!shown.contains("P0licy-Secret") && shown.contains("phone1"), "{shown}");
}
