//! The optional global bandwidth cap on stored files (`[files] bandwidth_bytes_per_sec`): one
//! token bucket shared by every download, so a fleet upgrade does not fill the uplink.
//!
//! Each download takes tokens for a chunk before reading it. Taking may drive the bucket below
//! zero; the taker then sleeps until the rate has paid the debt back. Debts are taken in the
//! order the downloads ask, so the rate is shared about evenly between them, and the total over
//! any interval stays within `rate × interval + burst`. Config files are never throttled: they
//! do not pass through here.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A shared token bucket: `rate` bytes a second, at most `burst` saved up while idle.
#[derive(Debug)]
pub(crate) struct Bandwidth {
    rate: f64,
    burst: f64,
    state: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    /// Bytes that may be sent now; negative while downloads wait for the rate to catch up.
    tokens: f64,
    refilled: Instant,
}

impl Bandwidth {
    /// A bucket of `rate` bytes a second. The burst (what an idle bucket holds) is a tenth of
    /// a second's worth, and at least one chunk, so the cap holds over short intervals too.
    pub(crate) fn new(rate: u64, chunk: usize) -> Bandwidth {
        let rate = rate.max(1) as f64;
        let burst = (rate / 10.0).max(chunk as f64);
        Bandwidth { rate, burst, state: Mutex::new(Bucket { tokens: burst, refilled: Instant::now() }) }
    }

    /// Takes `bytes` tokens, and returns how long the caller must wait before sending them.
    pub(crate) fn reserve(&self, bytes: usize) -> Duration {
        // A poisoned lock means a panic while holding it: the bucket is two numbers, still usable.
        let mut bucket = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        let earned = now.duration_since(bucket.refilled).as_secs_f64() * self.rate;
        bucket.tokens = (bucket.tokens + earned).min(self.burst) - bytes as f64;
        bucket.refilled = now;
        if bucket.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-bucket.tokens / self.rate)
        }
    }

    /// Takes `bytes` tokens and sleeps as long as the debt requires.
    pub(crate) async fn take(&self, bytes: usize) {
        let wait = self.reserve(bytes);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_bucket_lets_its_burst_through_then_charges_the_rate() {
        let bucket = Bandwidth::new(1_000_000, 16 * 1024);
        // The burst is 100 kB: the first 100 kB go at once.
        assert_eq!(bucket.reserve(100_000), Duration::ZERO);
        // The next 500 kB owe half a second (less what the few microseconds since earned).
        let wait = bucket.reserve(500_000);
        assert!(wait > Duration::from_millis(490) && wait <= Duration::from_millis(500), "{wait:?}");
        // Debts queue up: the next taker waits behind the first.
        let wait = bucket.reserve(100_000);
        assert!(wait > Duration::from_millis(590) && wait <= Duration::from_millis(600), "{wait:?}");
    }

    #[test]
    fn the_burst_is_at_least_one_chunk() {
        let bucket = Bandwidth::new(10, 16 * 1024);
        assert_eq!(bucket.reserve(16 * 1024), Duration::ZERO);
        assert!(bucket.reserve(10) >= Duration::from_millis(900));
    }
}
