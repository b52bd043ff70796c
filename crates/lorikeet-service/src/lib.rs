//! Operations that several entry points share: the REST API and the command paths of
//! the integrations (MQTT today; AMQP, Kafka and NATS later) all call these, so a
//! limit or a validation rule lives in exactly one place.

pub mod downlink;
pub mod integration;
pub mod target;

pub use downlink::{
    codec_config, enqueue, DownlinkRequest, EnqueueError, MAX_DOWNLINK_PAYLOAD, MAX_QUEUE_ITEMS,
};
