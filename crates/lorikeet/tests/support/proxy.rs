//! A TCP forwarder a test can cut: a broker "outage" without stopping a broker the
//! machine shares (RabbitMQ, Kafka's mock cluster).

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Forwards connections from `addr` to a target until cut.
pub struct Proxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    up: Arc<watch::Sender<bool>>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Starts forwarding a free loopback port to `target`.
    pub async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = watch::channel(true);
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if !*rx.borrow() {
                    // Down: the connection is closed at once, like a refused one.
                    drop(client);
                    continue;
                }
                let mut up = rx.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        // Cut: both sides lose the connection mid-stream.
                        _ = up.wait_for(|u| !*u) => {}
                    }
                });
            }
        });
        Proxy {
            addr,
            up: Arc::new(tx),
            task,
        }
    }

    /// Drops every connection and refuses new ones.
    pub fn down(&self) {
        self.up.send_replace(false);
    }

    /// Forwards again.
    pub fn up(&self) {
        self.up.send_replace(true);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
