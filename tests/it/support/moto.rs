//! A real moto_server (PyPI `moto[server]`, installed into `.venv` by `scripts/tools.sh`) on a
//! free 127.0.0.1 port, one per test that needs it, stopped when dropped.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

pub struct MotoServer {
    child: Child,
    pub endpoint: String,
}

fn install_tools() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let status = Command::new("bash")
            .arg(super::repo_root().join("scripts/tools.sh"))
            .status()
            .expect("run scripts/tools.sh");
        assert!(
            status.success(),
            "scripts/tools.sh failed: cannot install moto_server"
        );
    });
}

impl MotoServer {
    /// Starts moto_server on a port of its own choosing and waits until it answers. The port is
    /// read from moto's "Running on" line: picking a free port first and handing it over would
    /// race with the other tests starting theirs, and two tests could share one server.
    pub fn start() -> MotoServer {
        install_tools();
        let bin = super::repo_root().join(".venv/bin/moto_server");
        let mut child = Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start moto_server");
        let stderr = child.stderr.take().expect("moto_server's stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        // Reads the port, then keeps draining moto's request log so that it never blocks.
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { return };
                if let Some(port) = line
                    .split("Running on http://127.0.0.1:")
                    .nth(1)
                    .and_then(|rest| rest.trim().parse::<u16>().ok())
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(port);
                }
            }
        });
        let port = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("moto_server says which port it runs on");
        let server = MotoServer {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "moto_server did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// An SDK config for this server, with fake credentials and region us-east-1.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new(
                "test", "test", None, None, "moto",
            ))
            .load()
            .await
    }

    /// Environment variables that point the binary's SDK clients at this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
    }
}

impl MotoServer {
    /// Stores each destination's settings as the secret `rudder-clevertap/<id>`.
    pub async fn create_secrets(&self, secrets: &[(&str, serde_json::Value)]) {
        let client = aws_sdk_secretsmanager::Client::new(&self.sdk_config().await);
        for (id, secret) in secrets {
            client
                .create_secret()
                .name(format!("rudder-clevertap/{id}"))
                .secret_string(secret.to_string())
                .send()
                .await
                .expect("create a secret on moto");
        }
    }

    /// Creates an SQS queue and returns its URL.
    pub async fn create_queue(&self, name: &str) -> String {
        self.create_queue_with(name, &[]).await
    }

    /// Creates an SQS queue with these attributes (e.g. a small `MaximumMessageSize`) and
    /// returns its URL.
    pub async fn create_queue_with(
        &self,
        name: &str,
        attributes: &[(aws_sdk_sqs::types::QueueAttributeName, &str)],
    ) -> String {
        attributes
            .iter()
            .fold(
                aws_sdk_sqs::Client::new(&self.sdk_config().await)
                    .create_queue()
                    .queue_name(name),
                |request, (name, value)| request.attributes(name.clone(), *value),
            )
            .send()
            .await
            .expect("create a queue on moto")
            .queue_url()
            .expect("moto answers with the queue URL")
            .to_owned()
    }

    /// Creates a FIFO SQS queue (`name` ends in `.fifo`) and returns its URL.
    pub async fn create_fifo_queue(&self, name: &str) -> String {
        aws_sdk_sqs::Client::new(&self.sdk_config().await)
            .create_queue()
            .queue_name(name)
            .attributes(aws_sdk_sqs::types::QueueAttributeName::FifoQueue, "true")
            .send()
            .await
            .expect("create a FIFO queue on moto")
            .queue_url()
            .expect("moto answers with the queue URL")
            .to_owned()
    }

    /// The messages on a FIFO queue as (body, `MessageGroupId`), polling until `expected`
    /// arrived or 2 s passed.
    pub async fn receive_message_groups(
        &self,
        queue_url: &str,
        expected: usize,
    ) -> Vec<(String, String)> {
        use aws_sdk_sqs::types::MessageSystemAttributeName::MessageGroupId;
        let sqs = aws_sdk_sqs::Client::new(&self.sdk_config().await);
        let mut got = Vec::new();
        let started = Instant::now();
        loop {
            let out = sqs
                .receive_message()
                .queue_url(queue_url)
                .max_number_of_messages(10)
                .message_system_attribute_names(MessageGroupId)
                .send()
                .await
                .expect("receive from moto's SQS");
            for m in out.messages() {
                let group = m
                    .attributes()
                    .and_then(|a| a.get(&MessageGroupId))
                    .cloned()
                    .unwrap_or_default();
                got.push((m.body().unwrap_or("").to_owned(), group));
            }
            if got.len() >= expected || started.elapsed() > Duration::from_secs(2) {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The messages on an SQS queue as (body, string attributes), polling until `expected`
    /// arrived or 2 s passed.
    pub async fn receive_messages(
        &self,
        queue_url: &str,
        expected: usize,
    ) -> Vec<(String, HashMap<String, String>)> {
        let sqs = aws_sdk_sqs::Client::new(&self.sdk_config().await);
        let mut got = Vec::new();
        let started = Instant::now();
        loop {
            let out = sqs
                .receive_message()
                .queue_url(queue_url)
                .max_number_of_messages(10)
                .message_attribute_names("All")
                .send()
                .await
                .expect("receive from moto's SQS");
            for m in out.messages() {
                let attributes = m
                    .message_attributes()
                    .map(|a| {
                        a.iter()
                            .map(|(k, v)| (k.clone(), v.string_value().unwrap_or("").to_owned()))
                            .collect()
                    })
                    .unwrap_or_default();
                got.push((m.body().unwrap_or("").to_owned(), attributes));
            }
            if got.len() >= expected || started.elapsed() > Duration::from_secs(2) {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
