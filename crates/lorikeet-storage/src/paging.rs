//! Paging: `LIMIT`/`OFFSET` of the API's lists, and the keyset pages of the
//! start-up loads.

use lorikeet_lorawan::Eui64;

use crate::stmt::{decode_all, Row, Stmt};
use crate::{Page, Store, StoreError, LOAD_PAGE_SIZE};

/// `(LIMIT, OFFSET)` of a page, as bound to SQL.
pub(crate) fn limit_offset(page: Page) -> (i64, i64) {
    (
        i64::from(page.limit),
        i64::try_from(page.offset).unwrap_or(i64::MAX),
    )
}

/// The exclusive lower DevEUI bound of a keyset page: the empty byte string sorts
/// before every key.
pub(crate) fn eui_after(after: Option<Eui64>) -> Vec<u8> {
    after.map(|e| e.0.to_vec()).unwrap_or_default()
}

/// Reads a whole table in DevEUI order, split into four DevEUI ranges read side by
/// side (each in keyset pages), so the database and the row decoding use every
/// core. `sql` takes `$1` (exclusive lower bound), `$2` (exclusive upper bound) and
/// `$3` (page size).
pub(crate) async fn load_parallel<T: Send + 'static>(
    store: &Store,
    sql: String,
    decode: impl Fn(&Row) -> Result<T, StoreError> + Clone + Send + 'static,
    key: fn(&T) -> Eui64,
) -> Result<Vec<T>, StoreError> {
    const PARTS: u16 = 4;
    let mut tasks = Vec::new();
    for p in 0..PARTS {
        // Bounds as byte strings: a one-byte prefix sorts before every 8-byte key
        // starting with it; nine 0xff bytes sort after every key.
        let lower: Vec<u8> = if p == 0 {
            Vec::new()
        } else {
            vec![(p * 256 / PARTS) as u8]
        };
        let upper: Vec<u8> = if p + 1 == PARTS {
            vec![0xff; 9]
        } else {
            vec![((p + 1) * 256 / PARTS) as u8]
        };
        let store = store.clone();
        let sql = sql.clone();
        let decode = decode.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            let mut after = lower;
            loop {
                let rows = store
                    .fetch_all(
                        Stmt::new(sql.as_str())
                            .bind(after.clone())
                            .bind(upper.clone())
                            .bind(i64::from(LOAD_PAGE_SIZE)),
                    )
                    .await?;
                let full = rows.len() == LOAD_PAGE_SIZE as usize;
                let page = decode_all(rows, &decode)?;
                if let Some(last) = page.last() {
                    after = key(last).0.to_vec();
                }
                out.extend(page);
                if !full {
                    return Ok::<_, StoreError>(out);
                }
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        let part = t.await.map_err(|e| {
            StoreError::Database(sqlx::Error::Protocol(format!(
                "start-up load task failed: {e}"
            )))
        })??;
        all.extend(part);
    }
    Ok(all)
}

/// DevEUIs per `IN (…)` list when reading a set of devices.
pub(crate) const EUIS_PER_QUERY: usize = 500;

/// Every row of `SELECT {columns} FROM {table} WHERE dev_eui IN (…) {order}` for
/// `euis`, in chunks of [`EUIS_PER_QUERY`] (the feed reader's batched reloads).
pub(crate) async fn by_euis(
    store: &Store,
    columns: &str,
    table: &str,
    order: &str,
    euis: &[Eui64],
) -> Result<Vec<Row>, StoreError> {
    let mut out = Vec::new();
    for s in by_euis_stmts(columns, table, order, euis) {
        out.extend(store.fetch_all(s).await?);
    }
    Ok(out)
}

/// The statements of [`by_euis`], one per chunk of [`EUIS_PER_QUERY`] DevEUIs (to
/// run them elsewhere, e.g. inside a transaction).
pub(crate) fn by_euis_stmts<'q>(
    columns: &str,
    table: &str,
    order: &str,
    euis: &[Eui64],
) -> Vec<Stmt<'q>> {
    euis.chunks(EUIS_PER_QUERY)
        .map(|chunk| {
            let list: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let mut s = Stmt::new(format!(
                "SELECT {columns} FROM {table} WHERE dev_eui IN ({}) {order}",
                list.join(", ")
            ));
            for e in chunk {
                s = s.bind(e.0.to_vec());
            }
            s
        })
        .collect()
}

/// One row of `table` by its key column, decoded: the `get` of the entity modules.
pub(crate) async fn one<T>(
    store: &Store,
    columns: &str,
    table: &str,
    key_column: &str,
    key: impl crate::stmt::Value<'static>,
    decode: fn(&Row) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError> {
    store
        .fetch_optional(
            Stmt::select(columns, &format!("FROM {table} WHERE {key_column} = $1")).bind(key),
        )
        .await?
        .as_ref()
        .map(decode)
        .transpose()
}

/// A page of the rows of one tenant (`None`: of every tenant) in `order`: the `list`
/// of the entity modules.
pub(crate) async fn of_tenant<T>(
    store: &Store,
    columns: &str,
    table: &str,
    order: &str,
    tenant_id: Option<uuid::Uuid>,
    page: Page,
    decode: fn(&Row) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let (limit, offset) = limit_offset(page);
    let rows = store
        .fetch_all(
            Stmt::select(
                columns,
                &format!(
                    "FROM {table} WHERE ($1 IS NULL OR tenant_id = $1) \
                     ORDER BY {order} LIMIT $2 OFFSET $3"
                ),
            )
            .bind(tenant_id)
            .bind(limit)
            .bind(offset),
        )
        .await?;
    decode_all(rows, decode)
}
