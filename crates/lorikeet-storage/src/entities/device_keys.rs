//! Root keys and join state: `device_keys` (AppKey, NwkKey, the last JoinNonce
//! sent, the last DevNonce) and `used_dev_nonces` (the most recent
//! [`USED_DEV_NONCE_LIMIT`] DevNonces of accepted joins). SQL shared by both backends.
//! The keys are sealed under the KEK (`kek.rs`), each bound to its DevEUI and column.

use chrono::{DateTime, Utc};
use lorikeet_lorawan::{Aes128Key, Eui64};

use crate::kek::{Context, Keyring};
use crate::sql::Ts;
use crate::stmt::{Row, Stmt};
use crate::store::Tx;
use crate::{paging, Changed, DeviceKeys, Store, StoreError, USED_DEV_NONCE_LIMIT};

pub(crate) const TABLE: &str = "device_keys";
/// The sealed columns.
pub(crate) const SEALED: &[&str] = &["app_key", "nwk_key"];

/// A `device_keys` row; its DevNonces come from a second query.
fn decode(r: &Row, dev_eui: Eui64, ring: &Keyring) -> Result<DeviceKeys, StoreError> {
    let row = &dev_eui.0;
    Ok(DeviceKeys {
        dev_eui,
        app_key: r.sealed_key(ring, TABLE, "app_key", row)?,
        nwk_key: r.opt_sealed_key(ring, TABLE, "nwk_key", row)?,
        join_nonce: r.int(TABLE, "join_nonce")?,
        last_dev_nonce: r.opt_int(TABLE, "last_dev_nonce")?,
        used_dev_nonces: Vec::new(),
    })
}

/// Sets the root keys; a device that had keys keeps its join state.
pub(crate) async fn set(
    db: &Store,
    dev_eui: Eui64,
    app_key: &Aes128Key,
    nwk_key: Option<&Aes128Key>,
) -> Result<(), StoreError> {
    let failed = |e| StoreError::from_write("device keys", dev_eui, e);
    let ring = db.keyring()?;
    let mut p = db.provision().await?;
    write(p.tx(), ring, &[(dev_eui, app_key, nwk_key)], crate::now())
        .await
        .map_err(failed)?;
    p.record(Changed::DeviceKeys(dev_eui));
    p.commit().await.map_err(failed)?;
    Ok(())
}

/// Rows per `INSERT` of [`write`] (4 arguments each; far below both backends' limits).
const ROWS_PER_INSERT: usize = 1_000;

/// Sets root keys (DevEUI, AppKey, NwkKey) inside a provisioning transaction, many
/// devices per statement. A device that had keys keeps its join state (JoinNonce,
/// DevNonces): only the keys are replaced.
pub(crate) async fn write(
    tx: &mut Tx,
    ring: &Keyring,
    keys: &[(Eui64, &Aes128Key, Option<&Aes128Key>)],
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    for chunk in keys.chunks(ROWS_PER_INSERT) {
        let mut sql = String::from(
            "INSERT INTO device_keys (dev_eui, app_key, nwk_key, join_nonce, last_dev_nonce, \
             updated_at) VALUES ",
        );
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push_str(", ");
            }
            let n = 4 * i;
            sql.push_str(&format!(
                "(${}, ${}, ${}, 0, NULL, ${})",
                n + 1,
                n + 2,
                n + 3,
                n + 4
            ));
        }
        sql.push_str(
            " ON CONFLICT (dev_eui) DO UPDATE SET app_key = excluded.app_key, \
             nwk_key = excluded.nwk_key, updated_at = excluded.updated_at",
        );
        let mut s = Stmt::new(sql);
        for (dev_eui, app_key, nwk_key) in chunk {
            s = s
                .bind(dev_eui.0.to_vec())
                .bind(seal(ring, "app_key", *dev_eui, app_key))
                .bind(nwk_key.map(|k| seal(ring, "nwk_key", *dev_eui, k)))
                .bind(Ts(at));
        }
        tx.execute(s).await?;
    }
    Ok(())
}

/// A root key sealed for its device and column.
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

pub(crate) async fn get(db: &Store, dev_eui: Eui64) -> Result<Option<DeviceKeys>, StoreError> {
    let ring = db.keyring()?;
    let eui = dev_eui.0.to_vec();
    let Some(r) = db
        .fetch_optional(
            Stmt::new(
                "SELECT app_key, nwk_key, join_nonce, last_dev_nonce FROM device_keys \
                 WHERE dev_eui = $1",
            )
            .bind(&eui),
        )
        .await?
    else {
        return Ok(None);
    };
    let mut keys = decode(&r, dev_eui, ring)?;
    let nonces = db
        .fetch_all(
            Stmt::new("SELECT dev_nonce FROM used_dev_nonces WHERE dev_eui = $1 ORDER BY id")
                .bind(eui),
        )
        .await?;
    for n in &nonces {
        keys.used_dev_nonces
            .push(n.int("used_dev_nonces", "dev_nonce")?);
    }
    Ok(Some(keys))
}

/// Keyset page by DevEUI, with one query for the page's DevNonces rather than one
/// per device.
pub(crate) async fn page(
    db: &Store,
    after: Option<Eui64>,
    limit: u32,
) -> Result<Vec<DeviceKeys>, StoreError> {
    let ring = db.keyring()?;
    let rows = db
        .fetch_all(
            Stmt::new(
                "SELECT dev_eui, app_key, nwk_key, join_nonce, last_dev_nonce FROM device_keys \
                 WHERE dev_eui > $1 ORDER BY dev_eui LIMIT $2",
            )
            .bind(paging::eui_after(after))
            .bind(i64::from(limit)),
        )
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        out.push(decode(r, r.eui(TABLE, "dev_eui")?, ring)?);
    }
    let (Some(first), Some(last)) = (out.first(), out.last()) else {
        return Ok(out);
    };
    let nonces = db
        .fetch_all(
            Stmt::new(
                "SELECT dev_eui, dev_nonce FROM used_dev_nonces \
                 WHERE dev_eui >= $1 AND dev_eui <= $2 ORDER BY dev_eui, id",
            )
            .bind(first.dev_eui.0.to_vec())
            .bind(last.dev_eui.0.to_vec()),
        )
        .await?;
    // Both lists are in DevEUI order: walk them together.
    let mut i = 0;
    for n in &nonces {
        let dev_eui = n.eui("used_dev_nonces", "dev_eui")?;
        let nonce: u16 = n.int("used_dev_nonces", "dev_nonce")?;
        while i < out.len() && out[i].dev_eui < dev_eui {
            i += 1;
        }
        if let Some(k) = out.get_mut(i).filter(|k| k.dev_eui == dev_eui) {
            k.used_dev_nonces.push(nonce);
        }
    }
    Ok(out)
}

/// `WriteOp::RecordJoin` (inside the batch transaction): sets the JoinNonce sent and
/// the last DevNonce, remembers the DevNonce, and forgets what falls beyond the
/// [`USED_DEV_NONCE_LIMIT`] most recent.
pub(crate) async fn record_join(
    tx: &mut Tx,
    dev_eui: Eui64,
    dev_nonce: u16,
    join_nonce: u32,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let eui = dev_eui.0.to_vec();
    tx.execute(
        Stmt::new(
            "UPDATE device_keys SET join_nonce = $2, last_dev_nonce = $3, updated_at = $4 \
             WHERE dev_eui = $1",
        )
        .bind(&eui)
        .bind(i64::from(join_nonce))
        .bind(i64::from(dev_nonce))
        .bind(Ts(at)),
    )
    .await?;
    // Delete + insert moves a reused nonce to the newest position.
    tx.execute(
        Stmt::new("DELETE FROM used_dev_nonces WHERE dev_eui = $1 AND dev_nonce = $2")
            .bind(&eui)
            .bind(i64::from(dev_nonce)),
    )
    .await?;
    tx.execute(
        Stmt::new(
            "INSERT INTO used_dev_nonces (dev_eui, dev_nonce, used_at) \
             SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM devices WHERE dev_eui = $1)",
        )
        .bind(&eui)
        .bind(i64::from(dev_nonce))
        .bind(Ts(at)),
    )
    .await?;
    tx.execute(
        Stmt::new(
            "DELETE FROM used_dev_nonces WHERE dev_eui = $1 AND id <= \
             (SELECT id FROM used_dev_nonces WHERE dev_eui = $1 \
              ORDER BY id DESC LIMIT 1 OFFSET $2)",
        )
        .bind(eui)
        .bind(USED_DEV_NONCE_LIMIT as i64),
    )
    .await?;
    Ok(())
}

/// The root keys and join state of those of `euis` that have keys.
pub(crate) async fn by_euis(db: &Store, euis: &[Eui64]) -> Result<Vec<DeviceKeys>, StoreError> {
    let ring = db.keyring()?;
    let rows = paging::by_euis(
        db,
        "dev_eui, app_key, nwk_key, join_nonce, last_dev_nonce",
        "device_keys",
        "",
        euis,
    )
    .await?;
    let mut out = std::collections::HashMap::with_capacity(rows.len());
    for r in &rows {
        let dev_eui = r.eui(TABLE, "dev_eui")?;
        out.insert(dev_eui, decode(r, dev_eui, ring)?);
    }
    if out.is_empty() {
        return Ok(Vec::new());
    }
    let with_keys: Vec<Eui64> = out.keys().copied().collect();
    for n in &paging::by_euis(
        db,
        "dev_eui, dev_nonce",
        "used_dev_nonces",
        "ORDER BY dev_eui, id",
        &with_keys,
    )
    .await?
    {
        let dev_eui = n.eui("used_dev_nonces", "dev_eui")?;
        if let Some(k) = out.get_mut(&dev_eui) {
            k.used_dev_nonces
                .push(n.int("used_dev_nonces", "dev_nonce")?);
        }
    }
    Ok(out.into_values().collect())
}
