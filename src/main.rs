//! The `rudder-clevertap` binary: wiring only.

use std::process::ExitCode;

fn main() -> ExitCode {
    // ---- Lambda: with no arguments and AWS_LAMBDA_RUNTIME_API set, the runtime loop runs
    // here (added by the Lambda work). ----
    rudder_clevertap::cli::run(std::env::args_os())
}
