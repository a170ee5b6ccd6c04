//! `vigil alerts` (not yet implemented).

use crate::Failure;

/// Arguments of `vigil alerts`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `vigil alerts`.
pub fn run(_args: Args) -> Result<(), Failure> {
    Err(Failure::Other("not implemented yet".into()))
}
