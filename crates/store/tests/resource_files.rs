//! The file catalog's rows on SQLite (and PostgreSQL when SIPPROV_TEST_POSTGRES_URL is set):
//! each add and remove carries its audit entry, names are unique, and a removal says whether
//! the content is still named by another entry.

#[allow(dead_code)] // the shared helpers; only `stores` is needed here
mod common;

use common::stores;
use sipprov_store::{AuditQuery, NewAudit, ResourceFileRecord};

fn file(name: &str, sha: &str) -> ResourceFileRecord {
    ResourceFileRecord {
        name: name.into(),
        kind: "firmware".into(),
        sha256: sha.into(),
        size: 5_000_000_000,
        vendor: Some("yealink".into()),
        models: vec!["T46S".into(), "T48S".into()],
        version: Some("66.86.0.160".into()),
        access: "open".into(),
        added_at: 1_700_000_000,
        added_by: "admin".into(),
    }
}

fn audit(action: &str, name: &str) -> NewAudit {
    NewAudit {
        actor: "admin".into(),
        action: action.into(),
        target_kind: "file".into(),
        target: name.into(),
        detail: serde_json::json!({}),
    }
}

#[tokio::test]
async fn entries_are_added_listed_and_removed_with_their_audit_entries() {
    for (store, _dir) in stores().await {
        let a = file("fw-a.rom", &"a".repeat(64));
        assert!(store.insert_resource_file(&a, &audit("file.add", "fw-a.rom")).await.unwrap());
        assert!(!store.insert_resource_file(&a, &audit("file.add", "fw-a.rom")).await.unwrap(), "name taken");
        let b = ResourceFileRecord { name: "fw-b.rom".into(), ..a.clone() };
        assert!(store.insert_resource_file(&b, &audit("file.add", "fw-b.rom")).await.unwrap());

        assert_eq!(store.resource_files().await.unwrap(), vec![a.clone(), b.clone()]);
        assert_eq!(store.resource_file("fw-a.rom").await.unwrap(), Some(a.clone()));
        assert!(store.resource_content_named(&a.sha256).await.unwrap());

        let gone = store.delete_resource_file("fw-a.rom", &audit("file.remove", "fw-a.rom")).await.unwrap().unwrap();
        assert_eq!(gone.record, a);
        assert!(!gone.last_reference, "fw-b.rom names the same content");
        let gone = store.delete_resource_file("fw-b.rom", &audit("file.remove", "fw-b.rom")).await.unwrap().unwrap();
        assert!(gone.last_reference);
        assert!(store.delete_resource_file("fw-b.rom", &audit("file.remove", "fw-b.rom")).await.unwrap().is_none());
        assert!(!store.resource_content_named(&a.sha256).await.unwrap());

        let query = AuditQuery { target_kind: Some("file".into()), limit: 10, ..Default::default() };
        let actions: Vec<_> =
            store.list_audit(&query).await.unwrap().into_iter().map(|e| (e.action, e.target)).collect();
        let expected = [
            ("file.remove", "fw-b.rom"),
            ("file.remove", "fw-a.rom"),
            ("file.add", "fw-b.rom"),
            ("file.add", "fw-a.rom"),
        ];
        assert_eq!(actions, expected.map(|(a, t)| (a.to_string(), t.to_string())), "one entry per change made");
    }
}
