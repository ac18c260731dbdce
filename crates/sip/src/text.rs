//! Lexical helpers of the SIP grammar (RFC 3261 §25.1): tokens, quoted strings, line folding,
//! comma lists that respect quotes and `<>`, and `;name=value` parameter lists.
//!
//! They are shared by the header parsers, the URI parser and the auth-param grammar of [`crate::auth`].

use std::borrow::Cow;

/// `token` characters of RFC 3261 §25.1.
pub fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

/// True when `s` is a non-empty RFC 3261 `token`.
pub fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_char)
}

/// Replaces each line fold (CRLF followed by spaces or tabs) with one space (RFC 3261 §7.3.1).
pub fn unfold(s: &str) -> Cow<'_, str> {
    if !s.contains('\n') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('\n') {
        out.push_str(rest[..pos].trim_end_matches('\r').trim_end_matches([' ', '\t']));
        rest = rest[pos + 1..].trim_start_matches([' ', '\t']);
        out.push(' ');
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// Splits `s` at every `sep` found outside quoted strings and `<...>`.
///
/// Fails when a quoted string or an angle bracket is left open, which is how a message like
/// RFC 4475 "quotbal" is refused.
pub fn split_top(s: &str, sep: u8) -> Result<Vec<&str>, &'static str> {
    let bytes = s.as_bytes();
    let (mut parts, mut start, mut i) = (Vec::new(), 0, 0);
    let mut in_angle = false;
    while i < bytes.len() {
        match bytes[i] {
            b'"' if !in_angle => i = skip_quoted(bytes, i)?,
            b'<' if !in_angle => in_angle = true,
            b'>' if in_angle => in_angle = false,
            b if b == sep && !in_angle => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if in_angle {
        return Err("unbalanced '<'");
    }
    parts.push(&s[start..]);
    Ok(parts)
}

/// Given `bytes[open] == b'"'`, returns the index of the closing quote.
fn skip_quoted(bytes: &[u8], open: usize) -> Result<usize, &'static str> {
    let mut i = open + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return Ok(i),
            _ => i += 1,
        }
    }
    Err("unterminated quoted string")
}

/// Reads the quoted string that starts `s` and returns its decoded text (quoted-pairs
/// unescaped) and the rest of `s` after the closing quote.
pub fn parse_quoted(s: &str) -> Result<(String, &str), &'static str> {
    if !s.starts_with('"') {
        return Err("expected a quoted string");
    }
    let end = skip_quoted(s.as_bytes(), 0)?;
    let inner = &s[1..end];
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.push(chars.next().ok_or("dangling escape in quoted string")?);
        } else {
            out.push(c);
        }
    }
    Ok((out, &s[end + 1..]))
}

/// Writes `s` as a quoted string, escaping `"` and `\`.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Removes the surrounding quotes of a parameter value and decodes its escapes; a token value is returned as is.
pub fn unquote(v: &str) -> Cow<'_, str> {
    match parse_quoted(v) {
        Ok((s, rest)) if rest.trim().is_empty() => Cow::Owned(s),
        _ => Cow::Borrowed(v),
    }
}

/// A `;name[=value]` parameter list as written (names and values are kept raw, quotes included).
///
/// ```
/// let p = sipprov_sip::text::Params::parse(";tag=1; reboot = true;lr").unwrap();
/// assert_eq!(p.get("REBOOT"), Some(Some("true")));
/// assert_eq!(p.get("lr"), Some(None));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(pub Vec<(String, Option<String>)>);

impl Params {
    /// Parses `;a=b;c` (the text must be empty or start with `;`). Empty parameters (`;;`) are refused.
    pub fn parse(s: &str) -> Result<Params, &'static str> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(Params::default());
        }
        let parts = split_top(s, b';')?;
        if !parts.first().is_some_and(|p| p.trim().is_empty()) {
            return Err("parameters must start with ';'");
        }
        let mut out = Vec::with_capacity(parts.len() - 1);
        for part in &parts[1..] {
            out.push(parse_param(part)?);
        }
        Ok(Params(out))
    }

    /// The value of the first parameter called `name` (case-insensitive); `Some(None)` for a flag.
    pub fn get(&self, name: &str) -> Option<Option<&str>> {
        self.0.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_deref())
    }

    /// The value of `name` with quotes removed and escapes decoded.
    pub fn get_unquoted(&self, name: &str) -> Option<String> {
        self.get(name).flatten().map(|v| unquote(v).into_owned())
    }

    /// True when a parameter called `name` is present, with or without a value.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Sets (replaces or appends) a parameter.
    pub fn set(&mut self, name: &str, value: Option<&str>) {
        let value = value.map(str::to_owned);
        match self.0.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
            Some(slot) => slot.1 = value,
            None => self.0.push((name.to_owned(), value)),
        }
    }
}

impl std::fmt::Display for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (name, value) in &self.0 {
            match value {
                Some(v) => write!(f, ";{name}={v}")?,
                None => write!(f, ";{name}")?,
            }
        }
        Ok(())
    }
}

fn parse_param(part: &str) -> Result<(String, Option<String>), &'static str> {
    let (name, value) = match part.split_once('=') {
        Some((n, v)) if !n.contains('"') => (n.trim(), Some(v.trim())),
        _ => (part.trim(), None),
    };
    if !is_token(name) {
        return Err("bad parameter name");
    }
    match value {
        None => Ok((name.to_owned(), None)),
        Some(v) if v.starts_with('"') => {
            let (_, rest) = parse_quoted(v)?;
            if !rest.trim().is_empty() {
                return Err("text after a quoted parameter value");
            }
            Ok((name.to_owned(), Some(v.to_owned())))
        }
        // gen-value = token / host / quoted-string; a host may be an IPv6 reference.
        Some(v) if !v.is_empty() && v.bytes().all(|b| is_token_char(b) || b"[]:".contains(&b)) => {
            Ok((name.to_owned(), Some(v.to_owned())))
        }
        Some(_) => Err("bad parameter value"),
    }
}

/// Decodes `%XX` escapes into bytes; fails on a malformed escape.
pub fn percent_decode(s: &str) -> Result<Vec<u8>, &'static str> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3).ok_or("truncated %-escape")?;
            let hex = std::str::from_utf8(hex).map_err(|_| "bad %-escape")?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| "bad %-escape")?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_respects_quotes_and_brackets() {
        let v = split_top(r#""a,\"b" <sip:x;a=1,2>, <sip:y>"#, b',').unwrap();
        assert_eq!(v.len(), 2);
        assert!(split_top(r#""open"#, b',').is_err());
    }

    #[test]
    fn unfold_joins_lines() {
        assert_eq!(unfold("a\r\n  b\r\n\tc"), "a b c");
    }

    #[test]
    fn quoted_roundtrip() {
        let q = quote(r#"Yealink "T46U" \ Phone"#);
        assert_eq!(parse_quoted(&q).unwrap().0, r#"Yealink "T46U" \ Phone"#);
    }

    #[test]
    fn params_refuse_empty() {
        assert!(Params::parse(";;").is_err());
        assert!(Params::parse(";a=\"x;y\"").is_ok());
    }
}
