//! MAC addresses: parsing every spelling phones and operators use, one canonical form.

use std::fmt;
use std::str::FromStr;

/// A 48-bit MAC address.
///
/// Accepted spellings: `001565AABBCC`, `00:15:65:aa:bb:cc`, `00-15-65-AA-BB-CC`
/// and Cisco's `0015.65aa.bbcc`, in any case. The canonical form (its
/// `Display`) is 12 lower-case hex digits without separators, the form Yealink,
/// Polycom and Fanvil use in file names.
///
/// ```
/// use sipprov_model::Mac;
/// let mac: Mac = "00:15:65:aa:bb:cc".parse().unwrap();
/// assert_eq!(mac.to_string(), "001565aabbcc");
/// assert_eq!(mac.upper(), "001565AABBCC");
/// assert_eq!(mac.colon(), "00:15:65:aa:bb:cc");
/// assert!("00:15:65:aa:bb".parse::<Mac>().is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mac([u8; 6]);

/// Why a string is not a MAC address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid MAC address {input:?}: {reason}")]
pub struct MacError {
    input: String,
    reason: &'static str,
}

impl Mac {
    /// Builds a MAC from its six bytes.
    ///
    /// ```
    /// assert_eq!(sipprov_model::Mac::from_bytes([0, 0x15, 0x65, 1, 2, 3]).to_string(), "001565010203");
    /// ```
    pub const fn from_bytes(bytes: [u8; 6]) -> Self {
        Mac(bytes)
    }

    /// The six bytes.
    pub const fn bytes(&self) -> [u8; 6] {
        self.0
    }

    /// Upper-case hex without separators, as Gigaset and AudioCodes write it.
    pub fn upper(&self) -> String {
        self.to_string().to_ascii_uppercase()
    }

    /// Lower-case hex with colons, as Yealink puts it in its User-Agent.
    pub fn colon(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
    }

    /// The vendor prefix (first three bytes) as 6 lower-case hex digits.
    ///
    /// ```
    /// let mac: sipprov_model::Mac = "001565aabbcc".parse().unwrap();
    /// assert_eq!(mac.oui(), "001565");
    /// ```
    pub fn oui(&self) -> String {
        self.to_string()[..6].to_string()
    }

    /// Parses exactly 12 hex digits with no separators (the form inside file names).
    pub fn from_plain_hex(s: &str) -> Option<Mac> {
        if s.len() != 12 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let mut out = [0u8; 6];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(Mac(out))
    }

    /// True for `000000000000` and `ffffffffffff`, which are placeholders, never devices.
    pub fn is_placeholder(&self) -> bool {
        self.0 == [0; 6] || self.0 == [0xff; 6]
    }
}

impl FromStr for Mac {
    type Err = MacError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason| MacError { input: input.to_string(), reason };
        let trimmed = input.trim();
        let hex: String = match separator_of(trimmed) {
            None => trimmed.to_string(),
            Some(sep) => {
                let groups: Vec<&str> = trimmed.split(sep).collect();
                let shape_ok = match sep {
                    '.' => groups.len() == 3 && groups.iter().all(|g| g.len() == 4),
                    _ => groups.len() == 6 && groups.iter().all(|g| g.len() == 2),
                };
                if !shape_ok {
                    return Err(err("separators must split it into 6 pairs (or 3 groups of 4 with dots)"));
                }
                groups.concat()
            }
        };
        if hex.len() != 12 {
            return Err(err("expected 12 hex digits"));
        }
        Mac::from_plain_hex(&hex).ok_or_else(|| err("contains a character that is not a hex digit"))
    }
}

fn separator_of(s: &str) -> Option<char> {
    s.chars().find(|c| matches!(c, ':' | '-' | '.'))
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mac({self})")
    }
}

impl serde::Serialize for Mac {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Mac {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_every_common_spelling() {
        for s in [
            "001565AABBCC",
            "001565aabbcc",
            "00:15:65:aa:bb:cc",
            "00-15-65-AA-BB-CC",
            "0015.65aa.bbcc",
            " 00:15:65:AA:BB:CC ",
        ] {
            assert_eq!(s.parse::<Mac>().unwrap().to_string(), "001565aabbcc", "{s}");
        }
    }

    #[test]
    fn refuses_malformed_input_with_a_reason() {
        for s in [
            "",
            "001565aabb",
            "001565aabbccdd",
            "00:15:65:aa:bb:c",
            "0g1565aabbcc",
            "00:15-65:aa:bb:cc",
            "00:1565:aa:bb:cc:",
        ] {
            let e = s.parse::<Mac>().unwrap_err();
            assert!(e.to_string().contains("invalid MAC address"), "{s}: {e}");
        }
    }

    #[test]
    fn placeholders_are_recognised() {
        assert!("000000000000".parse::<Mac>().unwrap().is_placeholder());
        assert!(!"001565000000".parse::<Mac>().unwrap().is_placeholder());
    }
}
