//! `sipprov completions SHELL` and `sipprov man DIR`: shell completions and man pages generated
//! from the same clap definition the command line is parsed with, so they cannot drift from it.

use std::path::Path;

use clap::CommandFactory;

use crate::cli::Cli;

/// Prints the completion script for `shell` on stdout.
pub(crate) fn completions(shell: clap_complete::Shell) -> Result<(), String> {
    let mut command = Cli::command();
    clap_complete::generate(shell, &mut command, "sipprov", &mut std::io::stdout());
    Ok(())
}

/// Writes `sipprov.1` and one page per subcommand (`sipprov-device-add.1`, …) into `dir`.
pub(crate) fn man(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    clap_mangen::generate_to(Cli::command(), dir)
        .map_err(|e| format!("cannot write man pages to {}: {e}", dir.display()))?;
    Ok(())
}
