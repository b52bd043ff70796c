//! Bulk import: many devices, with their root keys and ABP sessions, created or
//! updated in one provisioning transaction (all or nothing), through the batched
//! statements of the modules that store each part (`devices`, `device_keys`,
//! `sessions`). Every device goes on the change feed with what changed, so the
//! live state has all of them once the feed position of the commit is applied.

use std::collections::{HashMap, HashSet};

use lorikeet_lorawan::{Aes128Key, Eui64};
use uuid::Uuid;

use crate::store::Tx;
use crate::{
    Changed, DeviceSession, ImportCounts, ImportOutcome, ImportRefusal, ImportRow, Store,
    StoreError,
};

use super::{device_keys, devices, sessions};

/// Writes every row in one transaction, or nothing: refused rows (devices of
/// another tenant) come back as [`ImportOutcome::Refused`]; a DevEUI named twice is
/// [`StoreError::Duplicate`].
pub(crate) async fn import(db: &Store, rows: &[ImportRow]) -> Result<ImportOutcome, StoreError> {
    if let Some(dev_eui) = repeated(rows) {
        return Err(StoreError::Duplicate {
            entity: "import row of device",
            key: dev_eui.to_string(),
        });
    }
    if rows.is_empty() {
        return Ok(ImportOutcome::Imported(ImportCounts::default()));
    }
    // DevEUI order: every statement takes its row locks in one order, as the
    // network server's batches do, so concurrent writers cannot deadlock.
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by_key(|&i| rows[i].device.dev_eui);
    let euis: Vec<Eui64> = order.iter().map(|&i| rows[i].device.dev_eui).collect();

    let ring = db.keyring()?;
    let mut p = db.provision().await?;
    let existing = tenants_of(p.tx(), &euis).await?;
    let refused = refusals(rows, &existing);
    if !refused.is_empty() {
        return Ok(ImportOutcome::Refused(refused));
    }
    let failed = |e| StoreError::from_write("device", "of the import", e);
    let devices: Vec<_> = order.iter().map(|&i| &rows[i].device).collect();
    let written = devices::upsert(p.tx(), &devices).await.map_err(failed)?;
    if written < devices.len() as u64 {
        // A device of another tenant was created after the read above (the
        // upsert leaves such devices alone): read again and refuse.
        let existing = tenants_of(p.tx(), &euis).await?;
        return Ok(ImportOutcome::Refused(refusals(rows, &existing)));
    }
    let keys: Vec<(Eui64, &Aes128Key, Option<&Aes128Key>)> = order
        .iter()
        .filter_map(|&i| {
            let r = &rows[i];
            r.keys
                .as_ref()
                .map(|k| (r.device.dev_eui, &k.app_key, k.nwk_key.as_ref()))
        })
        .collect();
    device_keys::write(p.tx(), ring, &keys, crate::now())
        .await
        .map_err(failed)?;
    let upserts: Vec<&DeviceSession> = order
        .iter()
        .filter_map(|&i| rows[i].session.as_ref())
        .collect();
    sessions::write(p.tx(), ring, &upserts, &[]).await?;
    for &i in &order {
        let r = &rows[i];
        let dev_eui = r.device.dev_eui;
        p.record(Changed::Device(dev_eui));
        if r.keys.is_some() {
            p.record(Changed::DeviceKeys(dev_eui));
        }
        if r.session.is_some() {
            p.record(Changed::Session(dev_eui));
        }
    }
    p.commit().await.map_err(failed)?;
    let updated = existing.len() as u64;
    Ok(ImportOutcome::Imported(ImportCounts {
        created: rows.len() as u64 - updated,
        updated,
    }))
}

/// The rows [`import`] would refuse now, read without writing.
pub(crate) async fn check(
    db: &Store,
    rows: &[ImportRow],
) -> Result<Vec<ImportRefusal>, StoreError> {
    let euis: Vec<Eui64> = rows.iter().map(|r| r.device.dev_eui).collect();
    let existing: HashMap<Eui64, Uuid> = devices::by_euis(db, &euis)
        .await?
        .into_iter()
        .map(|d| (d.dev_eui, d.tenant_id))
        .collect();
    Ok(refusals(rows, &existing))
}

/// The tenant of each device of `euis` that exists.
async fn tenants_of(tx: &mut Tx, euis: &[Eui64]) -> Result<HashMap<Eui64, Uuid>, StoreError> {
    Ok(devices::tenants_of(tx, euis).await?.into_iter().collect())
}

/// The one rule: an import does not move a device between tenants.
fn refusals(rows: &[ImportRow], existing: &HashMap<Eui64, Uuid>) -> Vec<ImportRefusal> {
    rows.iter()
        .enumerate()
        .filter_map(|(row, r)| {
            let tenant_id = *existing.get(&r.device.dev_eui)?;
            (tenant_id != r.device.tenant_id).then_some(ImportRefusal {
                row,
                dev_eui: r.device.dev_eui,
                tenant_id,
            })
        })
        .collect()
}

/// A DevEUI that two rows name, if any.
fn repeated(rows: &[ImportRow]) -> Option<Eui64> {
    let mut seen = HashSet::with_capacity(rows.len());
    rows.iter()
        .map(|r| r.device.dev_eui)
        .find(|e| !seen.insert(*e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage_test;
    use crate::testing::TestDb;
    use crate::tests::*;
    use crate::DEFAULT_TENANT_ID;

    /// A second store on the test database, for the crate's own statements.
    async fn store_of(db: &TestDb) -> Store {
        if db.url().starts_with("sqlite:") {
            crate::sqlite::open(
                db.url(),
                crate::sqlite::Lock::None,
                crate::SqliteSync::default(),
            )
            .await
            .unwrap()
            .with_keyring(crate::testing::test_keyring())
        } else {
            crate::postgres::connect(db.url())
                .await
                .unwrap()
                .with_keyring(crate::testing::test_keyring())
        }
    }

    // The import reads which devices exist before writing; a device of another
    // tenant created in between (Postgres, another writer) must still not be taken
    // over: the upsert itself leaves it alone and says so by its count.
    storage_test!(
        the_upsert_leaves_devices_of_other_tenants_alone,
        |db: TestDb| async move {
            let s = &*db.storage;
            let (a, p, _) = provision(s, 0).await;
            let other = tenant("other");
            s.create_tenant(&other).await.unwrap();
            let (oa, op) = (app(other.id, "theirs"), profile(other.id));
            s.create_application(&oa).await.unwrap();
            s.create_device_profile(&op).await.unwrap();
            let theirs = device(1, &oa, &op);
            s.create_device(&theirs).await.unwrap();
            assert_eq!(a.tenant_id, DEFAULT_TENANT_ID);

            let store = store_of(&db).await;
            let mut tx = store.begin().await.unwrap();
            let (ours, new) = (device(1, &a, &p), device(2, &a, &p));
            let n = devices::upsert(&mut tx, &[&ours, &new]).await.unwrap();
            assert_eq!(n, 1, "only the new device is written");
            tx.commit().await.unwrap();
            assert_eq!(s.get_device(theirs.dev_eui).await.unwrap(), Some(theirs));
            assert_eq!(s.get_device(new.dev_eui).await.unwrap(), Some(new));
            store.close_pools().await;
        }
    );
}
