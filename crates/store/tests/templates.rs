//! Template override versions on SQLite (and PostgreSQL when SIPPROV_TEST_POSTGRES_URL is set).

#[allow(dead_code)] // the shared helpers; only `stores` is needed here
mod common;

use common::stores;
use sipprov_store::NewTemplateVersion;

fn version<'a>(name: &'a str, body: Option<&'a str>, at: i64) -> NewTemplateVersion<'a> {
    NewTemplateVersion { name, body, at, author: "admin", comment: Some("why") }
}

#[tokio::test]
async fn versions_are_numbered_per_name_and_the_latest_is_current() {
    for (store, _dir) in stores().await {
        assert!(store.current_template_versions().await.unwrap().is_empty());
        assert_eq!(store.add_template_version(version("yealink/mac.cfg.j2", Some("a"), 1)).await.unwrap(), 1);
        assert_eq!(store.add_template_version(version("yealink/mac.cfg.j2", Some("b"), 2)).await.unwrap(), 2);
        assert_eq!(store.add_template_version(version("snom/settings.xml.j2", Some("s"), 3)).await.unwrap(), 1);
        assert_eq!(store.add_template_version(version("yealink/mac.cfg.j2", None, 4)).await.unwrap(), 3);

        let all = store.template_versions("yealink/mac.cfg.j2").await.unwrap();
        let bodies: Vec<_> = all.iter().map(|v| (v.version, v.body.as_deref())).collect();
        assert_eq!(bodies, vec![(1, Some("a")), (2, Some("b")), (3, None)]);
        assert_eq!((all[2].author.as_str(), all[2].comment.as_deref(), all[2].created_at), ("admin", Some("why"), 4));

        let current = store.current_template_versions().await.unwrap();
        let current: Vec<_> = current.iter().map(|v| (v.name.as_str(), v.version, v.body.as_deref())).collect();
        assert_eq!(current, vec![("snom/settings.xml.j2", 1, Some("s")), ("yealink/mac.cfg.j2", 3, None)]);
        assert!(store.template_versions("cisco/flat-profile.xml.j2").await.unwrap().is_empty());
    }
}
