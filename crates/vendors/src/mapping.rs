//! Data-driven mapping of vendor-neutral settings to vendor parameters.
//!
//! Each vendor module declares a `&[ParamDef]` table: one row per vendor parameter, saying
//! which neutral key (or line field) feeds it, how the value is converted, and whether it may
//! appear in a model-scoped common file. [`build`] walks such a table over a [`Settings`] and
//! then applies `vendor.<raw>` overrides, so the per-vendor code holds data, not logic.

use sipprov_model::tz::ZoneRules;
use sipprov_model::{redact_uri_password, KeyKind, LineField, Settings};

use crate::{FileScope, ModelInfo};

/// A value conversion: the neutral value in, the vendor value out (`None` leaves the
/// parameter out, e.g. a time zone the vendor cannot express).
pub type Conv = fn(&str) -> Option<String>;

/// Where a parameter's value comes from.
#[derive(Debug, Clone, Copy)]
pub enum Source {
    /// A constant: the conversion is called with `""` (e.g. `EnableSIPRemoteReset = 1`).
    Always,
    /// A neutral or free setting key, e.g. `provisioning.url`.
    Key(&'static str),
    /// A field of every configured line; the name may use `{n}` (line number, 1-based),
    /// `{i}` (0-based index) and `{hs}` (5-digit handset number, Gigaset).
    Line(LineField),
    /// A field of the first configured line only, for vendors with one global server.
    FirstLine(LineField),
    /// A constant emitted once per configured line (e.g. `account.{n}.enable = 1`).
    LineAlways,
    /// The line number itself, emitted when the field is set (Yealink DECT
    /// `account.{n}.sip_server.template = {n}`).
    LineNumber(LineField),
}

/// One row of a vendor's parameter table.
#[derive(Debug, Clone, Copy)]
pub struct ParamDef {
    /// What feeds the parameter.
    pub source: Source,
    /// The vendor's parameter name (with placeholders for line rows).
    pub name: &'static str,
    /// Value conversion.
    pub conv: Conv,
    /// Value used when the key is unset (before conversion).
    pub default: Option<&'static str>,
    /// `Model` rows may appear in common files; `Device` rows only in per-device files.
    pub scope: FileScope,
    /// Free grouping label for templates (e.g. an INI section).
    pub group: &'static str,
}

impl ParamDef {
    /// A device-scoped row.
    pub const fn device(source: Source, name: &'static str, conv: Conv) -> ParamDef {
        ParamDef { source, name, conv, default: None, scope: FileScope::Device, group: "" }
    }

    /// A row allowed in common files too (global, non-secret).
    pub const fn global(source: Source, name: &'static str, conv: Conv) -> ParamDef {
        ParamDef { scope: FileScope::Model, ..ParamDef::device(source, name, conv) }
    }

    /// Sets the value used when the key is unset.
    pub const fn or(self, default: &'static str) -> ParamDef {
        ParamDef { default: Some(default), ..self }
    }

    /// Sets the template grouping label.
    pub const fn group(self, group: &'static str) -> ParamDef {
        ParamDef { group, ..self }
    }
}

/// One vendor parameter as templates see it (`params` in the template context).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VendorParam {
    /// The vendor's parameter name, placeholders expanded.
    pub name: String,
    /// The converted value.
    pub value: String,
    /// The line number it belongs to, for line rows.
    pub line: Option<u32>,
    /// The grouping label of its row (the vendor's default group for raw overrides).
    pub group: &'static str,
}

/// Passes the value through.
pub fn same(v: &str) -> Option<String> {
    Some(v.to_string())
}

/// Always `1` (enable flags).
pub fn one(_: &str) -> Option<String> {
    Some("1".into())
}

/// A setting's value, treating an empty value (a "remove" marker in a merged level) as unset.
pub fn get<'a>(settings: &'a Settings, key: &str) -> Option<&'a str> {
    settings.get(key).filter(|v| !v.is_empty())
}

/// A line field with the vendor-neutral fallbacks applied: the auth user name and the label
/// default to the user name.
pub fn line_value(settings: &Settings, n: u32, field: LineField) -> Option<String> {
    let own = |f: LineField| get(settings, LineKey::new(n, f).as_str()).map(str::to_string);
    match field {
        LineField::AuthUsername | LineField::Label => own(field).or_else(|| own(LineField::Username)),
        _ => own(field),
    }
}

/// A line field's key, `line.<n>.<field>`, spelled on the stack: a rendering looks up each
/// field of each line, and a `format!` per look-up was a seventh of a rendering's instructions.
struct LineKey {
    buf: [u8; 40],
    len: usize,
}

impl LineKey {
    fn new(n: u32, field: LineField) -> LineKey {
        let mut key = LineKey { buf: [0; 40], len: 0 };
        let mut digits = [0u8; 10];
        let mut at = digits.len();
        let mut rest = n;
        loop {
            at -= 1;
            // A decimal digit: below 10.
            digits[at] = b'0' + (rest % 10) as u8;
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        for part in [b"line.".as_slice(), &digits[at..], b".", field.name().as_bytes()] {
            // "line." (5), ten digits at most, "." and a field name of at most 13 bytes fit 40.
            let end = (key.len + part.len()).min(key.buf.len());
            key.buf[key.len..end].copy_from_slice(&part[..end - key.len]);
            key.len = end;
        }
        key
    }

    fn as_str(&self) -> &str {
        // ASCII only: "line.", digits, "." and a field name.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

/// Builds the parameter list for one file: table rows in order (non-line rows, then each line's
/// rows), then `vendor.<raw>` overrides. An override replaces a mapped parameter of the same
/// name (compared ignoring case) instead of adding a duplicate; an empty override removes it;
/// unknown names are appended in key order with `extra_group` as their group.
/// For `FileScope::Model`, line and device rows are skipped, and so are secret overrides
/// ([`crate::is_secret_setting`]) and any value carrying a URI password, because a common file is
/// served to anyone who asks for it.
pub fn build(defs: &[ParamDef], settings: &Settings, scope: FileScope, extra_group: &'static str) -> Vec<VendorParam> {
    build_with(defs, settings, scope, extra_group, |_| {})
}

/// As [`build`], with `extra` adding rows the table cannot express (e.g. per-account parameter
/// names that follow no single pattern) before `vendor.<raw>` overrides are applied, so an
/// override replaces them as it replaces table rows.
pub fn build_with(
    defs: &[ParamDef],
    settings: &Settings,
    scope: FileScope,
    extra_group: &'static str,
    extra: impl FnOnce(&mut Vec<VendorParam>),
) -> Vec<VendorParam> {
    let allowed = |d: &&ParamDef| scope == FileScope::Device || d.scope == FileScope::Model;
    let lines = if scope == FileScope::Device { settings.line_indexes() } else { Vec::new() };
    let mut out = Vec::new();
    for def in defs.iter().filter(allowed) {
        match def.source {
            Source::Always => push(&mut out, def, def.name.to_string(), "", None),
            Source::Key(key) => {
                if let Some(v) = get(settings, key).or(def.default) {
                    push(&mut out, def, def.name.to_string(), v, None);
                }
            }
            Source::FirstLine(field) => {
                if let Some(v) = lines.first().and_then(|n| line_value(settings, *n, field)) {
                    push(&mut out, def, def.name.to_string(), &v, None);
                }
            }
            Source::Line(_) | Source::LineAlways | Source::LineNumber(_) => {}
        }
    }
    for &n in &lines {
        for def in defs.iter().filter(allowed) {
            let value = match def.source {
                Source::Line(field) => line_value(settings, n, field),
                Source::LineAlways => Some(String::new()),
                Source::LineNumber(field) => line_value(settings, n, field).map(|_| n.to_string()),
                _ => continue,
            };
            if let Some(v) = value {
                push(&mut out, def, expand(def.name, n), &v, Some(n));
            }
        }
    }
    extra(&mut out);
    apply_overrides(&mut out, settings, scope, extra_group);
    if scope == FileScope::Model {
        out.retain(|p| !matches!(redact_uri_password(&p.value), std::borrow::Cow::Owned(_)));
    }
    out
}

/// The rows of `defs` fed by a key or a constant ([`Source::Key`], [`Source::Always`]) that a
/// file of `scope` may carry, without `vendor.` overrides: rows a module adds to a table through
/// [`build_with`]'s `extra` when they depend on the model (e.g. Yealink's resource files).
pub fn key_rows(defs: &[ParamDef], settings: &Settings, scope: FileScope) -> Vec<VendorParam> {
    let mut out = Vec::new();
    for def in defs.iter().filter(|d| scope == FileScope::Device || d.scope == FileScope::Model) {
        match def.source {
            Source::Always => push(&mut out, def, def.name.to_string(), "", None),
            Source::Key(key) => {
                if let Some(v) = get(settings, key).or(def.default) {
                    push(&mut out, def, def.name.to_string(), v, None);
                }
            }
            _ => {}
        }
    }
    out
}

fn push(out: &mut Vec<VendorParam>, def: &ParamDef, name: String, raw: &str, line: Option<u32>) {
    if let Some(value) = (def.conv)(raw) {
        out.push(VendorParam { name, value, line, group: def.group });
    }
}

/// The refusal of [`Vendor::reboot_refusal`](crate::Vendor::reboot_refusal) when the merged
/// `sip.notify_reboot` is `0`.
pub fn reboot_refused_by_setting(settings: &Settings) -> Option<String> {
    (settings.get_key(&sipprov_model::known::SIP_NOTIFY_REBOOT) == Some(false)).then(|| {
        "reboot disabled for this device: sip.notify_reboot = 0 (device, group or global setting); set \
         sip.notify_reboot=1 to let check-sync reboot it"
            .to_string()
    })
}

/// A refusal when the device's file carries `name` (ignoring case) with a value `reboots` says
/// does not let `reboot=true` reboot the phone; `None` when it does, or when the file does not
/// carry `name` and `sip.notify_reboot` is not `0`.
pub fn reboot_refused_by(
    params: &[VendorParam],
    settings: &Settings,
    name: &str,
    reboots: fn(&str) -> bool,
) -> Option<String> {
    match params.iter().find(|p| p.name.eq_ignore_ascii_case(name)) {
        Some(p) if !reboots(&p.value) => Some(format!(
            "reboot disabled for this device: its file sets {name} = {:?}, so the phone ignores reboot=true; set \
             sip.notify_reboot=1 (device or group) and remove any vendor.{name} override to let check-sync reboot it",
            p.value
        )),
        Some(_) => None,
        None => reboot_refused_by_setting(settings),
    }
}

/// Expands `{n}`, `{i}` and `{hs}` in a line row's name.
///
/// ```
/// use sipprov_vendors::mapping::expand;
/// assert_eq!(expand("account.{n}.user_name", 2), "account.2.user_name");
/// assert_eq!(expand("P{i}_{hs}", 12), "P11_00012");
/// assert_eq!(expand("{x}{n", 1), "{x}{n");
/// ```
pub fn expand(name: &str, n: u32) -> String {
    use std::fmt::Write;
    // One pass into one string: three `replace`s and their formatted numbers allocated six
    // strings per row, a tenth of a rendering.
    let mut out = String::with_capacity(name.len() + 8);
    let mut rest = name;
    while let Some(at) = rest.find('{') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        // Writing into a `String` cannot fail.
        let _ = if let Some(after) = tail.strip_prefix("{n}") {
            rest = after;
            write!(out, "{n}")
        } else if let Some(after) = tail.strip_prefix("{i}") {
            rest = after;
            write!(out, "{}", n.wrapping_sub(1))
        } else if let Some(after) = tail.strip_prefix("{hs}") {
            rest = after;
            write!(out, "{n:05}")
        } else {
            out.push('{');
            rest = &tail[1..];
            Ok(())
        };
    }
    out.push_str(rest);
    out
}

fn apply_overrides(out: &mut Vec<VendorParam>, settings: &Settings, scope: FileScope, extra_group: &'static str) {
    // Only `vendor.` keys are overrides: the rest are not classified (a full check per key).
    for (key, value) in settings.iter().filter(|(k, _)| k.starts_with("vendor.")) {
        let Ok(KeyKind::Vendor(raw)) = Settings::classify(key) else { continue };
        if scope == FileScope::Model && crate::is_secret_setting(key) {
            continue;
        }
        match out.iter().position(|p| p.name.eq_ignore_ascii_case(&raw)) {
            Some(i) if value.is_empty() => {
                out.remove(i);
            }
            Some(i) => out[i].value = value.to_string(),
            None if value.is_empty() => {}
            None => out.push(VendorParam { name: raw, value: value.to_string(), line: None, group: extra_group }),
        }
    }
}

/// True when a raw parameter `name` matches `pattern`, ignoring ASCII case; `{n}` in the pattern
/// stands for one or more digits.
///
/// ```
/// use sipprov_vendors::mapping::name_matches;
/// assert!(name_matches("account.{n}.password", "Account.12.Password"));
/// assert!(name_matches("P{n}06", "P406") && name_matches("user_pass", "USER_PASS"));
/// assert!(!name_matches("account.{n}.password", "account..password"));
/// assert!(!name_matches("account.{n}.password", "account.1.password2"));
/// ```
pub fn name_matches(pattern: &str, name: &str) -> bool {
    match pattern.split_once("{n}") {
        None => pattern.eq_ignore_ascii_case(name),
        Some((head, tail)) => {
            let Some(rest) =
                name.get(..head.len()).filter(|h| h.eq_ignore_ascii_case(head)).map(|_| &name[head.len()..])
            else {
                return false;
            };
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            // `{n}` may be followed by more digits in the pattern (`P{n}06`): try every split.
            (1..=digits).any(|d| name_matches(tail, &rest[d..]))
        }
    }
}

/// Checks that a parameter table's secret rows (line passwords, keys such as `http.password`)
/// are all declared by `is_secret`, for the vendor modules' tests: a table row added without
/// its declaration would show the value in listings and let it into common files.
#[cfg(test)]
pub(crate) fn undeclared_secret_rows(defs: &[ParamDef], is_secret: impl Fn(&str) -> bool) -> Vec<String> {
    defs.iter()
        .filter(|d| match d.source {
            Source::Line(f) | Source::FirstLine(f) => f == LineField::Password,
            Source::Key(k) => crate::is_secret_setting(k),
            _ => false,
        })
        .map(|d| expand(d.name, 1))
        .filter(|name| !is_secret(name))
        .collect()
}

/// Upper-case alphanumerics only: the form model names are compared in.
pub fn normalize(name: &str) -> String {
    name.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_uppercase()).collect()
}

/// Finds a model by name or alias, ignoring case and punctuation.
///
/// Runs on every provisioning request (the device's model, the User-Agent's), so it compares in
/// place instead of building the normalized form of every name in the table.
pub fn find_model(models: &'static [ModelInfo], name: &str) -> Option<&'static ModelInfo> {
    if let Some(exact) = models.iter().find(|m| m.name == name) {
        return Some(exact);
    }
    if !name.bytes().any(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    models.iter().find(|m| same_normalized(m.name, name) || m.aliases.iter().any(|a| same_normalized(a, name)))
}

/// Whether two names have the same [`normalize`]d form, without building either.
fn same_normalized(a: &str, b: &str) -> bool {
    fn significant(s: &str) -> impl Iterator<Item = u8> + '_ {
        s.bytes().filter(u8::is_ascii_alphanumeric).map(|c| c.to_ascii_uppercase())
    }
    significant(a).eq(significant(b))
}

/// True when a `vendor.<raw>` setting names `name` (ignoring case), set or removed: a vendor's
/// own derived parameter of that name then gives way to it.
pub fn overridden(settings: &Settings, name: &str) -> bool {
    settings.iter().any(|(k, _)| {
        k.starts_with("vendor.")
            && matches!(Settings::classify(k), Ok(KeyKind::Vendor(raw)) if raw.eq_ignore_ascii_case(name))
    })
}

/// Refuses a `vendor.<raw>` setting whose name `is_name` says the vendor's files cannot carry,
/// with `rule` saying what a name must be. For a device of that vendor only: such settings
/// inherited from the global or group level belong to other vendors and are left out of the
/// file instead (`params.retain`).
pub fn check_raw_names(settings: &Settings, is_name: fn(&str) -> bool, rule: &str) -> Result<(), String> {
    for (key, _) in settings.iter() {
        if let Ok(KeyKind::Vendor(raw)) = Settings::classify(key) {
            if !is_name(&raw) {
                return Err(format!("{key}: {rule}"));
            }
        }
    }
    Ok(())
}

/// Refuses line numbers above the model's known maximum.
pub fn check_max_lines(model: &ModelInfo, settings: &Settings) -> Result<(), String> {
    match (model.max_lines, settings.line_indexes().last()) {
        (Some(max), Some(&n)) if n > max => {
            Err(format!("the {} has {max} lines (ports); line.{n}.* cannot be provisioned", model.name))
        }
        _ => Ok(()),
    }
}

/// The rules of a `time.zone` value in force this year ([`ZoneRules::current`]); `None` for a
/// value the model crate would not have accepted.
pub fn zone_rules(zone: &str) -> Option<ZoneRules> {
    ZoneRules::current(zone).ok()
}

/// True when `time.zone` names an IANA zone rather than a fixed UTC offset.
pub fn is_named_zone(zone: &str) -> bool {
    matches!(sipprov_model::tz::Zone::parse(zone), Some(sipprov_model::tz::Zone::Named(_)))
}

/// Refuses neutral keys set on a device that the vendor's files cannot carry: each entry is a
/// key (or a `line.N.` field name, checked on every line) and what the vendor lacks. The
/// message names the key, so the operator sees what to remove or set as `vendor.<name>`.
pub fn refuse_unmapped(settings: &Settings, vendor: &str, unmapped: &[(&str, &str)]) -> Result<(), String> {
    for (key, value) in settings.iter() {
        if value.is_empty() {
            continue;
        }
        let field = match Settings::classify(key) {
            Ok(KeyKind::Line { field, .. }) => Some(field.name()),
            _ => None,
        };
        let hit =
            unmapped.iter().find(|(k, _)| *k == key || field.is_some_and(|f| k.strip_prefix("line.N.") == Some(f)));
        if let Some((_, why)) = hit {
            return Err(format!("{key} cannot be provisioned on {vendor} devices: {why}"));
        }
    }
    Ok(())
}

/// Refuses `line.N.port` or `line.N.transport` on a line without `line.N.registrar`, for
/// vendors that write them only as part of the registrar's address.
pub fn check_server_fields_need_registrar(settings: &Settings, vendor: &str) -> Result<(), String> {
    for n in settings.line_indexes() {
        if line_value(settings, n, LineField::Registrar).is_some() {
            continue;
        }
        for field in [LineField::Port, LineField::Transport] {
            if line_value(settings, n, field).is_some() {
                return Err(format!(
                    "line.{n}.{}: {vendor} files carry the port and transport with the registrar; set line.{n}.registrar too",
                    field.name()
                ));
            }
        }
    }
    Ok(())
}

/// Refuses lines whose registrar, port or transport differ from the first line's, for files that
/// define one SIP server for all lines.
pub fn check_one_server(settings: &Settings, what: &str) -> Result<(), String> {
    let server =
        |n: u32| [LineField::Registrar, LineField::Port, LineField::Transport].map(|f| line_value(settings, n, f));
    let lines = settings.line_indexes();
    let Some(&first) = lines.first() else { return Ok(()) };
    for &n in &lines[1..] {
        for (i, field) in [LineField::Registrar, LineField::Port, LineField::Transport].into_iter().enumerate() {
            if server(n)[i] != server(first)[i] {
                return Err(format!(
                    "line.{n}.{} differs from line.{first}'s: {what} defines one SIP server shared by all lines",
                    field.name()
                ));
            }
        }
    }
    Ok(())
}

/// A UTC offset parsed from `time.zone` (`+1`, `-5`, `+5:30`, `UTC+02:00`, `GMT-3.5`), in minutes.
/// Zone names (`Europe/Paris`) are not offsets and give `None`.
pub fn utc_offset_minutes(zone: &str) -> Option<i32> {
    sipprov_model::tz::utc_offset_minutes(zone)
}

/// The offset of `time.zone` in minutes for files that hold a UTC offset only: a fixed offset,
/// or a named zone without daylight saving time. `None` for a zone with it, which such a vendor
/// must refuse ([`refuse_zone_with_dst`]) rather than write an offset that is wrong half the year.
pub fn fixed_offset_minutes(zone: &str) -> Option<i32> {
    zone_rules(zone).filter(|r| r.dst.is_none()).map(|r| r.std_offset_minutes())
}

/// Refuses a `time.zone` with daylight saving time on a device whose files (`what`) hold a UTC
/// offset only.
pub fn refuse_zone_with_dst(settings: &Settings, what: &str) -> Result<(), String> {
    match get(settings, "time.zone").filter(|z| fixed_offset_minutes(z).is_none()) {
        Some(zone) => Err(format!(
            "time.zone = {zone:?} observes daylight saving time, which {what} cannot carry (it holds a UTC \
             offset only); set time.zone to an offset such as +1"
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFS: &[ParamDef] = &[
        ParamDef::global(Source::Key("provisioning.url"), "url", same),
        ParamDef::global(Source::Key("sip.notify_reboot"), "reboot", same).or("0"),
        ParamDef::device(Source::Key("admin.password"), "admin", same),
        ParamDef::device(Source::LineAlways, "acc.{n}.enable", one),
        ParamDef::device(Source::Line(LineField::AuthUsername), "acc.{n}.auth", same),
        ParamDef::device(Source::Line(LineField::Password), "acc.{i}.pw", same),
    ];

    fn s(items: &[&str]) -> Settings {
        Settings::parse_assignments(items.iter().copied()).unwrap()
    }

    fn names(p: &[VendorParam]) -> Vec<String> {
        p.iter().map(|p| format!("{}={}", p.name, p.value)).collect()
    }

    #[test]
    fn device_scope_maps_lines_with_fallbacks_in_line_order() {
        let st = s(&["line.2.username=b", "line.1.username=a", "line.1.password=x", "admin.password=pw"]);
        let p = build(DEFS, &st, FileScope::Device, "");
        assert_eq!(
            names(&p),
            ["reboot=0", "admin=pw", "acc.1.enable=1", "acc.1.auth=a", "acc.0.pw=x", "acc.2.enable=1", "acc.2.auth=b"]
        );
    }

    #[test]
    fn model_scope_drops_lines_device_rows_and_secret_overrides() {
        let st = s(&[
            "line.1.username=a",
            "admin.password=pw",
            "provisioning.url=http://p/",
            "vendor.x.password=s",
            "vendor.x.colour=red",
        ]);
        let p = build(DEFS, &st, FileScope::Model, "extra");
        assert_eq!(names(&p), ["url=http://p/", "reboot=0", "x.colour=red"]);
        assert_eq!(p[2].group, "extra");
    }

    #[test]
    fn overrides_replace_case_insensitively_and_empty_removes() {
        // An empty value survives in parsed or merged sets, where it marks a removal.
        let st = s(&["sip.notify_reboot=1", "vendor.REBOOT=2", "line.1.username=a", "vendor.acc.1.auth="]);
        let p = build(DEFS, &st, FileScope::Device, "");
        assert_eq!(names(&p), ["reboot=2", "acc.1.enable=1"]);
    }

    #[test]
    fn utc_offsets_parse_and_names_do_not() {
        assert_eq!(utc_offset_minutes("+1"), Some(60));
        assert_eq!(utc_offset_minutes("UTC-05:30"), Some(-330));
        assert_eq!(utc_offset_minutes("GMT+5.5"), Some(330));
        assert_eq!(utc_offset_minutes("0"), Some(0));
        assert_eq!(utc_offset_minutes("Europe/Paris"), None);
        assert_eq!(utc_offset_minutes("+20"), None);
    }

    #[test]
    fn model_lookup_ignores_case_and_punctuation() {
        static M: &[ModelInfo] = &[ModelInfo {
            name: "MP-118",
            family: "mp",
            aliases: &["MP118FXS"],
            common_file: None,
            max_lines: Some(8),
        }];
        assert_eq!(find_model(M, "mp118").unwrap().name, "MP-118");
        assert_eq!(find_model(M, "MP-118 FXS").unwrap().name, "MP-118");
        assert!(find_model(M, "").is_none() && find_model(M, "MP-124").is_none());
        let too_many = s(&["line.9.username=x"]);
        assert!(check_max_lines(&M[0], &too_many).unwrap_err().contains("8 lines"));
    }
}

/// A file URL taken apart, for vendors whose phones take a server directory and a file name
/// apart rather than one URL (Grandstream's firmware and phonebook server paths).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UrlParts<'a> {
    /// `http` or `https`, lower case.
    pub scheme: &'static str,
    /// Host (with port) and directory path, without the scheme and without a trailing `/`,
    /// e.g. `prov.example.com:8443/files`.
    pub dir: &'a str,
    /// The last path segment, e.g. `phonebook.xml`; empty when the path ends in `/`.
    pub file: &'a str,
}

/// Splits an `http://` or `https://` URL into [`UrlParts`]; `None` for any other scheme and for
/// URLs with a query or fragment, which a directory-and-name pair cannot carry.
///
/// ```
/// use sipprov_vendors::mapping::url_parts;
/// let p = url_parts("HTTPS://prov.example.com:8443/files/AA/gxp2170fw.bin").unwrap();
/// assert_eq!((p.scheme, p.dir, p.file), ("https", "prov.example.com:8443/files/AA", "gxp2170fw.bin"));
/// assert_eq!(url_parts("http://h/").unwrap().file, "");
/// assert!(url_parts("http://h/x?y=1").is_none() && url_parts("ftp://h/x").is_none());
/// ```
pub fn url_parts(url: &str) -> Option<UrlParts<'_>> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "http" => "http",
        "https" => "https",
        _ => return None,
    };
    if rest.contains(['?', '#']) || rest.is_empty() {
        return None;
    }
    let (dir, file) = match rest.rsplit_once('/') {
        Some((dir, file)) => (dir, file),
        None => (rest, ""),
    };
    Some(UrlParts { scheme, dir, file })
}

/// The file name a URL ends in (its last path segment, query and fragment left out), e.g.
/// `Ring1.wav` for `https://h/files/Ring1.wav?v=2`; `None` when the path ends in `/`. Phones
/// that keep downloaded files by name select them by it (Yealink `phone_setting.ring_type`).
///
/// ```
/// use sipprov_vendors::mapping::url_file_name;
/// assert_eq!(url_file_name("https://h/files/Ring1.wav?v=2").as_deref(), Some("Ring1.wav"));
/// assert_eq!(url_file_name("https://h/files/"), None);
/// assert_eq!(url_file_name("https://h"), None);
/// ```
pub fn url_file_name(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let path = rest.split(['?', '#']).next().unwrap_or_default();
    let (_, file) = path.rsplit_once('/')?;
    (!file.is_empty()).then(|| file.to_string())
}
