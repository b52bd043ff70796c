//! The ordered change feed: every provisioning write records what it changed, in
//! the same transaction, at a [`FeedPosition`]. The live state follows the feed
//! strictly in order ([`crate::Storage::changes_after`]) and re-reads what each entry
//! names, so it converges on the database whatever notification was lost; a
//! notification only says "there is more to read".
//!
//! Order: on SQLite, transactions commit one at a time, so the row id is commit
//! order. On Postgres, sequence values are handed out in start order, not commit
//! order, so positions are `(transaction id, row id)` and a reader takes only rows
//! whose transaction is older than every transaction still running: a slow
//! transaction is waited for, never skipped. Every reader sees the same order.

use std::str::FromStr;
use std::sync::Mutex;

use lorikeet_lorawan::Eui64;
use tokio::sync::Notify;
use uuid::Uuid;

/// A place in the feed. Ordered: `tx` first, then `seq`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FeedPosition {
    /// The writing transaction's id (Postgres); 0 on SQLite.
    pub tx: i64,
    /// The row's id.
    pub seq: i64,
}

impl std::fmt::Display for FeedPosition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.tx, self.seq)
    }
}

/// What a feed entry says changed; the reader loads its current state (or learns it
/// is gone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Changed {
    /// A tenant (name, or deleted).
    Tenant(Uuid),
    /// An API key.
    ApiKey(Uuid),
    /// An application (name, or deleted).
    Application(Uuid),
    /// A device profile.
    DeviceProfile(Uuid),
    /// A device's provisioned fields, or the device created or deleted.
    Device(Eui64),
    /// A device's root keys.
    DeviceKeys(Eui64),
    /// A device's session written from outside the network server (ABP activation).
    Session(Eui64),
    /// A device's downlink queue (enqueue, flush).
    Queue(Eui64),
    /// A gateway.
    Gateway(Eui64),
    /// An application's integrations (the id is the application's).
    Integration(Uuid),
}

impl Changed {
    /// The `kind` column.
    pub fn kind(&self) -> &'static str {
        match self {
            Changed::Tenant(_) => "tenant",
            Changed::ApiKey(_) => "api_key",
            Changed::Application(_) => "application",
            Changed::DeviceProfile(_) => "device_profile",
            Changed::Device(_) => "device",
            Changed::DeviceKeys(_) => "device_keys",
            Changed::Session(_) => "session",
            Changed::Queue(_) => "queue",
            Changed::Gateway(_) => "gateway",
            Changed::Integration(_) => "integration",
        }
    }

    /// The `key` column: a UUID, or an EUI in lower-case hex.
    pub fn key(&self) -> String {
        match self {
            Changed::Tenant(id)
            | Changed::ApiKey(id)
            | Changed::Application(id)
            | Changed::DeviceProfile(id)
            | Changed::Integration(id) => id.to_string(),
            Changed::Device(e)
            | Changed::DeviceKeys(e)
            | Changed::Session(e)
            | Changed::Queue(e)
            | Changed::Gateway(e) => e.to_string(),
        }
    }

    /// The inverse of [`Changed::kind`] and [`Changed::key`]; `None` for a row this
    /// version does not know (written by a newer one).
    pub fn parse(kind: &str, key: &str) -> Option<Self> {
        let id = || Uuid::from_str(key).ok();
        let eui = || Eui64::from_str(key).ok();
        Some(match kind {
            "tenant" => Changed::Tenant(id()?),
            "api_key" => Changed::ApiKey(id()?),
            "application" => Changed::Application(id()?),
            "device_profile" => Changed::DeviceProfile(id()?),
            "device" => Changed::Device(eui()?),
            "device_keys" => Changed::DeviceKeys(eui()?),
            "session" => Changed::Session(eui()?),
            "queue" => Changed::Queue(eui()?),
            "gateway" => Changed::Gateway(eui()?),
            "integration" => Changed::Integration(id()?),
            _ => return None,
        })
    }
}

/// One entry of the feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedEntry {
    /// Where it is.
    pub position: FeedPosition,
    /// What changed; `None` for an entry this version does not know (skipped).
    pub changed: Option<Changed>,
}

/// What [`crate::Storage::changes_after`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedPage {
    /// Entries in feed order.
    pub entries: Vec<FeedEntry>,
    /// More entries exist that were not returned: past the limit, or committed by a
    /// transaction that cannot be ordered yet (an older one is still running). Read
    /// again soon.
    pub more: bool,
}

/// This process's side of the feed: the newest position its own provisioning writes
/// committed (what an API answer waits for, "read your writes"), and a signal after
/// each such commit.
#[derive(Debug, Default)]
pub struct FeedSignals {
    written: Mutex<FeedPosition>,
    notify: Notify,
    announce: Notify,
}

impl FeedSignals {
    /// The newest position a provisioning write of this process committed.
    pub fn written(&self) -> FeedPosition {
        *self.written.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Resolves after the next provisioning commit (or at once if one happened
    /// since the last call: a permit is kept).
    pub async fn changed(&self) {
        self.notify.notified().await
    }

    /// Wakes the reader without a write of this process (e.g. a notification from
    /// another process sharing the database).
    pub fn wake(&self) {
        self.notify.notify_one();
    }

    /// Resolves after this process's next provisioning commit, for telling other
    /// processes (a permit is kept, so commits in between make one announcement).
    pub(crate) async fn to_announce(&self) {
        self.announce.notified().await
    }

    pub(crate) fn committed(&self, at: FeedPosition) {
        {
            let mut w = self.written.lock().unwrap_or_else(|e| e.into_inner());
            if at > *w {
                *w = at;
            }
        }
        self.notify.notify_one();
        self.announce.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_order() {
        let all = [
            Changed::Tenant(Uuid::new_v4()),
            Changed::ApiKey(Uuid::new_v4()),
            Changed::Application(Uuid::new_v4()),
            Changed::DeviceProfile(Uuid::new_v4()),
            Changed::Device(Eui64::from_u64(1)),
            Changed::DeviceKeys(Eui64::from_u64(2)),
            Changed::Session(Eui64::from_u64(3)),
            Changed::Queue(Eui64::from_u64(4)),
            Changed::Gateway(Eui64::from_u64(5)),
            Changed::Integration(Uuid::new_v4()),
        ];
        for c in all {
            assert_eq!(Changed::parse(c.kind(), &c.key()), Some(c));
        }
        assert_eq!(Changed::parse("future_thing", "x"), None);
        assert_eq!(Changed::parse("device", "not hex"), None);
        let p = |tx, seq| FeedPosition { tx, seq };
        assert!(p(5, 100) < p(6, 1), "transaction order first");
        assert!(p(6, 1) < p(6, 2));
    }
}
