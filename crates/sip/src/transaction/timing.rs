//! The clock of one non-INVITE client transaction (RFC 3261 §17.1.2.2), without any I/O:
//! when to retransmit (Timer E), when to give up (Timer F), and what a response does to them.
//!
//! Both drivers use it: [`super::client::run`] for a single transaction awaited by its caller,
//! and [`super::batch`] for thousands run from one task. Keeping the rules here means the two
//! cannot disagree on the retransmission schedule.

use std::time::Duration;

use tokio::time::Instant;

use super::Timers;

/// What a response does to the transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnResponse {
    /// A final response (2xx–6xx): the transaction is over.
    Final,
    /// A provisional response with a status not seen before: report it.
    Progress,
    /// A provisional response repeating the last one (the server resent it on a retransmission).
    Repeat,
}

/// What is due when the deadline passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnDeadline {
    /// Send the request again; the number is the retransmission's (1, 2, ...).
    Retransmit(u32),
    /// Timer F fired.
    TimedOut {
        /// Retransmissions sent.
        retransmissions: u32,
        /// Timer F's duration.
        after: Duration,
    },
    /// Nothing yet (the deadline moved since it was read).
    NotYet,
}

/// Timer state of one client transaction, started when the request is first sent.
#[derive(Debug, Clone)]
pub(crate) struct Timing {
    timers: Timers,
    timer_f: Instant,
    /// Next retransmission; `None` on reliable transports (§17.1.2.2: no Timer E).
    next_send: Option<Instant>,
    retransmissions: u32,
    proceeding: bool,
    last_provisional: Option<u16>,
}

impl Timing {
    /// The clock of a transaction whose request was first sent at `now`.
    pub(crate) fn start(timers: Timers, reliable: bool, now: Instant) -> Timing {
        Timing {
            timers,
            timer_f: now + timers.timer_f(),
            next_send: (!reliable).then(|| now + timers.timer_e(1)),
            retransmissions: 0,
            proceeding: false,
            last_provisional: None,
        }
    }

    /// When [`Timing::on_deadline`] must next be called.
    pub(crate) fn deadline(&self) -> Instant {
        self.next_send.map_or(self.timer_f, |n| n.min(self.timer_f))
    }

    /// Applies a response with `status` received at `now`.
    pub(crate) fn on_response(&mut self, status: u16, now: Instant) -> OnResponse {
        if status >= 200 {
            return OnResponse::Final;
        }
        // Proceeding: retransmit every T2 from now on (UDP only).
        if !self.proceeding && self.next_send.is_some() {
            self.proceeding = true;
            self.next_send = Some(now + self.timers.t2);
        }
        // A retransmitted request makes the server resend its 1xx: report each status once.
        if self.last_provisional == Some(status) {
            return OnResponse::Repeat;
        }
        self.last_provisional = Some(status);
        OnResponse::Progress
    }

    /// What is due at `now`.
    pub(crate) fn on_deadline(&mut self, now: Instant) -> OnDeadline {
        if now >= self.timer_f {
            return OnDeadline::TimedOut { retransmissions: self.retransmissions, after: self.timers.timer_f() };
        }
        let Some(due) = self.next_send.filter(|due| *due <= now) else { return OnDeadline::NotYet };
        self.retransmissions += 1;
        // Scheduled from the previous due time so that delays do not accumulate.
        let interval = if self.proceeding { self.timers.t2 } else { self.timers.timer_e(self.retransmissions + 1) };
        self.next_send = Some(due + interval);
        OnDeadline::Retransmit(self.retransmissions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the clock with no response and returns the retransmission offsets and the timeout.
    fn schedule(timers: Timers, reliable: bool) -> (Vec<Duration>, Duration) {
        let t0 = Instant::now();
        let mut timing = Timing::start(timers, reliable, t0);
        let mut sent = Vec::new();
        loop {
            let at = timing.deadline();
            match timing.on_deadline(at) {
                OnDeadline::Retransmit(n) => {
                    assert_eq!(n as usize, sent.len() + 1);
                    sent.push(at - t0);
                }
                OnDeadline::TimedOut { retransmissions, after } => {
                    assert_eq!(retransmissions as usize, sent.len());
                    assert_eq!(after, timers.timer_f());
                    return (sent, at - t0);
                }
                OnDeadline::NotYet => panic!("the deadline said something was due"),
            }
        }
    }

    #[test]
    fn udp_follows_timer_e_then_timer_f() {
        let timers = Timers::default();
        let (sent, timeout) = schedule(timers, false);
        assert_eq!(sent, timers.udp_schedule()[1..]);
        assert_eq!(timeout, Duration::from_secs(32));
    }

    #[test]
    fn reliable_transports_never_retransmit() {
        let (sent, timeout) = schedule(Timers::default(), true);
        assert!(sent.is_empty());
        assert_eq!(timeout, Duration::from_secs(32));
    }

    #[test]
    fn a_provisional_switches_to_t2_and_is_reported_once() {
        let timers = Timers::default();
        let t0 = Instant::now();
        let mut timing = Timing::start(timers, false, t0);
        let at = t0 + Duration::from_millis(100);
        assert_eq!(timing.on_response(100, at), OnResponse::Progress);
        assert_eq!(timing.deadline(), at + timers.t2);
        assert_eq!(timing.on_response(100, at), OnResponse::Repeat);
        assert_eq!(timing.on_response(180, at), OnResponse::Progress);
        assert_eq!(timing.on_deadline(at), OnDeadline::NotYet);
        assert_eq!(timing.on_deadline(at + timers.t2), OnDeadline::Retransmit(1));
        assert_eq!(timing.deadline(), at + timers.t2 * 2);
        assert_eq!(timing.on_response(200, at), OnResponse::Final);
    }
}
