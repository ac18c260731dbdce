//! `sipprov firmware add|list|rm` and `sipprov resource add|list|rm`: stored files, through
//! `/api/v1/firmware` and `/api/v1/resources`. An upload streams the file from disk.

use std::path::Path;

use reqwest::Method;
use sipprov_api::StoredFile;

use crate::cli::{ApiArgs, FirmwareCommand, ResourceCommand};
use crate::client::{segment, Body, Client};
use crate::output;

/// Runs one `sipprov firmware` command.
pub(crate) async fn firmware(cmd: FirmwareCommand, api: &ApiArgs) -> Result<(), String> {
    match cmd {
        FirmwareCommand::Add { file, vendor, models, version, name, access } => {
            let query = [("vendor", vendor), ("models", models.join(",")), ("version", version), ("access", access)];
            upload("/api/v1/firmware", &file, name, &query, api).await
        }
        FirmwareCommand::List { json } => list("/api/v1/firmware", json, api).await,
        FirmwareCommand::Rm { name } => remove("/api/v1/firmware", &name, api).await,
    }
}

/// Runs one `sipprov resource` command.
pub(crate) async fn resource(cmd: ResourceCommand, api: &ApiArgs) -> Result<(), String> {
    match cmd {
        ResourceCommand::Add { file, kind, name, access } => {
            upload("/api/v1/resources", &file, name, &[("kind", kind), ("access", access)], api).await
        }
        ResourceCommand::List { json } => list("/api/v1/resources", json, api).await,
        ResourceCommand::Rm { name } => remove("/api/v1/resources", &name, api).await,
    }
}

/// Streams `file` to `path` under `name` (default: the file's own name) with `query`.
async fn upload(
    path: &str,
    file: &Path,
    name: Option<String>,
    query: &[(&str, String)],
    api: &ApiArgs,
) -> Result<(), String> {
    let name = match name {
        Some(n) => n,
        None => file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| format!("{} names no file; give --name", file.display()))?,
    };
    let client = Client::new(api)?;
    let open = tokio::fs::File::open(file).await.map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let len = open.metadata().await.map_err(|e| format!("cannot read {}: {e}", file.display()))?.len();
    let mut url = format!("{path}?name={}", segment(&name));
    for (key, value) in query {
        url.push_str(&format!("&{key}={}", segment(value)));
    }
    let stored: StoredFile = client.json(Method::POST, &url, Some(Body::File { file: open, len })).await?;
    println!("{} {}", stored.name, stored.sha256);
    Ok(())
}

async fn list(path: &str, json: bool, api: &ApiArgs) -> Result<(), String> {
    let files: Vec<StoredFile> = Client::new(api)?.json(Method::GET, path, None).await?;
    if json {
        output::json(&files);
    } else {
        output::stored_files(&files);
    }
    Ok(())
}

async fn remove(path: &str, name: &str, api: &ApiArgs) -> Result<(), String> {
    let removed: StoredFile =
        Client::new(api)?.json(Method::DELETE, &format!("{path}/{}", segment(name)), None).await?;
    println!("removed {}", removed.name);
    Ok(())
}
