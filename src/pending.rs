//! TEMPORARY stand-ins for the delivery branch (removed at merge).
#![allow(dead_code, unused_variables)]
use crate::clevertap::transport::*;
use crate::credentials::*;
use crate::settings::*;
use std::sync::Arc;
#[derive(Debug, thiserror::Error)]
#[error("x")]
pub struct ClientBuildError;
#[derive(Default)]
pub struct HttpTimeouts;
pub struct HttpTransport;
impl HttpTransport {
    pub fn new(t: HttpTimeouts) -> Result<Self, ClientBuildError> {
        Ok(HttpTransport)
    }
}
impl Transport for HttpTransport {
    async fn post(&self, request: ApiRequest<'_>) -> Result<HttpReply, TransportError> {
        todo!()
    }
}
pub fn secrets_client(sdk: &aws_config::SdkConfig) -> () {}
pub struct SecretsManagerSource;
impl SecretsManagerSource {
    pub fn new(c: (), p: String, t: std::time::Duration) -> Self {
        SecretsManagerSource
    }
}
impl SettingsSource for SecretsManagerSource {
    async fn settings(
        &self,
        d: &DestinationId,
    ) -> Result<Arc<DestinationSettings>, CredentialsError> {
        todo!()
    }
    fn invalidate(&self, d: &DestinationId) {}
}
pub struct StaticSource;
#[derive(Debug, thiserror::Error)]
#[error("x")]
pub struct StaticSourceError;
impl StaticSource {
    pub fn from_json(text: &str) -> Result<Self, StaticSourceError> {
        todo!()
    }
}
impl SettingsSource for StaticSource {
    async fn settings(
        &self,
        d: &DestinationId,
    ) -> Result<Arc<DestinationSettings>, CredentialsError> {
        todo!()
    }
    fn invalidate(&self, d: &DestinationId) {}
}
