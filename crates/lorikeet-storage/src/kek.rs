//! Keys at rest: the key-encryption key (KEK) that seals every stored secret (root
//! keys, session keys, integration secrets), and the self-describing envelope each
//! sealed value is stored as.
//!
//! Pure code: bytes in, bytes out; no database, no clock, no randomness.
//!
//! # The envelope
//!
//! ```text
//! 0x01 | id_len (1 byte) | KEK id (id_len ASCII bytes) | nonce (12) | AES-256-GCM ciphertext | tag (16)
//! ```
//!
//! - The KEK id travels with each value, so rows under an old KEK stay readable
//!   while `lorikeet keys rotate` runs, and a value names the key it needs.
//! - The associated data binds the header (version and KEK id) and the row the value
//!   belongs to (table, column, primary key): a value copied into another row, or
//!   another column, does not open.
//! - A plain AES-128 key is 16 bytes; an envelope is at least 31, so a value of
//!   exactly 16 bytes is a key written before encryption at rest (see `reseal.rs`).
//!
//! # The nonce
//!
//! The nonce is synthetic (the SIV construction): the first 12 bytes of
//! AES-256-CMAC, under a key of its own derived from the KEK, over the associated
//! data and the plaintext. The network server rewrites a device's session row on
//! every uplink; with random nonces each rewrite would spend a fresh nonce, and AES-GCM
//! with random 96-bit nonces is good for about 2³² encryptions per key, which a busy
//! network reaches in days. With a synthetic nonce, sealing the same value for the
//! same row again gives the same bytes: nonces grow only with distinct (row, value)
//! pairs, never with traffic, and two distinct plaintexts or rows share a nonce only
//! by a 96-bit collision. What an observer learns is that a row's value did not
//! change, which the row's history shows anyway.
//!
//! # Keys
//!
//! The 32-byte KEK is never used directly: HMAC-SHA-256 under it derives the AES-GCM
//! key, the CMAC key and, when no id is configured, the KEK id (`kek-` and 8 hex
//! digits of a third derivation, so the id names the key without revealing it).

use std::fmt;
use std::sync::Arc;

use aes::Aes256;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use cmac::{Cmac, Mac};
use hmac::Hmac;
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

/// Length of a KEK in bytes (AES-256).
pub const KEK_LEN: usize = 32;
/// Longest KEK id.
pub const MAX_KEK_ID_LEN: usize = 64;
/// The envelope format this code writes.
const VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// Why a KEK cannot be used, or why the database's keys cannot be opened with the
/// configured ones. Worded for the operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KekError {
    /// The key is not 64 hex digits.
    #[error("a key-encryption key must be 64 hex digits (32 bytes), got {got}")]
    BadKey {
        /// What was wrong, e.g. "12 characters" or "a non-hex character".
        got: String,
    },
    /// The id is empty, too long, or has characters other than letters, digits,
    /// `.`, `_` and `-`.
    #[error(
        "KEK id {id:?} is not valid: use 1 to {MAX_KEK_ID_LEN} letters, digits, '.', '_' or '-'"
    )]
    BadId {
        /// The id as given.
        id: String,
    },
    /// Two configured KEKs have the same id.
    #[error("two configured key-encryption keys have the id {id:?}; every KEK needs its own id")]
    DuplicateId {
        /// The id.
        id: String,
    },
    /// The database holds values sealed under a KEK id no configured KEK has.
    #[error(
        "the database holds keys encrypted under KEK id '{stored}', but no configured KEK has \
         that id (configured: {}). Configure the KEK they were encrypted with ([security] kek, \
         kek_file, or LORIKEET_SECURITY_KEK / LORIKEET_SECURITY_KEK_FILE), or, while rotating \
         to a new KEK, list it in [security] previous_keks (docs/security.md)",
        quoted(configured)
    )]
    UnknownId {
        /// The id found in the database.
        stored: String,
        /// The ids configured.
        configured: Vec<String>,
    },
    /// A configured KEK has the id found in the database, but is another key.
    #[error(
        "the database holds keys encrypted under KEK id '{kek_id}', but the configured KEK with \
         that id does not decrypt them: it is a different key. Configure the KEK they were \
         encrypted with (docs/security.md)"
    )]
    WrongKey {
        /// The id.
        kek_id: String,
    },
    /// The store was opened without a KEK (schema migration only) and was asked to
    /// seal or open a secret.
    #[error(
        "no key-encryption key was given to the store (it was opened to migrate the schema only)"
    )]
    Missing,
}

fn quoted(ids: &[String]) -> String {
    if ids.is_empty() {
        return "none".into();
    }
    ids.iter()
        .map(|i| format!("'{i}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A key-encryption key with its id. Never printed (redacted `Debug`); its derived
/// keys are wiped when it drops.
pub struct Kek {
    id: String,
    aead: Aes256Gcm,
    siv: Cmac<Aes256>,
}

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kek")
            .field("id", &self.id)
            .field("key", &"<redacted>")
            .finish()
    }
}

type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA-256 of `label` under `key`.
fn derive(key: &[u8; KEK_LEN], label: &[u8]) -> Zeroizing<[u8; 32]> {
    use hmac::Mac as _;
    // Any key length is valid for HMAC.
    let mut mac = <HmacSha256 as hmac::Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(label);
    Zeroizing::new(mac.finalize().into_bytes().into())
}

impl Kek {
    /// A KEK from its 32 bytes; `id` `None` derives one from the key (`kek-` and 8
    /// hex digits).
    pub fn new(key: &[u8; KEK_LEN], id: Option<&str>) -> Result<Kek, KekError> {
        let id = match id {
            Some(id) => {
                check_id(id)?;
                id.to_owned()
            }
            None => Kek::derived_id(key),
        };
        let enc = derive(key, b"lorikeet kek v1 aes-256-gcm");
        let siv = derive(key, b"lorikeet kek v1 synthetic nonce");
        Ok(Kek {
            id,
            aead: Aes256Gcm::new((&*enc).into()),
            siv: <Cmac<Aes256> as KeyInit>::new((&*siv).into()),
        })
    }

    /// A KEK from 64 hex digits (surrounding white space is ignored).
    pub fn from_hex(hex_key: &str, id: Option<&str>) -> Result<Kek, KekError> {
        let mut key = parse_hex_key(hex_key)?;
        let kek = Kek::new(&key, id);
        key.zeroize();
        kek
    }

    /// The id derived from a key when none is configured.
    pub fn derived_id(key: &[u8; KEK_LEN]) -> String {
        let d = derive(key, b"lorikeet kek v1 id");
        format!("kek-{}", hex::encode(&d[..4]))
    }

    /// The KEK id stored beside every value it seals.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Seals `plaintext` for the row `context` names.
    pub fn seal(&self, context: &Context<'_>, plaintext: &[u8]) -> Vec<u8> {
        let header = self.header();
        let aad = context.aad(&header);
        let nonce = self.nonce(&aad, plaintext);
        // Encrypting into a Vec only fails for plaintexts beyond GCM's 64 GiB limit.
        let sealed = self
            .aead
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .unwrap_or_else(|_| unreachable!("AES-GCM seals any value Lorikeet stores"));
        let mut out = header;
        out.reserve(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens an envelope sealed by this KEK for `context`; `None` when it does not
    /// open (another key, another row, or changed bytes).
    fn open(&self, context: &Context<'_>, env: &Envelope<'_>) -> Option<Zeroizing<Vec<u8>>> {
        let aad = context.aad(env.header);
        self.aead
            .decrypt(
                Nonce::from_slice(env.nonce),
                Payload {
                    msg: env.sealed,
                    aad: &aad,
                },
            )
            .ok()
            .map(Zeroizing::new)
    }

    fn header(&self) -> Vec<u8> {
        let mut h = Vec::with_capacity(2 + self.id.len() + NONCE_LEN + 64);
        h.push(VERSION);
        // The id was checked to be at most MAX_KEK_ID_LEN (< 256) bytes.
        h.push(self.id.len() as u8);
        h.extend_from_slice(self.id.as_bytes());
        h
    }

    /// The synthetic nonce: CMAC over the associated data's length, the associated
    /// data and the plaintext.
    fn nonce(&self, aad: &[u8], plaintext: &[u8]) -> [u8; NONCE_LEN] {
        let mut mac = self.siv.clone();
        mac.update(&(aad.len() as u64).to_be_bytes());
        mac.update(aad);
        mac.update(plaintext);
        let tag = mac.finalize().into_bytes();
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&tag[..NONCE_LEN]);
        nonce
    }
}

/// Parses 64 hex digits into a key.
pub fn parse_hex_key(s: &str) -> Result<[u8; KEK_LEN], KekError> {
    let s = s.trim();
    if s.len() != 2 * KEK_LEN {
        return Err(KekError::BadKey {
            got: format!("{} characters", s.chars().count()),
        });
    }
    let mut key = [0u8; KEK_LEN];
    hex::decode_to_slice(s, &mut key).map_err(|_| KekError::BadKey {
        got: "a non-hex character".into(),
    })?;
    Ok(key)
}

fn check_id(id: &str) -> Result<(), KekError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_KEK_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(KekError::BadId { id: id.to_owned() })
    }
}

/// Where a sealed value belongs: its table, column and row. Part of the associated
/// data, so a value opens only where it was written.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// Table name.
    pub table: &'static str,
    /// Column name.
    pub column: &'static str,
    /// The row's identity (its primary key's bytes).
    pub row: &'a [u8],
}

impl Context<'_> {
    /// header || table || 0 || column || 0 || row.
    fn aad(&self, header: &[u8]) -> Vec<u8> {
        let mut aad = Vec::with_capacity(
            header.len() + self.table.len() + self.column.len() + self.row.len() + 2,
        );
        aad.extend_from_slice(header);
        aad.extend_from_slice(self.table.as_bytes());
        aad.push(0);
        aad.extend_from_slice(self.column.as_bytes());
        aad.push(0);
        aad.extend_from_slice(self.row);
        aad
    }
}

/// The parts of a stored envelope.
#[derive(Debug)]
struct Envelope<'a> {
    /// Version byte, id length and id: part of the associated data.
    header: &'a [u8],
    kek_id: &'a str,
    nonce: &'a [u8],
    /// Ciphertext and tag.
    sealed: &'a [u8],
}

/// What a stored value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored<'a> {
    /// A plain 16-byte key written before encryption at rest.
    PlainKey,
    /// An envelope sealed under this KEK id.
    Sealed(&'a str),
    /// Neither: not something Lorikeet writes.
    Unknown,
}

/// Tells a plain key from an envelope (and from anything else).
pub fn classify(value: &[u8]) -> Stored<'_> {
    if value.len() == 16 {
        return Stored::PlainKey;
    }
    match parse(value) {
        Some(env) => Stored::Sealed(env.kek_id),
        None => Stored::Unknown,
    }
}

fn parse(value: &[u8]) -> Option<Envelope<'_>> {
    let (&version, rest) = value.split_first()?;
    if version != VERSION {
        return None;
    }
    let (&id_len, rest) = rest.split_first()?;
    let id_len = usize::from(id_len);
    if id_len == 0 || id_len > MAX_KEK_ID_LEN || rest.len() < id_len + NONCE_LEN + TAG_LEN {
        return None;
    }
    let kek_id = std::str::from_utf8(&rest[..id_len]).ok()?;
    let header = &value[..2 + id_len];
    let rest = &rest[id_len..];
    let (nonce, sealed) = rest.split_at(NONCE_LEN);
    Some(Envelope {
        header,
        kek_id,
        nonce,
        sealed,
    })
}

/// Why a stored value did not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// Not an envelope (e.g. a plain key where a sealed one belongs).
    #[error("not an encrypted value ({0})")]
    Malformed(&'static str),
    /// Sealed under a KEK id that is not configured.
    #[error("encrypted under KEK id '{0}', which is not configured")]
    UnknownKek(String),
    /// The KEK with the envelope's id does not open it: the value was changed,
    /// copied from another row or column, or the KEK with that id is another key.
    #[error("does not decrypt under KEK '{0}' (changed, copied from another row, or another key with that id)")]
    Failed(String),
}

/// The configured KEKs: the current one, which seals everything written, and the
/// previous ones, which only open (while `lorikeet keys rotate` moves their values
/// to the current one). Cheap to clone.
#[derive(Clone)]
pub struct Keyring {
    current: Arc<Kek>,
    previous: Arc<[Arc<Kek>]>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.current.id)
            .field(
                "previous",
                &self.previous.iter().map(|k| &k.id).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Keyring {
    /// A keyring that seals and opens with `current` alone.
    pub fn new(current: Kek) -> Keyring {
        Keyring {
            current: Arc::new(current),
            previous: Arc::from(Vec::new()),
        }
    }

    /// `current` to seal and open, `previous` to open only. Ids must be distinct.
    pub fn with_previous(current: Kek, previous: Vec<Kek>) -> Result<Keyring, KekError> {
        let mut seen = std::collections::HashSet::new();
        for id in std::iter::once(&current.id).chain(previous.iter().map(|k| &k.id)) {
            if !seen.insert(id.clone()) {
                return Err(KekError::DuplicateId { id: id.clone() });
            }
        }
        Ok(Keyring {
            current: Arc::new(current),
            previous: previous.into_iter().map(Arc::new).collect(),
        })
    }

    /// The KEK that seals.
    pub fn current(&self) -> &Kek {
        &self.current
    }

    /// The id of the KEK that seals.
    pub fn current_id(&self) -> &str {
        &self.current.id
    }

    /// Every configured id, the current one first.
    pub fn ids(&self) -> Vec<String> {
        std::iter::once(&self.current)
            .chain(self.previous.iter())
            .map(|k| k.id.clone())
            .collect()
    }

    /// The configured KEK with this id.
    pub fn get(&self, id: &str) -> Option<&Kek> {
        std::iter::once(&self.current)
            .chain(self.previous.iter())
            .find(|k| k.id == id)
            .map(|k| &**k)
    }

    /// Seals under the current KEK.
    pub fn seal(&self, context: &Context<'_>, plaintext: &[u8]) -> Vec<u8> {
        self.current.seal(context, plaintext)
    }

    /// Opens an envelope with whichever configured KEK its id names.
    pub fn open(
        &self,
        context: &Context<'_>,
        value: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, OpenError> {
        let env = parse(value).ok_or(OpenError::Malformed(if value.len() == 16 {
            "a plain 16-byte key"
        } else {
            "unknown format"
        }))?;
        let kek = self
            .get(env.kek_id)
            .ok_or_else(|| OpenError::UnknownKek(env.kek_id.to_owned()))?;
        kek.open(context, &env)
            .ok_or_else(|| OpenError::Failed(env.kek_id.to_owned()))
    }

    /// The AES-128 key sealed in `value`.
    pub fn open_key(
        &self,
        context: &Context<'_>,
        value: &[u8],
    ) -> Result<lorikeet_lorawan::Aes128Key, OpenError> {
        let plain = self.open(context, value)?;
        let bytes: [u8; 16] = plain
            .as_slice()
            .try_into()
            .map_err(|_| OpenError::Malformed("not a 16-byte key"))?;
        Ok(lorikeet_lorawan::Aes128Key::from_bytes(bytes))
    }
}

/// What the verifier of a KEK seals: a fixed text, under the KEK's own id as the
/// row, so that start-up can tell "this is the key" in one decryption.
const VERIFIER_TEXT: &[u8] = b"lorikeet key-encryption key verifier v1";

/// The context of the verifier of `kek_id`.
fn verifier_context(kek_id: &str) -> Context<'_> {
    Context {
        table: "kek_verifiers",
        column: "verifier",
        row: kek_id.as_bytes(),
    }
}

/// The verifier row value of `kek`.
pub(crate) fn verifier(kek: &Kek) -> Vec<u8> {
    kek.seal(&verifier_context(&kek.id), VERIFIER_TEXT)
}

/// Checks a stored verifier of `kek_id` against the configured KEKs.
pub(crate) fn check_verifier(
    keyring: &Keyring,
    kek_id: &str,
    value: &[u8],
) -> Result<(), KekError> {
    let Some(kek) = keyring.get(kek_id) else {
        return Err(KekError::UnknownId {
            stored: kek_id.to_owned(),
            configured: keyring.ids(),
        });
    };
    let opened = parse(value)
        .filter(|env| env.kek_id == kek_id)
        .and_then(|env| kek.open(&verifier_context(kek_id), &env));
    match opened {
        Some(text) if text.as_slice() == VERIFIER_TEXT => Ok(()),
        _ => Err(KekError::WrongKey {
            kek_id: kek_id.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kek(b: u8, id: Option<&str>) -> Kek {
        Kek::new(&[b; 32], id).unwrap()
    }

    fn ctx(row: &[u8]) -> Context<'_> {
        Context {
            table: "device_keys",
            column: "app_key",
            row,
        }
    }

    #[test]
    fn seals_and_opens_with_the_id_beside_the_value() {
        let ring = Keyring::new(kek(1, Some("k1")));
        let sealed = ring.seal(&ctx(b"dev-1"), &[0xab; 16]);
        assert_eq!(classify(&sealed), Stored::Sealed("k1"));
        assert_eq!(&sealed[..4], &[1, 2, b'k', b'1']);
        assert_eq!(sealed.len(), 2 + 2 + 12 + 16 + 16);
        assert!(!sealed.windows(16).any(|w| w == [0xab; 16]));
        assert_eq!(
            ring.open_key(&ctx(b"dev-1"), &sealed).unwrap(),
            lorikeet_lorawan::Aes128Key::from_bytes([0xab; 16])
        );
    }

    #[test]
    fn sealing_is_deterministic_per_row_and_value_only() {
        let ring = Keyring::new(kek(1, None));
        let a = ring.seal(&ctx(b"dev-1"), &[7; 16]);
        assert_eq!(
            a,
            ring.seal(&ctx(b"dev-1"), &[7; 16]),
            "same row, same value"
        );
        let other_row = ring.seal(&ctx(b"dev-2"), &[7; 16]);
        let other_value = ring.seal(&ctx(b"dev-1"), &[8; 16]);
        let nonce = |v: &[u8]| v[v.len() - 28..v.len() - 16].to_vec();
        assert_ne!(nonce(&a), nonce(&other_row));
        assert_ne!(nonce(&a), nonce(&other_value));
    }

    #[test]
    fn a_value_opens_only_in_its_own_row_and_column() {
        let ring = Keyring::new(kek(1, None));
        let sealed = ring.seal(&ctx(b"dev-1"), &[7; 16]);
        assert!(matches!(
            ring.open(&ctx(b"dev-2"), &sealed),
            Err(OpenError::Failed(_))
        ));
        let nwk = Context {
            column: "nwk_key",
            ..ctx(b"dev-1")
        };
        assert!(ring.open(&nwk, &sealed).is_err());
        // One flipped bit anywhere: refused.
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert!(ring.open(&ctx(b"dev-1"), &bad).is_err(), "byte {i}");
        }
        assert!(matches!(
            ring.open(&ctx(b"dev-1"), &[7; 16]),
            Err(OpenError::Malformed(_))
        ));
    }

    #[test]
    fn previous_keks_open_and_the_current_one_seals() {
        let old = Keyring::new(kek(1, Some("old")));
        let sealed_old = old.seal(&ctx(b"d"), b"secret");
        let ring = Keyring::with_previous(kek(2, Some("new")), vec![kek(1, Some("old"))]).unwrap();
        assert_eq!(&*ring.open(&ctx(b"d"), &sealed_old).unwrap(), b"secret");
        assert_eq!(
            classify(&ring.seal(&ctx(b"d"), b"x")),
            Stored::Sealed("new")
        );
        let only_new = Keyring::new(kek(2, Some("new")));
        assert_eq!(
            only_new.open(&ctx(b"d"), &sealed_old),
            Err(OpenError::UnknownKek("old".into()))
        );
        // Another key under the same id.
        let impostor = Keyring::new(kek(3, Some("old")));
        assert_eq!(
            impostor.open(&ctx(b"d"), &sealed_old),
            Err(OpenError::Failed("old".into()))
        );
        assert!(matches!(
            Keyring::with_previous(kek(2, Some("a")), vec![kek(1, Some("a"))]),
            Err(KekError::DuplicateId { .. })
        ));
    }

    #[test]
    fn verifiers_tell_the_right_key_from_a_wrong_one() {
        let k1 = kek(1, Some("k1"));
        let v = verifier(&k1);
        let ring = Keyring::new(kek(1, Some("k1")));
        assert_eq!(check_verifier(&ring, "k1", &v), Ok(()));
        let wrong = Keyring::new(kek(9, Some("k1")));
        assert_eq!(
            check_verifier(&wrong, "k1", &v),
            Err(KekError::WrongKey {
                kek_id: "k1".into()
            })
        );
        let other = Keyring::new(kek(1, Some("k2")));
        let e = check_verifier(&other, "k1", &v).unwrap_err();
        assert!(
            e.to_string().contains(
                "the database holds keys encrypted under KEK id 'k1', but no configured KEK has \
                 that id (configured: 'k2')"
            ),
            "{e}"
        );
    }

    #[test]
    fn keys_and_ids_are_checked_and_never_printed() {
        let hex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
        let k = Kek::from_hex(&format!(" {hex}\n"), None).unwrap();
        assert!(
            k.id().starts_with("kek-") && k.id().len() == 12,
            "{}",
            k.id()
        );
        assert_eq!(k.id(), Kek::from_hex(hex, None).unwrap().id(), "stable");
        let shown = format!("{k:?}");
        let shown = format!("{shown} {:?}", Keyring::new(k));
        assert!(!shown.contains("00112233"), "{shown}");
        assert!(matches!(
            Kek::from_hex("0011", None),
            Err(KekError::BadKey { .. })
        ));
        assert!(matches!(
            Kek::from_hex(&hex.replace('0', "g"), None),
            Err(KekError::BadKey { .. })
        ));
        for bad in ["", "a b", "é", &"x".repeat(65)] {
            assert!(
                matches!(Kek::from_hex(hex, Some(bad)), Err(KekError::BadId { .. })),
                "{bad:?}"
            );
        }
        assert_eq!(classify(b"\x01\x00"), Stored::Unknown);
        assert_eq!(classify(&[2; 40]), Stored::Unknown);
    }
}
