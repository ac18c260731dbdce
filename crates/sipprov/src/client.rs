//! The admin API client the CLI commands use.
//!
//! The token comes from `SIPPROV_TOKEN`, or from `<data-dir>/api-token`,
//! which the server writes on first start.

use reqwest::{Method, StatusCode};

use crate::cli::ApiArgs;

/// A connection to the admin API.
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    /// Builds a client from the common flags.
    pub fn new(args: &ApiArgs) -> Result<Client, String> {
        let token = match std::env::var("SIPPROV_TOKEN") {
            Ok(t) if !t.trim().is_empty() => t.trim().to_string(),
            _ => {
                let path = args.data_dir.join("api-token");
                std::fs::read_to_string(&path)
                    .map_err(|e| {
                        format!("no API token: set SIPPROV_TOKEN or point --data-dir at the server's data directory ({}: {e})", path.display())
                    })?
                    .trim()
                    .to_string()
            }
        };
        Ok(Client { http: reqwest::Client::new(), base: args.api.trim_end_matches('/').to_string(), token })
    }

    /// Sends a request and returns the body, or the server's error message.
    pub async fn call(&self, method: Method, path: &str, body: Option<Body>) -> Result<Vec<u8>, String> {
        let url = format!("{}{}", self.base, path);
        let mut req = self.http.request(method, &url).bearer_auth(&self.token);
        req = match body {
            Some(Body::Json(v)) => req.json(&v),
            Some(Body::Text(t)) => req.header("content-type", "text/csv").body(t),
            None => req,
        };
        let resp = req.send().await.map_err(|e| format!("cannot reach the sipprov admin API at {}: {e}", self.base))?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| format!("reading the API response: {e}"))?.to_vec();
        if status.is_success() {
            return Ok(bytes);
        }
        Err(error_message(status, &bytes))
    }

    /// Sends a request and parses a JSON answer.
    pub async fn json(&self, method: Method, path: &str, body: Option<Body>) -> Result<serde_json::Value, String> {
        let bytes = self.call(method, path, body).await?;
        if bytes.is_empty() {
            return Ok(serde_json::Value::Null);
        }
        serde_json::from_slice(&bytes).map_err(|e| format!("the API answered something that is not JSON: {e}"))
    }
}

/// A request body.
pub enum Body {
    Json(serde_json::Value),
    Text(String),
}

fn error_message(status: StatusCode, bytes: &[u8]) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(bytes).ok();
    match parsed.as_ref().and_then(|v| v.get("error")).and_then(|e| e.as_str()) {
        Some(msg) => msg.to_string(),
        None => format!("the API answered {status}: {}", String::from_utf8_lossy(bytes).trim()),
    }
}

/// Percent-encodes a path segment (group names and file names are plain, but be safe).
pub fn segment(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
