//! The gateway edge against spoofing and floods, over real loopback UDP: a second
//! source address (127.0.0.2; Linux routes all of 127/8 to the loopback
//! interface) plays the spoofer.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use common::{eui, test_config, uplink, Server, TestGateway, HANG_GUARD};
use lorikeet_gateway::wire::{self, Downstream};
use lorikeet_gateway::{
    DropReason, DropUnit, GatewayConfig, GatewayEvent, GatewayPolicy, GatewayStats, Location,
};
use lorikeet_lorawan::Eui64;
use tokio::net::UdpSocket;

/// A socket on another loopback address than the test gateways' 127.0.0.1.
async fn elsewhere() -> UdpSocket {
    UdpSocket::bind("127.0.0.2:0")
        .await
        .expect("127.0.0.2 is a loopback address on Linux")
}

fn stat(gateway_id: Eui64, latitude_deg: f64) -> GatewayStats {
    GatewayStats {
        gateway_id,
        received_at: SystemTime::UNIX_EPOCH,
        time: None,
        location: Some(Location {
            latitude_deg,
            longitude_deg: 4.0,
            altitude_m: Some(10.0),
        }),
        rx_received: Some(1),
        rx_ok: Some(1),
        rx_forwarded: Some(1),
        ack_ratio_pct: Some(100.0),
        downlinks_received: Some(0),
        tx_emitted: Some(0),
        temperature_c: None,
    }
}

/// Whether `socket` gets a PUSH_ACK for `token` within `wait`.
async fn acked(socket: &UdpSocket, token: u16, wait: Duration) -> bool {
    let mut buf = [0u8; 64];
    let deadline = tokio::time::Instant::now() + wait;
    while let Ok(Ok((n, _))) = tokio::time::timeout_at(deadline, socket.recv_from(&mut buf)).await {
        if let Ok(Downstream::PushAck(h)) = wire::parse_downstream(&buf[..n]) {
            if h.token == token {
                return true;
            }
        }
    }
    false
}

/// Every event waiting now (the caller has made sure, with a PULL_ACK, that the
/// listener has handled what was sent before).
fn drain(server: &mut Server) -> Vec<GatewayEvent> {
    let mut out = Vec::new();
    while let Ok(e) = server.events.try_recv() {
        out.push(e);
    }
    out
}

#[tokio::test]
async fn spoofed_push_data_from_another_address_is_dropped_and_counted() {
    let mut server = Server::start(test_config()).await;
    let real = TestGateway::new(eui(1), server.addr).await;
    server
        .handle
        .upsert_gateway(real.eui, GatewayPolicy::default());
    real.pull(1).await; // pins 127.0.0.1
    let spoofer = elsewhere().await;
    let forged = wire::encode_push_data(
        2,
        0x5555,
        real.eui,
        &[uplink(real.eui, 0xee)],
        Some(&stat(real.eui, 66.0)),
    );
    for _ in 0..5 {
        spoofer.send_to(&forged, server.addr).await.unwrap();
    }
    // The real gateway's PUSH_DATA comes from its other socket (another port, the
    // same IP): accepted, with its stat.
    let ack = real
        .push(&wire::encode_push_data(
            2,
            7,
            real.eui,
            &[uplink(real.eui, 1)],
            Some(&stat(real.eui, 52.0)),
        ))
        .await;
    assert_eq!(ack.token, 7);
    real.pull(2).await; // everything sent before has been handled
    assert!(
        !acked(&spoofer, 0x5555, Duration::from_millis(200)).await,
        "the spoofer gets no PUSH_ACK"
    );
    let events = drain(&mut server);
    let uplinks: Vec<u8> = events
        .iter()
        .filter_map(|e| match e {
            GatewayEvent::Uplink(f) => Some(f.phy_payload[9]),
            _ => None,
        })
        .collect();
    assert_eq!(uplinks, vec![1], "only the real uplink: {events:?}");
    let stats: Vec<f64> = events
        .iter()
        .filter_map(|e| match e {
            GatewayEvent::Stats(s) => s.location.map(|l| l.latitude_deg),
            _ => None,
        })
        .collect();
    assert_eq!(stats, vec![52.0], "only the real stat");
    let state = server.handle.gateway(real.eui).unwrap();
    assert_eq!(
        state
            .last_stats
            .and_then(|s| s.location)
            .map(|l| l.latitude_deg),
        Some(52.0)
    );
    let c = server.handle.counters();
    assert_eq!(c.dropped(DropReason::AddressMismatch), 5);
    assert_eq!(
        c.dropped(DropReason::RateLimited),
        0,
        "dropped before the EUI's rate limit"
    );
    assert_eq!(
        c.datagrams_received,
        c.datagrams_accepted + c.dropped_total(DropUnit::Datagram)
    );
    server.shutdown().await;
}

#[tokio::test]
async fn with_pin_address_off_push_data_from_another_address_is_accepted() {
    let config = GatewayConfig {
        pin_address: false,
        ..test_config()
    };
    let mut server = Server::start(config).await;
    let real = TestGateway::new(eui(2), server.addr).await;
    server
        .handle
        .upsert_gateway(real.eui, GatewayPolicy::default());
    real.pull(1).await;
    let moved = elsewhere().await; // say, the gateway's PUSH socket behind another NAT address
    moved
        .send_to(
            &wire::encode_push_data(
                2,
                9,
                real.eui,
                &[uplink(real.eui, 2)],
                Some(&stat(real.eui, 48.0)),
            ),
            server.addr,
        )
        .await
        .unwrap();
    assert!(acked(&moved, 9, HANG_GUARD).await, "acknowledged");
    assert_eq!(server.next_uplink().await.phy_payload[9], 2);
    let GatewayEvent::Stats(s) = server.next_event().await else {
        panic!("the stat is taken too")
    };
    assert_eq!(s.location.unwrap().latitude_deg, 48.0);
    assert_eq!(
        server
            .handle
            .counters()
            .dropped(DropReason::AddressMismatch),
        0
    );
    server.shutdown().await;
}

#[tokio::test]
async fn without_pinning_a_flood_from_elsewhere_does_not_spend_the_real_gateways_budget() {
    let config = GatewayConfig {
        pin_address: false,
        rate_limit_datagrams_per_s: 1,
        rate_limit_burst_datagrams: 5,
        ..test_config()
    };
    let mut server = Server::start(config).await;
    let real = TestGateway::new(eui(3), server.addr).await;
    server
        .handle
        .upsert_gateway(real.eui, GatewayPolicy::default());
    real.pull(1).await; // one of its 5 tokens
    let spoofer = elsewhere().await;
    for i in 0..50u16 {
        let d = wire::encode_push_data(2, 1000 + i, real.eui, &[uplink(real.eui, 0xee)], None);
        spoofer.send_to(&d, server.addr).await.unwrap();
    }
    // The real gateway still has its 4 tokens.
    for i in 0..4u16 {
        assert_eq!(real.push_uplinks(i, &[uplink(real.eui, 3)]).await.token, i);
    }
    let c = server.handle.counters();
    assert!(
        c.dropped(DropReason::RateLimited) >= 40,
        "the spoofer spent its own budget: {c:?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_stat_is_taken_only_once_the_gateway_is_pinned() {
    let mut server = Server::start(test_config()).await;
    let gw = TestGateway::new(eui(4), server.addr).await;
    server
        .handle
        .upsert_gateway(gw.eui, GatewayPolicy::default());
    // Before any PULL_DATA: the uplink goes on, the stat (say, a forged location
    // while the real gateway is offline) does not.
    let d = wire::encode_push_data(2, 1, gw.eui, &[uplink(gw.eui, 4)], Some(&stat(gw.eui, 1.0)));
    assert_eq!(gw.push(&d).await.token, 1);
    assert_eq!(server.next_uplink().await.phy_payload[9], 4);
    assert_eq!(
        server.handle.counters().dropped(DropReason::StatNotPinned),
        1
    );
    assert!(server.handle.gateway(gw.eui).unwrap().last_stats.is_none());
    gw.pull(2).await;
    assert!(matches!(
        server.next_event().await,
        GatewayEvent::Connected { .. }
    ));
    let d = wire::encode_push_data(2, 3, gw.eui, &[], Some(&stat(gw.eui, 2.0)));
    assert_eq!(gw.push(&d).await.token, 3);
    let GatewayEvent::Stats(s) = server.next_event().await else {
        panic!("stats once pinned")
    };
    assert_eq!(s.location.unwrap().latitude_deg, 2.0);
    assert_eq!(
        server.handle.counters().dropped_total(DropUnit::Stat),
        1,
        "nothing more dropped"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_flood_from_one_address_does_not_starve_another_gateway() {
    // Unknown gateways are admitted, up to 50: a flood of made-up EUIs from one
    // address would fill that table and lock every new gateway out.
    let config = GatewayConfig {
        allow_unknown: true,
        max_unknown_gateways: 50,
        rate_limit_per_address_datagrams_per_s: 1,
        rate_limit_per_address_burst_datagrams: 20,
        ..test_config()
    };
    let mut server = Server::start(config).await;
    let flooder = elsewhere().await;
    const FLOOD: u64 = 500;
    for i in 0..FLOOD {
        let id = Eui64::from_u64(0xf100_0000_0000_0000 + i);
        let d = wire::encode_push_data(2, i as u16, id, &[uplink(id, 0xee)], None);
        flooder.send_to(&d, server.addr).await.unwrap();
    }
    // A new gateway on another address is heard.
    let newcomer = TestGateway::new(eui(5), server.addr).await;
    newcomer.pull(1).await;
    assert_eq!(
        newcomer
            .push_uplinks(2, &[uplink(newcomer.eui, 5)])
            .await
            .token,
        2
    );
    let c = server.handle.counters();
    assert_eq!(c.dropped(DropReason::RegistryFull), 0, "{c:?}");
    let limited = c.dropped(DropReason::AddressRateLimited);
    assert!(
        limited >= FLOOD - 20 - 10,
        "the flood beyond its burst is refused at once: {limited}"
    );
    let mut uplinks_from_newcomer = 0;
    for e in drain(&mut server) {
        if let GatewayEvent::Uplink(f) = e {
            if f.gateway_id == newcomer.eui {
                uplinks_from_newcomer += 1;
            }
        }
    }
    assert_eq!(uplinks_from_newcomer, 1);
    assert_eq!(
        c.datagrams_received,
        c.datagrams_accepted + c.dropped_total(DropUnit::Datagram)
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_gateway_that_moved_re_pins_after_its_old_address_falls_silent() {
    let config = GatewayConfig {
        address_takeover_silence_s: 1,
        ..test_config()
    };
    let mut server = Server::start(config).await;
    let gw = TestGateway::new(eui(6), server.addr).await;
    server
        .handle
        .upsert_gateway(gw.eui, GatewayPolicy::default());
    gw.pull(1).await;
    // The gateway's NAT mapping changes: it now speaks from 127.0.0.2.
    let moved_up = elsewhere().await;
    let moved_down = elsewhere().await;
    let d = wire::encode_push_data(2, 2, gw.eui, &[uplink(gw.eui, 6)], None);
    moved_up.send_to(&d, server.addr).await.unwrap();
    assert!(
        !acked(&moved_up, 2, Duration::from_millis(300)).await,
        "not yet: pinned elsewhere"
    );
    // Its keepalives from the new address take over once the old one has been
    // silent for address_takeover_silence_s (a real forwarder pulls every few
    // seconds, so it re-pins by itself).
    let pull = wire::encode_pull_data(2, 3, gw.eui);
    let mut repinned = false;
    let deadline = tokio::time::Instant::now() + HANG_GUARD;
    let mut buf = [0u8; 64];
    while !repinned && tokio::time::Instant::now() < deadline {
        moved_down.send_to(&pull, server.addr).await.unwrap();
        if let Ok(Ok((n, _))) =
            tokio::time::timeout(Duration::from_millis(200), moved_down.recv_from(&mut buf)).await
        {
            repinned = matches!(
                wire::parse_downstream(&buf[..n]),
                Ok(Downstream::PullAck(_))
            );
        }
    }
    assert!(repinned, "the new address took over");
    let pinned: SocketAddr = server
        .handle
        .gateway(gw.eui)
        .unwrap()
        .downlink_addr
        .unwrap();
    assert_eq!(pinned, moved_down.local_addr().unwrap());
    let d = wire::encode_push_data(2, 4, gw.eui, &[uplink(gw.eui, 7)], None);
    moved_up.send_to(&d, server.addr).await.unwrap();
    assert!(
        acked(&moved_up, 4, HANG_GUARD).await,
        "PUSH_DATA follows the pin"
    );
    assert!(
        server
            .handle
            .counters()
            .dropped(DropReason::AddressMismatch)
            >= 1
    );
    server.shutdown().await;
}
