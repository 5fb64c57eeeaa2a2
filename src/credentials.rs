//! Destination settings from AWS Secrets Manager, cached per warm container.
//!
//! SKELETON: signatures are the contract; the delivery work (issue 3) fills in the bodies.

use crate::outcome::Reason;
use crate::settings::{DestinationId, DestinationSettings, SettingsError};
use std::future::Future;
use std::sync::Arc;

/// Why a destination's settings could not be had. Never the event's fault: always a `retry`.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("no secret for destination {0}")]
    NotFound(DestinationId),
    #[error("Secrets Manager unavailable for destination {destination}: {detail}")]
    Unavailable {
        destination: DestinationId,
        detail: String,
    },
    #[error("secret of destination {destination} is unusable: {source}")]
    Invalid {
        destination: DestinationId,
        source: SettingsError,
    },
}

impl CredentialsError {
    /// The `retry` reason events of this destination get.
    pub fn reason(&self) -> Reason {
        let code = match self {
            CredentialsError::NotFound(_) => "secret_not_found",
            CredentialsError::Unavailable { .. } => "secrets_unavailable",
            CredentialsError::Invalid { source, .. } => source.code(),
        };
        Reason::new(code, self.to_string())
    }
}

/// Where destination settings come from.
pub trait SettingsSource: Send + Sync {
    fn settings(
        &self,
        destination: &DestinationId,
    ) -> impl Future<Output = Result<Arc<DestinationSettings>, CredentialsError>> + Send;

    /// Drops a cached entry (CleverTap answered 401/403 with it).
    fn invalidate(&self, destination: &DestinationId);
}
