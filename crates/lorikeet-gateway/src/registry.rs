//! The gateway registry: which EUIs are accepted, where each gateway's downlink
//! path is, its rate limit and whether it answers with TX_ACK.
//!
//! Pure state: the caller passes `now` (monotonic, for decisions) and the wall
//! clock (for reporting), so every rule is tested by stepping time by hand.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant, SystemTime};

use lorikeet_lorawan::Eui64;

use crate::config::GatewayConfig;
use crate::counters::DropReason;
use crate::limits::TokenBucket;
use crate::types::GatewayStats;
use crate::wire::PROTOCOL_VERSION_1;

/// Per-gateway settings the network server stores with the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct GatewayPolicy {
    /// Gain of the gateway's antenna in dBi; `None` uses
    /// `gateway.default_antenna_gain_dbi`. Downlinks are sent with
    /// `powe` = EIRP − gain, so the radiated power stays within the regional limit.
    pub antenna_gain_dbi: Option<f32>,
}

/// Whether a gateway's forwarder confirms downlinks with TX_ACK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxAckSupport {
    /// Not known yet: downlinks wait for a TX_ACK (up to `tx_ack_timeout_ms`).
    Unknown,
    /// It has sent at least one TX_ACK: downlinks always wait for one.
    Confirmed,
    /// Protocol v1, or `tx_ack_missing_limit` downlinks in a row went unanswered
    /// while it never sent any: downlinks return `Unacknowledged` at once. Any
    /// TX_ACK later (or a v2 PULL_DATA after v1) moves it back.
    Absent,
}

/// What the registry knows about one gateway (a copy; reading it locks nothing long).
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayState {
    /// The gateway.
    pub gateway_id: Eui64,
    /// Registered by the network server (`upsert_gateway`/`set_known_gateways`),
    /// rather than admitted by `allow_unknown`.
    pub known: bool,
    /// Its policy.
    pub policy: GatewayPolicy,
    /// Where downlinks go: the source of its last accepted PULL_DATA.
    pub downlink_addr: Option<SocketAddr>,
    /// Protocol version of its last PULL_DATA.
    pub protocol_version: Option<u8>,
    /// When we last accepted any datagram from it.
    pub last_seen_at: Option<SystemTime>,
    /// When we last accepted a PULL_DATA from it.
    pub last_pull_at: Option<SystemTime>,
    /// Its last status report.
    pub last_stats: Option<GatewayStats>,
    /// Whether it sends TX_ACK.
    pub tx_ack: TxAckSupport,
}

/// Where and how to send a downlink to one gateway.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct DownlinkTarget {
    pub addr: SocketAddr,
    pub version: u8,
    pub antenna_gain_dbi: f32,
    pub tx_ack: TxAckSupport,
}

/// Why a downlink has nowhere to go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoTarget {
    UnknownGateway,
    NoDownlinkPath,
}

/// A PULL_DATA changed where downlinks go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AddressChange {
    /// The first PULL_DATA we accepted from this gateway.
    First(SocketAddr),
    /// The old address fell silent and a new one took over.
    Moved { from: SocketAddr, to: SocketAddr },
}

/// An accepted PUSH_DATA: its uplinks go on; its `stat` only if `stats_allowed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PushAccepted {
    /// The report may update the gateway's state (location and counters): it came
    /// from the pinned address, or pinning is off. A `stat` from a gateway whose
    /// PULL_DATA address is not known yet is refused while pinning is on: nothing
    /// says the sender is the gateway.
    pub stats_allowed: bool,
}

/// Whether two addresses are the same host (an IPv4 address and its IPv4-mapped
/// IPv6 form are, as a dual-stack socket may report either).
fn same_ip(a: IpAddr, b: IpAddr) -> bool {
    a.to_canonical() == b.to_canonical()
}

/// The registry's verdict on a PULL_DATA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PullOutcome {
    /// Acknowledge it; maybe the downlink path changed.
    Accepted(Option<AddressChange>),
    /// Drop it without an ack.
    Dropped(DropReason),
}

#[derive(Debug, Clone)]
struct Entry {
    known: bool,
    policy: GatewayPolicy,
    downlink_addr: Option<SocketAddr>,
    last_pull: Option<Instant>,
    last_pull_wall: Option<SystemTime>,
    last_seen_wall: Option<SystemTime>,
    protocol_version: Option<u8>,
    last_stats: Option<GatewayStats>,
    tx_ack: TxAckSupport,
    missed_tx_acks: u32,
    /// Spent by datagrams from the pinned IP address (or any, before the first
    /// PULL_DATA).
    bucket: TokenBucket,
    /// Spent by PUSH_DATA from other addresses (only with `pin_address` off), so
    /// a spoofer elsewhere never spends the real gateway's budget.
    foreign_bucket: TokenBucket,
}

impl Entry {
    fn new(known: bool, policy: GatewayPolicy, burst: f64) -> Self {
        Entry {
            known,
            policy,
            downlink_addr: None,
            last_pull: None,
            last_pull_wall: None,
            last_seen_wall: None,
            protocol_version: None,
            last_stats: None,
            tx_ack: TxAckSupport::Unknown,
            missed_tx_acks: 0,
            bucket: TokenBucket::full(burst),
            foreign_bucket: TokenBucket::full(burst),
        }
    }
}

/// The rules, taken from [`GatewayConfig`].
#[derive(Debug, Clone)]
pub(crate) struct RegistrySettings {
    pub allow_unknown: bool,
    pub max_unknown: usize,
    pub takeover_silence: Duration,
    pub rate_per_s: f64,
    pub burst: f64,
    pub default_gain_dbi: f32,
    pub tx_ack_missing_limit: u32,
    pub pin_address: bool,
}

impl From<&GatewayConfig> for RegistrySettings {
    fn from(c: &GatewayConfig) -> Self {
        RegistrySettings {
            allow_unknown: c.allow_unknown,
            max_unknown: c.max_unknown_gateways,
            takeover_silence: c.address_takeover_silence(),
            rate_per_s: f64::from(c.rate_limit_datagrams_per_s),
            burst: f64::from(c.rate_limit_burst_datagrams),
            default_gain_dbi: c.default_antenna_gain_dbi,
            tx_ack_missing_limit: c.tx_ack_missing_limit,
            pin_address: c.pin_address,
        }
    }
}

/// All gateways, known and admitted.
#[derive(Debug)]
pub(crate) struct Registry {
    settings: RegistrySettings,
    entries: HashMap<Eui64, Entry>,
    unknown_count: usize,
}

impl Registry {
    pub(crate) fn new(settings: RegistrySettings) -> Self {
        Registry {
            settings,
            entries: HashMap::new(),
            unknown_count: 0,
        }
    }

    /// Registers `eui` (or updates its policy), keeping its live state.
    pub(crate) fn upsert(&mut self, eui: Eui64, policy: GatewayPolicy) {
        let burst = self.settings.burst;
        let entry = self
            .entries
            .entry(eui)
            .or_insert_with(|| Entry::new(true, policy, burst));
        if !entry.known {
            entry.known = true;
            self.unknown_count = self.unknown_count.saturating_sub(1);
        }
        entry.policy = policy;
    }

    /// Forgets `eui` entirely. Returns whether it was there.
    pub(crate) fn remove(&mut self, eui: Eui64) -> bool {
        match self.entries.remove(&eui) {
            Some(e) => {
                if !e.known {
                    self.unknown_count = self.unknown_count.saturating_sub(1);
                }
                true
            }
            None => false,
        }
    }

    /// Makes the known set exactly `gateways`: new ones are added, policies updated,
    /// known ones not listed are removed. Gateways admitted by `allow_unknown` stay.
    pub(crate) fn set_known(&mut self, gateways: impl IntoIterator<Item = (Eui64, GatewayPolicy)>) {
        let wanted: HashMap<Eui64, GatewayPolicy> = gateways.into_iter().collect();
        self.entries
            .retain(|eui, e| !e.known || wanted.contains_key(eui));
        for (eui, policy) in wanted {
            self.upsert(eui, policy);
        }
    }

    /// The entry for a datagram from `eui`, admitting it as unknown if allowed.
    fn admit(&mut self, eui: Eui64) -> Result<&mut Entry, DropReason> {
        if !self.entries.contains_key(&eui) {
            if !self.settings.allow_unknown {
                return Err(DropReason::UnknownGateway);
            }
            if self.unknown_count >= self.settings.max_unknown {
                return Err(DropReason::RegistryFull);
            }
            self.unknown_count += 1;
            let burst = self.settings.burst;
            self.entries
                .insert(eui, Entry::new(false, GatewayPolicy::default(), burst));
        }
        self.entries.get_mut(&eui).ok_or(DropReason::UnknownGateway)
    }

    /// Judges a PULL_DATA from `from`. The address check comes before the rate
    /// limit, so a flood of forged PULL_DATA does not use up the real gateway's rate.
    pub(crate) fn on_pull_data(
        &mut self,
        eui: Eui64,
        from: SocketAddr,
        version: u8,
        now: Instant,
        wall: SystemTime,
    ) -> PullOutcome {
        let settings = self.settings.clone();
        let entry = match self.admit(eui) {
            Ok(e) => e,
            Err(reason) => return PullOutcome::Dropped(reason),
        };
        let change = match entry.downlink_addr {
            None => Some(AddressChange::First(from)),
            Some(current) if current == from => None,
            Some(current) => {
                let silent_for = entry
                    .last_pull
                    .map_or(Duration::MAX, |t| now.saturating_duration_since(t));
                if silent_for < settings.takeover_silence {
                    return PullOutcome::Dropped(DropReason::AddressConflict);
                }
                Some(AddressChange::Moved {
                    from: current,
                    to: from,
                })
            }
        };
        if !entry.bucket.take(now, settings.rate_per_s, settings.burst) {
            return PullOutcome::Dropped(DropReason::RateLimited);
        }
        entry.downlink_addr = Some(from);
        entry.last_pull = Some(now);
        entry.last_pull_wall = Some(wall);
        entry.last_seen_wall = Some(wall);
        if version == PROTOCOL_VERSION_1 {
            entry.tx_ack = TxAckSupport::Absent;
        } else if entry.protocol_version == Some(PROTOCOL_VERSION_1) {
            entry.tx_ack = TxAckSupport::Unknown;
            entry.missed_tx_acks = 0;
        }
        entry.protocol_version = Some(version);
        PullOutcome::Accepted(change)
    }

    /// Judges a PUSH_DATA from `from`.
    ///
    /// Once the gateway's PULL_DATA address is known (the pin), a PUSH_DATA must come
    /// from the same IP address, unless `pin_address` is off. Only the IP is
    /// compared: lora_pkt_fwd sends PUSH_DATA and PULL_DATA from two sockets, so the
    /// ports differ, and behind a NAT each gets its own mapping. The check comes
    /// before the rate limit, so forged datagrams do not spend the real gateway's
    /// budget; with pinning off they spend a separate bucket for the same reason.
    /// Before the first PULL_DATA there is nothing to compare with: the datagram is
    /// accepted, but its `stat` is not (see [`PushAccepted`]).
    pub(crate) fn on_push_data(
        &mut self,
        eui: Eui64,
        from: SocketAddr,
        now: Instant,
        wall: SystemTime,
    ) -> Result<PushAccepted, DropReason> {
        let (rate, burst, pin) = (
            self.settings.rate_per_s,
            self.settings.burst,
            self.settings.pin_address,
        );
        let entry = self.admit(eui)?;
        let pinned = entry.downlink_addr.map(|a| a.ip());
        let from_pinned = pinned.is_some_and(|ip| same_ip(ip, from.ip()));
        let foreign = pinned.is_some() && !from_pinned;
        if foreign && pin {
            return Err(DropReason::AddressMismatch);
        }
        let bucket = if foreign {
            &mut entry.foreign_bucket
        } else {
            &mut entry.bucket
        };
        if !bucket.take(now, rate, burst) {
            return Err(DropReason::RateLimited);
        }
        entry.last_seen_wall = Some(wall);
        Ok(PushAccepted {
            stats_allowed: from_pinned || !pin,
        })
    }

    /// Keeps the latest status report.
    pub(crate) fn on_stats(&mut self, stats: &GatewayStats) {
        if let Some(e) = self.entries.get_mut(&stats.gateway_id) {
            e.last_stats = Some(stats.clone());
        }
    }

    /// Judges a TX_ACK: it must come from the gateway's downlink address.
    pub(crate) fn on_tx_ack(
        &mut self,
        eui: Eui64,
        from: SocketAddr,
        wall: SystemTime,
    ) -> Result<(), DropReason> {
        let entry = self
            .entries
            .get_mut(&eui)
            .ok_or(DropReason::UnknownGateway)?;
        if entry.downlink_addr != Some(from) {
            return Err(DropReason::AddressConflict);
        }
        entry.last_seen_wall = Some(wall);
        entry.tx_ack = TxAckSupport::Confirmed;
        entry.missed_tx_acks = 0;
        Ok(())
    }

    /// A downlink to `eui` got no TX_ACK in time.
    pub(crate) fn on_tx_ack_timeout(&mut self, eui: Eui64) {
        let limit = self.settings.tx_ack_missing_limit;
        if let Some(e) = self.entries.get_mut(&eui) {
            if e.tx_ack == TxAckSupport::Unknown {
                e.missed_tx_acks = e.missed_tx_acks.saturating_add(1);
                if e.missed_tx_acks >= limit {
                    e.tx_ack = TxAckSupport::Absent;
                }
            }
        }
    }

    /// Where a downlink for `eui` goes.
    pub(crate) fn downlink_target(&self, eui: Eui64) -> Result<DownlinkTarget, NoTarget> {
        let e = self.entries.get(&eui).ok_or(NoTarget::UnknownGateway)?;
        let addr = e.downlink_addr.ok_or(NoTarget::NoDownlinkPath)?;
        Ok(DownlinkTarget {
            addr,
            version: e.protocol_version.unwrap_or(crate::wire::PROTOCOL_VERSION),
            antenna_gain_dbi: e
                .policy
                .antenna_gain_dbi
                .unwrap_or(self.settings.default_gain_dbi),
            tx_ack: e.tx_ack,
        })
    }

    /// A copy of one gateway's state.
    pub(crate) fn state(&self, eui: Eui64) -> Option<GatewayState> {
        self.entries.get(&eui).map(|e| snapshot(eui, e))
    }

    /// Copies of every gateway's state, ordered by EUI.
    pub(crate) fn states(&self) -> Vec<GatewayState> {
        let mut v: Vec<_> = self.entries.iter().map(|(k, e)| snapshot(*k, e)).collect();
        v.sort_by_key(|s| s.gateway_id);
        v
    }
}

fn snapshot(eui: Eui64, e: &Entry) -> GatewayState {
    GatewayState {
        gateway_id: eui,
        known: e.known,
        policy: e.policy,
        downlink_addr: e.downlink_addr,
        protocol_version: e.protocol_version,
        last_seen_at: e.last_seen_wall,
        last_pull_at: e.last_pull_wall,
        last_stats: e.last_stats.clone(),
        tx_ack: e.tx_ack,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Eui64 = Eui64([0, 0, 0, 0, 0, 0, 0, 0xa]);
    const B: Eui64 = Eui64([0, 0, 0, 0, 0, 0, 0, 0xb]);

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([192, 0, 2, 1], port))
    }

    fn settings() -> RegistrySettings {
        RegistrySettings::from(&GatewayConfig {
            address_takeover_silence_s: 30,
            rate_limit_datagrams_per_s: 10,
            rate_limit_burst_datagrams: 3,
            ..GatewayConfig::default()
        })
    }

    fn wall() -> SystemTime {
        SystemTime::UNIX_EPOCH
    }

    /// A PUSH_DATA from `addr(1)`.
    fn push(r: &mut Registry, eui: Eui64, t: Instant) -> Result<(), DropReason> {
        r.on_push_data(eui, addr(1), t, wall()).map(|_| ())
    }

    #[test]
    fn unknown_gateways_are_dropped_unless_allowed_and_bounded() {
        let t = Instant::now();
        let mut r = Registry::new(settings());
        assert_eq!(
            r.on_pull_data(A, addr(1), 2, t, wall()),
            PullOutcome::Dropped(DropReason::UnknownGateway)
        );
        assert_eq!(push(&mut r, A, t), Err(DropReason::UnknownGateway));
        assert!(
            r.state(A).is_none(),
            "a dropped unknown EUI leaves no state behind"
        );

        let mut r = Registry::new(RegistrySettings {
            allow_unknown: true,
            max_unknown: 1,
            ..settings()
        });
        assert_eq!(push(&mut r, A, t), Ok(()));
        assert_eq!(push(&mut r, B, t), Err(DropReason::RegistryFull));
        assert!(!r.state(A).unwrap().known);
        // Registering A frees its unknown slot for B.
        r.upsert(A, GatewayPolicy::default());
        assert_eq!(push(&mut r, B, t), Ok(()));
    }

    #[test]
    fn address_takeover_only_after_silence() {
        let t0 = Instant::now();
        let mut r = Registry::new(settings());
        r.upsert(A, GatewayPolicy::default());
        assert_eq!(
            r.on_pull_data(A, addr(1), 2, t0, wall()),
            PullOutcome::Accepted(Some(AddressChange::First(addr(1))))
        );
        let t1 = t0 + Duration::from_secs(10);
        assert_eq!(
            r.on_pull_data(A, addr(1), 2, t1, wall()),
            PullOutcome::Accepted(None)
        );
        // A forged PULL_DATA from elsewhere while the real one is alive.
        let t2 = t1 + Duration::from_secs(29);
        assert_eq!(
            r.on_pull_data(A, addr(2), 2, t2, wall()),
            PullOutcome::Dropped(DropReason::AddressConflict)
        );
        assert_eq!(r.downlink_target(A).unwrap().addr, addr(1));
        // Silence measured from the last PULL_DATA of the current address (t1).
        let t3 = t1 + Duration::from_secs(30);
        assert_eq!(
            r.on_pull_data(A, addr(2), 2, t3, wall()),
            PullOutcome::Accepted(Some(AddressChange::Moved {
                from: addr(1),
                to: addr(2)
            }))
        );
        assert_eq!(r.downlink_target(A).unwrap().addr, addr(2));
        // And now the old address is the stranger.
        assert_eq!(
            r.on_pull_data(A, addr(1), 2, t3, wall()),
            PullOutcome::Dropped(DropReason::AddressConflict)
        );
    }

    #[test]
    fn rate_limit_is_a_token_bucket_per_eui() {
        let t0 = Instant::now();
        let mut r = Registry::new(settings());
        r.upsert(A, GatewayPolicy::default());
        r.upsert(B, GatewayPolicy::default());
        for _ in 0..3 {
            assert_eq!(push(&mut r, A, t0), Ok(()));
        }
        assert_eq!(push(&mut r, A, t0), Err(DropReason::RateLimited));
        assert_eq!(
            r.on_pull_data(A, addr(1), 2, t0, wall()),
            PullOutcome::Dropped(DropReason::RateLimited)
        );
        assert_eq!(push(&mut r, B, t0), Ok(()), "B has its own bucket");
        // 10/s: one token back after 100 ms, never more than the burst.
        assert_eq!(push(&mut r, A, t0 + Duration::from_millis(100)), Ok(()));
        assert_eq!(
            push(&mut r, A, t0 + Duration::from_millis(100)),
            Err(DropReason::RateLimited)
        );
        let later = t0 + Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(push(&mut r, A, later), Ok(()));
        }
        assert_eq!(push(&mut r, A, later), Err(DropReason::RateLimited));
    }

    #[test]
    fn forged_pull_data_does_not_spend_the_real_gateways_rate() {
        let t0 = Instant::now();
        let mut r = Registry::new(settings());
        r.upsert(A, GatewayPolicy::default());
        assert!(matches!(
            r.on_pull_data(A, addr(1), 2, t0, wall()),
            PullOutcome::Accepted(_)
        ));
        for _ in 0..100 {
            assert_eq!(
                r.on_pull_data(A, addr(2), 2, t0, wall()),
                PullOutcome::Dropped(DropReason::AddressConflict)
            );
        }
        assert_eq!(
            r.on_pull_data(A, addr(1), 2, t0, wall()),
            PullOutcome::Accepted(None)
        );
    }

    #[test]
    fn push_data_is_pinned_to_the_pull_data_ip_not_its_port() {
        let t0 = Instant::now();
        let mut r = Registry::new(settings());
        r.upsert(A, GatewayPolicy::default());
        // No PULL_DATA yet: accepted from anywhere, but its stat is not trusted.
        assert_eq!(
            r.on_push_data(A, addr(7), t0, wall()),
            Ok(PushAccepted {
                stats_allowed: false
            })
        );
        let _ = r.on_pull_data(A, addr(1), 2, t0, wall());
        // Same IP, another port (the forwarder's other socket): accepted, stat too.
        assert_eq!(
            r.on_push_data(A, addr(2), t0, wall()),
            Ok(PushAccepted {
                stats_allowed: true
            })
        );
        // Another IP: dropped before the rate limit, however many.
        let spoofer = SocketAddr::from(([198, 51, 100, 9], 1));
        for _ in 0..100 {
            assert_eq!(
                r.on_push_data(A, spoofer, t0, wall()),
                Err(DropReason::AddressMismatch)
            );
        }
        // The burst of 3 went to the first PUSH_DATA, the PULL_DATA and the real
        // PUSH_DATA: none to the spoofer. A second later (10/s) there are more.
        let t1 = t0 + Duration::from_secs(1);
        assert!(r.on_push_data(A, addr(2), t1, wall()).is_ok());
        // An IPv4-mapped IPv6 form of the pinned address is the same host.
        let mapped: SocketAddr = "[::ffff:192.0.2.1]:9".parse().unwrap();
        assert!(r.on_push_data(A, mapped, t1, wall()).is_ok());
    }

    #[test]
    fn without_pinning_foreign_push_data_has_its_own_budget_and_no_stat() {
        let t0 = Instant::now();
        let mut r = Registry::new(RegistrySettings {
            pin_address: false,
            ..settings()
        });
        r.upsert(A, GatewayPolicy::default());
        let _ = r.on_pull_data(A, addr(1), 2, t0, wall());
        let elsewhere = SocketAddr::from(([198, 51, 100, 9], 1));
        // Accepted, stat included (addresses may legitimately differ)...
        assert_eq!(
            r.on_push_data(A, elsewhere, t0, wall()),
            Ok(PushAccepted {
                stats_allowed: true
            })
        );
        // ...until its own bucket (burst 3) is spent,
        assert!(r.on_push_data(A, elsewhere, t0, wall()).is_ok());
        assert!(r.on_push_data(A, elsewhere, t0, wall()).is_ok());
        assert_eq!(
            r.on_push_data(A, elsewhere, t0, wall()),
            Err(DropReason::RateLimited)
        );
        // which is not the pinned address's: the burst of 3 is untouched there
        // (one was spent by the PULL_DATA).
        assert!(r.on_push_data(A, addr(2), t0, wall()).is_ok());
        assert!(r.on_push_data(A, addr(2), t0, wall()).is_ok());
        assert_eq!(
            r.on_push_data(A, addr(2), t0, wall()),
            Err(DropReason::RateLimited)
        );
    }

    #[test]
    fn a_new_pull_data_address_re_pins_push_data_after_the_old_falls_silent() {
        let t0 = Instant::now();
        let mut r = Registry::new(settings());
        r.upsert(A, GatewayPolicy::default());
        let _ = r.on_pull_data(A, addr(1), 2, t0, wall());
        let moved = SocketAddr::from(([198, 51, 100, 1], 40_000));
        assert_eq!(
            r.on_push_data(A, moved, t0, wall()),
            Err(DropReason::AddressMismatch)
        );
        // A PULL_DATA from the new address while the old one is alive does not move it.
        let t1 = t0 + Duration::from_secs(5);
        assert_eq!(
            r.on_pull_data(A, moved, 2, t1, wall()),
            PullOutcome::Dropped(DropReason::AddressConflict)
        );
        // After the silence, it does, and PUSH_DATA follows the pin.
        let t2 = t0 + Duration::from_secs(31);
        assert!(matches!(
            r.on_pull_data(A, moved, 2, t2, wall()),
            PullOutcome::Accepted(Some(AddressChange::Moved { .. }))
        ));
        assert!(r.on_push_data(A, moved, t2, wall()).is_ok());
        assert_eq!(
            r.on_push_data(A, addr(1), t2, wall()),
            Err(DropReason::AddressMismatch)
        );
    }

    #[test]
    fn tx_ack_support_rules() {
        let t0 = Instant::now();
        let mut r = Registry::new(RegistrySettings {
            tx_ack_missing_limit: 2,
            ..settings()
        });
        r.upsert(
            A,
            GatewayPolicy {
                antenna_gain_dbi: Some(3.0),
            },
        );
        assert_eq!(r.downlink_target(A), Err(NoTarget::NoDownlinkPath));
        assert_eq!(r.downlink_target(B), Err(NoTarget::UnknownGateway));
        let _ = r.on_pull_data(A, addr(1), 2, t0, wall());
        let target = r.downlink_target(A).unwrap();
        assert_eq!(
            (target.tx_ack, target.antenna_gain_dbi, target.version),
            (TxAckSupport::Unknown, 3.0, 2)
        );
        r.on_tx_ack_timeout(A);
        assert_eq!(r.downlink_target(A).unwrap().tx_ack, TxAckSupport::Unknown);
        r.on_tx_ack_timeout(A);
        assert_eq!(r.downlink_target(A).unwrap().tx_ack, TxAckSupport::Absent);
        // A TX_ACK from the wrong address is refused and changes nothing.
        assert_eq!(
            r.on_tx_ack(A, addr(9), wall()),
            Err(DropReason::AddressConflict)
        );
        assert_eq!(r.on_tx_ack(A, addr(1), wall()), Ok(()));
        assert_eq!(
            r.downlink_target(A).unwrap().tx_ack,
            TxAckSupport::Confirmed
        );
        // Once confirmed, timeouts are just timeouts.
        for _ in 0..5 {
            r.on_tx_ack_timeout(A);
        }
        assert_eq!(
            r.downlink_target(A).unwrap().tx_ack,
            TxAckSupport::Confirmed
        );
        // Protocol v1 has no TX_ACK at all; upgrading to v2 starts over.
        r.upsert(B, GatewayPolicy::default());
        let _ = r.on_pull_data(B, addr(2), 1, t0, wall());
        assert_eq!(r.downlink_target(B).unwrap().tx_ack, TxAckSupport::Absent);
        assert_eq!(r.downlink_target(B).unwrap().version, 1);
        let _ = r.on_pull_data(B, addr(2), 2, t0 + Duration::from_secs(1), wall());
        assert_eq!(r.downlink_target(B).unwrap().tx_ack, TxAckSupport::Unknown);
    }

    #[test]
    fn set_known_replaces_the_known_set_and_keeps_live_state() {
        let t0 = Instant::now();
        let mut r = Registry::new(RegistrySettings {
            allow_unknown: true,
            ..settings()
        });
        r.upsert(A, GatewayPolicy::default());
        let _ = r.on_pull_data(A, addr(1), 2, t0, wall());
        let c = Eui64([0xc; 8]);
        assert_eq!(push(&mut r, c, t0), Ok(())); // admitted unknown
        r.set_known([
            (
                A,
                GatewayPolicy {
                    antenna_gain_dbi: Some(6.0),
                },
            ),
            (B, GatewayPolicy::default()),
        ]);
        let a = r.state(A).unwrap();
        assert_eq!(a.downlink_addr, Some(addr(1)));
        assert_eq!(a.policy.antenna_gain_dbi, Some(6.0));
        assert!(r.state(B).unwrap().known);
        assert!(r.state(c).is_some(), "admitted unknown gateways stay");
        r.set_known([(B, GatewayPolicy::default())]);
        assert!(r.state(A).is_none());
        assert!(r.remove(B));
        assert!(!r.remove(B));
        assert_eq!(r.states().len(), 1);
    }
}
