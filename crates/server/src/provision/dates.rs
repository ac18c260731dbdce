//! HTTP dates: lenient parsing for `If-Modified-Since`, and keeping `Last-Modified` out of the
//! future.
//!
//! AudioCodes gateways send dates such as `Mon, 1 January 2014 19:43:31 GMT`
//! (full month name, one-digit day), which strict RFC 9110 parsers refuse; a
//! refused date would mean a full download, and for them a reset. So after the
//! strict parser, fall back to a tolerant one.
//!
//! A content change within the same second as the previous one gets the next second as its
//! change time ([`crate::cache::RenderCache::note_content`]), which can lie up to a second
//! ahead. RFC 9110 §8.8.2.1 forbids a `Last-Modified` later than the response's `Date`, so
//! such a response is held until its second has begun ([`hold_until_dated`]).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The longest a response is held for its `Last-Modified` second: one change moves the change
/// time at most to the start of the next second. Several changes of one file within a second
/// move it further; past this, the response leaves anyway rather than stall the phone.
const MAX_HOLD: Duration = Duration::from_secs(1);

const MONTHS: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];

/// Parses an HTTP date strictly, then leniently.
///
/// Accepts the three RFC 9110 forms, plus day-month-year forms with full or
/// abbreviated month names and one- or two-digit days.
pub(super) fn parse_lenient(text: &str) -> Option<SystemTime> {
    httpdate::parse_http_date(text).ok().or_else(|| parse_loose(text))
}

/// Waits, at most [`MAX_HOLD`], until `last_modified` is not in the future, and returns the
/// time the answer leaves at: the one clock reading the rest of the request uses (its
/// conditionals, its fetch record), read again only after a wait.
pub(super) async fn hold_until_dated(last_modified: SystemTime) -> SystemTime {
    match ahead(last_modified) {
        Ok(now) => now,
        Err(ahead) => hold(ahead).await,
    }
}

/// [`hold_until_dated`] without its wait: `Ok` with the time the answer leaves at when
/// `last_modified` is not in the future (nearly always), else `Err` with how long to hold the
/// answer ([`hold`]).
pub(super) fn ahead(last_modified: SystemTime) -> Result<SystemTime, Duration> {
    let now = SystemTime::now();
    match last_modified.duration_since(now) {
        Ok(ahead) => Err(ahead.min(MAX_HOLD)),
        Err(_) => Ok(now),
    }
}

/// Holds an answer for what [`ahead`] said, and returns the time it leaves at.
pub(super) async fn hold(ahead: Duration) -> SystemTime {
    // Boxed: a hold is rare, and a timer held inline would enlarge the future that holds it.
    Box::pin(tokio::time::sleep(ahead)).await;
    SystemTime::now()
}

/// `time` in milliseconds since the epoch, as the store keeps times (`sipprov_store::now_ms`).
pub(super) fn epoch_ms(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// True when `since` lies after the server's clock: no `Last-Modified` this server sent can
/// be that late, so such a date proves nothing about what the client holds (RFC 2616 §14.25
/// called it invalid) and the condition is ignored.
pub(super) fn is_future(since: SystemTime) -> bool {
    since > SystemTime::now()
}

fn parse_loose(text: &str) -> Option<SystemTime> {
    let tokens: Vec<&str> =
        text.split(|c: char| c == ',' || c.is_whitespace() || c == '-').filter(|t| !t.is_empty()).collect();
    let mut day = None;
    let mut month = None;
    let mut year = None;
    let mut time = None;
    for token in tokens {
        let lower = token.to_ascii_lowercase();
        if token.contains(':') {
            time = parse_time(token);
        } else if let Some(m) = MONTHS.iter().position(|m| lower.len() >= 3 && lower.starts_with(m)) {
            month = Some(m as u32 + 1);
        } else if let Ok(n) = token.parse::<u32>() {
            if n > 31 {
                year = Some(n);
            } else if day.is_none() {
                day = Some(n);
            }
        }
    }
    let (h, m, s) = time?;
    let secs = days_from_civil(year?, month?, day?)? * 86_400 + u64::from(h * 3600 + m * 60 + s);
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

fn parse_time(token: &str) -> Option<(u32, u32, u32)> {
    let mut parts = token.split(':').map(|p| p.parse::<u32>().ok());
    let (h, m, s) = (parts.next()??, parts.next()??, parts.next().unwrap_or(Some(0))?);
    (h < 24 && m < 60 && s < 61).then_some((h, m, s))
}

/// Days since 1970-01-01 (Howard Hinnant's algorithm); None before the epoch.
fn days_from_civil(year: u32, month: u32, day: u32) -> Option<u64> {
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || year < 1970 {
        return None;
    }
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(month) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    u64::try_from(era * 146_097 + doe - 719_468).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(t: SystemTime) -> u64 {
        t.duration_since(UNIX_EPOCH).unwrap().as_secs()
    }

    #[test]
    fn strict_forms() {
        assert_eq!(secs(parse_lenient("Sun, 06 Nov 1994 08:49:37 GMT").unwrap()), 784111777);
        assert_eq!(secs(parse_lenient("Sunday, 06-Nov-94 08:49:37 GMT").unwrap_or(UNIX_EPOCH)), 784111777);
    }

    #[test]
    fn audiocodes_full_month_form() {
        // AudioCodes MP-11x user manual, "Automatic Update" (If-Modified-Since example): "Mon, 1 January 2014 19:43:31 GMT".
        assert_eq!(secs(parse_lenient("Mon, 1 January 2014 19:43:31 GMT").unwrap()), 1388605411);
    }

    #[test]
    fn garbage_is_none() {
        assert!(parse_lenient("yesterday").is_none());
        assert!(parse_lenient("Mon, 45 Foo 2014 19:43:31 GMT").is_none());
    }
}
