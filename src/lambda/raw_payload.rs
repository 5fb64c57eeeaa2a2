//! The payload's bytes kept as the Runtime API sent them, for the handler to read once
//! (lambda_runtime would otherwise parse the whole payload as JSON first).

use bytes::Bytes;
use lambda_runtime::LambdaInvocation;
use lambda_runtime::tower::{Layer, Service};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

/// The payload of the invocation in progress, as the Runtime API sent it. Lambda hands a
/// container one invocation at a time, so one slot is enough.
#[derive(Clone, Default)]
pub(super) struct PayloadSlot(Arc<Mutex<Option<Bytes>>>);

impl PayloadSlot {
    fn put(&self, payload: Bytes) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(payload);
    }

    pub(super) fn take(&self) -> Bytes {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .unwrap_or_default()
    }
}

/// A layer in front of lambda_runtime's own services: it keeps the payload's bytes for the
/// handler and passes `null` on in their place. lambda_runtime would otherwise read the whole
/// payload as JSON before the handler reads it again: for a 10,000-message batch (14 MB of
/// escape-dense text) that pass alone cost as much CPU as the transform (BENCHMARKS.md, "Whole
/// path"). The handler checks what it reads as it reads it.
pub(super) struct RawPayload {
    pub(super) slot: PayloadSlot,
}

impl<S> Layer<S> for RawPayload {
    type Service = RawPayloadService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RawPayloadService {
            inner,
            slot: self.slot.clone(),
        }
    }
}

pub(super) struct RawPayloadService<S> {
    inner: S,
    slot: PayloadSlot,
}

impl<S: Service<LambdaInvocation>> Service<LambdaInvocation> for RawPayloadService<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut invocation: LambdaInvocation) -> Self::Future {
        let payload = std::mem::replace(&mut invocation.body, Bytes::from_static(b"null"));
        self.slot.put(payload);
        self.inner.call(invocation)
    }
}
