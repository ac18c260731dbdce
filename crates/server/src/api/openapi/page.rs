//! The documentation page: the OpenAPI document rendered as one HTML page with inline CSS
//! (no script, no external asset), so it works offline and with JavaScript off.

use std::fmt::Write as _;

use serde_json::Value;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

const STYLE: &str = "body{font:15px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1100px;padding:1rem;color:#1d232a}\
h1{font-size:1.6rem}h2{margin-top:2.5rem;border-bottom:2px solid #d0d7de}h3{margin:1.6rem 0 .4rem}\
code,.path{font-family:ui-monospace,monospace}.op{border:1px solid #d0d7de;border-radius:6px;padding:.2rem 1rem 1rem;margin:1rem 0}\
.m{display:inline-block;min-width:4.2rem;text-align:center;border-radius:4px;color:#fff;font-weight:600;padding:0 .4rem;margin-right:.5rem}\
.get{background:#0969da}.post{background:#1a7f37}.patch{background:#9a6700}.put{background:#8250df}.delete{background:#cf222e}\
table{border-collapse:collapse;width:100%;margin:.4rem 0}th,td{border:1px solid #d0d7de;padding:.25rem .5rem;text-align:left;vertical-align:top}\
th{background:#f6f8fa}.lock{font-size:.85rem;color:#57606a}nav ul{columns:2;padding-left:1.2rem}a{color:#0969da}\
a:focus{outline:2px solid #0969da}@media (max-width:700px){nav ul{columns:1}table{font-size:.85rem}}";

/// Escapes text for HTML.
fn esc(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// An anchor for an operation.
fn anchor(method: &str, path: &str) -> String {
    let slug: String = path.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    format!("{method}{slug}")
}

/// A schema in a few words: a link for a reference, the item type of an array, the type names.
fn type_of(schema: &Value) -> String {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap_or(r);
        return format!("<a href=\"#schema-{0}\">{0}</a>", esc(name));
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(list) = schema.get(key).and_then(Value::as_array) {
            return list.iter().map(type_of).collect::<Vec<_>>().join(" | ");
        }
    }
    let types: Vec<String> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.clone()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).map(String::from).collect(),
        _ => Vec::new(),
    };
    let named: Vec<String> = types
        .iter()
        .map(|t| match t.as_str() {
            "array" => format!("array of {}", schema.get("items").map_or_else(|| "any".into(), type_of)),
            "object" => match schema.get("additionalProperties") {
                Some(v) if v.is_object() => format!("map of {}", type_of(v)),
                _ => "object".into(),
            },
            other => esc(other),
        })
        .collect();
    let mut text = if named.is_empty() { "any".to_string() } else { named.join(" | ") };
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        let values: Vec<String> = values.iter().map(|v| format!("<code>{}</code>", esc(&v.to_string()))).collect();
        let _ = write!(text, ": {}", values.join(", "));
    }
    text
}

/// The text of a description member, escaped.
fn description(v: &Value) -> String {
    esc(v.get("description").and_then(Value::as_str).unwrap_or(""))
}

/// Renders the whole page from the document.
pub(super) fn render(doc: &Value) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let info = &doc["info"];
    let title = esc(info["title"].as_str().unwrap_or("API"));
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{title}</title>\
         <style>{STYLE}</style></head><body><main><h1>{title} <small>{}</small></h1><p>{}</p>\
         <p>OpenAPI {} document: <a href=\"/api/v1/openapi.json\">/api/v1/openapi.json</a>.</p>",
        esc(info["version"].as_str().unwrap_or("")),
        description(info),
        esc(doc["openapi"].as_str().unwrap_or("")),
    );
    let empty = serde_json::Map::new();
    let paths = doc["paths"].as_object().unwrap_or(&empty);
    let operations: Vec<(&str, &str, &Value)> = paths
        .iter()
        .flat_map(|(path, item)| METHODS.iter().filter_map(move |m| item.get(*m).map(|op| (path.as_str(), *m, op))))
        .collect();
    out.push_str("<nav><h2>Operations</h2><ul>");
    for (path, method, op) in &operations {
        let _ = write!(
            out,
            "<li><a href=\"#{}\"><span class=\"m {method}\">{}</span><span class=\"path\">{}</span></a> {}</li>",
            anchor(method, path),
            method.to_uppercase(),
            esc(path),
            esc(op["summary"].as_str().unwrap_or("")),
        );
    }
    out.push_str("</ul></nav>");
    for (path, method, op) in &operations {
        operation(&mut out, doc, path, method, op);
    }
    schemas(&mut out, doc);
    out.push_str("</main></body></html>");
    out
}

/// One operation: summary, security, parameters, request body and responses.
fn operation(out: &mut String, doc: &Value, path: &str, method: &str, op: &Value) {
    let _ = write!(
        out,
        "<section class=\"op\" id=\"{}\"><h3><span class=\"m {method}\">{}</span><span class=\"path\">{}</span></h3>",
        anchor(method, path),
        method.to_uppercase(),
        esc(path)
    );
    for key in ["summary", "description"] {
        if let Some(text) = op.get(key).and_then(Value::as_str) {
            let _ = write!(out, "<p>{}</p>", esc(text));
        }
    }
    let security = op.get("security").or_else(|| doc.get("security"));
    let open = security
        .and_then(Value::as_array)
        .is_some_and(|reqs| reqs.iter().any(|r| r.as_object().is_some_and(|o| o.is_empty())));
    out.push_str(if open {
        "<p class=\"lock\">No token needed.</p>"
    } else {
        "<p class=\"lock\">Needs <code>Authorization: Bearer &lt;token&gt;</code>.</p>"
    });
    if let Some(params) = op.get("parameters").and_then(Value::as_array) {
        out.push_str("<table><tr><th>parameter</th><th>in</th><th>type</th><th>required</th><th>description</th></tr>");
        for p in params {
            let _ = write!(
                out,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(p["name"].as_str().unwrap_or("")),
                esc(p["in"].as_str().unwrap_or("")),
                p.get("schema").map_or_else(|| "any".into(), type_of),
                if p["required"].as_bool().unwrap_or(false) { "yes" } else { "no" },
                description(p),
            );
        }
        out.push_str("</table>");
    }
    if let Some(body) = op.get("requestBody") {
        let _ = write!(out, "<p><b>Request body</b> {}</p>", description(body));
        contents(out, &body["content"]);
    }
    if let Some(responses) = op.get("responses").and_then(Value::as_object) {
        out.push_str("<table><tr><th>status</th><th>meaning</th><th>body</th></tr>");
        for (status, response) in responses {
            let mut body = String::new();
            contents(&mut body, &response["content"]);
            let _ = write!(out, "<tr><td>{}</td><td>{}</td><td>{body}</td></tr>", esc(status), description(response));
        }
        out.push_str("</table>");
    }
    out.push_str("</section>");
}

/// The media types of a body and their schemas.
fn contents(out: &mut String, content: &Value) {
    if let Some(types) = content.as_object() {
        for (media, m) in types {
            let _ = write!(
                out,
                "<code>{}</code>: {}<br>",
                esc(media),
                m.get("schema").map_or_else(|| "any".into(), type_of)
            );
        }
    }
}

/// Every named schema with its members.
fn schemas(out: &mut String, doc: &Value) {
    let Some(schemas) = doc["components"]["schemas"].as_object() else { return };
    out.push_str("<h2>Schemas</h2>");
    for (name, schema) in schemas {
        let _ = write!(
            out,
            "<section class=\"op\" id=\"schema-{0}\"><h3>{0}</h3><p>{1}</p>",
            esc(name),
            description(schema)
        );
        match schema.get("properties").and_then(Value::as_object) {
            Some(props) => {
                let required: Vec<&str> = schema
                    .get("required")
                    .and_then(Value::as_array)
                    .map(|r| r.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                out.push_str("<table><tr><th>member</th><th>type</th><th>required</th><th>description</th></tr>");
                for (member, p) in props {
                    let _ = write!(
                        out,
                        "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                        esc(member),
                        type_of(p),
                        if required.contains(&member.as_str()) { "yes" } else { "no" },
                        description(p),
                    );
                }
                out.push_str("</table>");
            }
            None => {
                let _ = write!(out, "<p>{}</p>", type_of(schema));
            }
        }
        out.push_str("</section>");
    }
}
