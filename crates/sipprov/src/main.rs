//! `sipprov`: the provisioning server for fleets of SIP phones, and the CLI that manages it.
//!
//! `sipprov serve` runs the server; every other command talks to a running
//! server through its admin API (see [`client`]), so the CLI and the API
//! always agree on validation and on what a phone receives.

#[cfg(feature = "mimalloc")]
mod alloc;
mod cli;
mod client;
mod commands;
mod lock;
mod output;
mod serve;

use clap::Parser;

/// mimalloc instead of glibc's malloc. Serving a config file allocates per request (the
/// request head, the fetch record), and a `perf` profile of the provisioning path under load
/// put a quarter of the core in glibc's allocator (`_int_malloc`, `malloc_consolidate`,
/// `free`; docs/benchmarks.md, "Session 8 run"). mimalloc keeps per-thread free lists and
/// does no consolidation pass, so the same work costs less. Without the `mimalloc` feature the
/// system's malloc is used, for heap profilers that see only it (heaptrack, massif). Called
/// through [`alloc::MiMalloc`], which skips mimalloc's aligned path where it is not needed.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: alloc::MiMalloc = alloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let args = cli::Cli::parse();
    // `serve` and `notify` write to sockets of peers that may vanish (a TLS write is a
    // `writev`, which raises SIGPIPE): with the default action that kills the process without
    // a word, so they keep Rust's "ignore" and see EPIPE as an error instead.
    // An upload too: a server refusing it (413) answers and closes while the file is still
    // being sent, and the refusal is what the user must see.
    let uploads = matches!(
        args.command,
        cli::Command::Firmware(cli::FirmwareCommand::Add { .. })
            | cli::Command::Resource(cli::ResourceCommand::Add { .. })
    );
    if !uploads && !matches!(args.command, cli::Command::Serve(_) | cli::Command::Notify(_)) {
        quiet_on_closed_pipe();
    }
    if matches!(args.command, cli::Command::Serve(_)) {
        no_transparent_huge_pages();
    }
    let runtime = match sipprov_server::runtime::build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Lets a client command die quietly when its reader goes away (`sipprov device list | head`),
/// as Unix tools do, instead of panicking on a failed print. Rust ignores SIGPIPE by default;
/// the server and `notify` keep it ignored, so a phone closing its connection never kills them.
fn quiet_on_closed_pipe() {
    // SAFETY: called once at start, before any thread is spawned; SIG_DFL is a valid handler.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Keeps the server's memory in 4 KiB pages. mimalloc asks for transparent huge pages on its
/// arenas, so a 2 MiB page is resident as soon as one byte of it is touched and stays so while
/// one object in it lives: measured on a million devices, the resident set after start-up and
/// after serving 2,000 of them was 15 MB higher with them (495 MB against 480 MB), all of it
/// pages that are mostly free. The inventory is read at random per request either way.
fn no_transparent_huge_pages() {
    // SAFETY: PR_SET_THP_DISABLE takes plain integers and changes only this process's paging.
    // A kernel without it refuses with EINVAL, which changes nothing, so the result is ignored.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}
