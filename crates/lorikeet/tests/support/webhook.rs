//! A webhook receiver for end-to-end tests: answers 200 to every POST and records
//! each delivery, in arrival order, per device. A test can hook into deliveries
//! (e.g. to kill the server the instant one arrives) and wait for a count.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use warp::Filter;

/// One delivery as received.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The `event` query parameter (`up`, `join`, `log`, ...).
    pub event: String,
    /// The JSON body.
    pub body: Value,
    /// The body as received, byte for byte.
    pub raw: String,
    /// When it arrived.
    pub at: Instant,
}

impl Delivery {
    /// `deviceInfo.devEui` of the body ("" when missing).
    pub fn dev_eui(&self) -> &str {
        self.body["deviceInfo"]["devEui"].as_str().unwrap_or("")
    }
}

type Hook = Box<dyn Fn(&Delivery) + Send + Sync>;

#[derive(Default)]
struct Inner {
    all: Vec<Delivery>,
    hook: Option<Hook>,
}

/// A running receiver (it lives as long as the test's runtime).
#[derive(Clone)]
pub struct Receiver {
    /// Where it listens.
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
}

impl Receiver {
    /// Starts a receiver on a loopback port.
    pub async fn start() -> Receiver {
        let inner: Arc<Mutex<Inner>> = Arc::default();
        let i = inner.clone();
        let route = warp::post()
            .and(warp::query::<HashMap<String, String>>())
            .and(warp::body::bytes())
            .map(
                move |q: HashMap<String, String>, body: warp::hyper::body::Bytes| {
                    let d = Delivery {
                        event: q.get("event").cloned().unwrap_or_default(),
                        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                        raw: String::from_utf8_lossy(&body).into_owned(),
                        at: Instant::now(),
                    };
                    let mut g = i.lock().unwrap();
                    if let Some(h) = &g.hook {
                        h(&d);
                    }
                    g.all.push(d);
                    "ok"
                },
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(warp::serve(route).incoming(listener).run());
        Receiver { addr, inner }
    }

    /// The URL to configure as the webhook.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Calls `hook` with every later delivery (before it is recorded); replaces any
    /// earlier hook.
    pub fn set_hook(&self, hook: impl Fn(&Delivery) + Send + Sync + 'static) {
        self.inner.lock().unwrap().hook = Some(Box::new(hook));
    }

    /// Removes the hook.
    pub fn clear_hook(&self) {
        self.inner.lock().unwrap().hook = None;
    }

    /// Every delivery so far, in arrival order.
    pub fn all(&self) -> Vec<Delivery> {
        self.inner.lock().unwrap().all.clone()
    }

    /// How many deliveries so far.
    pub fn len(&self) -> usize {
        self.inner.lock().unwrap().all.len()
    }

    /// Deliveries so far by DevEUI (lower-case hex), each device's in arrival order.
    pub fn by_device(&self) -> BTreeMap<String, Vec<Delivery>> {
        let mut out: BTreeMap<String, Vec<Delivery>> = BTreeMap::new();
        for d in self.inner.lock().unwrap().all.iter() {
            out.entry(d.dev_eui().to_owned())
                .or_default()
                .push(d.clone());
        }
        out
    }

    /// Waits until `done(all deliveries)` holds, checking every 50 ms; `false` after
    /// `timeout`. `done` runs with the receiver locked: it must look only at its
    /// argument (calling the receiver's methods would deadlock).
    pub async fn wait_for(
        &self,
        timeout: Duration,
        mut done: impl FnMut(&[Delivery]) -> bool,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if done(&self.inner.lock().unwrap().all) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
