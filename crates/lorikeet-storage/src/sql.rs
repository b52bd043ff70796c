//! Values both backends share: the timestamp column type, conversions of stored
//! bytes and integers with corruption errors, and latency timing.
//!
//! The schemas differ only in column types; the [`Ts`] wrapper hides the difference
//! for timestamps.

use std::time::Instant;

use chrono::{DateTime, Utc};
use lorikeet_lorawan::{DevAddr, Eui64};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::{Database, Decode, Encode, Postgres, Sqlite, Type};

use crate::StoreError;

/// A timestamp column: `TIMESTAMPTZ` on Postgres, `INTEGER` microseconds since the
/// Unix epoch on SQLite (sqlx's own SQLite encoding is variable-width text, which
/// does not compare correctly in SQL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ts(pub DateTime<Utc>);

impl Type<Sqlite> for Ts {
    fn type_info() -> <Sqlite as Database>::TypeInfo {
        <i64 as Type<Sqlite>>::type_info()
    }
    fn compatible(ty: &<Sqlite as Database>::TypeInfo) -> bool {
        <i64 as Type<Sqlite>>::compatible(ty)
    }
}

impl<'q> Encode<'q, Sqlite> for Ts {
    fn encode_by_ref(
        &self,
        buf: &mut <Sqlite as Database>::ArgumentBuffer<'q>,
    ) -> Result<IsNull, BoxDynError> {
        <i64 as Encode<'q, Sqlite>>::encode(self.0.timestamp_micros(), buf)
    }
}

impl<'r> Decode<'r, Sqlite> for Ts {
    fn decode(value: <Sqlite as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
        let micros = <i64 as Decode<'r, Sqlite>>::decode(value)?;
        DateTime::from_timestamp_micros(micros)
            .map(Ts)
            .ok_or_else(|| format!("timestamp {micros} µs is out of range").into())
    }
}

impl Type<Postgres> for Ts {
    fn type_info() -> <Postgres as Database>::TypeInfo {
        <DateTime<Utc> as Type<Postgres>>::type_info()
    }
    fn compatible(ty: &<Postgres as Database>::TypeInfo) -> bool {
        <DateTime<Utc> as Type<Postgres>>::compatible(ty)
    }
}

impl<'q> Encode<'q, Postgres> for Ts {
    fn encode_by_ref(
        &self,
        buf: &mut <Postgres as Database>::ArgumentBuffer<'q>,
    ) -> Result<IsNull, BoxDynError> {
        <DateTime<Utc> as Encode<'q, Postgres>>::encode_by_ref(&self.0, buf)
    }
}

impl<'r> Decode<'r, Postgres> for Ts {
    fn decode(value: <Postgres as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
        <DateTime<Utc> as Decode<'r, Postgres>>::decode(value).map(Ts)
    }
}

/// `next_attempt_at` of an idle outbox chain (nothing to deliver): 9999-12-31.
pub(crate) fn idle() -> Ts {
    Ts(DateTime::from_timestamp(253_402_214_400, 0).unwrap_or(DateTime::<Utc>::MAX_UTC))
}

/// `Some(Ts)` for an optional timestamp.
pub(crate) fn ts_opt(t: Option<DateTime<Utc>>) -> Option<Ts> {
    t.map(Ts)
}

fn corrupt(table: &'static str, column: &'static str, detail: String) -> StoreError {
    StoreError::Corrupt {
        table,
        column,
        detail,
    }
}

/// Bytes → EUI-64.
pub(crate) fn eui(
    v: Vec<u8>,
    table: &'static str,
    column: &'static str,
) -> Result<Eui64, StoreError> {
    <[u8; 8]>::try_from(v.as_slice())
        .map(Eui64)
        .map_err(|_| corrupt(table, column, format!("{} bytes, expected 8", v.len())))
}

/// Bytes → DevAddr.
pub(crate) fn dev_addr(
    v: Vec<u8>,
    table: &'static str,
    column: &'static str,
) -> Result<DevAddr, StoreError> {
    <[u8; 4]>::try_from(v.as_slice())
        .map(DevAddr)
        .map_err(|_| corrupt(table, column, format!("{} bytes, expected 4", v.len())))
}

/// Integer column → a narrower unsigned type.
pub(crate) fn int<T: TryFrom<i64>>(
    v: i64,
    table: &'static str,
    column: &'static str,
) -> Result<T, StoreError> {
    T::try_from(v).map_err(|_| {
        corrupt(
            table,
            column,
            format!("{v} is out of range for {}", std::any::type_name::<T>()),
        )
    })
}

/// A known string value (codec type, class, event kind...).
pub(crate) fn known<T>(
    v: &str,
    parse: impl FnOnce(&str) -> Option<T>,
    table: &'static str,
    column: &'static str,
) -> Result<T, StoreError> {
    parse(v).ok_or_else(|| corrupt(table, column, format!("unknown value {v:?}")))
}

/// A u64 row count from an i64 `COUNT(*)` or `rows_affected`.
pub(crate) fn count(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// Records the latency of one storage operation as
/// `lorikeet_db_query_duration_seconds{backend, op}` when dropped.
#[derive(Debug)]
pub(crate) struct OpTimer {
    backend: &'static str,
    op: &'static str,
    start: Instant,
}

impl Drop for OpTimer {
    fn drop(&mut self) {
        metrics::histogram!(
            "lorikeet_db_query_duration_seconds",
            "backend" => self.backend,
            "op" => self.op
        )
        .record(self.start.elapsed().as_secs_f64());
    }
}

/// Registers the help text of the storage metrics (call once after installing the
/// recorder).
pub fn describe_metrics() {
    metrics::describe_histogram!(
        "lorikeet_db_query_duration_seconds",
        metrics::Unit::Seconds,
        "Latency of storage operations, by backend and operation (op=apply is one batched transaction)"
    );
}

/// Starts an [`OpTimer`].
pub(crate) fn timer(backend: &'static str, op: &'static str) -> OpTimer {
    OpTimer {
        backend,
        op,
        start: Instant::now(),
    }
}
