//! One file per subcommand: its clap `Args` and `exec(args) -> Result`.
pub mod reproduce;
