//! Simulated gateways and devices over the real Semtech UDP protocol: used by the
//! end-to-end tests and by `lorikeet sim`.

pub mod device;
pub mod gateway;

pub use device::{SimDevice, SimError, SimSession};
pub use gateway::{ReceivedDownlink, RxMeta, SimGateway};
