//! The tokio shell: one socket, one receive loop, a bounded event channel.
//!
//! The loop never awaits anything but the socket: acks go out with `try_send_to`,
//! events with `try_send`, registry and waiter locks are held for a few
//! instructions. A slow consumer therefore costs dropped (and counted) events,
//! never a stalled socket or a missed ack.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use lorikeet_lorawan::Eui64;
use tokio::net::UdpSocket;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use crate::config::GatewayConfig;
use crate::counters::{Count, Counters, DropReason};
use crate::handle::GatewayHandle;
use crate::limits::AddressLimiter;
use crate::registry::{AddressChange, PullOutcome, Registry, RegistrySettings};
use crate::types::{GatewayStats, TxAckError, TxAckOutcome, UplinkFrame};
use crate::warn::WarnLimiter;
use crate::wire::{self, Header, Upstream};

/// Large enough for any UDP datagram, so nothing is ever truncated by the read.
const RECV_BUFFER_BYTES: usize = 65_536;

/// What the listener tells the network server.
#[derive(Debug, Clone, PartialEq)]
pub enum GatewayEvent {
    /// A packet with a good CRC.
    Uplink(UplinkFrame),
    /// A status report.
    Stats(GatewayStats),
    /// A gateway's first accepted PULL_DATA: downlinks to it are now possible.
    Connected {
        /// The gateway.
        gateway_id: Eui64,
        /// Its downlink address.
        addr: SocketAddr,
    },
    /// A gateway's downlink address moved after the old one fell silent.
    AddressChanged {
        /// The gateway.
        gateway_id: Eui64,
        /// The old address.
        from: SocketAddr,
        /// The new address.
        to: SocketAddr,
    },
}

/// A downlink waiting for its TX_ACK: an id (so a finished waiter never removes a
/// newer one that reused its token) and the channel to answer on.
pub(crate) type Waiter = (u64, oneshot::Sender<TxAckOutcome>);

/// State shared by the receive loop and every [`GatewayHandle`].
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: GatewayConfig,
    pub(crate) socket: UdpSocket,
    pub(crate) local_addr: SocketAddr,
    pub(crate) registry: Mutex<Registry>,
    pub(crate) pending: Mutex<HashMap<(Eui64, u16), Waiter>>,
    pub(crate) next_waiter_id: AtomicU64,
    pub(crate) counters: Counters,
    pub(crate) closed: AtomicBool,
}

/// Locks, carrying on after a panic elsewhere: the data are counters and maps that
/// stay consistent between statements.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A bound socket, ready to [`run`](GatewayListener::run).
#[derive(Debug)]
pub struct GatewayListener {
    shared: Arc<Shared>,
    events: mpsc::Sender<GatewayEvent>,
}

/// Validates `config`, binds the UDP socket and returns the listener with the
/// receiving end of its event channel (capacity `uplink_queue_capacity`).
///
/// Nothing is read until [`GatewayListener::run`] is polled. Bind to port 0 to let
/// the OS choose (tests); [`GatewayListener::local_addr`] tells which.
pub async fn bind(
    config: GatewayConfig,
) -> io::Result<(GatewayListener, mpsc::Receiver<GatewayEvent>)> {
    config
        .validate()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let socket = make_socket(&config)?;
    let local_addr = socket.local_addr()?;
    let (tx, rx) = mpsc::channel(config.uplink_queue_capacity);
    let shared = Arc::new(Shared {
        registry: Mutex::new(Registry::new(RegistrySettings::from(&config))),
        config,
        socket,
        local_addr,
        pending: Mutex::new(HashMap::new()),
        next_waiter_id: AtomicU64::new(0),
        counters: Counters::default(),
        closed: AtomicBool::new(false),
    });
    Ok((GatewayListener { shared, events: tx }, rx))
}

fn make_socket(config: &GatewayConfig) -> io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let addr = config.udp_bind;
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // The OS may cap these (Linux: net.core.rmem_max/wmem_max); a refusal is not fatal.
    if config.socket_recv_buffer_bytes > 0 {
        if let Err(e) = socket.set_recv_buffer_size(config.socket_recv_buffer_bytes) {
            warn!(error = %e, "could not set the UDP receive buffer size");
        }
    }
    if config.socket_send_buffer_bytes > 0 {
        if let Err(e) = socket.set_send_buffer_size(config.socket_send_buffer_bytes) {
            warn!(error = %e, "could not set the UDP send buffer size");
        }
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    info!(
        %addr,
        recv_buffer_bytes = socket.recv_buffer_size().unwrap_or(0),
        send_buffer_bytes = socket.send_buffer_size().unwrap_or(0),
        "gateway UDP socket bound"
    );
    UdpSocket::from_std(socket.into())
}

impl GatewayListener {
    /// The address the socket is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// A handle for downlinks, the registry and counters; clone it freely.
    pub fn handle(&self) -> GatewayHandle {
        GatewayHandle::new(Arc::clone(&self.shared))
    }

    /// Reads datagrams until `shutdown` resolves. Then waiting downlinks end with
    /// `DownlinkError::Closed`, new ones are refused, and the event channel closes
    /// (the receiver gets `None` once drained).
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut buf = vec![0u8; RECV_BUFFER_BYTES];
        let mut warn_limiter = WarnLimiter::default();
        let config = &self.shared.config;
        let mut address_limiter = AddressLimiter::new(
            config.rate_limit_per_address_datagrams_per_s,
            config.rate_limit_per_address_burst_datagrams,
            config.max_tracked_addresses,
        );
        let mut last_recv_warn: Option<Instant> = None;
        info!(addr = %self.shared.local_addr, "gateway listener running");
        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                r = self.shared.socket.recv_from(&mut buf) => match r {
                    Ok((n, peer)) => {
                        let datagram = buf.get(..n).unwrap_or_default();
                        self.on_datagram(datagram, peer, &mut address_limiter, &mut warn_limiter);
                    }
                    Err(e) => {
                        // E.g. the connection-reset/refused error some systems
                        // report after an ICMP port unreachable for an earlier
                        // send: count it and read on.
                        self.shared.counters.inc(Count::RecvErrors);
                        let now = Instant::now();
                        if last_recv_warn.is_none_or(|t| now.saturating_duration_since(t) >= crate::warn::WARN_INTERVAL) {
                            last_recv_warn = Some(now);
                            warn!(error = %e, "UDP receive error");
                        }
                        if e.kind() != io::ErrorKind::ConnectionRefused
                            && e.kind() != io::ErrorKind::ConnectionReset
                        {
                            // An error that repeats must not become a busy loop.
                            tokio::time::sleep(Duration::from_millis(1)).await;
                        }
                    }
                }
            }
        }
        self.shared.closed.store(true, Ordering::SeqCst);
        lock(&self.shared.pending).clear();
        info!(addr = %self.shared.local_addr, "gateway listener stopped");
    }

    fn on_datagram(
        &self,
        datagram: &[u8],
        peer: SocketAddr,
        address_limiter: &mut AddressLimiter,
        warn_limiter: &mut WarnLimiter,
    ) {
        let now = Instant::now();
        let wall = SystemTime::now();
        let counters = &self.shared.counters;
        counters.inc(Count::DatagramsReceived);
        let mut reject = |reason: DropReason,
                          gateway_id: Option<Eui64>,
                          detail: &dyn std::fmt::Display| {
            counters.count_drop(reason);
            match warn_limiter.check(reason, now) {
                Some(suppressed) => warn!(
                    reason = reason.as_str(),
                    %peer,
                    gateway_id = gateway_id.map(|g| g.to_string()),
                    suppressed,
                    detail = %detail,
                    "dropped gateway data"
                ),
                None => {
                    debug!(reason = reason.as_str(), %peer, detail = %detail, "dropped gateway data")
                }
            }
        };

        // Before anything else, so a flood from one address costs a hash lookup per
        // datagram and never reaches the registry or another gateway's budget.
        if !address_limiter.check(peer.ip(), now) {
            reject(
                DropReason::AddressRateLimited,
                None,
                &"source address over its datagram rate",
            );
            return;
        }
        let upstream = match wire::parse_upstream(datagram) {
            Ok(u) => u,
            Err(e) => {
                reject(DropReason::from_datagram_error(&e, false), None, &e);
                return;
            }
        };
        match upstream {
            Upstream::PullData { header, gateway_id } => {
                let outcome = lock(&self.shared.registry).on_pull_data(
                    gateway_id,
                    peer,
                    header.version,
                    now,
                    wall,
                );
                match outcome {
                    PullOutcome::Dropped(reason) => {
                        reject(reason, Some(gateway_id), &"PULL_DATA refused")
                    }
                    PullOutcome::Accepted(change) => {
                        counters.inc(Count::DatagramsAccepted);
                        self.ack(header, peer);
                        match change {
                            None => {}
                            Some(AddressChange::First(addr)) => {
                                info!(%gateway_id, %addr, "gateway connected");
                                self.emit(
                                    GatewayEvent::Connected { gateway_id, addr },
                                    &mut reject,
                                );
                            }
                            Some(AddressChange::Moved { from, to }) => {
                                counters.inc(Count::AddressTakeovers);
                                warn!(%gateway_id, %from, %to, "gateway downlink address moved");
                                self.emit(
                                    GatewayEvent::AddressChanged {
                                        gateway_id,
                                        from,
                                        to,
                                    },
                                    &mut reject,
                                );
                            }
                        }
                    }
                }
            }
            Upstream::PushData {
                header,
                gateway_id,
                json,
            } => {
                let verdict = lock(&self.shared.registry).on_push_data(gateway_id, peer, now, wall);
                let accepted = match verdict {
                    Ok(a) => a,
                    Err(reason) => {
                        reject(reason, Some(gateway_id), &"PUSH_DATA refused");
                        return;
                    }
                };
                // Acknowledge at once: the ack says "received", not "understood".
                self.ack(header, peer);
                let push = match wire::decode_push_data(gateway_id, json, wall) {
                    Ok(p) => p,
                    Err(e) => {
                        reject(
                            DropReason::from_datagram_error(&e, false),
                            Some(gateway_id),
                            &e,
                        );
                        return;
                    }
                };
                counters.inc(Count::DatagramsAccepted);
                for uplink in push.uplinks {
                    match uplink {
                        Ok(frame) => {
                            if self.emit(GatewayEvent::Uplink(frame), &mut reject) {
                                counters.inc(Count::UplinksForwarded);
                            }
                        }
                        Err(e) => reject(DropReason::from_rxpk_error(&e), Some(gateway_id), &e),
                    }
                }
                match push.stats {
                    None => {}
                    Some(Ok(_)) if !accepted.stats_allowed => reject(
                        DropReason::StatNotPinned,
                        Some(gateway_id),
                        &"stat before the gateway's first PULL_DATA",
                    ),
                    Some(Ok(stats)) => {
                        lock(&self.shared.registry).on_stats(&stats);
                        if self.emit(GatewayEvent::Stats(stats), &mut reject) {
                            counters.inc(Count::StatsForwarded);
                        }
                    }
                    Some(Err(e)) => reject(DropReason::InvalidStat, Some(gateway_id), &e),
                }
            }
            Upstream::TxAck {
                header,
                gateway_id,
                json,
            } => {
                if let Err(reason) = lock(&self.shared.registry).on_tx_ack(gateway_id, peer, wall) {
                    reject(reason, Some(gateway_id), &"TX_ACK refused");
                    return;
                }
                let outcome = match wire::decode_tx_ack(json) {
                    Ok(o) => o,
                    Err(e) => {
                        reject(DropReason::InvalidTxAck, Some(gateway_id), &e);
                        return;
                    }
                };
                let waiter = lock(&self.shared.pending).remove(&(gateway_id, header.token));
                match waiter {
                    Some((_, tx)) => {
                        counters.inc(Count::DatagramsAccepted);
                        counters.tx_ack_result(result_label(&outcome));
                        debug!(%gateway_id, token = header.token, ?outcome, "TX_ACK");
                        // The waiter may have given up this instant; nothing to do then.
                        let _ = tx.send(outcome);
                    }
                    None => reject(
                        DropReason::UnknownToken,
                        Some(gateway_id),
                        &"TX_ACK for no waiting downlink",
                    ),
                }
            }
        }
    }

    fn ack(&self, request: Header, peer: SocketAddr) {
        let Some(ack) = wire::encode_ack(request) else {
            return;
        };
        match self.shared.socket.try_send_to(&ack, peer) {
            Ok(_) => self.shared.counters.inc(Count::AcksSent),
            Err(e) => {
                self.shared.counters.inc(Count::AckSendErrors);
                debug!(error = %e, %peer, "ack not sent");
            }
        }
    }

    /// Hands an event over without waiting; `false` (and a counted drop) when the
    /// channel is full or closed.
    fn emit(
        &self,
        event: GatewayEvent,
        reject: &mut impl FnMut(DropReason, Option<Eui64>, &dyn std::fmt::Display),
    ) -> bool {
        match self.events.try_send(event) {
            Ok(()) => true,
            Err(TrySendError::Full(e)) => {
                reject(
                    DropReason::QueueFull,
                    event_gateway(&e),
                    &"event channel full",
                );
                false
            }
            Err(TrySendError::Closed(e)) => {
                reject(
                    DropReason::QueueClosed,
                    event_gateway(&e),
                    &"event channel closed",
                );
                false
            }
        }
    }
}

fn event_gateway(e: &GatewayEvent) -> Option<Eui64> {
    Some(match e {
        GatewayEvent::Uplink(f) => f.gateway_id,
        GatewayEvent::Stats(s) => s.gateway_id,
        GatewayEvent::Connected { gateway_id, .. }
        | GatewayEvent::AddressChanged { gateway_id, .. } => *gateway_id,
    })
}

fn result_label(outcome: &TxAckOutcome) -> &'static str {
    match outcome {
        TxAckOutcome::Sent {
            tx_power_warning_dbm: None,
        } => "sent",
        TxAckOutcome::Sent { .. } => "sent_tx_power_warning",
        TxAckOutcome::Unacknowledged => "unacknowledged",
        TxAckOutcome::Rejected(e) => match e {
            TxAckError::TooLate => "too_late",
            TxAckError::TooEarly => "too_early",
            TxAckError::CollisionPacket => "collision_packet",
            TxAckError::CollisionBeacon => "collision_beacon",
            TxAckError::TxFreq => "tx_freq",
            TxAckError::TxPower { .. } => "tx_power",
            TxAckError::GpsUnlocked => "gps_unlocked",
            TxAckError::Other(_) => "other",
        },
    }
}
