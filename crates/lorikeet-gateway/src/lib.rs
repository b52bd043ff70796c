//! The Semtech UDP packet-forwarder listener: the gateway edge of Lorikeet.
//!
//! Gateways running lora_pkt_fwd (SX1301/SX1302) or a compatible forwarder send
//! PUSH_DATA (received packets, status) and PULL_DATA (keepalives that open the
//! downlink path); we answer with acks, send PULL_RESP downlinks and match their
//! TX_ACKs. See `docs/gateways.md` for operation and policies.
//!
//! Layout: [`wire`] is the pure protocol codec (bytes in, typed values out; no
//! sockets, no clock); the registry rules are pure and tested with hand-stepped
//! time; [`bind`]/[`GatewayListener::run`] and [`GatewayHandle`] are the thin
//! tokio shell around them.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use lorikeet_gateway::{bind, GatewayConfig, GatewayEvent, GatewayPolicy};
//! let (listener, mut events) = bind(GatewayConfig::default()).await?;
//! let handle = listener.handle();
//! handle.set_known_gateways([("0102030405060708".parse().unwrap(), GatewayPolicy::default())]);
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let task = tokio::spawn(listener.run(async { let _ = stopped.await; }));
//! while let Some(event) = events.recv().await {
//!     if let GatewayEvent::Uplink(frame) = event { /* to the network server */ let _ = frame; }
//! }
//! let _ = stop.send(());
//! let _ = task.await;
//! # Ok(()) }
//! ```

mod config;
mod counters;
#[doc(hidden)]
pub mod fuzzing;
mod handle;
mod limits;
mod listener;
mod registry;
mod types;
mod warn;
pub mod wire;

pub use config::{ConfigError, GatewayConfig};
pub use counters::{describe_metrics, CountersSnapshot, DropReason, DropUnit};
pub use handle::{conducted_power_dbm, DownlinkError, GatewayHandle};
pub use listener::{bind, GatewayEvent, GatewayListener};
pub use registry::{GatewayPolicy, GatewayState, TxAckSupport};
pub use types::{
    AntennaSignal, CodeRate, DownlinkFrame, DownlinkTiming, GatewayStats, Location, Modulation,
    TxAckError, TxAckOutcome, UnknownCodeRate, UplinkFrame, MAX_PHY_PAYLOAD_BYTES,
};
