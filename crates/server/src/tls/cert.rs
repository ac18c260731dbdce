//! The device MAC a client certificate names.
//!
//! Vendors put it in different places (each vendor's certificate guide): Polycom and Snom in the
//! subject CN, Cisco in `S=`/ST (`OU=CP-8841-3PCC, L=<serial>, S=000e08abcdef`), others in a
//! subjectAltName. So the CN, the ST and the DNS/URI/e-mail SANs are searched for a 12-hex-digit
//! MAC in any usual spelling. Other fields are skipped on purpose: Cisco's `L=` serial number is
//! also 12 hex digits and would be taken for a MAC.
//!
//! The certificate has already been verified by rustls; this is a small bounds-checked DER walk
//! (no crate needed for three fields), and anything it does not understand yields no MAC.

use sipprov_model::Mac;

const OID_CN: &[u8] = &[0x55, 0x04, 0x03];
const OID_ST: &[u8] = &[0x55, 0x04, 0x08];
const OID_SAN: &[u8] = &[0x55, 0x1d, 0x11];

/// The MACs a DER certificate names, in CN, ST, SAN order, without duplicates.
pub fn macs_in_certificate(der: &[u8]) -> Vec<Mac> {
    let mut texts = Vec::new();
    let _ = collect(der, &mut texts);
    let mut out = Vec::new();
    for t in texts {
        for mac in macs_in_text(&t) {
            if !out.contains(&mac) {
                out.push(mac);
            }
        }
    }
    out
}

/// Reads one TLV: tag, content, rest.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        rest = &rest[n..];
        len
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

fn collect(der: &[u8], texts: &mut Vec<String>) -> Option<()> {
    let (_, cert, _) = tlv(der)?;
    let (_, mut tbs, _) = tlv(cert)?;
    let mut field = 0;
    let mut subject = None;
    let mut extensions = None;
    while !tbs.is_empty() {
        let (tag, content, rest) = tlv(tbs)?;
        tbs = rest;
        match tag {
            0xa0 => continue, // [0] version: not counted among the positional fields
            0xa3 => extensions = Some(content),
            _ => {
                // serial, signature, issuer, validity, subject, spki
                if field == 4 {
                    subject = Some(content);
                }
                field += 1;
            }
        }
    }
    let (mut cn, mut st) = (Vec::new(), Vec::new());
    let mut rdns = subject?;
    while !rdns.is_empty() {
        let (_, mut set, rest) = tlv(rdns)?;
        rdns = rest;
        while !set.is_empty() {
            let (_, atv, rest) = tlv(set)?;
            set = rest;
            let (_, oid, value) = tlv(atv)?;
            let (_, value, _) = tlv(value)?;
            let text = String::from_utf8_lossy(value).into_owned();
            if oid == OID_CN {
                cn.push(text);
            } else if oid == OID_ST {
                st.push(text);
            }
        }
    }
    texts.extend(cn);
    texts.extend(st);
    if let Some(ext) = extensions {
        let (_, mut list, _) = tlv(ext)?;
        while !list.is_empty() {
            let (_, one, rest) = tlv(list)?;
            list = rest;
            let (_, oid, mut body) = tlv(one)?;
            if oid != OID_SAN {
                continue;
            }
            // An optional critical flag (BOOLEAN) comes before the OCTET STRING holding the SAN.
            let mut value = None;
            while !body.is_empty() {
                let (tag, content, rest) = tlv(body)?;
                body = rest;
                if tag == 0x04 {
                    value = Some(content);
                }
            }
            let Some(value) = value else { continue };
            let (_, mut names, _) = tlv(value)?;
            while !names.is_empty() {
                let (tag, name, rest) = tlv(names)?;
                names = rest;
                // [1] rfc822Name, [2] dNSName, [6] URI
                if matches!(tag, 0x81 | 0x82 | 0x86) {
                    texts.push(String::from_utf8_lossy(name).into_owned());
                }
            }
        }
    }
    Some(())
}

/// MACs in free text: runs of hex digits and separators that make 12 hex digits, whole
/// (`00:15:65:aa:bb:cc`, `SEP001565AABBCC`) or between dots (`yealink.001565aabbcc.example`).
pub fn macs_in_text(text: &str) -> Vec<Mac> {
    let is_sep = |c: char| matches!(c, ':' | '-' | '.');
    let mut out = Vec::new();
    for run in text.split(|c: char| !(c.is_ascii_hexdigit() || is_sep(c))) {
        let whole: String = run.chars().filter(char::is_ascii_hexdigit).collect();
        let candidates = std::iter::once(whole.as_str()).chain(run.split(is_sep));
        for c in candidates {
            if c.len() == 12 && c.chars().all(|ch| ch.is_ascii_hexdigit()) {
                if let Ok(mac) = c.parse::<Mac>() {
                    if !out.contains(&mac) {
                        out.push(mac);
                    }
                    break;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::macs_in_text;

    #[test]
    fn mac_spellings_in_subject_text() {
        let one = |t: &str| macs_in_text(t).iter().map(|m| m.to_string()).collect::<Vec<_>>();
        assert_eq!(one("001565AABBCC"), ["001565aabbcc"]);
        assert_eq!(one("SEP001565AABBCC"), ["001565aabbcc"]);
        assert_eq!(one("00:15:65:aa:bb:cc"), ["001565aabbcc"]);
        assert_eq!(one("yealink.001565aabbcc.example.com"), ["001565aabbcc"]);
        assert!(one("CP-8841-3PCC").is_empty());
        assert!(one("phone 1234").is_empty());
    }
}
