//! A Kafka cluster for trying and measuring the Kafka integration without a Kafka:
//! librdkafka's mock cluster (the one the tests use) on loopback ports, with a topic
//! per event type (`lorikeet.{event}`, 4 partitions). Prints the bootstrap servers
//! and runs until Ctrl-C.
//!
//! ```sh
//! cargo run --release -p lorikeet --example kafka_mock_cluster
//! ```

use rdkafka::mocking::MockCluster;

const EVENTS: [&str; 9] = [
    "up",
    "join",
    "ack",
    "txack",
    "status",
    "log",
    "location",
    "integration",
    "alert",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let brokers: i32 = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1);
    let cluster = MockCluster::new(brokers)?;
    for event in EVENTS {
        cluster.create_topic(&format!("lorikeet.{event}"), 4, 1)?;
    }
    println!("{}", cluster.bootstrap_servers());
    // The cluster lives as long as this process.
    loop {
        std::thread::park();
    }
}
