//! What the webhook keeps across requests, besides the handler's shared ports: the events queue
//! of queue mode, and when each destination's secret was last re-read because of a token that
//! did not match (docs/contracts.md §4, token rotation). Built once per container.

use super::auth::TokenRefresh;
use crate::config::Config;
use crate::queue::EventQueue;
use std::sync::Arc;

pub struct WebhookState {
    /// Where queue mode puts events (`EVENTS_QUEUE_URL`); `None` outside queue mode.
    pub(crate) queue: Option<Arc<dyn EventQueue>>,
    pub(super) token_refresh: TokenRefresh,
}

impl WebhookState {
    pub(crate) fn new(config: &Config) -> Self {
        WebhookState {
            queue: None,
            token_refresh: TokenRefresh::new(
                config.webhook_token_refresh,
                config.settings_cache_size,
            ),
        }
    }
}
