//! Remote phone directories against a real SQLite file (and PostgreSQL when
//! SIPPROV_TEST_POSTGRES_URL is set): order kept, whole replacement, audit in the same
//! transaction, the bound on directories.

#[allow(dead_code)] // the shared helpers; only `stores` is needed here
mod common;

use common::stores;
use sipprov_model::contact::{Contact, MAX_DIRECTORIES};
use sipprov_store::{AuditQuery, NewAudit, StoreError};

fn audit(action: &str, target: &str) -> NewAudit {
    NewAudit {
        actor: "admin".into(),
        action: action.into(),
        target_kind: "directory".into(),
        target: target.into(),
        detail: serde_json::json!({}),
    }
}

fn contact(name: &str, office: &str) -> Contact {
    Contact { name: name.into(), office: Some(office.into()), mobile: None, other: Some("99".into()) }
}

#[tokio::test]
async fn contacts_keep_their_order_and_a_write_replaces_them_all() {
    for (store, _dir) in stores().await {
        let first: Vec<Contact> = (0..300).rev().map(|i| contact(&format!("Z{i}"), &format!("{i}"))).collect();
        store.put_directory("sales", &first, &audit("directory.put", "sales")).await.unwrap();
        let listed = store.list_directories().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].contacts, first, "every contact, in the order given");

        let second = vec![contact("Smith & \"Sons\" <Sales>", "+49 30 1"), contact("Zoë", "2")];
        store.put_directory("sales", &second, &audit("directory.put", "sales")).await.unwrap();
        assert_eq!(store.list_directories().await.unwrap()[0].contacts, second);

        assert!(store.delete_directory("sales", &audit("directory.rm", "sales")).await.unwrap());
        assert!(!store.delete_directory("sales", &audit("directory.rm", "sales")).await.unwrap());
        assert!(store.list_directories().await.unwrap().is_empty());
        let q = AuditQuery { target_kind: Some("directory".into()), limit: 10, ..Default::default() };
        let actions: Vec<String> = store.list_audit(&q).await.unwrap().into_iter().map(|a| a.action).collect();
        assert_eq!(
            actions,
            ["directory.rm", "directory.put", "directory.put"],
            "one entry per write, none for a no-op"
        );
    }
}

#[tokio::test]
async fn the_number_of_directories_is_bounded() {
    for (store, _dir) in stores().await {
        for i in 0..MAX_DIRECTORIES {
            store.put_directory(&format!("d{i}"), &[contact("A", "1")], &audit("directory.put", "d")).await.unwrap();
        }
        let err =
            store.put_directory("one-more", &[contact("A", "1")], &audit("directory.put", "d")).await.unwrap_err();
        assert!(matches!(err, StoreError::Limit(_)), "{err}");
        // Replacing an existing one is still fine.
        store.put_directory("d0", &[contact("B", "2")], &audit("directory.put", "d0")).await.unwrap();
    }
}
