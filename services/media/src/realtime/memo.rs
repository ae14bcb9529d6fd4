//! One execution per event and operation: the `next` payloads a channel's subscribers share.
//!
//! # Why
//!
//! A hub message reaches every local subscriber of its channel (100 per video in the
//! benchmark), and nearly all of them run the same subscription document with the same
//! variables. Executing that selection and serialising the result once per subscriber
//! was most of a delivery's cost, though the outcome is the same bytes every time.
//!
//! # How
//!
//! * At `subscribe`, the connection computes the operation's [`OperationKey`]: the
//!   document, operation name, variables and extensions as sent, *and the viewer*. Each
//!   subscriber is still authorised on its own when its resolver runs (visibility of the
//!   video, ownership); the memo only ever stands in for *executing the selection over
//!   one event*. The viewer is part of the key because a selection may reach fields
//!   whose value depends on who asks: two viewers never share a payload.
//! * Each hub [`Message`] carries a [`PayloadMemo`]: rendered `next` payloads by key
//!   (a few at most, bounded; it lives as long as the message sits in the channel's
//!   bounded buffer, so memory stays bounded too).
//! * Each operation has a [`Probe`], made by the connection with the operation's key and
//!   handed to its resolver as request data: the one channel between a subscription's
//!   stream and the connection that sends its results (the memo's decision for the item
//!   being yielded, and the event's publication time for the latency histogram).
//! * A subscription's stream (`commentEvents`' live events) asks its [`Probe`] before
//!   yielding an event. On a miss it yields the event as usual ([`Memoised::Execute`]):
//!   async-graphql executes the selection, the connection serialises the payload, stores
//!   it in the message's memo and sends it. On a hit it yields [`Memoised::Rendered`],
//!   which resolves to nothing at all, and the connection sends the stored payload with
//!   its own operation id spliced in.
//!
//! Only results without errors are stored. Replayed events (from storage), `RESYNC`
//! and anything without a key (HTTP, tests driving the schema directly) are executed as
//! before. Two subscribers racing on the same event may both execute it (both results
//! are identical; the second store is a no-op): nobody ever waits for another
//! subscriber, so a stalled client cannot hold its channel's others back.
//!
//! [`Message`]: super::hub::Message

use std::{
    borrow::Cow,
    hash::{DefaultHasher, Hash, Hasher},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering},
    },
};

use async_graphql::{
    Context, ContextSelectionSet, OutputType, Positioned, ServerResult, Value,
    parser::types::Field, registry::Registry,
};

use super::hub::Message;
use crate::viewer::Viewer;

/// At most this many distinct operations' payloads are kept per message; further ones
/// are executed per subscriber (still correct, just not shared).
pub const MAX_PAYLOADS_PER_MESSAGE: usize = 8;

/// What makes two subscriptions' results over the same event the same bytes.
#[derive(Clone)]
pub struct OperationKey(Arc<KeyInner>);

struct KeyInner {
    hash: u64,
    text: String,
}

impl OperationKey {
    /// The key of `request` (as the client sent it) run for `viewer`.
    pub fn new(request: &async_graphql::Request, viewer: Viewer) -> Self {
        // Request serialises what the client chose: query, operationName, variables,
        // extensions (persisted-query hashes included). Nothing else feeds the execution
        // but the viewer and the event.
        let request = serde_json::to_string(request).unwrap_or_default();
        let viewer = viewer.id().map(|v| v.to_string()).unwrap_or_default();
        let text = format!("{viewer}\n{request}");
        let mut hasher = DefaultHasher::new();
        text.hash(&mut hasher);
        Self(Arc::new(KeyInner {
            hash: hasher.finish(),
            text,
        }))
    }
}

impl PartialEq for OperationKey {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
            || (self.0.hash == other.0.hash && self.0.text == other.0.text)
    }
}

impl Eq for OperationKey {}

impl std::fmt::Debug for OperationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OperationKey({:016x})", self.0.hash)
    }
}

/// The serialised `next` payloads (`{"data":…}`) rendered from one message, by operation.
#[derive(Default)]
pub struct PayloadMemo {
    entries: Mutex<Vec<(OperationKey, Arc<str>)>>,
}

impl std::fmt::Debug for PayloadMemo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.entries.lock().map(|e| e.len()).unwrap_or(0);
        write!(f, "PayloadMemo({n} payloads)")
    }
}

impl PayloadMemo {
    pub fn get(&self, key: &OperationKey) -> Option<Arc<str>> {
        let entries = self.entries.lock().unwrap();
        entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, payload)| payload.clone())
    }

    /// Stores `payload` for `key` unless one is there already or the memo is full.
    pub fn put(&self, key: &OperationKey, payload: Arc<str>) {
        let mut entries = self.entries.lock().unwrap();
        if entries.len() < MAX_PAYLOADS_PER_MESSAGE && !entries.iter().any(|(k, _)| k == key) {
            entries.push((key.clone(), payload));
        }
    }

    pub fn len(&self) -> usize {
        self.entries.lock().unwrap().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How many `next` payloads were executed and serialised, and how many were shared from
/// a message's memo, on this replica (also the `media_realtime_payloads_total` metric).
#[derive(Debug, Default)]
pub struct MemoCounters {
    executed: AtomicU64,
    shared: AtomicU64,
}

impl MemoCounters {
    pub fn executed(&self) -> u64 {
        self.executed.load(Ordering::Relaxed)
    }

    pub fn shared(&self) -> u64 {
        self.shared.load(Ordering::Relaxed)
    }

    pub(crate) fn count_executed(&self) {
        self.executed.fetch_add(1, Ordering::Relaxed);
        super::metrics::payload("executed");
    }

    pub(crate) fn count_shared(&self) {
        self.shared.fetch_add(1, Ordering::Relaxed);
        super::metrics::payload("shared");
    }
}

/// A subscription's item: an event to execute, or one whose payload is already rendered
/// (the connection holds it, through the operation's probe). Same GraphQL type as `T`.
pub enum Memoised<T> {
    Execute(T),
    Rendered,
}

impl<T: OutputType> OutputType for Memoised<T> {
    fn type_name() -> Cow<'static, str> {
        T::type_name()
    }

    fn qualified_type_name() -> String {
        T::qualified_type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        T::create_type_info(registry)
    }

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        match self {
            Self::Execute(item) => item.resolve(ctx, field).await,
            // The connection replaces this whole response with the stored payload.
            Self::Rendered => Ok(Value::Null),
        }
    }
}

/// Set by a subscription's stream to the publication time of the event it is yielding;
/// read by the connection once the resulting `next` message is on the socket, so the
/// latency histogram covers publish → Redis → hub → GraphQL → socket.
///
/// It also carries the operation's [`OperationKey`] (set by the connection) and, for the
/// item being yielded, what the connection needs to share its payload ([`MemoState`]).
/// Both are read right after the item is yielded, before the stream is polled again, so
/// they always describe that item.
#[derive(Clone, Default)]
pub struct Probe(Arc<ProbeInner>);

#[derive(Default)]
struct ProbeInner {
    at: AtomicI64,
    key: Option<OperationKey>,
    memo: Mutex<Option<MemoState>>,
    /// The item being yielded is the operation's last, an error (see [`Probe::end`]).
    ended: AtomicBool,
}

/// The memo's part in the item being yielded.
pub enum MemoState {
    /// Its payload was rendered already: send this.
    Hit(Arc<str>),
    /// Render it, then store the payload in this message's memo.
    Miss(Arc<Message>),
}

impl Probe {
    /// The probe of an operation whose results may be shared under `key`.
    pub fn with_key(key: OperationKey) -> Self {
        Self(Arc::new(ProbeInner {
            key: Some(key),
            ..Default::default()
        }))
    }

    /// The operation's probe from inside its resolver (a keyless one when the request
    /// did not come through the connection: HTTP, tests driving the schema directly).
    pub fn of(ctx: &Context<'_>) -> Self {
        ctx.data_opt::<Probe>().cloned().unwrap_or_default()
    }

    pub fn key(&self) -> Option<&OperationKey> {
        self.0.key.as_ref()
    }

    pub fn mark(&self, published_at_micros: i64) {
        self.0.at.store(published_at_micros, Ordering::Relaxed);
    }

    /// The marked time, once.
    pub fn take(&self) -> Option<i64> {
        Some(self.0.at.swap(0, Ordering::Relaxed)).filter(|at| *at > 0)
    }

    /// Looks `message` up in its memo under this operation's key: `Rendered` when the
    /// payload is there (the connection will send it), else `Execute(item)`.
    pub fn memoised<T>(&self, message: &Arc<Message>, item: impl FnOnce() -> T) -> Memoised<T> {
        let Some(key) = &self.0.key else {
            return Memoised::Execute(item());
        };
        let (state, out) = match message.memo.get(key) {
            Some(payload) => (MemoState::Hit(payload), Memoised::Rendered),
            None => (MemoState::Miss(message.clone()), Memoised::Execute(item())),
        };
        *self.0.memo.lock().unwrap() = Some(state);
        out
    }

    /// Says that the item about to be yielded is an error that ends the operation (the
    /// video became invisible to the viewer, `super::access`): the connection sends it
    /// as the protocol's `error` message, which ends the operation on the client too,
    /// rather than as a `next` followed by `complete`.
    pub fn end(&self) {
        self.0.ended.store(true, Ordering::Relaxed);
    }

    /// Whether [`Probe::end`] was called for the item just yielded, once.
    pub fn take_end(&self) -> bool {
        self.0.ended.swap(false, Ordering::Relaxed)
    }

    /// What [`Probe::memoised`] decided for the item just yielded, once.
    pub fn take_memo(&self) -> Option<MemoState> {
        self.0.memo.lock().unwrap().take()
    }
}

/// `{"type":"next","id":<id>,"payload":<payload>}`, as `ServerMessage::Next` serialises.
pub fn next_frame(id: &str, payload: &str) -> String {
    let id = serde_json::to_string(id).expect("strings serialise");
    let mut frame = String::with_capacity(payload.len() + id.len() + 36);
    frame.push_str(r#"{"type":"next","id":"#);
    frame.push_str(&id);
    frame.push_str(r#","payload":"#);
    frame.push_str(payload);
    frame.push('}');
    frame
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use uuid::Uuid;

    use super::*;

    fn request(query: &str, variables: serde_json::Value) -> async_graphql::Request {
        async_graphql::Request::new(query).variables(async_graphql::Variables::from_json(variables))
    }

    #[test]
    fn keys_tell_documents_variables_and_viewers_apart() {
        let q = "subscription($v: ID!) { commentEvents(videoId: $v) { comment { body } } }";
        let anon = Viewer(None);
        let a = OperationKey::new(&request(q, json!({"v": "1"})), anon);
        assert_eq!(a, OperationKey::new(&request(q, json!({"v": "1"})), anon));
        assert_ne!(a, OperationKey::new(&request(q, json!({"v": "2"})), anon));
        let other = "subscription($v: ID!) { commentEvents(videoId: $v) { kind } }";
        assert_ne!(
            a,
            OperationKey::new(&request(other, json!({"v": "1"})), anon)
        );
        let someone = Viewer(Some(Uuid::now_v7()));
        assert_ne!(
            a,
            OperationKey::new(&request(q, json!({"v": "1"})), someone)
        );
        let named = request(q, json!({"v": "1"})).operation_name("X");
        assert_ne!(a, OperationKey::new(&named, anon));
    }

    #[test]
    fn the_memo_keeps_the_first_payload_per_key_and_stays_bounded() {
        let memo = PayloadMemo::default();
        let key = |i: usize| OperationKey::new(&request(&format!("q{i}"), json!({})), Viewer(None));
        assert!(memo.get(&key(0)).is_none());
        memo.put(&key(0), "first".into());
        memo.put(&key(0), "second".into());
        assert_eq!(memo.get(&key(0)).as_deref(), Some("first"));
        for i in 1..100 {
            memo.put(&key(i), format!("p{i}").into());
        }
        assert_eq!(memo.len(), MAX_PAYLOADS_PER_MESSAGE);
        assert!(memo.get(&key(99)).is_none());
    }

    #[test]
    fn spliced_frames_match_the_serialised_message() {
        let payload = r#"{"data":{"x":1}}"#;
        let frame: serde_json::Value = serde_json::from_str(&next_frame("a\"b", payload)).unwrap();
        assert_eq!(
            frame,
            json!({ "type": "next", "id": "a\"b", "payload": { "data": { "x": 1 } } })
        );
    }
}
