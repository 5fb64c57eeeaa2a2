//! The command line (docs/contracts.md §1): `transform` runs the pure mapping on a file with no
//! network; `invoke` runs the real handler once on a Lambda event file; `dead-letters` reads
//! and redrives the dead-letter queue. Only argument parsing
//! lives here; each command has its own module.

use clap::{Parser, Subcommand};
use std::ffi::OsString;
use std::process::ExitCode;

pub mod dead_letters;
pub mod invoke;
pub mod transform;

/// Delivers RudderStack events to CleverTap; the subcommands run it on any machine.
#[derive(Debug, Parser)]
#[command(
    name = "rudder-clevertap",
    version,
    about,
    arg_required_else_help = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Transform RudderStack events into the CleverTap requests they would become (no network).
    Transform(transform::TransformArgs),
    /// Run the real handler once on a Lambda event file and print its JSON response.
    Invoke(invoke::InvokeArgs),
    /// Look into the dead-letter queue, or move letters back to the events queue.
    DeadLetters(dead_letters::DeadLettersArgs),
}

/// Parses the arguments and runs the command. Usage errors exit with status 2 (clap).
pub fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = Cli::parse_from(args);
    match cli.command {
        Command::Transform(args) => transform::run(&args),
        Command::Invoke(args) => invoke::main(args),
        Command::DeadLetters(args) => dead_letters::main(args),
    }
}
