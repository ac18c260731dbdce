//! Remote phone directories: the contacts a phone shows in its directory, and the XML writer
//! each vendor module builds its own directory format with ([`crate::Vendor::directory`]).
//!
//! A [`Contact`] is a name with up to three numbers, by kind: office, mobile and other (the
//! three kinds Fanvil's directory distinguishes; vendors with one kind of number write each
//! number as its own entry). Every text goes through [`XmlWriter`], which escapes `&`, `<`,
//! `>`, both quotes, and drops the characters XML 1.0 cannot carry (§2.2: controls other than
//! tab, newline and carriage return), so a name such as `Smith & "Sons" <Sales>` stays text.
//!
//! ```
//! use sipprov_vendors::directory::Contact;
//! use sipprov_vendors::registry;
//! let contacts = [Contact { name: "Smith & Sons".into(), office: Some("1001".into()), mobile: None, other: None }];
//! let file = registry().get("yealink").unwrap().directory(&contacts).unwrap();
//! let text = String::from_utf8(file.bytes).unwrap();
//! assert!(text.contains("<Name>Smith &amp; Sons</Name>"));
//! ```

pub use sipprov_model::contact::{Contact, NumberKind};

/// A rendered directory: the bytes the phone receives and how they are labelled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryFile {
    /// The document.
    pub bytes: Vec<u8>,
    /// The HTTP `Content-Type` to send.
    pub content_type: &'static str,
}

/// The `Content-Type` of every directory format: UTF-8 XML.
pub const XML: &str = "application/xml; charset=utf-8";

/// A small writer of indented, escaped XML: what the vendor modules build directories with.
pub struct XmlWriter {
    out: String,
    open: Vec<&'static str>,
}

impl XmlWriter {
    /// A document starting with the XML declaration (UTF-8, plus `standalone="yes"` when asked).
    pub fn new(standalone: bool) -> XmlWriter {
        let decl = if standalone {
            "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n"
        } else {
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        };
        XmlWriter { out: decl.to_string(), open: Vec::new() }
    }

    fn indent(&mut self) {
        self.out.extend(std::iter::repeat_n("  ", self.open.len()));
    }

    /// Opens `<tag attr="value"…>`; attribute values are escaped.
    pub fn open(&mut self, tag: &'static str, attrs: &[(&str, &str)]) -> &mut Self {
        self.indent();
        self.out.push('<');
        self.out.push_str(tag);
        for (name, value) in attrs {
            self.out.push_str(&format!(" {name}=\"{}\"", escape(value)));
        }
        self.out.push_str(">\n");
        self.open.push(tag);
        self
    }

    /// Closes the innermost open element.
    pub fn close(&mut self) -> &mut Self {
        if let Some(tag) = self.open.pop() {
            self.indent();
            self.out.push_str(&format!("</{tag}>\n"));
        }
        self
    }

    /// Writes `<tag>text</tag>` with `text` escaped.
    pub fn text(&mut self, tag: &str, text: &str) -> &mut Self {
        self.indent();
        self.out.push_str(&format!("<{tag}>{}</{tag}>\n", escape(text)));
        self
    }

    /// Closes what is still open and returns the document as a [`DirectoryFile`].
    pub fn finish(mut self) -> DirectoryFile {
        while !self.open.is_empty() {
            self.close();
        }
        DirectoryFile { bytes: self.out.into_bytes(), content_type: XML }
    }
}

/// Escapes text for XML content and attribute values, dropping the characters XML 1.0 cannot
/// carry at all (controls other than tab, newline and carriage return: §2.2 `Char`).
///
/// ```
/// assert_eq!(sipprov_vendors::directory::escape("a&b<c>\"d'\u{1}é"), "a&amp;b&lt;c&gt;&quot;d&apos;é");
/// ```
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c.is_control() || matches!(c, '\u{FFFE}' | '\u{FFFF}') => {}
            c => out.push(c),
        }
    }
    out
}

/// The common shape of Yealink's, Snom's, Cisco's and Fanvil's directories: a root element, an
/// optional title, then one `<DirectoryEntry>` per contact with `<Name>` and one `<Telephone>`
/// per number (`one_number`: one entry per number instead, for formats whose entry holds one).
pub(crate) fn name_telephone(
    root: &'static str,
    title: Option<&str>,
    contacts: &[Contact],
    one_number: bool,
) -> DirectoryFile {
    let mut xml = XmlWriter::new(false);
    xml.open(root, &[]);
    if let Some(title) = title {
        xml.text("Title", title);
    }
    for contact in contacts {
        if one_number {
            for (_, number) in contact.numbers() {
                xml.open("DirectoryEntry", &[]).text("Name", &contact.name).text("Telephone", number).close();
            }
        } else {
            xml.open("DirectoryEntry", &[]).text("Name", &contact.name);
            for (_, number) in contact.numbers() {
                xml.text("Telephone", number);
            }
            xml.close();
        }
    }
    xml.finish()
}
