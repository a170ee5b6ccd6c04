//! `vigil`: the developer command.
fn main() {}
