//! Re-encryption of stored secrets, in batches, while the server runs: the
//! start-up sealing of plain keys left by the previous version, `lorikeet keys
//! rotate` (every value to the current KEK), and the census of what is sealed under
//! which KEK.
//!
//! Each table is read in keyset pages of `batch` rows on the read pool; the values
//! of a page that need it are re-sealed and written back in one transaction per
//! page, each only if it is still the value that was read (compare and swap): a
//! value the server rewrote meanwhile (a rejoin, an API write) is left as the server
//! wrote it, under its current KEK. Only the sealed columns are written, so frame
//! counters the server moves meanwhile are never set back. The tables:
//!
//! | table | sealed columns | row identity |
//! |---|---|---|
//! | `device_keys` | `app_key`, `nwk_key` | DevEUI |
//! | `device_sessions` | `f_nwk_s_int_key`, `s_nwk_s_int_key`, `nwk_s_enc_key`, `app_s_key` | DevEUI |
//! | `integrations` | `secrets` (from `config`'s secret fields) | application id and kind |

use sqlx::types::Json;
use sqlx::QueryBuilder;
use uuid::Uuid;

use crate::kek::{classify, Context, Keyring, Stored};
use crate::stmt::{open_key, Stmt};
use crate::store::Tx;
use crate::{KeyCensus, RotateReport, Store, StoreError};

use super::{device_keys, integrations, kek_verifiers, sessions};

/// Which values a sweep re-seals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Count only.
    Count,
    /// Plain values of the previous version (start-up).
    Plaintext,
    /// Every value not sealed under the current KEK (rotation).
    NotCurrent,
}

/// What a sweep saw and did.
#[derive(Debug, Default)]
pub(crate) struct Swept {
    /// The values as read, before re-sealing.
    pub census: KeyCensus,
    /// Values re-sealed.
    pub resealed: u64,
}

/// Rows per page (and per transaction) of the start-up sealing.
pub(crate) const STARTUP_BATCH: u32 = 1_000;

/// Sweeps every table holding secrets.
pub(crate) async fn sweep(db: &Store, mode: Mode, batch: u32) -> Result<Swept, StoreError> {
    let ring = db.keyring()?;
    let batch = batch.max(1);
    let mut out = Swept::default();
    sweep_keys(
        db,
        ring,
        device_keys::TABLE,
        device_keys::SEALED,
        mode,
        batch,
        &mut out,
    )
    .await?;
    sweep_keys(
        db,
        ring,
        sessions::TABLE,
        sessions::SEALED,
        mode,
        batch,
        &mut out,
    )
    .await?;
    sweep_integrations(db, ring, mode, &mut out).await?;
    Ok(out)
}

/// Start-up: seals the plain keys and integration secrets of the previous version,
/// once (until none is left).
pub(crate) async fn seal_plaintext(db: &Store) -> Result<(), StoreError> {
    if !kek_verifiers::plaintext_left(db).await? {
        return Ok(());
    }
    let started = std::time::Instant::now();
    let swept = sweep(db, Mode::Plaintext, STARTUP_BATCH).await?;
    kek_verifiers::plaintext_done(db).await?;
    if swept.resealed > 0 {
        tracing::info!(
            values = swept.resealed,
            kek_id = db.keyring()?.current_id(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "encrypted the plain keys and integration secrets of the previous version"
        );
    }
    Ok(())
}

/// Passes a rotation makes before giving up on values that keep coming back under
/// an old KEK.
const ROTATE_PASSES: u32 = 4;

/// `lorikeet keys rotate`: re-seals every value under the current KEK, page by page,
/// until a pass finds none left under another KEK (or plain); then removes the
/// verifiers of the other KEKs, which are no longer needed.
pub(crate) async fn rotate(db: &Store, batch: u32) -> Result<RotateReport, StoreError> {
    let current = db.keyring()?.current_id().to_owned();
    let mut resealed = 0;
    for pass in 1..=ROTATE_PASSES {
        let swept = sweep(db, Mode::NotCurrent, batch).await?;
        resealed += swept.resealed;
        let stale = swept.census.not_under(&current);
        tracing::info!(
            pass,
            resealed = swept.resealed,
            stale,
            kek_id = %current,
            "key rotation pass"
        );
        if stale == 0 {
            let retired = kek_verifiers::retire_others(db, &current).await?;
            kek_verifiers::plaintext_done(db).await?;
            return Ok(RotateReport {
                kek_id: current,
                resealed,
                passes: pass,
                retired,
                census: swept.census,
            });
        }
        if pass == ROTATE_PASSES {
            let ids: Vec<String> = swept
                .census
                .by_kek
                .keys()
                .filter(|k| **k != current)
                .map(|k| format!("'{k}'"))
                .chain((swept.census.plain > 0).then(|| "(none: plain)".to_owned()))
                .collect();
            return Err(StoreError::RotationIncomplete {
                passes: pass,
                remaining: stale,
                ids: ids.join(", "),
            });
        }
    }
    unreachable!("the last pass returns")
}

/// One column value to replace: (row key, value read, new value).
pub(crate) type Swap = (Vec<u8>, Vec<u8>, Vec<u8>);

/// Sweeps one table whose sealed columns are AES keys, keyed by DevEUI.
async fn sweep_keys(
    db: &Store,
    ring: &Keyring,
    table: &'static str,
    columns: &'static [&'static str],
    mode: Mode,
    batch: u32,
    out: &mut Swept,
) -> Result<(), StoreError> {
    let sql = format!(
        "SELECT dev_eui, {} FROM {table} WHERE dev_eui > $1 ORDER BY dev_eui LIMIT $2",
        columns.join(", ")
    );
    let mut after: Vec<u8> = Vec::new();
    loop {
        let rows = db
            .fetch_all(
                Stmt::new(sql.as_str())
                    .bind(after.clone())
                    .bind(i64::from(batch)),
            )
            .await?;
        let mut swaps: Vec<Vec<Swap>> = vec![Vec::new(); columns.len()];
        for r in &rows {
            let pk: Vec<u8> = r.get("dev_eui")?;
            for (i, &column) in columns.iter().enumerate() {
                let Some(value) = r.get::<Option<Vec<u8>>>(column)? else {
                    continue;
                };
                let context = Context {
                    table,
                    column,
                    row: &pk,
                };
                let plain = match classify(&value) {
                    Stored::PlainKey => {
                        out.census.plain += 1;
                        (mode != Mode::Count).then(|| value.clone())
                    }
                    Stored::Sealed(id) => {
                        *out.census.by_kek.entry(id.to_owned()).or_default() += 1;
                        if mode == Mode::NotCurrent && id != ring.current_id() {
                            let key = open_key(ring, table, column, &pk, &value)?;
                            Some(key.as_bytes().to_vec())
                        } else {
                            None
                        }
                    }
                    Stored::Unknown => {
                        out.census.unknown += 1;
                        None
                    }
                };
                if let Some(plain) = plain {
                    let sealed = ring.seal(&context, &plain);
                    swaps[i].push((pk.clone(), value, sealed));
                }
            }
        }
        if swaps.iter().any(|s| !s.is_empty()) {
            let mut tx = db.begin().await?;
            for (i, &column) in columns.iter().enumerate() {
                if !swaps[i].is_empty() {
                    out.resealed += swap_column(&mut tx, table, column, &swaps[i]).await?;
                }
            }
            tx.commit().await?;
        }
        let full = rows.len() == batch as usize;
        match rows.last() {
            Some(last) if full => after = last.get("dev_eui")?,
            _ => return Ok(()),
        }
    }
}

/// Replaces `table.column` of each row that still holds the value read; returns
/// how many did.
pub(crate) async fn swap_column(
    tx: &mut Tx,
    table: &str,
    column: &str,
    swaps: &[Swap],
) -> Result<u64, sqlx::Error> {
    match tx {
        Tx::Postgres(tx) => {
            let column_of = |f: fn(&Swap) -> &Vec<u8>| -> Vec<&[u8]> {
                swaps.iter().map(|s| f(s).as_slice()).collect()
            };
            let (pks, old, new) = (
                column_of(|s| &s.0),
                column_of(|s| &s.1),
                column_of(|s| &s.2),
            );
            let r = sqlx::query(&format!(
                "UPDATE {table} AS t SET {column} = u.new \
                 FROM UNNEST($1::bytea[], $2::bytea[], $3::bytea[]) AS u(pk, old, new) \
                 WHERE t.dev_eui = u.pk AND t.{column} = u.old"
            ))
            .bind(pks)
            .bind(old)
            .bind(new)
            .execute(&mut **tx)
            .await?;
            Ok(r.rows_affected())
        }
        Tx::Sqlite(tx) => {
            let mut q = QueryBuilder::<sqlx::Sqlite>::new(format!(
                "UPDATE {table} SET {column} = u.column3 FROM ("
            ));
            q.push_values(swaps, |mut b, (p, o, n)| {
                b.push_bind(p.as_slice())
                    .push_bind(o.as_slice())
                    .push_bind(n.as_slice());
            });
            q.push(format!(
                ") AS u WHERE {table}.dev_eui = u.column1 AND {table}.{column} = u.column2"
            ));
            let r = q.build().persistent(false).execute(&mut **tx).await?;
            Ok(r.rows_affected())
        }
    }
}

/// Sweeps `integrations`: a row without `secrets` (the previous version's) has its
/// secret fields moved out of `config` and sealed; a row sealed under another KEK
/// is re-sealed. Few rows: one page, one transaction.
async fn sweep_integrations(
    db: &Store,
    ring: &Keyring,
    mode: Mode,
    out: &mut Swept,
) -> Result<(), StoreError> {
    let rows = db
        .fetch_all(Stmt::new(
            "SELECT id, application_id, kind, config, secrets FROM integrations ORDER BY id",
        ))
        .await?;
    let mut writes: Vec<Stmt<'static>> = Vec::new();
    for r in &rows {
        let id: Uuid = r.get("id")?;
        let application_id: Uuid = r.get("application_id")?;
        let kind: String = r.get("kind")?;
        let row = integrations::row_identity(application_id, &kind);
        match r.get::<Option<Vec<u8>>>("secrets")? {
            None => {
                out.census.plain += 1;
                if mode == Mode::Count {
                    continue;
                }
                let config: serde_json::Value = r.json("config")?;
                let (public, secrets) = integrations::split(&config);
                writes.push(
                    Stmt::new(
                        "UPDATE integrations SET config = $1, secrets = $2 \
                         WHERE id = $3 AND secrets IS NULL",
                    )
                    .bind(Json(public))
                    .bind(integrations::seal_secrets(ring, &row, &secrets))
                    .bind(id),
                );
            }
            Some(value) => match classify(&value) {
                Stored::Sealed(kek_id) => {
                    *out.census.by_kek.entry(kek_id.to_owned()).or_default() += 1;
                    if mode == Mode::NotCurrent && kek_id != ring.current_id() {
                        let secrets = integrations::open_secrets(ring, &row, &value)?;
                        writes.push(
                            Stmt::new(
                                "UPDATE integrations SET secrets = $1 \
                                 WHERE id = $2 AND secrets = $3",
                            )
                            .bind(integrations::seal_secrets(ring, &row, &secrets))
                            .bind(id)
                            .bind(value),
                        );
                    }
                }
                Stored::PlainKey | Stored::Unknown => out.census.unknown += 1,
            },
        }
    }
    if !writes.is_empty() {
        let mut tx = db.begin().await?;
        for w in writes {
            out.resealed += tx.execute(w).await?;
        }
        tx.commit().await?;
    }
    Ok(())
}
