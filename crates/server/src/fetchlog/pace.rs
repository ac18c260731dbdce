//! Keeps the writer's work in short bursts, so that it never holds the core the phones are
//! answered on for a scheduler slice.
//!
//! The writer's thread runs at the process's priority (it holds the store's write turn that
//! campaign outcomes wait for, so it must not be starved). Once the kernel's fair scheduler
//! (EEVDF, Linux 6.6 on) picks it, it protects the thread's slice: a thread woken meanwhile,
//! such as the one answering a PnP storm, waits until the slice is used up, and the end of a
//! slice is only seen at the next timer tick (4 ms at 250 Hz). A write of one interval's
//! 2,500 PnP events used to be such a run: dropping their JSON details alone took milliseconds
//! in one go. In its loops over a batch the writer now offers the core with `sched_yield` every
//! [`BURST`]: the yield moves its deadline behind any runnable thread of the same weight, so a
//! waiting thread runs first, and costs a system call and nothing more when none waits.

use std::time::{Duration, Instant};

/// The longest the writer works between two offers of the core.
pub(super) const BURST: Duration = Duration::from_micros(200);

/// How many items of work pass between two readings of the clock: an item (a drop, a merge of a
/// device's entry) is well under a microsecond, less than reading the clock for each of them.
const ITEMS_PER_CHECK: u32 = 16;

/// Counts the work since the last offer of the core.
pub(super) struct Pace {
    since: Instant,
    items: u32,
}

impl Pace {
    /// Starts counting now.
    pub(super) fn new() -> Pace {
        Pace { since: Instant::now(), items: 0 }
    }

    /// Called between two items of work: offers the core once [`BURST`] has passed.
    pub(super) fn step(&mut self) {
        self.items = self.items.wrapping_add(1);
        if self.items.is_multiple_of(ITEMS_PER_CHECK) && self.since.elapsed() >= BURST {
            std::thread::yield_now();
            self.since = Instant::now();
        }
    }
}

/// Drops `items` one by one, pacing the work (a JSON detail's drop frees a dozen allocations).
pub(super) fn drop_paced<T>(items: Vec<T>) {
    let mut pace = Pace::new();
    for item in items {
        drop(item);
        pace.step();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paced_drops_drop_everything() {
        let shared = std::sync::Arc::new(());
        drop_paced((0..1_000).map(|_| shared.clone()).collect());
        assert_eq!(std::sync::Arc::strong_count(&shared), 1);
    }
}
