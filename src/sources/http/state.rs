//! What the webhook keeps across requests, besides the engine's ports: the mode it answers in
//! (sync, or queue mode with its events queue), decided once at start-up, and when each
//! destination's secret was last re-read because of a token that did not match
//! (docs/contracts.md §4, token rotation). Built once per container.

use super::auth::TokenRefresh;
use crate::config::{Config, WebhookMode};
use crate::ports::AnyEventQueue;
use std::sync::Arc;

/// How the webhook answers, from `WEBHOOK_MODE`.
#[derive(Clone)]
pub(crate) enum Mode {
    /// Events are delivered to CleverTap before the answer.
    Sync,
    /// Events are put on the events queue (`None`: none configured, so every event is a retry).
    Queue(Option<Arc<dyn AnyEventQueue>>),
}

pub struct WebhookState {
    pub(super) mode: Mode,
    pub(super) token_refresh: TokenRefresh,
}

impl WebhookState {
    pub(crate) fn new(config: &Config) -> Self {
        WebhookState {
            mode: match config.webhook_mode {
                WebhookMode::Sync => Mode::Sync,
                WebhookMode::Queue => Mode::Queue(None),
            },
            token_refresh: TokenRefresh::new(
                config.webhook_token_refresh,
                config.settings_cache_size,
            ),
        }
    }

    /// Queue mode's events queue; outside queue mode it is not used.
    pub(crate) fn set_queue(&mut self, queue: Arc<dyn AnyEventQueue>) {
        if let Mode::Queue(slot) = &mut self.mode {
            *slot = Some(queue);
        }
    }
}
