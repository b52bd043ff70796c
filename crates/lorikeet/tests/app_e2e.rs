//! The application side end to end: payload codecs on uplinks and downlinks through a
//! running server (real UDP, HTTP, SQLite and Postgres).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use base64::Engine as _;
use lorikeet_lorawan::Eui64;
use lorikeet_sim::{RxMeta, SimGateway};
use lorikeet_storage::testing::TestDb;
use serde_json::json;
use support::*;

fn rx() -> RxMeta {
    RxMeta {
        frequency_hz: 868_300_000,
        spreading_factor: 9,
        bandwidth_hz: 125_000,
        rssi_dbm: -90,
        snr_db: 3.0,
    }
}

const BROKEN_JS: &str = r#"
function decodeUplink(input) {
  if (input.bytes[0] === 0xff) { throw new Error("unsupported frame type " + input.bytes[0]); }
  return { data: { first: input.bytes[0], port: input.fPort } };
}
"#;

async fn codecs(db: TestDb) {
    let server = start_server(db.url()).await;
    let api = Api::new(&server);
    let gw_id = Eui64::from_u64(0xaa00_0000_0000_0010);
    let (mut lpp, _) = provision_otaa(
        &api,
        Eui64::from_u64(0x0200_0000_0000_0001),
        gw_id,
        "1.0.3",
        json!({"type": "cayenne_lpp"}),
    )
    .await;
    let (mut js, _) = provision_otaa(
        &api,
        Eui64::from_u64(0x0200_0000_0000_0002),
        gw_id,
        "1.0.3",
        json!({"type": "javascript", "script": BROKEN_JS}),
    )
    .await;
    let gw = SimGateway::connect(gw_id, server.udp_addr).await.unwrap();
    gw.pull_data(Duration::from_secs(3)).await.unwrap();
    join(&gw, &mut lpp, &rx()).await;
    join(&gw, &mut js, &rx()).await;

    // Cayenne LPP: channel 1 temperature 27.2 °C, channel 2 humidity 64 %.
    let up = lpp
        .uplink(1, &[0x01, 0x67, 0x01, 0x10, 0x02, 0x68, 0x80], false, 3, 1)
        .unwrap();
    gw.push(&up, &rx()).await.unwrap();
    let ups = wait_events(&api, lpp.dev_eui, "up", 1).await;
    assert_eq!(ups[0]["object"]["temperatureSensor"]["1"], json!(27.2));
    assert_eq!(ups[0]["object"]["humiditySensor"]["2"].as_f64(), Some(64.0));

    // JavaScript: a good frame decodes; a frame the script throws on is still
    // delivered (data, no object) with a log event UPLINK_CODEC.
    gw.push(&js.uplink(7, &[0x05, 0x06], false, 3, 1).unwrap(), &rx())
        .await
        .unwrap();
    gw.push(&js.uplink(7, &[0xff], false, 3, 1).unwrap(), &rx())
        .await
        .unwrap();
    let ups = wait_events(&api, js.dev_eui, "up", 2).await;
    assert_eq!(ups[0]["object"], json!({"first": 5, "port": 7}));
    assert!(ups[1].get("object").is_none(), "{}", ups[1]);
    assert_eq!(
        ups[1]["data"],
        base64::engine::general_purpose::STANDARD.encode([0xff])
    );
    let logs = wait_events(&api, js.dev_eui, "log", 1).await;
    assert_eq!(logs[0]["code"], "UPLINK_CODEC");
    assert_eq!(logs[0]["level"], "ERROR");
    assert!(
        logs[0]["description"]
            .as_str()
            .unwrap()
            .contains("unsupported frame type 255"),
        "{}",
        logs[0]
    );

    // A downlink queued as an object is encoded with the profile's codec.
    api.post(
        &format!("/api/v1/devices/{}/queue", lpp.dev_eui),
        json!({"fPort": 3, "object": {"digitalOutput": {"4": 1}}, "confirmed": false}),
    )
    .await
    .expect_status(201);
    tokio::time::sleep(Duration::from_millis(300)).await;
    gw.push(
        &lpp.uplink(1, &[0x01, 0x67, 0x00, 0x10], false, 3, 1)
            .unwrap(),
        &rx(),
    )
    .await
    .unwrap();
    let dl = gw
        .recv_downlink(Duration::from_secs(2))
        .await
        .unwrap()
        .expect("the encoded downlink");
    let frame = lpp.handle_downlink(&dl.packet.phy_payload).unwrap();
    assert_eq!(frame.f_port, Some(3));
    assert_eq!(
        frame.frm_payload,
        vec![0x04, 0x01, 0x01],
        "LPP digital output, channel 4, value 1"
    );
    gw.tx_ack(dl.token, None).await.unwrap();

    // An object the codec cannot encode is refused when queued, with the codec's
    // message, and nothing is left in the queue.
    let refused = api
        .post(
            &format!("/api/v1/devices/{}/queue", lpp.dev_eui),
            json!({"fPort": 3, "object": {"noSuchLppType": {"1": 2}}}),
        )
        .await
        .expect_status(400);
    let message = refused["error"].as_str().unwrap();
    assert!(message.contains("codec cannot encode"), "{message}");
    assert!(message.contains("noSuchLppType"), "{message}");
    let q = api
        .get(&format!("/api/v1/devices/{}/queue", lpp.dev_eui))
        .await
        .expect_status(200);
    assert!(
        !q["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["object"].get("noSuchLppType").is_some()),
        "{q}"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codecs_sqlite() {
    codecs(TestDb::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codecs_postgres() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    codecs(db).await;
}
