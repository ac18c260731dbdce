//! The fetch log's SQLite writes run below the rest of the process's CPU priority; every other
//! statement runs at the process's own.
//!
//! sqlx runs each SQLite connection on a thread of its own (`sqlx-sqlite-worker-N`), where
//! every statement's SQLite and kernel page-cache work happens. The fetch log's interval write
//! is work nobody waits for; the threads serving phones, and the campaign's outcome writes an
//! operator waits for, are not. Under load they want the same core, and the scheduler shares
//! it by weight: at niceness +[`WORKER_NICE`] a worker gets about a quarter of a core contended
//! by one busy thread of the process's own niceness, and all of an idle one. A quarter leaves
//! the fetch log's writes (a few tens of milliseconds per interval under benchmark load) far
//! inside their interval, so its queue does not fill.
//!
//! Only the connection of [`Store::background_writer`](crate::Store::background_writer) is
//! lowered. When every worker was (the previous design), a campaign's outcome writes got the
//! same quarter of the core while wrk fetched meanwhile: in an A/B on the same binary a
//! 200,000-device campaign took about six times as long as with no worker lowered
//! (docs/benchmarks.md, "One million devices").
//!
//! Which thread serves which connection is not visible through sqlx's `Any` driver, and the
//! kernel keeps only the first 15 bytes of a thread's name (`sqlx-sqlite-wor`, without the
//! number). So every pool of the store, as a connection opens, claims the worker threads that
//! were not there before ([`claim_new_worker`]): normally exactly one, the connection's own.
//! When two connections open at the same moment the claim sees two and cannot tell them apart;
//! the background connection then stays at the process's priority (the safe side: nothing is
//! starved, the fetch log only competes as it did before this module existed) and says so in
//! the log.

/// How much nicer than the process the fetch log's worker is (Linux nice levels: each step
/// about 1.25x less CPU weight; +5 is about a third of the weight).
pub(crate) const WORKER_NICE: i32 = 5;

/// The worker threads already claimed by a connection (alive when last looked at).
#[cfg(target_os = "linux")]
static CLAIMED: std::sync::Mutex<Vec<libc::pid_t>> = std::sync::Mutex::new(Vec::new());

/// The SQLite worker threads alive now, by thread id.
#[cfg(target_os = "linux")]
fn sqlite_workers() -> Vec<libc::pid_t> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return Vec::new() };
    tasks
        .flatten()
        .filter(|task| {
            // The kernel keeps the first 15 bytes of a thread's name.
            std::fs::read_to_string(task.path().join("comm")).is_ok_and(|c| c.starts_with("sqlx-sqlite-wor"))
        })
        .filter_map(|task| task.file_name().to_str().and_then(|t| t.parse().ok()))
        .collect()
}

/// Called as a connection of the store opens (its worker thread exists by then): the worker
/// threads no connection has claimed yet become claimed, and when that is exactly one it is
/// returned, the connection's own. `None` when it cannot be told (two connections opening at
/// once, or no `/proc`).
#[cfg(target_os = "linux")]
pub(crate) fn claim_new_worker() -> Option<libc::pid_t> {
    let alive = sqlite_workers();
    let mut claimed = CLAIMED.lock().unwrap_or_else(|e| e.into_inner());
    // Bounded by the threads alive: a closed connection's thread leaves the list.
    claimed.retain(|tid| alive.contains(tid));
    let new: Vec<libc::pid_t> = alive.into_iter().filter(|tid| !claimed.contains(tid)).collect();
    claimed.extend_from_slice(&new);
    match new[..] {
        [only] => Some(only),
        _ => None,
    }
}

/// Lowers the priority of the connection's worker `tid` (from [`claim_new_worker`]) by
/// [`WORKER_NICE`] below the process's. Best effort: a failure changes nothing else.
#[cfg(target_os = "linux")]
pub(crate) fn lower(tid: libc::pid_t) {
    // SAFETY: getpriority/setpriority with PRIO_PROCESS and a thread id read and set that
    // thread's niceness on Linux; no memory is passed. Raising niceness needs no privilege.
    unsafe {
        let base = libc::getpriority(libc::PRIO_PROCESS, 0);
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, (base + WORKER_NICE).min(19));
    }
}

/// Called as a connection of the store's main pool opens: its worker keeps the process's
/// priority, and is claimed so the background connection's claim does not mistake it for its own.
pub(crate) fn keep_new_worker() {
    #[cfg(target_os = "linux")]
    claim_new_worker();
}

/// Called as the background connection opens: lowers its worker's priority, or says why not.
pub(crate) fn lower_new_worker() {
    #[cfg(target_os = "linux")]
    match claim_new_worker() {
        Some(tid) => lower(tid),
        None => tracing::info!(
            "the fetch log's database connection keeps the normal CPU priority (its worker thread \
             opened together with another connection's and cannot be told apart)"
        ),
    }
}

/// Called as the WAL checkpointer's connection opens (see `checkpoint`): moves its worker to
/// the `SCHED_IDLE` class (nice 19 where that is refused) and keeps its thread id in `slot`,
/// or says why not.
pub(crate) fn idle_new_worker(slot: &std::sync::atomic::AtomicI32) {
    #[cfg(target_os = "linux")]
    match claim_new_worker() {
        Some(tid) => {
            idle(tid);
            slot.store(tid, std::sync::atomic::Ordering::Relaxed);
        }
        None => tracing::info!(
            "the WAL checkpointer's database connection keeps the normal CPU priority (its worker \
             thread opened together with another connection's and cannot be told apart)"
        ),
    }
    #[cfg(not(target_os = "linux"))]
    let _ = slot;
}

/// Puts thread `tid` in the `SCHED_IDLE` class, or at nice 19 if that is refused. Best effort.
pub(crate) fn idle(tid: i32) {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: sched_setscheduler with a thread id and a valid sched_param; entering
        // SCHED_IDLE needs no privilege (sched(7)).
        let done = unsafe { libc::sched_setscheduler(tid, libc::SCHED_IDLE, &param) } == 0;
        if !done {
            // SAFETY: as in `lower`: a thread's niceness, no memory passed.
            unsafe {
                libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 19);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = tid;
}

/// Moves thread `tid` from `SCHED_IDLE` to the ordinary class at nice 19, for a checkpoint
/// starved too long. Whether it was allowed: leaving `SCHED_IDLE` needs `CAP_SYS_NICE` or an
/// `RLIMIT_NICE` allowing nice 19 (sched(7), "Privileges and resource limits").
pub(crate) fn raise_idle(tid: i32) -> bool {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: as in `lower` and `idle`: a thread's niceness and policy, no memory kept.
        unsafe {
            libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 19);
            let param = libc::sched_param { sched_priority: 0 };
            libc::sched_setscheduler(tid, libc::SCHED_OTHER, &param) == 0
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = tid;
        false
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// A thread's (policy, niceness), from `/proc/self/task/<tid>/stat` (fields 41 and 19,
    /// proc(5)); the fields are counted after the command name's closing parenthesis.
    fn policy_and_nice(tid: i32) -> (i64, i64) {
        let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap();
        let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
        // fields[0] is field 3 (state).
        (fields[41 - 3].parse().unwrap(), fields[19 - 3].parse().unwrap())
    }

    /// Runs `check` with the thread id of a thread of its own, which lives until `check` ends.
    fn on_a_thread(check: impl FnOnce(i32)) {
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let (end_tx, end_rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            // SAFETY: gettid has no arguments and cannot fail.
            tid_tx.send(unsafe { libc::gettid() }).unwrap();
            let _ = end_rx.recv();
        });
        check(tid_rx.recv().unwrap());
        drop(end_tx);
        thread.join().unwrap();
    }

    #[test]
    fn a_starved_checkpointer_is_raised_to_nice_19_and_put_back_to_idle() {
        on_a_thread(|tid| {
            idle(tid);
            assert_eq!(policy_and_nice(tid).0, i64::from(libc::SCHED_IDLE), "the checkpointer starts idle");
            if !raise_idle(tid) {
                // Neither CAP_SYS_NICE nor an RLIMIT_NICE for nice 19: it stays idle.
                assert_eq!(policy_and_nice(tid).0, i64::from(libc::SCHED_IDLE));
                return;
            }
            assert_eq!(policy_and_nice(tid), (i64::from(libc::SCHED_OTHER), 19), "raised: nice 19");
            idle(tid);
            assert_eq!(policy_and_nice(tid).0, i64::from(libc::SCHED_IDLE), "back to idle once it ends");
        });
    }
}
