//! The graphql-transport-ws protocol (the `graphql-ws` library's protocol, the one
//! browsers' GraphQL clients speak) on axum's WebSocket, at `GET /media/graphql/ws`.
//!
//! # Why not async-graphql's handler
//!
//! async-graphql-axum ships a `GraphQLWebSocket`, but it leaves parts of the protocol out:
//! no connection-initialisation timeout (4408), a subscribe before the acknowledgement
//! closes with 1011 instead of 4401, a duplicate operation id silently replaces the
//! running one instead of closing with 4409, and a malformed message closes with 1002
//! instead of 4400. Clients rely on these codes (graphql-ws decides from them whether to
//! retry), so this module implements the protocol itself: a small state machine around
//! `Schema::execute_stream`, which does all the GraphQL work.
//!
//! # One connection
//!
//! One task owns the socket and loops over four things at once (`tokio::select!`):
//!
//! * the client's next message: `connection_init` (authenticate, then `connection_ack`),
//!   `subscribe` (start an operation), `complete` (stop one), `ping` (answer `pong`),
//!   `pong` (nothing);
//! * the next result of any running operation (one `StreamMap` of [`Operation`]s keyed
//!   by operation id, the only record of what runs): sent as `next`, then `complete`
//!   when the operation's stream ends, or as `error` when the operation failed before
//!   producing anything (validation, authorisation);
//! * the keep-alive timer: a `ping` every `REALTIME_KEEPALIVE_SECS`, and a close when the
//!   client has been silent for two intervals (a dead peer);
//! * the initialisation deadline and the service's shutdown.
//!
//! Writing a message waits for the socket, so a client that stops reading stops its own
//! operations from being polled: their hub subscriptions fall behind (bounded, see
//! [`super::hub`]) instead of anything queueing here. A write that cannot complete within
//! `REALTIME_SEND_TIMEOUT_SECS` ends the connection.
//!
//! # Close codes
//!
//! | code | when |
//! |---|---|
//! | 4400 | a message that is not valid JSON of the protocol, or a binary frame |
//! | 4401 | `subscribe` before `connection_ack` |
//! | 4403 | the token in `connection_init` is invalid, expired or revoked (also checked again at every `subscribe` and every keep-alive, so a connection whose token is revoked or expires is closed within `REALTIME_KEEPALIVE_SECS`), or names another user than the gateway's header; and at once, on every replica, when the connection's user is banned (`wire::SESSIONS_CHANNEL`) |
//! | 4406 | the client did not offer the `graphql-transport-ws` subprotocol |
//! | 4408 | no `connection_init` within `REALTIME_INIT_TIMEOUT_MILLIS` |
//! | 4409 | `subscribe` with the id of a running operation |
//! | 4429 | a second `connection_init` |
//! | 4500 | the token could not be checked (auth or Redis unreachable); retry later |
//! | 1001 | the server is shutting down, or the client stopped answering pings or reading |

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context as TaskContext, Poll},
    time::Duration,
};

use async_graphql::{Response, ServerError};
use axum::{
    Router,
    extract::{
        State,
        ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade},
    },
    http::HeaderMap,
    response::{IntoResponse, Response as HttpResponse},
    routing::get,
};
use futures::{Stream, StreamExt, stream::BoxStream};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tokio_stream::StreamMap;
use uuid::Uuid;

use super::{
    Realtime, hub,
    memo::{self, MemoState, OperationKey, Probe},
    metrics, tokens, wire,
};
use crate::{
    routes::with_error_codes,
    schema::KinoSchema,
    viewer::{Staff, Viewer},
};

pub const PATH: &str = "/media/graphql/ws";
pub const PROTOCOL: &str = "graphql-transport-ws";

#[derive(Clone)]
pub struct WsState {
    pub schema: KinoSchema,
    pub realtime: Realtime,
}

pub fn router(schema: KinoSchema, realtime: Realtime) -> Router {
    Router::new()
        .route(PATH, get(upgrade))
        .with_state(WsState { schema, realtime })
}

/// See [`upgrade`]: the read chunk per connection.
const READ_BUFFER_BYTES: usize = 4 * 1024;

async fn upgrade(
    State(state): State<WsState>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> HttpResponse {
    // The gateway's identity, if the upgrade request carried a token (non-browser clients).
    let viewer = match Viewer::from_headers(&headers) {
        Ok(viewer) => viewer,
        Err(e) => return (axum::http::StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    let staff = match Staff::from_headers(&headers) {
        Ok(staff) if viewer.id().is_some() => staff,
        Ok(_) => Staff::default(),
        Err(e) => return (axum::http::StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    let ws = ws
        .protocols([PROTOCOL])
        .max_message_size(state.realtime.config.max_message_bytes)
        .max_frame_size(state.realtime.config.max_message_bytes)
        // Clients send a few small messages (init, subscribe, pong), so tungstenite's
        // default 128 KiB read buffer per connection would be nearly all waste: at 10,000
        // connections it is most of the replica's memory. Larger frames still arrive
        // whole (the buffer grows for them); 4 KiB is only the size of each read.
        .read_buffer_size(READ_BUFFER_BYTES);
    let negotiated = ws.selected_protocol().is_some();
    ws.on_upgrade(move |socket| async move {
        metrics::connection_opened();
        let mut connection = Connection::new(state, viewer, staff, socket);
        if negotiated {
            connection.run().await;
        } else {
            connection
                .close(4406, "Subprotocol not acceptable".into())
                .await;
        }
        metrics::connection_closed();
    })
}

/// The next message on the sessions channel, or never when it is not watched.
async fn next_session_message(sessions: &mut Option<hub::Subscription>) -> Option<hub::Received> {
    match sessions {
        Some(subscription) => subscription.recv().await,
        None => std::future::pending().await,
    }
}

/// Client → server messages.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientMessage {
    ConnectionInit {
        #[serde(default)]
        payload: Option<serde_json::Value>,
    },
    Ping {
        #[serde(default)]
        payload: Option<serde_json::Value>,
    },
    Pong {
        #[serde(default)]
        #[allow(dead_code)]
        payload: Option<serde_json::Value>,
    },
    Subscribe {
        id: String,
        payload: Box<async_graphql::Request>,
    },
    Complete {
        id: String,
    },
}

/// Server → client messages.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ServerMessage<'a> {
    ConnectionAck,
    Ping,
    Pong {
        #[serde(skip_serializing_if = "Option::is_none")]
        payload: Option<serde_json::Value>,
    },
    Next {
        id: &'a str,
        payload: &'a Response,
    },
    Error {
        id: &'a str,
        payload: &'a [ServerError],
    },
    Complete {
        id: &'a str,
    },
}

/// How the loop goes on after handling something.
enum Flow {
    Continue,
    /// Close the connection with this code and reason.
    Close(u16, String),
    /// The peer is gone (or the socket broke): just drop it.
    Gone,
}

/// An operation's results; `None` marks its end.
type Results = BoxStream<'static, Option<Response>>;

/// A running operation: its results, and what the connection needs to send each one.
struct Operation {
    results: Results,
    /// Shared with the operation's resolver (see [`memo`]).
    probe: Probe,
    /// Whether a result was yielded already (an error before that is an `error` message).
    started: bool,
}

/// One result of an operation, with what its probe said about it. The probe is read as
/// the result is yielded, before the operation is polled again, so it describes this
/// result and no other.
struct Step {
    /// `None`: the operation ended.
    response: Option<Response>,
    first: bool,
    memo: Option<MemoState>,
    /// When the event behind it was published (Unix microseconds), if it came from one.
    published_at: Option<i64>,
    key: Option<OperationKey>,
    /// The operation's stream said this result is its last, an error ([`Probe::end`]).
    ending: bool,
}

impl Stream for Operation {
    type Item = Step;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Step>> {
        let this = &mut *self;
        this.results.poll_next_unpin(cx).map(|result| {
            result.map(|response| Step {
                response,
                first: !std::mem::replace(&mut this.started, true),
                memo: this.probe.take_memo(),
                published_at: this.probe.take(),
                key: this.probe.key().cloned(),
                ending: this.probe.take_end(),
            })
        })
    }
}

struct Connection {
    state: WsState,
    socket: WebSocket,
    /// From the gateway's header; replaced by the token's subject after `connection_init`.
    viewer: Viewer,
    /// Likewise, the viewer's roles.
    staff: Staff,
    /// The token from `connection_init`, checked again at each `subscribe`.
    token: Option<String>,
    initialised: bool,
    acknowledged: bool,
    operations: StreamMap<String, Operation>,
    last_heard: Instant,
    /// [`wire::SESSIONS_CHANNEL`], watched once the connection has a user.
    sessions: Option<hub::Subscription>,
}

impl Connection {
    fn new(state: WsState, viewer: Viewer, staff: Staff, socket: WebSocket) -> Self {
        Self {
            state,
            socket,
            viewer,
            staff,
            token: None,
            initialised: false,
            acknowledged: false,
            operations: StreamMap::new(),
            last_heard: Instant::now(),
            sessions: None,
        }
    }

    /// Watches for this user's session ending (a ban), if there is a user and it is not
    /// watched yet. Without Redis the connection goes on unwatched: a token-bearing one is
    /// still closed at the next keep-alive once its token is denied.
    async fn watch_session(&mut self) {
        if self.sessions.is_some() || self.viewer.id().is_none() {
            return;
        }
        match self
            .state
            .realtime
            .hub
            .subscribe(wire::SESSIONS_CHANNEL)
            .await
        {
            Ok(subscription) => self.sessions = Some(subscription),
            Err(error) => tracing::warn!(%error, "session endings not watched"),
        }
    }

    /// A message on the sessions channel: close if it ends this connection's user.
    fn on_session(&mut self, received: Option<hub::Received>) -> Flow {
        match received {
            Some(hub::Received::Event(message)) => match &message.event {
                wire::Event::SessionEnded { user_id } if self.viewer.is(*user_id) => {
                    Flow::Close(4403, "Forbidden: this account is suspended".into())
                }
                _ => Flow::Continue,
            },
            Some(hub::Received::Missed(_)) => Flow::Continue,
            None => {
                self.sessions = None;
                Flow::Continue
            }
        }
    }

    async fn run(&mut self) {
        let config = self.state.realtime.config.clone();
        let init_deadline = tokio::time::sleep(config.init_timeout);
        tokio::pin!(init_deadline);
        let mut keepalive = tokio::time::interval(config.keepalive);
        keepalive.tick().await;
        let shutdown = self.state.realtime.shutdown.triggered();
        tokio::pin!(shutdown);
        self.watch_session().await;
        let flow = loop {
            let flow = tokio::select! {
                () = &mut shutdown => Flow::Close(1001, "server shutting down".into()),
                () = &mut init_deadline, if !self.initialised => {
                    Flow::Close(4408, "Connection initialisation timeout".into())
                }
                frame = self.socket.recv() => match frame {
                    Some(Ok(frame)) => {
                        self.last_heard = Instant::now();
                        self.on_frame(frame).await
                    }
                    _ => Flow::Gone,
                },
                Some((id, step)) = self.operations.next(), if !self.operations.is_empty() => {
                    self.on_result(id, step).await
                }
                received = next_session_message(&mut self.sessions) => self.on_session(received),
                _ = keepalive.tick() => {
                    if self.last_heard.elapsed() > config.keepalive * 2 {
                        Flow::Close(1001, "keep-alive timeout".into())
                    } else if let Flow::Close(code, why) = self.recheck_token().await {
                        Flow::Close(code, why)
                    } else {
                        self.send(&ServerMessage::Ping).await
                    }
                }
            };
            match flow {
                Flow::Continue => {}
                other => break other,
            }
        };
        if let Flow::Close(code, reason) = flow {
            self.close(code, reason).await;
        }
    }

    async fn close(&mut self, code: u16, reason: String) {
        metrics::closed(code);
        let frame = CloseFrame {
            code,
            reason: truncate(reason).into(),
        };
        let _ = tokio::time::timeout(
            Duration::from_secs(1),
            self.socket.send(Message::Close(Some(frame))),
        )
        .await;
    }

    async fn send(&mut self, message: &ServerMessage<'_>) -> Flow {
        let text = serde_json::to_string(message).expect("protocol messages serialise");
        self.send_text(text).await
    }

    async fn send_text(&mut self, text: String) -> Flow {
        let timeout = self.state.realtime.config.send_timeout;
        match tokio::time::timeout(timeout, self.socket.send(Message::Text(text.into()))).await {
            Ok(Ok(())) => Flow::Continue,
            Ok(Err(_)) => Flow::Gone,
            Err(_) => Flow::Close(1001, "the client does not read".into()),
        }
    }

    async fn on_frame(&mut self, frame: Message) -> Flow {
        let text = match frame {
            Message::Text(text) => text,
            Message::Binary(_) => return invalid("binary frames are not part of the protocol"),
            // WebSocket-level pings are answered by the library.
            Message::Ping(_) | Message::Pong(_) => return Flow::Continue,
            Message::Close(_) => return Flow::Gone,
        };
        let message = match serde_json::from_str::<ClientMessage>(text.as_str()) {
            Ok(message) => message,
            Err(e) => return invalid(&e.to_string()),
        };
        match message {
            ClientMessage::ConnectionInit { payload } => self.on_init(payload).await,
            ClientMessage::Ping { payload } => self.send(&ServerMessage::Pong { payload }).await,
            ClientMessage::Pong { .. } => Flow::Continue,
            ClientMessage::Subscribe { id, payload } => self.on_subscribe(id, *payload).await,
            ClientMessage::Complete { id } => {
                // The client is done with it: stop it, and say nothing (per protocol).
                self.operations.remove(&id);
                Flow::Continue
            }
        }
    }

    async fn on_init(&mut self, payload: Option<serde_json::Value>) -> Flow {
        if self.initialised {
            return Flow::Close(4429, "Too many initialisation requests".into());
        }
        self.initialised = true;
        if payload
            .as_ref()
            .is_some_and(|p| !p.is_object() && !p.is_null())
        {
            return invalid("the connection_init payload must be an object");
        }
        let token = match tokens::bearer_from_payload(payload.as_ref().filter(|p| !p.is_null())) {
            Ok(token) => token.map(str::to_owned),
            Err(()) => return Flow::Close(4403, "Forbidden".into()),
        };
        if let Some(token) = token {
            match Self::authenticate(self.state.realtime.tokens.clone(), &token).await {
                Ok((user, staff)) => {
                    // A token for someone else than the gateway vouched for is refused.
                    if self.viewer.id().is_some_and(|v| v != user) {
                        return Flow::Close(4403, "Forbidden".into());
                    }
                    self.viewer = Viewer(Some(user));
                    self.staff = staff;
                    self.token = Some(token);
                    self.watch_session().await;
                }
                Err(flow) => return flow,
            }
        }
        self.acknowledged = true;
        self.send(&ServerMessage::ConnectionAck).await
    }

    /// At every keep-alive: a connection opened with a token lives only as long as the
    /// token would still open it. Revoked (logout) or expired, it is closed with 4403 within
    /// one keep-alive interval, taking its running subscriptions with it; the client gets
    /// a fresh token and reconnects. A check that cannot be made now (Redis or auth
    /// unreachable) leaves the connection open: an outage must not drop every client.
    /// (`&mut`: a `&Connection` held across the await would make the future not `Send`.)
    async fn recheck_token(&mut self) -> Flow {
        let Some(token) = self.token.clone() else {
            return Flow::Continue;
        };
        match Self::authenticate(self.state.realtime.tokens.clone(), &token).await {
            Err(Flow::Close(4403, why)) => Flow::Close(4403, why),
            _ => Flow::Continue,
        }
    }

    /// (Takes no `&self`: the connection is not `Sync`, and this future must be `Send`.)
    async fn authenticate(
        tokens: Arc<tokens::TokenAuth>,
        token: &str,
    ) -> Result<(Uuid, Staff), Flow> {
        match tokens.authenticate(token).await {
            Ok(claims) => Ok((claims.sub, Staff::from_roles(&claims.roles))),
            Err(tokens::TokenError::Invalid(why)) => {
                tracing::info!(reason = %why, "WebSocket token refused");
                Err(Flow::Close(4403, "Forbidden".into()))
            }
            Err(tokens::TokenError::Unavailable(why)) => {
                tracing::warn!(reason = %why, "WebSocket token could not be checked");
                Err(Flow::Close(4500, "Internal server error".into()))
            }
        }
    }

    async fn on_subscribe(&mut self, id: String, request: async_graphql::Request) -> Flow {
        if !self.acknowledged {
            return Flow::Close(4401, "Unauthorized".into());
        }
        if self.operations.contains_key(&id) {
            return Flow::Close(4409, format!("Subscriber for {id} already exists"));
        }
        if self.operations.len() >= self.state.realtime.config.max_subscriptions {
            return invalid("too many operations on one connection");
        }
        // A token revoked since connection_init opens nothing more.
        if let Some(token) = self.token.clone()
            && let Err(flow) = Self::authenticate(self.state.realtime.tokens.clone(), &token).await
        {
            return flow;
        }
        // Identical operations (same document, variables and viewer) share each event's
        // rendered payload (see `memo`); the resolver still authorises this one itself.
        let probe = Probe::with_key(OperationKey::new(&request, self.viewer));
        let request = request
            .data(self.viewer)
            .data(self.staff)
            .data(probe.clone());
        let results = self
            .state
            .schema
            .execute_stream(request)
            .map(Some)
            .chain(futures::stream::once(async { None }))
            .boxed();
        let operation = Operation {
            results,
            probe,
            started: false,
        };
        self.operations.insert(id, operation);
        Flow::Continue
    }

    async fn on_result(&mut self, id: String, step: Step) -> Flow {
        let Some(mut response) = step.response else {
            return self.send(&ServerMessage::Complete { id: &id }).await;
        };
        with_error_codes(&mut response);
        if (step.first || step.ending)
            && response.is_err()
            && response.data == async_graphql::Value::Null
        {
            // The operation failed before it started (validation, arguments, access), or
            // its stream ended it with an error (the video became invisible to the
            // viewer, `super::access`): `error` ends it; no `complete` follows.
            self.operations.remove(&id);
            return self
                .send(&ServerMessage::Error {
                    id: &id,
                    payload: &response.errors,
                })
                .await;
        }
        let frame = match step.memo {
            // Identical operations already rendered this event: send their payload.
            Some(MemoState::Hit(payload)) => {
                self.state.realtime.memo.count_shared();
                memo::next_frame(&id, &payload)
            }
            // The first to render it: keep the payload for the others.
            Some(MemoState::Miss(message)) if response.is_ok() => {
                self.state.realtime.memo.count_executed();
                let payload: Arc<str> = serde_json::to_string(&response)
                    .expect("responses serialise")
                    .into();
                if let Some(key) = &step.key {
                    message.memo.put(key, payload.clone());
                }
                memo::next_frame(&id, &payload)
            }
            _ => serde_json::to_string(&ServerMessage::Next {
                id: &id,
                payload: &response,
            })
            .expect("protocol messages serialise"),
        };
        let flow = self.send_text(frame).await;
        if matches!(flow, Flow::Continue) {
            let latency = step
                .published_at
                .map(|at| (super::hub::now_micros() - at) as f64 / 1e6);
            metrics::delivered(latency);
        }
        flow
    }
}

fn invalid(why: &str) -> Flow {
    Flow::Close(4400, format!("Invalid message received: {why}"))
}

/// Close reasons are limited to 123 bytes.
fn truncate(mut reason: String) -> String {
    if reason.len() > 120 {
        let mut cut = 120;
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        reason.truncate(cut);
    }
    reason
}
