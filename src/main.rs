//! The `rudder-clevertap` binary: wiring only (docs/contracts.md §1).

use std::process::ExitCode;

fn main() -> ExitCode {
    // No arguments: the Lambda runtime loop (it explains itself outside Lambda).
    if std::env::args_os().len() <= 1 {
        return rudder_clevertap::lambda::main();
    }
    rudder_clevertap::cli::run(std::env::args_os())
}
