//! The wire format of the admin API, pinned: each type serializes to exactly this JSON and
//! reads back to the same value. A field renamed, retyped or dropped in the contract fails here
//! (and, since server and CLI share the types, nowhere else silently).

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};
use sipprov_api::*;

/// `value` serializes to `wire`, and `wire` deserializes to `value`.
fn pinned<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(value: &T, wire: Value) {
    assert_eq!(serde_json::to_value(value).unwrap(), wire, "serialized form of {value:?}");
    let back: T = serde_json::from_value(wire).unwrap();
    assert_eq!(&back, value, "read back");
}

fn mac() -> Mac {
    "00:15:65:aa:bb:cc".parse().unwrap()
}

fn settings(pairs: &[(&str, &str)]) -> Settings {
    let mut s = Settings::new();
    for (k, v) in pairs {
        s.set(k, v).unwrap();
    }
    s
}

fn outcome() -> NotifyOutcome {
    NotifyOutcome {
        result: CheckSyncResult::Ok,
        status: Some(200),
        reason: "OK".into(),
        sent_to: Some("udp:127.0.0.1:5062".into()),
        event: "check-sync;reboot=false".into(),
        campaign: None,
    }
}

#[test]
fn a_device_view() {
    let device = Device {
        mac: mac(),
        vendor: "yealink".into(),
        model: "T46S".into(),
        group: Some("sales".into()),
        contact: None,
        settings: settings(&[("line.1.username", "1001")]),
        created_at: 1,
        updated_at: 2,
        last_fetch: Some(LastFetch {
            mac: mac(),
            at: 3,
            ip: "127.0.0.1".into(),
            file: "001565aabbcc.cfg".into(),
            hash: "ab".into(),
            reported_model: Some("T46S".into()),
            reported_firmware: None,
        }),
        files: vec!["001565aabbcc.cfg".into()],
        access: Access { device_files: "generated credentials".into(), first_fetch_window_until: Some(4) },
        last_notify: Some(LastNotify { at: 5, outcome: outcome() }),
        firmware: Some(FirmwareStatus {
            target: "66.86.0.160".into(),
            image: Some("T46S-66.86.0.160.rom".into()),
            state: FirmwareState::Offered,
        }),
    };
    pinned(
        &device,
        json!({
            "mac": "001565aabbcc", "vendor": "yealink", "model": "T46S", "group": "sales", "contact": null,
            "settings": {"line.1.username": "1001"}, "created_at": 1, "updated_at": 2,
            "last_fetch": {"mac": "001565aabbcc", "at": 3, "ip": "127.0.0.1", "file": "001565aabbcc.cfg",
                "hash": "ab", "reported_model": "T46S", "reported_firmware": null},
            "files": ["001565aabbcc.cfg"],
            "access": {"device_files": "generated credentials", "first_fetch_window_until": 4},
            "last_notify": {"at": 5, "outcome": {"result": "ok", "status": 200, "reason": "OK",
                "sent_to": "udp:127.0.0.1:5062", "event": "check-sync;reboot=false"}},
            "firmware": {"target": "66.86.0.160", "image": "T46S-66.86.0.160.rom", "state": "offered"},
        }),
    );
    // A listing has no last_notify member at all, and a device with no target no firmware.
    let listed = Device { last_notify: None, firmware: None, ..device };
    let wire = serde_json::to_value(&listed).unwrap();
    assert!(wire.get("last_notify").is_none() && wire.get("firmware").is_none());
}

#[test]
fn a_device_missing_a_field_is_an_error_naming_it() {
    let mut wire = serde_json::to_value(Device {
        mac: mac(),
        vendor: "snom".into(),
        model: "D345".into(),
        group: None,
        contact: None,
        settings: Settings::new(),
        created_at: 0,
        updated_at: 0,
        last_fetch: None,
        files: vec![],
        access: Access { device_files: "x".into(), first_fetch_window_until: None },
        last_notify: None,
        firmware: None,
    })
    .unwrap();
    let vendor = wire.as_object_mut().unwrap().remove("vendor").unwrap();
    wire["vendour"] = vendor;
    let err = serde_json::from_value::<Device>(wire).unwrap_err().to_string();
    assert!(err.contains("missing field `vendor`"), "{err}");
}

#[test]
fn requests() {
    let mut add = AddDevice::new("001565aabbcc", "yealink", "T46S");
    add.group = Some("sales".into());
    add.settings = settings(&[("line.1.port", "5060")]);
    pinned(
        &add,
        json!({"mac": "001565aabbcc", "vendor": "yealink", "model": "T46S", "group": "sales", "contact": null,
            "settings": {"line.1.port": "5060"}}),
    );
    // Only what is to change is sent; "" clears.
    let patch = PatchDevice { group: Some(String::new()), ..PatchDevice::default() };
    pinned(&patch, json!({"group": ""}));
    pinned(&NotifyRequest { reboot: true }, json!({"reboot": true}));
    let campaign = CreateCampaign { macs: vec!["001565aabbcc".into()], rate: Some(5), ..CreateCampaign::default() };
    pinned(
        &campaign,
        json!({"macs": ["001565aabbcc"], "group": null, "all": false, "changed": false, "reboot": false,
            "rate": 5, "max_in_flight": null, "start_at": null, "confirm_window_seconds": null}),
    );
    // Request bodies refuse what they do not know.
    for (what, body) in [
        ("add", json!({"mac": "x", "vendor": "y", "model": "z", "colour": "red"})),
        ("patch", json!({"colour": "red"})),
        ("notify", json!({"reboot": true, "now": true})),
        ("campaign", json!({"all": true, "speed": 5})),
    ] {
        let refused = match what {
            "add" => serde_json::from_value::<AddDevice>(body).is_err(),
            "patch" => serde_json::from_value::<PatchDevice>(body).is_err(),
            "notify" => serde_json::from_value::<NotifyRequest>(body).is_err(),
            _ => serde_json::from_value::<CreateCampaign>(body).is_err(),
        };
        assert!(refused, "{what} accepted an unknown member");
    }
}

#[test]
fn small_answers() {
    pinned(
        &Unlocked { mac: mac(), window_secs: 86_400, open_until: 9 },
        json!({"mac": "001565aabbcc", "window_secs": 86400, "open_until": 9}),
    );
    pinned(&Imported { imported: 3 }, json!({"imported": 3}));
    pinned(
        &Upload { name: "001565aabbcc-local.cfg".into(), received_at: 1, size: 2, sha256: "ff".into() },
        json!({"name": "001565aabbcc-local.cfg", "received_at": 1, "size": 2, "sha256": "ff"}),
    );
    pinned(
        &DeviceEvent { id: 7, mac: mac(), at: 1, kind: EventKind::Unlocked, detail: json!({"window_secs": 60}) },
        json!({"id": 7, "mac": "001565aabbcc", "at": 1, "kind": "unlocked", "detail": {"window_secs": 60}}),
    );
    pinned(
        &outcome(),
        json!({"result": "ok", "status": 200, "reason": "OK", "sent_to": "udp:127.0.0.1:5062",
            "event": "check-sync;reboot=false"}),
    );
    pinned(
        &NotifyOutcome { campaign: Some(2), ..outcome() },
        json!({"result": "ok", "status": 200, "reason": "OK", "sent_to": "udp:127.0.0.1:5062",
            "event": "check-sync;reboot=false", "campaign": 2}),
    );
}

#[test]
fn groups_and_vendors() {
    let s = settings(&[("time.zone", "UTC")]);
    pinned(
        &GroupSummary { name: "sales".into(), settings: s.clone(), updated_at: 1 },
        json!({"name": "sales", "settings": {"time.zone": "UTC"}, "updated_at": 1}),
    );
    pinned(
        &Group { name: "sales".into(), settings: s.clone(), devices: 2, updated_at: 1 },
        json!({"name": "sales", "settings": {"time.zone": "UTC"}, "devices": 2, "updated_at": 1}),
    );
    pinned(
        &GroupChanged { name: "sales".into(), settings: s },
        json!({"name": "sales", "settings": {"time.zone": "UTC"}}),
    );
    pinned(
        &VendorInfo { id: "snom".into(), name: "Snom".into(), models: vec!["D345".into()] },
        json!({"id": "snom", "name": "Snom", "models": ["D345"]}),
    );
}

#[test]
fn a_campaign_report() {
    let campaign = Campaign {
        id: 1,
        created_at: 10,
        start_at: 10,
        state: CampaignState::Done,
        reboot: false,
        rate: 20,
        max_in_flight: 50,
        confirm_window_ms: 300_000,
        selector: "group sales".into(),
        finished_at: Some(20),
        devices: 2,
        counts: BTreeMap::from([(CampaignOutcome::Confirmed, 1), (CampaignOutcome::Timeout, 1)]),
        last_notified_at: Some(15),
        last_outcome_at: Some(16),
        failing: vec![FailingDevice {
            mac: mac(),
            outcome: CampaignOutcome::Timeout,
            status: None,
            reason: Some("no answer".into()),
            attempts: 1,
        }],
    };
    pinned(
        &campaign,
        json!({"id": 1, "created_at": 10, "start_at": 10, "state": "done", "reboot": false, "rate": 20,
            "max_in_flight": 50, "confirm_window_ms": 300000, "selector": "group sales", "finished_at": 20,
            "devices": 2, "counts": {"confirmed": 1, "timeout": 1}, "last_notified_at": 15,
            "last_outcome_at": 16,
            "failing": [{"mac": "001565aabbcc", "outcome": "timeout", "status": null, "reason": "no answer",
                "attempts": 1}]}),
    );
    assert!(campaign.is_finished());
    assert_eq!(campaign.settled(), 2);
    // A report from a server that did not keep the last outcome's time reads as none.
    let mut older = serde_json::to_value(&campaign).unwrap();
    older.as_object_mut().unwrap().remove("last_outcome_at");
    let older: Campaign = serde_json::from_value(older).unwrap();
    assert_eq!(older.last_outcome_at, None);
}

#[test]
fn a_problem_document() {
    let p = Problem::new(400, "setting \"line.1.port\" has an invalid value").with_field("line.1.port");
    pinned(
        &p,
        json!({"type": "about:blank", "title": "Bad Request", "status": 400,
            "detail": "setting \"line.1.port\" has an invalid value", "field": "line.1.port"}),
    );
    // RFC 9457 §3.1.1: an absent type means about:blank; the members besides status are optional.
    let minimal: Problem = serde_json::from_value(json!({"status": 404})).unwrap();
    assert_eq!(minimal.problem_type, "about:blank");
    assert_eq!(minimal.field, None);
    // Not a problem document: the CLI falls back to the status and the text.
    assert!(serde_json::from_value::<Problem>(json!({"error": "old style"})).is_err());
}

/// Each event kind's detail is the JSON object the history has always held, under its kind.
#[test]
fn event_details() {
    fn kind<D: EventDetail>(_: &D) -> EventKind {
        D::KIND
    }
    let fetch = FetchDetail {
        file: "001565aabbcc.cfg".into(),
        ip: "192.0.2.1".into(),
        hash: "ab".into(),
        status: 200,
        count: 1,
        last_at: None,
        auth: "none".into(),
        model: Some("T46S".into()),
        firmware: None,
    };
    pinned(
        &fetch,
        json!({"file": "001565aabbcc.cfg", "ip": "192.0.2.1", "hash": "ab", "status": 200, "count": 1,
               "auth": "none", "model": "T46S", "firmware": null}),
    );
    // Repeats within one write interval: the count, and the last one's time.
    let repeated = FetchDetail { count: 3, last_at: Some(1_700_000_000_500), ..fetch.clone() };
    pinned(
        &repeated,
        json!({"file": "001565aabbcc.cfg", "ip": "192.0.2.1", "hash": "ab", "status": 200, "count": 3,
               "last_at": 1_700_000_000_500_i64, "auth": "none", "model": "T46S", "firmware": null}),
    );
    assert_eq!(kind(&fetch), EventKind::Fetch);
    let refused = RefusedDetail { file: "x.cfg".into(), ip: "192.0.2.1".into(), reason: "no credentials".into() };
    pinned(&refused, json!({"file": "x.cfg", "ip": "192.0.2.1", "reason": "no credentials"}));
    assert_eq!(kind(&refused), EventKind::Refused);
    assert_eq!(kind(&outcome()), EventKind::Notify);
    pinned(&ConfirmedDetail { campaign: 3 }, json!({"campaign": 3}));
    pinned(&UnlockedDetail { window_secs: 60, open_until: 9 }, json!({"window_secs": 60, "open_until": 9}));
    pinned(
        &UploadDetail { file: "a.log".into(), size: 5, sha256: "ff".into() },
        json!({"file": "a.log", "size": 5, "sha256": "ff"}),
    );
    let upload_refused = UploadRefusedDetail { file: "a.log".into(), reason: "too large".into() };
    pinned(&upload_refused, json!({"file": "a.log", "reason": "too large"}));
    assert_eq!(kind(&upload_refused), EventKind::UploadRefused);
    let download = DownloadDetail {
        file: "fw.rom".into(),
        ip: "192.0.2.1".into(),
        sha256: "ab".into(),
        status: 206,
        first: 100,
        bytes: 900,
        complete: true,
        auth: "none".into(),
        firmware: Some("66.86.0.15".into()),
    };
    pinned(
        &download,
        json!({"file": "fw.rom", "ip": "192.0.2.1", "sha256": "ab", "status": 206, "first": 100, "bytes": 900,
               "complete": true, "auth": "none", "firmware": "66.86.0.15"}),
    );
    assert_eq!(kind(&download), EventKind::Download);
    let pnp = |result| PnpDetail {
        source: "192.0.2.1:5060".into(),
        received_on: "224.0.1.75:5060".into(),
        vendor: Some("yealink".into()),
        model: None,
        firmware: None,
        profile_type: Some("device".into()),
        user_agent: None,
        result,
    };
    let described = |extra: Value| {
        let mut v = json!({"source": "192.0.2.1:5060", "received_on": "224.0.1.75:5060", "vendor": "yealink",
                           "model": null, "firmware": null, "profile_type": "device", "user_agent": null});
        v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        v
    };
    let answered = PnpResult::Answered {
        url: "http://192.0.2.9:8080/".into(),
        notify: PnpNotify::Response { status: 200, reason: "OK".into() },
        discovered: None,
    };
    pinned(
        &pnp(answered),
        described(json!({"result": "answered", "url": "http://192.0.2.9:8080/",
                         "notify": {"status": 200, "reason": "OK"}, "discovered": null})),
    );
    let timed_out = PnpResult::Answered {
        url: "u".into(),
        notify: PnpNotify::Failed { error: "timeout".into() },
        discovered: Some("added".into()),
    };
    pinned(
        &pnp(timed_out),
        described(json!({"result": "answered", "url": "u", "notify": {"error": "timeout"}, "discovered": "added"})),
    );
    let refused = pnp(PnpResult::Refused { reason: "not allowed".into() });
    pinned(&refused, described(json!({"result": "refused", "reason": "not allowed"})));
    assert_eq!(kind(&refused), EventKind::Pnp);
}

#[test]
fn a_rollout_and_its_history_events() {
    let create = CreateRollout {
        group: "sales".into(),
        version: "66.86.0.160".into(),
        canary: Some(10),
        ..CreateRollout::default()
    };
    pinned(
        &create,
        json!({"group": "sales", "version": "66.86.0.160", "canary": 10, "wave_percent": null,
               "window_seconds": null, "halt_percent": null}),
    );
    let rollout = Rollout {
        id: 4,
        group: "sales".into(),
        version: "66.86.0.160".into(),
        previous_version: Some("66.86.0.15".into()),
        state: RolloutState::Halted,
        reason: Some("1 of 2 decided devices failed by wave 0 (more than 5%)".into()),
        wave: 0,
        waves: 3,
        canary: 2,
        wave_percent: 50,
        window_ms: 1_800_000,
        halt_percent: 5,
        created_at: 1,
        created_by: "admin".into(),
        finished_at: None,
        counts: BTreeMap::from([(RolloutDeviceState::Failed, 1), (RolloutDeviceState::Succeeded, 1)]),
        devices: vec![RolloutDeviceView {
            mac: mac(),
            wave: 0,
            state: RolloutDeviceState::Failed,
            from_version: Some("66.86.0.15".into()),
            reason: Some("did not fetch within its window".into()),
            started_at: Some(2),
            decided_at: Some(3),
        }],
    };
    pinned(
        &rollout,
        json!({"id": 4, "group": "sales", "version": "66.86.0.160", "previous_version": "66.86.0.15",
               "state": "halted", "reason": "1 of 2 decided devices failed by wave 0 (more than 5%)",
               "wave": 0, "waves": 3, "canary": 2, "wave_percent": 50, "window_ms": 1_800_000,
               "halt_percent": 5, "created_at": 1, "created_by": "admin", "finished_at": null,
               "counts": {"failed": 1, "succeeded": 1},
               "devices": [{"mac": "001565aabbcc", "wave": 0, "state": "failed", "from_version": "66.86.0.15",
                            "reason": "did not fetch within its window", "started_at": 2, "decided_at": 3}]}),
    );
    assert_eq!((rollout.total(), rollout.decided()), (2, 2));
    let pinned_detail = RolloutPinnedDetail { rollout: 4, version: "66.86.0.160".into(), wave: 1 };
    pinned(&pinned_detail, json!({"rollout": 4, "version": "66.86.0.160", "wave": 1}));
    assert_eq!(<RolloutPinnedDetail as EventDetail>::KIND.as_str(), "rollout-pinned");
    let failed = RolloutFailedDetail { rollout: 4, version: "66.86.0.160".into(), reported: None };
    pinned(&failed, json!({"rollout": 4, "version": "66.86.0.160", "reported": null}));
    assert_eq!(<RolloutSucceededDetail as EventDetail>::KIND.as_str(), "rollout-succeeded");
    assert_eq!(<RolloutSkippedDetail as EventDetail>::KIND.as_str(), "rollout-skipped");
    assert_eq!(<RolloutUnpinnedDetail as EventDetail>::KIND.as_str(), "rollout-unpinned");
}

#[test]
fn a_stored_file_and_an_upload_query() {
    let file = StoredFile {
        name: "T46S-66.86.0.160.rom".into(),
        kind: "firmware".into(),
        sha256: "ab".repeat(32),
        size: 31_457_280,
        vendor: Some("yealink".into()),
        models: vec!["T46S".into(), "T48S".into()],
        version: Some("66.86.0.160".into()),
        access: "open".into(),
        added_at: 1_764_943_200_000,
        added_by: "alice".into(),
    };
    pinned(
        &file,
        json!({"name": "T46S-66.86.0.160.rom", "kind": "firmware", "sha256": "ab".repeat(32), "size": 31_457_280,
               "vendor": "yealink", "models": ["T46S", "T48S"], "version": "66.86.0.160", "access": "open",
               "added_at": 1_764_943_200_000i64, "added_by": "alice"}),
    );
    let query = UploadQuery { name: "ring.wav".into(), kind: Some("ringtone".into()), ..Default::default() };
    pinned(&query, json!({"name": "ring.wav", "kind": "ringtone"}));
    let unknown = serde_json::from_value::<UploadQuery>(json!({"name": "a", "model": "T46S"}));
    assert!(unknown.unwrap_err().to_string().contains("model"), "a misspelt parameter is refused");
}

#[test]
fn directories() {
    use sipprov_api::{Directory, DirectoryContact, DirectorySummary, PutDirectory};
    let ann = DirectoryContact { name: "Ann & Co".into(), office: Some("1001".into()), mobile: None, other: None };
    pinned(
        &PutDirectory { contacts: vec![ann.clone()] },
        serde_json::json!({ "contacts": [{ "name": "Ann & Co", "office": "1001" }] }),
    );
    pinned(
        &Directory { name: "staff".into(), contacts: vec![ann], created_at: 1, updated_at: 2 },
        serde_json::json!({ "name": "staff", "contacts": [{ "name": "Ann & Co", "office": "1001" }], "created_at": 1, "updated_at": 2 }),
    );
    pinned(
        &DirectorySummary { name: "staff".into(), contacts: 1, created_at: 1, updated_at: 2 },
        serde_json::json!({ "name": "staff", "contacts": 1, "created_at": 1, "updated_at": 2 }),
    );
    let typo =
        serde_json::from_value::<PutDirectory>(serde_json::json!({ "contacts": [{ "name": "A", "ofice": "1" }] }));
    assert!(typo.unwrap_err().to_string().contains("ofice"));
}

#[test]
fn a_notify_outcome_written_by_hand_is_the_text_serde_json_writes() {
    use sipprov_api::NotifyOutcome;
    use sipprov_model::CheckSyncResult;
    let odd = ["", "OK", "quote \" backslash \\ tab \t CR LF \r\n", "non-ASCII é 漢 \u{1}\u{1f}\u{7f}", "</script>"];
    for result in CheckSyncResult::ALL {
        for (i, text) in odd.iter().enumerate() {
            for status in [None, Some(0), Some(200), Some(u16::MAX)] {
                for campaign in [None, Some(0), Some(1), Some(-5), Some(i64::MAX), Some(i64::MIN)] {
                    let outcome = NotifyOutcome {
                        result: *result,
                        status,
                        reason: text.to_string(),
                        sent_to: (i % 2 == 0).then(|| format!("udp:{text}")),
                        event: odd[(i + 2) % odd.len()].to_string(),
                        campaign,
                    };
                    assert_eq!(outcome.to_json(), serde_json::to_string(&outcome).unwrap());
                }
            }
        }
    }
}
