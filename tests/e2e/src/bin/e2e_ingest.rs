//! `e2e-ingest DATABASE LISTEN`: the real ingest service as its own process,
//! composed exactly as `vigil-ingest serve` composes it (storage opened by
//! URL or path, PostgreSQL live fan-out, the dead-man's switch, and the
//! library's public [`vigil_ingest::serve::serve`] entry point), so the
//! fault suite can SIGKILL and restart it. A separate binary because an
//! integration test only gets `CARGO_BIN_EXE_*` for its own package.
//!
//! Prints `listening http://ADDR` on stdout once bound.

use std::path::PathBuf;
use std::process::ExitCode;

use vigil_ingest::ServiceState;
use vigil_ingest::serve::{ServeOptions, serve, shutdown_signal};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(database), Some(listen)) = (args.next(), args.next()) else {
        eprintln!("usage: e2e-ingest DATABASE LISTEN");
        return ExitCode::FAILURE;
    };
    match run(PathBuf::from(database), &listen) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(database: PathBuf, listen: &str) -> Result<(), Box<dyn std::error::Error>> {
    let listen = listen.parse()?;
    let store = vigil_ingest::storage::open(&database)?;
    // The fault suite's phones call sync-now in a tight loop (so that kills
    // land mid-sync).
    let limits = vigil_e2e::service::unthrottled_limits();
    let mut state = ServiceState::new(store, limits);
    if let Some(url) = database
        .to_str()
        .filter(|u| vigil_ingest::storage::postgres::is_postgres_url(u))
    {
        let target = vigil_ingest::storage::postgres::Target::parse(url)?;
        let fanout =
            vigil_ingest::storage::pg_notify::PgLiveFanout::start(target, state.bus.clone())?;
        state = state.with_fanout(std::sync::Arc::new(fanout));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let _enter = runtime.enter();
    vigil_ingest::deadman::spawn(
        state.clone(),
        vigil_ingest::deadman::DeadManConfig::default(),
    );
    let opts = ServeOptions {
        listen,
        tls: None,
        insecure_behind_proxy: false,
        connections: vigil_ingest::serve::ConnectionLimits::default(),
    };
    runtime.block_on(serve(state, opts, shutdown_signal(), |addr, _| {
        println!("listening http://{addr}");
    }))?;
    Ok(())
}
