//! A TCP forwarder between a service and one of its real dependencies, which a test can
//! close (the dependency looks down: connections are accepted and dropped at once, and
//! live ones are cut), open again, or slow down.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

pub struct Gate {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: CancellationToken,
}

struct State {
    open: bool,
    delay: Duration,
    /// Cancelled when the gate closes, cutting every forwarded connection.
    generation: CancellationToken,
}

impl Gate {
    /// Starts a gate in front of `upstream` (`host:port`), initially open or closed.
    pub async fn start(upstream: &str, open: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind gate");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            open,
            delay: Duration::ZERO,
            generation: CancellationToken::new(),
        }));
        let stop = CancellationToken::new();
        let (upstream, task_state, task_stop) = (upstream.to_owned(), state.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let (client, _) = tokio::select! {
                    accepted = listener.accept() => match accepted { Ok(c) => c, Err(_) => continue },
                    () = task_stop.cancelled() => return,
                };
                let (open, delay, generation) = {
                    let s = task_state.lock().unwrap();
                    (s.open, s.delay, s.generation.clone())
                };
                if !open {
                    drop(client);
                    continue;
                }
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    let Ok(mut server) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let mut client = client;
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        () = generation.cancelled() => {}
                    }
                });
            }
        });
        Self { addr, state, stop }
    }

    /// `host:port` to give the service instead of the dependency's.
    pub fn authority(&self) -> String {
        self.addr.to_string()
    }

    pub fn open(&self) {
        self.state.lock().unwrap().open = true;
    }

    /// Refuses new connections and cuts the live ones.
    pub fn close(&self) {
        let mut state = self.state.lock().unwrap();
        state.open = false;
        state.generation.cancel();
        state.generation = CancellationToken::new();
    }

    /// Delays every new connection by `delay` before it reaches the dependency.
    pub fn set_delay(&self, delay: Duration) {
        self.state.lock().unwrap().delay = delay;
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.stop.cancel();
        self.state.lock().unwrap().generation.cancel();
    }
}
