//! `vigil reduce` (not yet implemented).

use crate::Failure;

/// Arguments of `vigil reduce`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `vigil reduce`.
pub fn run(_args: Args) -> Result<(), Failure> {
    Err(Failure::Other("not implemented yet".into()))
}
