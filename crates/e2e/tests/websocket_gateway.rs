//! WebSocket upgrades through the gateway: GraphQL subscriptions (`/media/graphql/ws`) pass
//! the ForwardAuth hop like any request and are then tunnelled to media. The upstream here
//! is a minimal WebSocket endpoint that records the handshake it received and echoes bytes,
//! so the test is about the gateway alone (Traefik's twin config is compared with this
//! Caddyfile by crates/deployment).

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use e2e::Stack;
use testkit::gateway::{Gateway, Upstreams};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

/// The RFC 6455 example key and its accept value.
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

async fn read_head(socket: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match socket.read(&mut byte).await {
            Ok(0) | Err(_) => break,
            Ok(_) => head.push(byte[0]),
        }
    }
    String::from_utf8_lossy(&head).to_lowercase()
}

/// Accepts upgrades, keeps each handshake's request head, then echoes whatever arrives.
async fn websocket_echo() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let heads = Arc::new(Mutex::new(Vec::new()));
    let seen = heads.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let head = read_head(&mut socket).await;
                seen.lock().unwrap().push(head);
                let answer = format!(
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {ACCEPT}\r\nSec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n"
                );
                socket.write_all(answer.as_bytes()).await.unwrap();
                let mut buf = [0u8; 1024];
                while let Ok(n) = socket.read(&mut buf).await {
                    if n == 0 || socket.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    (addr, heads)
}

/// Sends an upgrade request for /media/graphql/ws through the gateway; returns the
/// connection and the response head.
async fn upgrade(gateway: &Gateway, token: Option<&str>) -> (TcpStream, String) {
    let authority = gateway.base.trim_start_matches("http://");
    let mut socket = TcpStream::connect(authority).await.unwrap();
    let authorization = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let request = format!(
        "GET /media/graphql/ws HTTP/1.1\r\nHost: {authority}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Protocol: graphql-transport-ws\r\n{authorization}X-User-Id: forged\r\n\r\n"
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    let head = tokio::time::timeout(Duration::from_secs(10), read_head(&mut socket))
        .await
        .expect("the gateway answered the upgrade");
    (socket, head)
}

#[tokio::test(flavor = "multi_thread")]
async fn subscriptions_upgrade_through_the_gateway_after_forward_auth() {
    let stack = Stack::start().await;
    let (media, heads) = websocket_echo().await;
    let gateway = Gateway::start(Upstreams {
        auth: Some(stack.auth_addr.to_string()),
        media: Some(media),
        video: None,
        webhooks: None,
    })
    .await;

    // Anonymous (browsers cannot set headers; the token comes in connection_init): the
    // upgrade passes, the tunnel carries bytes both ways.
    let (mut socket, head) = upgrade(&gateway, None).await;
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(
        head.contains(&format!("sec-websocket-accept: {}", ACCEPT.to_lowercase())),
        "{head}"
    );
    socket.write_all(b"\x81\x05hello").await.unwrap();
    let mut echoed = [0u8; 7];
    tokio::time::timeout(Duration::from_secs(5), socket.read_exact(&mut echoed))
        .await
        .expect("bytes came back through the tunnel")
        .unwrap();
    assert_eq!(&echoed, b"\x81\x05hello");
    {
        let heads = heads.lock().unwrap();
        let seen = heads.last().expect("the upstream saw the handshake");
        assert!(seen.contains("upgrade: websocket"), "{seen}");
        assert!(
            seen.contains(&format!("sec-websocket-key: {}", KEY.to_lowercase())),
            "{seen}"
        );
        assert!(
            !seen.contains("x-user-id"),
            "a forged identity reached media: {seen}"
        );
    }

    // With a token: auth's identity (not the forged one) rides on the handshake.
    let user = uuid::Uuid::now_v7();
    let token = stack.token_for(user, "ws-user");
    let (_socket, head) = upgrade(&gateway, Some(&token)).await;
    assert!(head.starts_with("http/1.1 101"), "{head}");
    {
        let heads = heads.lock().unwrap();
        let seen = heads.last().unwrap();
        assert!(seen.contains(&format!("x-user-id: {user}")), "{seen}");
        assert!(!seen.contains("x-user-id: forged"), "{seen}");
    }

    // A bad token: refused at the gateway, media never sees the handshake.
    let before = heads.lock().unwrap().len();
    let (_socket, head) = upgrade(&gateway, Some("not-a-token")).await;
    assert!(head.starts_with("http/1.1 401"), "{head}");
    assert_eq!(heads.lock().unwrap().len(), before);
}
