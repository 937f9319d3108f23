//! What every long-running subcommand does the same way: the tokio runtime, the log
//! subscriber and waiting for SIGINT/SIGTERM.

/// A multi-threaded tokio runtime with I/O and timers.
///
/// # Errors
/// `cannot start the runtime: ...` when the OS refuses threads or an event queue.
pub fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))
}

/// Logs to stderr, filtered by `RUST_LOG` or else `default_filter` (`info`, `error` ...).
/// A second call does nothing.
pub fn init_tracing(default_filter: &str) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .with_writer(std::io::stderr)
        .try_init();
}

/// Runs a report-producing job on a new runtime and turns its outcome into the exit status
/// every such subcommand uses: the report on stdout and 0 when `ok(&report)`, 1 when not;
/// `error: ...` on stderr and 2 when the job could not run.
pub fn run_report<R, E, F>(job: F, ok: impl FnOnce(&R) -> bool) -> std::process::ExitCode
where
    R: std::fmt::Display,
    E: std::fmt::Display,
    F: std::future::Future<Output = Result<R, E>>,
{
    use std::process::ExitCode;
    let runtime = match runtime() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(job) {
        Ok(report) => {
            println!("{report}");
            if ok(&report) {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// Waits for SIGINT or (on Unix) SIGTERM.
pub async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
