//! The emulator the integration tests rely on starts and answers the real SDK.

use crate::support::moto::MotoServer;

#[tokio::test]
async fn moto_server_answers_the_real_secrets_manager_client() {
    let moto = MotoServer::start();
    let client = aws_sdk_secretsmanager::Client::new(&moto.sdk_config().await);
    client
        .create_secret()
        .name("rudder-clevertap/smoke")
        .secret_string("{}")
        .send()
        .await
        .expect("create secret");
    let got = client
        .get_secret_value()
        .secret_id("rudder-clevertap/smoke")
        .send()
        .await
        .expect("get secret");
    assert_eq!(got.secret_string(), Some("{}"));
}
