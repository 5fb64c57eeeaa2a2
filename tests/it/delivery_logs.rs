//! No secret value ever reaches a log line: a failing run (unusable secrets, CleverTap
//! refusing the credentials, bad requests, outages) is logged at TRACE into a buffer, and the
//! buffer is searched for the passcode and the webhook token.

use crate::delivery::{PASSCODE, delivery, policy, record};
use crate::support::mock_clevertap::{MockCleverTap, Reply};
use crate::support::moto::MotoServer;
use rudder_clevertap::credentials::{SecretsManagerSource, secrets_client};
use rudder_clevertap::ports::SettingsSource;
use rudder_clevertap::settings::DestinationId;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

const TOKEN: &str = "tok-very-secret-456";

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Buffer {
    type Writer = Buffer;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Set in the child process that runs the capture alone.
const CHILD_ENV: &str = "RUDDER_CLEVERTAP_LOG_CAPTURE_CHILD";
const THIS_TEST: &str =
    "delivery_logs::no_log_line_of_a_failing_run_holds_the_passcode_or_the_token";

#[test]
fn no_log_line_of_a_failing_run_holds_the_passcode_or_the_token() {
    if std::env::var_os(CHILD_ENV).is_some() {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(failing_run_logs_no_secret());
        return;
    }
    // tracing caches per call site, process-wide, whether anyone listens; tests running on
    // other threads race a scoped subscriber. So the capture runs alone, in a child process
    // with a global subscriber.
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([THIS_TEST, "--exact", "--test-threads=1", "--nocapture"])
        .env(CHILD_ENV, "1")
        .output()
        .unwrap();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("1 passed"),
        "the child ran the capture: {text}"
    );
}

async fn failing_run_logs_no_secret() {
    let buffer = Buffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(buffer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let moto = MotoServer::start();
    let sdk = moto.sdk_config().await;
    let admin = aws_sdk_secretsmanager::Client::new(&sdk);
    let good =
        format!(r#"{{"accountId":"ACC-1","passcode":"{PASSCODE}","webhookToken":"{TOKEN}"}}"#);
    let bad_region = format!(
        r#"{{"accountId":"ACC-1","passcode":"{PASSCODE}","webhookToken":"{TOKEN}","region":"evil.example"}}"#
    );
    let broken = format!(r#"{{"accountId":"ACC-1","passcode":"{PASSCODE}""#);
    for (name, value) in [
        ("good", &good),
        ("bad-region", &bad_region),
        ("broken", &broken),
    ] {
        admin
            .create_secret()
            .name(format!("rudder-clevertap/{name}"))
            .secret_string(value)
            .send()
            .await
            .unwrap();
    }
    let source = SecretsManagerSource::new(
        secrets_client(&sdk),
        "rudder-clevertap/".into(),
        Duration::from_secs(300),
    );
    for name in ["bad-region", "broken", "missing"] {
        let err = source
            .settings(&DestinationId::parse(name).unwrap())
            .await
            .unwrap_err();
        assert!(!err.to_string().contains(PASSCODE));
    }
    let settings = source
        .settings(&DestinationId::parse("good").unwrap())
        .await
        .unwrap();

    let mock = MockCleverTap::start();
    mock.script([
        Reply::status(500, "down"),
        Reply::status(400, "bad"),
        Reply::status(400, "bad"),
        Reply::status(400, "bad"),
        Reply::status(200, "garbage"),
    ]);
    mock.respond_with(|_| Reply::status(401, r#"{"status":"fail","error":"Invalid Credentials"}"#));
    let mut p = policy(&mock);
    p.retry_budget = Duration::from_millis(300);
    let d = delivery(p);
    let events = [vec![record(1)], vec![record(2)], vec![record(3)]];
    let slices: Vec<&[_]> = events.iter().map(Vec::as_slice).collect();
    let report = d
        .upload(&settings, &slices, Instant::now() + Duration::from_secs(5))
        .await;
    assert!(
        report
            .outcomes
            .iter()
            .all(|o| o.status() != rudder_clevertap::outcome::Status::Delivered)
    );
    for outcome in &report.outcomes {
        let reason = outcome.reason().unwrap();
        assert!(!reason.message.contains(PASSCODE), "{reason:?}");
    }
    assert!(!format!("{settings:?} {report:?}").contains(PASSCODE));

    let logs = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("bad-region"),
        "the destination is named:\n{logs}"
    );
    assert!(logs.contains("clevertap request failed"), "{logs}");
    assert!(!logs.contains(PASSCODE), "passcode leaked:\n{logs}");
    assert!(!logs.contains(TOKEN), "token leaked:\n{logs}");
}
