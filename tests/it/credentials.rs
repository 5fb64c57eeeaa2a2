//! Destination settings through the real AWS SDK against moto_server: found, missing,
//! malformed, cached with one fetch for many concurrent lookups, refetched after the TTL,
//! dropped after a 401 from CleverTap, and served stale for a bounded time while Secrets
//! Manager fails.

use crate::delivery::{PASSCODE, delivery, policy, record};
use crate::support::mock_clevertap::{MockCleverTap, Reply};
use crate::support::moto::MotoServer;
use aws_sdk_secretsmanager::config::interceptors::BeforeSerializationInterceptorContextRef;
use aws_sdk_secretsmanager::config::{ConfigBag, Intercept};
use aws_sdk_secretsmanager::error::BoxError;
use rudder_clevertap::clevertap::endpoint::Region;
use rudder_clevertap::credentials::{
    CredentialsError, SecretsManagerSource, secrets_client_config,
};
use rudder_clevertap::ports::SettingsSource;
use rudder_clevertap::settings::DestinationId;
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

const PREFIX: &str = "rudder-clevertap/";

/// Counts the Secrets Manager calls a client makes.
#[derive(Debug, Default, Clone)]
struct CallCounter(Arc<AtomicUsize>);

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CallCounter"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

impl CallCounter {
    fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// Fails every call while set: Secrets Manager "down" (the error is not a service error, so
/// the source sees it as `secrets_unavailable`).
#[derive(Debug, Default, Clone)]
struct Outage(Arc<AtomicBool>);

impl Intercept for Outage {
    fn name(&self) -> &'static str {
        "Outage"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if self.0.load(Ordering::SeqCst) {
            return Err("Secrets Manager is down (test)".into());
        }
        Ok(())
    }
}

impl Outage {
    fn set(&self, down: bool) {
        self.0.store(down, Ordering::SeqCst);
    }
}

struct Fixture {
    _moto: MotoServer,
    admin: aws_sdk_secretsmanager::Client,
    /// The client `source` uses (interceptors included), for another source in a test.
    client: aws_sdk_secretsmanager::Client,
    source: Arc<SecretsManagerSource>,
    calls: CallCounter,
    outage: Outage,
}

async fn fixture(ttl: Duration) -> Fixture {
    fixture_stale(ttl, rudder_clevertap::config::DEFAULT_SECRETS_STALE).await
}

async fn fixture_stale(ttl: Duration, stale: Duration) -> Fixture {
    let moto = MotoServer::start();
    let sdk = moto.sdk_config().await;
    let admin = aws_sdk_secretsmanager::Client::new(&sdk);
    let calls = CallCounter::default();
    let outage = Outage::default();
    let client = aws_sdk_secretsmanager::Client::from_conf(
        secrets_client_config(&sdk)
            .interceptor(calls.clone())
            .interceptor(outage.clone())
            .build(),
    );
    let source = Arc::new(
        SecretsManagerSource::new(client.clone(), PREFIX.into(), ttl).with_stale_for(stale),
    );
    Fixture {
        _moto: moto,
        admin,
        client,
        source,
        calls,
        outage,
    }
}

impl Fixture {
    async fn put(&self, destination: &str, value: &str) {
        self.admin
            .create_secret()
            .name(format!("{PREFIX}{destination}"))
            .secret_string(value)
            .send()
            .await
            .unwrap();
    }

    async fn update(&self, destination: &str, value: &str) {
        self.admin
            .put_secret_value()
            .secret_id(format!("{PREFIX}{destination}"))
            .secret_string(value)
            .send()
            .await
            .unwrap();
    }
}

fn id(s: &str) -> DestinationId {
    DestinationId::parse(s).unwrap()
}

fn secret(account: &str) -> String {
    format!(
        r#"{{"accountId":"{account}","passcode":"{PASSCODE}","region":"sg1","trackAnonymous":"true","webhookToken":"tok-very-secret"}}"#
    )
}

#[tokio::test]
async fn a_stored_secret_gives_the_destination_settings() {
    let f = fixture(Duration::from_secs(300)).await;
    f.put("dest-1", &secret("ACC-1")).await;
    let s = f.source.settings(&id("dest-1")).await.unwrap();
    assert_eq!(s.account_id, "ACC-1");
    assert_eq!(s.passcode.expose(), PASSCODE);
    assert_eq!(s.region, Region::Sg1);
    assert!(s.mapping.track_anonymous);
    assert_eq!(
        s.webhook_token.as_ref().map(|t| t.expose()),
        Some("tok-very-secret")
    );
}

#[tokio::test]
async fn a_missing_secret_gives_retry_with_code_secret_not_found_and_is_remembered() {
    let f = fixture(Duration::from_secs(300)).await;
    let err = f.source.settings(&id("dest-none")).await.unwrap_err();
    assert!(matches!(err, CredentialsError::NotFound(_)), "{err:?}");
    assert_eq!(err.reason().code, "secret_not_found");
    assert!(err.to_string().contains("dest-none"));
    // Created now, but the miss is remembered (30 s): no second call.
    f.put("dest-none", &secret("ACC-1")).await;
    let again = f.source.settings(&id("dest-none")).await.unwrap_err();
    assert_eq!(again.reason().code, "secret_not_found");
    assert_eq!(f.calls.get(), 1);
}

#[tokio::test]
async fn each_unusable_secret_gives_retry_with_a_code_saying_which() {
    let f = fixture(Duration::from_secs(300)).await;
    let cases = [
        ("d-json", format!("not json {PASSCODE}"), "secret_malformed"),
        (
            "d-acc",
            format!(r#"{{"passcode":"{PASSCODE}"}}"#),
            "secret_missing_account_id",
        ),
        (
            "d-pass",
            r#"{"accountId":"A"}"#.to_owned(),
            "secret_missing_passcode",
        ),
        (
            "d-region",
            format!(r#"{{"accountId":"A","passcode":"{PASSCODE}","region":"evil.example"}}"#),
            "unknown_region",
        ),
    ];
    for (dest, value, code) in &cases {
        f.put(dest, value).await;
        let err = f.source.settings(&id(dest)).await.unwrap_err();
        assert_eq!(err.reason().code, *code, "{dest}");
        assert!(err.to_string().contains(dest), "{err}");
        assert!(!err.to_string().contains(PASSCODE), "{err}");
        assert!(!format!("{err:?}").contains(PASSCODE), "{err:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_lookups_of_one_destination_make_one_call() {
    let f = fixture(Duration::from_secs(300)).await;
    f.put("dest-hot", &secret("ACC-1")).await;
    let lookups: Vec<_> = (0..1000)
        .map(|_| {
            let source = f.source.clone();
            tokio::spawn(async move { source.settings(&id("dest-hot")).await })
        })
        .collect();
    for lookup in lookups {
        assert_eq!(lookup.await.unwrap().unwrap().account_id, "ACC-1");
    }
    assert_eq!(f.calls.get(), 1);
    // And later lookups within the TTL are served from the cache.
    f.source.settings(&id("dest-hot")).await.unwrap();
    assert_eq!(f.calls.get(), 1);
}

#[tokio::test]
async fn settings_are_fetched_again_after_the_ttl() {
    let f = fixture(Duration::from_millis(300)).await;
    f.put("dest-ttl", &secret("ACC-OLD")).await;
    assert_eq!(
        f.source.settings(&id("dest-ttl")).await.unwrap().account_id,
        "ACC-OLD"
    );
    f.update("dest-ttl", &secret("ACC-NEW")).await;
    assert_eq!(
        f.source.settings(&id("dest-ttl")).await.unwrap().account_id,
        "ACC-OLD",
        "served from the cache within the TTL"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        f.source.settings(&id("dest-ttl")).await.unwrap().account_id,
        "ACC-NEW"
    );
    assert_eq!(f.calls.get(), 2);
}

#[tokio::test]
async fn a_401_from_clevertap_drops_the_cached_settings() {
    let f = fixture(Duration::from_secs(300)).await;
    f.put("dest-auth", &secret("ACC-1")).await;
    let mock = MockCleverTap::start();
    mock.respond_with(|_| {
        Reply::status(
            401,
            r#"{"status":"fail","error":"Invalid Credentials","code":401}"#,
        )
    });
    let d = delivery(policy(&mock));
    let destination = id("dest-auth");

    let settings = f.source.settings(&destination).await.unwrap();
    let events = [vec![record(1)]];
    let slices: Vec<&[_]> = events.iter().map(Vec::as_slice).collect();
    let report = d
        .upload(
            &settings,
            &slices,
            tokio::time::Instant::now() + Duration::from_secs(5),
        )
        .await;
    assert!(report.credentials_rejected);
    assert_eq!(
        report.outcomes[0].reason().unwrap().code,
        "clevertap_unauthorized"
    );

    // The handler's part: drop the entry; the fixed secret is then read at once.
    f.update("dest-auth", &secret("ACC-FIXED")).await;
    f.source.invalidate(&destination);
    assert_eq!(
        f.source.settings(&destination).await.unwrap().account_id,
        "ACC-FIXED"
    );
    assert_eq!(f.calls.get(), 2);
}

#[tokio::test]
async fn an_unreachable_secrets_manager_gives_retry_with_code_secrets_unavailable_within_the_timeout()
 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .load()
        .await;
    let source = SecretsManagerSource::new(
        rudder_clevertap::credentials::secrets_client(&sdk),
        PREFIX.into(),
        Duration::from_secs(300),
    );
    let started = std::time::Instant::now();
    let err = source.settings(&id("dest-x")).await.unwrap_err();
    assert_eq!(err.reason().code, "secrets_unavailable");
    assert!(
        started.elapsed()
            <= rudder_clevertap::credentials::SECRETS_OPERATION_TIMEOUT + Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn while_secrets_manager_fails_expired_settings_are_served_for_a_bounded_time() {
    // TTL 500 ms, then stale for at most 1.5 s more.
    let f = fixture_stale(Duration::from_millis(500), Duration::from_millis(1500)).await;
    f.put("dest-s", &secret("ACC-1")).await;
    let dest = id("dest-s");
    assert_eq!(f.source.settings(&dest).await.unwrap().account_id, "ACC-1");
    f.source.take_cache_misses();

    f.outage.set(true);
    tokio::time::sleep(Duration::from_millis(600)).await;
    // Past the TTL, Secrets Manager fails: the old settings are served (stale).
    assert_eq!(f.source.settings(&dest).await.unwrap().account_id, "ACC-1");
    assert_eq!(f.calls.get(), 2);
    // The failed fetch is not repeated at once: the next lookups share its answer.
    assert_eq!(f.source.settings(&dest).await.unwrap().account_id, "ACC-1");
    assert_eq!(f.calls.get(), 2);
    let counts = f.source.take_cache_misses();
    assert_eq!(counts.len(), 1);
    assert_eq!((counts[0].count, counts[0].stale), (1, 2));

    // Past the stale bound: no settings, so the events are retried, never judged.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let err = f.source.settings(&dest).await.unwrap_err();
    assert_eq!(err.reason().code, "secrets_unavailable");

    // Secrets Manager back: fresh settings.
    f.outage.set(false);
    f.update("dest-s", &secret("ACC-2")).await;
    assert_eq!(f.source.settings(&dest).await.unwrap().account_id, "ACC-2");
}

#[tokio::test]
async fn a_deleted_secret_is_never_papered_over_with_stale_settings() {
    let f = fixture_stale(Duration::from_millis(200), Duration::from_secs(3600)).await;
    f.put("dest-d", &secret("ACC-1")).await;
    let dest = id("dest-d");
    f.source.settings(&dest).await.unwrap();
    f.admin
        .delete_secret()
        .secret_id(format!("{PREFIX}dest-d"))
        .force_delete_without_recovery(true)
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let err = f.source.settings(&dest).await.unwrap_err();
    assert_eq!(err.reason().code, "secret_not_found");
    // And settings CleverTap refused are dropped with their fallback.
    f.put("dest-d", &secret("ACC-3")).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    f.source.settings(&dest).await.unwrap();
    f.source.invalidate(&dest);
    f.outage.set(true);
    let err = f.source.settings(&dest).await.unwrap_err();
    assert_eq!(err.reason().code, "secrets_unavailable");
}

/// The webhook's answer through `Handler::handle`: status and error code.
async fn post<S: SettingsSource, C: rudder_clevertap::ports::CleverTapApi>(
    handler: &rudder_clevertap::handler::Handler<
        S,
        C,
        Option<rudder_clevertap::aws::dead_letter_queue::SqsDeadLetterQueue>,
    >,
    destination: &str,
    token: &str,
) -> (u64, Value) {
    let request = crate::support::lambda_events::webhook_request(
        destination,
        Some(&format!("Bearer {token}")),
        r#"{"type":"track","event":"Viewed","userId":"u-1","messageId":"e-1"}"#,
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let answer = handler
        .handle(request.to_string().into(), deadline)
        .await
        .answer
        .expect("an HTTP answer");
    let body: Value = serde_json::from_str(answer["body"].as_str().unwrap_or("null")).unwrap();
    (answer["statusCode"].as_u64().unwrap_or(0), body)
}

#[tokio::test]
async fn a_wrong_token_during_an_outage_never_switches_off_the_stale_settings() {
    let f = fixture(Duration::from_millis(300)).await;
    f.put("dest-s", &secret("ACC-1")).await;
    let clevertap = MockCleverTap::start();
    let config = rudder_clevertap::config::Config {
        webhook_token_refresh: Duration::from_secs(1),
        ..rudder_clevertap::config::Config::default()
    };
    let source =
        SecretsManagerSource::new(f.client.clone(), PREFIX.into(), Duration::from_millis(300));
    let handler =
        rudder_clevertap::handler::Handler::new(config, source, delivery(policy(&clevertap)), None);
    assert_eq!(post(&handler, "dest-s", "tok-very-secret").await.0, 200);

    // Secrets Manager goes down and the settings pass their TTL: served stale.
    f.outage.set(true);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(post(&handler, "dest-s", "tok-very-secret").await.0, 200);
    for round in 0..2 {
        // A caller without the token, once per refresh period (the most it can re-read).
        let (status, body) = post(&handler, "dest-s", "guess").await;
        assert!(status == 401 || status == 503, "{status} {body}");
        for _ in 0..3 {
            let (status, body) = post(&handler, "dest-s", "tok-very-secret").await;
            assert_eq!(status, 200, "round {round}: {body}");
        }
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    assert_eq!(clevertap.requests_for("ACC-1").len(), 8);
}

#[tokio::test]
async fn unauthenticated_lookups_of_unknown_ids_cost_a_bounded_bucket_and_evict_nothing() {
    use rudder_clevertap::credentials::UNKNOWN_LOOKUP_BURST;
    let f = fixture(Duration::from_secs(300)).await;
    f.put("dest-a", &secret("ACC-1")).await;
    f.put("dest-bad", "not json").await;
    let source =
        SecretsManagerSource::new(f.client.clone(), PREFIX.into(), Duration::from_secs(300))
            .with_capacity(2);
    source.settings(&id("dest-a")).await.unwrap();
    let before = f.calls.get();
    let started = std::time::Instant::now();

    // Many more ids than either cache holds, each asked twice.
    for round in 0..2 {
        for n in 0..300 {
            let e = source
                .settings_unauthenticated(&id(&format!("attacker-{n}")))
                .await
                .unwrap_err();
            assert!(
                ["secret_not_found", "secrets_unavailable"].contains(&e.code()),
                "round {round}: {e}"
            );
        }
    }
    let e = source
        .settings_unauthenticated(&id("dest-bad"))
        .await
        .unwrap_err();
    assert!(
        ["secrets_unavailable", "secret_malformed"].contains(&e.code()),
        "{e}"
    );
    let spent = f.calls.get() - before;
    // The bucket: its burst, and one more call per 2 s (30 a minute) of the test's time.
    let refilled = (started.elapsed().as_secs_f64() / 2.0).ceil() as usize;
    assert!(
        spent <= UNKNOWN_LOOKUP_BURST as usize + refilled,
        "{spent} GetSecretValue for unknown ids"
    );
    assert!(spent >= UNKNOWN_LOOKUP_BURST as usize);
    assert_eq!(
        source.cached_destinations(),
        1,
        "nothing but dest-a in the cache"
    );

    // dest-a is still cached, for trusted and unauthenticated lookups alike.
    let calls = f.calls.get();
    source.settings(&id("dest-a")).await.unwrap();
    source
        .settings_unauthenticated(&id("dest-a"))
        .await
        .unwrap();
    assert_eq!(f.calls.get(), calls);

    // No per-destination count names an unknown id.
    let misses = source.take_cache_misses();
    for m in &misses {
        let name = m.destination.as_ref().map(|d| d.as_str().to_owned());
        assert!(
            name.is_none() || name.as_deref() == Some("dest-a"),
            "{misses:?}"
        );
    }
    let unnamed: u64 = misses
        .iter()
        .filter(|m| m.destination.is_none())
        .map(|m| m.count)
        .sum();
    assert_eq!(unnamed as usize, spent);
}
