//! The naive baseline for bench/realtime: seed 003's reader, in Rust.
//!
//! Every WebSocket subscriber gets its own Redis pub/sub connection and SUBSCRIBEs to its
//! video's channel itself; every message is decoded once per subscriber. It speaks just
//! enough graphql-transport-ws for the load generator (init/ack, one `commentEvents`
//! subscription, `next` messages with the comment's body) and does no GraphQL at all, so
//! it is cheaper per delivery than media: any advantage media shows comes from the
//! fan-out design, not from doing less.
//!
//! Environment: BIND_ADDR (127.0.0.1:18390), REDIS_URL, CHANNEL_PREFIX (the hub's Redis
//! prefix, `<REDIS_PREFIX>rt:`; media publishes comment events there).
// tungstenite's handshake callback returns its error response by value; not ours to box.
#![allow(clippy::result_large_err)]

use futures::{SinkExt, StreamExt};
use kino_bench::env_or;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::{
    Message,
    handshake::server::{Request, Response},
    http::HeaderValue,
};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let bind: String = env_or("BIND_ADDR", "127.0.0.1:18390".to_string());
    let redis_url: String = env_or("REDIS_URL", "redis://127.0.0.1:6379".to_string());
    let prefix: String = env_or("CHANNEL_PREFIX", "kino:rt:".to_string());
    let client = redis::Client::open(redis_url)?;
    let listener = TcpListener::bind(&bind).await?;
    eprintln!("naive-fanout on {bind}");
    loop {
        let (tcp, _) = listener.accept().await?;
        let (client, prefix) = (client.clone(), prefix.clone());
        tokio::spawn(async move {
            if let Err(e) = serve(tcp, client, prefix).await {
                eprintln!("connection: {e:#}");
            }
        });
    }
}

async fn serve(tcp: TcpStream, client: redis::Client, prefix: String) -> anyhow::Result<()> {
    let mut socket =
        tokio_tungstenite::accept_hdr_async(tcp, |_: &Request, mut response: Response| {
            response.headers_mut().insert(
                "sec-websocket-protocol",
                HeaderValue::from_static("graphql-transport-ws"),
            );
            Ok(response)
        })
        .await?;
    // connection_init -> ack; then one subscribe.
    let (id, video) = loop {
        let Some(frame) = socket.next().await else {
            return Ok(());
        };
        let Message::Text(text) = frame? else {
            continue;
        };
        let message: Value = serde_json::from_str(text.as_str())?;
        match message["type"].as_str() {
            Some("connection_init") => {
                socket
                    .send(Message::Text(r#"{"type":"connection_ack"}"#.into()))
                    .await?;
            }
            Some("subscribe") => {
                let id = message["id"].as_str().unwrap_or("1").to_owned();
                let video = message["payload"]["variables"]["v"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                break (id, video);
            }
            _ => {}
        }
    };
    // The naive part: a Redis subscription of its own for this one client.
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub
        .subscribe(format!("{prefix}comments:{video}"))
        .await?;
    let mut messages = pubsub.on_message();
    loop {
        tokio::select! {
            message = messages.next() => {
                let Some(message) = message else { return Ok(()) };
                let wire: Value = serde_json::from_slice(message.get_payload_bytes())?;
                let body = &wire["event"]["comment"]["body"];
                let next = json!({
                    "id": id, "type": "next",
                    "payload": { "data": { "commentEvents": { "comment": { "body": body } } } },
                });
                socket.send(Message::Text(next.to_string().into())).await?;
            }
            frame = socket.next() => match frame {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return Ok(()),
                Some(Ok(_)) => {}
            },
        }
    }
}
