//! `sipprov serve`: configuration (file, then flags), logging, and the server's life.

use sipprov_server::ServerConfig;

use crate::cli::{LogFormat, ServeArgs};

/// Builds the configuration: defaults, then the TOML file, then flags.
pub(crate) fn config(args: &ServeArgs, data_dir: Option<&std::path::Path>) -> Result<ServerConfig, String> {
    let mut cfg = match &args.config {
        Some(path) => ServerConfig::from_file(path).map_err(|e| e.to_string())?,
        None => ServerConfig::default(),
    };
    if let Some(d) = data_dir {
        cfg.data_dir = d.to_path_buf();
    }
    if let Some(a) = args.http_listen {
        cfg.http.listen = a;
    }
    if let Some(a) = args.api_listen {
        cfg.api.listen = a;
    }
    if let Some(a) = args.sip_listen {
        cfg.sip.listen = a;
    }
    if let Some(a) = args.sip_tls_listen {
        cfg.sip.tls.get_or_insert_default().listen = Some(a);
    }
    if let Some(url) = &args.database_url {
        cfg.database_url = Some(url.clone());
    }
    cfg.check().map_err(|e| e.to_string())?;
    Ok(cfg)
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SIPPROV_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    // Colours only on a terminal: in a file or a journal they are escape sequences, and a log
    // whose lines may hold escapes of our own cannot be checked for a stranger's.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    // A line that cannot be written (the log's disk full) is lost, not reported: the subscriber's
    // report of it is an `eprintln!` to the same full stderr, which panics, and took down the
    // task that logged (an admin request's connection, a phone's).
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .log_internal_errors(false);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Runs the server until it fails or is interrupted.
/// `data_dir` is the global `--data-dir`, when given.
pub(crate) async fn run(args: ServeArgs, data_dir: Option<std::path::PathBuf>) -> Result<(), String> {
    let cfg = config(&args, data_dir.as_deref())?;
    init_logging(args.log_format);
    let flavor = tokio::runtime::Handle::current().runtime_flavor();
    tracing::info!(runtime = ?flavor, cpus = std::thread::available_parallelism().map_or(0, |n| n.get()), "async runtime");
    sipprov_server::datadir::create(&cfg.data_dir)
        .map_err(|e| format!("cannot create {}: {e}", cfg.data_dir.display()))?;
    // Held until the process ends: `sipprov restore` refuses while it is, and a second server
    // on the same directory is refused rather than sharing one SQLite file with this one.
    let _lock = crate::lock::DataDirLock::acquire(&cfg.data_dir).map_err(|e| e.to_string())?;
    let mut running = sipprov_server::start(cfg).await.map_err(|e| e.to_string())?;
    release_freed_memory();
    tokio::select! {
        result = running.wait() => return result.map_err(|e| e.to_string()),
        _ = shutdown_signal() => {}
    }
    // The fetch records of the last interval are still in memory: written before exit, once
    // nothing is served any more (see `RunningServer::stop`).
    tracing::info!("shutting down");
    running.stop().await;
    tracing::info!("stopped");
    Ok(())
}

/// Returns to the OS the memory freed while the server loaded its inventory (decoded rows,
/// temporary vectors): mimalloc keeps freed pages for reuse for a while, and at start-up that
/// is megabytes the server will not need again (glibc's `malloc_trim` did this before mimalloc).
#[cfg(feature = "mimalloc")]
fn release_freed_memory() {
    // SAFETY: mi_collect only returns free pages of mimalloc's heaps; it touches no live allocation.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

/// With the system's malloc (a profiling build), glibc's own trim.
#[cfg(not(feature = "mimalloc"))]
fn release_freed_memory() {
    // SAFETY: malloc_trim only returns free memory of glibc's heap; it touches no live allocation.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    unsafe {
        libc::malloc_trim(0);
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
