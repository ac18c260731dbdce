//! The audit trail and named tokens (migration 0013) on SQLite, and on PostgreSQL when
//! SIPPROV_TEST_POSTGRES_URL is set: an entry is written in the transaction of its change and
//! only then, filters and paging select what they say, and tokens keep their hash only.

mod common;

use common::{device, stores};
use sipprov_model::Settings;
use sipprov_store::{AuditQuery, NewAudit, StoreError, TokenRecord};

fn entry(actor: &str, action: &str, kind: &str, target: &str) -> NewAudit {
    NewAudit {
        actor: actor.into(),
        action: action.into(),
        target_kind: kind.into(),
        target: target.into(),
        detail: serde_json::json!({ "note": action }),
    }
}

fn all() -> AuditQuery {
    AuditQuery { limit: 1000, ..AuditQuery::default() }
}

#[tokio::test]
async fn an_entry_is_written_with_its_change_and_not_without_it() {
    for (store, _dir) in stores().await {
        let d = device("001565000001", None);
        store
            .insert_devices_audited(std::slice::from_ref(&d), &entry("ops", "device.add", "device", "001565000001"))
            .await
            .unwrap();
        // A refused change (duplicate MAC) leaves no entry.
        let again = store.insert_devices_audited(&[d], &entry("ops", "device.add", "device", "001565000001")).await;
        assert!(matches!(again, Err(StoreError::DuplicateDevice(_))));
        let patch = Settings::parse_assignments(["time.zone=UTC"]).unwrap();
        store
            .patch_global_settings_audited(&patch, &entry("admin", "settings.patch", "settings", "global"))
            .await
            .unwrap();
        let missing = "001565000002".parse().unwrap();
        assert!(store.delete_device_audited(missing, &entry("ops", "device.delete", "device", "x")).await.is_err());
        let trail = store.list_audit(&all()).await.unwrap();
        let actions: Vec<&str> = trail.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, ["settings.patch", "device.add"]);
        assert_eq!(trail[1].detail["note"], "device.add");
        assert!(trail[0].id > trail[1].id);
    }
}

#[tokio::test]
async fn filters_and_paging_select_what_they_say() {
    for (store, _dir) in stores().await {
        for i in 0..5 {
            let actor = if i % 2 == 0 { "ops" } else { "admin" };
            store.append_audit(&entry(actor, "device.notify", "device", &format!("00156500000{i}"))).await.unwrap();
        }
        let import = NewAudit {
            detail: serde_json::json!({ "count": 1, "macs": ["001565000009"] }),
            ..entry("ops", "device.import", "device", "import")
        };
        store.append_audit(&import).await.unwrap();
        let by_ops = store.list_audit(&AuditQuery { actor: Some("ops".into()), ..all() }).await.unwrap();
        assert_eq!(by_ops.len(), 4);
        let one = store.list_audit(&AuditQuery { target: Some("001565000003".into()), ..all() }).await.unwrap();
        assert_eq!((one.len(), one[0].actor.as_str()), (1, "admin"));
        let page = store.list_audit(&AuditQuery { before: Some(by_ops[0].id), limit: 2, ..all() }).await.unwrap();
        assert_eq!(page.len(), 2);
        assert!(page.iter().all(|e| e.id < by_ops[0].id));
        let device = Some("001565000009".parse().unwrap());
        let imported = store.list_audit(&AuditQuery { device, ..all() }).await.unwrap();
        assert_eq!(imported.len(), 1);
        assert_eq!(imported[0].action, "device.import");
        let future = store.list_audit(&AuditQuery { since: Some(sipprov_store::now_ms() + 60_000), ..all() }).await;
        assert!(future.unwrap().is_empty());
    }
}

#[tokio::test]
async fn tokens_are_stored_by_hash_and_revoked_with_their_entry() {
    for (store, _dir) in stores().await {
        let token = TokenRecord {
            name: "ci".into(),
            role: "read-only".into(),
            token_sha256: "ab".repeat(32),
            created_at: 1,
            created_by: "admin".into(),
            last_used_at: None,
        };
        store.insert_token_audited(&token, &entry("admin", "token.create", "token", "ci")).await.unwrap();
        let taken = store.insert_token_audited(&token, &entry("admin", "token.create", "token", "ci")).await;
        assert!(matches!(taken, Err(StoreError::Duplicate(_))));
        store.touch_token("ci", 42).await.unwrap();
        assert_eq!(store.list_tokens().await.unwrap()[0].last_used_at, Some(42));
        assert!(store.revoke_token_audited("ci", &entry("admin", "token.revoke", "token", "ci")).await.unwrap());
        assert!(!store.revoke_token_audited("ci", &entry("admin", "token.revoke", "token", "ci")).await.unwrap());
        assert!(store.list_tokens().await.unwrap().is_empty());
        let actions: Vec<String> = store.list_audit(&all()).await.unwrap().into_iter().map(|e| e.action).collect();
        assert_eq!(actions, ["token.revoke", "token.create"]);
    }
}
