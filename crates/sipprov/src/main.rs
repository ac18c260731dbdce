//! `sipprov`: the provisioning server for fleets of SIP phones, and the CLI that manages it.
//!
//! `sipprov serve` runs the server; every other command talks to a running
//! server through its admin API (see [`client`]), so the CLI and the API
//! always agree on validation and on what a phone receives.

mod cli;
mod client;
mod commands;
mod output;
mod serve;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let args = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
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
