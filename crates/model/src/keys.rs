//! Programmable keys as vendor-neutral settings: `key.N.FIELD` for the phone's own line keys and
//! `expansion.M.key.N.FIELD` for the keys of expansion module M (sidecars).
//!
//! A key has a [`KeyType`] (`key.N.type`), a value (`key.N.value`: the extension watched by a
//! BLF key, the number a speed dial calls, the park orbit), a label (`key.N.label`) and the
//! account it uses (`key.N.line`, a line number as in `line.N.*`). Only types every mapped vendor
//! can express are accepted; each vendor module maps them or refuses them when set.

/// The highest key number accepted in `key.N.*` (the largest desk phones have under 100 line
/// keys; each vendor module refuses numbers beyond a model's own count when it knows it).
pub const MAX_KEYS: u32 = 128;
/// The highest expansion module number accepted in `expansion.M.key.N.*` (Yealink chains up to
/// six EXP40 modules).
pub const MAX_EXPANSION_MODULES: u32 = 6;
/// The highest key number on one expansion module.
pub const MAX_EXPANSION_KEYS: u32 = 128;
/// The longest label accepted: phones show a dozen characters; this only bounds the files.
pub const MAX_KEY_LABEL: usize = 64;

/// The fields of a `key.N.*` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyField {
    /// What the key does ([`KeyType`]).
    Type,
    /// Its target: the extension a BLF key watches, the number a speed dial calls, the park orbit.
    Value,
    /// The text shown next to the key.
    Label,
    /// The account (line number) the key uses.
    Line,
}

impl KeyField {
    /// Every field.
    pub const ALL: [KeyField; 4] = [KeyField::Type, KeyField::Value, KeyField::Label, KeyField::Line];

    /// The key segment, e.g. `value`.
    pub fn name(self) -> &'static str {
        match self {
            KeyField::Type => "type",
            KeyField::Value => "value",
            KeyField::Label => "label",
            KeyField::Line => "line",
        }
    }

    fn parse(s: &str) -> Option<KeyField> {
        KeyField::ALL.into_iter().find(|f| f.name() == s)
    }
}

/// What a programmable key does: the small set every mapped vendor can express.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyType {
    /// A line (account) key: `key.N.line` names the account.
    Line,
    /// Busy lamp field: watches `key.N.value` and calls it when pressed.
    Blf,
    /// Calls `key.N.value`.
    SpeedDial,
    /// Parks the current call on orbit `key.N.value`.
    Park,
}

impl KeyType {
    /// Every type.
    pub const ALL: [KeyType; 4] = [KeyType::Line, KeyType::Blf, KeyType::SpeedDial, KeyType::Park];

    /// The value `key.N.type` takes.
    pub fn name(self) -> &'static str {
        match self {
            KeyType::Line => "line",
            KeyType::Blf => "blf",
            KeyType::SpeedDial => "speed_dial",
            KeyType::Park => "park",
        }
    }

    /// Parses a `key.N.type` value, ignoring case and accepting `-` for `_`.
    ///
    /// ```
    /// use sipprov_model::KeyType;
    /// assert_eq!(KeyType::parse("Speed-Dial"), Some(KeyType::SpeedDial));
    /// assert_eq!(KeyType::parse("intercom"), None);
    /// ```
    pub fn parse(s: &str) -> Option<KeyType> {
        let s = s.trim().to_ascii_lowercase().replace('-', "_");
        KeyType::ALL.into_iter().find(|t| t.name() == s)
    }

    /// True when the key needs `key.N.value` (everything but a line key).
    pub fn needs_value(self) -> bool {
        self != KeyType::Line
    }
}

/// Where a programmable key sits: on the phone (`module` is `None`) or on expansion module M.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyPos {
    /// The expansion module (1-based), `None` for the phone's own keys.
    pub module: Option<u32>,
    /// The key number (1-based).
    pub index: u32,
}

impl KeyPos {
    /// The settings prefix: `key.3` or `expansion.1.key.3`.
    ///
    /// ```
    /// use sipprov_model::KeyPos;
    /// assert_eq!(KeyPos { module: Some(2), index: 5 }.prefix(), "expansion.2.key.5");
    /// ```
    pub fn prefix(self) -> String {
        match self.module {
            None => format!("key.{}", self.index),
            Some(m) => format!("expansion.{m}.key.{}", self.index),
        }
    }

    /// The setting key of `field` at this position.
    pub fn key(self, field: KeyField) -> String {
        format!("{}.{}", self.prefix(), field.name())
    }
}

/// Parses `key.N.FIELD` or `expansion.M.key.N.FIELD` (already known to start with one of those
/// prefixes); the error says what is wrong.
pub(crate) fn parse_key(key: &str) -> Result<(KeyPos, KeyField), String> {
    let parts: Vec<&str> = key.split('.').collect();
    let (module, index, field) = match parts.as_slice() {
        ["key", n, f] => (None, *n, *f),
        ["expansion", m, "key", n, f] => (Some(*m), *n, *f),
        ["key", ..] => return Err("expected key.N.FIELD".into()),
        _ => return Err("expected expansion.M.key.N.FIELD".into()),
    };
    let number = |s: &str, max: u32, what: &str| -> Result<u32, String> {
        match s.parse::<u32>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(format!("{what} numbers run from 1 to {max}")),
        }
    };
    let module = module.map(|m| number(m, MAX_EXPANSION_MODULES, "expansion module")).transpose()?;
    let index = number(index, if module.is_some() { MAX_EXPANSION_KEYS } else { MAX_KEYS }, "key")?;
    let field = KeyField::parse(field).ok_or_else(|| {
        let names: Vec<_> = KeyField::ALL.iter().map(|f| f.name()).collect();
        format!("unknown key field; known fields: {}", names.join(", "))
    })?;
    Ok((KeyPos { module, index }, field))
}

/// Validates a value of `field`, returning it normalised (`BLF` → `blf`).
pub(crate) fn validate_field(field: KeyField, value: &str) -> Result<String, String> {
    match field {
        KeyField::Type => KeyType::parse(value).map(|t| t.name().to_string()).ok_or_else(|| {
            let names: Vec<_> = KeyType::ALL.iter().map(|t| t.name()).collect();
            format!("must be one of {}", names.join(", "))
        }),
        KeyField::Line => match value.trim().parse::<u32>() {
            Ok(n) if (1..=crate::MAX_LINES).contains(&n) => Ok(n.to_string()),
            _ => Err(format!("must be a line number from 1 to {}", crate::MAX_LINES)),
        },
        // A number or SIP URI: vendors put it inside `blf <value>` or `sub=<value>@...`, where a
        // space, quote or separator would end it early.
        KeyField::Value => {
            if value.is_empty() || value.contains(|c: char| c.is_whitespace() || "\"';,<>".contains(c)) {
                return Err("must be a number or SIP URI without spaces, quotes, ';', ',' or angle brackets".into());
            }
            Ok(value.to_string())
        }
        KeyField::Label => {
            if value.chars().count() > MAX_KEY_LABEL || value.contains(';') {
                return Err(format!("must be at most {MAX_KEY_LABEL} characters, without ';'"));
            }
            Ok(value.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_parse_within_bounds() {
        assert_eq!(parse_key("key.3.type").unwrap(), (KeyPos { module: None, index: 3 }, KeyField::Type));
        assert_eq!(
            parse_key("expansion.6.key.40.label").unwrap(),
            (KeyPos { module: Some(6), index: 40 }, KeyField::Label)
        );
        assert!(parse_key("key.0.type").is_err());
        assert!(parse_key("key.129.type").is_err());
        assert!(parse_key("expansion.7.key.1.type").is_err());
        assert!(parse_key("key.1.colour").unwrap_err().contains("type, value, label, line"));
        assert!(parse_key("key.1").is_err() && parse_key("expansion.1.key").is_err());
    }

    #[test]
    fn values_are_checked_per_field() {
        assert_eq!(validate_field(KeyField::Type, "BLF").unwrap(), "blf");
        assert!(validate_field(KeyField::Type, "intercom").unwrap_err().contains("speed_dial"));
        assert_eq!(validate_field(KeyField::Line, "2").unwrap(), "2");
        assert!(validate_field(KeyField::Line, "0").is_err() && validate_field(KeyField::Line, "100").is_err());
        assert!(validate_field(KeyField::Value, "sip:1002@pbx.example.com").is_ok());
        assert!(validate_field(KeyField::Value, "1002;nme=x").is_err());
        assert!(validate_field(KeyField::Value, "10 02").is_err());
        assert!(validate_field(KeyField::Label, &"x".repeat(65)).is_err());
        assert!(validate_field(KeyField::Label, "Bob & Co <sales>").is_ok());
    }
}
