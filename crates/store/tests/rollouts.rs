//! Firmware rollouts and pins against a real SQLite file (and PostgreSQL when
//! SIPPROV_TEST_POSTGRES_URL is set): creation with its events and audit entry, one unfinished
//! rollout per group, pins written, decided and cleared in the transactions that move the rows.

mod common;

use common::{device, stores};
use sipprov_model::{EventKind, Mac, RolloutDeviceState, RolloutState};
use sipprov_store::{NewAudit, NewEvent, NewRollout, NewRolloutDevice, StoreError};

fn new(group: &str) -> NewRollout {
    NewRollout {
        group: group.into(),
        version: "66.86.0.160".into(),
        previous_version: Some("66.86.0.15".into()),
        canary: 1,
        wave_percent: 50,
        window_ms: 60_000,
        halt_percent: 5,
        created_by: "admin".into(),
    }
}

fn row(mac: Mac, wave: i64, state: RolloutDeviceState) -> NewRolloutDevice {
    NewRolloutDevice { mac, wave, state, from_version: Some("66.86.0.15".into()), reason: None }
}

fn audit() -> NewAudit {
    NewAudit {
        actor: "admin".into(),
        action: "rollout.create".into(),
        target_kind: "rollout".into(),
        target: String::new(),
        detail: serde_json::json!({}),
    }
}

fn event(mac: Mac, kind: EventKind) -> NewEvent {
    NewEvent { mac, at: 1, kind, detail: serde_json::json!({ "rollout": 0 }) }
}

#[tokio::test]
async fn a_rollout_pins_decides_and_clears_in_its_transactions() {
    for (store, _dir) in stores().await {
        let (a, b, c): (Mac, Mac, Mac) =
            ("001565000001".parse().unwrap(), "001565000002".parse().unwrap(), "001565000003".parse().unwrap());
        let macs = ["001565000001", "001565000002", "001565000003"];
        store.insert_devices(&macs.map(|m| device(m, Some("sales")))).await.unwrap();
        let rows = [
            row(a, 0, RolloutDeviceState::Waiting),
            row(b, 1, RolloutDeviceState::Waiting),
            row(c, -1, RolloutDeviceState::Skipped),
        ];
        let r = store
            .create_rollout_audited(&new("sales"), &rows, &[event(c, EventKind::RolloutSkipped)], &audit())
            .await
            .unwrap();
        assert_eq!((r.id, r.state, r.wave), (1, RolloutState::Running, 0));
        // The creation event names the new rollout, and the audit entry targets it.
        let events = store.device_events(c, 10).await.unwrap();
        assert_eq!(events[0].detail["rollout"], 1);
        // A second unfinished rollout of the group is refused; another group's is not.
        let again = store.create_rollout_audited(&new("sales"), &rows[..1], &[], &audit()).await;
        assert!(matches!(again, Err(StoreError::Duplicate(ref why)) if why.contains("rollout 1")), "{again:?}");

        store.pin_rollout_devices(1, &[a], "66.86.0.160", RolloutDeviceState::Upgrading, 100, &[]).await.unwrap();
        store.mark_rollout_notified(1, &[a], 150).await.unwrap();
        let pins = store.firmware_pins().await.unwrap();
        assert_eq!((pins.len(), pins[0].mac, pins[0].rollout_id), (1, a, 1));
        let d = store.rollout_devices(1).await.unwrap();
        let first = d.iter().find(|d| d.mac == a).unwrap();
        assert_eq!(
            (first.state, first.started_at, first.notified_at),
            (RolloutDeviceState::Upgrading, Some(100), Some(150))
        );

        let decided = [(a, RolloutDeviceState::Failed, Some("late".to_string()))];
        store.decide_rollout_devices(1, &decided, &[], 200, &[]).await.unwrap();
        let d = store.rollout_devices(1).await.unwrap();
        assert_eq!(d.iter().find(|d| d.mac == a).unwrap().reason.as_deref(), Some("late"));

        store.set_rollout_state(1, RolloutState::Halted, Some("1 of 1"), 0, 0, None).await.unwrap();
        let cleared = store.clear_rollout_pins(1, |m| event(m, EventKind::RolloutUnpinned)).await.unwrap();
        assert_eq!(cleared, vec![a]);
        assert!(store.firmware_pins().await.unwrap().is_empty());
        store.set_rollout_state(1, RolloutState::Aborted, Some("aborted"), 0, 0, None).await.unwrap();
        let r = store.get_rollout(1).await.unwrap().unwrap();
        assert!(r.finished_at.is_some() && r.state == RolloutState::Aborted);
        // Finished: the group may have a new one.
        assert_eq!(store.create_rollout_audited(&new("sales"), &rows[..1], &[], &audit()).await.unwrap().id, 2);
    }
}
