//! Yealink desk phones (T2x/T3x/T4x/T5x/T7x/T8x, CP) and W-series DECT bases.
//!
//! Files (research `config-formats.md` §1.1): the per-model common file `y0000000000XX.cfg`
//! and the per-device `<mac>.cfg` (lower-case MAC). Both are `key = value` text whose first line
//! must be `#!version:1.0.0.1` (§1.2). Boot files (`<mac>.boot`, `y000000000000.boot`) are not
//! generated: without them the phone falls back to the common + MAC file pair (§1.1, "old
//! mechanism"), which every firmware generation understands, so a boot file would only add a
//! request and a template without changing what the phone applies.

use sipprov_model::{LineField, Mac, Settings};

use crate::mapping::{self, one, same, ParamDef, Source};
use crate::ua::{self, is_numeric_version};
use crate::yealink_aes;
use crate::{FileScope, FileSpec, ModelInfo, NamePattern, UserAgentInfo, Vendor, VendorParam};

/// The Yealink vendor module.
pub struct Yealink;

const fn desk(name: &'static str, common: &'static str, aliases: &'static [&'static str]) -> ModelInfo {
    ModelInfo { name, family: "desk", aliases, common_file: Some(common), max_lines: None }
}

const fn dect(
    name: &'static str,
    family: &'static str,
    common: &'static str,
    aliases: &'static [&'static str],
) -> ModelInfo {
    ModelInfo { name, family, aliases, common_file: Some(common), max_lines: None }
}

/// Common-file numbers from fpbx `resources/templates/provision/yealink/<model>/` (research §1.1).
/// The first model listed for a number is the one an unidentified request for it resolves to.
static MODELS: &[ModelInfo] = &[
    desk("T46S", "y000000000066.cfg", &[]),
    desk("T41S", "y000000000068.cfg", &[]),
    desk("T42S", "y000000000067.cfg", &[]),
    desk("T48S", "y000000000065.cfg", &[]),
    desk("T40P", "y000000000054.cfg", &[]),
    desk("T40G", "y000000000076.cfg", &[]),
    desk("T41P", "y000000000036.cfg", &[]),
    desk("T42G", "y000000000029.cfg", &[]),
    desk("T42U", "y000000000116.cfg", &[]),
    desk("T43U", "y000000000107.cfg", &[]),
    desk("T46G", "y000000000028.cfg", &[]),
    desk("T46U", "y000000000108.cfg", &[]),
    desk("T48G", "y000000000035.cfg", &[]),
    desk("T48U", "y000000000109.cfg", &[]),
    desk("T49G", "y000000000051.cfg", &["VP-T49G"]),
    desk("T52S", "y000000000074.cfg", &[]),
    desk("T54S", "y000000000070.cfg", &[]),
    desk("T53", "y000000000095.cfg", &["T53C"]),
    desk("T53W", "y000000000095.cfg", &[]),
    desk("T54W", "y000000000096.cfg", &[]),
    desk("T57W", "y000000000097.cfg", &[]),
    desk("T58A", "y000000000058.cfg", &["T58"]),
    desk("T58V", "y000000000058.cfg", &[]),
    desk("T58W", "y000000000150.cfg", &[]),
    desk("T19P_E2", "y000000000053.cfg", &["T19E2"]),
    desk("T21P_E2", "y000000000052.cfg", &["T21E2"]),
    desk("T23G", "y000000000044.cfg", &[]),
    desk("T23P", "y000000000044.cfg", &[]),
    desk("T27G", "y000000000069.cfg", &[]),
    desk("T29G", "y000000000046.cfg", &[]),
    desk("T28P", "y000000000000.cfg", &[]),
    desk("T31G", "y000000000123.cfg", &[]),
    desk("T33G", "y000000000124.cfg", &[]),
    desk("T31W", "y000000000172.cfg", &[]),
    desk("T34W", "y000000000171.cfg", &[]),
    desk("T44W", "y000000000174.cfg", &[]),
    desk("T73U", "y000000000186.cfg", &[]),
    desk("T73W", "y000000000183.cfg", &[]),
    desk("T74U", "y000000000187.cfg", &[]),
    desk("T74W", "y000000000184.cfg", &[]),
    desk("T77U", "y000000000188.cfg", &[]),
    desk("T85W", "y000000000196.cfg", &[]),
    desk("T87W", "y000000000197.cfg", &[]),
    desk("T88V", "y000000000192.cfg", &[]),
    desk("T88W", "y000000000192.cfg", &[]),
    desk("CP920", "y000000000078.cfg", &[]),
    desk("CP925", "y000000000148.cfg", &[]),
    desk("CP960", "y000000000073.cfg", &[]),
    desk("CP965", "y000000000143.cfg", &[]),
    // W52P and W60B use the desk-phone account keys (wazo v8x); the UA of a W56P system says W52P.
    dect("W52P", "dect", "y000000000025.cfg", &["W56P"]),
    dect("W60B", "dect", "y000000000077.cfg", &[]),
    // W70B/W80/W90 put the server in template.N.* (wazo v87 base-dect.tpl, research §1.2).
    dect("W70B", "dect-dm", "y000000000146.cfg", &[]),
    dect("W80DM", "dect-dm", "y000000000175.cfg", &["W80B", "W80"]),
    // Number taken from the W90DM firmware prefix (130.x), which usually but not always matches
    // (research §1.1); unidentified requests for it fall back on the UA model anyway.
    dect("W90DM", "dect-dm", "y000000000130.cfg", &["W90B", "W90"]),
];

/// 0 UDP, 1 TCP, 2 TLS (wazo `_SIP_TRANSPORT`, research §1.2).
fn transport(v: &str) -> Option<String> {
    Some(
        match v {
            "tcp" => "1",
            "tls" => "2",
            _ => "0",
        }
        .into(),
    )
}

/// `sip.notify_reboot_enable`: 0 = resync, reboot only on `reboot=true`; 1 = always reboot
/// (research §1.2). The neutral setting is normalised to "1"/"0" by the model crate.
fn notify_reboot(v: &str) -> Option<String> {
    Some(if v == "1" { "1" } else { "0" }.into())
}

/// `local_time.time_zone` takes an offset such as `+1`, `-5` or `+5:30`; zone names are left out.
fn time_zone(v: &str) -> Option<String> {
    let m = mapping::utc_offset_minutes(v)?;
    let sign = if m < 0 { "-" } else { "+" };
    let (h, min) = (m.abs() / 60, m.abs() % 60);
    Some(match (m, min) {
        (0, _) => "0".into(),
        (_, 0) => format!("{sign}{h}"),
        _ => format!("{sign}{h}:{min:02}"),
    })
}

fn admin_password(v: &str) -> Option<String> {
    Some(format!("admin:{v}"))
}

macro_rules! yealink_globals {
    () => {
        [
            // fpbx t46u/y000000000108.cfg (research §1.2).
            ParamDef::global(Source::Key("provisioning.url"), "static.auto_provision.server.url", same),
            ParamDef::global(Source::Key("provisioning.interval_minutes"), "static.auto_provision.repeat.enable", one),
            ParamDef::global(
                Source::Key("provisioning.interval_minutes"),
                "static.auto_provision.repeat.minutes",
                same,
            ),
            ParamDef::global(Source::Key("time.ntp_server"), "local_time.ntp_server1", same),
            ParamDef::global(Source::Key("time.zone"), "local_time.time_zone", time_zone),
            ParamDef::global(Source::Key("firmware.url"), "static.firmware.url", same),
            ParamDef::global(Source::Key("sip.notify_reboot"), "sip.notify_reboot_enable", notify_reboot).or("0"),
            ParamDef::device(Source::Key("admin.password"), "static.security.user_password", admin_password),
            // The phone's own credentials for later fetches (fpbx t46u template, research §1.4).
            ParamDef::device(Source::Key("http.username"), "static.auto_provision.server.username", same),
            ParamDef::device(Source::Key("http.password"), "static.auto_provision.server.password", same),
            // 1 = look for `<name>_Security.enc` key files; not secret, so common files carry it too.
            ParamDef::global(Source::Key("yealink.aes_key_file"), "static.auto_provision.aes_key_in_file", same),
            ParamDef::device(Source::LineAlways, "account.{n}.enable", one),
            ParamDef::device(Source::Line(LineField::Label), "account.{n}.label", same),
            ParamDef::device(Source::Line(LineField::DisplayName), "account.{n}.display_name", same),
            ParamDef::device(Source::Line(LineField::AuthUsername), "account.{n}.auth_name", same),
            ParamDef::device(Source::Line(LineField::Username), "account.{n}.user_name", same),
            ParamDef::device(Source::Line(LineField::Password), "account.{n}.password", same),
        ]
    };
}

const fn concat<const A: usize, const B: usize, const N: usize>(a: [ParamDef; A], b: [ParamDef; B]) -> [ParamDef; N] {
    assert!(A + B == N);
    let mut out = [a[0]; N];
    let mut i = 0;
    while i < N {
        out[i] = if i < A { a[i] } else { b[i - A] };
        i += 1;
    }
    out
}

/// Desk phones and W52P/W60B: the server sits in the account (wazo v87 base.tpl).
static DESK_PARAMS: [ParamDef; 20] = concat(
    yealink_globals!(),
    [
        ParamDef::device(Source::Line(LineField::Registrar), "account.{n}.sip_server.1.address", same),
        ParamDef::device(Source::Line(LineField::Port), "account.{n}.sip_server.1.port", same),
        ParamDef::device(Source::Line(LineField::Transport), "account.{n}.sip_server.1.transport_type", transport),
    ],
);

/// W70B/W80/W90: one server template per line, referenced by the account (wazo base-dect.tpl).
static DECT_DM_PARAMS: [ParamDef; 21] = concat(
    yealink_globals!(),
    [
        ParamDef::device(Source::LineNumber(LineField::Registrar), "account.{n}.sip_server.template", same),
        ParamDef::device(Source::Line(LineField::Registrar), "template.{n}.sip_server.1.address", same),
        ParamDef::device(Source::Line(LineField::Port), "template.{n}.sip_server.1.port", same),
        ParamDef::device(Source::Line(LineField::Transport), "template.{n}.sip_server.1.transport_type", transport),
    ],
);

/// `^y0{9}\d{3}\.cfg$`, any case: every common-file name (research §1.1).
pub fn is_common_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.len() == 17
        && n.starts_with("y000000000")
        && n.ends_with(".cfg")
        && n.as_bytes()[10..13].iter().all(u8::is_ascii_digit)
}

fn common_spec(name: &str) -> FileSpec {
    FileSpec {
        name: name.to_ascii_lowercase(),
        aliases: Vec::new(),
        template: "yealink/common.cfg.j2",
        scope: FileScope::Model,
        content_type: "text/plain",
        name_pattern: Some(NamePattern::YealinkCommon),
    }
}

/// Parses the model, firmware and MAC tokens of the forms listed in research §1.3.
fn parse_tokens(ua: &str) -> Option<(String, Option<String>, Option<Mac>)> {
    let t: Vec<&str> = ua::unquote(ua).split_whitespace().collect();
    let first = *t.first()?;
    let (model, rest) = if first.eq_ignore_ascii_case("yealink") {
        // `Yealink SIP-T46S …`, `Yealink SIP VP-T49G …`, `Yealink W52P …`.
        let skip = usize::from(t.get(1).is_some_and(|s| s.eq_ignore_ascii_case("SIP")));
        let tok = *t.get(1 + skip)?;
        (strip_ci(strip_ci(tok, "SIP-"), "VP-"), &t[2 + skip..])
    } else if first.get(..8).is_some_and(|p| p.eq_ignore_ascii_case("yealink-")) {
        // `Yealink-T46G 28.71.0.81 28.1.0.128.0.0.0`: no MAC.
        (&first[8..], &t[1..])
    } else if t.len() == 3 && looks_like_model(first) && is_numeric_version(t[1]) && ua::mac(t[2]).is_some() {
        // `W52P 25.30.0.2 00:15:65:44:b3:7c`, `VP530P 23.70.0.40 …`: no vendor name at all.
        (first, &t[1..])
    } else {
        return None;
    };
    if model.is_empty() {
        return None;
    }
    let firmware = rest.first().filter(|v| is_numeric_version(v)).map(|v| v.to_string());
    // T5x may send the MAC without colons (fpbx app/provision/index.php); both parse as a Mac.
    let mac = rest.get(1).and_then(|m| ua::mac(m));
    Some((model.to_string(), firmware, mac))
}

fn strip_ci<'a>(s: &'a str, prefix: &str) -> &'a str {
    match s.get(..prefix.len()) {
        Some(p) if p.eq_ignore_ascii_case(prefix) => &s[prefix.len()..],
        _ => s,
    }
}

/// Yealink model shapes seen without the vendor name: `W52P`, `VP530P`, `T46G`, `CP960`.
fn looks_like_model(s: &str) -> bool {
    let b = s.as_bytes();
    let digits_after = |k: usize| b.len() > k + 1 && b[k..k + 2].iter().all(u8::is_ascii_digit);
    s.bytes().all(|c| c.is_ascii_alphanumeric())
        && ((b[0] == b'W' || b[0] == b'T') && digits_after(1)
            || (s.starts_with("VP") || s.starts_with("CP")) && digits_after(2))
}

/// Yealink parameters holding secrets: the account password, the provisioning server's
/// password and the AES keys (fpbx `resources/templates/provision/yealink/t46u/y000000000108.cfg`;
/// the newer `aes_key.com`/`.mac` names from Yealink's administrator guides, "Common AES key" and
/// "MAC-Oriented AES key"), the web users' `user:password` (`security.user_password`, wazo
/// `xivo-yealink/20.0/templates/common/model.tpl`; `static.security.user_password`, wazo
/// `wazo-yealink/v81/templates/W52P.tpl`), and from wazo `wazo-yealink/v87/templates/base.tpl` the
/// 802.1X, TR-069, LDAP, remote phone book, push-XML and XML-browser passwords and the
/// phone-lock PIN.
pub const SECRET_PARAMS: &[&str] = &[
    "account.{n}.password",
    "static.auto_provision.server.password",
    "security.user_password",
    "static.security.user_password",
    "static.auto_provision.aes_key_16.com",
    "static.auto_provision.aes_key_16.mac",
    "static.auto_provision.aes_key.com",
    "static.auto_provision.aes_key.mac",
    "static.autoprovision.{n}.password",
    "static.network.802_1x.md5_password",
    "static.managementserver.password",
    "static.managementserver.connection_request_password",
    "ldap.password",
    "remote_phonebook.data.{n}.password",
    "push_xml.password",
    "features.xml_browser.pwd",
    "phone_setting.phone_lock.unlock_pin",
];

impl Vendor for Yealink {
    fn id(&self) -> &'static str {
        "yealink"
    }

    fn secret_params(&self) -> &'static [&'static str] {
        SECRET_PARAMS
    }

    fn display_name(&self) -> &'static str {
        "Yealink"
    }

    fn models(&self) -> &'static [ModelInfo] {
        MODELS
    }

    fn model(&self, name: &str) -> Option<&'static ModelInfo> {
        // "Yealink SIP-T46S", "SIP-T46S", "T46S" all name the T46S.
        let n = strip_ci(strip_ci(name.trim(), "Yealink").trim_start(), "SIP-");
        mapping::find_model(MODELS, n)
    }

    fn parse_user_agent(&self, ua: &str) -> Option<UserAgentInfo> {
        let (model, firmware, mac) = parse_tokens(ua)?;
        let model = self.model(&model).map_or(model, |m| m.name.to_string());
        Some(UserAgentInfo { vendor: "yealink", model: Some(model), firmware, mac })
    }

    fn device_files(&self, model: &'static ModelInfo, mac: Mac) -> Vec<FileSpec> {
        let device = FileSpec {
            name: format!("{mac}.cfg"),
            aliases: Vec::new(),
            template: "yealink/mac.cfg.j2",
            scope: FileScope::Device,
            content_type: "text/plain",
            name_pattern: None,
        };
        model.common_file.map(common_spec).into_iter().chain([device]).collect()
    }

    fn mac_in_file_name(&self, file_name: &str) -> Option<Mac> {
        ua::mac_file(file_name, &["cfg"])
    }

    /// `<mac>-local.cfg`: the settings changed on the phone, uploaded when
    /// `static.auto_provision.custom.sync` is on (wazo `_SENSITIVE_FILENAME_REGEX`; fpbx Yealink
    /// template comments).
    fn upload_mac(&self, file_name: &str) -> Option<Mac> {
        let lower = file_name.to_ascii_lowercase();
        ua::plain_mac(lower.strip_suffix("-local.cfg")?)
    }

    fn model_file(&self, file_name: &str, ua_model: Option<&str>) -> Option<(&'static ModelInfo, FileSpec)> {
        if !is_common_name(file_name) {
            return None;
        }
        let by_ua = ua_model.and_then(|m| self.model(m));
        let by_number = || MODELS.iter().find(|m| m.common_file.is_some_and(|c| c.eq_ignore_ascii_case(file_name)));
        let model = by_ua.or_else(by_number)?;
        Some((model, common_spec(file_name)))
    }

    fn parameters(&self, model: &'static ModelInfo, settings: &Settings, scope: FileScope) -> Vec<VendorParam> {
        let defs: &[ParamDef] = if model.family == "dect-dm" { &DECT_DM_PARAMS } else { &DESK_PARAMS };
        mapping::build(defs, settings, scope, "")
    }

    /// Device files are AES-encrypted when the merged settings carry `yealink.aes_key`; common files
    /// stay plain (they hold no secrets, and the phone may not have a common key).
    fn seal(&self, file: &FileSpec, settings: &Settings, rendered: Vec<u8>) -> Result<Vec<u8>, String> {
        match (file.scope, mapping::get(settings, "yealink.aes_key")) {
            (FileScope::Device, Some(key)) => {
                let padding = yealink_aes::Padding::from_setting(mapping::get(settings, "yealink.aes_padding"));
                yealink_aes::encrypt(&rendered, key, padding).map_err(|e| format!("yealink.aes_key: {e}"))
            }
            _ => Ok(rendered),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_secret_row_is_declared() {
        assert_eq!(mapping::undeclared_secret_rows(&DESK_PARAMS, |n| Yealink.is_secret_param(n)), Vec::<String>::new());
        assert_eq!(
            mapping::undeclared_secret_rows(&DECT_DM_PARAMS, |n| Yealink.is_secret_param(n)),
            Vec::<String>::new()
        );
    }
}
