//! `rudder-clevertap dead-letters summary|redrive` (docs/contracts.md §1): what is in the
//! dead-letter queue, and moving letters back after a fix, without writing code against SQS.
//! `summary` reads without consuming (every letter visible again at the end); `redrive` moves
//! only the letters of the chosen code, each sent before it is deleted. Output is one JSON
//! object on stdout; AWS credentials and region come from the usual SDK sources.

use crate::aws::sqs_batch::Target;
use clap::Subcommand;
use serde_json::{Value, json};
use std::process::ExitCode;

pub mod redrive;
pub mod scan;
pub mod summary;

/// Default and largest number of letters one run reads: SQS keeps at most 120,000 messages of a
/// standard queue in flight, and every letter read stays in flight until the run ends.
pub const DEFAULT_MAX_LETTERS: u32 = 10_000;
pub const MAX_LETTERS_LIMIT: i64 = 100_000;

#[derive(Debug, clap::Args)]
pub struct DeadLettersArgs {
    #[command(subcommand)]
    pub command: DeadLettersCommand,
}

#[derive(Debug, Subcommand)]
pub enum DeadLettersCommand {
    /// Count the letters by rejectionCode and destinationId, one example each; consumes nothing.
    Summary(SummaryArgs),
    /// Move letters (of one rejectionCode with --code) back to the events queue.
    Redrive(RedriveArgs),
}

#[derive(Debug, clap::Args)]
pub struct SummaryArgs {
    /// The dead-letter queue's URL (the stack's DeadLetterQueueUrl output).
    #[arg(long, value_name = "URL")]
    pub queue_url: String,
    /// Read at most this many letters.
    #[arg(long, default_value_t = DEFAULT_MAX_LETTERS,
          value_parser = clap::value_parser!(u32).range(1..=MAX_LETTERS_LIMIT))]
    pub max: u32,
}

#[derive(Debug, clap::Args)]
pub struct RedriveArgs {
    /// The dead-letter queue's URL (the stack's DeadLetterQueueUrl output).
    #[arg(long, value_name = "URL")]
    pub queue_url: String,
    /// The events queue to move them to (the stack's QueueUrl output).
    #[arg(long, value_name = "URL")]
    pub to: String,
    /// Only letters with this rejectionCode (`kept_failing`: those SQS moved, without one).
    #[arg(long, value_name = "CODE")]
    pub code: Option<String>,
    /// Read at most this many letters.
    #[arg(long, default_value_t = DEFAULT_MAX_LETTERS,
          value_parser = clap::value_parser!(u32).range(1..=MAX_LETTERS_LIMIT))]
    pub max: u32,
}

/// Exit status: 0 done; 1 `redrive` left some chosen letters behind (said on stdout); 2 usage,
/// or a queue that cannot be read.
pub fn main(args: DeadLettersArgs) -> ExitCode {
    let (name, checked) = match &args.command {
        DeadLettersCommand::Summary(a) => ("summary", check_url("--queue-url", &a.queue_url)),
        DeadLettersCommand::Redrive(a) => ("redrive", check_redrive(a)),
    };
    if let Err(problem) = checked {
        eprintln!("rudder-clevertap dead-letters {name}: {problem}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rudder-clevertap dead-letters {name}: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async {
        let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let client = aws_sdk_sqs::Client::new(&sdk);
        match args.command {
            DeadLettersCommand::Summary(a) => run_summary(client, &a).await.map(|v| (v, true)),
            DeadLettersCommand::Redrive(a) => run_redrive(client, &a).await,
        }
    });
    match result {
        Ok((output, complete)) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&output).unwrap_or_default()
            );
            if complete {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("rudder-clevertap dead-letters {name}: {e}");
            ExitCode::from(2)
        }
    }
}

fn check_url(flag: &str, url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(r) if !r.is_empty() && !url.contains(char::is_whitespace) => Ok(()),
        _ => Err(format!(
            "{flag}: expected a queue URL (https://...), got {url:?}"
        )),
    }
}

fn check_redrive(a: &RedriveArgs) -> Result<(), String> {
    check_url("--queue-url", &a.queue_url)?;
    check_url("--to", &a.to)?;
    if a.queue_url.trim_end_matches('/') == a.to.trim_end_matches('/') {
        return Err("--to names the dead-letter queue itself".to_owned());
    }
    if a.code.as_deref().is_some_and(str::is_empty) {
        return Err("--code: empty".to_owned());
    }
    Ok(())
}

async fn run_summary(client: aws_sdk_sqs::Client, a: &SummaryArgs) -> Result<Value, String> {
    let mut scanner = scan::Scanner::new(client, &a.queue_url, a.max as usize);
    let approximate = scanner
        .approximate_total()
        .await
        .map_err(|e| e.to_string())?;
    let mut tally = summary::Tally::default();
    let scanned = async {
        while let Some(page) = scanner.next_page().await? {
            page.iter().for_each(|l| tally.add(l));
        }
        Ok::<(), scan::ScanError>(())
    }
    .await;
    // Visible again whatever happened, so the queue is left as it was found.
    let not_restored = scanner.release().await;
    scanned.map_err(|e| e.to_string())?;
    let mut out = json!({
        "queueUrl": a.queue_url,
        "approximateLetters": approximate,
        "read": scanner.read(),
        "stoppedAtMax": scanner.stopped_at_max(),
        "visibilityNotRestored": not_restored,
    });
    if let (Some(out), Value::Object(t)) = (out.as_object_mut(), tally.to_json()) {
        out.extend(t);
    }
    Ok(out)
}

async fn run_redrive(
    client: aws_sdk_sqs::Client,
    a: &RedriveArgs,
) -> Result<(Value, bool), String> {
    let to = Target::new(client.clone(), a.to.trim_end_matches('/'));
    let mut scanner = scan::Scanner::new(client, &a.queue_url, a.max as usize);
    let report = redrive::redrive(&mut scanner, &to, a.code.as_deref()).await;
    let not_restored = scanner.release().await;
    let report = report.map_err(|e| e.to_string())?;
    let mut out = report.to_json();
    out["queueUrl"] = json!(a.queue_url);
    out["to"] = json!(a.to);
    out["code"] = json!(a.code);
    out["read"] = json!(scanner.read());
    out["stoppedAtMax"] = json!(scanner.stopped_at_max());
    out["visibilityNotRestored"] = json!(not_restored);
    Ok((out, report.complete()))
}
