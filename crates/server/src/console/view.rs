//! What every page shares: the viewer's part of the template context, times as people read
//! them, settings with their origin and secrets masked, and form values read back.

use sipprov_api::Role;
use sipprov_model::Settings;
use sipprov_vendors::is_secret_setting;

use super::session::Viewer;

/// What the layout needs to know about the viewer: name, role, what to offer, the CSRF token.
pub(super) fn me(viewer: &Viewer) -> serde_json::Value {
    serde_json::json!({
        "user": viewer.session.user,
        "role": viewer.session.role.as_str(),
        "operator": viewer.can(Role::Operator),
        "admin": viewer.can(Role::Admin),
        "csrf": viewer.session.csrf})
}

/// The `time` filter: milliseconds since the epoch as `2026-12-05 14:03:07 UTC`.
pub(super) fn time_filter(ms: Option<i64>) -> String {
    ms.map(format_time).unwrap_or_else(|| "never".to_string())
}

/// Milliseconds since the epoch as `YYYY-MM-DD HH:MM:SS UTC` (proleptic Gregorian, from the
/// days-from-civil inverse of H. Hinnant's "chrono-Compatible Low-Level Date Algorithms").
pub(super) fn format_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC", rest / 3600, rest % 3600 / 60, rest % 60)
}

/// What a masked secret shows.
pub(super) const MASK: &str = "********";

/// One merged setting as the device page shows it.
#[derive(serde::Serialize)]
pub(super) struct Origin {
    key: String,
    value: String,
    origin: &'static str,
    secret: bool,
}

/// The merged settings of global → group → device, each with the level it comes from and
/// secrets masked (the rule of [`sipprov_vendors::redacted`]).
pub(super) fn with_origins(global: &Settings, group: &Settings, device: &Settings) -> Vec<Origin> {
    Settings::merged([global, group, device])
        .iter()
        .map(|(key, value)| {
            let origin = if device.get(key).is_some() {
                "device"
            } else if group.get(key).is_some() {
                "group"
            } else {
                "global"
            };
            let secret = is_secret_setting(key) || value != sipprov_model::redact_uri_password(value);
            let value = if secret { MASK.to_string() } else { value.to_string() };
            Origin { key: key.to_string(), value, origin, secret }
        })
        .collect()
}

/// A level's own settings for an edit form, secrets masked.
pub(super) fn own(settings: &Settings) -> Vec<(String, String)> {
    sipprov_vendors::redacted(settings).iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// `text` with every secret value of `settings` replaced by the mask: what a rendered file
/// shows in the console. Longer secrets first, so one that contains another is masked whole.
pub(super) fn mask_secrets(text: &str, settings: &Settings) -> String {
    let mut secrets: Vec<&str> =
        settings.iter().filter(|(k, v)| is_secret_setting(k) && !v.is_empty()).map(|(_, v)| v).collect();
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut out = text.to_string();
    for secret in secrets {
        out = out.replace(secret, MASK);
    }
    out
}

/// A form's `key` and `value` fields as a one-key settings patch; an empty value removes the
/// key. The error names the field at fault.
pub(super) fn one_setting(key: &str, value: &str) -> Result<Settings, (&'static str, String)> {
    let key = key.trim();
    if key.is_empty() {
        return Err(("key", "name the setting to change".to_string()));
    }
    let patch: Settings = [(key.to_string(), value.to_string())].into_iter().collect();
    // The API's validation: neutral keys by the model, vendor keys by their vendor module;
    // an empty value (a removal) only needs a key anyone could set.
    sipprov_vendors::validated(patch).map_err(|e| (field_of(&e), e.to_string()))
}

/// Which of a setting form's fields an error is about.
fn field_of(e: &sipprov_model::SettingError) -> &'static str {
    match e {
        sipprov_model::SettingError::BadKey { .. } => "key",
        _ => "value",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_utc_dates() {
        assert_eq!(format_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_time(1_796_475_787_000), "2026-12-05 13:03:07 UTC");
        assert_eq!(format_time(951_782_400_000), "2000-02-29 00:00:00 UTC");
    }

    #[test]
    fn origins_follow_the_merge_and_secrets_are_masked() {
        let g: Settings = [("sip.server".to_string(), "pbx".to_string())].into_iter().collect();
        let gr: Settings = [("line.1.password".to_string(), "hunter22".to_string())].into_iter().collect();
        let d: Settings = [("sip.server".to_string(), "pbx2".to_string())].into_iter().collect();
        let rows = with_origins(&g, &gr, &d);
        let server = rows.iter().find(|r| r.key == "sip.server").unwrap();
        assert_eq!((server.value.as_str(), server.origin), ("pbx2", "device"));
        let pw = rows.iter().find(|r| r.key == "line.1.password").unwrap();
        assert_eq!((pw.value.as_str(), pw.origin, pw.secret), (MASK, "group", true));
        assert_eq!(mask_secrets("pass=hunter22\n", &gr), format!("pass={MASK}\n"));
    }
}
