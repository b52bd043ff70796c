//! The Kafka integration end to end (issue 22), against librdkafka's mock cluster
//! (in this process, on loopback ports): events produced to the topic template,
//! keyed by DevEUI (one device in one partition, in order), with the `eventId`
//! header; every broker down for several seconds loses nothing. On SQLite and
//! Postgres.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use lorikeet_sim::RxMeta;
use lorikeet_storage::testing::TestDb;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::mocking::MockCluster;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{json, Value};
use support::*;

const GATEWAY: u64 = 0x00aa_0000_0000_0b01;
const PARTITIONS: i32 = 4;

fn rx() -> RxMeta {
    RxMeta {
        frequency_hz: 868_100_000,
        spreading_factor: 7,
        bandwidth_hz: 125_000,
        rssi_dbm: -70,
        snr_db: 8.0,
    }
}

/// One produced record: (partition, key, eventId header, body).
type Record = (i32, String, String, Value);

/// Reads what the topic holds (from the start of every partition) into `got`.
fn poll_all(consumer: &BaseConsumer, got: &mut Vec<Record>) {
    while let Some(r) = consumer.poll(Duration::from_millis(100)) {
        // Transport errors come and go (the outage); the consumer reconnects.
        let Ok(m) = r else { continue };
        let key = String::from_utf8(m.key().unwrap_or_default().to_vec()).unwrap();
        let id = m
            .headers()
            .and_then(|h| h.iter().find(|h| h.key == "eventId"))
            .and_then(|h| h.value)
            .map(|v| String::from_utf8(v.to_vec()).unwrap())
            .unwrap_or_default();
        got.push((
            m.partition(),
            key,
            id,
            serde_json::from_slice(m.payload().unwrap()).unwrap(),
        ));
    }
}

async fn wait_records(consumer: &BaseConsumer, got: &mut Vec<Record>, unique: usize, what: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        tokio::task::block_in_place(|| poll_all(consumer, got));
        let ids: BTreeSet<&String> = got.iter().map(|r| &r.2).collect();
        if ids.len() >= unique {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: {} of {unique} events arrived",
            ids.len()
        );
    }
}

async fn kafka_delivery(db: TestDb) {
    let cluster = MockCluster::new(1).unwrap();
    // Every event type's topic exists (a cluster without auto-creation would fail
    // the others' deliveries); the test reads `up`.
    for event in [
        "up",
        "join",
        "ack",
        "txack",
        "status",
        "log",
        "location",
        "integration",
        "alert",
    ] {
        cluster
            .create_topic(&format!("lorikeet-events-{event}"), PARTITIONS, 1)
            .unwrap();
    }
    let topic = "lorikeet-events-up";
    let bootstrap = cluster.bootstrap_servers();
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", "e2e")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();

    let server = start_server_with(db.url(), |c| {
        fast_retries(c);
        c.webhook.timeout_ms = 2_000;
    })
    .await;
    let api = Api::new(&server);
    let (app_id, profile_id) = abp_application(&api, "kafka", None).await;
    let path = format!("/api/v1/applications/{app_id}/integrations/kafka");

    // Settings are checked.
    assert_refused(
        &api,
        &path,
        vec![
            (json!({"brokers": [], "topic": "t"}), "brokers"),
            (json!({"brokers": ["k1"], "topic": "t"}), "host:port"),
            (
                json!({"brokers": ["k1:9092"], "topic": "a/b"}),
                "not allowed",
            ),
            (
                json!({"brokers": ["k1:9092"], "topic": "t.{dev}"}),
                "unknown placeholder",
            ),
            (
                json!({"brokers": ["k1:9092"], "topic": "t",
                   "sasl": {"mechanism": "GSSAPI", "username": "u", "password": "p"}}),
                "sasl.mechanism",
            ),
            (json!({"brokers": ["k1:9092"]}), "topic"),
        ],
    )
    .await;
    let brokers: Vec<&str> = bootstrap.split(',').collect();
    api.post(
        &path,
        json!({"brokers": brokers, "topic": "lorikeet-events-{event}"}),
    )
    .await
    .expect_status(201);
    let got = api.get(&path).await.expect_status(200);
    assert_eq!(got["kind"], "kafka");
    assert_eq!(got["topic"], "lorikeet-events-{event}");
    assert_eq!(got["tls"], false);

    let mut devices = abp_devices(
        &api,
        &app_id,
        &profile_id,
        (0x0b0b_0000_0000_0000, 0x0b0b_0000),
        2,
        "d",
    )
    .await;
    let gw = online_gateway(&api, &server, GATEWAY).await;

    let mut sent = 0usize;
    sent += send_rounds(&gw, &mut devices, 0..5, &rx()).await;
    let mut records = Vec::new();
    wait_records(&consumer, &mut records, sent, "before the outage").await;
    let (_, key, id, body) = &records[0];
    assert_eq!(
        key,
        body["deviceInfo"]["devEui"].as_str().unwrap(),
        "keyed by DevEUI"
    );
    assert!(
        id.parse::<i64>().is_ok(),
        "eventId header is the event id: {id:?}"
    );
    assert_eq!(body["fPort"], 2);

    // Every broker is down for a while; uplinks keep coming; nothing is lost.
    cluster.broker_down(-1).unwrap();
    sent += send_rounds(&gw, &mut devices, 5..10, &rx()).await;
    wait_events(&api, devices[1].dev_eui, "up", 10).await;
    wait_outage_shown(&api, &path).await;
    cluster.broker_up(-1).unwrap();
    wait_records(&consumer, &mut records, sent, "after the outage").await;

    // One device, one partition; per device, first arrivals keep the uplinks' order.
    let mut partitions: BTreeMap<&str, BTreeSet<i32>> = BTreeMap::new();
    for (partition, key, _, _) in &records {
        partitions.entry(key).or_default().insert(*partition);
    }
    let rounds = rounds_by_device(records.iter().map(|(_, _, id, body)| (id.as_str(), body)));
    for d in &devices {
        let k = d.dev_eui.to_string();
        assert_eq!(partitions[k.as_str()].len(), 1, "{partitions:?}");
        assert_eq!(rounds[&k], (0..10).collect::<Vec<u64>>(), "{rounds:?}");
    }

    api.delete(&path).await.expect_status(204);
    api.get(&path).await.expect_status(404);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_delivery_sqlite() {
    kafka_delivery(TestDb::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_delivery_postgres() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    kafka_delivery(db).await;
}
