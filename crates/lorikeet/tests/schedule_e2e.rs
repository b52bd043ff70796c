//! The downlink scheduler over the real Semtech UDP protocol (issue 19): confirmed
//! uplinks of several devices reach a gateway at the same instant; the server never
//! hands one gateway two transmissions that overlap in time, and spreads the ACKs
//! over the windows and gateways that are free.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use lorikeet_lorawan::crypto::SessionKeys;
use lorikeet_lorawan::{Aes128Key, DevAddr, Eui64};
use lorikeet_sim::{ReceivedDownlink, RxMeta, SimDevice, SimGateway};
use lorikeet_storage::testing::TestDb;
use serde_json::json;
use support::*;

fn rx(snr_db: f32) -> RxMeta {
    RxMeta {
        frequency_hz: 868_100_000,
        spreading_factor: 7,
        bandwidth_hz: 125_000,
        rssi_dbm: -70,
        snr_db,
    }
}

async fn gateway(api: &Api, udp: std::net::SocketAddr, n: u64) -> SimGateway {
    let id = Eui64::from_u64(0x00aa_bbcc_0000_1900 | n);
    api.post(
        "/api/v1/gateways",
        json!({"gatewayId": id.to_string(), "name": format!("gw-{n}")}),
    )
    .await
    .expect_status(201);
    let gw = SimGateway::connect(id, udp).await.unwrap();
    gw.pull_data(Duration::from_secs(2))
        .await
        .expect("PULL_ACK");
    gw
}

/// Three ABP 1.0.3 devices through the API.
async fn devices(api: &Api) -> Vec<SimDevice> {
    let (app, profile) = abp_application(api, "sched", None).await;
    let mut out = Vec::new();
    for n in 1..=3u8 {
        let dev_eui = Eui64::from_u64(0x0019_0000_0000_0000 | u64::from(n));
        api.post(
            "/api/v1/devices",
            json!({
                "devEui": dev_eui.to_string(), "joinEui": "0000000000000000",
                "name": format!("d{n}"), "applicationId": app, "deviceProfileId": profile,
            }),
        )
        .await
        .expect_status(201);
        let dev_addr = DevAddr::from_u32(0x0019_0000 | u32::from(n));
        let keys = SessionKeys::from_1_0(
            Aes128Key::from_bytes([n; 16]),
            Aes128Key::from_bytes([0x40 | n; 16]),
        );
        api.post(
            &format!("/api/v1/devices/{dev_eui}/activate"),
            json!({
                "devAddr": dev_addr.to_string(),
                "appSKey": keys.app_s_key.expose_hex(),
                "nwkSKey": keys.f_nwk_s_int_key.expose_hex(),
            }),
        )
        .await
        .expect_status(200);
        out.push(SimDevice::abp(dev_eui, dev_addr, keys, false, 0));
    }
    out
}

/// Every downlink `gw` gets within `wait`, each answered with a TX_ACK.
async fn downlinks(gw: &SimGateway, wait: Duration) -> Vec<ReceivedDownlink> {
    let mut got = Vec::new();
    while let Some(dl) = gw.recv_downlink(wait).await.unwrap() {
        gw.tx_ack(dl.token, None).await.unwrap();
        got.push(dl);
    }
    got
}

/// Asserts no two frames overlap on the gateway: each starts after the previous
/// one's time on air plus the forwarder's minimum gap.
fn assert_apart(dls: &[ReceivedDownlink]) {
    let mut starts: Vec<(u32, u64)> = dls
        .iter()
        .map(|d| {
            let modulation = match d.packet.modulation {
                lorikeet_gateway::Modulation::Lora {
                    spreading_factor,
                    bandwidth_hz,
                    ..
                } => lorikeet_region::Modulation::Lora {
                    spreading_factor,
                    bandwidth_hz,
                },
                ref other => panic!("unexpected modulation {other:?}"),
            };
            let air = lorikeet_ns::schedule::time_on_air(
                modulation,
                5,
                d.packet.phy_payload.len(),
                false,
            )
            .unwrap();
            (
                d.tmst().expect("a timed Class A frame"),
                air.as_micros() as u64,
            )
        })
        .collect();
    starts.sort();
    for w in starts.windows(2) {
        let ((t1, air1), (t2, _)) = (w[0], w[1]);
        let gap = lorikeet_ns::schedule::DEFAULT_MIN_GAP.as_micros() as u64;
        assert!(
            u64::from(t2.wrapping_sub(t1)) >= air1 + gap,
            "frames at {t1} and {t2} overlap (airtime {air1} µs)"
        );
    }
}

#[tokio::test]
async fn simultaneous_confirmed_uplinks_get_non_overlapping_acks() {
    let db = TestDb::sqlite().await;
    let server = start_server(db.url()).await;
    let api = Api::new(&server);
    let mut devs = devices(&api).await;
    let gw = gateway(&api, server.udp_addr, 1).await;

    // One gateway: the three receptions in one PUSH_DATA, at one concentrator time.
    let tmst = gw.tmst_now();
    let rxpks: Vec<String> = devs
        .iter_mut()
        .map(|d| gw.rxpk(&d.uplink(1, b"c", true, 5, 0).unwrap(), &rx(8.0), tmst))
        .collect();
    gw.push_rxpks(&rxpks).await.unwrap();
    let got = downlinks(&gw, Duration::from_millis(1500)).await;
    assert_eq!(
        got.len(),
        2,
        "RX1 and RX2 of one radio; the third has no free window"
    );
    assert_apart(&got);
    let mut delays: Vec<u32> = got
        .iter()
        .map(|d| d.tmst().unwrap().wrapping_sub(tmst))
        .collect();
    delays.sort();
    assert_eq!(delays, vec![1_000_000, 2_000_000], "RX1 and RX2");

    // Two gateways hear the next three: the third ACK goes through the second one.
    let gw2 = gateway(&api, server.udp_addr, 2).await;
    let (t1, t2) = (gw.tmst_now(), gw2.tmst_now());
    let frames: Vec<Vec<u8>> = devs
        .iter_mut()
        .map(|d| d.uplink(1, b"c", true, 5, 0).unwrap())
        .collect();
    let on1: Vec<String> = frames.iter().map(|f| gw.rxpk(f, &rx(9.0), t1)).collect();
    let on2: Vec<String> = frames.iter().map(|f| gw2.rxpk(f, &rx(2.0), t2)).collect();
    gw.push_rxpks(&on1).await.unwrap();
    gw2.push_rxpks(&on2).await.unwrap();
    let (a, b) = tokio::join!(
        downlinks(&gw, Duration::from_millis(1500)),
        downlinks(&gw2, Duration::from_millis(1500))
    );
    // How they split depends on what the first gateway still has planned (the first
    // round's RX2 frame, about 1.2 s on air at SF12, may cover this round's RX1).
    assert_eq!(
        a.len() + b.len(),
        3,
        "every ACK has a window: {} + {}",
        a.len(),
        b.len()
    );
    assert!(
        !a.is_empty() && !b.is_empty(),
        "ACKs spread over both gateways"
    );
    let mut first_gateway = got;
    first_gateway.extend(a);
    assert_apart(&first_gateway);
    assert_apart(&b);
    server.shutdown().await;
}

#[tokio::test]
async fn a_collision_answer_gets_the_frame_again_in_another_slot_and_is_counted_per_gateway() {
    // The release-style binary, so its /metrics is the real exporter.
    let dir = binary::fresh_dir("schedule-collision");
    let served = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || {
            binary::serve(&dir, &[("LORIKEET_API_ADMIN_TOKEN", ADMIN_TOKEN)])
        })
        .await
        .unwrap()
    };
    let api = Api::at(served.base());
    let mut devs = devices(&api).await;
    let gw = gateway(&api, served.udp_addr, 3).await;

    let tmst = gw.tmst_now();
    let up = devs[0].uplink(1, b"c", true, 5, 0).unwrap();
    gw.push_rxpks(&[gw.rxpk(&up, &rx(8.0), tmst)])
        .await
        .unwrap();
    let first = gw
        .recv_downlink(Duration::from_millis(1500))
        .await
        .unwrap()
        .expect("the ACK in RX1");
    assert_eq!(first.tmst().unwrap().wrapping_sub(tmst), 1_000_000);
    // Something we did not plan is on air then (another network server, a beacon).
    gw.tx_ack(first.token, Some("COLLISION_PACKET"))
        .await
        .unwrap();
    let retry = gw
        .recv_downlink(Duration::from_millis(1500))
        .await
        .unwrap()
        .expect("the frame again, in another slot");
    assert_eq!(retry.tmst().unwrap().wrapping_sub(tmst), 2_000_000, "RX2");
    assert_eq!(
        retry.packet.phy_payload.len(),
        first.packet.phy_payload.len()
    );
    gw.tx_ack(retry.token, None).await.unwrap();

    // Per-gateway counters reach /metrics (exported every few seconds).
    let gateway_id = gw.id.to_string();
    let base = served.base();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let text = metrics::scrape(&base).await.unwrap_or_default();
        let refused = metrics::sum(
            &text,
            "lorikeet_gateway_downlinks_refused_total",
            &[
                ("gateway", gateway_id.as_str()),
                ("by", "gateway"),
                ("reason", "COLLISION_PACKET"),
            ],
        );
        let planned = metrics::sum(
            &text,
            "lorikeet_gateway_downlinks_planned_total",
            &[("gateway", gateway_id.as_str())],
        );
        let sent = metrics::sum(
            &text,
            "lorikeet_gateway_downlinks_sent_total",
            &[("gateway", gateway_id.as_str())],
        );
        if refused == 1.0 && planned == 2.0 && sent == 1.0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "per-gateway metrics: refused {refused}, planned {planned}, sent {sent}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    served.stop();
    binary::remove_dir(&dir);
}
