//! `ipvlan-rs`: a Docker managed (v2) network plugin that gives containers
//! IPVLAN or MACVLAN links on a host interface, with its own IPAM.
//!
//! This binary serves the library's app (`ipvlan_rs`: settings, state,
//! router) as a process: logging, the state dir, reconcile at start, the
//! unix socket, signals and shutdown. All protocol knowledge lives in the
//! `protocol` crate, addresses in `ipam`, links in `ipvlan-driver`.
//!
//! Invariants: the socket is mode 0600; a live socket of another instance
//! is never taken over; every acknowledged change is on disk first; the
//! Docker API is never called (the engine starts plugins before it serves
//! its API).

use anyhow::{Context, bail};
use clap::Parser;
use ipvlan_rs::{App, Config};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use tokio::net::UnixListener;
use tokio::signal::unix::{SignalKind, signal};

fn main() -> std::process::ExitCode {
    let config = Config::parse();
    if let Some(ipvlan_rs::cli::Command::Status(args)) = &config.command {
        return status(args);
    }
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `ipvlan-rs status`: no logging set up, the answer on stdout.
fn status(args: &ipvlan_rs::cli::StatusArgs) -> std::process::ExitCode {
    let shown = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.into())
        .and_then(|rt| rt.block_on(ipvlan_rs::cli::status(args)));
    match shown {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ipvlan-rs status: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    tracing::info!(version = env!("CARGO_PKG_VERSION"), socket = %config.socket.display(), state_dir = %config.state_dir.display(), scope = %config.scope, "starting");
    std::fs::create_dir_all(&config.state_dir)
        .with_context(|| format!("creating state dir {}", config.state_dir.display()))?;
    std::fs::set_permissions(&config.state_dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("restricting state dir {}", config.state_dir.display()))?;

    let app = Arc::new(App::open(&config)?);
    if let Err(e) = app.driver.reconcile().await {
        tracing::error!(error = %e, "reconciling links with the kernel failed; continuing");
    }
    // DHCP leases of dhcp=on networks, reloaded with the state, go on being renewed
    tokio::spawn(app.driver.clone().run_renewals());

    // the handlers go in before the socket appears: a SIGTERM from a
    // client that saw the socket would otherwise kill the process (the
    // default action) instead of stopping it cleanly
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    // bound before the plugin socket: a wrong address fails the start
    // before the engine sees a plugin
    let metrics_listener = match config.metrics_addr.0 {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding METRICS_ADDR {addr}"))?,
        ),
        None => None,
    };
    let listener = bind(&config.socket)?;
    tracing::info!(socket = %config.socket.display(), "serving");
    let metrics_server = metrics_listener.map(|tcp| {
        match tcp.local_addr() {
            Ok(addr) => tracing::info!(%addr, "serving /metrics over TCP"),
            Err(e) => tracing::warn!(error = %e, "serving /metrics over TCP"),
        }
        let router = ipvlan_rs::metrics_app(app.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(tcp, router).await {
                tracing::error!(error = %e, "the /metrics listener stopped");
            }
        })
    });
    let shutdown = {
        let app = app.clone();
        async move {
            tokio::select! {
                _ = term.recv() => { tracing::info!("SIGTERM: shutting down"); false }
                _ = int.recv() => { tracing::info!("SIGINT: shutting down"); false }
                _ = app.fatal.notified() => { tracing::error!("state store failed: exiting so the engine restarts the plugin"); true }
            }
        }
    };
    let (tx, rx) = tokio::sync::oneshot::channel::<bool>();
    let serve =
        axum::serve(listener, ipvlan_rs::app(app.clone())).with_graceful_shutdown(async move {
            let fatal = shutdown.await;
            let _ = tx.send(fatal);
        });
    let served = serve.await;
    if let Some(metrics_server) = metrics_server {
        metrics_server.abort();
    }
    let _ = std::fs::remove_file(&config.socket);
    // links of deleted endpoints go before we do (a crash leaves them to
    // the next start's reconcile)
    app.driver.flush_deletions().await;
    app.ipam.close();
    app.driver.close();
    served.context("serving the plugin socket")?;
    if rx.await.unwrap_or(false) {
        bail!("stopped after a state store failure");
    }
    tracing::info!("stopped");
    Ok(())
}

/// Bind the plugin socket: replace a stale file left by a crash, refuse a
/// socket another process still answers on.
fn bind(path: &Path) -> anyhow::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating socket dir {}", dir.display()))?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            bail!(
                "another process is serving on {}; refusing to take it over",
                path.display()
            );
        }
        tracing::warn!(socket = %path.display(), "removing stale socket");
        std::fs::remove_file(path)
            .with_context(|| format!("removing stale socket {}", path.display()))?;
    }
    // Private before anyone can reach it: bound under a staging name,
    // restricted, then linked to its name (a link, unlike a rename, fails
    // if another instance took the name meanwhile). Bound at its name, the
    // socket answered for a moment with the umask's mode.
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let staging = path.with_file_name(format!(".{file_name}.{}", std::process::id()));
    let _ = std::fs::remove_file(&staging);
    let listener =
        UnixListener::bind(&staging).with_context(|| format!("binding {}", staging.display()))?;
    let placed = std::fs::set_permissions(&staging, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("restricting {}", staging.display()))
        .and_then(|()| {
            std::fs::hard_link(&staging, path)
                .with_context(|| format!("placing the socket at {}", path.display()))
        });
    let _ = std::fs::remove_file(&staging);
    placed?;
    Ok(listener)
}
