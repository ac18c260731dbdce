//! How client commands print what the API returns: from the typed fields of the API contract
//! (`sipprov-api`), so every value printed is one the contract guarantees.

use serde::Serialize;
use sipprov_api::{Device, DeviceEvent, Upload};
use sipprov_model::Settings;

/// Prints an answer as pretty JSON.
pub(crate) fn json(v: &impl Serialize) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// An optional value, `-` when absent.
fn or_dash(v: Option<&str>) -> &str {
    v.unwrap_or("-")
}

/// A JSON value of an event's detail as text: strings unquoted, `-` for null.
fn text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "-".into(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Milliseconds since the epoch as an RFC 3339-like UTC time.
pub(crate) fn time(ms: i64) -> String {
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
pub(crate) fn device_table(devices: &[Device]) {
    println!("{:<13} {:<11} {:<9} {:<14} {:<21} {:<16}", "MAC", "VENDOR", "MODEL", "GROUP", "LAST SEEN", "LAST IP");
    for d in devices {
        let last = d.last_fetch.as_ref();
        println!(
            "{:<13} {:<11} {:<9} {:<14} {:<21} {:<16}",
            d.mac.to_string(),
            d.vendor,
            d.model,
            or_dash(d.group.as_deref()),
            last.map_or_else(|| "never".into(), |f| time(f.at)),
            or_dash(last.map(|f| f.ip.as_str())),
        );
    }
}

/// One device, as `key: value` lines.
pub(crate) fn device(d: &Device) {
    let mac = d.mac.to_string();
    for (key, value) in [
        ("mac", mac.as_str()),
        ("vendor", &d.vendor),
        ("model", &d.model),
        ("group", or_dash(d.group.as_deref())),
        ("contact", or_dash(d.contact.as_deref())),
    ] {
        println!("{key:<18} {value}");
    }
    println!("{:<18} {}", "created", time(d.created_at));
    println!("{:<18} {}", "updated", time(d.updated_at));
    println!("{:<18} {}", "files", d.files.join(", "));
    println!("{:<18} {}", "access", d.access.device_files);
    if let Some(until) = d.access.first_fetch_window_until {
        println!("{:<18} until {}", "first-fetch window", time(until));
    }
    match &d.last_fetch {
        None => println!("{:<18} never", "last fetch"),
        Some(last) => {
            println!("{:<18} {} from {} ({})", "last fetch", time(last.at), last.ip, last.file);
            println!("{:<18} {}", "reported model", or_dash(last.reported_model.as_deref()));
            println!("{:<18} {}", "reported firmware", or_dash(last.reported_firmware.as_deref()));
            println!("{:<18} {}", "served sha256", last.hash);
        }
    }
    if let Some(f) = &d.firmware {
        let image = f.image.as_deref().map(|i| format!(", image {i}")).unwrap_or_default();
        println!("{:<18} {} ({}{image})", "firmware target", f.target, f.state.as_str());
    }
    if let Some(notify) = &d.last_notify {
        let o = &notify.outcome;
        let what = match o.status {
            Some(status) => format!("{status} {}", o.reason),
            None => o.reason.clone(),
        };
        println!("{:<18} {} {} ({}, Event: {})", "last notify", time(notify.at), o.result, what, o.event);
    }
    settings(&d.settings);
}

/// Settings as `key = value` lines.
pub(crate) fn settings(s: &Settings) {
    println!("settings:");
    for (k, v) in s.iter() {
        println!("  {k} = {v}");
    }
}

/// A device's history, one event a line: its detail's members as `key=value` (times, members
/// named `…_at` such as a repeated fetch's `last_at`, as UTC times).
pub(crate) fn events(events: &[DeviceEvent]) {
    for e in events {
        let detail = e.detail.as_object().map(|m| {
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| match v.as_i64().filter(|_| k.ends_with("_at")) {
                    Some(ms) => format!("{k}={}", time(ms)),
                    None => format!("{k}={}", text(v)),
                })
                .collect::<Vec<_>>()
                .join(" ")
        });
        println!("{}  {:<9} {}", time(e.at), e.kind, detail.unwrap_or_default());
    }
}

/// A device's uploads, one per line: received, size, SHA-256 prefix, name.
pub(crate) fn uploads(uploads: &[Upload]) {
    if uploads.is_empty() {
        println!("no uploads");
        return;
    }
    println!("{:<21} {:>9}  {:<16}  NAME", "RECEIVED", "SIZE", "SHA256");
    for u in uploads {
        let short = u.sha256.get(..16).unwrap_or(&u.sha256);
        println!("{:<21} {:>9}  {short:<16}  {}", time(u.received_at), u.size, u.name);
    }
}

/// Counts per name, largest first, as indented `name  count` lines.
fn counts<'a>(title: &str, counts: impl IntoIterator<Item = (&'a String, u64)>) {
    let mut rows: Vec<_> = counts.into_iter().collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    println!("{title}:");
    if rows.is_empty() {
        println!("  (none)");
    }
    for (name, n) in rows {
        println!("  {name:<32} {n}");
    }
}

/// The fleet summary of `sipprov status`.
pub(crate) fn summary(s: &sipprov_api::FleetSummary) {
    println!("devices: {} ({} never seen, {} silent)", s.devices, s.never_seen, s.silent);
    counts("by vendor", s.by_vendor.iter().map(|(k, v)| (k, *v as u64)));
    counts("by model", s.by_model.iter().map(|(k, v)| (k, *v as u64)));
    counts("by firmware", s.by_firmware.iter().map(|(k, v)| (k, *v as u64)));
    println!(
        "silent (no fetch for {} x their provisioning.interval_minutes, {} min when unset):",
        s.grace_factor, s.default_interval_minutes
    );
    if s.silent_devices.is_empty() {
        println!("  (none)");
    }
    for d in &s.silent_devices {
        println!(
            "  {} {} {} last seen {} (every {} min)",
            d.mac,
            d.vendor,
            d.model,
            time(d.last_seen),
            d.interval_minutes
        );
    }
    let more = if s.refusals_truncated { " (at least)" } else { "" };
    counts(&format!("refusals in the last 24 h{more}"), s.refusals_24h.iter().map(|(k, v)| (k, *v)));
    println!("throttled sources in the last 24 h:");
    if s.throttled_24h.is_empty() {
        println!("  (none)");
    }
    for t in &s.throttled_24h {
        println!("  {:<32} {}", t.ip, time(t.at));
    }
    println!("campaigns in progress:");
    if s.campaigns.is_empty() {
        println!("  (none)");
    }
    for c in &s.campaigns {
        let done: i64 = c.counts.iter().filter(|(o, _)| !o.is_open()).map(|(_, n)| n).sum();
        println!("  #{} {} {}/{} devices done ({})", c.id, c.state, done, c.devices, c.selector);
    }
}

/// A table of stored files: name, kind, vendor, models, version, size, SHA-256 prefix, access,
/// who added it and when.
pub(crate) fn stored_files(files: &[sipprov_api::StoredFile]) {
    println!(
        "{:<32} {:<9} {:<11} {:<20} {:<16} {:>12} {:<12} {:<6} {:<12} ADDED",
        "NAME", "KIND", "VENDOR", "MODELS", "VERSION", "SIZE", "SHA256", "ACCESS", "BY"
    );
    for f in files {
        let models = if f.models.is_empty() { "-".to_string() } else { f.models.join(",") };
        println!(
            "{:<32} {:<9} {:<11} {:<20} {:<16} {:>12} {:<12} {:<6} {:<12} {}",
            f.name,
            f.kind,
            or_dash(f.vendor.as_deref()),
            models,
            or_dash(f.version.as_deref()),
            f.size,
            f.sha256.get(..12).unwrap_or(&f.sha256),
            f.access,
            f.added_by,
            time(f.added_at)
        );
    }
}

/// The progress bar `campaign watch` and `rollout watch` draw on stderr for job `id` of `kind`
/// (hidden when stderr is not a terminal, so scripts get only the final report).
pub(crate) fn job_bar(kind: &str, id: i64) -> Result<indicatif::ProgressBar, String> {
    use std::io::IsTerminal;
    let bar = indicatif::ProgressBar::new(0);
    if !std::io::stderr().is_terminal() {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let template = format!("{{spinner}} {kind} {{prefix}} [{{bar:40}}] {{pos}}/{{len}} {{msg}}");
    bar.set_style(indicatif::ProgressStyle::with_template(&template).map_err(|e| e.to_string())?.progress_chars("=> "));
    bar.set_prefix(id.to_string());
    Ok(bar)
}
