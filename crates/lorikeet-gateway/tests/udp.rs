//! The listener over real loopback UDP: acks, uplinks, downlinks with every TX_ACK
//! result, policies, a slow consumer and shutdown.

mod common;

use std::time::Duration;

use common::{eui, test_config, uplink, Down, Server, TestGateway, HANG_GUARD};
use lorikeet_gateway::wire;
use lorikeet_gateway::{
    DownlinkError, DownlinkFrame, DownlinkTiming, DropReason, DropUnit, GatewayConfig,
    GatewayEvent, GatewayPolicy, Modulation, TxAckError, TxAckOutcome, TxAckSupport,
};
use lorikeet_lorawan::Eui64;

fn downlink(gateway_id: Eui64) -> DownlinkFrame {
    DownlinkFrame {
        gateway_id,
        phy_payload: vec![
            0x60, 0x04, 0x03, 0x02, 0x01, 0x20, 0x07, 0x00, 0x11, 0x22, 0x33, 0x44,
        ],
        timing: DownlinkTiming::Delay {
            tmst: 4_294_000_000u32.wrapping_add(1_000_000),
        },
        frequency_hz: 868_100_000,
        modulation: Modulation::Lora {
            spreading_factor: 7,
            bandwidth_hz: 125_000,
            code_rate: None,
        },
        tx_power_eirp_dbm: 16,
        ipol: true,
        rf_chain: 0,
    }
}

#[tokio::test]
async fn acks_echo_tokens_and_push_data_becomes_events() {
    let mut server = Server::start(test_config()).await;
    let gw = TestGateway::new(eui(1), server.addr).await;
    server
        .handle
        .upsert_gateway(gw.eui, GatewayPolicy::default());

    let ack = gw.pull(0x1234).await;
    assert_eq!((ack.version, ack.token), (2, 0x1234));
    assert_eq!(
        server.next_event().await,
        GatewayEvent::Connected {
            gateway_id: gw.eui,
            addr: gw.down_addr()
        }
    );

    let frames = [uplink(gw.eui, 1), uplink(gw.eui, 2)];
    let stat = lorikeet_gateway::GatewayStats {
        gateway_id: gw.eui,
        received_at: std::time::SystemTime::UNIX_EPOCH,
        time: None,
        location: None,
        rx_received: Some(2),
        rx_ok: Some(2),
        rx_forwarded: Some(2),
        ack_ratio_pct: Some(100.0),
        downlinks_received: Some(0),
        tx_emitted: Some(0),
        temperature_c: None,
    };
    let dgram = wire::encode_push_data(2, 0xabcd, gw.eui, &frames, Some(&stat));
    let ack = gw.push(&dgram).await;
    assert_eq!(ack.token, 0xabcd);
    assert_eq!(ack.packet_type, wire::PacketType::PushAck);

    for expected in &frames {
        let got = server.next_uplink().await;
        assert_eq!(got.phy_payload, expected.phy_payload);
        assert_eq!(got.gateway_id, gw.eui);
        assert_eq!(got.tmst, 4_000_000_000);
        assert_eq!(got.frequency_hz, 868_100_000);
        assert!(
            got.received_at > std::time::SystemTime::UNIX_EPOCH,
            "stamped on receipt"
        );
    }
    let GatewayEvent::Stats(s) = server.next_event().await else {
        panic!("stats")
    };
    assert_eq!(s.rx_ok, Some(2));

    let state = server.handle.gateway(gw.eui).unwrap();
    assert_eq!(state.downlink_addr, Some(gw.down_addr()));
    assert_eq!(state.last_stats.unwrap().rx_ok, Some(2));
    assert!(state.last_seen_at.is_some());
    let c = server.handle.counters();
    assert_eq!(
        (c.datagrams_received, c.datagrams_accepted, c.acks_sent),
        (2, 2, 2)
    );
    assert_eq!(c.uplinks_forwarded, 2);
    server.shutdown().await;
}

#[tokio::test]
async fn downlinks_get_every_tx_ack_result() {
    let mut server = Server::start(test_config()).await;
    let gw = TestGateway::new(eui(2), server.addr).await;
    server.handle.upsert_gateway(
        gw.eui,
        GatewayPolicy {
            antenna_gain_dbi: Some(2.15),
        },
    );
    gw.pull(1).await;

    let outcomes = [
        TxAckOutcome::Sent {
            tx_power_warning_dbm: None,
        },
        TxAckOutcome::Sent {
            tx_power_warning_dbm: Some(12),
        },
        TxAckOutcome::Rejected(TxAckError::TooLate),
        TxAckOutcome::Rejected(TxAckError::TooEarly),
        TxAckOutcome::Rejected(TxAckError::CollisionPacket),
        TxAckOutcome::Rejected(TxAckError::CollisionBeacon),
        TxAckOutcome::Rejected(TxAckError::TxFreq),
        TxAckOutcome::Rejected(TxAckError::TxPower {
            power_dbm: Some(10),
        }),
        TxAckOutcome::Rejected(TxAckError::GpsUnlocked),
        TxAckOutcome::Rejected(TxAckError::Other("UNKNOWN".into())),
    ];
    for outcome in &outcomes {
        let handle = server.handle.clone();
        let send = tokio::spawn(async move { handle.send_downlink(downlink(eui(2))).await });
        let (header, txpk) = gw.recv_pull_resp().await;
        assert_eq!(header.version, 2);
        // powe = EIRP 16 dBm − 2.15 dBi, rounded down.
        assert_eq!(txpk.power_dbm, 13);
        assert_eq!(
            txpk.timing,
            DownlinkTiming::Delay {
                tmst: 4_294_000_000u32.wrapping_add(1_000_000)
            }
        );
        assert!(txpk.ipol);
        assert_eq!(txpk.phy_payload, downlink(eui(2)).phy_payload);
        gw.send_tx_ack(header.token, outcome).await;
        let got = tokio::time::timeout(HANG_GUARD, send)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.unwrap(), *outcome);
    }
    let c = server.handle.counters();
    assert_eq!(c.downlinks_sent, outcomes.len() as u64);
    assert_eq!(c.tx_acks_matched, outcomes.len() as u64);
    assert_eq!(
        server.handle.gateway(gw.eui).unwrap().tx_ack,
        TxAckSupport::Confirmed
    );
    server.shutdown().await;
}

#[tokio::test]
async fn concurrent_downlinks_match_tokens_and_instant_tx_acks_are_never_lost() {
    let mut server = Server::start(test_config()).await;
    let gw = TestGateway::new(eui(3), server.addr).await;
    server
        .handle
        .upsert_gateway(gw.eui, GatewayPolicy::default());
    gw.pull(1).await;

    // The gateway answers each PULL_RESP the moment it arrives, echoing the tmst
    // back (offset into the signed-byte range) as the TX_POWER value, so each caller
    // can check it got its own answer.
    const N: usize = 200;
    let answerer = tokio::spawn(async move {
        for _ in 0..N {
            let (header, txpk) = gw.recv_pull_resp().await;
            let DownlinkTiming::Delay { tmst } = txpk.timing else {
                panic!()
            };
            let outcome = TxAckOutcome::Sent {
                tx_power_warning_dbm: Some(tmst as i32 - 100),
            };
            gw.send_tx_ack(header.token, &outcome).await;
        }
        gw
    });
    let mut sends = tokio::task::JoinSet::new();
    for i in 0..N {
        let handle = server.handle.clone();
        sends.spawn(async move {
            let mut frame = downlink(eui(3));
            frame.timing = DownlinkTiming::Delay { tmst: i as u32 };
            (i, handle.send_downlink(frame).await)
        });
    }
    while let Some(r) = sends.join_next().await {
        let (i, result) = r.unwrap();
        assert_eq!(
            result.unwrap(),
            TxAckOutcome::Sent {
                tx_power_warning_dbm: Some(i as i32 - 100)
            }
        );
    }
    let _gw = answerer.await.unwrap();
    assert_eq!(
        server.handle.counters().dropped(DropReason::UnknownToken),
        0
    );
    server.shutdown().await;
}

#[tokio::test]
async fn timeouts_clean_up_and_a_silent_forwarder_is_remembered() {
    let config = GatewayConfig {
        tx_ack_timeout_ms: 50,
        tx_ack_missing_limit: 2,
        ..test_config()
    };
    let mut server = Server::start(config).await;
    let gw = TestGateway::new(eui(4), server.addr).await;
    server
        .handle
        .upsert_gateway(gw.eui, GatewayPolicy::default());
    gw.pull(1).await;

    let mut tokens = vec![];
    for _ in 0..2 {
        let err = server
            .handle
            .send_downlink(downlink(gw.eui))
            .await
            .unwrap_err();
        assert!(
            matches!(err, DownlinkError::Timeout { waited_ms: 50, .. }),
            "{err:?}"
        );
        tokens.push(gw.recv_pull_resp().await.0.token);
    }
    assert_eq!(
        server.handle.gateway(gw.eui).unwrap().tx_ack,
        TxAckSupport::Absent
    );
    // From now on the caller is not kept waiting; the gateway still gets the packet.
    assert_eq!(
        server.handle.send_downlink(downlink(gw.eui)).await.unwrap(),
        TxAckOutcome::Unacknowledged
    );
    gw.recv_pull_resp().await;

    // A TX_ACK that comes after its waiter gave up finds nobody (the waiter was
    // removed) but proves the forwarder does send TX_ACK.
    gw.send_tx_ack(
        tokens[0],
        &TxAckOutcome::Sent {
            tx_power_warning_dbm: None,
        },
    )
    .await;
    gw.pull(2).await;
    let c = server.handle.counters();
    assert_eq!(c.dropped(DropReason::UnknownToken), 1);
    assert_eq!(c.downlink_timeouts, 2);
    assert_eq!(
        server.handle.gateway(gw.eui).unwrap().tx_ack,
        TxAckSupport::Confirmed
    );
    server.shutdown().await;
}

#[tokio::test]
async fn protocol_v1_forwarders_are_acked_in_v1_and_not_waited_for() {
    let mut server = Server::start(test_config()).await;
    let gw = TestGateway::new(eui(5), server.addr).await;
    server
        .handle
        .upsert_gateway(gw.eui, GatewayPolicy::default());
    gw.send_pull_data(1, 77).await;
    let Down::PullAck(h) = gw.recv_down().await else {
        panic!("PULL_ACK")
    };
    assert_eq!((h.version, h.token), (1, 77));
    assert_eq!(
        server.handle.send_downlink(downlink(gw.eui)).await.unwrap(),
        TxAckOutcome::Unacknowledged
    );
    assert_eq!(gw.recv_pull_resp().await.0.version, 1);
    server.shutdown().await;
}

#[tokio::test]
async fn unknown_gateways_are_dropped_by_default() {
    let mut server = Server::start(test_config()).await;
    let known = TestGateway::new(eui(6), server.addr).await;
    let stranger = TestGateway::new(eui(66), server.addr).await;
    server
        .handle
        .upsert_gateway(known.eui, GatewayPolicy::default());

    stranger.send_pull_data(2, 1).await;
    stranger
        .up
        .send_to(
            &wire::encode_push_data(2, 2, stranger.eui, &[uplink(stranger.eui, 0)], None),
            server.addr,
        )
        .await
        .unwrap();
    known.pull(3).await; // everything before it has been handled
    assert!(
        stranger.down_is_empty(),
        "no PULL_ACK for an unknown gateway"
    );
    let c = server.handle.counters();
    assert_eq!(c.dropped(DropReason::UnknownGateway), 2);
    assert!(server.handle.gateway(stranger.eui).is_none());
    assert!(matches!(
        server.handle.send_downlink(downlink(stranger.eui)).await,
        Err(DownlinkError::UnknownGateway { .. })
    ));
    // Registered but silent: known, yet no path.
    server
        .handle
        .upsert_gateway(eui(67), GatewayPolicy::default());
    assert!(matches!(
        server.handle.send_downlink(downlink(eui(67))).await,
        Err(DownlinkError::NoDownlinkPath { .. })
    ));
    // Removing a gateway makes it a stranger again.
    assert!(server.handle.remove_gateway(known.eui));
    known.send_pull_data(2, 4).await;
    server
        .handle
        .upsert_gateway(stranger.eui, GatewayPolicy::default());
    stranger.pull(5).await;
    assert!(known.down_is_empty());
    assert_eq!(
        server.handle.counters().dropped(DropReason::UnknownGateway),
        3
    );
    server.shutdown().await;
}

#[tokio::test]
async fn allow_unknown_admits_new_gateways_up_to_the_limit() {
    let config = GatewayConfig {
        allow_unknown: true,
        max_unknown_gateways: 1,
        ..test_config()
    };
    let mut server = Server::start(config).await;
    let first = TestGateway::new(eui(7), server.addr).await;
    let second = TestGateway::new(eui(8), server.addr).await;
    first.pull(1).await;
    first.push_uplinks(2, &[uplink(first.eui, 7)]).await;
    assert_eq!(
        server.next_uplink().await.phy_payload,
        uplink(first.eui, 7).phy_payload
    );
    let state = server.handle.gateway(first.eui).unwrap();
    assert!(!state.known);
    second.send_pull_data(2, 3).await;
    first.pull(4).await;
    assert!(second.down_is_empty());
    assert_eq!(
        server.handle.counters().dropped(DropReason::RegistryFull),
        1
    );
    // The shell loads known gateways: `set_known_gateways` adds them without evicting
    // the admitted one.
    server
        .handle
        .set_known_gateways([(second.eui, GatewayPolicy::default())]);
    second.pull(5).await;
    assert_eq!(server.handle.gateways().len(), 2);
    server.shutdown().await;
}

#[tokio::test]
async fn a_forged_pull_data_cannot_hijack_the_downlink_path() {
    let config = GatewayConfig {
        address_takeover_silence_s: 1,
        ..test_config()
    };
    let mut server = Server::start(config).await;
    let real = TestGateway::new(eui(9), server.addr).await;
    let forger = TestGateway::new(eui(9), server.addr).await; // same EUI, other address
    server
        .handle
        .upsert_gateway(real.eui, GatewayPolicy::default());
    real.pull(1).await;
    assert!(matches!(
        server.next_event().await,
        GatewayEvent::Connected { .. }
    ));

    forger.send_pull_data(2, 2).await;
    real.pull(3).await;
    assert!(forger.down_is_empty(), "the forger gets no PULL_ACK");
    assert_eq!(
        server
            .handle
            .counters()
            .dropped(DropReason::AddressConflict),
        1
    );
    assert_eq!(
        server.handle.gateway(real.eui).unwrap().downlink_addr,
        Some(real.down_addr())
    );

    // Downlinks still go to the real gateway; a TX_ACK forged from the other
    // address (even with the right token) is refused, the real one counts.
    let handle = server.handle.clone();
    let send = tokio::spawn(async move { handle.send_downlink(downlink(eui(9))).await });
    let (header, _) = real.recv_pull_resp().await;
    forger
        .send_tx_ack(header.token, &TxAckOutcome::Rejected(TxAckError::TooLate))
        .await;
    real.send_tx_ack(
        header.token,
        &TxAckOutcome::Sent {
            tx_power_warning_dbm: None,
        },
    )
    .await;
    let got = tokio::time::timeout(HANG_GUARD, send)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        got,
        TxAckOutcome::Sent {
            tx_power_warning_dbm: None
        }
    );
    assert_eq!(
        server
            .handle
            .counters()
            .dropped(DropReason::AddressConflict),
        2
    );

    // Once the real address has been silent for the takeover time, a new address
    // (say, after a NAT rebinding) takes over.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let ack = forger.pull(4).await;
    assert_eq!(ack.token, 4);
    assert_eq!(
        server.next_event().await,
        GatewayEvent::AddressChanged {
            gateway_id: real.eui,
            from: real.down_addr(),
            to: forger.down_addr()
        }
    );
    assert_eq!(server.handle.counters().address_takeovers, 1);
    server.shutdown().await;
}

#[tokio::test]
async fn the_rate_limit_drops_and_counts_excess_datagrams() {
    let config = GatewayConfig {
        rate_limit_datagrams_per_s: 1,
        rate_limit_burst_datagrams: 3,
        ..test_config()
    };
    let mut server = Server::start(config).await;
    let busy = TestGateway::new(eui(10), server.addr).await;
    let other = TestGateway::new(eui(11), server.addr).await;
    server
        .handle
        .upsert_gateway(busy.eui, GatewayPolicy::default());
    server
        .handle
        .upsert_gateway(other.eui, GatewayPolicy::default());
    const SENT: u64 = 10;
    for i in 0..SENT {
        busy.up
            .send_to(
                &wire::encode_push_data(2, i as u16, busy.eui, &[uplink(busy.eui, 0)], None),
                server.addr,
            )
            .await
            .unwrap();
    }
    other.pull(1).await;
    let c = server.handle.counters();
    let limited = c.dropped(DropReason::RateLimited);
    // Burst 3 and 1/s: at least 5 of 10 are refused unless sending took over 2 s.
    assert!(limited >= 5, "{limited} rate-limited");
    assert_eq!(c.acks_sent, SENT - limited + 1);
    assert_eq!(c.uplinks_forwarded, SENT - limited);
    server.shutdown().await;
}

#[tokio::test]
async fn a_slow_consumer_costs_events_never_acks() {
    let config = GatewayConfig {
        uplink_queue_capacity: 4,
        ..test_config()
    };
    let mut server = Server::start(config).await;
    let gw = TestGateway::new(eui(12), server.addr).await;
    server
        .handle
        .upsert_gateway(gw.eui, GatewayPolicy::default());
    // Nobody reads events: every PUSH_DATA is still acknowledged.
    for i in 0..50u16 {
        assert_eq!(
            gw.push_uplinks(i, &[uplink(gw.eui, i as u8)]).await.token,
            i
        );
    }
    let c = server.handle.counters();
    assert_eq!(c.uplinks_forwarded, 4);
    assert_eq!(c.dropped(DropReason::QueueFull), 46);
    assert_eq!(c.dropped_total(DropUnit::Event), 46);
    // The first four are the ones kept.
    for i in 0..4u8 {
        assert_eq!(server.next_uplink().await.phy_payload[9], i);
    }
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_ends_the_loop_and_releases_waiting_downlinks() {
    let config = GatewayConfig {
        tx_ack_timeout_ms: 60_000,
        ..test_config()
    };
    let mut server = Server::start(config).await;
    let gw = TestGateway::new(eui(13), server.addr).await;
    server
        .handle
        .upsert_gateway(gw.eui, GatewayPolicy::default());
    gw.pull(1).await;
    let handle = server.handle.clone();
    let waiting = tokio::spawn(async move { handle.send_downlink(downlink(eui(13))).await });
    gw.recv_pull_resp().await; // the waiter is registered and the datagram out
    server.shutdown().await;
    let result = tokio::time::timeout(HANG_GUARD, waiting)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(result, Err(DownlinkError::Closed)), "{result:?}");
    assert!(matches!(
        server.handle.send_downlink(downlink(gw.eui)).await,
        Err(DownlinkError::Closed)
    ));
    // The event channel drains and then reports closed.
    assert!(matches!(
        server.events.recv().await,
        Some(GatewayEvent::Connected { .. })
    ));
    assert!(server.events.recv().await.is_none());
}

#[tokio::test]
async fn bad_config_is_refused_before_binding() {
    let config = GatewayConfig {
        tx_ack_timeout_ms: 0,
        ..test_config()
    };
    let err = lorikeet_gateway::bind(config).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("tx_ack_timeout_ms"));
}
