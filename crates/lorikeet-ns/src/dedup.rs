//! Deduplication: copies of one radio frame heard by several gateways become one uplink.
//!
//! The window opens when the first copy arrives and closes `window` later; copies that
//! arrive inside it only add their gateway's reception metadata. Copies are matched on
//! the exact PHYPayload bytes and the frequency (the same bytes on another channel are a
//! different transmission, e.g. a retransmission or crosstalk).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::rx::{RxInfo, TxInfo};

/// Gateways kept per uplink; more copies than this are counted but their metadata dropped,
/// so a flood of fake gateways cannot grow one entry without bound.
pub const MAX_GATEWAYS_PER_UPLINK: usize = 32;

/// One radio frame as one gateway heard it.
#[derive(Debug, Clone)]
pub struct RxFrame {
    /// The PHYPayload bytes.
    pub phy_payload: Arc<[u8]>,
    /// How it was sent (frequency, modulation).
    pub tx_info: TxInfo,
    /// How this gateway received it.
    pub rx_info: RxInfo,
}

/// A deduplicated uplink: the frame and every gateway that heard it.
#[derive(Debug, Clone)]
pub struct Uplink {
    /// The PHYPayload bytes.
    pub phy_payload: Arc<[u8]>,
    /// How it was sent.
    pub tx_info: TxInfo,
    /// One entry per gateway, in order of arrival.
    pub rx_info: Vec<RxInfo>,
    /// When the first copy reached us.
    pub first_seen: Instant,
}

/// Backhaul delays longer than this are treated as clock errors, not latency.
const MAX_BELIEVABLE_BACKHAUL: Duration = Duration::from_millis(1500);

impl Uplink {
    /// Our best estimate of when the frame ended on the air, on our monotonic clock:
    /// the first copy's arrival, moved back by the backhaul delay the gateway's own
    /// clock reveals (`ns_time − gw_time`) when it has one. Gateways without GPS/NTP time
    /// give no estimate; the receive windows then count from the arrival, and a
    /// TX_ACK `TOO_LATE` moves the downlink to RX2.
    pub fn air_end(&self) -> Instant {
        let backhaul = self
            .rx_info
            .iter()
            .filter_map(|r| {
                let gw = r.gw_time?;
                let d = r.ns_time.duration_since(gw).ok()?;
                (d <= MAX_BELIEVABLE_BACKHAUL).then_some(d)
            })
            .min()
            .unwrap_or(Duration::ZERO);
        self.first_seen
            .checked_sub(backhaul)
            .unwrap_or(self.first_seen)
    }

    /// The reception with the best SNR, then RSSI: where a downlink should go.
    pub fn best_rx(&self) -> Option<&RxInfo> {
        self.rx_info.iter().max_by(|a, b| a.signal_cmp(b))
    }
}

/// What happened to a copy handed to [`Deduplicator::insert`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// The first copy: a window opened and closes at `deadline`.
    Opened {
        /// When the window closes.
        deadline: Instant,
    },
    /// A copy from another gateway, merged.
    Merged,
    /// A copy from a gateway that already reported this frame (kept the better signal).
    SameGateway,
    /// More gateways than [`MAX_GATEWAYS_PER_UPLINK`]; counted, metadata dropped.
    TooManyGateways,
    /// Too many windows open at once: the copy was shed.
    Overloaded,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    frequency_hz: u32,
    phy_payload: Arc<[u8]>,
}

#[derive(Debug)]
struct Slot {
    tx_info: TxInfo,
    rx_info: Vec<RxInfo>,
    first_seen: Instant,
}

/// Collects copies of uplinks for a fixed window.
#[derive(Debug)]
pub struct Deduplicator {
    window: Duration,
    max_open: usize,
    open: HashMap<Key, Slot>,
    // Windows all have the same length, so arrival order is deadline order.
    deadlines: VecDeque<(Instant, Key)>,
}

impl Deduplicator {
    /// A deduplicator with the given window and a cap on simultaneously open windows.
    pub fn new(window: Duration, max_open: usize) -> Self {
        Deduplicator {
            window,
            max_open,
            open: HashMap::new(),
            deadlines: VecDeque::new(),
        }
    }

    /// The window length.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// Number of windows currently open.
    pub fn open_windows(&self) -> usize {
        self.open.len()
    }

    /// Adds one copy received at `now`.
    pub fn insert(&mut self, frame: RxFrame, now: Instant) -> Inserted {
        let key = Key {
            frequency_hz: frame.tx_info.frequency_hz,
            phy_payload: frame.phy_payload,
        };
        if let Some(slot) = self.open.get_mut(&key) {
            let rx = frame.rx_info;
            if let Some(existing) = slot
                .rx_info
                .iter_mut()
                .find(|r| r.gateway_id == rx.gateway_id)
            {
                if rx.signal_cmp(existing).is_gt() {
                    *existing = rx;
                }
                return Inserted::SameGateway;
            }
            if slot.rx_info.len() >= MAX_GATEWAYS_PER_UPLINK {
                return Inserted::TooManyGateways;
            }
            slot.rx_info.push(rx);
            return Inserted::Merged;
        }
        if self.open.len() >= self.max_open {
            return Inserted::Overloaded;
        }
        let deadline = now + self.window;
        self.deadlines.push_back((deadline, key.clone()));
        let mut rx_info = Vec::with_capacity(4);
        rx_info.push(frame.rx_info);
        self.open.insert(
            key,
            Slot {
                tx_info: frame.tx_info,
                rx_info,
                first_seen: now,
            },
        );
        Inserted::Opened { deadline }
    }

    /// When the next window closes, if any is open.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.front().map(|(d, _)| *d)
    }

    /// Removes and returns the next uplink whose window has closed by `now`.
    pub fn poll(&mut self, now: Instant) -> Option<Uplink> {
        let (deadline, _) = self.deadlines.front()?;
        if *deadline > now {
            return None;
        }
        let (_, key) = self.deadlines.pop_front()?;
        let slot = self.open.remove(&key)?;
        Some(Uplink {
            phy_payload: key.phy_payload,
            tx_info: slot.tx_info,
            rx_info: slot.rx_info,
            first_seen: slot.first_seen,
        })
    }

    /// Closes every open window at once (shutdown: finish what is collected).
    pub fn drain(&mut self) -> Vec<Uplink> {
        let mut out = Vec::with_capacity(self.deadlines.len());
        while let Some((_, key)) = self.deadlines.pop_front() {
            if let Some(slot) = self.open.remove(&key) {
                out.push(Uplink {
                    phy_payload: key.phy_payload,
                    tx_info: slot.tx_info,
                    rx_info: slot.rx_info,
                    first_seen: slot.first_seen,
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rx::tests::{rx, tx};

    fn frame(payload: &[u8], freq: u32, gw: u8, snr: f32) -> RxFrame {
        RxFrame {
            phy_payload: Arc::from(payload),
            tx_info: tx(freq),
            rx_info: rx(gw, snr, -80.0),
        }
    }

    #[test]
    fn three_gateways_become_one_uplink() {
        let t0 = Instant::now();
        let mut d = Deduplicator::new(Duration::from_millis(200), 1000);
        assert_eq!(
            d.insert(frame(b"abc", 868_100_000, 1, 5.0), t0),
            Inserted::Opened {
                deadline: t0 + Duration::from_millis(200)
            }
        );
        assert_eq!(
            d.insert(
                frame(b"abc", 868_100_000, 2, 9.0),
                t0 + Duration::from_millis(50)
            ),
            Inserted::Merged
        );
        assert_eq!(
            d.insert(
                frame(b"abc", 868_100_000, 3, -2.0),
                t0 + Duration::from_millis(199)
            ),
            Inserted::Merged
        );
        assert!(d.poll(t0 + Duration::from_millis(199)).is_none());
        let up = d.poll(t0 + Duration::from_millis(200)).unwrap();
        assert_eq!(up.rx_info.len(), 3);
        assert_eq!(up.best_rx().unwrap().gateway_id.0[7], 2);
        assert_eq!(&*up.phy_payload, b"abc");
        assert!(d.poll(t0 + Duration::from_secs(5)).is_none());
        assert_eq!(d.open_windows(), 0);
    }

    #[test]
    fn a_copy_after_the_window_opens_a_new_uplink() {
        let t0 = Instant::now();
        let mut d = Deduplicator::new(Duration::from_millis(200), 1000);
        d.insert(frame(b"abc", 868_100_000, 1, 5.0), t0);
        let first = d.poll(t0 + Duration::from_millis(200)).unwrap();
        assert_eq!(first.rx_info.len(), 1);
        assert!(matches!(
            d.insert(
                frame(b"abc", 868_100_000, 2, 5.0),
                t0 + Duration::from_millis(201)
            ),
            Inserted::Opened { .. }
        ));
    }

    #[test]
    fn different_frequency_or_bytes_are_different_uplinks() {
        let t0 = Instant::now();
        let mut d = Deduplicator::new(Duration::from_millis(200), 1000);
        d.insert(frame(b"abc", 868_100_000, 1, 5.0), t0);
        assert!(matches!(
            d.insert(frame(b"abc", 868_300_000, 1, 5.0), t0),
            Inserted::Opened { .. }
        ));
        assert!(matches!(
            d.insert(frame(b"abd", 868_100_000, 1, 5.0), t0),
            Inserted::Opened { .. }
        ));
        assert_eq!(d.open_windows(), 3);
        assert_eq!(d.drain().len(), 3);
        assert_eq!(d.next_deadline(), None);
    }

    #[test]
    fn same_gateway_twice_keeps_the_better_copy() {
        let t0 = Instant::now();
        let mut d = Deduplicator::new(Duration::from_millis(200), 1000);
        d.insert(frame(b"x", 1, 1, 1.0), t0);
        assert_eq!(d.insert(frame(b"x", 1, 1, 7.0), t0), Inserted::SameGateway);
        assert_eq!(d.insert(frame(b"x", 1, 1, 3.0), t0), Inserted::SameGateway);
        let up = d.drain().pop().unwrap();
        assert_eq!(up.rx_info.len(), 1);
        assert_eq!(up.rx_info[0].snr_db, Some(7.0));
    }

    #[test]
    fn bounded_gateways_and_windows() {
        let t0 = Instant::now();
        let mut d = Deduplicator::new(Duration::from_millis(200), 2);
        for gw in 0..MAX_GATEWAYS_PER_UPLINK as u8 {
            d.insert(frame(b"x", 1, gw, 1.0), t0);
        }
        assert_eq!(
            d.insert(frame(b"x", 1, 200, 1.0), t0),
            Inserted::TooManyGateways
        );
        d.insert(frame(b"y", 1, 1, 1.0), t0);
        assert_eq!(d.insert(frame(b"z", 1, 1, 1.0), t0), Inserted::Overloaded);
        // Once a window closes there is room again.
        assert!(d.poll(t0 + Duration::from_millis(200)).is_some());
        assert!(matches!(
            d.insert(frame(b"z", 1, 1, 1.0), t0 + Duration::from_millis(200)),
            Inserted::Opened { .. }
        ));
    }

    #[test]
    fn windows_close_in_arrival_order() {
        let t0 = Instant::now();
        let mut d = Deduplicator::new(Duration::from_millis(200), 100);
        for i in 0..10u8 {
            d.insert(
                frame(&[i], 1, 1, 1.0),
                t0 + Duration::from_millis(i as u64 * 10),
            );
        }
        assert_eq!(d.next_deadline(), Some(t0 + Duration::from_millis(200)));
        let closed: Vec<u8> = std::iter::from_fn(|| d.poll(t0 + Duration::from_millis(250)))
            .map(|u| u.phy_payload[0])
            .collect();
        assert_eq!(closed, vec![0, 1, 2, 3, 4, 5]);
    }
}
