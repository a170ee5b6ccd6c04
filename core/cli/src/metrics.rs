//! `vigil metrics` (not yet implemented).

use crate::Failure;

/// Arguments of `vigil metrics`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `vigil metrics`.
pub fn run(_args: Args) -> Result<(), Failure> {
    Err(Failure::Other("not implemented yet".into()))
}
