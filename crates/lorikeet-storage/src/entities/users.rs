//! Console users, their roles per tenant and their sessions: `users`, `user_roles`,
//! `user_sessions`. Passwords are stored as argon2id PHC strings (hashed by the
//! caller), session tokens as their SHA-256. SQL shared by both backends.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::sql::Ts;
use crate::stmt::{Row, Stmt};
use crate::{Page, Role, Store, StoreError, User, UserSession};

const COLUMNS: &str = "id, email, is_admin, created_at, updated_at";

fn decode(r: &Row) -> Result<User, StoreError> {
    Ok(User {
        id: r.get("id")?,
        email: r.get("email")?,
        is_admin: r.get("is_admin")?,
        roles: Vec::new(),
        created_at: r.ts("created_at")?,
        updated_at: r.ts("updated_at")?,
    })
}

/// Fills in `user.roles`.
async fn with_roles(db: &Store, mut user: User) -> Result<User, StoreError> {
    user.roles = roles(db, user.id).await?;
    Ok(user)
}

async fn roles(db: &Store, user_id: Uuid) -> Result<Vec<(Uuid, Role)>, StoreError> {
    let rows = db
        .fetch_all(
            Stmt::new(
                "SELECT tenant_id, role FROM user_roles WHERE user_id = $1 ORDER BY tenant_id",
            )
            .bind(user_id),
        )
        .await?;
    rows.iter()
        .map(|r| {
            let role: String = r.get("role")?;
            let role = Role::parse(&role).ok_or_else(|| StoreError::Corrupt {
                table: "user_roles",
                column: "role",
                detail: format!("unknown role {role:?}"),
            })?;
            Ok((r.get("tenant_id")?, role))
        })
        .collect()
}

pub(crate) async fn create(db: &Store, user: &User, password_hash: &str) -> Result<(), StoreError> {
    let mut tx = db.begin().await?;
    tx.execute(
        Stmt::new(
            "INSERT INTO users (id, email, password_hash, is_admin, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(user.id)
        .bind(user.email.as_str())
        .bind(password_hash)
        .bind(user.is_admin)
        .bind(Ts(user.created_at))
        .bind(Ts(user.updated_at)),
    )
    .await
    .map_err(|e| StoreError::from_write("user", &user.email, e))?;
    for (tenant, role) in &user.roles {
        tx.execute(
            Stmt::new("INSERT INTO user_roles (user_id, tenant_id, role) VALUES ($1, $2, $3)")
                .bind(user.id)
                .bind(*tenant)
                .bind(role.as_str()),
        )
        .await
        .map_err(|e| StoreError::from_write("user role", tenant, e))?;
    }
    tx.commit().await?;
    Ok(())
}

pub(crate) async fn get(db: &Store, id: Uuid) -> Result<Option<User>, StoreError> {
    let row = db
        .fetch_optional(Stmt::select(COLUMNS, "FROM users WHERE id = $1").bind(id))
        .await?;
    match row {
        Some(r) => Ok(Some(with_roles(db, decode(&r)?).await?)),
        None => Ok(None),
    }
}

/// The user with this (lower-cased) email and their password hash.
pub(crate) async fn by_email(
    db: &Store,
    email: &str,
) -> Result<Option<(User, String)>, StoreError> {
    let row = db
        .fetch_optional(
            Stmt::select(
                &format!("{COLUMNS}, password_hash"),
                "FROM users WHERE email = $1",
            )
            .bind(email),
        )
        .await?;
    match row {
        Some(r) => {
            let hash: String = r.get("password_hash")?;
            Ok(Some((with_roles(db, decode(&r)?).await?, hash)))
        }
        None => Ok(None),
    }
}

pub(crate) async fn password_hash(db: &Store, id: Uuid) -> Result<Option<String>, StoreError> {
    let row = db
        .fetch_optional(Stmt::new("SELECT password_hash FROM users WHERE id = $1").bind(id))
        .await?;
    Ok(row.map(|r| r.get("password_hash")).transpose()?)
}

/// Users, oldest first; with `tenant`, only those holding a role in it.
pub(crate) async fn list(
    db: &Store,
    tenant: Option<Uuid>,
    page: Page,
) -> Result<Vec<User>, StoreError> {
    let (limit, offset) = crate::paging::limit_offset(page);
    let rows = db
        .fetch_all(
            Stmt::select(
                COLUMNS,
                "FROM users WHERE ($1 IS NULL OR id IN \
                 (SELECT user_id FROM user_roles WHERE tenant_id = $1)) \
                 ORDER BY created_at, id LIMIT $2 OFFSET $3",
            )
            .bind(tenant)
            .bind(limit)
            .bind(offset),
        )
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        out.push(with_roles(db, decode(r)?).await?);
    }
    Ok(out)
}

/// Changes email and admin flag; false when there is no such user.
pub(crate) async fn update(
    db: &Store,
    id: Uuid,
    email: &str,
    is_admin: bool,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let n = db
        .execute(
            Stmt::new("UPDATE users SET email = $2, is_admin = $3, updated_at = $4 WHERE id = $1")
                .bind(id)
                .bind(email)
                .bind(is_admin)
                .bind(Ts(now)),
        )
        .await
        .map_err(|e| StoreError::from_write("user", email, e))?;
    Ok(n > 0)
}

/// A new password; every session of the user ends, except `keep` (the session that
/// changed it).
pub(crate) async fn set_password(
    db: &Store,
    id: Uuid,
    password_hash: &str,
    keep: Option<&[u8; 32]>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let mut tx = db.begin().await?;
    let n = tx
        .execute(
            Stmt::new("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1")
                .bind(id)
                .bind(password_hash)
                .bind(Ts(now)),
        )
        .await?;
    tx.execute(
        Stmt::new("DELETE FROM user_sessions WHERE user_id = $1 AND token_hash <> $2")
            .bind(id)
            .bind(keep.map_or_else(Vec::new, |k| k.to_vec())),
    )
    .await?;
    tx.commit().await?;
    Ok(n > 0)
}

/// Replaces the user's roles; false when there is no such user.
pub(crate) async fn set_roles(
    db: &Store,
    id: Uuid,
    roles: &[(Uuid, Role)],
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let mut tx = db.begin().await?;
    let n = tx
        .execute(
            Stmt::new("UPDATE users SET updated_at = $2 WHERE id = $1")
                .bind(id)
                .bind(Ts(now)),
        )
        .await?;
    if n == 0 {
        return Ok(false);
    }
    tx.execute(Stmt::new("DELETE FROM user_roles WHERE user_id = $1").bind(id))
        .await?;
    for (tenant, role) in roles {
        tx.execute(
            Stmt::new("INSERT INTO user_roles (user_id, tenant_id, role) VALUES ($1, $2, $3)")
                .bind(id)
                .bind(*tenant)
                .bind(role.as_str()),
        )
        .await
        .map_err(|e| StoreError::from_write("user role", tenant, e))?;
    }
    tx.commit().await?;
    Ok(true)
}

pub(crate) async fn delete(db: &Store, id: Uuid) -> Result<bool, StoreError> {
    let n = db
        .execute(Stmt::new("DELETE FROM users WHERE id = $1").bind(id))
        .await?;
    Ok(n > 0)
}

pub(crate) async fn create_session(db: &Store, s: &UserSession) -> Result<(), StoreError> {
    db.execute(
        Stmt::new(
            "INSERT INTO user_sessions (token_hash, user_id, csrf_token, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(s.token_hash.to_vec())
        .bind(s.user_id)
        .bind(s.csrf_token.as_str())
        .bind(Ts(s.created_at))
        .bind(Ts(s.expires_at)),
    )
    .await
    .map_err(|e| StoreError::from_write("session", s.user_id, e))?;
    Ok(())
}

/// The session with this token digest, if it has not expired at `now`, and its user.
pub(crate) async fn session(
    db: &Store,
    token_hash: &[u8; 32],
    now: DateTime<Utc>,
) -> Result<Option<(UserSession, User)>, StoreError> {
    let row = db
        .fetch_optional(
            Stmt::new(
                "SELECT s.user_id, s.csrf_token, s.created_at AS s_created, s.expires_at, \
                 u.id, u.email, u.is_admin, u.created_at, u.updated_at \
                 FROM user_sessions s JOIN users u ON u.id = s.user_id \
                 WHERE s.token_hash = $1 AND s.expires_at > $2",
            )
            .bind(token_hash.to_vec())
            .bind(Ts(now)),
        )
        .await?;
    let Some(r) = row else { return Ok(None) };
    let session = UserSession {
        token_hash: *token_hash,
        user_id: r.get("user_id")?,
        csrf_token: r.get("csrf_token")?,
        created_at: r.ts("s_created")?,
        expires_at: r.ts("expires_at")?,
    };
    let user = with_roles(db, decode(&r)?).await?;
    Ok(Some((session, user)))
}

pub(crate) async fn delete_session(db: &Store, token_hash: &[u8; 32]) -> Result<bool, StoreError> {
    let n = db
        .execute(
            Stmt::new("DELETE FROM user_sessions WHERE token_hash = $1").bind(token_hash.to_vec()),
        )
        .await?;
    Ok(n > 0)
}

/// Removes sessions that expired before `now`; how many.
pub(crate) async fn purge_sessions(db: &Store, now: DateTime<Utc>) -> Result<u64, StoreError> {
    Ok(db
        .execute(Stmt::new("DELETE FROM user_sessions WHERE expires_at <= $1").bind(Ts(now)))
        .await?)
}

/// How many users have the admin flag.
pub(crate) async fn count_admins(db: &Store) -> Result<u64, StoreError> {
    let r = db
        .fetch_one(Stmt::new("SELECT COUNT(*) AS n FROM users WHERE is_admin = $1").bind(true))
        .await?;
    let n: i64 = r.get("n")?;
    Ok(u64::try_from(n).unwrap_or(0))
}
