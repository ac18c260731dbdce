//! How client commands print what the API returns.

use serde_json::Value;

/// Prints JSON, pretty.
pub fn json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Milliseconds since the epoch as an RFC 3339-like UTC time.
pub fn time(ms: &Value) -> String {
    let Some(ms) = ms.as_i64() else { return "-".into() };
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Howard Hinnant's days → civil date.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// A table of devices.
pub fn device_table(devices: &[Value]) {
    println!("{:<13} {:<11} {:<9} {:<14} {:<21} {:<16}", "MAC", "VENDOR", "MODEL", "GROUP", "LAST SEEN", "LAST IP");
    for d in devices {
        let last = &d["last_fetch"];
        println!(
            "{:<13} {:<11} {:<9} {:<14} {:<21} {:<16}",
            text(&d["mac"]),
            text(&d["vendor"]),
            text(&d["model"]),
            text(&d["group"]),
            if last.is_null() { "never".into() } else { time(&last["at"]) },
            text(&last["ip"]),
        );
    }
}

/// One device, as `key: value` lines.
pub fn device(d: &Value) {
    for key in ["mac", "vendor", "model", "group", "contact"] {
        println!("{key:<18} {}", text(&d[key]));
    }
    println!("{:<18} {}", "created", time(&d["created_at"]));
    println!("{:<18} {}", "updated", time(&d["updated_at"]));
    let files: Vec<String> = d["files"].as_array().map(|a| a.iter().map(text).collect()).unwrap_or_default();
    println!("{:<18} {}", "files", files.join(", "));
    println!("{:<18} {}", "access", text(&d["access"]["device_files"]));
    if !d["access"]["first_fetch_window_until"].is_null() {
        println!("{:<18} until {}", "first-fetch window", time(&d["access"]["first_fetch_window_until"]));
    }
    let last = &d["last_fetch"];
    if last.is_null() {
        println!("{:<18} never", "last fetch");
    } else {
        println!("{:<18} {} from {} ({})", "last fetch", time(&last["at"]), text(&last["ip"]), text(&last["file"]));
        println!("{:<18} {}", "reported model", text(&last["reported_model"]));
        println!("{:<18} {}", "reported firmware", text(&last["reported_firmware"]));
        println!("{:<18} {}", "served sha256", text(&last["hash"]));
    }
    let notify = &d["last_notify"];
    if !notify.is_null() {
        let o = &notify["outcome"];
        let what =
            if o["status"].is_null() { text(&o["reason"]) } else { format!("{} {}", o["status"], text(&o["reason"])) };
        println!(
            "{:<18} {} {} ({}, Event: {})",
            "last notify",
            time(&notify["at"]),
            text(&o["result"]),
            what,
            text(&o["event"])
        );
    }
    settings(&d["settings"]);
}

/// Settings as `key = value` lines.
pub fn settings(s: &Value) {
    println!("settings:");
    if let Some(map) = s.as_object() {
        for (k, v) in map {
            println!("  {k} = {}", text(v));
        }
    }
}

/// A device's history, one event a line.
pub fn events(events: &[Value]) {
    for e in events {
        let detail = e["detail"].as_object().map(|m| {
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| format!("{k}={}", text(v)))
                .collect::<Vec<_>>()
                .join(" ")
        });
        println!("{}  {:<9} {}", time(&e["at"]), text(&e["kind"]), detail.unwrap_or_default());
    }
}

/// A device's uploads, one per line: received, size, SHA-256 prefix, name.
pub fn uploads(uploads: &[Value]) {
    if uploads.is_empty() {
        println!("no uploads");
        return;
    }
    println!("{:<21} {:>9}  {:<16}  NAME", "RECEIVED", "SIZE", "SHA256");
    for u in uploads {
        let sha = text(&u["sha256"]);
        let short = sha.get(..16).unwrap_or(&sha);
        println!("{:<21} {:>9}  {short:<16}  {}", time(&u["received_at"]), text(&u["size"]), text(&u["name"]));
    }
}
