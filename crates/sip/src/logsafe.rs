//! Logging what strangers send: [`escaped`] makes attacker-supplied text safe to put in a log
//! line, and [`LogLimiter`] keeps a flood of identical warnings from filling the disk.
//!
//! A log line is one line of text on a terminal or in a file. Text taken from a packet may hold
//! a line feed (which forges a whole log line of the attacker's choosing), terminal escape
//! sequences (which rewrite what an operator sees), or 60 KB of anything. [`escaped`] shows
//! printable ASCII as is and everything else as an escape (`\n`, `\r`, `\t`, `\\`, `\x1b`,
//! `\u{202e}`), and cuts the text after a number of characters, saying how much was left out.
//!
//! A warning caused by a packet costs the sender one datagram and the server one log line, so
//! the line must be rationed: each call site owns a [`LogLimiter`], which lets a short burst
//! through and then one line per interval, and hands the next line the count of those it held
//! back, so that nothing is lost from the record but the repetition.
//!
//! ```
//! use std::time::Duration;
//! use sipprov_sip::logsafe::{escaped, LogLimiter};
//!
//! static MALFORMED: LogLimiter = LogLimiter::new(2, Duration::from_secs(10));
//! let start_line = "OPTIONS x\nERROR forged \x1b[31mred";
//! for _ in 0..5 {
//!     if let Some(suppressed) = MALFORMED.allow() {
//!         // tracing::warn!(suppressed, text = %escaped(start_line, 200), "refused");
//!         assert_eq!(escaped(start_line, 200).to_string(), r"OPTIONS x\nERROR forged \x1b[31mred");
//!         assert_eq!(suppressed, 0);
//!     }
//! }
//! assert_eq!(MALFORMED.suppressed(), 3);
//! assert_eq!(escaped(&"a".repeat(50), 10).to_string(), "aaaaaaaaaa…(+40 bytes)");
//! ```

use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How many characters of attacker text a log line shows by default.
pub const LOG_TEXT_MAX: usize = 200;

/// `text` made safe for a log line: control characters, backslashes and non-ASCII escaped,
/// and at most `max` characters of it shown (the rest is counted, not shown).
pub fn escaped(text: &str, max: usize) -> Escaped<'_> {
    Escaped { text, max }
}

/// Attacker-supplied text as it may appear in a log line; see [`escaped`].
#[derive(Debug, Clone, Copy)]
pub struct Escaped<'a> {
    text: &'a str,
    max: usize,
}

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (shown, (at, c)) in self.text.char_indices().enumerate() {
            if shown == self.max {
                return write!(f, "…(+{} bytes)", self.text.len() - at);
            }
            match c {
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                '\t' => f.write_str("\\t")?,
                '\\' => f.write_str("\\\\")?,
                ' '..='~' => fmt::Write::write_char(f, c)?,
                c if (c as u32) < 0x100 => write!(f, "\\x{:02x}", c as u32)?,
                c => write!(f, "\\u{{{:x}}}", c as u32)?,
            }
        }
        Ok(())
    }
}

/// Rations one kind of log line: `burst` lines at once, then one more per `every`, with the
/// count of the lines held back meanwhile handed to the next line that may be written.
///
/// `const`, so that each call site can own one in a `static`.
#[derive(Debug)]
pub struct LogLimiter {
    burst: u32,
    every: Duration,
    state: Mutex<LimiterState>,
}

#[derive(Debug)]
struct LimiterState {
    /// Lines that may be written now.
    tokens: u32,
    /// When the last token was added (`None`: never used, a full burst is available).
    refilled: Option<Instant>,
    /// Lines held back since the last one written.
    suppressed: u64,
}

impl LogLimiter {
    /// A limiter letting `burst` lines through at once, then one per `every`.
    pub const fn new(burst: u32, every: Duration) -> LogLimiter {
        LogLimiter { burst, every, state: Mutex::new(LimiterState { tokens: burst, refilled: None, suppressed: 0 }) }
    }

    /// `Some(n)` when a line may be written now, `n` being how many were held back since the
    /// previous one (to be written in that line); `None` when this one is held back.
    pub fn allow(&self) -> Option<u64> {
        self.allow_at(Instant::now())
    }

    /// Lines held back so far and not yet reported.
    pub fn suppressed(&self) -> u64 {
        self.lock().suppressed
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LimiterState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn allow_at(&self, now: Instant) -> Option<u64> {
        let mut s = self.lock();
        let since = *s.refilled.get_or_insert(now);
        if !self.every.is_zero() {
            let earned = now.saturating_duration_since(since).as_nanos() / self.every.as_nanos();
            if earned > 0 {
                s.tokens = s.tokens.saturating_add(u32::try_from(earned).unwrap_or(u32::MAX)).min(self.burst);
                s.refilled = Some(since + self.every * u32::try_from(earned).unwrap_or(u32::MAX));
            }
        }
        if s.tokens == 0 {
            s.suppressed += 1;
            return None;
        }
        s.tokens -= 1;
        Some(std::mem::take(&mut s.suppressed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_could_forge_or_paint_a_line() {
        let shown = |s: &str| escaped(s, 100).to_string();
        assert_eq!(shown("a\r\nb\tc\\"), r"a\r\nb\tc\\");
        assert_eq!(shown("\x1b[2J\x00\x7f"), r"\x1b[2J\x00\x7f");
        assert_eq!(shown("caf\u{e9} \u{202e}txt"), r"caf\xe9 \u{202e}txt");
        assert!(shown(&"\n".repeat(1000)).len() < 250, "truncated after escaping");
        assert_eq!(escaped("ééé", 1).to_string(), r"\xe9…(+4 bytes)");
        assert_eq!(escaped("", 0).to_string(), "");
    }

    #[test]
    fn limiter_lets_a_burst_through_then_one_per_interval_and_counts_the_rest() {
        let limiter = LogLimiter::new(3, Duration::from_secs(10));
        let t0 = Instant::now();
        let allowed: Vec<_> = (0..100).filter_map(|_| limiter.allow_at(t0)).collect();
        assert_eq!(allowed, vec![0, 0, 0]);
        assert_eq!(limiter.suppressed(), 97);
        assert_eq!(limiter.allow_at(t0 + Duration::from_secs(9)), None);
        assert_eq!(limiter.allow_at(t0 + Duration::from_secs(10)), Some(98), "the held-back count is reported");
        assert_eq!(limiter.allow_at(t0 + Duration::from_secs(11)), None);
        let later = t0 + Duration::from_secs(3600);
        let allowed: Vec<_> = (0..5).filter_map(|_| limiter.allow_at(later)).collect();
        assert_eq!(allowed, vec![1, 0, 0], "the burst refills, never beyond its size");
    }
}
