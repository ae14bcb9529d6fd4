//! A bare graphql-transport-ws client for tests: every protocol message is visible, so
//! tests can also send what a well-behaved client never would. (The real browser client,
//! graphql-ws from npm, is driven by `tests/graphql_ws_client.mjs`.)

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream,
    tungstenite::{
        Message,
        client::IntoClientRequest,
        http::{HeaderName, HeaderValue},
        protocol::CloseFrame,
    },
};

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub struct WsClient {
    pub socket: Socket,
}

/// What the server said, as the tests look at it.
#[derive(Debug, Clone, PartialEq)]
pub enum Received {
    Json(Value),
    Closed(u16, String),
}

const WAIT: Duration = Duration::from_secs(20);

impl WsClient {
    /// Opens `url` (`ws://host:port/media/graphql/ws`) offering graphql-transport-ws, with
    /// extra handshake headers.
    pub async fn connect_with(url: &str, headers: &[(&str, &str)], protocol: Option<&str>) -> Self {
        let mut request = url.into_client_request().unwrap();
        if let Some(protocol) = protocol {
            request.headers_mut().insert(
                "sec-websocket-protocol",
                HeaderValue::from_str(protocol).unwrap(),
            );
        }
        for (name, value) in headers {
            request.headers_mut().insert(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        let (socket, _) = tokio_tungstenite::connect_async(request)
            .await
            .unwrap_or_else(|e| panic!("connect {url}: {e}"));
        Self { socket }
    }

    pub async fn connect(url: &str) -> Self {
        Self::connect_with(url, &[], Some("graphql-transport-ws")).await
    }

    /// Connects and completes `connection_init` (with a bearer token when given).
    pub async fn connect_init(url: &str, token: Option<&str>) -> Self {
        let mut client = Self::connect(url).await;
        client.init(token).await;
        client
    }

    pub async fn send(&mut self, message: Value) {
        self.socket
            .send(Message::Text(message.to_string().into()))
            .await
            .unwrap();
    }

    pub async fn send_text(&mut self, text: &str) {
        self.socket
            .send(Message::Text(text.to_owned().into()))
            .await
            .unwrap();
    }

    /// `connection_init`, expecting `connection_ack`.
    pub async fn init(&mut self, token: Option<&str>) {
        let payload = match token {
            Some(token) => json!({ "authorization": format!("Bearer {token}") }),
            None => json!({}),
        };
        self.send(json!({ "type": "connection_init", "payload": payload }))
            .await;
        let ack = self.recv().await;
        assert_eq!(
            ack,
            Received::Json(json!({ "type": "connection_ack" })),
            "expected an ack"
        );
    }

    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        self.send(json!({
            "id": id, "type": "subscribe",
            "payload": { "query": query, "variables": variables },
        }))
        .await;
    }

    pub async fn complete(&mut self, id: &str) {
        self.send(json!({ "id": id, "type": "complete" })).await;
    }

    /// The next protocol message (answering server pings on the way), or the close.
    pub async fn recv(&mut self) -> Received {
        self.recv_within(WAIT)
            .await
            .unwrap_or_else(|| panic!("nothing received within {WAIT:?}"))
    }

    /// Like [`WsClient::recv`], `None` if nothing arrives within `wait`.
    pub async fn recv_within(&mut self, wait: Duration) -> Option<Received> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .ok()?;
            match frame {
                None => return Some(Received::Closed(1006, "no close frame".into())),
                Some(Err(e)) => return Some(Received::Closed(1006, e.to_string())),
                Some(Ok(Message::Text(text))) => {
                    let value: Value = serde_json::from_str(text.as_str()).unwrap();
                    if value["type"] == "ping" {
                        self.send(json!({ "type": "pong" })).await;
                        continue;
                    }
                    return Some(Received::Json(value));
                }
                Some(Ok(Message::Close(frame))) => {
                    let (code, reason) = frame.map_or((1005, String::new()), |f: CloseFrame| {
                        (u16::from(f.code), f.reason.to_string())
                    });
                    return Some(Received::Closed(code, reason));
                }
                Some(Ok(_)) => continue,
            }
        }
    }

    /// The next `next` payload's `data` for operation `id`; panics on anything else.
    pub async fn next_data(&mut self, id: &str) -> Value {
        match self.recv().await {
            Received::Json(message) if message["type"] == "next" && message["id"] == id => {
                assert!(
                    message["payload"].get("errors").is_none(),
                    "errors in {message}"
                );
                message["payload"]["data"].clone()
            }
            other => panic!("expected next for {id}, got {other:?}"),
        }
    }

    /// Waits for the server to close the connection; its code and reason.
    pub async fn closed(&mut self) -> (u16, String) {
        loop {
            match self.recv().await {
                Received::Closed(code, reason) => return (code, reason),
                Received::Json(_) => continue,
            }
        }
    }
}

/// `ws://…/media/graphql/ws` of a media replica listening on `addr`.
pub fn media_ws_url(addr: std::net::SocketAddr) -> String {
    format!("ws://{addr}/media/graphql/ws")
}

/// Starts the graphql-ws npm client (`tests/graphql_ws_client.cjs`, what browsers use)
/// on one subscription through `stack`'s gateway, with the token in `connection_init`.
/// Its stdout has one JSON result per line, as it arrives; it exits after `max` results
/// or when the server completes the subscription.
pub fn graphql_ws(
    stack: &crate::Stack,
    query: &str,
    variables: Value,
    token: Option<&str>,
    max: usize,
) -> tokio::process::Child {
    let cache = std::env::var("KINO_CACHE_DIR").unwrap_or_else(|_| "/var/tmp/kino".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/graphql_ws_client.cjs");
    let url = stack.url("/media/graphql/ws").replace("http://", "ws://");
    tokio::process::Command::new("node")
        .arg(script)
        .args([
            url.as_str(),
            query,
            &variables.to_string(),
            token.unwrap_or(""),
        ])
        .arg(max.to_string())
        .env("NODE_PATH", format!("{cache}/node/node_modules"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node (deploy/local/deps installs graphql-ws)")
}

/// Waits for a [`graphql_ws`] client to finish; its results.
pub async fn graphql_ws_results(child: tokio::process::Child) -> Vec<Value> {
    let output = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("the graphql-ws client finished")
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "graphql-ws client: {stderr}");
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// Waits for a [`graphql_ws`] client that must fail; what it printed on stderr (why).
pub async fn graphql_ws_refusal(child: tokio::process::Child) -> String {
    let output = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("the graphql-ws client finished")
        .unwrap();
    assert!(!output.status.success(), "the graphql-ws client succeeded");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub const COMMENT_EVENTS: &str = "subscription($v: ID!, $after: String) {
    commentEvents(videoId: $v, after: $after) { kind cursor comment { body } } }";

/// What [`watch_comments`] saw.
#[derive(Default)]
pub struct Watched {
    /// The bodies of the comments delivered as `ADDED`.
    pub delivered: std::collections::HashSet<String>,
    /// Each connection in turn: which reconnection a comment missed live fell into.
    pub sessions: Vec<Session>,
}

/// One connection of [`watch_comments`], recorded as it begins.
pub struct Session {
    pub began: std::time::Instant,
    /// When and why it ended (`RESYNC`, the socket's error, ...); `None` while it lasts.
    pub ended: Option<(std::time::Instant, String)>,
    /// The cursor it subscribed `after` (the last one the previous sessions got).
    pub resumed_from: Option<String>,
    /// How many comments it delivered as `ADDED`.
    pub added: usize,
}

impl std::fmt::Display for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "after {:?}: {} added, ", self.resumed_from, self.added)?;
        match &self.ended {
            Some((at, why)) => write!(f, "{:?} long, then {why}", *at - self.began),
            None => write!(f, "still open"),
        }
    }
}

/// A live subscriber to `video`'s comments through the gateway that reconnects whenever
/// its connection ends (a media restart) and resumes with the last cursor it got, as a
/// client should. Collects the bodies of added comments until `stop`.
pub async fn watch_comments(
    ws_url: String,
    video: String,
    watched: std::sync::Arc<std::sync::Mutex<Watched>>,
    stop: tokio_util::sync::CancellationToken,
) {
    let mut cursor: Option<String> = None;
    while !stop.is_cancelled() {
        let session = {
            let mut watched = watched.lock().unwrap();
            watched.sessions.push(Session {
                began: std::time::Instant::now(),
                ended: None,
                resumed_from: cursor.clone(),
                added: 0,
            });
            watched.sessions.len() - 1
        };
        // Why the connection ended (it never ends otherwise).
        let connection = async {
            let (mut socket, _) = {
                use tokio_tungstenite::tungstenite::client::IntoClientRequest;
                let mut request = ws_url.as_str().into_client_request().unwrap();
                request.headers_mut().insert(
                    "sec-websocket-protocol",
                    "graphql-transport-ws".parse().unwrap(),
                );
                tokio_tungstenite::connect_async(request)
                    .await
                    .map_err(|e| format!("connect: {e}"))?
            };
            let send = |v: Value| Message::Text(v.to_string().into());
            socket
                .send(send(json!({ "type": "connection_init", "payload": {} })))
                .await
                .map_err(|e| format!("send init: {e}"))?;
            socket
                .send(send(json!({
                    "id": "c", "type": "subscribe",
                    "payload": { "query": COMMENT_EVENTS,
                                 "variables": { "v": video, "after": cursor } },
                })))
                .await
                .map_err(|e| format!("send subscribe: {e}"))?;
            while let Some(frame) = socket.next().await {
                let frame = frame.map_err(|e| format!("socket: {e}"))?;
                let Message::Text(text) = frame else { continue };
                let message: Value =
                    serde_json::from_str(text.as_str()).map_err(|e| format!("frame: {e}"))?;
                match message["type"].as_str() {
                    Some("ping") => socket
                        .send(send(json!({ "type": "pong" })))
                        .await
                        .map_err(|e| format!("send pong: {e}"))?,
                    Some("next") => {
                        let event = &message["payload"]["data"]["commentEvents"];
                        if event.is_null() {
                            return Err(format!("error payload: {message}"));
                        }
                        if event["kind"] == "ADDED"
                            && let Some(body) = event["comment"]["body"].as_str()
                        {
                            let mut watched = watched.lock().unwrap();
                            watched.delivered.insert(body.to_owned());
                            watched.sessions[session].added += 1;
                        }
                        if let Some(c) = event["cursor"].as_str() {
                            cursor = Some(c.to_owned());
                        }
                        if event["kind"] == "RESYNC" {
                            return Err("RESYNC".to_owned());
                        }
                    }
                    Some("connection_ack") => {}
                    _ => return Err(format!("{message}")), // error, complete: resubscribe
                }
            }
            Err::<std::convert::Infallible, String>("closed".to_owned())
        };
        let why = tokio::select! {
            ended = connection => ended.unwrap_err(),
            () = stop.cancelled() => "stopped".to_owned(),
        };
        let why = why.chars().take(200).collect();
        watched.lock().unwrap().sessions[session].ended = Some((std::time::Instant::now(), why));
        if !stop.is_cancelled() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
