//! A listener on 127.0.0.1:0 and test gateways that speak the protocol over real
//! UDP sockets, the way lora_pkt_fwd does (one socket up, one down).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use lorikeet_gateway::wire::{self, Downstream, Header, TxPacket};
use lorikeet_gateway::{
    bind, CodeRate, GatewayConfig, GatewayEvent, GatewayHandle, Modulation, TxAckOutcome,
    UplinkFrame,
};
use lorikeet_lorawan::Eui64;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// Guards against a hung test; never an assertion about speed.
pub const HANG_GUARD: Duration = Duration::from_secs(20);

pub fn test_config() -> GatewayConfig {
    GatewayConfig {
        udp_bind: "127.0.0.1:0".parse().unwrap(),
        ..GatewayConfig::default()
    }
}

pub struct Server {
    pub handle: GatewayHandle,
    pub events: mpsc::Receiver<GatewayEvent>,
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    pub task: Option<JoinHandle<()>>,
}

impl Server {
    pub async fn start(config: GatewayConfig) -> Server {
        let (listener, events) = bind(config).await.expect("bind");
        let addr = listener.local_addr();
        let handle = listener.handle();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(listener.run(async {
            let _ = stopped.await;
        }));
        Server {
            handle,
            events,
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops the loop and waits for it to end.
    pub async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(HANG_GUARD, task)
                .await
                .expect("listener stops")
                .expect("listener task");
        }
    }

    pub async fn next_event(&mut self) -> GatewayEvent {
        tokio::time::timeout(HANG_GUARD, self.events.recv())
            .await
            .expect("an event in time")
            .expect("event channel open")
    }

    /// The next uplink, skipping connection events.
    pub async fn next_uplink(&mut self) -> UplinkFrame {
        loop {
            if let GatewayEvent::Uplink(f) = self.next_event().await {
                return f;
            }
        }
    }
}

/// A datagram a gateway received.
#[derive(Debug)]
pub enum Down {
    PushAck(Header),
    PullAck(Header),
    PullResp(Header, TxPacket),
    Invalid(Vec<u8>),
}

pub struct TestGateway {
    pub eui: Eui64,
    pub up: UdpSocket,
    pub down: UdpSocket,
    pub server: SocketAddr,
}

impl TestGateway {
    pub async fn new(eui: Eui64, server: SocketAddr) -> TestGateway {
        TestGateway {
            eui,
            up: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
            down: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
            server,
        }
    }

    pub fn down_addr(&self) -> SocketAddr {
        self.down.local_addr().unwrap()
    }

    pub async fn send_pull_data(&self, version: u8, token: u16) {
        let dgram = wire::encode_pull_data(version, token, self.eui);
        self.down.send_to(&dgram, self.server).await.unwrap();
    }

    /// PULL_DATA and its PULL_ACK. Because the listener handles datagrams in order,
    /// the ack also proves every datagram sent before it has been processed.
    pub async fn pull(&self, token: u16) -> Header {
        self.send_pull_data(2, token).await;
        match self.recv_down().await {
            Down::PullAck(h) => h,
            other => panic!("expected PULL_ACK, got {other:?}"),
        }
    }

    pub async fn push(&self, datagram: &[u8]) -> Header {
        self.up.send_to(datagram, self.server).await.unwrap();
        let mut buf = [0u8; 64];
        let (n, _) = tokio::time::timeout(HANG_GUARD, self.up.recv_from(&mut buf))
            .await
            .expect("PUSH_ACK in time")
            .unwrap();
        match wire::parse_downstream(&buf[..n]).unwrap() {
            Downstream::PushAck(h) => h,
            other => panic!("expected PUSH_ACK, got {other:?}"),
        }
    }

    pub async fn push_uplinks(&self, token: u16, frames: &[UplinkFrame]) -> Header {
        self.push(&wire::encode_push_data(2, token, self.eui, frames, None))
            .await
    }

    /// Reads the down socket.
    pub async fn recv_down(&self) -> Down {
        let mut buf = vec![0u8; 65_536];
        let (n, _) = tokio::time::timeout(HANG_GUARD, self.down.recv_from(&mut buf))
            .await
            .expect("downstream datagram in time")
            .unwrap();
        buf.truncate(n);
        match wire::parse_downstream(&buf) {
            Ok(Downstream::PullAck(h)) => Down::PullAck(h),
            Ok(Downstream::PushAck(h)) => Down::PushAck(h),
            Ok(Downstream::PullResp { header, json }) => {
                Down::PullResp(header, wire::decode_pull_resp(json).expect("valid txpk"))
            }
            Err(_) => Down::Invalid(buf),
        }
    }

    pub async fn recv_pull_resp(&self) -> (Header, TxPacket) {
        match self.recv_down().await {
            Down::PullResp(header, packet) => (header, packet),
            other => panic!("expected PULL_RESP, got {other:?}"),
        }
    }

    pub async fn send_tx_ack(&self, token: u16, outcome: &TxAckOutcome) {
        let dgram = wire::encode_tx_ack(token, self.eui, outcome);
        self.down.send_to(&dgram, self.server).await.unwrap();
    }

    /// Nothing waiting on the down socket right now.
    pub fn down_is_empty(&self) -> bool {
        let mut buf = [0u8; 64];
        matches!(self.down.try_recv_from(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    }
}

pub fn eui(n: u8) -> Eui64 {
    Eui64([0xaa, 0x55, 0x5a, 0, 0, 0, 0, n])
}

/// A plausible uplink frame (an unconfirmed data up with made-up contents).
pub fn uplink(gateway_id: Eui64, marker: u8) -> UplinkFrame {
    UplinkFrame {
        gateway_id,
        phy_payload: vec![
            0x40, 0x04, 0x03, 0x02, 0x01, 0x80, 0x01, 0x00, 0x01, marker, 0xa1, 0xb2, 0xc3, 0xd4,
        ],
        received_at: SystemTime::UNIX_EPOCH,
        tmst: 4_000_000_000,
        time: None,
        tmms: None,
        fine_time_ns: None,
        frequency_hz: 868_100_000,
        chan: Some(0),
        rfch: Some(0),
        board: None,
        modem_id: None,
        modulation: Modulation::Lora {
            spreading_factor: 7,
            bandwidth_hz: 125_000,
            code_rate: Some(CodeRate::Cr45),
        },
        rssi_dbm: -57,
        rssi_signal_dbm: None,
        snr_db: Some(9.5),
        frequency_offset_hz: None,
        antennas: vec![],
    }
}
