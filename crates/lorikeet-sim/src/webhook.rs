//! The simulator's webhook receiver: counts events, matches `up` events to the uplinks
//! sent (by DevEUI and FCnt) and measures the latency from the first gateway copy.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use bytes::Bytes;
use lorikeet_lorawan::Eui64;
use tokio::sync::watch;
use warp::Filter;

const SHARDS: usize = 16;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Uplinks in flight, shared by the generator (which records sends) and the receiver.
#[derive(Debug)]
pub struct Tracker {
    sent: Vec<Mutex<HashMap<(Eui64, u32), Instant>>>,
    /// Delivered uplinks: when the first copy was sent, and the latency in µs.
    delivered: Mutex<Vec<(Instant, i64)>>,
    counts: Mutex<Counts>,
    secret: Option<String>,
}

#[derive(Debug, Default)]
struct Counts {
    delivered: u64,
    duplicates: u64,
    unknown: u64,
    bad_signature: u64,
    other: BTreeMap<String, u64>,
}

/// A snapshot of what the receiver counted.
#[derive(Debug, Clone, Default)]
pub struct Received {
    /// Up events matched to an uplink we sent.
    pub delivered: u64,
    /// Up events for an uplink already delivered.
    pub duplicates: u64,
    /// Up events we could not match (e.g. from before this run).
    pub unknown: u64,
    /// Requests with a wrong or missing signature.
    pub bad_signature: u64,
    /// Other event types.
    pub other: BTreeMap<String, u64>,
}

impl Tracker {
    /// A tracker; with `secret`, every request must carry a valid signature.
    pub fn new(secret: Option<String>) -> Arc<Self> {
        Arc::new(Tracker {
            sent: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            delivered: Mutex::new(Vec::new()),
            counts: Mutex::new(Counts::default()),
            secret,
        })
    }

    fn shard(&self, dev_eui: Eui64) -> &Mutex<HashMap<(Eui64, u32), Instant>> {
        &self.sent[(dev_eui.to_u64() as usize) % SHARDS]
    }

    /// Records an uplink sent at `at` (its first gateway copy).
    pub fn sent(&self, dev_eui: Eui64, f_cnt: u32, at: Instant) {
        lock(self.shard(dev_eui)).insert((dev_eui, f_cnt), at);
    }

    /// Uplinks sent and not (yet) delivered.
    pub fn outstanding(&self) -> usize {
        self.sent.iter().map(|s| lock(s).len()).sum()
    }

    /// Counts so far.
    pub fn received(&self) -> Received {
        let c = lock(&self.counts);
        Received {
            delivered: c.delivered,
            duplicates: c.duplicates,
            unknown: c.unknown,
            bad_signature: c.bad_signature,
            other: c.other.clone(),
        }
    }

    /// Delivered uplinks: send time and latency in µs (taken: later calls see only
    /// new ones).
    pub fn take_deliveries(&self) -> Vec<(Instant, i64)> {
        std::mem::take(&mut *lock(&self.delivered))
    }

    fn on_event(&self, kind: &str, body: &[u8], signature: Option<&str>) -> bool {
        if let Some(secret) = &self.secret {
            if !signature_ok(secret, body, signature) {
                lock(&self.counts).bad_signature += 1;
                return false;
            }
        }
        if kind != "up" {
            *lock(&self.counts).other.entry(kind.to_owned()).or_default() += 1;
            return true;
        }
        let now = Instant::now();
        // Only the two fields that identify the uplink are read (the rest is skipped
        // without being built): the receiver shares the machine with the server.
        let key = serde_json::from_slice::<UpKey>(body)
            .ok()
            .and_then(|v| Some((v.device_info.dev_eui.parse().ok()?, v.f_cnt)));
        let Some(key) = key else {
            lock(&self.counts).unknown += 1;
            return true;
        };
        let sent = lock(self.shard(key.0)).remove(&key);
        let mut c = lock(&self.counts);
        match sent {
            Some(at) => {
                c.delivered += 1;
                drop(c);
                lock(&self.delivered).push((at, now.duration_since(at).as_micros() as i64));
            }
            None => c.duplicates += 1,
        }
        true
    }
}

/// What the receiver reads of an `up` event.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpKey<'a> {
    #[serde(borrow)]
    device_info: DevEuiOnly<'a>,
    f_cnt: u32,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct DevEuiOnly<'a> {
    dev_eui: &'a str,
}

/// Checks `X-Lorikeet-Signature`, in either form the server may be set to send:
/// `t=<unix>,v1=<hex HMAC-SHA256(secret, "t.body")>` with `t` within the replay
/// window of now, or the legacy `sha256=<hex HMAC-SHA256(secret, body)>`.
pub fn signature_ok(secret: &str, body: &[u8], header: Option<&str>) -> bool {
    use lorikeet_integration::signature::{verify, verify_v1, REPLAY_WINDOW_S};
    let Some(h) = header else {
        return false;
    };
    if h.trim_start().starts_with("sha256=") {
        return verify(secret.as_bytes(), body, h);
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    verify_v1(secret.as_bytes(), body, h, now, REPLAY_WINDOW_S).is_ok()
}

/// Serves the receiver on `bind` until `shutdown` flips; returns the bound address.
pub async fn serve(
    bind: SocketAddr,
    tracker: Arc<Tracker>,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(bind).await?;
    let addr = listener.local_addr()?;
    let route = warp::post()
        .and(warp::query::<HashMap<String, String>>())
        .and(warp::header::optional::<String>("x-lorikeet-signature"))
        .and(warp::body::bytes())
        .map(
            move |q: HashMap<String, String>, sig: Option<String>, body: Bytes| {
                let kind = q.get("event").map(String::as_str).unwrap_or("unknown");
                let ok = tracker.on_event(kind, &body, sig.as_deref());
                let status = if ok { 200 } else { 401 };
                warp::http::Response::builder()
                    .status(status)
                    .body(String::new())
                    .unwrap_or_default()
            },
        )
        .boxed();
    tokio::spawn(async move {
        warp::serve(route)
            .incoming(listener)
            .graceful(async move {
                while !*shutdown.borrow() {
                    if shutdown.changed().await.is_err() {
                        return;
                    }
                }
            })
            .run()
            .await;
    });
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hmac::{Hmac, Mac};
    use sha2::Sha256;

    #[test]
    fn signatures() {
        let mut mac = Hmac::<Sha256>::new_from_slice(b"s3cret").unwrap();
        mac.update(b"{}");
        let good = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert!(signature_ok("s3cret", b"{}", Some(&good)));
        assert!(!signature_ok("s3cret", b"{ }", Some(&good)));
        assert!(!signature_ok("other", b"{}", Some(&good)));
        assert!(!signature_ok("s3cret", b"{}", None));
        assert!(!signature_ok("s3cret", b"{}", Some("sha256=zz")));

        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let mut mac = Hmac::<Sha256>::new_from_slice(b"s3cret").unwrap();
        mac.update(format!("{now}.{{}}").as_bytes());
        let v1 = format!("t={now},v1={}", hex::encode(mac.finalize().into_bytes()));
        assert!(signature_ok("s3cret", b"{}", Some(&v1)));
        assert!(!signature_ok("s3cret", b"{ }", Some(&v1)));
        let old = now - 3_600;
        let mut mac = Hmac::<Sha256>::new_from_slice(b"s3cret").unwrap();
        mac.update(format!("{old}.{{}}").as_bytes());
        let stale = format!("t={old},v1={}", hex::encode(mac.finalize().into_bytes()));
        assert!(!signature_ok("s3cret", b"{}", Some(&stale)), "an hour old");
    }

    #[test]
    fn matching_and_duplicates() {
        let t = Tracker::new(None);
        let d: Eui64 = "0102030405060708".parse().unwrap();
        t.sent(d, 7, Instant::now());
        let body = br#"{"deviceInfo":{"devEui":"0102030405060708"},"fCnt":7}"#;
        assert!(t.on_event("up", body, None));
        assert!(t.on_event("up", body, None));
        assert!(t.on_event("join", b"{}", None));
        let r = t.received();
        assert_eq!((r.delivered, r.duplicates), (1, 1));
        assert_eq!(r.other.get("join"), Some(&1));
        assert_eq!(t.take_deliveries().len(), 1);
        assert_eq!(t.outstanding(), 0);
    }
}
