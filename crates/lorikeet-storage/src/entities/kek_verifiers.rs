//! KEK verifiers: `kek_verifiers`, one row per key-encryption key that stored
//! values may be sealed under (a known text sealed under it), and `key_encryption`,
//! whether plain keys of the previous version may be left. SQL shared by both
//! backends.
//!
//! Start-up opens each verifier with the configured KEK of that id: one decryption
//! per KEK in use, however many rows there are, tells "this database needs a KEK
//! that is not configured" and "the configured KEK with that id is another key"
//! before anything is loaded.

use crate::kek::{self, Keyring};
use crate::sql::Ts;
use crate::stmt::Stmt;
use crate::{Store, StoreError};

/// The KEK ids with a verifier, in id order.
pub(crate) async fn ids(db: &Store) -> Result<Vec<String>, StoreError> {
    let rows = db
        .fetch_all(Stmt::new(
            "SELECT kek_id FROM kek_verifiers ORDER BY kek_id",
        ))
        .await?;
    rows.iter()
        .map(|r| Ok(r.get::<String>("kek_id")?))
        .collect()
}

/// Checks every stored verifier against `ring` (a KEK that is not configured, or
/// configured with another key, is a [`crate::KekError`]), then adds the verifier
/// of the current KEK if it has none. Returns the ids of the other (previous) KEKs
/// that still have a verifier: values may still be sealed under them.
pub(crate) async fn check(db: &Store, ring: &Keyring) -> Result<Vec<String>, StoreError> {
    let rows = db
        .fetch_all(Stmt::new(
            "SELECT kek_id, verifier FROM kek_verifiers ORDER BY kek_id",
        ))
        .await?;
    let mut others = Vec::new();
    let mut has_current = false;
    for r in &rows {
        let id: String = r.get("kek_id")?;
        let verifier: Vec<u8> = r.get("verifier")?;
        kek::check_verifier(ring, &id, &verifier)?;
        if id == ring.current_id() {
            has_current = true;
        } else {
            others.push(id);
        }
    }
    if !has_current {
        // Before anything is sealed under it.
        db.execute(
            Stmt::new(
                "INSERT INTO kek_verifiers (kek_id, verifier, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (kek_id) DO NOTHING",
            )
            .bind(ring.current_id().to_owned())
            .bind(kek::verifier(ring.current()))
            .bind(Ts(crate::now())),
        )
        .await?;
    }
    Ok(others)
}

/// Removes the verifiers of every KEK but `keep` (after a rotation left no value
/// under them); returns their ids.
pub(crate) async fn retire_others(db: &Store, keep: &str) -> Result<Vec<String>, StoreError> {
    let retired: Vec<String> = ids(db).await?.into_iter().filter(|i| i != keep).collect();
    db.execute(Stmt::new("DELETE FROM kek_verifiers WHERE kek_id <> $1").bind(keep.to_owned()))
        .await?;
    Ok(retired)
}

/// Whether plain keys of the previous version may be left.
pub(crate) async fn plaintext_left(db: &Store) -> Result<bool, StoreError> {
    let row = db
        .fetch_optional(Stmt::new(
            "SELECT plaintext_rows FROM key_encryption WHERE id = 1",
        ))
        .await?;
    Ok(match row {
        Some(r) => r.get::<bool>("plaintext_rows")?,
        None => true,
    })
}

/// Notes that no plain key is left.
pub(crate) async fn plaintext_done(db: &Store) -> Result<(), StoreError> {
    db.execute(Stmt::new("UPDATE key_encryption SET plaintext_rows = $1 WHERE id = 1").bind(false))
        .await?;
    Ok(())
}
