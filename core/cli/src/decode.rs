//! `vigil decode` (not yet implemented).

use crate::Failure;

/// Arguments of `vigil decode`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `vigil decode`.
pub fn run(_args: Args) -> Result<(), Failure> {
    Err(Failure::Other("not implemented yet".into()))
}
