//! The Lambda side of the binary: configuration and clients built once per container, then the
//! runtime loop hands every invocation to the one `Handler`. Split by concern: start-up
//! (`clients`), allocator settings (`allocator`), the raw payload (`raw_payload`), the loop
//! (`runtime_loop`) and what it writes per invocation (`logs`). Kept out of `main.rs` so the
//! binary only dispatches.
//!
//! What an operator gets per invocation, all on stdout (Lambda ships it to CloudWatch Logs):
//! logs (`logs`: JSON when the function's log format is JSON, level from
//! `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG`), inside lambda_runtime's span carrying the request and
//! trace ids; one `invocation summary` line; and the EMF lines CloudWatch turns into metrics
//! (crate::metrics).

mod allocator;
mod clients;
pub mod logs;
mod offline;
mod raw_payload;
mod runtime_loop;

pub use clients::run;
pub use runtime_loop::{deadline_from_epoch_ms, serve};

use crate::clevertap::client::ClientBuildError;
use crate::config::{Config, vars};
use allocator::tune_allocator;
use std::process::ExitCode;

/// Why the container could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("could not build the CleverTap HTTP client")]
    HttpClient(#[from] ClientBuildError),
    #[error("could not start the async runtime")]
    Runtime(#[source] std::io::Error),
    #[error("invalid {0}: Lambda sets it for every function; it is missing or not a number")]
    RuntimeEnvironment(&'static str),
    #[error("the Lambda runtime loop failed: {0}")]
    Loop(lambda_runtime::Error),
}

impl StartError {
    /// Stable snake_case code, for the log line.
    pub const fn code(&self) -> &'static str {
        match self {
            StartError::Config(_) => "invalid_configuration",
            StartError::HttpClient(_) => "http_client_failed",
            StartError::Runtime(_) => "async_runtime_failed",
            StartError::RuntimeEnvironment(_) => "invalid_lambda_environment",
            StartError::Loop(_) => "runtime_loop_failed",
        }
    }
}

/// Variables Lambda itself sets, which the runtime library reads (and would panic without).
const LAMBDA_VARIABLES: [&str; 3] = [
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
];

/// Checks Lambda's own variables up front, so a broken environment is a message, not a panic.
fn check_lambda_environment(lookup: impl Fn(&str) -> Option<String>) -> Result<(), StartError> {
    for name in LAMBDA_VARIABLES {
        let value = lookup(name).ok_or(StartError::RuntimeEnvironment(name))?;
        if name == "AWS_LAMBDA_FUNCTION_MEMORY_SIZE" && value.trim().parse::<i32>().is_err() {
            return Err(StartError::RuntimeEnvironment(name));
        }
    }
    Ok(())
}

/// The binary started without a subcommand: run the Lambda runtime loop, or explain why not.
pub fn main() -> ExitCode {
    if std::env::var_os(vars::AWS_LAMBDA_RUNTIME_API).is_none() {
        eprintln!(
            "rudder-clevertap: {} is not set, so this is not a Lambda container.\n\
             Run `rudder-clevertap --help` for the commands (invoke, transform, dead-letters).",
            vars::AWS_LAMBDA_RUNTIME_API
        );
        return ExitCode::from(2);
    }
    // stdout, JSON when AWS_LAMBDA_LOG_FORMAT=JSON, level from AWS_LAMBDA_LOG_LEVEL or RUST_LOG.
    logs::init_lambda_subscriber();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => return fail(&StartError::Config(e)),
    };
    if let Err(e) = check_lambda_environment(|name| std::env::var(name).ok()) {
        return fail(&e);
    }
    tune_allocator();
    // One thread: Lambda runs one invocation at a time, and the work of one is a CPU-bound
    // transform then I/O; worker threads would only add their own malloc arenas and start-up.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&StartError::Runtime(e)),
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn fail(e: &StartError) -> ExitCode {
    tracing::error!(code = e.code(), error = %e, "start-up failed");
    eprintln!("rudder-clevertap: {e}");
    ExitCode::from(2)
}

/// Logs of the CLI commands (`invoke`, `transform`): stderr, so stdout keeps only the command's
/// output; key/value fields (or JSON lines), filtered by `RUST_LOG` (default `info`). The Lambda
/// runtime loop uses lambda_runtime's own subscriber instead (see [`main`]).
pub fn init_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env(vars::RUST_LOG)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    let _ = if json {
        builder.json().with_current_span(false).try_init()
    } else {
        builder.compact().without_time().try_init()
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_broken_lambda_variable_is_named_instead_of_a_panic() {
        let all = |name: &str| {
            Some(
                if name.ends_with("MEMORY_SIZE") {
                    "128"
                } else {
                    "x"
                }
                .to_owned(),
            )
        };
        assert!(check_lambda_environment(all).is_ok());
        let err = check_lambda_environment(|name| all(name).filter(|_| !name.ends_with("NAME")))
            .unwrap_err();
        assert!(
            err.to_string().contains("AWS_LAMBDA_FUNCTION_NAME"),
            "{err}"
        );
        let err = check_lambda_environment(|name| {
            if name.ends_with("MEMORY_SIZE") {
                Some("lots".into())
            } else {
                all(name)
            }
        })
        .unwrap_err();
        assert!(
            err.to_string().contains("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"),
            "{err}"
        );
    }
}
