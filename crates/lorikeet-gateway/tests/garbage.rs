//! 10,000 malformed and random datagrams over loopback: each is counted under the
//! right reason, nothing panics, and the listener still answers a valid PULL_DATA
//! and parses a valid PUSH_DATA afterwards.

mod common;

use common::{eui, test_config, uplink, Server, TestGateway};
use lorikeet_gateway::wire;
use lorikeet_gateway::{DropReason, DropUnit, GatewayConfig, GatewayPolicy};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::net::UdpSocket;

/// At most this many datagrams, or this many bytes (with a generous allowance for
/// kernel overhead per datagram), go out between flow-control round trips, so the
/// socket's receive buffer never overflows even at the OS default size: a kernel
/// drop would make the exact counts below meaningless.
const BATCH: usize = 100;
const BATCH_BYTES: usize = 96 * 1024;
const OVERHEAD_BYTES: usize = 1_024;
/// The largest UDP payload IPv4 can carry (64 KiB minus headers).
const MAX_UDP_PAYLOAD: usize = 65_507;

struct Storm {
    attacker: UdpSocket,
    pacer: TestGateway,
    server: std::net::SocketAddr,
    since_sync: usize,
    bytes_since_sync: usize,
    sent: u64,
    syncs: u64,
}

impl Storm {
    async fn send(&mut self, datagram: &[u8]) {
        self.attacker
            .send_to(datagram, self.server)
            .await
            .expect("send");
        self.sent += 1;
        self.since_sync += 1;
        self.bytes_since_sync += datagram.len() + OVERHEAD_BYTES;
        if self.since_sync >= BATCH
            || self.bytes_since_sync >= BATCH_BYTES
            || datagram.len() > 8_000
        {
            self.sync().await;
        }
    }

    async fn sync(&mut self) {
        self.pacer.pull(self.syncs as u16).await;
        self.syncs += 1;
        self.since_sync = 0;
        self.bytes_since_sync = 0;
    }
}

fn header(version: u8, token: u16, kind: u8) -> Vec<u8> {
    let [hi, lo] = token.to_be_bytes();
    vec![version, hi, lo, kind]
}

fn push_data(gateway: lorikeet_lorawan::Eui64, json: &[u8]) -> Vec<u8> {
    let mut d = header(2, 0, 0);
    d.extend_from_slice(&gateway.0);
    d.extend_from_slice(json);
    d
}

fn rxpk_with(datr: &str, data: &str) -> String {
    format!(
        r#"{{"rxpk":[{{"tmst":1,"chan":0,"rfch":0,"freq":868.1,"stat":1,"modu":"LORA","datr":"{datr}","codr":"4/5","rssi":-50,"lsnr":7.0,"size":2,"data":"{data}"}}]}}"#
    )
}

#[tokio::test]
async fn ten_thousand_bad_datagrams_are_counted_and_survived() {
    let config = GatewayConfig {
        // The attacker uses a known EUI for body-level garbage: don't let the rate
        // limit hide what the parser does.
        rate_limit_datagrams_per_s: 1_000_000,
        rate_limit_burst_datagrams: 1_000_000,
        // Nor the per-address limit (everything comes from 127.0.0.1).
        rate_limit_per_address_datagrams_per_s: 0,
        uplink_queue_capacity: 100_000,
        ..test_config()
    };
    let mut server = Server::start(config).await;
    let victim = eui(1);
    server
        .handle
        .upsert_gateway(victim, GatewayPolicy::default());
    server
        .handle
        .upsert_gateway(eui(2), GatewayPolicy::default());
    let mut storm = Storm {
        attacker: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
        pacer: TestGateway::new(eui(2), server.addr).await,
        server: server.addr,
        since_sync: 0,
        bytes_since_sync: 0,
        sent: 0,
        syncs: 0,
    };
    let mut rng = StdRng::seed_from_u64(0x0104_1ee7);
    let valid_json = String::from_utf8(
        wire::encode_push_data(2, 0, victim, &[uplink(victim, 0), uplink(victim, 1)], None)[12..]
            .to_vec(),
    )
    .unwrap();
    const EACH: usize = 900;

    // Header-level garbage.
    for _ in 0..EACH {
        let len = rng.gen_range(0..4);
        let d: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        storm.send(&d).await;
    }
    for _ in 0..EACH {
        let kind = [0u8, 2, 5][rng.gen_range(0..3)];
        let mut d = header(2, rng.gen(), kind);
        let extra = rng.gen_range(0..8);
        d.extend((0..extra).map(|_| rng.gen::<u8>()));
        storm.send(&d).await;
    }
    for _ in 0..EACH {
        let version = loop {
            let v: u8 = rng.gen();
            if v != 1 && v != 2 {
                break v;
            }
        };
        let mut d = header(version, rng.gen(), 2);
        d.extend_from_slice(&victim.0);
        storm.send(&d).await;
    }
    for _ in 0..EACH {
        let mut d = header(2, rng.gen(), rng.gen_range(6..=255));
        d.extend_from_slice(&victim.0);
        storm.send(&d).await;
    }
    for _ in 0..EACH {
        // Downstream types sent upstream, and TX_ACK in protocol v1.
        let (v, kind) = [(2u8, 1u8), (2, 3), (2, 4), (1, 5)][rng.gen_range(0..4)];
        let mut d = header(v, rng.gen(), kind);
        d.extend_from_slice(&victim.0);
        d.extend_from_slice(b"{}");
        storm.send(&d).await;
    }
    // Body-level garbage from a known gateway (acked, then refused).
    for i in 0..EACH {
        let body: Vec<u8> = match i % 3 {
            // Every proper prefix of a JSON object is invalid.
            0 => valid_json.as_bytes()[..rng.gen_range(0..valid_json.len() - 1)].to_vec(),
            1 => (0..rng.gen_range(1..200))
                .map(|_| rng.gen::<u8>())
                .filter(|b| *b != b'{')
                .collect(),
            _ => b"[{\"rxpk\":[]}]".to_vec(),
        };
        let body = if body.iter().all(|b| *b == 0 || b.is_ascii_whitespace()) {
            b"nul".to_vec()
        } else {
            body
        };
        storm.send(&push_data(victim, &body)).await;
    }
    for _ in 0..EACH {
        let bad = ["Q!E=", "QAE*", "@@@@", "QA=E", "é"][rng.gen_range(0..5)];
        storm
            .send(&push_data(victim, rxpk_with("SF7BW125", bad).as_bytes()))
            .await;
    }
    for _ in 0..EACH {
        let len = rng.gen_range(256..2_000);
        let data = "QUFB".repeat(len / 3 + 1);
        storm
            .send(&push_data(victim, rxpk_with("SF7BW125", &data).as_bytes()))
            .await;
    }
    for _ in 0..EACH {
        let datr = [
            "SF13BW125",
            "SF7BW999",
            "SF4BW125",
            "FOO",
            "SF7",
            "SF1\u{e9}BW125",
            "SF7BW125X",
        ][rng.gen_range(0..7)];
        storm
            .send(&push_data(victim, rxpk_with(datr, "QAE=").as_bytes()))
            .await;
    }
    // Maximum-size datagrams: junk, and a well-formed rxpk with an enormous payload.
    for i in 0..10 {
        let d = if i % 2 == 0 {
            let mut d = push_data(victim, b"{\"rxpk\":[");
            d.resize(MAX_UDP_PAYLOAD, b'[');
            d
        } else {
            let filler =
                MAX_UDP_PAYLOAD - push_data(victim, rxpk_with("SF7BW125", "").as_bytes()).len();
            push_data(
                victim,
                rxpk_with("SF7BW125", &"A".repeat(filler)).as_bytes(),
            )
        };
        assert_eq!(d.len(), MAX_UDP_PAYLOAD);
        storm.send(&d).await;
    }
    storm.sync().await;

    let c = server.handle.counters();
    let e = EACH as u64;
    assert_eq!(c.dropped(DropReason::Truncated), 2 * e);
    assert_eq!(c.dropped(DropReason::BadVersion), e);
    assert_eq!(c.dropped(DropReason::UnknownType), e);
    assert_eq!(c.dropped(DropReason::UnexpectedType), e);
    assert_eq!(c.dropped(DropReason::InvalidJson), e + 5);
    assert_eq!(c.dropped(DropReason::BadBase64), e);
    assert_eq!(c.dropped(DropReason::PayloadTooLarge), e + 5);
    assert_eq!(c.dropped(DropReason::UnknownDatr), e);
    assert_eq!(c.dropped(DropReason::UnknownGateway), 0);
    assert_eq!(c.uplinks_forwarded, 0);
    // Every datagram is accounted for exactly once.
    assert_eq!(c.datagrams_received, storm.sent + storm.syncs);
    assert_eq!(
        c.datagrams_received,
        c.datagrams_accepted + c.dropped_total(DropUnit::Datagram)
    );

    // Then pure noise and mutations of a valid PUSH_DATA: no exact expectations,
    // just the accounting and survival.
    let valid = push_data(victim, valid_json.as_bytes());
    while storm.sent < 10_000 {
        let d = if storm.sent % 2 == 0 {
            (0..rng.gen_range(0..1_500))
                .map(|_| rng.gen::<u8>())
                .collect::<Vec<u8>>()
        } else {
            let mut d = valid.clone();
            for _ in 0..rng.gen_range(1..4) {
                let at = rng.gen_range(0..d.len());
                d[at] = rng.gen();
            }
            d
        };
        storm.send(&d).await;
    }
    storm.sync().await;
    let c = server.handle.counters();
    assert_eq!(storm.sent, 10_000);
    assert_eq!(c.datagrams_received, storm.sent + storm.syncs);
    assert_eq!(
        c.datagrams_received,
        c.datagrams_accepted + c.dropped_total(DropUnit::Datagram)
    );
    assert_eq!(c.recv_errors, 0);

    // Still alive: a valid PULL_DATA is answered and a valid PUSH_DATA parsed.
    let gw = TestGateway::new(victim, server.addr).await;
    assert_eq!(gw.pull(0x4242).await.token, 0x4242);
    let marker = uplink(victim, 0xee);
    assert_eq!(
        gw.push_uplinks(0x4343, std::slice::from_ref(&marker))
            .await
            .token,
        0x4343
    );
    loop {
        let f = server.next_uplink().await;
        if f.phy_payload == marker.phy_payload {
            assert_eq!(f.gateway_id, victim);
            break;
        }
    }
    server.shutdown().await;
}
