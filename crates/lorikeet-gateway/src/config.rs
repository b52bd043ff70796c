//! The `[gateway]` section of the configuration.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Settings of the UDP listener and its gateway policies.
///
/// Read from the `[gateway]` TOML section; every field has a default, unknown keys
/// are refused so a typo does not silently leave a policy off. Call
/// [`GatewayConfig::validate`] before binding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayConfig {
    /// Where forwarders send to (their `server_address` and `serv_port_up`/`serv_port_down`).
    pub udp_bind: SocketAddr,
    /// Accept gateways that are not in the registry. Off by default: unknown EUIs
    /// are counted and dropped, because anyone can send UDP.
    pub allow_unknown: bool,
    /// With `allow_unknown`, how many unregistered gateways are tracked at most, so
    /// random EUIs cannot grow memory without bound.
    pub max_unknown_gateways: usize,
    /// A PULL_DATA for a known gateway from a new address takes over the downlink
    /// path only once the old address has sent no PULL_DATA for this long. Guards
    /// against hijacking by a forged PULL_DATA; NAT rebinding costs at most this long.
    pub address_takeover_silence_s: u64,
    /// Sustained datagrams per second allowed per gateway EUI (PUSH_DATA and PULL_DATA).
    pub rate_limit_datagrams_per_s: u32,
    /// Datagrams a gateway may send in a burst above the sustained rate.
    pub rate_limit_burst_datagrams: u32,
    /// Sustained datagrams per second allowed per source address (an IPv4 address
    /// or an IPv6 /64), of any type and for any EUI, checked before anything else:
    /// one address cannot flood the listener, fill the registry or spend another
    /// gateway's budget. Leave room for several gateways behind one NAT. 0 = off.
    pub rate_limit_per_address_datagrams_per_s: u32,
    /// Datagrams a source address may send in a burst above its sustained rate.
    pub rate_limit_per_address_burst_datagrams: u32,
    /// Source addresses tracked at most for the per-address limit; addresses beyond
    /// it (while none has been idle long enough to forget) share one bucket.
    pub max_tracked_addresses: usize,
    /// Accept PUSH_DATA (and `stat` reports) for a gateway only from the IP address
    /// its PULL_DATA comes from; others are dropped as `address_mismatch`. Turn off
    /// where a gateway's PUSH and PULL traffic can leave through different public
    /// addresses (some carrier-grade NATs).
    pub pin_address: bool,
    /// How long a downlink waits for its TX_ACK.
    pub tx_ack_timeout_ms: u64,
    /// After this many downlinks in a row without TX_ACK from a gateway that has
    /// never sent one, it is taken to be a forwarder without TX_ACK and later
    /// downlinks return at once as `Unacknowledged`.
    pub tx_ack_missing_limit: u32,
    /// Capacity of the event channel to the network server. When full, uplinks are
    /// dropped and counted; the socket keeps reading and acknowledging.
    pub uplink_queue_capacity: usize,
    /// Socket receive buffer to ask the OS for, in bytes (0 = OS default). Linux caps
    /// it at `net.core.rmem_max`.
    pub socket_recv_buffer_bytes: usize,
    /// Socket send buffer to ask the OS for, in bytes (0 = OS default).
    pub socket_send_buffer_bytes: usize,
    /// Antenna gain assumed for gateways whose policy gives none; `powe` = EIRP − gain.
    pub default_antenna_gain_dbi: f32,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            udp_bind: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 1700)),
            allow_unknown: false,
            max_unknown_gateways: 1_000,
            address_takeover_silence_s: 30,
            rate_limit_datagrams_per_s: 100,
            rate_limit_burst_datagrams: 200,
            rate_limit_per_address_datagrams_per_s: 500,
            rate_limit_per_address_burst_datagrams: 1_000,
            max_tracked_addresses: 65_536,
            pin_address: true,
            tx_ack_timeout_ms: 500,
            tx_ack_missing_limit: 3,
            uplink_queue_capacity: 4_096,
            socket_recv_buffer_bytes: 4 * 1024 * 1024,
            socket_send_buffer_bytes: 1024 * 1024,
            default_antenna_gain_dbi: 0.0,
        }
    }
}

/// A `[gateway]` setting that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("gateway.{field}: {problem}")]
pub struct ConfigError {
    /// The offending key.
    pub field: &'static str,
    /// What is wrong with it.
    pub problem: &'static str,
}

const MAX_BUFFER_BYTES: usize = 1 << 30;

impl GatewayConfig {
    /// Checks the values that deserialize fine but cannot work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |field, problem| Err(ConfigError { field, problem });
        if self.rate_limit_datagrams_per_s == 0 {
            return err("rate_limit_datagrams_per_s", "must be at least 1");
        }
        if self.rate_limit_burst_datagrams == 0 {
            return err("rate_limit_burst_datagrams", "must be at least 1");
        }
        if self.rate_limit_per_address_datagrams_per_s > 0
            && self.rate_limit_per_address_burst_datagrams == 0
        {
            return err(
                "rate_limit_per_address_burst_datagrams",
                "must be at least 1 while the per-address limit is on",
            );
        }
        if self.max_tracked_addresses == 0 || self.max_tracked_addresses > 10_000_000 {
            return err("max_tracked_addresses", "must be between 1 and 10000000");
        }
        if self.tx_ack_timeout_ms == 0 || self.tx_ack_timeout_ms > 60_000 {
            return err("tx_ack_timeout_ms", "must be between 1 and 60000");
        }
        if self.tx_ack_missing_limit == 0 {
            return err("tx_ack_missing_limit", "must be at least 1");
        }
        if self.uplink_queue_capacity == 0 {
            return err("uplink_queue_capacity", "must be at least 1");
        }
        if self.address_takeover_silence_s > 86_400 {
            return err(
                "address_takeover_silence_s",
                "must be at most 86400 (one day)",
            );
        }
        if self.socket_recv_buffer_bytes > MAX_BUFFER_BYTES {
            return err("socket_recv_buffer_bytes", "must be at most 1 GiB");
        }
        if self.socket_send_buffer_bytes > MAX_BUFFER_BYTES {
            return err("socket_send_buffer_bytes", "must be at most 1 GiB");
        }
        if !self.default_antenna_gain_dbi.is_finite() || self.default_antenna_gain_dbi.abs() > 50.0
        {
            return err(
                "default_antenna_gain_dbi",
                "must be a number between -50 and 50",
            );
        }
        Ok(())
    }

    pub(crate) fn address_takeover_silence(&self) -> Duration {
        Duration::from_secs(self.address_takeover_silence_s)
    }

    pub(crate) fn tx_ack_timeout(&self) -> Duration {
        Duration::from_millis(self.tx_ack_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct File {
        gateway: GatewayConfig,
    }

    #[test]
    fn defaults_fill_missing_keys_and_validate() {
        let f: File =
            toml::from_str("[gateway]\nallow_unknown = true\nudp_bind = \"127.0.0.1:1800\"\n")
                .unwrap();
        assert!(f.gateway.allow_unknown);
        assert_eq!(f.gateway.udp_bind.port(), 1800);
        assert_eq!(
            f.gateway.tx_ack_timeout_ms,
            GatewayConfig::default().tx_ack_timeout_ms
        );
        assert_eq!(GatewayConfig::default().validate(), Ok(()));
        assert_eq!(
            GatewayConfig::default().udp_bind.to_string(),
            "0.0.0.0:1700"
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        assert!(toml::from_str::<File>("[gateway]\nallow_unknwon = true\n").is_err());
        let c = GatewayConfig {
            rate_limit_datagrams_per_s: 0,
            ..GatewayConfig::default()
        };
        assert_eq!(
            c.validate().unwrap_err().field,
            "rate_limit_datagrams_per_s"
        );
        let c = GatewayConfig {
            default_antenna_gain_dbi: f32::NAN,
            ..GatewayConfig::default()
        };
        assert_eq!(c.validate().unwrap_err().field, "default_antenna_gain_dbi");
        let c = GatewayConfig {
            uplink_queue_capacity: 0,
            ..GatewayConfig::default()
        };
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .starts_with("gateway.uplink_queue_capacity"));
    }
}
