//! The OpenAPI 3.1 document and its documentation page, against the real server: both served
//! without a token, the document valid for a real validator (`openapi-spec-validator`, from
//! PyPI, installed by scripts/test-deps.sh), every route of the router (and every method it
//! answers) in the document, and every documented operation on the page.

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use common::{curl_with, TestServer};

/// Runs openapi-spec-validator on `doc`; Err with its message when the document is invalid.
fn validate(doc: &serde_json::Value) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, serde_json::to_vec(doc).unwrap()).unwrap();
    let script = "import json,sys\n\
        from openapi_spec_validator import validate\n\
        from openapi_spec_validator import OpenAPIV31SpecValidator\n\
        validate(json.load(open(sys.argv[1])), cls=OpenAPIV31SpecValidator)\n";
    let out = Command::new("python3").arg("-c").arg(script).arg(&file).output().expect("python3");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("ModuleNotFoundError"),
        "openapi-spec-validator is not installed: run scripts/test-deps.sh\n{stderr}"
    );
    if out.status.success() {
        Ok(())
    } else {
        // The validator's last lines say what is wrong (before them, a traceback).
        let lines: Vec<&str> = stderr.lines().collect();
        Err(lines[lines.len().saturating_sub(3)..]
            .iter()
            .map(|l| &l[..l.len().min(600)])
            .collect::<Vec<_>>()
            .join("\n"))
    }
}

fn get(s: &TestServer, path: &str, token: bool) -> common::Fetched {
    let auth =
        format!("Authorization: Bearer {}", std::fs::read_to_string(s.data_dir().join("api-token")).unwrap().trim());
    let args: Vec<&str> = if token { vec!["-H", &auth] } else { vec![] };
    curl_with(&format!("http://{}{path}", s.api), "test", &args).0
}

/// The methods the router answers on `path` (parameters filled in): a TRACE is answered 405
/// with `Allow` listing them. HEAD, which axum adds to every GET, is left out.
fn methods_of(s: &TestServer, path: &str) -> BTreeSet<String> {
    let concrete = path.replace("{mac}", "001565000001").replace("{id}", "1").replace("{name}", "x");
    let auth =
        format!("Authorization: Bearer {}", std::fs::read_to_string(s.data_dir().join("api-token")).unwrap().trim());
    let r = curl_with(&format!("http://{}{concrete}", s.api), "test", &["-X", "TRACE", "-H", &auth]).0;
    assert_eq!(r.status, 405, "TRACE {concrete}: {}", r.text());
    let allow = r.header("allow").unwrap_or_else(|| panic!("no Allow on {concrete}"));
    allow.split(',').map(|m| m.trim().to_lowercase()).filter(|m| !m.is_empty() && m != "head").collect()
}

#[test]
fn the_document_is_valid_complete_and_readable_without_a_token() {
    let s = TestServer::start();
    let r = get(&s, "/api/v1/openapi.json", false);
    assert_eq!(r.status, 200, "{}", r.text());
    let doc: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc["openapi"]);
    validate(&doc).unwrap_or_else(|e| panic!("the served document is invalid:\n{e}"));
    // The validator really checks: a document without `info` is refused.
    let mut broken = doc.clone();
    broken.as_object_mut().unwrap().remove("info");
    assert!(validate(&broken).is_err(), "the validator accepted a document without info");

    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    let paths = doc["paths"].as_object().unwrap();
    let routes = sipprov_server::api::route_paths();
    assert!(routes.len() >= 20, "{routes:?}");
    for route in &routes {
        let documented = paths.get(*route).unwrap_or_else(|| panic!("route {route} is missing from openapi.json"));
        for method in methods_of(&s, route) {
            assert!(
                documented.get(&method).is_some(),
                "{} {route} is missing from openapi.json",
                method.to_uppercase()
            );
        }
    }
    for documented in paths.keys() {
        assert!(routes.contains(&documented.as_str()), "openapi.json documents {documented}, which no route serves");
    }
    // Every operation behind the token says so, and names problem documents for its errors.
    let list = &paths["/api/v1/devices"]["get"];
    let names: Vec<&str> = list["parameters"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    for wanted in ["vendor", "model", "group", "firmware", "silent", "q", "sort", "order", "limit", "offset"] {
        assert!(names.contains(&wanted), "{wanted} not documented: {names:?}");
    }
    assert!(list["responses"]["400"]["content"]["application/problem+json"].is_object(), "{}", list["responses"]);
    assert!(paths["/api/v1/docs"]["get"]["security"]
        .as_array()
        .is_some_and(|s| s.iter().all(|r| r.as_object().unwrap().is_empty())));
}

#[test]
fn the_docs_page_lists_every_path_and_needs_no_network() {
    let s = TestServer::start();
    let page = get(&s, "/api/v1/docs", false);
    assert_eq!(page.status, 200);
    assert!(page.header("content-type").unwrap().starts_with("text/html"));
    let html = page.text();
    let doc: serde_json::Value = serde_json::from_slice(&get(&s, "/api/v1/openapi.json", false).body).unwrap();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "post", "patch", "delete", "put"] {
            if item.get(method).is_some() {
                let slug: String = path.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
                assert!(html.contains(&format!("id=\"{method}{slug}\"")), "{method} {path} missing from the page");
            }
        }
        assert!(html.contains(path.as_str()), "{path} missing from the page");
    }
    for schema in ["Device", "Problem", "FleetSummary", "Campaign"] {
        assert!(html.contains(&format!("id=\"schema-{schema}\"")), "schema {schema} missing");
    }
    assert!(!html.contains("<script"), "no scripts");
    for external in ["src=\"http", "href=\"http", "@import", "url("] {
        assert!(!html.contains(external), "the page loads {external}…: it must work offline");
    }
    // The data behind the API still needs the token.
    assert_eq!(get(&s, "/api/v1/devices", false).status, 401);
}
