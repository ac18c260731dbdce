//! SQLite's worker threads run below the rest of the process's CPU priority.
//!
//! sqlx runs each SQLite connection on a thread of its own (`sqlx-sqlite-worker-N`), where
//! every statement's SQLite and kernel page-cache work happens. On a single node that work is
//! mostly the fetch log's interval write, which nobody waits for; the threads serving phones
//! are the process's others. Under load both want the same core, and the scheduler shares it
//! by weight: at niceness +[`WORKER_NICE`] a worker gets about a quarter of a core contended
//! by one busy thread of the process's own niceness, and all of an idle one. A quarter leaves
//! the fetch log's writes (a few tens of milliseconds per interval under benchmark load) far
//! inside their interval, so its queue does not fill.

/// How much nicer than the process the workers are (Linux nice levels: each step about 1.25x
/// less CPU weight; +5 is about a third of the weight).
pub(crate) const WORKER_NICE: i32 = 5;

/// Lowers the priority of every SQLite worker thread still at the process's priority; called
/// as each connection opens (its thread exists by then). Best effort: a failure changes
/// nothing else.
#[cfg(target_os = "linux")]
pub(crate) fn lower_sqlite_workers() {
    // SAFETY: getpriority reads the calling process's niceness; no memory is passed.
    let base = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return };
    for task in tasks.flatten() {
        let Some(tid) = task.file_name().to_str().and_then(|t| t.parse::<libc::id_t>().ok()) else { continue };
        // The kernel keeps the first 15 bytes of a thread's name.
        let is_worker =
            std::fs::read_to_string(task.path().join("comm")).is_ok_and(|c| c.starts_with("sqlx-sqlite-wor"));
        if !is_worker {
            continue;
        }
        // SAFETY: on Linux PRIO_PROCESS with a thread id reads and sets that thread's niceness;
        // no memory is passed. Raising niceness needs no privilege.
        unsafe {
            if libc::getpriority(libc::PRIO_PROCESS, tid) == base {
                libc::setpriority(libc::PRIO_PROCESS, tid, (base + WORKER_NICE).min(19));
            }
        }
    }
}

/// Elsewhere the workers keep the process's priority.
#[cfg(not(target_os = "linux"))]
pub(crate) fn lower_sqlite_workers() {}
