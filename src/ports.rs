//! Every port the engine needs from the outside world, in one place and one style: a trait of
//! `async` methods (`impl Future + Send`), with a real adapter (`crate::aws`,
//! `crate::credentials`, `crate::delivery`, `crate::clevertap::client`) and an in-memory fake for
//! unit tests (`crate::engine::fakes`).
//!
//! The three ports every invocation uses (settings, CleverTap, dead letters) are type
//! parameters of the engine, named once by [`Ports`]. The two optional ones (the events queue of
//! queue mode, SQS visibility) are held without a type parameter through their object-safe twins
//! ([`AnyEventQueue`], [`AnyVisibility`]), which every implementation gets for free.

use crate::clevertap::transport::{ApiRequest, HttpReply, TransportError};
use crate::credentials::error::{CacheMisses, CredentialsError};
use crate::dead_letters::letter::{DeadLetter, DeadLetterError};
use crate::delivery::report::DeliveryReport;
use crate::queue::{EnqueueError, QueuedMessage};
use crate::settings::{DestinationId, DestinationSettings};
use crate::transform::Record;
use crate::visibility::{VisibilityChange, VisibilityError};
use futures_util::future::BoxFuture;
use std::future::Future;
use std::sync::Arc;
use tokio::time::Instant;

/// The ports of one engine, named once: `Engine<P: Ports>` instead of three bounds everywhere.
/// Implemented for the triple `(settings, CleverTap, dead letters)`.
pub trait Ports: Send + Sync {
    type Settings: SettingsSource;
    type CleverTap: CleverTapApi;
    type DeadLetters: DeadLetterSink;
}

impl<S: SettingsSource, C: CleverTapApi, D: DeadLetterSink> Ports for (S, C, D) {
    type Settings = S;
    type CleverTap = C;
    type DeadLetters = D;
}

/// Where destination settings come from.
pub trait SettingsSource: Send + Sync {
    fn settings(
        &self,
        destination: &DestinationId,
    ) -> impl Future<Output = Result<Arc<DestinationSettings>, CredentialsError>> + Send;

    /// The lookup of a caller not authenticated yet (the webhook, before its token is
    /// checked): the same settings, but a destination this source holds nothing for must cost
    /// a bounded number of reads and evict nothing (`credentials::unknown`). Sources without a
    /// cache answer as [`SettingsSource::settings`].
    fn settings_unauthenticated(
        &self,
        destination: &DestinationId,
    ) -> impl Future<Output = Result<Arc<DestinationSettings>, CredentialsError>> + Send {
        self.settings(destination)
    }

    /// The secret read again because a token matched none of the settings' tokens: nothing is
    /// read when the answer held was read at or after `since` (this request read it), and only
    /// settings read successfully replace the cached ones; a failed re-read leaves them, stale
    /// settings included. Sources without a cache answer as [`SettingsSource::settings`].
    fn reread(
        &self,
        destination: &DestinationId,
        since: Instant,
    ) -> impl Future<Output = Result<Arc<DestinationSettings>, CredentialsError>> + Send {
        let _ = since;
        self.settings(destination)
    }

    /// Drops a cached entry (CleverTap answered 401/403 with it).
    fn invalidate(&self, destination: &DestinationId);

    /// Per destination, how many lookups since the last call were not answered from a cache
    /// (each one a `GetSecretValue`), for the `SecretsCacheMiss` metric. Sources without a
    /// cache report none.
    fn take_cache_misses(&self) -> Vec<CacheMisses> {
        Vec::new()
    }
}

/// What the engine needs of CleverTap: uploads of events and, for regulations
/// (docs/contracts.md §6), deletes of profiles. `delivery::Delivery` is the real one.
pub trait CleverTapApi: Send + Sync {
    /// Uploads each event's records; one outcome per event, in order.
    fn upload(
        &self,
        settings: &DestinationSettings,
        events: &[&[Record]],
        deadline: Instant,
    ) -> impl Future<Output = DeliveryReport> + Send;

    /// Deletes the profiles of `identities`; one outcome per identity, in order.
    fn delete(
        &self,
        settings: &DestinationSettings,
        identities: &[&str],
        deadline: Instant,
    ) -> impl Future<Output = DeliveryReport> + Send;
}

/// Sends one request to CleverTap: the one seam between delivery logic and the network.
/// Implementations must be cheap to share across tasks.
pub trait Transport: Send + Sync {
    fn post(
        &self,
        request: ApiRequest<'_>,
    ) -> impl Future<Output = Result<HttpReply, TransportError>> + Send;
}

/// Where dead letters go.
pub trait DeadLetterSink: Send + Sync {
    /// Sends the letters; one result per letter, in the same order. Nothing is waited for
    /// after `stop`: a letter not written by then is `DeadLetterError::Deadline`.
    fn send(
        &self,
        letters: &[DeadLetter],
        stop: tokio::time::Instant,
    ) -> impl Future<Output = Vec<Result<(), DeadLetterError>>> + Send;

    /// Whether there is a queue at all (`DEAD_LETTER_QUEUE_URL` set).
    fn configured(&self) -> bool {
        true
    }
}

/// No queue configured: every letter fails, so its message is retried instead of lost.
impl<D: DeadLetterSink> DeadLetterSink for Option<D> {
    fn configured(&self) -> bool {
        self.as_ref().is_some_and(DeadLetterSink::configured)
    }

    async fn send(
        &self,
        letters: &[DeadLetter],
        stop: tokio::time::Instant,
    ) -> Vec<Result<(), DeadLetterError>> {
        match self {
            Some(sink) => sink.send(letters, stop).await,
            None => letters
                .iter()
                .map(|_| Err(DeadLetterError::NotConfigured))
                .collect(),
        }
    }
}

/// Where the webhook's events go in queue mode.
pub trait EventQueue: Send + Sync {
    /// Sends the messages; one result per message, in the same order. Nothing is started at or
    /// after `stop`.
    fn send(
        &self,
        messages: &[QueuedMessage],
        stop: Instant,
    ) -> impl Future<Output = Vec<Result<(), EnqueueError>>> + Send;

    /// Whether the queue is FIFO (its messages need a group and a deduplication id).
    fn is_fifo(&self) -> bool {
        false
    }
}

/// Where the visibility of retried SQS messages is changed, and where what is left of a
/// regulation goes back on its own queue (docs/contracts.md §6).
pub trait MessageVisibility: Send + Sync {
    /// Changes the visibility of messages of the queue at `queue_url`; one result per change,
    /// in the same order.
    fn change(
        &self,
        queue_url: &str,
        changes: &[VisibilityChange],
    ) -> impl Future<Output = Vec<Result<(), VisibilityError>>> + Send;

    /// Puts `message` on the queue at `queue_url`, waiting for nothing past `stop`. Without
    /// it (the default) nothing is put back and the regulation comes back whole.
    fn requeue(
        &self,
        queue_url: &str,
        message: &QueuedMessage,
        stop: Instant,
    ) -> impl Future<Output = Result<(), EnqueueError>> + Send {
        let _ = (queue_url, message, stop);
        async { Err(EnqueueError::NotConfigured) }
    }
}

/// [`EventQueue`] made object safe, so the engine holds any queue as `Arc<dyn AnyEventQueue>`.
pub trait AnyEventQueue: Send + Sync {
    fn send<'a>(
        &'a self,
        messages: &'a [QueuedMessage],
        stop: Instant,
    ) -> BoxFuture<'a, Vec<Result<(), EnqueueError>>>;
    fn is_fifo(&self) -> bool;
}

impl<Q: EventQueue> AnyEventQueue for Q {
    fn send<'a>(
        &'a self,
        messages: &'a [QueuedMessage],
        stop: Instant,
    ) -> BoxFuture<'a, Vec<Result<(), EnqueueError>>> {
        Box::pin(EventQueue::send(self, messages, stop))
    }

    fn is_fifo(&self) -> bool {
        EventQueue::is_fifo(self)
    }
}

/// [`MessageVisibility`] made object safe, so the engine holds it as `Box<dyn AnyVisibility>`.
pub trait AnyVisibility: Send + Sync {
    fn change<'a>(
        &'a self,
        queue_url: &'a str,
        changes: &'a [VisibilityChange],
    ) -> BoxFuture<'a, Vec<Result<(), VisibilityError>>>;
    fn requeue<'a>(
        &'a self,
        queue_url: &'a str,
        message: &'a QueuedMessage,
        stop: Instant,
    ) -> BoxFuture<'a, Result<(), EnqueueError>>;
}

impl<V: MessageVisibility> AnyVisibility for V {
    fn change<'a>(
        &'a self,
        queue_url: &'a str,
        changes: &'a [VisibilityChange],
    ) -> BoxFuture<'a, Vec<Result<(), VisibilityError>>> {
        Box::pin(MessageVisibility::change(self, queue_url, changes))
    }

    fn requeue<'a>(
        &'a self,
        queue_url: &'a str,
        message: &'a QueuedMessage,
        stop: Instant,
    ) -> BoxFuture<'a, Result<(), EnqueueError>> {
        Box::pin(MessageVisibility::requeue(self, queue_url, message, stop))
    }
}
