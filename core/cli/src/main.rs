//! `vigil`: the developer command for the core.
//!
//! Each subcommand runs the real core code on files or bytes, so what a
//! developer sees here is what the SDK does on a phone. Exit codes: 0 on
//! success, 2 on malformed input (one line on stderr naming what is wrong),
//! 1 on any other failure.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod alerts;
mod decode;
mod fleet;
mod metrics;
mod offline_demo;
mod reduce;
mod reduction_check;
mod sdk_run;
mod simulate;
mod trace;
mod wire_meter;

/// Vigil developer tool.
#[derive(Debug, Parser)]
#[command(name = "vigil", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The fleet demo: the ingest service and a fleet of simulated patients'
    /// phones running the SDK, on accelerated time, until Ctrl-C.
    Demo(fleet::Args),
    /// The on-phone pipeline alone, no cloud: six patients, two weeks each,
    /// on simulated time, in seconds.
    OfflineDemo(offline_demo::Args),
    /// Decode one characteristic value (hex) into JSON records.
    Decode(decode::Args),
    /// Keep only the readings the cloud needs, within a bounded error.
    Reduce(reduce::Args),
    /// The reduction the product delivers: SDK, buffer, sync and the real
    /// ingest service on simulated time, against the same reducer offline.
    ReductionCheck(reduction_check::Args),
    /// Consensus CGM metrics of a glucose trace.
    Metrics(metrics::Args),
    /// Every alert start and end the engine raises on a glucose trace.
    Alerts(alerts::Args),
    /// Readings of a simulated device, through the real codecs and session.
    Simulate(simulate::Args),
}

/// A failure with the exit code it maps to.
#[derive(Debug)]
pub enum Failure {
    /// Malformed input: exit 2.
    Input(String),
    /// Anything else (I/O, ...): exit 1.
    Other(String),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => fleet::run(args),
        Command::OfflineDemo(args) => offline_demo::run(args),
        Command::Decode(args) => decode::run(args),
        Command::Reduce(args) => reduce::run(args),
        Command::ReductionCheck(args) => reduction_check::run(args),
        Command::Metrics(args) => metrics::run(args),
        Command::Alerts(args) => alerts::run(args),
        Command::Simulate(args) => simulate::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Input(msg)) => {
            eprintln!("vigil: {msg}");
            ExitCode::from(2)
        }
        Err(Failure::Other(msg)) => {
            eprintln!("vigil: {msg}");
            ExitCode::FAILURE
        }
    }
}
