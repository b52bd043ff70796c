//! [`GatewayHandle`]: what the rest of the server uses to send downlinks, keep the
//! registry in sync with storage, and read state and counters.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use lorikeet_lorawan::Eui64;
use tokio::sync::oneshot;
use tracing::debug;

use crate::counters::{Count, CountersSnapshot};
use crate::listener::{lock, Shared};
use crate::registry::{GatewayPolicy, GatewayState, NoTarget, TxAckSupport};
use crate::types::{DownlinkFrame, TxAckOutcome};
use crate::wire::{self, TxPacket, TxPacketError};

/// Why a downlink was not handed to a gateway (or its fate is unknown).
#[derive(Debug, thiserror::Error)]
pub enum DownlinkError {
    /// The gateway is not in the registry.
    #[error("gateway {gateway_id} is not registered")]
    UnknownGateway {
        /// The gateway asked for.
        gateway_id: Eui64,
    },
    /// The gateway never sent a PULL_DATA, so there is no address to send to.
    #[error("gateway {gateway_id} has not sent PULL_DATA yet")]
    NoDownlinkPath {
        /// The gateway asked for.
        gateway_id: Eui64,
    },
    /// The PULL_RESP left, but no TX_ACK came within `tx_ack_timeout_ms`.
    #[error("no TX_ACK from gateway {gateway_id} within {waited_ms} ms")]
    Timeout {
        /// The gateway.
        gateway_id: Eui64,
        /// How long we waited.
        waited_ms: u64,
    },
    /// The frame cannot be expressed as a txpk (payload too long, unnamed bandwidth).
    #[error("downlink cannot be encoded: {0}")]
    InvalidFrame(#[source] TxPacketError),
    /// The socket refused the datagram.
    #[error("sending the PULL_RESP failed: {0}")]
    Io(#[source] io::Error),
    /// The listener has stopped.
    #[error("the gateway listener has stopped")]
    Closed,
}

/// A cloneable handle to a running listener.
#[derive(Debug, Clone)]
pub struct GatewayHandle {
    shared: Arc<Shared>,
}

/// `powe` for a radiated power: EIRP minus antenna gain, rounded down so the
/// radiated power never exceeds what was asked for.
pub fn conducted_power_dbm(tx_power_eirp_dbm: i32, antenna_gain_dbi: f32) -> i32 {
    let gain = if antenna_gain_dbi.is_finite() {
        f64::from(antenna_gain_dbi)
    } else {
        0.0
    };
    let powe = (f64::from(tx_power_eirp_dbm) - gain).floor();
    // The clamp keeps the cast exact; forwarders read powe as a signed byte.
    powe.clamp(-128.0, 127.0) as i32
}

/// Removes a waiter when its downlink finishes, fails, times out or is cancelled —
/// but only if the entry is still this one (a later downlink may reuse the token).
struct PendingGuard<'a> {
    shared: &'a Shared,
    key: (Eui64, u16),
    id: u64,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        let mut pending = lock(&self.shared.pending);
        if pending.get(&self.key).is_some_and(|(id, _)| *id == self.id) {
            pending.remove(&self.key);
        }
    }
}

impl GatewayHandle {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        GatewayHandle { shared }
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// Sends `frame` as a PULL_RESP to the gateway's last PULL_DATA address and
    /// waits for its TX_ACK.
    ///
    /// The waiter is registered before the datagram leaves, so a TX_ACK that comes
    /// back at once is never missed; it is removed on every exit (answer, timeout,
    /// error, or the caller dropping this future). Gateways known not to send TX_ACK
    /// ([`TxAckSupport::Absent`]) get the datagram and the caller gets
    /// [`TxAckOutcome::Unacknowledged`] without waiting.
    pub async fn send_downlink(&self, frame: DownlinkFrame) -> Result<TxAckOutcome, DownlinkError> {
        let shared = &*self.shared;
        if shared.closed.load(Ordering::SeqCst) {
            return Err(DownlinkError::Closed);
        }
        let gateway_id = frame.gateway_id;
        let target = lock(&shared.registry)
            .downlink_target(gateway_id)
            .map_err(|e| match e {
                NoTarget::UnknownGateway => DownlinkError::UnknownGateway { gateway_id },
                NoTarget::NoDownlinkPath => DownlinkError::NoDownlinkPath { gateway_id },
            })?;
        let packet = TxPacket {
            timing: frame.timing,
            frequency_hz: frame.frequency_hz,
            rf_chain: frame.rf_chain,
            power_dbm: conducted_power_dbm(frame.tx_power_eirp_dbm, target.antenna_gain_dbi),
            modulation: frame.modulation,
            ipol: frame.ipol,
            phy_payload: frame.phy_payload,
        };

        if target.tx_ack == TxAckSupport::Absent {
            let datagram = wire::encode_pull_resp(target.version, rand::random(), &packet)
                .map_err(DownlinkError::InvalidFrame)?;
            shared
                .socket
                .send_to(&datagram, target.addr)
                .await
                .map_err(DownlinkError::Io)?;
            shared.counters.inc(Count::DownlinksSent);
            debug!(%gateway_id, addr = %target.addr, "downlink sent to a forwarder without TX_ACK");
            return Ok(TxAckOutcome::Unacknowledged);
        }

        let (tx, rx) = oneshot::channel();
        let id = shared.next_waiter_id.fetch_add(1, Ordering::Relaxed);
        let token = {
            let mut pending = lock(&shared.pending);
            let token = free_token(|t| pending.contains_key(&(gateway_id, t)));
            pending.insert((gateway_id, token), (id, tx));
            token
        };
        let _guard = PendingGuard {
            shared,
            key: (gateway_id, token),
            id,
        };
        let datagram = wire::encode_pull_resp(target.version, token, &packet)
            .map_err(DownlinkError::InvalidFrame)?;
        shared
            .socket
            .send_to(&datagram, target.addr)
            .await
            .map_err(DownlinkError::Io)?;
        shared.counters.inc(Count::DownlinksSent);
        debug!(%gateway_id, token, addr = %target.addr, "PULL_RESP sent");

        let timeout = shared.config.tx_ack_timeout();
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(_)) => Err(DownlinkError::Closed),
            Err(_) => {
                shared.counters.inc(Count::DownlinkTimeouts);
                lock(&shared.registry).on_tx_ack_timeout(gateway_id);
                Err(DownlinkError::Timeout {
                    gateway_id,
                    waited_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
                })
            }
        }
    }

    /// Registers a gateway or updates its policy (keeps its address and stats).
    pub fn upsert_gateway(&self, gateway_id: Eui64, policy: GatewayPolicy) {
        lock(&self.shared.registry).upsert(gateway_id, policy);
    }

    /// Forgets a gateway; its datagrams are then treated as unknown. Returns whether it was there.
    pub fn remove_gateway(&self, gateway_id: Eui64) -> bool {
        lock(&self.shared.registry).remove(gateway_id)
    }

    /// Makes the set of known gateways exactly `gateways` (e.g. loaded from storage
    /// at start): adds new ones, updates policies, removes known ones not listed.
    /// Gateways admitted through `allow_unknown` are kept.
    pub fn set_known_gateways(&self, gateways: impl IntoIterator<Item = (Eui64, GatewayPolicy)>) {
        lock(&self.shared.registry).set_known(gateways);
    }

    /// What the registry knows about one gateway.
    pub fn gateway(&self, gateway_id: Eui64) -> Option<GatewayState> {
        lock(&self.shared.registry).state(gateway_id)
    }

    /// Every gateway in the registry, ordered by EUI.
    pub fn gateways(&self) -> Vec<GatewayState> {
        lock(&self.shared.registry).states()
    }

    /// A snapshot of the counters.
    pub fn counters(&self) -> CountersSnapshot {
        self.shared.counters.snapshot()
    }

    /// The configured TX_ACK timeout.
    pub fn tx_ack_timeout(&self) -> Duration {
        self.shared.config.tx_ack_timeout()
    }
}

/// A random token not in use for this gateway (random, as protocol v2 asks).
fn free_token(in_use: impl Fn(u16) -> bool) -> u16 {
    for _ in 0..32 {
        let t: u16 = rand::random();
        if !in_use(t) {
            return t;
        }
    }
    // Tens of thousands of downlinks in flight to one gateway: take the first free one.
    (0..=u16::MAX).find(|t| !in_use(*t)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn powe_is_eirp_minus_gain_rounded_down() {
        assert_eq!(conducted_power_dbm(16, 0.0), 16);
        assert_eq!(conducted_power_dbm(16, 2.15), 13);
        assert_eq!(conducted_power_dbm(27, 3.0), 24);
        assert_eq!(conducted_power_dbm(14, -1.5), 15);
        assert_eq!(conducted_power_dbm(14, f32::NAN), 14);
        assert_eq!(conducted_power_dbm(i32::MAX, 0.0), 127);
    }

    #[test]
    fn free_token_avoids_used_ones() {
        assert_eq!(free_token(|t| t != 7), 7);
        let t = free_token(|t| t % 2 == 0);
        assert_eq!(t % 2, 1);
    }
}
