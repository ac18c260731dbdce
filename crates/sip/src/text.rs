//! Lexical helpers of the SIP grammar (RFC 3261 §25.1): tokens, quoted strings, line folding,
//! comma lists that respect quotes and `<>`, and `;name=value` parameter lists.
//!
//! They are shared by the header parsers, the URI parser and the auth-param grammar of [`crate::auth`].
//! Each rule exists once, as a borrowing form that allocates nothing ([`split_top_iter`],
//! [`quoted_span`], [`iter_params`], [`ParamsRef`]), so that checking a received message costs no
//! allocation; the owned forms ([`split_top`], [`parse_quoted`], [`Params`]) are built on them.

use std::borrow::Cow;
use std::net::IpAddr;

use memchr::{memchr, memchr2, memchr3};

/// `token` characters of RFC 3261 §25.1.
pub fn is_token_char(b: u8) -> bool {
    // One load per byte: every header name and parameter of a received message passes here.
    TOKEN_CHARS[usize::from(b)]
}

const TOKEN_CHARS: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric()
            || matches!(c, b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~');
        b += 1;
    }
    table
};

/// Where the ASCII byte `b` first occurs in `s`. A plain loop: on the short strings of a
/// header it costs a fraction of `str::find`, whose searcher is built for long haystacks.
/// Slicing at the result is always on a character boundary.
pub(crate) fn find_byte(s: &str, b: u8) -> Option<usize> {
    debug_assert!(b.is_ascii());
    s.bytes().position(|c| c == b)
}

/// `s.split_once(b)` for an ASCII byte, by [`find_byte`].
pub(crate) fn split_at_byte(s: &str, b: u8) -> Option<(&str, &str)> {
    find_byte(s, b).map(|i| (&s[..i], &s[i + 1..]))
}

/// True when `s` is a non-empty RFC 3261 `token`.
pub fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_char)
}

/// `s.trim()`, which every header value and parameter list read goes through: the ASCII whitespace `str::trim`
/// removes is cut byte by byte, and `str::trim` itself, which decodes chars, only runs when a
/// non-ASCII byte is left at either end (where other Unicode whitespace might be).
pub(crate) fn trim(s: &str) -> &str {
    // `char::is_whitespace` below 0x80: HT, LF, VT, FF, CR and SP.
    let ws = |b: &u8| matches!(b, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ');
    let bytes = s.as_bytes();
    let start = bytes.iter().position(|b| !ws(b)).unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|b| !ws(b)).map_or(start, |i| i + 1);
    match s.get(start..end) {
        Some(t) if t.as_bytes().first().is_none_or(u8::is_ascii) && t.as_bytes().last().is_none_or(u8::is_ascii) => t,
        _ => s.trim(),
    }
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
/// RFC 4475 "quotbal" is refused. This collects [`split_top_iter`].
pub fn split_top(s: &str, sep: u8) -> Result<Vec<&str>, &'static str> {
    split_top_iter(s, sep).collect()
}

/// Splits `s` like [`split_top`], one part at a time and without allocating.
///
/// Yields the parts in order; where [`split_top`] fails, yields that error, and nothing after it.
///
/// ```
/// use sipprov_sip::text::split_top_iter;
/// let parts: Vec<_> = split_top_iter(r#""a,b" <sip:x;y,z>, c"#, b',').collect();
/// assert_eq!(parts, [Ok(r#""a,b" <sip:x;y,z>"#), Ok(" c")]);
/// assert_eq!(split_top_iter("a, <b", b',').last(), Some(Err("unbalanced '<'")));
/// ```
pub fn split_top_iter(s: &str, sep: u8) -> SplitTop<'_> {
    SplitTop { s, sep, next: Some(0) }
}

/// The iterator of [`split_top_iter`].
#[derive(Debug, Clone)]
pub struct SplitTop<'a> {
    s: &'a str,
    sep: u8,
    /// Where the next part starts; `None` once the last part or an error was yielded.
    next: Option<usize>,
}

impl SplitTop<'_> {
    /// Ends the iteration because a part failed to parse with `err`, and returns the error to
    /// report. [`split_top`] checks the whole text before any part is parsed, so an unclosed
    /// quote or `<` further on wins over `err` (wrapped by `split_err`): parsing part by part
    /// reports exactly what splitting first did. Only failures pay for this extra scan.
    pub fn fail<E>(&mut self, err: E, split_err: impl FnOnce(&'static str) -> E) -> E {
        let later = self.clone().find_map(Result::err);
        self.next = None;
        later.map_or(err, split_err)
    }
}

impl<'a> Iterator for SplitTop<'a> {
    type Item = Result<&'a str, &'static str>;

    fn next(&mut self) -> Option<Self::Item> {
        let start = self.next.take()?;
        let bytes = self.s.as_bytes();
        let mut i = start;
        // Jumps from one byte that matters to the next: outside `<>` a quote, a '<' or `sep`;
        // inside, only the closing '>' (quotes and separators there are part of the URI).
        while let Some(found) = memchr3(b'"', b'<', self.sep, &bytes[i..]) {
            let at = i + found;
            match bytes[at] {
                b'"' => match skip_quoted(bytes, at) {
                    Ok(close) => i = close + 1,
                    Err(e) => return Some(Err(e)),
                },
                b'<' => match memchr(b'>', &bytes[at + 1..]) {
                    Some(close) => i = at + 1 + close + 1,
                    None => return Some(Err("unbalanced '<'")),
                },
                _ => {
                    self.next = Some(at + 1);
                    return Some(Ok(&self.s[start..at]));
                }
            }
        }
        Some(Ok(&self.s[start..]))
    }
}

/// Given `bytes[open] == b'"'`, returns the index of the closing quote.
fn skip_quoted(bytes: &[u8], open: usize) -> Result<usize, &'static str> {
    let mut i = open + 1;
    while let Some(found) = memchr2(b'\\', b'"', bytes.get(i..).unwrap_or_default()) {
        let at = i + found;
        if bytes[at] == b'"' {
            return Ok(at);
        }
        // A quoted-pair: the escaped byte is skipped, whatever it is.
        i = at + 2;
    }
    Err("unterminated quoted string")
}

/// Finds the quoted string that starts `s`, without decoding it: returns the text between
/// the quotes (quoted-pairs still escaped, see [`unescape`]) and the rest of `s` after the
/// closing quote.
///
/// ```
/// let (inner, rest) = sipprov_sip::text::quoted_span(r#""a \"b\"" <sip:x>"#).unwrap();
/// assert_eq!((inner, rest), (r#"a \"b\""#, " <sip:x>"));
/// ```
pub fn quoted_span(s: &str) -> Result<(&str, &str), &'static str> {
    if !s.starts_with('"') {
        return Err("expected a quoted string");
    }
    let end = skip_quoted(s.as_bytes(), 0)?;
    Ok((&s[1..end], &s[end + 1..]))
}

/// Decodes the quoted-pairs (`\"`, `\\`, ...) of the text inside a quoted string as returned by
/// [`quoted_span`]; borrowed when there is none.
pub fn unescape(inner: &str) -> Cow<'_, str> {
    if !inner.contains('\\') {
        return Cow::Borrowed(inner);
    }
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            // A backslash is never last in text from quoted_span (it would have escaped the
            // closing quote); elsewhere a lone final one is dropped.
            out.extend(chars.next());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Reads the quoted string that starts `s` and returns its decoded text (quoted-pairs
/// unescaped) and the rest of `s` after the closing quote.
pub fn parse_quoted(s: &str) -> Result<(String, &str), &'static str> {
    let (inner, rest) = quoted_span(s)?;
    Ok((unescape(inner).into_owned(), rest))
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
    match quoted_span(v) {
        Ok((inner, rest)) if rest.trim().is_empty() => unescape(inner),
        _ => Cow::Borrowed(v),
    }
}

/// Reads a `;name[=value]` parameter list one parameter at a time, without allocating: the
/// grammar behind [`Params::parse`] and [`ParamsRef::parse`].
///
/// Yields `(name, value)` as written (quotes kept, outer whitespace trimmed), or the error
/// [`Params::parse`] reports, and nothing after it.
///
/// ```
/// use sipprov_sip::text::iter_params;
/// let p: Vec<_> = iter_params(r#";tag=1; q = "a;b" ;lr"#).collect();
/// assert_eq!(p, [Ok(("tag", Some("1"))), Ok(("q", Some(r#""a;b""#))), Ok(("lr", None))]);
/// assert_eq!(iter_params("tag=1").next(), Some(Err("parameters must start with ';'")));
/// ```
pub fn iter_params(s: &str) -> ParamIter<'_> {
    let s = trim(s);
    let mut parts = split_top_iter(s, b';');
    if s.is_empty() {
        parts.next = None;
    }
    ParamIter { parts, started: false }
}

/// The iterator of [`iter_params`].
#[derive(Debug, Clone)]
pub struct ParamIter<'a> {
    parts: SplitTop<'a>,
    /// Whether the text before the first ';' (which must be empty) was checked.
    started: bool,
}

impl<'a> Iterator for ParamIter<'a> {
    type Item = Result<(&'a str, Option<&'a str>), &'static str>;

    fn next(&mut self) -> Option<Self::Item> {
        if !self.started {
            self.started = true;
            match self.parts.next()? {
                Ok(first) if first.trim_ascii().is_empty() => {}
                Ok(_) => return Some(Err(self.parts.fail("parameters must start with ';'", |e| e))),
                Err(e) => return Some(Err(e)),
            }
        }
        Some(match self.parts.next()? {
            Ok(part) => parse_param(part).map_err(|e| self.parts.fail(e, |e| e)),
            Err(e) => Err(e),
        })
    }
}

fn parse_param(part: &str) -> Result<(&str, Option<&str>), &'static str> {
    let (name, value) = match split_at_byte(part, b'=') {
        Some((n, v)) if find_byte(n, b'"').is_none() => (n.trim_ascii(), Some(v.trim_ascii())),
        _ => (part.trim_ascii(), None),
    };
    if !is_token(name) {
        return Err("bad parameter name");
    }
    match value {
        None => Ok((name, None)),
        Some(v) if v.starts_with('"') => {
            let (_, rest) = quoted_span(v)?;
            if !rest.trim_ascii().is_empty() {
                return Err("text after a quoted parameter value");
            }
            Ok((name, Some(v)))
        }
        // gen-value = token / host / quoted-string; a host may be an IPv6 reference.
        Some(v) if !v.is_empty() && v.bytes().all(|b| is_token_char(b) || matches!(b, b'[' | b']' | b':')) => {
            Ok((name, Some(v)))
        }
        Some(_) => Err("bad parameter value"),
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
        iter_params(s).map(|p| p.map(owned_param)).collect::<Result<_, _>>().map(Params)
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

    /// Removes every parameter of that name (case-insensitively).
    pub fn remove(&mut self, name: &str) {
        self.0.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
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

fn owned_param((name, value): (&str, Option<&str>)) -> (String, Option<String>) {
    (name.to_owned(), value.map(str::to_owned))
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

/// The parameter lists a received message nearly always has (`;tag=1a2b`, `;branch=z9hG4bK..;rport`),
/// checked in one pass over their bytes: true, each parameter given to `each` in order, when `s`
/// is empty or is `;name[=value]` parameters written with token characters only (values also
/// `[`, `]` and `:`), no whitespace, quote or `<` anywhere. Such a list is exactly one
/// [`iter_params`] accepts, with the same names and values. Anything else is false (and `each`
/// may have seen a prefix): the caller then runs the general grammar, which accepts or refuses
/// it with the error it always gave. The general path, one `memchr3` and a trim, split and
/// token check per parameter, cost about 1,000 instructions for a From's `;tag`.
fn plain_params<'a>(s: &'a str, mut each: impl FnMut(&'a str, Option<&'a str>)) -> bool {
    let bytes = s.as_bytes();
    if bytes.is_empty() {
        return true;
    }
    if bytes[0] != b';' {
        return false;
    }
    let mut at = 1;
    loop {
        // A name: one or more token characters.
        let name_start = at;
        while at < bytes.len() && is_token_char(bytes[at]) {
            at += 1;
        }
        if at == name_start {
            return false;
        }
        let name = &s[name_start..at];
        let mut value = None;
        if bytes.get(at) == Some(&b'=') {
            at += 1;
            let value_start = at;
            while at < bytes.len() && (is_token_char(bytes[at]) || matches!(bytes[at], b'[' | b']' | b':')) {
                at += 1;
            }
            if at == value_start {
                return false;
            }
            value = Some(&s[value_start..at]);
        }
        each(name, value);
        match bytes.get(at) {
            None => return true,
            Some(b';') => at += 1,
            Some(_) => return false,
        }
    }
}

/// A parameter list borrowed from the text it was checked in: [`Params`] without allocating.
///
/// Only [`ParamsRef::parse`] makes one, so its text is known to be well formed.
///
/// ```
/// use sipprov_sip::text::{Params, ParamsRef};
/// let p = ParamsRef::parse(";branch=z9hG4bK1;rport").unwrap();
/// assert_eq!(p.get("BRANCH"), Some(Some("z9hG4bK1")));
/// assert_eq!(Params::from(p), Params::parse(";branch=z9hG4bK1;rport").unwrap());
/// assert!(ParamsRef::parse(";;").is_err());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ParamsRef<'a>(&'a str);

impl<'a> ParamsRef<'a> {
    /// Checks `;a=b;c` exactly as [`Params::parse`] does.
    pub fn parse(s: &'a str) -> Result<ParamsRef<'a>, &'static str> {
        if !plain_params(s, |_, _| {}) {
            iter_params(s).try_for_each(|p| p.map(drop))?;
        }
        Ok(ParamsRef(s))
    }

    /// [`ParamsRef::parse`], and the value [`ParamsRef::get`] would give for `name`, found in
    /// the same pass: a Via's branch is read this way, once, as its parameters are checked.
    pub(crate) fn parse_finding(
        s: &'a str,
        name: &str,
    ) -> Result<(ParamsRef<'a>, Option<Option<&'a str>>), &'static str> {
        let mut found = None;
        let mut note = |n: &'a str, v| {
            if found.is_none() && n.eq_ignore_ascii_case(name) {
                found = Some(v);
            }
        };
        if plain_params(s, &mut note) {
            return Ok((ParamsRef(s), found));
        }
        found = None;
        for param in iter_params(s) {
            let (n, v) = param?;
            if found.is_none() && n.eq_ignore_ascii_case(name) {
                found = Some(v);
            }
        }
        Ok((ParamsRef(s), found))
    }

    /// The parameters in order, as written.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, Option<&'a str>)> + 'a {
        // The text was checked by `parse`, so no error can end this early.
        iter_params(self.0).map_while(Result::ok)
    }

    /// The value of the first parameter called `name` (case-insensitive); `Some(None)` for a flag.
    pub fn get(&self, name: &str) -> Option<Option<&'a str>> {
        self.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v)
    }

    /// The parameter text as given to [`ParamsRef::parse`].
    pub fn as_str(&self) -> &'a str {
        self.0
    }
}

impl From<ParamsRef<'_>> for Params {
    fn from(p: ParamsRef<'_>) -> Params {
        Params(p.iter().map(owned_param).collect())
    }
}

/// Decodes `%XX` escapes into bytes; fails on a malformed escape.
pub fn percent_decode(s: &str) -> Result<Vec<u8>, &'static str> {
    percent_bytes(s).collect()
}

/// Checks the `%XX` escapes of `s` as [`percent_decode`] does, without decoding into a buffer.
///
/// Every URI of every received message is checked here, so it jumps from one '%' to the next
/// instead of walking the bytes one by one; what it accepts is exactly what [`percent_decode`]
/// decodes: RFC 3261 §25.1's `escaped = "%" HEXDIG HEXDIG`, nothing else.
pub(crate) fn check_percent(s: &str) -> Result<(), &'static str> {
    let b = s.as_bytes();
    let mut from = 0;
    while let Some(found) = b.get(from..).and_then(|rest| memchr(b'%', rest)) {
        let at = from + found;
        match b.get(at + 1..at + 3) {
            None => return Err("truncated %-escape"),
            Some([high, low]) if high.is_ascii_hexdigit() && low.is_ascii_hexdigit() => {}
            Some(_) => return Err("bad %-escape"),
        }
        from = at + 3;
    }
    Ok(())
}

/// The bytes `s` stands for, one at a time: the `%XX` grammar of [`percent_decode`] and
/// [`check_percent`]. The caller stops at the first error.
fn percent_bytes(s: &str) -> impl Iterator<Item = Result<u8, &'static str>> + '_ {
    let b = s.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        let at = i;
        let c = *b.get(at)?;
        if c != b'%' {
            i += 1;
            return Some(Ok(c));
        }
        i += 3;
        let decode = || {
            // Two HEXDIGs (RFC 3261 §25.1), read by hand: `u8::from_str_radix` would also take
            // a leading '+' ("%+f").
            let Some(&[high, low]) = b.get(at + 1..at + 3) else { return Err("truncated %-escape") };
            // A hex digit's value is below 16, so the cast keeps it whole.
            let digit = |c: u8| char::from(c).to_digit(16).map(|d| d as u8).ok_or("bad %-escape");
            Ok((digit(high)? << 4) | digit(low)?)
        };
        Some(decode())
    })
}

/// Appends `n` in decimal. The requests a campaign sends are written with these `push_*`
/// helpers rather than `format!`, whose machinery costs more than the rest of the request.
///
/// ```
/// let mut s = String::from("CSeq: ");
/// sipprov_sip::text::push_decimal(&mut s, 4_294_967_295);
/// assert_eq!(s, "CSeq: 4294967295");
/// ```
pub fn push_decimal(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    push_ascii(out, &digits[at..]);
}

/// Appends bytes known to be ASCII digits in one copy.
fn push_ascii(out: &mut String, ascii: &[u8]) {
    out.push_str(std::str::from_utf8(ascii).unwrap_or_default());
}

/// Appends `n` in lower-case hexadecimal, zero-padded to `width` digits (at most 16).
///
/// ```
/// let mut s = String::new();
/// sipprov_sip::text::push_hex(&mut s, 0xbeef, 8);
/// sipprov_sip::text::push_hex(&mut s, 0x1f, 0);
/// assert_eq!(s, "0000beef1f");
/// ```
pub fn push_hex(out: &mut String, n: u64, width: usize) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let significant = (16 - n.leading_zeros() as usize / 4).max(1);
    let len = significant.max(width.min(16));
    let mut digits = [0u8; 16];
    for (i, digit) in digits[..len].iter_mut().rev().enumerate() {
        *digit = DIGITS[((n >> (i * 4)) & 0xf) as usize];
    }
    push_ascii(out, &digits[..len]);
}

/// Every octet's decimal digits followed by a dot, and how many bytes of the four that is.
const OCTETS: [([u8; 4], usize); 256] = {
    let mut table = [([0u8; 4], 0usize); 256];
    let mut octet = 0;
    while octet < 256 {
        let (hundreds, tens, ones) = ((octet / 100) as u8, (octet / 10 % 10) as u8, (octet % 10) as u8);
        table[octet] = if octet >= 100 {
            ([b'0' + hundreds, b'0' + tens, b'0' + ones, b'.'], 4)
        } else if octet >= 10 {
            ([b'0' + tens, b'0' + ones, b'.', 0], 3)
        } else {
            ([b'0' + ones, b'.', 0, 0], 2)
        };
        octet += 1;
    }
    table
};

/// Appends an IP address as a SIP host: dotted IPv4, or an IPv6 reference in brackets
/// (RFC 3261 §25.1), as [`crate::uri::Host`] displays it.
///
/// ```
/// let mut s = String::new();
/// sipprov_sip::text::push_ip(&mut s, "192.0.2.7".parse().unwrap());
/// s.push(' ');
/// sipprov_sip::text::push_ip(&mut s, "2001:db8::1".parse().unwrap());
/// assert_eq!(s, "192.0.2.7 [2001:db8::1]");
/// ```
pub fn push_ip(out: &mut String, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            // Each octet's digits and a dot, four bytes copied at once, the next octet's
            // overwriting what is past the dot: a NOTIFY writes our address six times (Via,
            // Contact, From, the outcome's `sent_to`...), and working out each digit of each
            // octet cost about 220 instructions an address (callgrind, bench/sip-instructions.sh).
            let mut text = [0u8; 16];
            let mut len = 0;
            for octet in v4.octets() {
                let (digits, n) = OCTETS[usize::from(octet)];
                // `len` is at most 12 here (three octets of three digits and a dot).
                text[len..len + 4].copy_from_slice(&digits);
                len += n;
            }
            // Without the last octet's dot.
            push_ascii(out, &text[..len - 1]);
        }
        // Rare on the hot path, and the shortest form (RFC 5952) is std's to get right.
        IpAddr::V6(v6) => {
            use std::fmt::Write;
            let _ = write!(out, "[{v6}]");
        }
    }
}

/// Every string of 1 to `max_len` bytes over `alphabet`, for tests that hold a hand-written
/// reader to the general one it replaced on all the inputs that matter.
#[cfg(test)]
pub(crate) fn every_string(alphabet: &[u8], max_len: u32) -> Vec<String> {
    let mut out = Vec::new();
    for len in 1..=max_len {
        for mut n in 0..alphabet.len().pow(len) {
            let mut s = String::new();
            for _ in 0..len {
                s.push(char::from(alphabet[n % alphabet.len()]));
                n /= alphabet.len();
            }
            out.push(s);
        }
    }
    out
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
    fn lazy_split_reports_what_split_top_reports() {
        // The part before the unclosed quote is bad too, but splitting comes first.
        let mut parts = split_top_iter(r#"bad, "open"#, b',');
        let first = parts.next().unwrap().unwrap();
        assert_eq!(parts.fail(format!("bad part '{first}'"), str::to_owned), "unterminated quoted string");
        assert_eq!(parts.next(), None);
        assert_eq!(Params::parse("x;a=\"b"), Err("unterminated quoted string"));
        assert_eq!(Params::parse(";a b;c=\"d"), Err("unterminated quoted string"));
        assert_eq!(Params::parse(";a b;c=d"), Err("bad parameter name"));
    }

    #[test]
    fn trim_is_str_trim() {
        let pieces =
            ["", " ", "\t", "\x0b", "\x0c", "\r\n", "a", "a b", "\u{a0}", "\u{3000}", "\u{85}", "é", "\u{2028}x"];
        for a in pieces {
            for b in pieces {
                for c in pieces {
                    let s = format!("{a}{b}{c}{a}");
                    assert_eq!(trim(&s), s.trim(), "{s:?}");
                }
            }
        }
    }

    #[test]
    fn unfold_joins_lines() {
        assert_eq!(unfold("a\r\n  b\r\n\tc"), "a b c");
    }

    #[test]
    fn quoted_roundtrip() {
        let q = quote(r#"Yealink "T46U" \ Phone"#);
        assert_eq!(parse_quoted(&q).unwrap().0, r#"Yealink "T46U" \ Phone"#);
        assert!(matches!(unquote("\"plain\""), Cow::Borrowed("plain")));
    }

    /// Every string of up to five bytes of the characters that matter to a parameter list: the
    /// one-pass check accepts only what the general grammar accepts, with the same parameters.
    #[test]
    fn plain_params_are_what_the_grammar_reads() {
        let alphabet = b";=a:[ \t\"<>,-";
        let n = alphabet.len();
        let mut text = Vec::new();
        for len in 0..=5u32 {
            for mut k in 0..n.pow(len) {
                text.clear();
                for _ in 0..len {
                    text.push(alphabet[k % n]);
                    k /= n;
                }
                let s = std::str::from_utf8(&text).unwrap();
                let mut seen = Vec::new();
                if plain_params(s, |name, value| seen.push((name, value))) {
                    let general: Result<Vec<_>, _> = iter_params(s).collect();
                    assert_eq!(general, Ok(seen), "{s:?}");
                }
                let general = iter_params(s).try_for_each(|p| p.map(drop)).map(|()| ParamsRef(s));
                assert_eq!(ParamsRef::parse(s), general, "{s:?}");
                let finding = ParamsRef::parse_finding(s, "A");
                let expected = general.map(|p| (p, p.get("A")));
                assert_eq!(finding, expected, "{s:?}");
            }
        }
    }

    #[test]
    fn params_refuse_empty() {
        assert!(Params::parse(";;").is_err());
        assert!(Params::parse(";a=\"x;y\"").is_ok());
        assert_eq!(Params::parse("  "), Ok(Params::default()));
    }

    #[test]
    fn checking_escapes_agrees_with_decoding_them() {
        let alphabet = [b'%', b'a', b'F', b'0', b'9', b'g', b'+', b'-', b'z'];
        // Every string of up to five bytes over an alphabet of the bytes that matter.
        let mut cases = vec![String::new()];
        cases.extend(every_string(&alphabet, 5));
        cases.extend(["%\u{e9}1".to_owned(), "a%\u{e9}".to_owned(), "%1\u{e9}".to_owned()]);
        for s in &cases {
            assert_eq!(check_percent(s), percent_decode(s).map(drop), "{s:?}");
        }
    }

    #[test]
    fn percent_escapes() {
        assert_eq!(percent_decode("a%3Ab").unwrap(), b"a:b");
        assert_eq!(percent_decode("%ff%0a").unwrap(), [0xff, 0x0a]);
        // RFC 3261 §25.1: `escaped = "%" HEXDIG HEXDIG`; a sign is not a digit.
        for bad in ["%", "%4", "%zz", "a%g1", "%+f", "%-f", "%f+", "sip:%+41@example.com"] {
            assert!(percent_decode(bad).is_err() && check_percent(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pushes_write_what_format_writes() {
        let numbers = [0u64, 1, 9, 10, 255, 256, 65_535, 1 << 32, u64::MAX - 1, u64::MAX];
        for n in numbers.into_iter().chain((0..2000).map(|_| rand::random::<u64>() >> (rand::random::<u8>() % 64))) {
            let mut s = String::new();
            push_decimal(&mut s, n);
            assert_eq!(s, n.to_string());
            for width in [0, 1, 8, 16] {
                let mut s = String::new();
                push_hex(&mut s, n, width);
                assert_eq!(s, format!("{n:0width$x}"));
            }
        }
        // Every octet in every place.
        let v4 = (0..=255u8).flat_map(|o| {
            [[o, 0, 0, 0], [0, o, 0, 0], [9, 99, o, 100], [255, 10, 1, o], [o, o, o, o]]
                .map(|b| std::net::Ipv4Addr::from(b).to_string())
        });
        let named = ["0.0.0.0", "127.0.0.1", "255.255.255.255", "10.20.3.40", "::1", "2001:db8::7", "::ffff:192.0.2.1"];
        for ip in named.into_iter().map(String::from).chain(v4) {
            let ip: IpAddr = ip.parse().unwrap();
            let mut s = String::new();
            push_ip(&mut s, ip);
            assert_eq!(s, crate::uri::Host::from(ip).to_string());
        }
    }
}
