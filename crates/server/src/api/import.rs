//! CSV import: every row is checked before the first is written, and all rows
//! go in one transaction, so a bad file imports nothing.
//!
//! The header row names the columns: `mac`, `vendor` and `model` are required,
//! `group` and `contact` are optional, and every other column is a setting key
//! (an empty cell sets nothing). Errors name the line and the column.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Extension;
use axum::Json;
use sipprov_api::Imported;
use sipprov_model::Settings;
use sipprov_store::NewDevice;

use super::{ApiError, ApiResult};
use crate::access::Actor;
use crate::auth::Security;
use crate::inventory::Inventory;
use crate::registry::validate::{validate_new_device, Invalid};
use crate::registry::Registry;

const RESERVED: [&str; 5] = ["mac", "vendor", "model", "group", "contact"];
const MAX_ROWS: usize = 200_000;

/// `POST /api/v1/devices/import` with a CSV body.
#[utoipa::path(post, path = "/api/v1/devices/import", tag = "devices",
    request_body(content = String, content_type = "text/csv", description = "header `mac,vendor,model,group`, then setting keys; all rows or none"),
    responses((status = 200, description = "how many devices were added", body = sipprov_api::Imported), (status = 400, description = "a malformed request; `field` names the member at fault", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 401, description = "missing or wrong bearer token", body = sipprov_api::Problem, content_type = "application/problem+json"),
        (status = 409, description = "a device exists already; nothing was imported", body = sipprov_api::Problem, content_type = "application/problem+json")))]
pub(super) async fn import_devices(
    State(registry): State<Arc<Registry>>,
    State(inventory): State<Arc<Inventory>>,
    State(security): State<Arc<Security>>,
    Extension(actor): Extension<Actor>,
    body: String,
) -> ApiResult<Json<Imported>> {
    let devices = parse_csv(&body).map_err(ApiError::from)?;
    if let Some(d) = devices.iter().find(|d| inventory.contains(d.mac)) {
        let detail = format!("device {} already exists; nothing was imported", d.mac);
        return Err(ApiError::new(StatusCode::CONFLICT, detail).at("mac"));
    }
    registry
        .check_new_devices(&devices)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("{e}; nothing was imported")))?;
    let mut doomed = Vec::new();
    registry
        .import_devices_with(&actor, &devices, |stored| {
            if crate::auth::posture::locked_after_first_fetch(&inventory, &security, stored) {
                doomed.push(stored.mac);
            }
        })
        .await?;
    crate::auth::posture::warn_about_new(&doomed);
    tracing::info!(count = devices.len(), "devices imported");
    Ok(Json(Imported { imported: devices.len() }))
}

/// Parses and validates a whole CSV file; the error names the line, and the column at fault as
/// its field.
pub(super) fn parse_csv(text: &str) -> Result<Vec<NewDevice>, Invalid> {
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).flexible(false).from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| Invalid { field: None, message: format!("cannot read the CSV header: {e}") })?
        .iter()
        .map(|h| column_key(h.trim_start_matches('\u{feff}')))
        .collect();
    let columns = Columns::from_header(&header)?;
    let mut seen = HashSet::new();
    let mut devices = Vec::new();
    for record in reader.records() {
        let record =
            record.map_err(|e| Invalid { field: None, message: format!("CSV error: {e}; nothing was imported") })?;
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        if devices.len() >= MAX_ROWS {
            return Err(Invalid { field: None, message: format!("more than {MAX_ROWS} rows; split the file") });
        }
        let device = columns
            .device(&record)
            .map_err(|e| Invalid { message: format!("line {line}: {e}; nothing was imported"), ..e })?;
        if !seen.insert(device.mac) {
            let message = format!(
                "line {line}: field mac: device {} appears twice in the file; nothing was imported",
                device.mac
            );
            return Err(Invalid::at("mac", message));
        }
        devices.push(device);
    }
    if devices.is_empty() {
        return Err(Invalid { field: None, message: "the CSV file has a header but no devices".into() });
    }
    Ok(devices)
}

/// A header cell as a setting key: lower case, except the raw name after `vendor.`, which is
/// the vendor's own parameter name and may be case-sensitive (Cisco element names such as
/// `SIP_Transport_1_` are matched exactly by the phone).
fn column_key(header: &str) -> String {
    match header.get(..7).filter(|p| p.eq_ignore_ascii_case("vendor.")) {
        Some(_) => format!("vendor.{}", &header[7..]),
        None => header.to_ascii_lowercase(),
    }
}

struct Columns {
    index: HashMap<&'static str, usize>,
    settings: Vec<(usize, String)>,
}

impl Columns {
    fn from_header(header: &[String]) -> Result<Columns, Invalid> {
        let mut index = HashMap::new();
        let mut settings = Vec::new();
        for (i, name) in header.iter().enumerate() {
            if let Some(r) = RESERVED.iter().find(|r| **r == name) {
                if index.insert(*r, i).is_some() {
                    return Err(Invalid::at(name, format!("header: column {name:?} appears twice")));
                }
            } else {
                sipprov_vendors::classify_setting(name)
                    .map_err(|e| Invalid::at(name, format!("header: column {}: {e}", i + 1)))?;
                settings.push((i, name.clone()));
            }
        }
        for required in ["mac", "vendor", "model"] {
            if !index.contains_key(required) {
                return Err(Invalid::at(
                    required,
                    format!(
                        "header: the required column {required:?} is missing (expected mac,vendor,model,group,...)"
                    ),
                ));
            }
        }
        Ok(Columns { index, settings })
    }

    fn cell<'r>(&self, record: &'r csv::StringRecord, name: &str) -> Option<&'r str> {
        self.index.get(name).and_then(|&i| record.get(i)).filter(|v| !v.is_empty())
    }

    fn device(&self, record: &csv::StringRecord) -> Result<NewDevice, Invalid> {
        let required =
            |name: &str| self.cell(record, name).ok_or_else(|| Invalid::at(name, format!("field {name}: empty")));
        let mut settings = Settings::new();
        for (i, key) in &self.settings {
            if let Some(value) = record.get(*i).filter(|v| !v.is_empty()) {
                let value = sipprov_vendors::validate_setting(key, value)
                    .map_err(|e| Invalid::at(key, format!("field {key}: {e}")))?;
                settings.set(key, &value).map_err(|e| Invalid::at(key, format!("field {key}: {e}")))?;
            }
        }
        let mac = required("mac")?;
        validate_new_device(
            mac,
            required("vendor")?,
            required("model")?,
            self.cell(record, "group").map(String::from),
            self.cell(record, "contact").map(String::from),
            settings,
        )
        .map_err(|e| Invalid { message: format!("device {mac}: {e}"), ..e })
    }
}
