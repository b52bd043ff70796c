//! One SQL statement with its arguments ([`Stmt`]) and the rows it returns
//! ([`Row`]), for either backend.
//!
//! Both schemas use the same table and column names, and sqlx accepts `$N`
//! placeholders on SQLite too, so most SQL text serves both backends as it is. A
//! `Stmt` keeps its arguments until it runs and then encodes them for the backend
//! it runs on; a `Row` decodes a column of either backend. Arguments and columns are
//! limited to types both backends know ([`Value`], [`Column`]): a type one of them
//! lacks is a compile error at the `bind` or `get`, not a failure at run time.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use lorikeet_lorawan::{Aes128Key, DevAddr, Eui64};
use serde::de::DeserializeOwned;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::types::Json;
use sqlx::{Arguments, Decode, Encode, Postgres, Row as _, Sqlite, Type};

use crate::kek::{Context, Keyring};
use crate::sql::{self, Ts};
use crate::StoreError;

/// A value both backends can encode as a statement argument. Timestamps go in as
/// [`Ts`], JSON as [`Json`], EUIs, DevAddrs and keys as bytes.
pub(crate) trait Value<'q>:
    'q + Send + Encode<'q, Postgres> + Type<Postgres> + Encode<'q, Sqlite> + Type<Sqlite>
{
}

impl<'q, T> Value<'q> for T where
    T: 'q + Send + Encode<'q, Postgres> + Type<Postgres> + Encode<'q, Sqlite> + Type<Sqlite>
{
}

/// A bound argument, encoded once the backend is known.
trait Bind<'q>: Send {
    fn postgres(self: Box<Self>, args: &mut PgArguments) -> Result<(), BoxDynError>;
    fn sqlite(self: Box<Self>, args: &mut SqliteArguments<'q>) -> Result<(), BoxDynError>;
}

impl<'q, T: Value<'q>> Bind<'q> for T {
    fn postgres(self: Box<Self>, args: &mut PgArguments) -> Result<(), BoxDynError> {
        args.add(*self)
    }
    fn sqlite(self: Box<Self>, args: &mut SqliteArguments<'q>) -> Result<(), BoxDynError> {
        args.add(*self)
    }
}

/// One SQL statement and its arguments (`$1`, `$2`, … in the order of the `bind`s).
pub(crate) struct Stmt<'q> {
    sql: Cow<'q, str>,
    args: Vec<Box<dyn Bind<'q> + 'q>>,
}

impl<'q> Stmt<'q> {
    /// A statement with this text.
    pub(crate) fn new(sql: impl Into<Cow<'q, str>>) -> Self {
        Stmt {
            sql: sql.into(),
            args: Vec::new(),
        }
    }

    /// `SELECT {columns} {rest}`: the entity modules keep their column list in one
    /// constant beside the function that decodes it.
    pub(crate) fn select(columns: &str, rest: &str) -> Self {
        Stmt::new(format!("SELECT {columns} {rest}"))
    }

    /// Appends an argument.
    pub(crate) fn bind(mut self, value: impl Value<'q>) -> Self {
        self.args.push(Box::new(value));
        self
    }

    /// The text and the arguments encoded for Postgres.
    pub(crate) fn postgres(self) -> Result<(Cow<'q, str>, PgArguments), sqlx::Error> {
        let mut args = PgArguments::default();
        for a in self.args {
            a.postgres(&mut args).map_err(sqlx::Error::Encode)?;
        }
        Ok((self.sql, args))
    }

    /// The text and the arguments encoded for SQLite (see [`positional`]).
    pub(crate) fn sqlite(self) -> Result<(Cow<'q, str>, SqliteArguments<'q>), sqlx::Error> {
        let mut args = SqliteArguments::default();
        for a in self.args {
            a.sqlite(&mut args).map_err(sqlx::Error::Encode)?;
        }
        Ok((positional(self.sql), args))
    }
}

/// `sql` with its placeholders written `?` when they are `$1`, `$2`, … `$n`, each
/// once and in that order (outside quotes), which means the same. SQLite takes
/// `$N` for a *named* parameter: preparing looks each up among those already seen,
/// and sqlx asks the name of every one when binding, each a linear search, so a
/// statement with thousands of arguments (a batched insert of 1,000 rows) costs
/// quadratic time before it runs. A `?` is only a position. Other statements
/// (a placeholder used twice) are left as they are.
fn positional(sql: Cow<'_, str>) -> Cow<'_, str> {
    if !sql.contains('$') {
        return sql;
    }
    let mut out = String::with_capacity(sql.len());
    let mut quote: Option<u8> = None;
    let mut expected: u64 = 1;
    let bytes = sql.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == b'\'' || c == b'"' => quote = Some(c),
            None if c == b'$' => {
                let digits = bytes[i + 1..]
                    .iter()
                    .take_while(|b| b.is_ascii_digit())
                    .count();
                if digits > 0 {
                    let n: Option<u64> = sql[i + 1..i + 1 + digits].parse().ok();
                    if n != Some(expected) {
                        return sql;
                    }
                    expected += 1;
                    out.push('?');
                    i += 1 + digits;
                    continue;
                }
            }
            None => {}
        }
        // Copy up to the next byte that matters; multi-byte characters pass whole.
        let next = bytes[i + 1..]
            .iter()
            .position(|b| matches!(b, b'\'' | b'"' | b'$'))
            .map_or(bytes.len(), |p| i + 1 + p);
        out.push_str(&sql[i..next]);
        i = next;
    }
    Cow::Owned(out)
}

/// A column type both backends can decode.
pub(crate) trait Column:
    for<'r> Decode<'r, Postgres> + Type<Postgres> + for<'r> Decode<'r, Sqlite> + Type<Sqlite>
{
}

impl<T> Column for T where
    T: for<'r> Decode<'r, Postgres> + Type<Postgres> + for<'r> Decode<'r, Sqlite> + Type<Sqlite>
{
}

/// A result row of either backend, with typed getters. The getters that take a
/// table name turn a value Lorikeet cannot have written (a key of the wrong length,
/// an unknown enum string, an out-of-range counter) into [`StoreError::Corrupt`].
pub(crate) enum Row {
    /// From Postgres.
    Postgres(PgRow),
    /// From SQLite.
    Sqlite(SqliteRow),
}

impl Row {
    /// The column as `T`.
    pub(crate) fn get<T: Column>(&self, column: &str) -> Result<T, sqlx::Error> {
        match self {
            Row::Postgres(r) => r.try_get(column),
            Row::Sqlite(r) => r.try_get(column),
        }
    }

    /// A timestamp column.
    pub(crate) fn ts(&self, column: &str) -> Result<DateTime<Utc>, sqlx::Error> {
        Ok(self.get::<Ts>(column)?.0)
    }

    /// A nullable timestamp column.
    pub(crate) fn opt_ts(&self, column: &str) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
        Ok(self.get::<Option<Ts>>(column)?.map(|t| t.0))
    }

    /// A JSON column decoded as `T`.
    pub(crate) fn json<T: DeserializeOwned + 'static>(
        &self,
        column: &str,
    ) -> Result<T, sqlx::Error> {
        Ok(self.get::<Json<T>>(column)?.0)
    }

    /// A nullable JSON column.
    pub(crate) fn opt_json<T: DeserializeOwned + 'static>(
        &self,
        column: &str,
    ) -> Result<Option<T>, sqlx::Error> {
        Ok(self.get::<Option<Json<T>>>(column)?.map(|j| j.0))
    }

    /// An 8-byte EUI column.
    pub(crate) fn eui(
        &self,
        table: &'static str,
        column: &'static str,
    ) -> Result<Eui64, StoreError> {
        sql::eui(self.get(column)?, table, column)
    }

    /// A 4-byte DevAddr column.
    pub(crate) fn dev_addr(
        &self,
        table: &'static str,
        column: &'static str,
    ) -> Result<DevAddr, StoreError> {
        sql::dev_addr(self.get(column)?, table, column)
    }

    /// A sealed 16-byte key column (see `kek.rs`) of the row whose identity is
    /// `row` (its primary key bytes).
    pub(crate) fn sealed_key(
        &self,
        ring: &Keyring,
        table: &'static str,
        column: &'static str,
        row: &[u8],
    ) -> Result<Aes128Key, StoreError> {
        let value: Vec<u8> = self.get(column)?;
        open_key(ring, table, column, row, &value)
    }

    /// A nullable sealed 16-byte key column.
    pub(crate) fn opt_sealed_key(
        &self,
        ring: &Keyring,
        table: &'static str,
        column: &'static str,
        row: &[u8],
    ) -> Result<Option<Aes128Key>, StoreError> {
        self.get::<Option<Vec<u8>>>(column)?
            .map(|v| open_key(ring, table, column, row, &v))
            .transpose()
    }

    /// An integer column as a narrower type (counters, ports, delays).
    pub(crate) fn int<T: TryFrom<i64>>(
        &self,
        table: &'static str,
        column: &'static str,
    ) -> Result<T, StoreError> {
        sql::int(self.get(column)?, table, column)
    }

    /// A nullable integer column as a narrower type.
    pub(crate) fn opt_int<T: TryFrom<i64>>(
        &self,
        table: &'static str,
        column: &'static str,
    ) -> Result<Option<T>, StoreError> {
        self.get::<Option<i64>>(column)?
            .map(|v| sql::int(v, table, column))
            .transpose()
    }

    /// A text column holding one of a known set of values (`parse` says which).
    pub(crate) fn known<T>(
        &self,
        table: &'static str,
        column: &'static str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<T, StoreError> {
        let text: String = self.get(column)?;
        sql::known(&text, parse, table, column)
    }
}

/// Opens the sealed key `value` of `table.column` in the row `row`.
pub(crate) fn open_key(
    ring: &Keyring,
    table: &'static str,
    column: &'static str,
    row: &[u8],
    value: &[u8],
) -> Result<Aes128Key, StoreError> {
    ring.open_key(&Context { table, column, row }, value)
        .map_err(|reason| StoreError::Sealed {
            table,
            column,
            row: hex::encode(row),
            reason,
        })
}

/// Decodes every row with `f`.
pub(crate) fn decode_all<T>(
    rows: Vec<Row>,
    f: impl Fn(&Row) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    rows.iter().map(f).collect()
}

#[cfg(test)]
mod tests {
    use super::positional;

    #[test]
    fn in_order_placeholders_become_positional() {
        let p = |s: &'static str| positional(s.into()).into_owned();
        assert_eq!(
            p("INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4) ON CONFLICT DO NOTHING"),
            "INSERT INTO t (a, b) VALUES (?, ?), (?, ?) ON CONFLICT DO NOTHING"
        );
        // Quotes are not placeholders; text around them is kept byte for byte.
        assert_eq!(
            p("SELECT '$1', \"$2\", 'it''s $3 €', $1, 'ü'"),
            "SELECT '$1', \"$2\", 'it''s $3 €', ?, 'ü'"
        );
        // Reused or out of order: left alone (sqlx binds `$N` by number).
        for s in [
            "DELETE FROM t WHERE a = $1 AND b = (SELECT b FROM t WHERE a = $1)",
            "SELECT $2, $1",
            "SELECT $1, $3",
        ] {
            assert_eq!(p(s), s);
        }
        assert!(matches!(
            positional("SELECT 1".into()),
            std::borrow::Cow::Borrowed(_)
        ));
    }
}
