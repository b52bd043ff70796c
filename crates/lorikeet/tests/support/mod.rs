//! Starting a server for a test and talking to its API.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use lorikeet::{Config, Server};
use serde_json::Value;

/// The admin token test servers use.
pub const ADMIN_TOKEN: &str = "e2e-admin-token";

/// A complete server on loopback ports 0, over `database_url`.
pub async fn start_server(database_url: &str) -> Server {
    // Logs show with --nocapture; RUST_LOG narrows them.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
    let mut config = Config::default();
    config.database.url = database_url.to_owned();
    config.api.bind = "127.0.0.1:0".parse().unwrap();
    config.api.admin_token = ADMIN_TOKEN.into();
    config.gateway.udp_bind = "127.0.0.1:0".parse().unwrap();
    lorikeet::start(config, None).await.expect("server starts")
}

/// A response: status and JSON body (`Null` when empty or not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    /// The body, after checking the status.
    pub fn expect_status(self, status: u16) -> Value {
        assert_eq!(
            self.status, status,
            "unexpected status, body: {}",
            self.body
        );
        self.body
    }
}

/// An API client with the admin token.
pub struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    pub fn new(server: &Server) -> Self {
        Api {
            base: format!("http://{}", server.api_addr),
            http: reqwest::Client::new(),
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Reply {
        let r = req.bearer_auth(ADMIN_TOKEN).send().await.expect("HTTP");
        let status = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        Reply {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(self.http.post(format!("{}{path}", self.base)).json(&body))
            .await
    }

    pub async fn put(&self, path: &str, body: Value) -> Reply {
        self.send(self.http.put(format!("{}{path}", self.base)).json(&body))
            .await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(self.http.delete(format!("{}{path}", self.base)))
            .await
    }
}
