//! Contacts from CSV: a header row naming the columns, then one contact per row.
//!
//! Columns (header names, any order, case ignored): `name` (required), and at least one of
//! `office`, `mobile`, `other`. An unknown column is refused, so a typo in the header does not
//! silently drop numbers. Every refusal names the line and column, and nothing is written
//! unless the whole file is good: the caller stores the result in one transaction.
//!
//! ```
//! use sipprov_server::directories::csv::parse;
//! let contacts = parse(b"name,office,mobile\n\"Smith & Sons\",1001,\n").unwrap();
//! assert_eq!(contacts[0].office.as_deref(), Some("1001"));
//! let err = parse(b"name,office\nAlice,12x!\n").unwrap_err();
//! assert_eq!((err.line, err.column.as_deref()), (2, Some("office")));
//! ```

use sipprov_model::contact::{Contact, MAX_CONTACTS};

/// Most bytes a CSV import may have: [`MAX_CONTACTS`] generous rows.
pub const MAX_CSV_BYTES: usize = 2 * 1024 * 1024;

/// Why a CSV file was refused, with where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvError {
    /// The line (from 1; the header is line 1).
    pub line: u64,
    /// The column's header name, when one column is at fault.
    pub column: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for CsvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.column {
            Some(c) => write!(f, "line {}, column {c}: {}", self.line, self.message),
            None => write!(f, "line {}: {}", self.line, self.message),
        }
    }
}

const COLUMNS: [&str; 4] = ["name", "office", "mobile", "other"];

/// Parses and checks a whole CSV file (UTF-8, an optional byte-order mark, `,` separated,
/// `"` quoted) into contacts in file order.
pub fn parse(bytes: &[u8]) -> Result<Vec<Contact>, CsvError> {
    let at = |line: u64, column: Option<&str>, message: String| CsvError {
        line,
        column: column.map(str::to_string),
        message,
    };
    if bytes.len() > MAX_CSV_BYTES {
        return Err(at(1, None, format!("the file is larger than {MAX_CSV_BYTES} bytes")));
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = ::csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(bytes);
    let mut records = reader.byte_records();
    let header = match records.next() {
        Some(Ok(h)) => h,
        Some(Err(e)) => return Err(at(1, None, e.to_string())),
        None => return Err(at(1, None, "empty file: a header row is required (name,office,mobile,other)".into())),
    };
    let columns = header_columns(&header).map_err(|(col, msg)| at(1, col.as_deref(), msg))?;
    let mut contacts = Vec::new();
    for record in records {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            at(line, None, e.to_string())
        })?;
        let line = record.position().map_or(0, |p| p.line());
        if record.iter().all(|f| f.iter().all(u8::is_ascii_whitespace)) {
            continue;
        }
        if contacts.len() == MAX_CONTACTS {
            return Err(at(
                line,
                None,
                format!("more than {MAX_CONTACTS} contacts: a directory holds at most that many"),
            ));
        }
        contacts.push(row(&record, &columns).map_err(|(col, msg)| at(line, col.as_deref(), msg))?);
    }
    Ok(contacts)
}

/// The header's columns, by position: each one of [`COLUMNS`], `name` and a number required.
fn header_columns(header: &::csv::ByteRecord) -> Result<Vec<&'static str>, (Option<String>, String)> {
    let mut columns = Vec::new();
    for (i, field) in header.iter().enumerate() {
        let text = String::from_utf8_lossy(field).trim().to_ascii_lowercase();
        let Some(known) = COLUMNS.iter().find(|c| **c == text) else {
            return Err((
                Some(format!("{} ({text:?})", i + 1)),
                "unknown column: the header row names name, office, mobile and other".into(),
            ));
        };
        if columns.contains(known) {
            return Err((Some((*known).to_string()), "column given twice".into()));
        }
        columns.push(*known);
    }
    if !columns.contains(&"name") {
        return Err((None, "the header row has no name column (columns: name,office,mobile,other)".into()));
    }
    if columns.len() < 2 {
        return Err((None, "the header row has no number column (office, mobile or other)".into()));
    }
    Ok(columns)
}

/// One row as a checked contact; the error names the column.
fn row(record: &::csv::ByteRecord, columns: &[&'static str]) -> Result<Contact, (Option<String>, String)> {
    if record.len() > columns.len() {
        return Err((Some((columns.len() + 1).to_string()), "more fields than the header has columns".into()));
    }
    let mut contact = Contact { name: String::new(), office: None, mobile: None, other: None };
    for (field, column) in record.iter().zip(columns) {
        let text = std::str::from_utf8(field)
            .map_err(|_| (Some((*column).to_string()), "not UTF-8 text".to_string()))?
            .to_string();
        match *column {
            "name" => contact.name = text,
            "office" => contact.office = Some(text),
            "mobile" => contact.mobile = Some(text),
            _ => contact.other = Some(text),
        }
    }
    let contact = contact.normalized();
    contact.check().map_err(|message| {
        let (column, rest) = message.split_once(": ").unwrap_or(("name", message.as_str()));
        (Some(column.to_string()), rest.to_string())
    })?;
    Ok(contact)
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn errors_name_line_and_column() {
        let err = parse(b"name,office\nAlice,1001\n,1002\n").unwrap_err();
        assert_eq!((err.line, err.column.as_deref()), (3, Some("name")), "{err}");
        let err = parse(b"name,offcie\nAlice,1001\n").unwrap_err();
        assert_eq!(err.line, 1);
        assert!(err.to_string().contains("offcie"), "{err}");
        let err = parse(b"name,mobile\nAlice,\n").unwrap_err();
        assert_eq!((err.line, err.column.as_deref()), (2, Some("office")), "{err}");
        let err = parse(b"office,mobile\n1,2\n").unwrap_err();
        assert!(err.to_string().contains("no name column"), "{err}");
        assert!(parse(b"").unwrap_err().to_string().contains("header row is required"));
    }

    #[test]
    fn quoted_fields_order_and_blank_lines() {
        let text = "\u{feff}Mobile,NAME,other\r\n+49 170,\"Smith, \"\"Sons\"\" & Co\",\r\n\r\n,Zoë,7\r\n";
        let contacts = parse(text.as_bytes()).unwrap();
        assert_eq!(contacts.len(), 2);
        assert_eq!(contacts[0].name, "Smith, \"Sons\" & Co");
        assert_eq!(contacts[0].mobile.as_deref(), Some("+49 170"));
        assert_eq!(
            (contacts[1].name.as_str(), contacts[1].other.as_deref(), contacts[1].mobile.as_deref()),
            ("Zoë", Some("7"), None)
        );
    }
}
