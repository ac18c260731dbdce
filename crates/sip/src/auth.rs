//! Digest access authentication (RFC 2617, RFC 7616, RFC 8760): the auth-param grammar of
//! challenges and credentials, the response computation for MD5, SHA-256 and SHA-512/256 (and
//! their `-sess` variants, with `qop=auth`, `qop=auth-int` or the legacy no-qop form), and the
//! choice of the strongest challenge.
//!
//! Nothing here is SIP-specific: the same code serves HTTP Digest (method + request-target).
//!
//! ```
//! use sipprov_sip::auth::{parse_challenges, authorize, DigestRequest};
//! let ch = parse_challenges(r#"Digest realm="PolycomSPIP", nonce="abc123", qop="auth""#).unwrap();
//! let req = DigestRequest { username: "100", password: "secret", method: "NOTIFY",
//!     uri: "sip:100@192.168.1.50:5060", body: b"", cnonce: "0a4f113b", nc: 1 };
//! let header = authorize(&ch[0], &req).unwrap();
//! assert!(header.contains(r#"response="eba335022dc700169ea1d5a43b005123""#));
//! ```

use std::fmt::Write as _;

use md5::Md5;
use sha2::{Digest, Sha256, Sha512_256};
use thiserror::Error;

use crate::text::{is_token_char, parse_quoted, quote};

/// Why a challenge could not be parsed or answered.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AuthError {
    /// The header does not follow the auth-param grammar.
    #[error("malformed authentication header: {0}")]
    Syntax(String),
    /// The challenge asks for an algorithm we do not implement.
    #[error("unsupported digest algorithm '{0}'")]
    UnsupportedAlgorithm(String),
    /// A mandatory parameter is missing.
    #[error("digest challenge lacks '{0}'")]
    Missing(&'static str),
    /// None of the offered challenges is a Digest challenge we can answer.
    #[error("no supported digest challenge offered")]
    NoSupportedChallenge,
}

/// Digest hash algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Algorithm {
    /// MD5 (RFC 2617; the default when `algorithm` is absent).
    Md5,
    /// MD5-sess.
    Md5Sess,
    /// SHA-256 (RFC 7616, RFC 8760).
    Sha256,
    /// SHA-256-sess.
    Sha256Sess,
    /// SHA-512-256.
    Sha512_256,
    /// SHA-512-256-sess.
    Sha512_256Sess,
}

impl Algorithm {
    /// Parses the `algorithm` token (case-insensitive).
    pub fn parse(s: &str) -> Result<Algorithm, AuthError> {
        Ok(match s.to_ascii_uppercase().as_str() {
            "MD5" => Algorithm::Md5,
            "MD5-SESS" => Algorithm::Md5Sess,
            "SHA-256" => Algorithm::Sha256,
            "SHA-256-SESS" => Algorithm::Sha256Sess,
            "SHA-512-256" => Algorithm::Sha512_256,
            "SHA-512-256-SESS" => Algorithm::Sha512_256Sess,
            _ => return Err(AuthError::UnsupportedAlgorithm(s.to_owned())),
        })
    }

    /// The token written in headers.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
            Algorithm::Sha512_256 => "SHA-512-256",
            Algorithm::Sha512_256Sess => "SHA-512-256-sess",
        }
    }

    fn is_sess(self) -> bool {
        matches!(self, Algorithm::Md5Sess | Algorithm::Sha256Sess | Algorithm::Sha512_256Sess)
    }

    /// Relative strength used to pick among challenges (RFC 8760 §2.4).
    fn strength(self) -> u8 {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => 1,
            Algorithm::Sha256 | Algorithm::Sha256Sess => 2,
            Algorithm::Sha512_256 | Algorithm::Sha512_256Sess => 3,
        }
    }

    /// Lower-case hex digest of `data`.
    pub fn hash(self, data: &[u8]) -> String {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => hex::encode(Md5::digest(data)),
            Algorithm::Sha256 | Algorithm::Sha256Sess => hex::encode(Sha256::digest(data)),
            Algorithm::Sha512_256 | Algorithm::Sha512_256Sess => hex::encode(Sha512_256::digest(data)),
        }
    }
}

/// A challenge (`WWW-Authenticate`) or credentials (`Authorization`): a scheme and its
/// parameters, with quoted values already unquoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The scheme, e.g. `Digest`.
    pub scheme: String,
    /// The parameters in order, values unquoted.
    pub params: Vec<(String, String)>,
}

impl Challenge {
    /// A parameter value by name (case-insensitive).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    /// True for the Digest scheme.
    pub fn is_digest(&self) -> bool {
        self.scheme.eq_ignore_ascii_case("Digest")
    }
    /// The algorithm; MD5 when absent.
    pub fn algorithm(&self) -> Result<Algorithm, AuthError> {
        self.param("algorithm").map_or(Ok(Algorithm::Md5), Algorithm::parse)
    }
    /// The offered qop values (`qop="auth,auth-int"` → `["auth", "auth-int"]`).
    pub fn qop_options(&self) -> Vec<&str> {
        self.param("qop").map(|q| q.split(',').map(str::trim).filter(|s| !s.is_empty()).collect()).unwrap_or_default()
    }
    /// True when the server said `stale=true`.
    pub fn stale(&self) -> bool {
        self.param("stale").is_some_and(|s| s.eq_ignore_ascii_case("true"))
    }
}

/// Parses one or more challenges (or credentials) from a header value, e.g.
/// `Digest realm="a@b", qop="auth,auth-int", algorithm=SHA-256, Digest realm="x", nonce="y"`.
pub fn parse_challenges(s: &str) -> Result<Vec<Challenge>, AuthError> {
    let mut out: Vec<Challenge> = Vec::new();
    let mut rest = s.trim_start();
    while !rest.is_empty() {
        let (word, after) = take_token(rest);
        if word.is_empty() {
            return Err(AuthError::Syntax(format!("expected a token at '{rest}'")));
        }
        let after_ws = after.trim_start();
        if let Some(value_text) = after_ws.strip_prefix('=') {
            let current = out.last_mut().ok_or_else(|| AuthError::Syntax("parameter before scheme".into()))?;
            let (value, remaining) = take_value(value_text.trim_start())?;
            current.params.push((word.to_owned(), value));
            rest = skip_comma(remaining)?;
        } else {
            out.push(Challenge { scheme: word.to_owned(), params: Vec::new() });
            rest = after_ws.trim_start_matches([',', ' ', '\t']);
        }
    }
    Ok(out)
}

fn take_token(s: &str) -> (&str, &str) {
    let end = s.bytes().position(|b| !is_token_char(b) && b != b'/').unwrap_or(s.len());
    s.split_at(end)
}

fn take_value(s: &str) -> Result<(String, &str), AuthError> {
    if s.starts_with('"') {
        return parse_quoted(s).map_err(|e| AuthError::Syntax(e.to_owned()));
    }
    let (tok, rest) = take_token(s);
    if tok.is_empty() {
        return Err(AuthError::Syntax(format!("missing value at '{s}'")));
    }
    Ok((tok.to_owned(), rest))
}

fn skip_comma(s: &str) -> Result<&str, AuthError> {
    let t = s.trim_start();
    match t.strip_prefix(',') {
        Some(r) => Ok(r.trim_start()),
        None if t.is_empty() => Ok(t),
        None => Err(AuthError::Syntax(format!("expected ',' at '{t}'"))),
    }
}

/// Picks the strongest Digest challenge we can answer; on a tie, the first (RFC 8760 §2.4).
pub fn choose_challenge(challenges: &[Challenge]) -> Option<&Challenge> {
    let usable = challenges.iter().filter(|c| c.is_digest() && c.param("nonce").is_some());
    let mut best: Option<(&Challenge, u8)> = None;
    for c in usable {
        let Ok(alg) = c.algorithm() else { continue };
        if best.is_none_or(|(_, s)| alg.strength() > s) {
            best = Some((c, alg.strength()));
        }
    }
    best.map(|(c, _)| c)
}

/// What the response is computed over.
#[derive(Debug, Clone, Copy)]
pub struct DigestRequest<'a> {
    /// User name (the SIP line's auth user).
    pub username: &'a str,
    /// Password.
    pub password: &'a str,
    /// Request method (`NOTIFY`, `GET`, ...).
    pub method: &'a str,
    /// The digest-uri: the Request-URI (SIP) or request-target (HTTP).
    pub uri: &'a str,
    /// Body, used by `qop=auth-int`.
    pub body: &'a [u8],
    /// Client nonce.
    pub cnonce: &'a str,
    /// Nonce count (1 for the first use of a nonce).
    pub nc: u32,
}

/// Computes the `response` value (RFC 7616 §3.4.1; RFC 2617 §3.2.2.1 without qop).
pub fn compute_response(alg: Algorithm, realm: &str, nonce: &str, qop: Option<&str>, r: &DigestRequest) -> String {
    let mut ha1 = alg.hash(format!("{}:{realm}:{}", r.username, r.password).as_bytes());
    if alg.is_sess() {
        ha1 = alg.hash(format!("{ha1}:{nonce}:{}", r.cnonce).as_bytes());
    }
    let ha2 = match qop {
        Some("auth-int") => alg.hash(format!("{}:{}:{}", r.method, r.uri, alg.hash(r.body)).as_bytes()),
        _ => alg.hash(format!("{}:{}", r.method, r.uri).as_bytes()),
    };
    match qop {
        Some(q) => alg.hash(format!("{ha1}:{nonce}:{:08x}:{}:{q}:{ha2}", r.nc, r.cnonce).as_bytes()),
        None => alg.hash(format!("{ha1}:{nonce}:{ha2}").as_bytes()),
    }
}

/// Answers `challenge`: returns the Authorization (or Proxy-Authorization) header value.
/// Prefers `qop=auth`, then `auth-int`; without qop the legacy RFC 2069 form is used.
pub fn authorize(challenge: &Challenge, r: &DigestRequest) -> Result<String, AuthError> {
    if !challenge.is_digest() {
        return Err(AuthError::NoSupportedChallenge);
    }
    let alg = challenge.algorithm()?;
    let realm = challenge.param("realm").ok_or(AuthError::Missing("realm"))?;
    let nonce = challenge.param("nonce").ok_or(AuthError::Missing("nonce"))?;
    let offered = challenge.qop_options();
    let qop = ["auth", "auth-int"].into_iter().find(|q| offered.iter().any(|o| o.eq_ignore_ascii_case(q)));
    if !offered.is_empty() && qop.is_none() {
        return Err(AuthError::Syntax(format!("no supported qop in {offered:?}")));
    }
    let response = compute_response(alg, realm, nonce, qop, r);
    let mut h = format!(
        "Digest username={}, realm={}, nonce={}, uri={}, response=\"{response}\", algorithm={}",
        quote(r.username),
        quote(realm),
        quote(nonce),
        quote(r.uri),
        alg.as_str()
    );
    if let Some(q) = qop {
        let _ = write!(h, ", qop={q}, nc={:08x}, cnonce={}", r.nc, quote(r.cnonce));
    } else if alg.is_sess() {
        // The -sess HA1 depends on cnonce, so the server needs it even without qop.
        let _ = write!(h, ", cnonce={}", quote(r.cnonce));
    }
    if let Some(opaque) = challenge.param("opaque") {
        let _ = write!(h, ", opaque={}", quote(opaque));
    }
    Ok(h)
}

/// Server side: true when `credentials` (a parsed Authorization) carry the right response for
/// `password`, `method` and `body`. Nonce freshness is the caller's business.
pub fn verify(credentials: &Challenge, password: &str, method: &str, body: &[u8]) -> bool {
    let (Ok(alg), Some(user), Some(realm), Some(nonce), Some(uri), Some(given)) = (
        credentials.algorithm(),
        credentials.param("username"),
        credentials.param("realm"),
        credentials.param("nonce"),
        credentials.param("uri"),
        credentials.param("response"),
    ) else {
        return false;
    };
    let qop = credentials.param("qop");
    let nc = credentials.param("nc").and_then(|n| u32::from_str_radix(n, 16).ok()).unwrap_or(0);
    let cnonce = credentials.param("cnonce").unwrap_or("");
    let r = DigestRequest { username: user, password, method, uri, body, cnonce, nc };
    compute_response(alg, realm, nonce, qop, &r).eq_ignore_ascii_case(given)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req<'a>(user: &'a str, pw: &'a str, method: &'a str, uri: &'a str, cnonce: &'a str) -> DigestRequest<'a> {
        DigestRequest { username: user, password: pw, method, uri, body: b"", cnonce, nc: 1 }
    }

    #[test]
    fn rfc2617_section_3_5() {
        let r = req("Mufasa", "Circle Of Life", "GET", "/dir/index.html", "0a4f113b");
        let got = compute_response(
            Algorithm::Md5,
            "testrealm@host.com",
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            Some("auth"),
            &r,
        );
        assert_eq!(got, "6629fae49393a05397450978507c4ef1");
    }

    const NONCE_7616: &str = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
    const CNONCE_7616: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";

    #[test]
    fn rfc7616_section_3_9_1_sha256() {
        let r = req("Mufasa", "Circle of Life", "GET", "/dir/index.html", CNONCE_7616);
        let got = compute_response(Algorithm::Sha256, "http-auth@example.org", NONCE_7616, Some("auth"), &r);
        assert_eq!(got, "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1");
    }

    #[test]
    fn rfc7616_section_3_9_1_md5() {
        let r = req("Mufasa", "Circle of Life", "GET", "/dir/index.html", CNONCE_7616);
        let got = compute_response(Algorithm::Md5, "http-auth@example.org", NONCE_7616, Some("auth"), &r);
        assert_eq!(got, "8ca523f5e9506fed4657c9700eebdbec");
    }

    #[test]
    fn notify_vectors_rfc2617_md5_auth() {
        let r = req("100", "secret", "NOTIFY", "sip:100@192.168.1.50:5060", "0a4f113b");
        assert_eq!(
            compute_response(Algorithm::Md5, "PolycomSPIP", "abc123", Some("auth"), &r),
            "eba335022dc700169ea1d5a43b005123"
        );
        assert_eq!(
            compute_response(Algorithm::Sha256, "PolycomSPIP", "abc123", Some("auth"), &r),
            "934f8cf5034f9359b6da8a203c83fdfe4f7998366b6148b20cba32cdcc43684b"
        );
        assert_eq!(
            compute_response(Algorithm::Md5, "PolycomSPIP", "abc123", None, &r),
            "05b32ff1192179d99b9fc142eb4b10a3"
        );
    }

    #[test]
    fn two_challenges_pick_sha256() {
        let v = r#"Digest realm="phones@example.com", nonce="n1", algorithm=SHA-256, qop="auth,auth-int", Digest realm="phones@example.com", nonce="n2", algorithm=MD5"#;
        let ch = parse_challenges(v).unwrap();
        assert_eq!(ch.len(), 2);
        assert_eq!(ch[0].qop_options(), ["auth", "auth-int"]);
        assert_eq!(choose_challenge(&ch).unwrap().param("nonce"), Some("n1"));
    }

    #[test]
    fn authorize_then_verify_roundtrip() {
        for alg in ["MD5", "MD5-sess", "SHA-256", "SHA-256-sess", "SHA-512-256"] {
            for qop in ["", r#", qop="auth""#, r#", qop="auth-int""#] {
                let ch =
                    parse_challenges(&format!(r#"Digest realm="r@x", nonce="n", opaque="o", algorithm={alg}{qop}"#))
                        .unwrap();
                let mut r = req("u", "p", "NOTIFY", "sip:u@h", "c");
                r.body = b"body";
                let header = authorize(&ch[0], &r).unwrap();
                let creds = parse_challenges(&header).unwrap();
                assert!(verify(&creds[0], "p", "NOTIFY", b"body"), "{alg} {qop}");
                assert!(!verify(&creds[0], "wrong", "NOTIFY", b"body"));
            }
        }
    }

    #[test]
    fn refuses_bad_syntax() {
        assert!(parse_challenges(r#"Digest realm="unterminated"#).is_err());
        assert!(parse_challenges("realm=x").is_err());
        assert!(authorize(&parse_challenges("Digest realm=x").unwrap()[0], &req("a", "b", "c", "d", "e")).is_err());
    }
}
