//! Completing a client request before it is sent: the headers it must carry ([`prepare`]) and,
//! after a 401/407, the digest answer ([`add_authorization`]). Both drivers and the endpoint use
//! these.

use std::fmt;

use super::{Credentials, TransactionError};
use crate::auth::{authorize, choose_challenge, DigestRequest};
use crate::builder::random_token;
use crate::headers::parse_cseq;
use crate::message::{canonical_name, Request, Response};

/// A request that cannot be sent as given.
pub(crate) fn invalid(e: impl fmt::Display) -> TransactionError {
    TransactionError::InvalidRequest(e.to_string())
}

/// Fills in what a client request must carry before it is sent. One pass over the headers:
/// a campaign prepares tens of thousands of requests a second.
pub(crate) fn prepare(req: &mut Request) -> Result<(), TransactionError> {
    const REQUIRED: [&str; 4] = ["From", "To", "Call-ID", "CSeq"];
    let mut present = [false; REQUIRED.len()];
    let (mut max_forwards, mut content_lengths, mut length_right) = (false, 0, false);
    let mut cseq = None;
    for h in req.headers.iter() {
        let name = canonical_name(h.name());
        if let Some(i) = REQUIRED.iter().position(|r| name.eq_ignore_ascii_case(r)) {
            present[i] = true;
            if i == 3 && cseq.is_none() {
                cseq = Some(h);
            }
        } else if name.eq_ignore_ascii_case("Max-Forwards") {
            max_forwards = true;
        } else if name.eq_ignore_ascii_case("Content-Length") {
            content_lengths += 1;
            length_right = h.value().parse::<usize>().is_ok_and(|n| n == req.body.len());
        }
    }
    if let Some(missing) = REQUIRED.iter().zip(present).find_map(|(name, seen)| (!seen).then_some(name)) {
        return Err(invalid(format!("missing {missing} header")));
    }
    let cseq = cseq.map(|h| h.value()).ok_or_else(|| invalid("missing CSeq"))?;
    let (_, method) = parse_cseq(&cseq).map_err(invalid)?;
    if method != req.method {
        return Err(invalid(format!("CSeq method {method} differs from {}", req.method)));
    }
    if !max_forwards {
        req.headers.push("Max-Forwards", "70");
    }
    if content_lengths != 1 || !length_right {
        req.headers.set("Content-Length", &req.body.len().to_string());
    }
    Ok(())
}

/// Adds Authorization (401) or Proxy-Authorization (407) for the strongest challenge and bumps
/// CSeq (RFC 3261 §22.2); returns false when no challenge can be answered.
pub(crate) fn add_authorization(
    req: &mut Request,
    resp: &Response,
    creds: &Credentials,
) -> Result<bool, TransactionError> {
    let (challenges, header) = if resp.status == 407 {
        (resp.headers.proxy_authenticate(), "Proxy-Authorization")
    } else {
        (resp.headers.www_authenticate(), "Authorization")
    };
    let challenges = challenges.map_err(invalid)?;
    let Some(challenge) = choose_challenge(&challenges) else { return Ok(false) };
    let cnonce = random_token();
    let digest = DigestRequest {
        username: &creds.username,
        password: &creds.password,
        method: &req.method,
        uri: &req.uri,
        body: &req.body,
        cnonce: &cnonce,
        nc: 1,
    };
    let value = authorize(challenge, &digest).map_err(invalid)?;
    req.headers.set(header, &value);
    let mut cseq = req.headers.cseq().map_err(invalid)?.ok_or_else(|| invalid("missing CSeq"))?;
    cseq.seq =
        cseq.seq.checked_add(1).filter(|s| *s <= crate::headers::MAX_CSEQ).ok_or_else(|| invalid("CSeq overflow"))?;
    req.headers.set("CSeq", &cseq.to_string());
    Ok(true)
}
