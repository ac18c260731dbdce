//! Remote phone directories: named lists of contacts a phone shows in its directory, and the
//! rules every contact and directory name passes before it is stored.
//!
//! A [`Contact`] is a name with up to three numbers by kind (office, mobile, other). The
//! bounds keep a directory something a phone can hold and a server can render per request:
//! at most [`MAX_CONTACTS`] contacts per directory and [`MAX_DIRECTORIES`] directories.
//!
//! ```
//! use sipprov_model::contact::{check_directory_name, Contact};
//! let c = Contact { name: "Smith & Sons".into(), office: Some("+49 30 1234".into()), mobile: None, other: None };
//! assert!(c.check().is_ok());
//! assert!(Contact { office: None, ..c.clone() }.check().unwrap_err().contains("at least one number"));
//! assert!(check_directory_name("sales-emea").is_ok() && check_directory_name("../x").is_err());
//! ```

/// Most contacts in one directory: what the smallest remote phone books take (Yealink and
/// Fanvil document a few thousand entries), and a bound on what one request renders.
pub const MAX_CONTACTS: usize = 5000;
/// Most directories the server keeps.
pub const MAX_DIRECTORIES: usize = 200;
/// Longest contact name, in characters.
pub const MAX_NAME_CHARS: usize = 64;
/// Longest number, in characters.
pub const MAX_NUMBER_CHARS: usize = 32;

/// One entry of a directory: a display name and its numbers by kind.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Contact {
    /// The name the phone shows.
    pub name: String,
    /// The office (work) number.
    pub office: Option<String>,
    /// The mobile number.
    pub mobile: Option<String>,
    /// Any other number (home, fax…).
    pub other: Option<String>,
}

/// Which of a contact's numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberKind {
    /// [`Contact::office`].
    Office,
    /// [`Contact::mobile`].
    Mobile,
    /// [`Contact::other`].
    Other,
}

impl NumberKind {
    /// The field's name, as CSV headers and API members spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            NumberKind::Office => "office",
            NumberKind::Mobile => "mobile",
            NumberKind::Other => "other",
        }
    }
}

impl Contact {
    /// The contact's numbers in the order office, mobile, other, skipping empty ones.
    pub fn numbers(&self) -> impl Iterator<Item = (NumberKind, &str)> {
        [(NumberKind::Office, &self.office), (NumberKind::Mobile, &self.mobile), (NumberKind::Other, &self.other)]
            .into_iter()
            .filter_map(|(kind, n)| n.as_deref().filter(|n| !n.is_empty()).map(|n| (kind, n)))
    }

    /// Checks the contact; the error names the field (`name`, `office`, `mobile`, `other`).
    pub fn check(&self) -> Result<(), String> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
            return Err(format!("name: must be 1 to {MAX_NAME_CHARS} characters"));
        }
        if self.name.chars().any(char::is_control) {
            return Err("name: control characters are not allowed".into());
        }
        for (kind, number) in
            [(NumberKind::Office, &self.office), (NumberKind::Mobile, &self.mobile), (NumberKind::Other, &self.other)]
        {
            if let Some(n) = number.as_deref().filter(|n| !n.is_empty()) {
                check_number(n).map_err(|e| format!("{}: {e}", kind.as_str()))?;
            }
        }
        if self.numbers().next().is_none() {
            return Err("office: a contact needs at least one number (office, mobile or other)".into());
        }
        Ok(())
    }

    /// The contact with its name trimmed and empty numbers as `None`.
    pub fn normalized(self) -> Contact {
        let number = |n: Option<String>| n.map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
        Contact {
            name: self.name.trim().to_string(),
            office: number(self.office),
            mobile: number(self.mobile),
            other: number(self.other),
        }
    }
}

/// A dialable number: digits, `+`, `*`, `#`, spaces, `-`, `(`, `)`, `.`, or a SIP user part
/// (`alice`, `alice@pbx.example.com`): letters, digits and `@._-+*#:` only.
fn check_number(n: &str) -> Result<(), String> {
    if n.chars().count() > MAX_NUMBER_CHARS {
        return Err(format!("at most {MAX_NUMBER_CHARS} characters"));
    }
    let ok = n.chars().all(|c| c.is_ascii_alphanumeric() || " +*#-().@_:".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!("{n:?} is not a number: use digits, + * # ( ) - . or a SIP user such as alice@pbx"))
    }
}

/// Checks a directory name: 1 to 64 letters, digits, `.`, `_` or `-`, not starting with `.`.
pub fn check_directory_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!("invalid directory name {name:?}: use 1 to 64 letters, digits, '.', '_' or '-'"))
    }
}

/// Checks a whole directory's contacts: the bound, then each contact; the error names the
/// contact's position (from 1).
pub fn check_contacts(contacts: &[Contact]) -> Result<(), (usize, String)> {
    if contacts.len() > MAX_CONTACTS {
        return Err((MAX_CONTACTS + 1, format!("at most {MAX_CONTACTS} contacts per directory")));
    }
    for (i, c) in contacts.iter().enumerate() {
        c.check().map_err(|e| (i + 1, e))?;
    }
    Ok(())
}
