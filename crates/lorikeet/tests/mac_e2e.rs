//! MAC commands end to end: a device's LinkCheckReq and DeviceTimeReq, sent over the
//! real Semtech UDP path, are answered in the downlink that follows, and the device's
//! answers to the network's requests are accepted. SQLite and Postgres.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lorikeet_lorawan::mac::{self as lmac, cid};
use lorikeet_lorawan::Eui64;
use lorikeet_sim::{RxMeta, SimGateway};
use lorikeet_storage::testing::TestDb;
use serde_json::json;
use support::*;

const GATEWAY: u64 = 0x00aa_bbcc_0000_0701;
const GATEWAY_2: u64 = 0x00aa_bbcc_0000_0702;
const DEV_EUI: u64 = 0x0102_0304_0506_0771;

/// GPS epoch (1980-01-06) in Unix seconds, and the leap seconds GPS is ahead by.
const GPS_EPOCH_UNIX: u64 = 315_964_800;
const GPS_LEAP_SECONDS: u64 = 18;

fn rx(snr_db: f32) -> RxMeta {
    RxMeta {
        frequency_hz: 868_300_000,
        spreading_factor: 9,
        bandwidth_hz: 125_000,
        rssi_dbm: -90,
        snr_db,
    }
}

async fn scenario(db: TestDb) {
    let server = start_server(db.url()).await;
    let api = Api::new(&server);
    let (mut dev, _app) = provision_otaa(
        &api,
        Eui64::from_u64(DEV_EUI),
        Eui64::from_u64(GATEWAY),
        "1.0.3",
        json!({"type": "none"}),
    )
    .await;
    api.post(
        "/api/v1/gateways",
        json!({"gatewayId": Eui64::from_u64(GATEWAY_2).to_string(), "name": "gw-2"}),
    )
    .await
    .expect_status(201);
    let gw = SimGateway::connect(Eui64::from_u64(GATEWAY), server.udp_addr)
        .await
        .unwrap();
    let gw2 = SimGateway::connect(Eui64::from_u64(GATEWAY_2), server.udp_addr)
        .await
        .unwrap();
    gw.pull_data(Duration::from_secs(2)).await.unwrap();
    gw2.pull_data(Duration::from_secs(2)).await.unwrap();
    join(&gw, &mut dev, &rx(5.0)).await;

    // An unconfirmed uplink carrying only MAC requests in FOpts, heard by both
    // gateways. Nothing is queued for the device, yet the answers must go out.
    dev.request_link_check();
    dev.request_device_time();
    let up = dev.uplink(10, b"m", false, 3, 1).unwrap();
    let sent_at = SystemTime::now();
    gw2.push(&up, &rx(-2.0)).await.unwrap();
    let up_tmst = gw.push(&up, &rx(4.0)).await.unwrap();

    // The best gateway (gw, SNR +4) carries the downlink, in RX1 of that uplink.
    let dl = gw
        .recv_downlink(Duration::from_secs(3))
        .await
        .unwrap()
        .expect("a downlink with the MAC answers");
    assert_eq!(dl.tmst(), Some(up_tmst.wrapping_add(1_000_000)));
    let frame = dev.handle_downlink(&dl.packet.phy_payload).unwrap();
    gw.tx_ack(dl.token, None).await.unwrap();
    assert!(
        gw2.recv_downlink(Duration::from_millis(300))
            .await
            .unwrap()
            .is_none(),
        "only one gateway transmits"
    );

    // MAC-only answers fit FOpts: no FPort, no FRMPayload.
    assert_eq!(frame.f_port, None, "{frame:?}");
    assert!(dev.mac.received.contains(&cid::LINK_CHECK));
    assert!(dev.mac.received.contains(&cid::DEVICE_TIME));
    // SF9 needs -12.5 dB; the best copy had +4 dB: 16.5 dB of margin, in whole dB.
    let lc = dev.mac.link_check.expect("a LinkCheckAns");
    assert_eq!(
        lc,
        lmac::LinkCheckAns {
            margin_db: 16,
            gw_cnt: 2
        }
    );
    // DeviceTimeAns: GPS time of the uplink's reception, within a couple of seconds
    // of when we sent it (the loopback trip takes milliseconds).
    let dt = dev.mac.device_time.expect("a DeviceTimeAns");
    let unix = sent_at.duration_since(UNIX_EPOCH).unwrap().as_secs();
    let gps_now = unix - GPS_EPOCH_UNIX + GPS_LEAP_SECONDS;
    let got = u64::from(dt.gps_time_seconds);
    assert!(
        got + 2 >= gps_now && got <= gps_now + 2,
        "DeviceTimeAns {got} s, expected about {gps_now} s"
    );

    // Answered requests are not repeated: the next uplink, with no new request and
    // nothing queued, gets no downlink.
    let up = dev.uplink(10, b"n", false, 3, 1).unwrap();
    gw.push(&up, &rx(4.0)).await.unwrap();
    assert!(
        gw.recv_downlink(Duration::from_millis(1_500))
            .await
            .unwrap()
            .is_none(),
        "no downlink without a reason"
    );

    // And the uplinks still reach the application.
    let ups = wait_events(&api, dev.dev_eui, "up", 2).await;
    assert_eq!(ups.len(), 2);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_check_and_device_time_sqlite() {
    scenario(TestDb::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_check_and_device_time_postgres() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    scenario(db).await;
}
