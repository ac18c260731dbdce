//! Programmable keys (`key.N.*`, `expansion.M.key.N.*`, see [`sipprov_model::keys`]) as each
//! vendor module sees them: the keys a device's settings define ([`keys`]), and the checks that
//! refuse what a vendor or model cannot carry ([`check_device`], [`check_merged`]).
//!
//! Each vendor module states what its models can take as a [`KeyCaps`] (or why they take none)
//! and turns [`ProgKey`]s into its own parameters. The rule is the one of every neutral setting:
//! a key set on a device is written in its file or refused with a message naming the vendor, the
//! model and the key. Keys inherited from a group or the global level that a model cannot take
//! (a DECT base in a group of desk phones) are left out of its file, as raw settings meant for
//! another vendor are.

use sipprov_model::{KeyField, KeyKind, KeyPos, KeyType, Settings};

use crate::mapping;
use crate::ModelInfo;

/// One programmable key, complete: a type, and a value where the type needs one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgKey {
    /// Where it sits.
    pub pos: KeyPos,
    /// What it does.
    pub kind: KeyType,
    /// Its target (`None` for a line key).
    pub value: Option<String>,
    /// The text shown next to it, when set.
    pub label: Option<String>,
    /// The account it uses, when set (vendors default to line 1).
    pub line: Option<u32>,
}

impl ProgKey {
    /// The account the key uses: `key.N.line`, else line 1.
    pub fn line_or_first(&self) -> u32 {
        self.line.unwrap_or(1)
    }

    /// The label, else the value (BLF and speed dial keys show whom they call).
    pub fn label_or_value(&self) -> Option<&str> {
        self.label.as_deref().or(self.value.as_deref())
    }
}

/// What a model's files can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyCaps {
    /// The key types the vendor maps.
    pub types: &'static [KeyType],
    /// The number of keys on the phone, when known; `key.N` beyond it is refused.
    pub keys: Option<u32>,
    /// How many expansion modules the model takes (0: `expansion.*` is refused).
    pub modules: u32,
    /// The number of keys on one module, when known.
    pub module_keys: Option<u32>,
    /// True when `key.N.line` is written for every type; false when only a line key carries it.
    pub line_on_every_type: bool,
}

/// Every complete key in `settings` (merged), in [`Settings::key_positions`] order. A position
/// without a type, or without the value its type needs, is incomplete and left out
/// ([`check_merged`] refuses it where a change would create it).
pub fn keys(settings: &Settings) -> Vec<ProgKey> {
    settings
        .key_positions()
        .into_iter()
        .filter_map(|pos| {
            let get = |f: KeyField| mapping::get(settings, &pos.key(f)).map(str::to_string);
            let kind = KeyType::parse(&get(KeyField::Type)?)?;
            let value = get(KeyField::Value);
            if kind.needs_value() && value.is_none() {
                return None;
            }
            let value = value.filter(|_| kind.needs_value());
            let line = get(KeyField::Line).and_then(|l| l.parse().ok());
            Some(ProgKey { pos, kind, value, label: get(KeyField::Label), line })
        })
        .collect()
}

/// The keys of `settings` that `caps` can carry; all of them are when the device's own settings
/// passed [`check_device`], inherited ones may not be.
pub fn supported(settings: &Settings, caps: &KeyCaps) -> Vec<ProgKey> {
    keys(settings).into_iter().filter(|k| fits(k.pos, caps).is_ok() && caps.types.contains(&k.kind)).collect()
}

fn fits(pos: KeyPos, caps: &KeyCaps) -> Result<(), String> {
    match pos.module {
        None => match caps.keys {
            Some(max) if pos.index > max => Err(format!("it has {max} programmable keys")),
            _ => Ok(()),
        },
        Some(_) if caps.modules == 0 => Err("no expansion module mapping".to_string()),
        Some(m) if m > caps.modules => Err(format!("it takes {} expansion modules", caps.modules)),
        Some(_) => match caps.module_keys {
            Some(max) if pos.index > max => Err(format!("its expansion modules have {max} keys")),
            _ => Ok(()),
        },
    }
}

/// Refuses a device's own key settings that `caps` cannot carry: any key at all when `caps` is
/// `Err(why)`, positions beyond the model's keys or modules, unmapped types, a `key.N.line`
/// beyond the model's lines or on a type the vendor writes no line for. `vendor` and the model
/// name appear in every message, with the key.
pub fn check_device(
    settings: &Settings,
    vendor: &str,
    model: &ModelInfo,
    caps: Result<KeyCaps, &str>,
) -> Result<(), String> {
    let refuse =
        |key: &str, why: &str| Err(format!("{key} cannot be provisioned on the {vendor} {}: {why}", model.name));
    for (key, value) in settings.iter().filter(|(_, v)| !v.is_empty()) {
        let Ok(KeyKind::Key { pos, field }) = Settings::classify(key) else { continue };
        let caps = match &caps {
            Ok(caps) => caps,
            Err(why) => return refuse(key, why),
        };
        fits(pos, caps).or_else(|why| refuse(key, &why))?;
        match field {
            KeyField::Type => match KeyType::parse(value) {
                Some(t) if !caps.types.contains(&t) => {
                    let names: Vec<_> = caps.types.iter().map(|t| t.name()).collect();
                    return refuse(key, &format!("{vendor} keys map {} only", names.join(", ")));
                }
                _ => {}
            },
            KeyField::Line => {
                let n: u32 = value.parse().unwrap_or(0);
                if model.max_lines.is_some_and(|max| n > max) {
                    return refuse(key, &format!("it has {} lines", model.max_lines.unwrap_or(0)));
                }
                let kind = mapping::get(settings, &pos.key(KeyField::Type)).and_then(KeyType::parse);
                if !caps.line_on_every_type && kind.is_some_and(|t| t != KeyType::Line) {
                    return refuse(key, &format!("{vendor} writes the account of line keys only"));
                }
            }
            KeyField::Value | KeyField::Label => {}
        }
    }
    Ok(())
}

/// Refuses merged settings that define a key by halves (a value, label or line without a type, or
/// a BLF, speed dial or park key without a value), naming the missing setting: such a key would
/// be accepted and then left out of the file.
pub fn check_merged(merged: &Settings) -> Result<(), String> {
    for pos in merged.key_positions() {
        let get = |f: KeyField| mapping::get(merged, &pos.key(f));
        match get(KeyField::Type).and_then(KeyType::parse) {
            None => {
                let set = KeyField::ALL.into_iter().find(|f| get(*f).is_some()).map_or("", |f| f.name());
                return Err(format!(
                    "{}.{set} is set but {} is not: a key needs a type (line, blf, speed_dial or park)",
                    pos.prefix(),
                    pos.key(KeyField::Type)
                ));
            }
            Some(t) if t.needs_value() && get(KeyField::Value).is_none() => {
                return Err(format!(
                    "{} = {} needs {} (the extension or number it is for)",
                    pos.key(KeyField::Type),
                    t.name(),
                    pos.key(KeyField::Value)
                ));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(items: &[&str]) -> Settings {
        Settings::parse_assignments(items.iter().copied()).unwrap()
    }

    const MODEL: ModelInfo =
        ModelInfo { name: "X1", family: "desk", aliases: &[], common_file: None, max_lines: Some(2) };
    const CAPS: KeyCaps = KeyCaps {
        types: &[KeyType::Line, KeyType::Blf],
        keys: Some(4),
        modules: 1,
        module_keys: Some(10),
        line_on_every_type: false,
    };

    #[test]
    fn keys_are_complete_or_left_out() {
        let s =
            st(&["key.1.type=blf", "key.1.value=1002", "key.2.type=speed_dial", "key.3.value=9", "key.4.type=line"]);
        let got = keys(&s);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!((got[0].kind, got[0].value.as_deref(), got[0].line_or_first()), (KeyType::Blf, Some("1002"), 1));
        assert_eq!((got[1].kind, got[1].value.as_deref()), (KeyType::Line, None));
        assert!(check_merged(&s).unwrap_err().contains("key.2.value"));
        assert!(check_merged(&st(&["key.3.value=9"])).unwrap_err().contains("key.3.type"));
        assert!(
            check_merged(&st(&["key.1.type=line", "expansion.1.key.1.type=blf", "expansion.1.key.1.value=1"])).is_ok()
        );
    }

    #[test]
    fn device_checks_name_vendor_model_and_key() {
        let e = check_device(&st(&["key.1.type=line"]), "Acme", &MODEL, Err("no keys")).unwrap_err();
        assert!(e.contains("key.1.type") && e.contains("Acme X1") && e.contains("no keys"), "{e}");
        assert!(check_device(&st(&["key.5.type=line"]), "Acme", &MODEL, Ok(CAPS))
            .unwrap_err()
            .contains("4 programmable"));
        assert!(check_device(&st(&["key.1.type=park"]), "Acme", &MODEL, Ok(CAPS)).unwrap_err().contains("line, blf"));
        assert!(check_device(&st(&["key.1.type=line", "key.1.line=3"]), "Acme", &MODEL, Ok(CAPS)).is_err());
        assert!(check_device(&st(&["key.1.type=blf", "key.1.line=2"]), "Acme", &MODEL, Ok(CAPS)).is_err());
        assert!(check_device(&st(&["expansion.2.key.1.type=line"]), "Acme", &MODEL, Ok(CAPS)).is_err());
        assert!(check_device(&st(&["expansion.1.key.11.type=line"]), "Acme", &MODEL, Ok(CAPS)).is_err());
        let ok = st(&["key.4.type=line", "key.4.line=2", "expansion.1.key.10.type=blf", "expansion.1.key.10.value=7"]);
        assert_eq!(check_device(&ok, "Acme", &MODEL, Ok(CAPS)), Ok(()));
        // Inherited keys the model cannot take are left out.
        assert!(supported(&st(&["key.9.type=line", "key.1.type=park", "key.1.value=700"]), &CAPS).is_empty());
    }
}
