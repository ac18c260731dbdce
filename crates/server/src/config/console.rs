//! `[console]`: the web console's sessions and login throttle.

use serde::Deserialize;

/// How long console sessions last, how many there may be, and how often a source may fail to
/// log in. The console is served on the admin listener (`[api] listen`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleConfig {
    /// A session unused this long (seconds) is over (default 1800: 30 minutes).
    pub session_idle_secs: u64,
    /// A session is over this long (seconds) after login, used or not (default 43200: 12 h).
    pub session_max_secs: u64,
    /// Sessions kept at most; a login beyond it ends the least recently used (default 1000).
    pub max_sessions: usize,
    /// Marks the session cookie `Secure` (default false). The admin listener speaks plain HTTP
    /// and belongs on loopback, where a cookie never crosses a network; set this when a
    /// TLS-terminating proxy publishes the console, so the browser never sends the cookie in
    /// clear text.
    pub secure_cookie: bool,
    /// Failed logins a source may make per `login_window_secs` before it is refused (default 5).
    pub login_failures: u32,
    /// The login throttle's window in seconds (default 300).
    pub login_window_secs: u64,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            session_idle_secs: 1800,
            session_max_secs: 43_200,
            max_sessions: 1000,
            secure_cookie: false,
            login_failures: 5,
            login_window_secs: 300,
        }
    }
}

impl ConsoleConfig {
    /// Values that parse but make no sense.
    pub fn check(&self) -> Result<(), String> {
        if self.session_idle_secs == 0 || self.session_max_secs == 0 {
            return Err("console.session_idle_secs and console.session_max_secs must be at least 1".into());
        }
        if self.max_sessions == 0 || self.login_failures == 0 || self.login_window_secs == 0 {
            return Err(
                "console.max_sessions, console.login_failures and console.login_window_secs must be at least 1".into(),
            );
        }
        Ok(())
    }
}
