//! Alert rules and alerts: `alert_rules` (written by the API) and `alerts` (written
//! by the server's alert task through `apply`, so an alert and its event commit in
//! the same group commit as everything else). SQL shared by both backends.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::paging::limit_offset;
use crate::sql::Ts;
use crate::stmt::{decode_all, Row, Stmt};
use crate::store::Tx;
use crate::{Alert, AlertFilter, AlertRule, AlertState, Page, Store, StoreError};

const RULE_COLUMNS: &str =
    "id, tenant_id, application_id, name, kind, params, created_at, updated_at";

fn decode_rule(r: &Row) -> Result<AlertRule, StoreError> {
    let params: String = r.get("params")?;
    Ok(AlertRule {
        id: r.get("id")?,
        tenant_id: r.get("tenant_id")?,
        application_id: r.get("application_id")?,
        name: r.get("name")?,
        kind: r.get("kind")?,
        params: serde_json::from_str(&params).map_err(|e| StoreError::Corrupt {
            table: "alert_rules",
            column: "params",
            detail: e.to_string(),
        })?,
        created_at: r.ts("created_at")?,
        updated_at: r.ts("updated_at")?,
    })
}

pub(crate) async fn create_rule(db: &Store, rule: &AlertRule) -> Result<(), StoreError> {
    db.execute(
        Stmt::new(
            "INSERT INTO alert_rules (id, tenant_id, application_id, name, kind, params, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(rule.id)
        .bind(rule.tenant_id)
        .bind(rule.application_id)
        .bind(rule.name.as_str())
        .bind(rule.kind.as_str())
        .bind(rule.params.to_string())
        .bind(Ts(rule.created_at))
        .bind(Ts(rule.updated_at)),
    )
    .await
    .map_err(|e| StoreError::from_write("alert rule", rule.id, e))?;
    Ok(())
}

pub(crate) async fn get_rule(db: &Store, id: Uuid) -> Result<Option<AlertRule>, StoreError> {
    db.fetch_optional(Stmt::select(RULE_COLUMNS, "FROM alert_rules WHERE id = $1").bind(id))
        .await?
        .as_ref()
        .map(decode_rule)
        .transpose()
}

/// Rules of a tenant (or all), narrowed to an application's when given (the
/// application's own rules and the tenant-wide ones), oldest first.
pub(crate) async fn list_rules(
    db: &Store,
    tenant_id: Option<Uuid>,
    application_id: Option<Uuid>,
    page: Page,
) -> Result<Vec<AlertRule>, StoreError> {
    let (limit, offset) = limit_offset(page);
    let rows = db
        .fetch_all(
            Stmt::select(
                RULE_COLUMNS,
                "FROM alert_rules WHERE ($1 IS NULL OR tenant_id = $1) \
                 AND ($2 IS NULL OR application_id IS NULL OR application_id = $2) \
                 ORDER BY created_at, id LIMIT $3 OFFSET $4",
            )
            .bind(tenant_id)
            .bind(application_id)
            .bind(limit)
            .bind(offset),
        )
        .await?;
    decode_all(rows, decode_rule)
}

/// Changes name, application and params (the kind and tenant stay).
pub(crate) async fn update_rule(db: &Store, rule: &AlertRule) -> Result<bool, StoreError> {
    let n = db
        .execute(
            Stmt::new(
                "UPDATE alert_rules SET name = $2, application_id = $3, params = $4, \
                 updated_at = $5 WHERE id = $1",
            )
            .bind(rule.id)
            .bind(rule.name.as_str())
            .bind(rule.application_id)
            .bind(rule.params.to_string())
            .bind(Ts(rule.updated_at)),
        )
        .await
        .map_err(|e| StoreError::from_write("alert rule", rule.id, e))?;
    Ok(n > 0)
}

/// Deletes a rule with its alerts.
pub(crate) async fn delete_rule(db: &Store, id: Uuid) -> Result<bool, StoreError> {
    let n = db
        .execute(Stmt::new("DELETE FROM alert_rules WHERE id = $1").bind(id))
        .await?;
    Ok(n > 0)
}

const ALERT_COLUMNS: &str = "a.id, a.rule_id, r.name AS rule_name, r.kind, a.tenant_id, \
     a.application_id, a.subject_type, a.subject, a.state, a.message, a.resolve_message, \
     a.fired_at, a.resolved_at";

fn decode_alert(r: &Row) -> Result<Alert, StoreError> {
    Ok(Alert {
        id: r.get("id")?,
        rule_id: r.get("rule_id")?,
        rule_name: r.get("rule_name")?,
        kind: r.get("kind")?,
        tenant_id: r.get("tenant_id")?,
        application_id: r.get("application_id")?,
        subject_type: r.get("subject_type")?,
        subject: r.get("subject")?,
        state: r.known("alerts", "state", AlertState::parse)?,
        message: r.get("message")?,
        resolve_message: r.get("resolve_message")?,
        fired_at: r.ts("fired_at")?,
        resolved_at: r.opt_ts("resolved_at")?,
    })
}

/// Alerts newest first (firing ones by when they fired, resolved ones by when
/// they resolved).
pub(crate) async fn list_alerts(
    db: &Store,
    filter: AlertFilter,
    page: Page,
) -> Result<Vec<Alert>, StoreError> {
    let (limit, offset) = limit_offset(page);
    let order = match filter.state {
        Some(AlertState::Resolved) => "a.resolved_at DESC, a.id",
        _ => "a.fired_at DESC, a.id",
    };
    let rows = db
        .fetch_all(
            Stmt::select(
                ALERT_COLUMNS,
                &format!(
                    "FROM alerts a JOIN alert_rules r ON r.id = a.rule_id \
                     WHERE ($1 IS NULL OR a.tenant_id = $1) \
                     AND ($2 IS NULL OR a.application_id = $2) \
                     AND ($3 IS NULL OR a.rule_id = $3) \
                     AND ($4 IS NULL OR a.state = $4) \
                     ORDER BY {order} LIMIT $5 OFFSET $6"
                ),
            )
            .bind(filter.tenant_id)
            .bind(filter.application_id)
            .bind(filter.rule_id)
            .bind(filter.state.map(AlertState::as_str))
            .bind(limit)
            .bind(offset),
        )
        .await?;
    decode_all(rows, decode_alert)
}

pub(crate) async fn get_alert(db: &Store, id: Uuid) -> Result<Option<Alert>, StoreError> {
    db.fetch_optional(
        Stmt::select(
            ALERT_COLUMNS,
            "FROM alerts a JOIN alert_rules r ON r.id = a.rule_id WHERE a.id = $1",
        )
        .bind(id),
    )
    .await?
    .as_ref()
    .map(decode_alert)
    .transpose()
}

/// In `apply`: stores a firing alert, unless its rule is gone (deleted meanwhile)
/// or the rule already fires for the subject (fire once).
pub(crate) async fn fired(tx: &mut Tx, a: &Alert) -> Result<(), StoreError> {
    tx.execute(
        Stmt::new(
            "INSERT INTO alerts (id, rule_id, tenant_id, application_id, subject_type, subject, \
             state, message, fired_at) \
             SELECT $1, $2, $3, $4, $5, $6, 'firing', $7, $8 \
             WHERE EXISTS (SELECT 1 FROM alert_rules WHERE id = $2) \
             AND NOT EXISTS (SELECT 1 FROM alerts WHERE rule_id = $2 AND subject = $6 \
               AND state = 'firing')",
        )
        .bind(a.id)
        .bind(a.rule_id)
        .bind(a.tenant_id)
        .bind(a.application_id)
        .bind(a.subject_type.as_str())
        .bind(a.subject.as_str())
        .bind(a.message.as_str())
        .bind(Ts(a.fired_at)),
    )
    .await?;
    Ok(())
}

/// In `apply`: resolves a firing alert (an alert already resolved stays as it was).
pub(crate) async fn resolved(
    tx: &mut Tx,
    id: Uuid,
    at: DateTime<Utc>,
    message: &str,
) -> Result<(), StoreError> {
    tx.execute(
        Stmt::new(
            "UPDATE alerts SET state = 'resolved', resolved_at = $2, resolve_message = $3 \
             WHERE id = $1 AND state = 'firing'",
        )
        .bind(id)
        .bind(Ts(at))
        .bind(message),
    )
    .await?;
    Ok(())
}

/// Retention: deletes alerts resolved before `cutoff`.
pub(crate) async fn delete_resolved_before(
    db: &Store,
    cutoff: DateTime<Utc>,
) -> Result<u64, StoreError> {
    Ok(db
        .execute(
            Stmt::new("DELETE FROM alerts WHERE state = 'resolved' AND resolved_at < $1")
                .bind(Ts(cutoff)),
        )
        .await?)
}
