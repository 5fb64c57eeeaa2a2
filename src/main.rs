//! The `rudder-clevertap` binary: wiring only (design.md §1).

use clap::Parser;
use rudder_clevertap::cli::{Cli, Command};
use std::process::ExitCode;

fn main() -> ExitCode {
    match Cli::parse().command {
        None => rudder_clevertap::lambda::main(),
        Some(Command::Invoke(args)) => rudder_clevertap::cli::invoke::main(args),
    }
}
