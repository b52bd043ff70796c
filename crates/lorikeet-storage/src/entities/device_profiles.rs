//! Device profiles: `device_profiles` (region, MAC version, RX settings, payload
//! codec, MAC settings). SQL shared by both backends.

use sqlx::types::Json;
use uuid::Uuid;

use crate::sql::Ts;
use crate::stmt::{Row, Stmt};
use crate::{paging, Changed, DeviceProfile, Page, PayloadCodec, Store, StoreError};

const TABLE: &str = "device_profiles";

const COLUMNS: &str = "id, tenant_id, name, description, region, mac_version, \
     reg_params_revision, supports_otaa, supports_class_c, adr_enabled, rx1_delay, \
     rx1_dr_offset, rx2_dr, rx2_frequency_hz, codec_type, codec_script, mac_settings, \
     created_at, updated_at";

fn decode(r: &Row) -> Result<DeviceProfile, StoreError> {
    let script: String = r.get("codec_script")?;
    Ok(DeviceProfile {
        id: r.get("id")?,
        tenant_id: r.get("tenant_id")?,
        name: r.get("name")?,
        description: r.get("description")?,
        region: r.get("region")?,
        mac_version: r.get("mac_version")?,
        reg_params_revision: r.get("reg_params_revision")?,
        supports_otaa: r.get("supports_otaa")?,
        supports_class_c: r.get("supports_class_c")?,
        adr_enabled: r.get("adr_enabled")?,
        rx1_delay: r.int(TABLE, "rx1_delay")?,
        rx1_dr_offset: r.int(TABLE, "rx1_dr_offset")?,
        rx2_dr: r.opt_int(TABLE, "rx2_dr")?,
        rx2_frequency_hz: r.opt_int(TABLE, "rx2_frequency_hz")?,
        payload_codec: r.known(TABLE, "codec_type", |t| PayloadCodec::from_parts(t, script))?,
        mac_settings: r.json("mac_settings")?,
        created_at: r.ts("created_at")?,
        updated_at: r.ts("updated_at")?,
    })
}

pub(crate) async fn create(db: &Store, p: &DeviceProfile) -> Result<(), StoreError> {
    db.provision_one(
        Changed::DeviceProfile(p.id),
        Stmt::new(format!(
            "INSERT INTO device_profiles ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, \
             $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)"
        ))
        .bind(p.id)
        .bind(p.tenant_id)
        .bind(p.name.as_str())
        .bind(p.description.as_str())
        .bind(p.region.as_str())
        .bind(p.mac_version.as_str())
        .bind(p.reg_params_revision.as_str())
        .bind(p.supports_otaa)
        .bind(p.supports_class_c)
        .bind(p.adr_enabled)
        .bind(i64::from(p.rx1_delay))
        .bind(i64::from(p.rx1_dr_offset))
        .bind(p.rx2_dr.map(i64::from))
        .bind(p.rx2_frequency_hz.map(i64::from))
        .bind(p.payload_codec.type_name())
        .bind(p.payload_codec.script())
        .bind(Json(&p.mac_settings))
        .bind(Ts(p.created_at))
        .bind(Ts(p.updated_at)),
    )
    .await
    .map_err(|e| StoreError::from_write("device profile", p.id, e))?;
    Ok(())
}

pub(crate) async fn get(db: &Store, id: Uuid) -> Result<Option<DeviceProfile>, StoreError> {
    paging::one(db, COLUMNS, "device_profiles", "id", id, decode).await
}

pub(crate) async fn list(
    db: &Store,
    tenant_id: Option<Uuid>,
    page: Page,
) -> Result<Vec<DeviceProfile>, StoreError> {
    paging::of_tenant(
        db,
        COLUMNS,
        "device_profiles",
        "name, id",
        tenant_id,
        page,
        decode,
    )
    .await
}

/// Every field but id, tenant and creation time.
pub(crate) async fn update(db: &Store, p: &DeviceProfile) -> Result<bool, StoreError> {
    let n = db
        .provision_one(
            Changed::DeviceProfile(p.id),
            Stmt::new(
                "UPDATE device_profiles SET name = $2, description = $3, region = $4, \
                 mac_version = $5, reg_params_revision = $6, supports_otaa = $7, \
                 supports_class_c = $8, adr_enabled = $9, rx1_delay = $10, \
                 rx1_dr_offset = $11, rx2_dr = $12, rx2_frequency_hz = $13, \
                 codec_type = $14, codec_script = $15, mac_settings = $16, updated_at = $17 \
                 WHERE id = $1",
            )
            .bind(p.id)
            .bind(p.name.as_str())
            .bind(p.description.as_str())
            .bind(p.region.as_str())
            .bind(p.mac_version.as_str())
            .bind(p.reg_params_revision.as_str())
            .bind(p.supports_otaa)
            .bind(p.supports_class_c)
            .bind(p.adr_enabled)
            .bind(i64::from(p.rx1_delay))
            .bind(i64::from(p.rx1_dr_offset))
            .bind(p.rx2_dr.map(i64::from))
            .bind(p.rx2_frequency_hz.map(i64::from))
            .bind(p.payload_codec.type_name())
            .bind(p.payload_codec.script())
            .bind(Json(&p.mac_settings))
            .bind(Ts(p.updated_at)),
        )
        .await?;
    Ok(n > 0)
}

/// Refused with [`StoreError::InUse`] while devices use the profile (counted in the
/// same transaction as the delete).
pub(crate) async fn delete(db: &Store, id: Uuid) -> Result<bool, StoreError> {
    let mut p = db.provision().await?;
    let users: i64 = p
        .fetch_one(
            Stmt::new("SELECT COUNT(*) AS n FROM devices WHERE device_profile_id = $1").bind(id),
        )
        .await?
        .get("n")?;
    if users > 0 {
        return Err(StoreError::InUse {
            entity: "device profile",
            key: id.to_string(),
            users: format!("{users} device{}", if users == 1 { "" } else { "s" }),
        });
    }
    let n = p
        .execute(Stmt::new("DELETE FROM device_profiles WHERE id = $1").bind(id))
        .await?;
    if n > 0 {
        p.record(Changed::DeviceProfile(id));
    }
    p.commit().await?;
    Ok(n > 0)
}
