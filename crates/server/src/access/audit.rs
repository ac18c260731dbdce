//! Building audit entries: who, what and which keys changed, secrets masked with the one
//! redaction the API and the CLI use ([`sipprov_vendors::redacted`]), so a password set, changed
//! or removed shows as `********` and never reaches the audit table.

use serde_json::{json, Map, Value};
use sipprov_model::{Mac, Settings};
use sipprov_store::NewAudit;
use sipprov_vendors::redacted;

use super::Actor;

/// How many MACs an import's entry lists; a larger import records the count and the first ones.
pub const IMPORT_MACS_SHOWN: usize = 1000;

/// An entry by `actor`.
pub fn entry(actor: &Actor, action: &str, target_kind: &str, target: &str, detail: Value) -> NewAudit {
    NewAudit {
        actor: actor.name.clone(),
        action: action.to_string(),
        target_kind: target_kind.to_string(),
        target: target.to_string(),
        detail,
    }
}

/// `{"key": {"old": …, "new": …}}` for each key of `patch` applied to `before`, masked; `null`
/// for a key absent before or removed by the patch.
pub fn setting_changes(before: &Settings, patch: &Settings) -> Value {
    let mut after = before.clone();
    after.apply(patch);
    let (before, after) = (redacted(before), redacted(&after));
    let changes: Map<String, Value> = patch
        .iter()
        .map(|(key, _)| (key.to_string(), json!({ "old": before.get(key), "new": after.get(key) })))
        .collect();
    Value::Object(changes)
}

/// The MACs of an import, bounded: `{"count": N, "macs": [...], "macs_truncated": bool}`.
pub fn import_detail(macs: impl ExactSizeIterator<Item = Mac>) -> Value {
    let count = macs.len();
    let shown: Vec<String> = macs.take(IMPORT_MACS_SHOWN).map(|m| m.to_string()).collect();
    json!({ "count": count, "macs": shown, "macs_truncated": count > IMPORT_MACS_SHOWN })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_in_changes() {
        let before = Settings::parse_assignments(["line.1.password=old-secret", "time.zone=UTC"]).unwrap();
        let patch = Settings::parse_assignments(["line.1.password=new-secret", "time.zone=UTC+1"]).unwrap();
        let text = setting_changes(&before, &patch).to_string();
        assert!(!text.contains("secret"), "{text}");
        assert!(text.contains(r#""new":"UTC+1""#) && text.contains(r#""old":"UTC""#), "{text}");
    }

    #[test]
    fn imports_list_a_bounded_number_of_macs() {
        let macs: Vec<Mac> = (0..1500u64).map(|i| format!("0015650{i:05x}").parse().unwrap()).collect();
        let detail = import_detail(macs.into_iter());
        assert_eq!(detail["count"], 1500);
        assert_eq!(detail["macs"].as_array().unwrap().len(), IMPORT_MACS_SHOWN);
        assert_eq!(detail["macs_truncated"], true);
    }
}
