//! The admin API client the CLI commands use.
//!
//! The token comes from `SIPPROV_TOKEN`, or from `<data-dir>/api-token`,
//! which the server writes on first start. Answers are read into the types of the API
//! contract (`sipprov-api`), and errors from its problem document, so an answer that does not
//! match the contract is an error naming the field rather than a blank in the output.

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sipprov_api::Problem;

use crate::cli::ApiArgs;

/// A connection to the admin API.
pub(crate) struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    /// Builds a client from the common flags.
    pub(crate) fn new(args: &ApiArgs) -> Result<Client, String> {
        let token = match std::env::var("SIPPROV_TOKEN") {
            Ok(t) if !t.trim().is_empty() => t.trim().to_string(),
            _ => {
                let dir = args.data_dir.clone().unwrap_or_else(|| sipprov_server::ServerConfig::default().data_dir);
                let path = dir.join("api-token");
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
    pub(crate) async fn call(&self, method: Method, path: &str, body: Option<Body>) -> Result<Vec<u8>, String> {
        let url = format!("{}{}", self.base, path);
        let mut req = self.http.request(method, &url).bearer_auth(&self.token);
        req = match body {
            Some(Body::Json(v)) => req.json(&v),
            Some(Body::Text(t)) => req.header("content-type", "text/csv").body(t),
            // The length is declared, so a server refusing the size answers before reading it.
            Some(Body::CsvFile { file, len }) => {
                req.header("content-type", "text/csv").header("content-length", len).body(reqwest::Body::from(file))
            }
            Some(Body::File { file, len }) => req
                .header("content-type", "application/octet-stream")
                .header("content-length", len)
                .body(reqwest::Body::from(file)),
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

    /// Sends a request and reads the JSON answer as `T`, one of the contract's types.
    pub(crate) async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Body>,
    ) -> Result<T, String> {
        let bytes = self.call(method, path, body).await?;
        let bytes = if bytes.is_empty() { b"null".as_slice() } else { &bytes };
        serde_json::from_slice(bytes).map_err(|e| {
            format!("the API's answer to {path} does not match this client's contract ({e}); are server and client the same version?")
        })
    }
}

/// A request body.
pub(crate) enum Body {
    /// JSON (`application/json`).
    Json(serde_json::Value),
    /// A CSV file (`text/csv`).
    Text(String),
    /// A CSV file streamed from disk as it is sent (`text/csv`), never read whole.
    CsvFile {
        /// The open file.
        file: tokio::fs::File,
        /// Its length in bytes.
        len: u64,
    },
    /// A file streamed from disk as it is sent (`application/octet-stream`), never read whole.
    File {
        /// The open file.
        file: tokio::fs::File,
        /// Its length in bytes.
        len: u64,
    },
}

impl Body {
    /// A request type of the contract as a JSON body.
    pub(crate) fn json(body: &impl Serialize) -> Result<Body, String> {
        serde_json::to_value(body).map(Body::Json).map_err(|e| format!("cannot encode the request: {e}"))
    }
}

/// The error to print for a failed request: the problem document's detail and field, or, from
/// something that is not one (a proxy in between), the status and the text.
fn error_message(status: StatusCode, bytes: &[u8]) -> String {
    match serde_json::from_slice::<Problem>(bytes) {
        Ok(problem) => problem.to_string(),
        Err(_) => format!("the API answered {status}: {}", String::from_utf8_lossy(bytes).trim()),
    }
}

/// Percent-encodes a path segment (group names and file names are plain, but be safe).
pub(crate) fn segment(s: &str) -> String {
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
