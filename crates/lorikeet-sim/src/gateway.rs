//! A simulated Semtech UDP packet forwarder: two sockets like lora_pkt_fwd (uplink:
//! PUSH_DATA/PUSH_ACK; downlink: PULL_DATA/PULL_ACK/PULL_RESP/TX_ACK) and a
//! concentrator clock (`tmst`, µs, wrapping).

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use lorikeet_gateway::wire::{self, Downstream};
use lorikeet_gateway::{DownlinkTiming, Modulation};
use lorikeet_lorawan::Eui64;
use tokio::net::UdpSocket;

/// A downlink the simulated gateway received.
#[derive(Debug, Clone)]
pub struct ReceivedDownlink {
    /// PULL_RESP token (echo it in the TX_ACK).
    pub token: u16,
    /// When our socket got it.
    pub received_at: Instant,
    /// The txpk.
    pub packet: wire::pull_resp::TxPacket,
}

impl ReceivedDownlink {
    /// The concentrator time it is scheduled for, if timed.
    pub fn tmst(&self) -> Option<u32> {
        match self.packet.timing {
            DownlinkTiming::Delay { tmst } => Some(tmst),
            _ => None,
        }
    }
}

/// Reception metadata of one simulated uplink.
#[derive(Debug, Clone, Copy)]
pub struct RxMeta {
    /// Centre frequency in Hz.
    pub frequency_hz: u32,
    /// LoRa spreading factor.
    pub spreading_factor: u8,
    /// Bandwidth in Hz.
    pub bandwidth_hz: u32,
    /// RSSI in dBm.
    pub rssi_dbm: i32,
    /// SNR in dB.
    pub snr_db: f32,
}

/// A simulated gateway.
#[derive(Debug)]
pub struct SimGateway {
    /// Its EUI.
    pub id: Eui64,
    up: UdpSocket,
    down: UdpSocket,
    started: Instant,
    tmst_offset: u32,
    token: AtomicU16,
    /// Send `time` (a synchronised clock) in rxpk.
    pub with_time: bool,
}

impl SimGateway {
    /// Binds two local sockets towards `server`.
    pub async fn connect(id: Eui64, server: SocketAddr) -> io::Result<Self> {
        let local: SocketAddr = if server.is_ipv4() {
            "0.0.0.0:0".parse().map_err(io::Error::other)?
        } else {
            "[::]:0".parse().map_err(io::Error::other)?
        };
        let up = UdpSocket::bind(local).await?;
        up.connect(server).await?;
        let down = UdpSocket::bind(local).await?;
        down.connect(server).await?;
        Ok(SimGateway {
            id,
            up,
            down,
            started: Instant::now(),
            // Concentrator clocks start anywhere.
            tmst_offset: (id.to_u64() as u32).wrapping_mul(2_654_435_761),
            token: AtomicU16::new((id.to_u64() as u16) ^ 0x5a5a),
            with_time: true,
        })
    }

    fn next_token(&self) -> u16 {
        self.token.fetch_add(1, Ordering::Relaxed).wrapping_add(1)
    }

    /// The concentrator counter now.
    pub fn tmst_now(&self) -> u32 {
        let us = self.started.elapsed().as_micros() as u64;
        (us as u32).wrapping_add(self.tmst_offset)
    }

    /// Sends PULL_DATA keepalives (every 250 ms, as a forwarder retries) until one is
    /// acknowledged or `timeout` passes.
    pub async fn pull_data(&self, timeout: Duration) -> io::Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut buf = vec![0u8; 65_536];
        while tokio::time::Instant::now() < deadline {
            let token = self.next_token();
            self.down
                .send(&wire::encode_pull_data(2, token, self.id))
                .await?;
            let retry = (tokio::time::Instant::now() + Duration::from_millis(250)).min(deadline);
            while let Ok(n) = tokio::time::timeout_at(retry, self.down.recv(&mut buf)).await {
                if let Ok(Downstream::PullAck(h)) = wire::parse_downstream(&buf[..n?]) {
                    if h.token == token {
                        return Ok(());
                    }
                }
            }
        }
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("no PULL_ACK within {timeout:?}"),
        ))
    }

    /// Checks `server` before anything is provisioned: sends PULL_DATA as gateway `id`
    /// for up to `wait`. `Ok(true)`: acknowledged. `Ok(false)`: no answer, which is
    /// what a server that drops unknown gateways (Lorikeet by default) gives. An
    /// error: e.g. nothing listens there (ICMP port unreachable, reported on the
    /// connected socket as `ConnectionRefused`).
    pub async fn probe(id: Eui64, server: SocketAddr, wait: Duration) -> io::Result<bool> {
        let gw = SimGateway::connect(id, server).await?;
        match gw.pull_data(wait).await {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The rxpk JSON object for one reception (as lora_pkt_fwd writes it), as text.
    pub fn rxpk(&self, phy: &[u8], rx: &RxMeta, tmst: u32) -> String {
        #[derive(serde::Serialize)]
        struct Rxpk<'a> {
            #[serde(skip_serializing_if = "Option::is_none")]
            time: Option<String>,
            tmst: u32,
            chan: u8,
            rfch: u8,
            freq: f64,
            stat: i8,
            modu: &'static str,
            datr: &'a str,
            codr: &'static str,
            lsnr: f32,
            rssi: i32,
            size: usize,
            data: String,
        }
        let datr = format!("SF{}BW{}", rx.spreading_factor, rx.bandwidth_hz / 1000);
        let v = Rxpk {
            time: self
                .with_time
                .then(|| chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
            tmst,
            chan: 0,
            rfch: 0,
            freq: f64::from(rx.frequency_hz) / 1e6,
            stat: 1,
            modu: "LORA",
            datr: &datr,
            codr: "4/5",
            lsnr: rx.snr_db,
            rssi: rx.rssi_dbm,
            size: phy.len(),
            data: base64::engine::general_purpose::STANDARD.encode(phy),
        };
        // Plain fields only: serialising cannot fail.
        serde_json::to_string(&v).unwrap_or_default()
    }

    /// Sends a PUSH_DATA with one rxpk received at concentrator time `tmst`, without
    /// waiting for the PUSH_ACK (a forwarder does not wait either).
    pub async fn push_at(&self, phy: &[u8], rx: &RxMeta, tmst: u32) -> io::Result<u16> {
        self.push_rxpks(&[self.rxpk(phy, rx, tmst)]).await
    }

    /// Sends one PUSH_DATA carrying several receptions (see [`SimGateway::rxpk`]),
    /// without waiting for the PUSH_ACK.
    pub async fn push_rxpks(&self, rxpks: &[String]) -> io::Result<u16> {
        let token = self.next_token();
        let len: usize = rxpks.iter().map(|r| r.len() + 1).sum();
        let mut d = Vec::with_capacity(12 + 11 + len);
        d.extend_from_slice(&[2, (token >> 8) as u8, token as u8, 0x00]);
        d.extend_from_slice(&self.id.0);
        d.extend_from_slice(b"{\"rxpk\":[");
        for (i, r) in rxpks.iter().enumerate() {
            if i > 0 {
                d.push(b',');
            }
            d.extend_from_slice(r.as_bytes());
        }
        d.extend_from_slice(b"]}");
        self.up.send(&d).await?;
        Ok(token)
    }

    /// Sends a PUSH_DATA now and waits for its PUSH_ACK. Returns the `tmst` used.
    pub async fn push(&self, phy: &[u8], rx: &RxMeta) -> io::Result<u32> {
        let tmst = self.tmst_now();
        let token = self.push_at(phy, rx, tmst).await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        let mut buf = vec![0u8; 1024];
        loop {
            let n = tokio::time::timeout_at(deadline, self.up.recv(&mut buf))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no PUSH_ACK"))??;
            if let Ok(Downstream::PushAck(h)) = wire::parse_downstream(&buf[..n]) {
                if h.token == token {
                    return Ok(tmst);
                }
            }
        }
    }

    /// Waits up to `timeout` for the next PULL_RESP.
    pub async fn recv_downlink(&self, timeout: Duration) -> io::Result<Option<ReceivedDownlink>> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut buf = vec![0u8; 65_536];
        loop {
            let n = match tokio::time::timeout_at(deadline, self.down.recv(&mut buf)).await {
                Ok(r) => r?,
                Err(_) => return Ok(None),
            };
            if let Ok((h, packet)) = wire::pull_resp::parse_pull_resp_datagram(&buf[..n]) {
                return Ok(Some(ReceivedDownlink {
                    token: h.token,
                    received_at: Instant::now(),
                    packet,
                }));
            }
        }
    }

    /// Sends a PULL_DATA keepalive without waiting for the PULL_ACK (a reader of the
    /// downlink socket will see it).
    pub async fn keepalive(&self) -> io::Result<()> {
        let token = self.next_token();
        self.down
            .send(&wire::encode_pull_data(2, token, self.id))
            .await
            .map(|_| ())
    }

    /// Reads and discards what arrives on the uplink socket (PUSH_ACKs), returning how
    /// many datagrams were read before `timeout` passed without one.
    pub async fn drain_acks(&self, timeout: Duration) -> u64 {
        let mut buf = [0u8; 64];
        let mut n = 0;
        while let Ok(Ok(_)) = tokio::time::timeout(timeout, self.up.recv(&mut buf)).await {
            n += 1;
        }
        n
    }

    /// The token of the next PUSH_ACK on the uplink socket, or `None` when none came
    /// within `timeout` (for a sender that does not wait in [`SimGateway::push_at`]
    /// but wants to know which of its PUSH_DATA were acknowledged).
    pub async fn recv_push_ack(&self, timeout: Duration) -> io::Result<Option<u16>> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut buf = [0u8; 64];
        loop {
            let n = match tokio::time::timeout_at(deadline, self.up.recv(&mut buf)).await {
                Ok(r) => r?,
                Err(_) => return Ok(None),
            };
            if let Ok(Downstream::PushAck(h)) = wire::parse_downstream(&buf[..n]) {
                return Ok(Some(h.token));
            }
        }
    }

    /// Answers a PULL_RESP: `error` `None` means sent (`"NONE"`), otherwise e.g. `TOO_LATE`.
    pub async fn tx_ack(&self, token: u16, error: Option<&str>) -> io::Result<()> {
        let json = serde_json::json!({ "txpk_ack": { "error": error.unwrap_or("NONE") } });
        let json = serde_json::to_vec(&json).map_err(io::Error::other)?;
        let mut d = Vec::with_capacity(12 + json.len());
        d.extend_from_slice(&[2, (token >> 8) as u8, token as u8, 0x05]);
        d.extend_from_slice(&self.id.0);
        d.extend_from_slice(&json);
        self.down.send(&d).await?;
        Ok(())
    }
}

/// The `datr` spreading factor and bandwidth of a LoRa downlink.
pub fn lora_params(m: &Modulation) -> Option<(u8, u32)> {
    match m {
        Modulation::Lora {
            spreading_factor,
            bandwidth_hz,
            ..
        } => Some((*spreading_factor, *bandwidth_hz)),
        Modulation::Fsk { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn batched_push_data_is_what_a_forwarder_sends() {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let id = Eui64([1, 2, 3, 4, 5, 6, 7, 8]);
        let gw = SimGateway::connect(id, server.local_addr().unwrap())
            .await
            .unwrap();
        let meta = |sf, rssi| RxMeta {
            frequency_hz: 868_300_000,
            spreading_factor: sf,
            bandwidth_hz: 125_000,
            rssi_dbm: rssi,
            snr_db: 7.5,
        };
        let rxpks = [
            gw.rxpk(&[0x40, 1, 2, 3], &meta(7, -60), 1_000),
            gw.rxpk(&[0x80, 9], &meta(12, -110), 2_000),
        ];
        gw.push_rxpks(&rxpks).await.unwrap();
        let mut buf = vec![0u8; 4096];
        let (n, _) = server.recv_from(&mut buf).await.unwrap();
        let wire::Upstream::PushData {
            gateway_id, json, ..
        } = wire::parse_upstream(&buf[..n]).unwrap()
        else {
            panic!("not a PUSH_DATA");
        };
        assert_eq!(gateway_id, id);
        let push =
            wire::push_data::decode_push_data(id, json, std::time::SystemTime::now()).unwrap();
        let frames: Vec<_> = push.uplinks.into_iter().map(Result::unwrap).collect();
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].phy_payload, [0x40, 1, 2, 3]);
        assert_eq!(frames[0].tmst, 1_000);
        assert_eq!(frames[0].rssi_dbm, -60);
        assert_eq!(frames[0].frequency_hz, 868_300_000);
        assert!(frames[0].time.is_some());
        assert_eq!(frames[1].phy_payload, [0x80, 9]);
        assert_eq!(frames[1].snr_db, Some(7.5));
        assert_eq!(
            lora_params(&frames[1].modulation),
            Some((12, 125_000)),
            "datr SF12BW125"
        );
    }
}
