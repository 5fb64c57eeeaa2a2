//! The command line (design.md §1): no subcommand runs the Lambda runtime loop; the subcommands
//! run the same code by hand on any machine.

pub mod invoke;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "rudder-clevertap",
    version,
    about = "Delivers RudderStack events to CleverTap (AWS Lambda)"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the real handler once on a Lambda event file and print its JSON response.
    Invoke(invoke::InvokeArgs),
}
