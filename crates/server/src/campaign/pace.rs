//! Pacing a campaign's NOTIFYs: a token bucket refilled by elapsed time.
//!
//! `--rate` must hold over any one-second interval of the run, not on average since the start:
//! counted from the start, a stall (the in-flight limit full of phones that do not answer)
//! builds up credit that is then spent in one burst, the reboot storm the rate is there to
//! prevent. The bucket holds at most [`BURST`] worth of the rate (at least one NOTIFY) and is
//! refilled by the time elapsed, so a stall earns nothing beyond that: in any interval of `t`
//! seconds at most `rate × t + capacity` NOTIFYs leave. The small burst is what lets a high rate
//! be kept although timers tick in whole milliseconds: a late wake-up finds the tokens it
//! missed instead of losing them.

use std::time::Duration;

use tokio::time::Instant;

/// How much of the rate the bucket holds: at up to 100 NOTIFYs a second that is one NOTIFY,
/// so any second sees at most `rate + 1`.
const BURST: Duration = Duration::from_millis(10);

/// The bucket.
#[derive(Debug)]
pub(super) struct Pacer {
    /// The campaign's rate, tokens per second.
    full_rate: f64,
    /// This node's share of it, tokens per second.
    rate: f64,
    capacity: f64,
    tokens: f64,
    refilled_at: Instant,
}

impl Pacer {
    /// A full bucket for `rate` NOTIFYs per second (0 counts as 1).
    pub(super) fn new(rate: u32, now: Instant) -> Pacer {
        let rate = f64::from(rate.max(1));
        let capacity = (rate * BURST.as_secs_f64()).max(1.0);
        Pacer { full_rate: rate, rate, capacity, tokens: capacity, refilled_at: now }
    }

    /// Paces at the rate divided by `senders` (the nodes sending the campaign, at least 1),
    /// with the bucket sized for that share: the senders together keep to the rate.
    pub(super) fn share(&mut self, senders: u32) {
        self.rate = self.full_rate / f64::from(senders.max(1));
        self.capacity = (self.rate * BURST.as_secs_f64()).max(1.0);
        self.tokens = self.tokens.min(self.capacity);
    }

    /// Takes a token at `now` if there is one; otherwise says how long until there is.
    pub(super) fn try_take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.refilled_at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        self.refilled_at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Ok(());
        }
        Err(Duration::from_secs_f64((1.0 - self.tokens) / self.rate))
    }

    /// Waits for a token and takes it.
    pub(super) async fn take(&mut self) {
        while let Err(wait) = self.try_take(Instant::now()) {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends as fast as the bucket allows from `start` for `run`, except while `stalled`; returns
    /// the send times. The clock advances in `tick` steps, like a timer that wakes up late.
    fn simulate(rate: u32, run: Duration, stalled: (Duration, Duration), tick: Duration) -> Vec<Duration> {
        let start = Instant::now();
        let mut pacer = Pacer::new(rate, start);
        let mut sent = Vec::new();
        let mut t = Duration::ZERO;
        while t < run {
            if !(stalled.0..stalled.1).contains(&t) {
                while pacer.try_take(start + t).is_ok() {
                    sent.push(t);
                }
            }
            t += tick;
        }
        sent
    }

    /// The most sends within any closed one-second interval.
    fn busiest_second(sent: &[Duration]) -> usize {
        let mut most = 0;
        let mut first = 0;
        for (last, at) in sent.iter().enumerate() {
            while *at - sent[first] > Duration::from_secs(1) {
                first += 1;
            }
            most = most.max(last - first + 1);
        }
        most
    }

    #[test]
    fn a_stall_earns_no_burst() {
        let stall = (Duration::from_secs(2), Duration::from_secs(6));
        let sent = simulate(20, Duration::from_secs(10), stall, Duration::from_micros(100));
        assert!(busiest_second(&sent) <= 21, "{}", busiest_second(&sent));
        let after: Vec<_> = sent.iter().filter(|t| **t >= stall.1).collect();
        assert!(after.len() <= 81, "{} sent in the 4 s after the stall", after.len());
        assert!(after.len() >= 79, "the rate is kept after the stall: {}", after.len());
    }

    #[test]
    fn late_timers_do_not_lower_a_high_rate() {
        // Timer wake-ups every 1.7 ms at 5,000/s: several tokens per wake-up.
        let sent =
            simulate(5_000, Duration::from_secs(4), (Duration::ZERO, Duration::ZERO), Duration::from_micros(1_700));
        assert!(sent.len() >= 19_900, "{}", sent.len());
        assert!(busiest_second(&sent) <= 5_000 + 51, "{}", busiest_second(&sent));
    }

    #[test]
    fn a_share_paces_at_the_rate_divided_by_the_senders() {
        let start = Instant::now();
        let mut pacer = Pacer::new(90, start);
        pacer.share(3);
        let mut sent = 0;
        let mut t = Duration::ZERO;
        while t < Duration::from_secs(10) {
            while pacer.try_take(start + t).is_ok() {
                sent += 1;
            }
            t += Duration::from_millis(1);
        }
        // 30 a second for 10 s, plus the one token the bucket starts with, at most; a one-token
        // bucket polled every millisecond loses a little of each refill that overflows it.
        assert!((290..=301).contains(&sent), "{sent}");
        pacer.share(1);
        let wait = pacer.try_take(start + t).err().unwrap_or_default();
        assert!(wait <= Duration::from_millis(12), "back to the full rate: {wait:?}");
    }

    #[test]
    fn the_wait_is_until_the_next_token() {
        let start = Instant::now();
        let mut pacer = Pacer::new(10, start);
        assert!(pacer.try_take(start).is_ok());
        let wait = pacer.try_take(start).unwrap_err();
        assert!((wait.as_secs_f64() - 0.1).abs() < 1e-9, "{wait:?}");
        assert!(pacer.try_take(start + wait).is_ok());
    }
}
