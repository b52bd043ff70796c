//! Downlink scheduling per gateway (issue 19): time on air, the radio's plan and
//! duty-cycle budgets, so collisions and regulatory overruns are planned away rather than
//! discovered through `COLLISION_PACKET` or not at all.
//!
//! Pure like the rest of the core: every function takes `now` (an [`std::time::Instant`]
//! from the caller) and does no I/O.
//!
//! - [`airtime`]: LoRa and FSK time on air.
//! - [`gateway`]: one gateway's planned transmissions on its concentrator clock.
//! - [`duty`]: per-gateway, per-sub-band sliding-window duty-cycle budgets.

pub mod airtime;
pub mod duty;
pub mod gateway;

pub use airtime::{
    fsk_time_on_air, lora_time_on_air, time_on_air, AirtimeError, FskParams, LoraParams,
};
pub use duty::{DutyCycle, DutySubBand, SubBandId, DEFAULT_WINDOW};
pub use gateway::{ClockCheck, Conflict, GatewaySchedule, GwTime, Planned, DEFAULT_MIN_GAP};
