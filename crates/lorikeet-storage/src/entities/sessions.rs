//! Sessions: `device_sessions`, one row per activated device (DevAddr, session
//! keys, frame counters, the network server's opaque state). Written only through
//! `apply`, in batches whose SQL differs per backend (see [`write`]); reads are shared.
//!
//! The four session keys are sealed under the KEK (`kek.rs`), each bound to its
//! DevEUI and column. They are opened when a session is read into the live state,
//! never per frame; sealing is deterministic, so the rewrite of an unchanged session
//! on every uplink writes the same bytes and spends no fresh nonce.

use lorikeet_lorawan::{Aes128Key, DevAddr, Eui64};
use sqlx::{Postgres, QueryBuilder, Sqlite, Transaction};

use crate::kek::{Context, Keyring};
use crate::sql::Ts;
use crate::stmt::{decode_all, Row, Stmt};
use crate::store::Tx;
use crate::{paging, Changed, DeviceSession, Store, StoreError};

pub(crate) const TABLE: &str = "device_sessions";
/// The sealed columns.
pub(crate) const SEALED: &[&str] = &[
    "f_nwk_s_int_key",
    "s_nwk_s_int_key",
    "nwk_s_enc_key",
    "app_s_key",
];

const COLUMNS: &str = "dev_eui, dev_addr, mac_version, f_nwk_s_int_key, s_nwk_s_int_key, \
     nwk_s_enc_key, app_s_key, f_cnt_up, n_f_cnt_down, a_f_cnt_down, conf_f_cnt, ns_state, \
     updated_at";

/// What an upsert replaces when the device already has a session: everything.
const UPSERT_SET: &str = "ON CONFLICT (dev_eui) DO UPDATE SET dev_addr = excluded.dev_addr, \
     mac_version = excluded.mac_version, f_nwk_s_int_key = excluded.f_nwk_s_int_key, \
     s_nwk_s_int_key = excluded.s_nwk_s_int_key, nwk_s_enc_key = excluded.nwk_s_enc_key, \
     app_s_key = excluded.app_s_key, f_cnt_up = excluded.f_cnt_up, \
     n_f_cnt_down = excluded.n_f_cnt_down, a_f_cnt_down = excluded.a_f_cnt_down, \
     conf_f_cnt = excluded.conf_f_cnt, ns_state = excluded.ns_state, \
     updated_at = excluded.updated_at";

/// Session rows per SQLite statement (13 parameters each; SQLite allows 32,766).
const SQLITE_ROWS: usize = 1_000;

fn decode(r: &Row, ring: &Keyring) -> Result<DeviceSession, StoreError> {
    let dev_eui = r.eui(TABLE, "dev_eui")?;
    let key = |column| r.sealed_key(ring, TABLE, column, &dev_eui.0);
    Ok(DeviceSession {
        dev_eui,
        dev_addr: r.dev_addr(TABLE, "dev_addr")?,
        mac_version: r.get("mac_version")?,
        f_nwk_s_int_key: key("f_nwk_s_int_key")?,
        s_nwk_s_int_key: key("s_nwk_s_int_key")?,
        nwk_s_enc_key: key("nwk_s_enc_key")?,
        app_s_key: key("app_s_key")?,
        f_cnt_up: r.int(TABLE, "f_cnt_up")?,
        n_f_cnt_down: r.int(TABLE, "n_f_cnt_down")?,
        a_f_cnt_down: r.int(TABLE, "a_f_cnt_down")?,
        conf_f_cnt: r.int(TABLE, "conf_f_cnt")?,
        ns_state: r.get("ns_state")?,
        updated_at: r.ts("updated_at")?,
    })
}

/// A session key sealed for its device and column.
fn seal(ring: &Keyring, column: &'static str, dev_eui: Eui64, key: &Aes128Key) -> Vec<u8> {
    ring.seal(
        &Context {
            table: TABLE,
            column,
            row: &dev_eui.0,
        },
        key.as_bytes(),
    )
}

/// The four sealed keys of a session, in column order.
fn sealed_keys(ring: &Keyring, s: &DeviceSession) -> [Vec<u8>; 4] {
    [
        seal(ring, "f_nwk_s_int_key", s.dev_eui, &s.f_nwk_s_int_key),
        seal(ring, "s_nwk_s_int_key", s.dev_eui, &s.s_nwk_s_int_key),
        seal(ring, "nwk_s_enc_key", s.dev_eui, &s.nwk_s_enc_key),
        seal(ring, "app_s_key", s.dev_eui, &s.app_s_key),
    ]
}

pub(crate) async fn get(db: &Store, dev_eui: Eui64) -> Result<Option<DeviceSession>, StoreError> {
    let ring = db.keyring()?;
    db.fetch_optional(
        Stmt::select(COLUMNS, "FROM device_sessions WHERE dev_eui = $1").bind(dev_eui.0.to_vec()),
    )
    .await?
    .as_ref()
    .map(|r| decode(r, ring))
    .transpose()
}

pub(crate) async fn by_dev_addr(
    db: &Store,
    dev_addr: DevAddr,
) -> Result<Vec<DeviceSession>, StoreError> {
    let ring = db.keyring()?;
    let rows = db
        .fetch_all(
            Stmt::select(
                COLUMNS,
                "FROM device_sessions WHERE dev_addr = $1 ORDER BY dev_eui",
            )
            .bind(dev_addr.0.to_vec()),
        )
        .await?;
    decode_all(rows, |r| decode(r, ring))
}

/// Keyset page by DevEUI.
pub(crate) async fn page(
    db: &Store,
    after: Option<Eui64>,
    limit: u32,
) -> Result<Vec<DeviceSession>, StoreError> {
    let ring = db.keyring()?;
    let rows = db
        .fetch_all(
            Stmt::select(
                COLUMNS,
                "FROM device_sessions WHERE dev_eui > $1 ORDER BY dev_eui LIMIT $2",
            )
            .bind(paging::eui_after(after))
            .bind(i64::from(limit)),
        )
        .await?;
    decode_all(rows, |r| decode(r, ring))
}

/// Every session, four DevEUI ranges side by side.
pub(crate) async fn load_all(db: &Store) -> Result<Vec<DeviceSession>, StoreError> {
    let ring = db.keyring()?.clone();
    paging::load_parallel(
        db,
        format!(
            "SELECT {COLUMNS} FROM device_sessions WHERE dev_eui > $1 AND dev_eui < $2 \
             ORDER BY dev_eui LIMIT $3"
        ),
        move |r: &Row| decode(r, &ring),
        |s| s.dev_eui,
    )
    .await
}

/// A batch's session writes (`WriteOp::UpsertSession`, `WriteOp::DeleteSession`),
/// each list in DevEUI order (a consistent lock order across transactions). Sessions
/// of devices deleted meanwhile are skipped.
pub(crate) async fn write(
    tx: &mut Tx,
    ring: &Keyring,
    upserts: &[&DeviceSession],
    deletes: &[Vec<u8>],
) -> Result<(), StoreError> {
    let sealed: Vec<[Vec<u8>; 4]> = upserts.iter().map(|s| sealed_keys(ring, s)).collect();
    match tx {
        Tx::Postgres(tx) => write_postgres(tx, upserts, &sealed, deletes).await,
        Tx::Sqlite(tx) => write_sqlite(tx, upserts, &sealed, deletes).await,
    }
}

/// Postgres: one statement for all upserts (a column array per field through
/// `UNNEST`), one for all deletes (`ANY`): each statement is a network round trip.
async fn write_postgres(
    tx: &mut Transaction<'static, Postgres>,
    upserts: &[&DeviceSession],
    sealed: &[[Vec<u8>; 4]],
    deletes: &[Vec<u8>],
) -> Result<(), StoreError> {
    if !upserts.is_empty() {
        let bytes = |f: fn(&DeviceSession) -> &[u8]| -> Vec<Vec<u8>> {
            upserts.iter().map(|s| f(s).to_vec()).collect()
        };
        let int = |f: fn(&DeviceSession) -> u32| -> Vec<i64> {
            upserts.iter().map(|s| i64::from(f(s))).collect()
        };
        let text =
            |f: fn(&DeviceSession) -> &str| -> Vec<&str> { upserts.iter().map(|s| f(s)).collect() };
        let key = |i: usize| -> Vec<&[u8]> { sealed.iter().map(|k| k[i].as_slice()).collect() };
        sqlx::query(&format!(
            "INSERT INTO device_sessions ({COLUMNS}) SELECT u.* FROM UNNEST($1::bytea[], \
               $2::bytea[], $3::text[], $4::bytea[], $5::bytea[], $6::bytea[], $7::bytea[], \
               $8::int8[], $9::int8[], $10::int8[], $11::int8[], $12::text[], \
               $13::timestamptz[]) \
             AS u(dev_eui, dev_addr, mac_version, f, s, n, a, fcu, nfd, afd, cfc, st, ts) \
             WHERE EXISTS (SELECT 1 FROM devices d WHERE d.dev_eui = u.dev_eui) {UPSERT_SET}"
        ))
        .bind(bytes(|s| &s.dev_eui.0))
        .bind(bytes(|s| &s.dev_addr.0))
        .bind(text(|s| &s.mac_version))
        .bind(key(0))
        .bind(key(1))
        .bind(key(2))
        .bind(key(3))
        .bind(int(|s| s.f_cnt_up))
        .bind(int(|s| s.n_f_cnt_down))
        .bind(int(|s| s.a_f_cnt_down))
        .bind(int(|s| s.conf_f_cnt))
        .bind(text(|s| &s.ns_state))
        .bind(upserts.iter().map(|s| s.updated_at).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?;
    }
    if !deletes.is_empty() {
        sqlx::query("DELETE FROM device_sessions WHERE dev_eui = ANY($1)")
            .bind(deletes)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// SQLite: a multi-row `VALUES` statement per chunk. sqlx runs SQLite on a worker
/// thread and every statement is a round trip to it, so a statement per session
/// costs more than the writes themselves.
async fn write_sqlite(
    tx: &mut Transaction<'static, Sqlite>,
    upserts: &[&DeviceSession],
    sealed: &[[Vec<u8>; 4]],
    deletes: &[Vec<u8>],
) -> Result<(), StoreError> {
    let rows: Vec<(&DeviceSession, &[Vec<u8>; 4])> = upserts.iter().copied().zip(sealed).collect();
    for chunk in rows.chunks(SQLITE_ROWS) {
        let mut q = QueryBuilder::<Sqlite>::new(format!(
            "INSERT INTO device_sessions ({COLUMNS}) SELECT * FROM ("
        ));
        q.push_values(chunk, |mut b, (s, k)| {
            b.push_bind(s.dev_eui.0.to_vec())
                .push_bind(s.dev_addr.0.to_vec())
                .push_bind(s.mac_version.as_str())
                .push_bind(k[0].clone())
                .push_bind(k[1].clone())
                .push_bind(k[2].clone())
                .push_bind(k[3].clone())
                .push_bind(i64::from(s.f_cnt_up))
                .push_bind(i64::from(s.n_f_cnt_down))
                .push_bind(i64::from(s.a_f_cnt_down))
                .push_bind(i64::from(s.conf_f_cnt))
                .push_bind(s.ns_state.as_str())
                .push_bind(Ts(s.updated_at));
        });
        q.push(format!(
            ") WHERE column1 IN (SELECT dev_eui FROM devices) {UPSERT_SET}"
        ));
        // Each chunk size is its own SQL text: keep them out of the statement cache.
        q.build().persistent(false).execute(&mut **tx).await?;
    }
    for chunk in deletes.chunks(super::batch::SQLITE_KEY_ROWS) {
        let mut q = QueryBuilder::<Sqlite>::new("DELETE FROM device_sessions WHERE dev_eui IN (");
        let mut list = q.separated(", ");
        for e in chunk {
            list.push_bind(e.as_slice());
        }
        q.push(")");
        q.build().persistent(false).execute(&mut **tx).await?;
    }
    Ok(())
}

/// The sessions of those of `euis` that have one.
pub(crate) async fn by_euis(db: &Store, euis: &[Eui64]) -> Result<Vec<DeviceSession>, StoreError> {
    let ring = db.keyring()?;
    let rows = paging::by_euis(db, COLUMNS, "device_sessions", "", euis).await?;
    decode_all(rows, |r| decode(r, ring))
}

/// ABP activation (the API's): the session as a provisioning write, so it goes on the
/// feed. The network server's own session writes go through `apply` instead.
pub(crate) async fn activate(db: &Store, s: &DeviceSession) -> Result<(), StoreError> {
    let ring = db.keyring()?;
    let mut p = db.provision().await?;
    write(p.tx(), ring, &[s], &[]).await?;
    p.record(Changed::Session(s.dev_eui));
    p.commit().await?;
    Ok(())
}
