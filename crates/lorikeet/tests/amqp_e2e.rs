//! The RabbitMQ (AMQP 0-9-1) integration end to end (issue 22), against the
//! machine's RabbitMQ (guest/guest at 127.0.0.1:5672, or LORIKEET_TEST_AMQP_ADDR):
//! events published to the exchange with their routing keys, persistent, in order
//! per device; a broker outage (a forwarder in front of RabbitMQ is cut) loses
//! nothing; downlink commands from the command queue reach the device queue and a
//! bad one is rejected to the dead-letter queue. On SQLite and Postgres.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use lapin::options::{
    BasicGetOptions, BasicPublishOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use lorikeet_sim::RxMeta;
use lorikeet_storage::testing::TestDb;
use serde_json::{json, Value};
use support::proxy::Proxy;
use support::*;

const GATEWAY: u64 = 0x00aa_0000_0000_0a01;

fn rx() -> RxMeta {
    RxMeta {
        frequency_hz: 868_100_000,
        spreading_factor: 7,
        bandwidth_hz: 125_000,
        rssi_dbm: -70,
        snr_db: 8.0,
    }
}

fn broker() -> (String, SocketAddr) {
    let addr: SocketAddr = std::env::var("LORIKEET_TEST_AMQP_ADDR")
        .unwrap_or_else(|_| "127.0.0.1:5672".into())
        .parse()
        .expect("LORIKEET_TEST_AMQP_ADDR is host:port");
    (format!("amqp://guest:guest@{addr}/%2f"), addr)
}

async fn channel(url: &str) -> (Connection, Channel) {
    let conn = Connection::connect(url, ConnectionProperties::default())
        .await
        .unwrap_or_else(|e| panic!("RabbitMQ at {url} answers (the CI machine runs one): {e}"));
    let ch = conn.create_channel().await.unwrap();
    (conn, ch)
}

/// Every message waiting in `queue`: (routing key, message id, persistent, body).
async fn drain(ch: &Channel, queue: &str, into: &mut Vec<(String, String, bool, Value)>) {
    while let Some(m) = ch
        .basic_get(queue.into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
    {
        let d = m.delivery;
        let id = d
            .properties
            .message_id()
            .as_ref()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default();
        let persistent = *d.properties.delivery_mode() == Some(2);
        into.push((
            d.routing_key.as_str().to_owned(),
            id,
            persistent,
            serde_json::from_slice(&d.data).unwrap(),
        ));
    }
}

async fn wait_messages(
    ch: &Channel,
    queue: &str,
    got: &mut Vec<(String, String, bool, Value)>,
    unique: usize,
    what: &str,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        drain(ch, queue, got).await;
        let ids: BTreeSet<&String> = got.iter().map(|m| &m.1).collect();
        if ids.len() >= unique {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: {} of {unique} events arrived",
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn amqp_delivery(db: TestDb) {
    let (url, target) = broker();
    let (_conn, ch) = channel(&url).await;
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let exchange = format!("lorikeet-e2e-{tag}");
    let events = format!("events-{tag}");
    let commands = format!("commands-{tag}");
    let dead = format!("dead-{tag}");
    ch.exchange_declare(
        exchange.as_str().into(),
        ExchangeKind::Topic,
        ExchangeDeclareOptions {
            auto_delete: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap();
    for q in [&events, &dead] {
        ch.queue_declare(
            q.as_str().into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    }
    // Rejected commands go to the dead-letter queue (through the default exchange).
    let mut dlx = FieldTable::default();
    dlx.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString("".into()),
    );
    dlx.insert(
        "x-dead-letter-routing-key".into(),
        AMQPValue::LongString(dead.as_str().into()),
    );
    ch.queue_declare(
        commands.as_str().into(),
        QueueDeclareOptions::default(),
        dlx,
    )
    .await
    .unwrap();
    ch.queue_bind(
        events.as_str().into(),
        exchange.as_str().into(),
        "application.#".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();

    let proxy = Proxy::start(target).await;
    let server = start_server_with(db.url(), |c| {
        fast_retries(c);
        c.webhook.timeout_ms = 1_000;
    })
    .await;
    let api = Api::new(&server);
    let (app_id, profile_id) = abp_application(&api, "amqp", None).await;
    let path = format!("/api/v1/applications/{app_id}/integrations/amqp");

    // Settings are checked.
    assert_refused(
        &api,
        &path,
        vec![
            (
                json!({"url": "http://127.0.0.1", "exchange": "x"}),
                "amqp://",
            ),
            (
                json!({"url": "amqp://h", "exchange": "bad name"}),
                "exchange",
            ),
            (
                json!({"url": "amqp://h", "exchange": "x", "routingKey": "a.{dev}"}),
                "unknown placeholder",
            ),
            (
                json!({"url": "amqp://h", "exchange": "x", "extra": 1}),
                "unknown field",
            ),
            (json!({"url": "amqp://h"}), "exchange"),
        ],
    )
    .await;
    let via = format!("amqp://guest:guest@{}/%2f", proxy.addr);
    api.post(
        &path,
        json!({"url": via, "exchange": exchange, "commandQueue": commands}),
    )
    .await
    .expect_status(201);
    let got = api.get(&path).await.expect_status(200);
    assert_eq!(
        got["url"],
        format!("amqp://guest@{}/%2f", proxy.addr),
        "{got}"
    );
    assert_eq!(got["passwordSet"], true);
    assert!(!got.to_string().contains("guest:guest"), "{got}");
    assert_eq!(got["kind"], "amqp");
    // Replacing without the password keeps it (same host and user).
    api.post(
        &path,
        json!({"url": format!("amqp://guest@{}/%2f", proxy.addr), "exchange": exchange,
               "commandQueue": commands}),
    )
    .await
    .expect_status(200);
    assert_eq!(api.get(&path).await.expect_status(200)["passwordSet"], true);

    let mut devices = abp_devices(
        &api,
        &app_id,
        &profile_id,
        (0x0a0a_0000_0000_0000, 0x0a0a_0000),
        2,
        "d",
    )
    .await;
    let gw = online_gateway(&api, &server, GATEWAY).await;

    let mut sent = 0usize;
    sent += send_rounds(&gw, &mut devices, 0..5, &rx()).await;
    let mut msgs = Vec::new();
    wait_messages(&ch, &events, &mut msgs, sent, "before the outage").await;
    let (key, id, persistent, body) = &msgs[0];
    assert_eq!(
        key,
        &format!(
            "application.{app_id}.device.{}.event.up",
            body["deviceInfo"]["devEui"].as_str().unwrap()
        )
    );
    assert!(
        id.parse::<i64>().is_ok(),
        "message id is the event id: {id:?}"
    );
    assert!(persistent, "events are persistent messages");
    assert_eq!(body["fPort"], 2);

    // The broker is unreachable for a while; uplinks keep coming; nothing is lost.
    proxy.down();
    sent += send_rounds(&gw, &mut devices, 5..10, &rx()).await;
    wait_events(&api, devices[1].dev_eui, "up", 10).await;
    wait_outage_shown(&api, &path).await;
    proxy.up();
    wait_messages(&ch, &events, &mut msgs, sent, "after the outage").await;
    // At least once: a repeat may follow a lost confirm, but every event arrives and,
    // per device, first arrivals keep the uplinks' order.
    let rounds = rounds_by_device(msgs.iter().map(|(_, id, _, body)| (id.as_str(), body)));
    for d in &devices {
        assert_eq!(
            rounds[&d.dev_eui.to_string()],
            (0..10).collect::<Vec<u64>>(),
            "{rounds:?}"
        );
    }

    // Downlink commands from the command queue: a good one is queued for the
    // device, a bad one (no devEui) is rejected to the dead-letter queue.
    let dev = devices[0].dev_eui;
    for body in [
        json!({"fPort": 3, "data": "AQI="}),
        json!({"devEui": dev.to_string(), "fPort": 7, "data": "AQID", "confirmed": true}),
    ] {
        ch.basic_publish(
            "".into(),
            commands.as_str().into(),
            BasicPublishOptions::default(),
            body.to_string().as_bytes(),
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let q = api
            .get(&format!("/api/v1/devices/{dev}/queue"))
            .await
            .expect_status(200);
        if let Some(item) = q["items"].as_array().and_then(|a| a.first()) {
            assert_eq!(item["fPort"], 7, "{q}");
            assert_eq!(q["items"].as_array().unwrap().len(), 1, "{q}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the command is queued: {q}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut dead_letters = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while dead_letters.is_empty() {
        if let Some(m) = ch
            .basic_get(dead.as_str().into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap()
        {
            dead_letters.push(m.delivery.data);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the bad command is rejected to the dead-letter queue"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rejected: Value = serde_json::from_slice(&dead_letters[0]).unwrap();
    assert_eq!(rejected["fPort"], 3);

    // Deleting the integration stops it.
    api.delete(&path).await.expect_status(204);
    api.get(&path).await.expect_status(404);
    server.shutdown().await;
    for q in [&events, &commands, &dead] {
        let _ = ch
            .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_delivery_sqlite() {
    amqp_delivery(TestDb::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_delivery_postgres() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    amqp_delivery(db).await;
}
