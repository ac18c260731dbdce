//! CSV import, streamed: the body is parsed as it arrives (on a blocking thread), and every
//! batch of rows is checked and written into one store transaction as soon as it is parsed,
//! so a file of a million rows is never held whole. A bad row anywhere refuses the whole file,
//! naming its line and column, and the transaction is rolled back: nothing is written.
//!
//! The header row names the columns: `mac`, `vendor` and `model` are required,
//! `group` and `contact` are optional, and every other column is a setting key
//! (an empty cell sets nothing). Errors name the line and the column.
//!
//! Limits: at most [`MAX_ROWS`] devices and [`MAX_BYTES`] bytes per file (413 beyond).

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Extension;
use axum::Json;
use bytes::{Buf, Bytes};
use futures_util::StreamExt;
use sipprov_api::Imported;
use sipprov_model::{Mac, Settings};
use sipprov_store::{DeviceRecord, NewDevice};
use tokio::sync::mpsc;

use super::{ApiError, ApiResult};
use crate::access::Actor;
use crate::auth::Security;
use crate::inventory::Inventory;
use crate::registry::validate::{validate_new_device, Invalid};
use crate::registry::Registry;

const RESERVED: [&str; 5] = ["mac", "vendor", "model", "group", "contact"];
/// Most devices in one file: twice the million devices one node is sized for.
pub(super) const MAX_ROWS: usize = 2_000_000;
/// Most bytes in one file (512 MiB): a 2,000,000-row file with a few settings a row is about
/// 160 MB. The body is never held whole, so this bounds the time an import may take, not memory.
pub(super) const MAX_BYTES: u64 = 512 << 20;
/// Rows checked and written together: large enough for few statements, small enough that a
/// batch in flight is a few hundred kilobytes.
const BATCH_ROWS: usize = 2_000;

/// A parsed row: its line in the file and the device it describes.
type Row = (u64, NewDevice);

/// `POST /api/v1/devices/import` with a CSV body.
#[utoipa::path(post, path = "/api/v1/devices/import", tag = "devices",
    request_body(content = String, content_type = "text/csv", description = "header `mac,vendor,model,group`, then setting keys; all rows or none; streamed, at most 2,000,000 rows and 512 MiB"),
    responses((status = 200, description = "how many devices were added", body = sipprov_api::Imported), (status = 400, description = "a malformed request; `field` names the member at fault", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 401, description = "missing or wrong bearer token", body = sipprov_api::Problem, content_type = "application/problem+json"),
        (status = 409, description = "a device exists already; nothing was imported", body = sipprov_api::Problem, content_type = "application/problem+json"),
        (status = 413, description = "the file is larger than 512 MiB; nothing was imported", body = sipprov_api::Problem, content_type = "application/problem+json")))]
pub(super) async fn import_devices(
    State(registry): State<Arc<Registry>>,
    State(inventory): State<Arc<Inventory>>,
    State(security): State<Arc<Security>>,
    Extension(actor): Extension<Actor>,
    headers: axum::http::HeaderMap,
    body: Body,
) -> ApiResult<Json<Imported>> {
    let declared = headers.get(axum::http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_BYTES) {
        return Err(too_large());
    }
    let (chunks_tx, chunks_rx) = mpsc::channel(8);
    let (rows_tx, mut rows_rx) = mpsc::channel(2);
    let pump = tokio::spawn(pump(body, chunks_tx, MAX_BYTES));
    let parser = tokio::task::spawn_blocking(move || parse_stream(ChunkReader::new(chunks_rx), &rows_tx));
    let outcome = store_rows(&registry, &inventory, &security, &actor, &mut rows_rx).await;
    // Stop the parser (if the rows were refused early) and let the pump read the rest of the
    // body, so the client, still sending, receives the answer rather than a reset connection.
    drop(rows_rx);
    let _ = parser.await;
    if matches!(pump.await, Ok(Err(Pumped::TooLarge))) {
        return Err(too_large());
    }
    let imported = outcome?;
    tracing::info!(count = imported, "devices imported");
    Ok(Json(Imported { imported }))
}

/// The 413 of a file past [`MAX_BYTES`].
fn too_large() -> ApiError {
    let detail = format!("the file is larger than {MAX_BYTES} bytes; split it; nothing was imported");
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, detail)
}

/// Checks each parsed batch and writes it into the import's transaction; commits once the
/// file ends without error. Any error drops the import, which rolls everything back.
async fn store_rows(
    registry: &Registry,
    inventory: &Inventory,
    security: &Security,
    actor: &Actor,
    rows: &mut mpsc::Receiver<Result<Vec<Row>, Invalid>>,
) -> ApiResult<usize> {
    let mut import = registry.begin_import().await?;
    let mut stored: Vec<Arc<DeviceRecord>> = Vec::new();
    while let Some(batch) = rows.recv().await {
        let batch = batch.map_err(ApiError::from)?;
        let (lines, devices): (Vec<u64>, Vec<NewDevice>) = batch.into_iter().unzip();
        if let Some((i, d)) = devices.iter().enumerate().find(|(_, d)| inventory.contains(d.mac)) {
            let detail = format!("line {}: device {} already exists; nothing was imported", lines[i], d.mac);
            return Err(ApiError::new(StatusCode::CONFLICT, detail).at("mac"));
        }
        if let Some((i, why)) = registry.first_invalid(&devices) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("line {}: {why}; nothing was imported", lines[i]),
            ));
        }
        import.add(&devices).await?;
        stored.reserve(devices.len());
        stored.extend(devices.into_iter().map(|d| Arc::new(import.record(d))));
    }
    if stored.is_empty() {
        return Err(Invalid { field: None, message: "the CSV file has a header but no devices".into() }.into());
    }
    let doomed: Vec<Mac> = stored
        .iter()
        .filter(|d| crate::auth::posture::locked_after_first_fetch(inventory, security, d))
        .map(|d| d.mac)
        .collect();
    let added = registry.commit_import(actor, import, stored).await?;
    crate::auth::posture::warn_about_new(&doomed);
    Ok(added)
}

/// Why the pump stopped early.
enum Pumped {
    /// The body passed [`MAX_BYTES`].
    TooLarge,
    /// The client's upload broke off.
    Broken,
}

/// Forwards the body's chunks to the parser, at most `max` bytes. Once the parser stops (it
/// refused a row), the rest of the body is read and dropped, so the client gets the answer.
async fn pump(body: Body, chunks: mpsc::Sender<std::io::Result<Bytes>>, max: u64) -> Result<(), Pumped> {
    let mut stream = body.into_data_stream();
    let mut total = 0u64;
    let mut forwarding = true;
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(e) => {
                let _ = chunks.send(Err(std::io::Error::other(format!("the upload broke off: {e}")))).await;
                return Err(Pumped::Broken);
            }
        };
        total += chunk.len() as u64;
        if total > max {
            let _ = chunks.send(Err(std::io::Error::other(format!("the file is larger than {max} bytes")))).await;
            return Err(Pumped::TooLarge);
        }
        if forwarding && chunks.send(Ok(chunk)).await.is_err() {
            forwarding = false;
        }
    }
    Ok(())
}

/// The body's chunks as a blocking [`Read`], for the CSV reader on its blocking thread.
struct ChunkReader {
    chunks: mpsc::Receiver<std::io::Result<Bytes>>,
    current: Bytes,
}

impl ChunkReader {
    fn new(chunks: mpsc::Receiver<std::io::Result<Bytes>>) -> ChunkReader {
        ChunkReader { chunks, current: Bytes::new() }
    }
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.chunks.blocking_recv() {
                Some(chunk) => self.current = chunk?,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current.advance(n);
        Ok(n)
    }
}

/// Parses the CSV as it arrives, sending batches of [`BATCH_ROWS`] rows; stops at the first
/// error (sent as the last message) or when the receiver is gone.
fn parse_stream(input: impl Read, out: &mpsc::Sender<Result<Vec<Row>, Invalid>>) {
    let mut batch = Vec::with_capacity(BATCH_ROWS);
    let result = parse_csv(input, |line, device| {
        batch.push((line, device));
        if batch.len() == BATCH_ROWS {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH_ROWS));
            return out.blocking_send(Ok(full)).is_ok();
        }
        true
    });
    let last = match result {
        Ok(()) if batch.is_empty() => return,
        Ok(()) => Ok(batch),
        Err(e) => Err(e),
    };
    let _ = out.blocking_send(last);
}

/// Parses and validates a CSV file row by row, handing each device and its line to `each`
/// (which returns false to stop); the error names the line, and the column at fault as its
/// field. Refuses a MAC given twice and more than [`MAX_ROWS`] rows.
pub(super) fn parse_csv(input: impl Read, mut each: impl FnMut(u64, NewDevice) -> bool) -> Result<(), Invalid> {
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).flexible(false).from_reader(input);
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| Invalid { field: None, message: format!("cannot read the CSV header: {e}") })?
        .iter()
        .map(|h| column_key(h.trim_start_matches('\u{feff}')))
        .collect();
    let columns = Columns::from_header(&header)?;
    let mut seen = HashSet::new();
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(Invalid { field: None, message: format!("CSV error: {e}; nothing was imported") }),
        }
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        if seen.len() >= MAX_ROWS {
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
        if !each(line, device) {
            break;
        }
    }
    if seen.is_empty() {
        return Err(Invalid { field: None, message: "the CSV file has a header but no devices".into() });
    }
    Ok(())
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
