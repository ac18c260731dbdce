//! The async runtime the server runs on, chosen from the CPUs the process may use.
//!
//! With one CPU (pinned with `taskset`, a container limited to one CPU) tokio's multi-thread
//! scheduler still runs its one worker beside the thread that started it and hands work between
//! them; the current-thread scheduler runs every task, the I/O driver and the timers on one
//! thread (blocking work still goes to tokio's blocking pool, and SQLite to sqlx's own thread).
//! `SIPPROV_RUNTIME=current-thread` or `multi-thread` chooses either way. The `sipprov` binary
//! and the `hyper_floor` benchmark example both build theirs here, so the floor is measured on
//! the same scheduler as the server.

/// Builds the runtime: current-thread when the process may use one CPU only (or
/// `SIPPROV_RUNTIME=current-thread`), else multi-thread, with I/O and timers enabled.
///
/// ```
/// let runtime = sipprov_server::runtime::build().expect("a runtime");
/// assert_eq!(runtime.block_on(async { 1 + 1 }), 2);
/// ```
pub fn build() -> std::io::Result<tokio::runtime::Runtime> {
    let one_cpu = std::thread::available_parallelism().is_ok_and(|n| n.get() == 1);
    let current = match std::env::var("SIPPROV_RUNTIME").as_deref() {
        Ok("current-thread") => true,
        Ok("multi-thread") => false,
        _ => one_cpu,
    };
    let mut builder = if current {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    builder.enable_all().build()
}
