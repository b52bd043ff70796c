//! Webhook settings over real HTTP against real SQLite and Postgres: where a webhook
//! may point (the SSRF guard: tenant keys reach public addresses only, the admin
//! token also loopback and private networks, cloud metadata nobody unless
//! allowlisted), and secrets that are write-only (masked in GET, kept on update).

#![allow(clippy::unwrap_used)]

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use lorikeet_api::ApiState;
use lorikeet_service::target::{Lookup, Resolver, TargetGuard, TargetPolicy};
use lorikeet_storage::testing::TestDb;
use lorikeet_storage::{
    storage_test, HttpIntegrationConfig, IntegrationKind, IntegrationOwner, Storage,
};
use reqwest::Method;
use serde_json::{json, Value};
use tokio::sync::oneshot;
use uuid::Uuid;

const ADMIN: &str = "admin-secret-token";

struct Server {
    base: String,
    client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

async fn start(state: ApiState) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(lorikeet_api::serve(listener, state, async move {
        let _ = stopped.await;
    }));
    Server {
        base: format!("http://{addr}"),
        client: reqwest::Client::new(),
        stop: Some(stop),
        task,
    }
}

impl Server {
    async fn call(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        tokio::time::timeout(std::time::Duration::from_secs(5), self.task)
            .await
            .expect("server stops")
            .unwrap();
    }
}

/// A tenant with an API key and an application; returns (key, application id).
async fn tenant_app(s: &Server) -> (String, String) {
    let (st, t) = s
        .call(
            ADMIN,
            Method::POST,
            "/api/v1/tenants",
            Some(json!({"name": "t"})),
        )
        .await;
    assert_eq!(st, 201, "{t}");
    let tenant = t["id"].as_str().unwrap().to_owned();
    let (st, k) = s
        .call(
            ADMIN,
            Method::POST,
            "/api/v1/api-keys",
            Some(json!({"name": "k", "tenantId": tenant})),
        )
        .await;
    assert_eq!(st, 201, "{k}");
    let key = k["token"].as_str().unwrap().to_owned();
    let (st, a) = s
        .call(
            &key,
            Method::POST,
            "/api/v1/applications",
            Some(json!({"name": "app"})),
        )
        .await;
    assert_eq!(st, 201, "{a}");
    (key, a["id"].as_str().unwrap().to_owned())
}

fn hook(app: &str) -> String {
    format!("/api/v1/applications/{app}/integrations/http")
}

async fn stored(storage: &dyn Storage, app: &str) -> (IntegrationOwner, HttpIntegrationConfig) {
    let i = storage
        .get_integration(Uuid::parse_str(app).unwrap(), IntegrationKind::Http)
        .await
        .unwrap()
        .unwrap();
    (i.owner, serde_json::from_value(i.config).unwrap())
}

/// A resolver that answers from a table (a test's DNS, passed as a value).
#[derive(Debug, Default)]
struct TableResolver(Mutex<Vec<(String, Vec<IpAddr>)>>);

impl TableResolver {
    fn set(&self, host: &str, ips: &[&str]) {
        let mut t = self.0.lock().unwrap();
        t.retain(|(h, _)| h != host);
        t.push((
            host.into(),
            ips.iter().map(|i| i.parse().unwrap()).collect(),
        ));
    }
}

impl Resolver for TableResolver {
    fn lookup<'a>(&'a self, host: &'a str) -> Lookup<'a> {
        let found = self
            .0
            .lock()
            .unwrap()
            .iter()
            .find(|(h, _)| h == host)
            .map(|(_, ips)| ips.clone());
        Box::pin(async move {
            found.ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no such host"))
        })
    }
}

storage_test!(
    tenant_webhooks_must_reach_public_addresses,
    |db: TestDb| async move {
        let dns = Arc::new(TableResolver::default());
        dns.set("hooks.example.com", &["93.184.216.34"]);
        dns.set("intranet.example.com", &["93.184.216.34", "10.1.2.3"]);
        dns.set("localhost", &["127.0.0.1", "::1"]);
        let guard = TargetGuard::new(TargetPolicy::default(), dns.clone());
        let s =
            start(ApiState::new(db.storage.clone(), Some(ADMIN)).with_target_guard(guard)).await;
        let (key, app) = tenant_app(&s).await;

        for (url, class) in [
            ("http://127.0.0.1:9000/hook", "127.0.0.1 is loopback"),
            ("http://10.0.0.5/hook", "10.0.0.5 is private"),
            ("http://192.168.1.20/hook", "192.168.1.20 is private"),
            ("http://100.64.0.1/hook", "100.64.0.1 is shared"),
            (
                "http://169.254.169.254/latest/meta-data/",
                "169.254.169.254 is a cloud metadata address",
            ),
            ("http://[::1]:8080/hook", "::1 is loopback"),
            (
                "http://[fd00:ec2::254]/",
                "fd00:ec2::254 is a cloud metadata address",
            ),
            ("http://[::ffff:127.0.0.1]/", "127.0.0.1 is loopback"),
            ("http://0.0.0.0:80/", "0.0.0.0 is unspecified"),
            ("http://2130706433/", "127.0.0.1 is loopback"),
            ("http://localhost:9000/hook", "is loopback"),
            ("http://intranet.example.com/hook", "10.1.2.3 is private"),
        ] {
            let (st, v) = s
                .call(&key, Method::POST, &hook(&app), Some(json!({"url": url})))
                .await;
            assert_eq!(st, 400, "{url}: {v}");
            let e = v["error"].as_str().unwrap();
            assert!(
                e.contains(class) && e.contains("not allowlisted"),
                "{url}: {e}"
            );
        }
        // Nothing was stored.
        let (st, _) = s.call(&key, Method::GET, &hook(&app), None).await;
        assert_eq!(st, 404);

        // A public name and a public address are fine; so is a name that does not
        // resolve yet (every connection checks again).
        for url in [
            "https://hooks.example.com/lorikeet",
            "http://93.184.216.34:8080/x",
            "https://not-yet.example.com/hook",
        ] {
            let (st, v) = s
                .call(&key, Method::POST, &hook(&app), Some(json!({"url": url})))
                .await;
            assert!(st == 201 || st == 200, "{url}: {v}");
            let (owner, config) = stored(&*db.storage, &app).await;
            assert_eq!(owner, IntegrationOwner::Tenant);
            assert_eq!(config.url, url);
        }
        let (_, v) = s.call(&key, Method::GET, &hook(&app), None).await;
        assert_eq!(v["owner"], "tenant");

        // The admin may point the same application at loopback and private networks,
        // and the integration becomes the admin's.
        for url in [
            "http://127.0.0.1:9000/hook",
            "http://10.0.0.5/hook",
            "http://[::1]:9/x",
            "http://localhost:1/x",
        ] {
            let (st, v) = s
                .call(ADMIN, Method::POST, &hook(&app), Some(json!({"url": url})))
                .await;
            assert_eq!(st, 200, "{url}: {v}");
            assert_eq!(stored(&*db.storage, &app).await.0, IntegrationOwner::Admin);
        }
        let (_, v) = s.call(&key, Method::GET, &hook(&app), None).await;
        assert_eq!(v["owner"], "admin");
        // Not the cloud metadata service, nor multicast.
        for url in [
            "http://169.254.169.254/latest/meta-data/",
            "http://[fd00:ec2::254]/",
            "http://224.0.0.1/",
        ] {
            let (st, v) = s
                .call(ADMIN, Method::POST, &hook(&app), Some(json!({"url": url})))
                .await;
            assert_eq!(st, 400, "{url}: {v}");
            assert!(
                v["error"].as_str().unwrap().contains("not allowlisted"),
                "{v}"
            );
        }
        // A tenant rewriting the admin's webhook takes it over, and the tenant's rule
        // applies to it: keeping the private URL is refused.
        let (st, v) = s
            .call(
                &key,
                Method::POST,
                &hook(&app),
                Some(json!({"url": "http://localhost:1/x"})),
            )
            .await;
        assert_eq!(st, 400, "{v}");
        assert_eq!(stored(&*db.storage, &app).await.0, IntegrationOwner::Admin);
        s.stop().await;
    }
);

storage_test!(
    allowlisted_networks_are_open_to_tenants,
    |db: TestDb| async move {
        let dns = Arc::new(TableResolver::default());
        dns.set("receiver.corp", &["10.20.30.40"]);
        let policy = TargetPolicy::from_cidrs(&["10.20.0.0/16", "169.254.169.254/32"]).unwrap();
        let guard = TargetGuard::new(policy, dns);
        let s =
            start(ApiState::new(db.storage.clone(), Some(ADMIN)).with_target_guard(guard)).await;
        let (key, app) = tenant_app(&s).await;
        for url in [
            "http://10.20.1.1/hook",
            "http://receiver.corp:8080/hook",
            "http://[::ffff:10.20.0.9]/",
        ] {
            let (st, v) = s
                .call(&key, Method::POST, &hook(&app), Some(json!({"url": url})))
                .await;
            assert!(st == 201 || st == 200, "{url}: {v}");
        }
        // Only the allowlisted network.
        let (st, v) = s
            .call(
                &key,
                Method::POST,
                &hook(&app),
                Some(json!({"url": "http://10.21.0.1/"})),
            )
            .await;
        assert_eq!(st, 400, "{v}");
        // An allowlisted metadata address is the operator's decision, for the admin too.
        let (st, v) = s
            .call(
                ADMIN,
                Method::POST,
                &hook(&app),
                Some(json!({"url": "http://169.254.169.254/"})),
            )
            .await;
        assert_eq!(st, 200, "{v}");
        s.stop().await;
    }
);

storage_test!(
    secrets_are_write_only_and_kept_on_update,
    |db: TestDb| async move {
        let s = start(ApiState::new(db.storage.clone(), Some(ADMIN))).await;
        let (st, a) = s
            .call(
                ADMIN,
                Method::POST,
                "/api/v1/applications",
                Some(json!({"name": "a"})),
            )
            .await;
        assert_eq!(st, 201);
        let app = a["id"].as_str().unwrap().to_owned();
        let (st, v) = s
            .call(
                ADMIN,
                Method::POST,
                &hook(&app),
                Some(json!({
                    "url": "http://127.0.0.1:9/hook",
                    "headers": {"Authorization": "Bearer t0ken-value", "X-Tenant": "acme-7"},
                    "signingSecret": "s3cret-value",
                })),
            )
            .await;
        assert_eq!(st, 201, "{v}");

        // GET shows header names, "****" for values, whether a secret is set.
        let (st, v) = s.call(ADMIN, Method::GET, &hook(&app), None).await;
        assert_eq!(st, 200);
        assert_eq!(
            v["headers"],
            json!({"Authorization": "****", "X-Tenant": "****"})
        );
        assert_eq!(v["signingSecretSet"], true);
        assert!(v.get("signingSecret").is_none(), "{v}");
        let text = v.to_string();
        for secret in ["t0ken-value", "acme-7", "s3cret-value"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }

        // Changing the path only: headers and secret are kept.
        let (st, v) = s
            .call(
                ADMIN,
                Method::POST,
                &hook(&app),
                Some(json!({"url": "http://127.0.0.1:9/v2"})),
            )
            .await;
        assert_eq!(st, 200, "{v}");
        let (_, c) = stored(&*db.storage, &app).await;
        assert_eq!(c.url, "http://127.0.0.1:9/v2");
        assert_eq!(c.headers["Authorization"], "Bearer t0ken-value");
        assert_eq!(c.headers["X-Tenant"], "acme-7");
        assert_eq!(c.signing_secret.as_deref(), Some("s3cret-value"));

        // What GET answered, sent back with one header changed: "****" keeps a value.
        let (_, mut got) = s.call(ADMIN, Method::GET, &hook(&app), None).await;
        got["headers"]["X-Tenant"] = json!("acme-8");
        let (st, v) = s.call(ADMIN, Method::POST, &hook(&app), Some(got)).await;
        assert_eq!(st, 200, "{v}");
        let (_, c) = stored(&*db.storage, &app).await;
        assert_eq!(c.headers["Authorization"], "Bearer t0ken-value");
        assert_eq!(c.headers["X-Tenant"], "acme-8");
        assert_eq!(c.signing_secret.as_deref(), Some("s3cret-value"));

        // A header left out of a sent set is removed; "****" for an unknown one is an error.
        let (st, _) = s
            .call(
                ADMIN,
                Method::POST,
                &hook(&app),
                Some(json!({"url": "http://127.0.0.1:9/v2", "headers": {"Authorization": "****"}})),
            )
            .await;
        assert_eq!(st, 200);
        let (_, c) = stored(&*db.storage, &app).await;
        assert_eq!(c.headers.len(), 1);
        assert_eq!(c.headers["Authorization"], "Bearer t0ken-value");
        let (st, v) = s
            .call(
                ADMIN,
                Method::POST,
                &hook(&app),
                Some(json!({"url": "http://127.0.0.1:9/v2", "headers": {"X-New": "****"}})),
            )
            .await;
        assert_eq!(st, 400, "{v}");

        // Another host: the stored header values do not follow the URL there.
        for body in [
            json!({"url": "http://10.9.9.9/hook"}),
            json!({"url": "http://10.9.9.9/hook", "headers": {"Authorization": "****"}}),
        ] {
            let (st, v) = s.call(ADMIN, Method::POST, &hook(&app), Some(body)).await;
            assert_eq!(st, 400, "{v}");
            assert!(v["error"].as_str().unwrap().contains("host"), "{v}");
        }
        let (_, c) = stored(&*db.storage, &app).await;
        assert_eq!(c.url, "http://127.0.0.1:9/v2", "nothing changed");
        let (st, _) = s
        .call(
            ADMIN,
            Method::POST,
            &hook(&app),
            Some(json!({"url": "http://10.9.9.9/hook", "headers": {"Authorization": "Bearer other"}})),
        )
        .await;
        assert_eq!(st, 200);
        let (_, c) = stored(&*db.storage, &app).await;
        assert_eq!(c.headers["Authorization"], "Bearer other");
        assert_eq!(c.signing_secret.as_deref(), Some("s3cret-value"));

        // Explicit removal: {} and "".
        let (st, _) = s
            .call(
                ADMIN,
                Method::POST,
                &hook(&app),
                Some(json!({"url": "http://10.9.9.9/hook", "headers": {}, "signingSecret": ""})),
            )
            .await;
        assert_eq!(st, 200);
        let (_, c) = stored(&*db.storage, &app).await;
        assert!(c.headers.is_empty());
        assert_eq!(c.signing_secret, None);
        let (_, v) = s.call(ADMIN, Method::GET, &hook(&app), None).await;
        assert_eq!(v["signingSecretSet"], false);
        assert_eq!(v["headers"], json!({}));
        s.stop().await;
    }
);
