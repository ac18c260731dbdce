//! Grandstream phones and ATAs (research `config-formats.md` §6).
//!
//! # Files (§6.1)
//!
//! On boot a device asks for the binary `cfg<mac>` (newer documentation: `cfg<mac>.bin`), the XML
//! `cfg<mac>.xml`, then the model file `cfg<model>.xml` (e.g. `cfggrp2614.xml`) and the generic
//! `cfg.xml`. sipprov serves only the XML device file, `cfg<mac>.xml`, with the lower-case MAC the
//! research and wazo use; requests are matched ignoring case. The binary `cfg<mac>` is not served:
//! its format is proprietary and not described by the research. The model files are not served
//! either: the research names no setting they must carry, and everything goes in the device file.
//!
//! # Settings (§6.2)
//!
//! The format is wazo's `base.tpl`: `<gs_provision version="1">`, the device's `<mac>` (lower
//! case, as the User-Agent shows it, §6.3; the phone checks it against itself), then
//! `<config version="1">` with one element per P-value. Mapped, because the research example
//! verifies them, for account 1 only: `P271` (active), `P270` (account name: the line label, else
//! the display name), `P47` (registrar, `:port` added when the line has a port), `P35` (user
//! name), `P36` (auth user name), `P34` (password), `P3` (display name); `P26015` (Allow SIP
//! Reset), always 1; `P212` (0 TFTP, 1 HTTP, 2 HTTPS, from the scheme of `provisioning.url`) and
//! `P237` (that URL without its scheme); `provisioning.interval_minutes` as `P194` = 1 and `P193`
//! = minutes, which must be 60–5256000.
//!
//! Accounts 2 and up use other P-value ranges (wazo: `P4xx` for account 2), which the research
//! does not verify, so every model's [`ModelInfo::max_lines`] is 1 and
//! [`Grandstream::validate_device`] refuses `line.2.*` and above. The `<config version="2">` alias
//! names of newer firmware are not used: `version="1"` P-values are what the example verifies.
//!
//! # Raw parameters
//!
//! `vendor.P<digits>=<value>` writes `<P<digits>>value</P<digits>>` and replaces a mapped
//! P-value of the same number (e.g. `vendor.P401=1` for account 2, at the user's own risk). Any
//! other name cannot be a Grandstream P-value ([`is_p_value`]): [`Grandstream::validate_device`]
//! refuses it on a Grandstream device, and one inherited from the global or group settings
//! (meant for another vendor) is left out of the file.
//!
//! # Security (§6.4)
//!
//! Files are served in clear: the research leaves the XML encryption's key derivation
//! [unverified], so it is not implemented; use HTTPS.

use sipprov_model::{LineField, Mac, Settings};

use crate::mapping::{self, one, same, ParamDef, Source};
use crate::ua;
use crate::{FileScope, FileSpec, ModelInfo, UserAgentInfo, Vendor, VendorParam};

/// The Grandstream vendor module.
pub struct Grandstream;

/// Only account 1's P-values are verified (§6.2), hence one line on every model.
const fn model(name: &'static str, family: &'static str) -> ModelInfo {
    ModelInfo { name, family, aliases: &[], common_file: None, max_lines: Some(1) }
}

/// Only the models the research names (§6.1 `cfggrp2614.xml`, WP820 and HT801 manuals, §6.2 HT814
/// manual, §6.3 UAs of the GXP1628, GXV3240 and HT801); others are added once verified.
static MODELS: &[ModelInfo] = &[
    model("GXP1628", "desk"),
    model("GRP2614", "desk"),
    model("GXV3240", "video"),
    model("WP820", "wifi"),
    model("HT801", "ata"),
    model("HT814", "ata"),
];

/// `P193` range in minutes (§6.2, HT814 manual); settings already cap the interval at 525600.
const INTERVAL_MINUTES: std::ops::RangeInclusive<u64> = 60..=5_256_000;

/// The provisioning URL split into the `P212` protocol number and the `P237` server path, for the
/// schemes `P212` knows (0 TFTP, 1 HTTP, 2 HTTPS, §6.2). The path has no scheme and no trailing
/// `/`, as in the example `prov.example.com/gs`.
fn config_server(url: &str) -> Option<(&'static str, String)> {
    let (scheme, rest) = url.trim().split_once("://")?;
    let protocol = match scheme.to_ascii_lowercase().as_str() {
        "tftp" => "0",
        "http" => "1",
        "https" => "2",
        _ => return None,
    };
    let path = rest.trim_end_matches('/');
    (!path.is_empty()).then(|| (protocol, path.to_string()))
}

fn protocol(url: &str) -> Option<String> {
    config_server(url).map(|(p, _)| p.to_string())
}

fn server_path(url: &str) -> Option<String> {
    config_server(url).map(|(_, path)| path)
}

/// Minutes within the `P193` range, else `None` (refused by [`Grandstream::validate_device`]).
fn minutes(v: &str) -> Option<u64> {
    v.trim().parse::<u64>().ok().filter(|m| INTERVAL_MINUTES.contains(m))
}

fn auto_mode(v: &str) -> Option<String> {
    minutes(v).map(|_| "1".into())
}

fn auto_minutes(v: &str) -> Option<String> {
    minutes(v).map(|m| m.to_string())
}

/// P-values from the research example (§6.2, wazo `common/templates/base.tpl`). Line rows are
/// built for every line and all but account 1 dropped by [`Grandstream::parameters`]; `P270` and
/// `P47` are added there, since they combine two line fields.
static PARAMS: &[ParamDef] = &[
    // Allow SIP Reset: without it the phone ignores sipprov's check-sync NOTIFY (§6.2).
    ParamDef::device(Source::Always, "P26015", one),
    ParamDef::device(Source::Key("provisioning.url"), "P212", protocol),
    ParamDef::device(Source::Key("provisioning.url"), "P237", server_path),
    ParamDef::device(Source::Key("provisioning.interval_minutes"), "P194", auto_mode),
    ParamDef::device(Source::Key("provisioning.interval_minutes"), "P193", auto_minutes),
    ParamDef::device(Source::LineAlways, "P271", one),
    ParamDef::device(Source::Line(LineField::Username), "P35", same),
    ParamDef::device(Source::Line(LineField::AuthUsername), "P36", same),
    ParamDef::device(Source::Line(LineField::Password), "P34", same),
    ParamDef::device(Source::Line(LineField::DisplayName), "P3", same),
];

/// True for a Grandstream P-value name: `P` followed by one or more digits.
///
/// ```
/// use sipprov_vendors::grandstream::is_p_value;
/// assert!(is_p_value("P47") && is_p_value("P26015"));
/// assert!(!is_p_value("P") && !is_p_value("p47") && !is_p_value("P4x") && !is_p_value("account.1.sip.userid"));
/// ```
pub fn is_p_value(name: &str) -> bool {
    name.strip_prefix('P').is_some_and(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
}

/// `P270`, the account name: the line's own label, else its display name (not the user name
/// fallback of [`mapping::line_value`], which would name the account after a number).
fn account_name(settings: &Settings) -> Option<String> {
    mapping::get(settings, "line.1.label")
        .map(str::to_string)
        .or_else(|| mapping::line_value(settings, 1, LineField::DisplayName))
}

/// `P47`, the SIP server: the registrar, with `:port` when the line sets a port (§6.2 example
/// `pbx.example.com:5060`).
fn sip_server(settings: &Settings) -> Option<String> {
    let registrar = mapping::line_value(settings, 1, LineField::Registrar)?;
    Some(match mapping::line_value(settings, 1, LineField::Port) {
        Some(port) => format!("{registrar}:{port}"),
        None => registrar,
    })
}

/// Parses `Grandstream Model HW GXV3240 V1.6B SW 1.0.1.27 DevId 000b82632815`, or the legacy
/// `Grandstream GXP2000 (gxp2000e.bin:1.2.5.3/boot55e.bin:1.1.6.9) DevId 000b822726c8` (§6.3).
fn parse(ua: &str) -> Option<(Option<String>, Option<String>, Option<Mac>)> {
    let t: Vec<&str> = ua.split_whitespace().collect();
    if t.first() != Some(&"Grandstream") {
        return None;
    }
    let some = |s: &str| Some(s.to_string()).filter(|s| !s.is_empty());
    let after = |word: &str| t.iter().position(|x| *x == word).and_then(|i| t.get(i + 1)).copied();
    let model = if t.get(1) == Some(&"Model") { after("HW") } else { t.get(1).copied() };
    let mac = after("DevId").and_then(ua::plain_mac);
    Some((model.and_then(some), after("SW").and_then(some), mac))
}

/// Grandstream P-values holding secrets, from Grandstream's own configuration templates
/// (`config-template.zip` on grandstream.com, as copied into wazo-provd-plugins
/// `plugins/wazo-grandstream/docs/config-template/`: `grp261x_config_1.0.5.15.txt`,
/// `gxp16xx_config_1.0.7.3.txt`, `gxp2130_40_60_70_35_config_1.0.11.16.txt`,
/// `ht80x_config_1.0.19.11.txt`, `ht81x_config_1.0.19.11.txt`):
/// admin (`P2`), end user (`P196`) and viewer (`P28113`) web passwords; account passwords
/// `P34`, `P406`, `P506`, `P606`, `P1706`, `P1806` (accounts 1 to 6) and `P734` (HT80x port 2);
/// the HT81x per-port `P4060`–`P4063` (user, auth ID, password, ... in one value); provisioning
/// (`P1359` XML config file password, `P1361` config HTTP password, `P6769` firmware HTTP
/// password), TR-069 (`P4505`, `P4512`), PPPoE (`P83`), 802.1X MD5 (`P7903`), TLS private key
/// (`P281`), OpenVPN (`P8395`), LDAP bind (`P8024`), DDNS (`P28124`), keypad lock (`P1383`),
/// HTTP/FTP server passwords (`P6714`, `P8452`), login and presence passwords (`P1594`,
/// `P2352`, `P2452`, `P2552`, `P2967`, `P6773`), and the Wi-Fi and access passwords of the
/// GRP261x template.
pub const SECRET_PARAMS: &[&str] = &[
    "P2", "P196", "P28113", "P34", "P406", "P506", "P606", "P1706", "P1806", "P734", "P4060", "P4061", "P4062",
    "P4063", "P1359", "P1361", "P6769", "P4505", "P4512", "P83", "P7903", "P281", "P8395", "P8024", "P28124", "P1383",
    "P6714", "P8452", "P1594", "P2352", "P2452", "P2552", "P2967", "P6773", "P8404", "P8407", "P8410", "P8413",
    "P8416", "P8419", "P8422", "P8425", "P8428", "P8431", "P22022", "P22137", "P22140", "P22143", "P22146", "P22149",
    "P22152", "P22155", "P22158", "P22161", "P32004", "P32009", "P32014", "P32019", "P32024", "P32029", "P32034",
    "P32039", "P32044", "P32049",
];

impl Vendor for Grandstream {
    fn id(&self) -> &'static str {
        "grandstream"
    }

    fn secret_params(&self) -> &'static [&'static str] {
        SECRET_PARAMS
    }

    fn display_name(&self) -> &'static str {
        "Grandstream"
    }

    fn models(&self) -> &'static [ModelInfo] {
        MODELS
    }

    fn parse_user_agent(&self, ua: &str) -> Option<UserAgentInfo> {
        let (model, firmware, mac) = parse(ua::unquote(ua))?;
        let model = model.map(|m| self.model(&m).map_or(m, |known| known.name.to_string()));
        Some(UserAgentInfo { vendor: "grandstream", model, firmware, mac })
    }

    fn device_files(&self, _model: &'static ModelInfo, mac: Mac) -> Vec<FileSpec> {
        vec![FileSpec {
            name: format!("cfg{mac}.xml"),
            aliases: Vec::new(),
            template: "grandstream/cfg.xml.j2",
            scope: FileScope::Device,
            content_type: "application/xml",
            name_pattern: None,
        }]
    }

    /// `cfg<12 hex>.xml`, any case; never the binary `cfg<mac>`, model files or placeholders.
    fn mac_in_file_name(&self, file_name: &str) -> Option<Mac> {
        let prefix = file_name.get(..3).filter(|p| p.eq_ignore_ascii_case("cfg"))?;
        ua::mac_file(&file_name[prefix.len()..], &["xml"])
    }

    fn model_file(&self, _file_name: &str, _ua_model: Option<&str>) -> Option<(&'static ModelInfo, FileSpec)> {
        // `cfg<model>.xml` and `cfg.xml` are not served (see the module documentation).
        None
    }

    /// The table rows for account 1 only, `P270` and `P47` inserted after `P271` unless a
    /// `vendor.` setting names them, and only names that are P-values.
    fn parameters(&self, _model: &'static ModelInfo, settings: &Settings, scope: FileScope) -> Vec<VendorParam> {
        let mut params = mapping::build(PARAMS, settings, scope, "");
        params.retain(|p| !matches!(p.line, Some(n) if n != 1));
        if scope == FileScope::Device && settings.line_indexes().contains(&1) {
            let at = params.iter().position(|p| p.name == "P271").map_or(params.len(), |i| i + 1);
            let extra = [("P47", sip_server(settings)), ("P270", account_name(settings))];
            for (name, value) in extra {
                if let Some(value) = value.filter(|_| !mapping::overridden(settings, name)) {
                    params.insert(at, VendorParam { name: name.into(), value, line: Some(1), group: "" });
                }
            }
        }
        // `vendor.` settings apply to every vendor: one that is not a P-value (a Snom element,
        // an AudioCodes `section/key`, set globally) is not meant for Grandstream and is left out.
        // A device's own are refused when it is saved.
        params.retain(|p| is_p_value(&p.name));
        params
    }

    fn validate_device(&self, model: &'static ModelInfo, settings: &Settings) -> Result<(), String> {
        if let Some(&n) = settings.line_indexes().iter().find(|&&n| n > 1) {
            return Err(format!(
                "line.{n}.*: only account 1 of a Grandstream {} can be provisioned (the research verifies \
                 no P-values for other accounts); set them with vendor.P<number> if you know them",
                model.name
            ));
        }
        mapping::check_max_lines(model, settings)?;
        if let Some(v) = mapping::get(settings, "provisioning.interval_minutes") {
            if minutes(v).is_none() {
                return Err(format!(
                    "provisioning.interval_minutes = {v:?}: Grandstream devices check every 60 to 5256000 \
             minutes (P193)"
                ));
            }
        }
        mapping::check_raw_names(
            settings,
            is_p_value,
            "a Grandstream setting name must be a P-value, 'P' followed by digits (e.g. vendor.P47)",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_secret_row_is_declared() {
        assert_eq!(mapping::undeclared_secret_rows(PARAMS, |n| Grandstream.is_secret_param(n)), Vec::<String>::new());
        assert!(Grandstream.is_secret_param("P2") && !Grandstream.is_secret_param("P26015"));
    }

    #[test]
    fn config_server_from_url() {
        assert_eq!(config_server("https://prov.example.com/gs/"), Some(("2", "prov.example.com/gs".into())));
        assert_eq!(config_server("HTTP://10.0.0.1:8080"), Some(("1", "10.0.0.1:8080".into())));
        assert_eq!(config_server("tftp://10.0.0.1/"), Some(("0", "10.0.0.1".into())));
        assert_eq!(config_server("ftp://10.0.0.1/"), None);
        assert_eq!(config_server("prov.example.com"), None);
        assert_eq!(config_server("https://"), None);
    }

    #[test]
    fn interval_range() {
        assert_eq!(minutes("60"), Some(60));
        assert_eq!(minutes("5256000"), Some(5_256_000));
        assert_eq!(minutes("59"), None);
        assert_eq!(minutes("5256001"), None);
        assert_eq!(minutes("x"), None);
    }

    #[test]
    fn user_agents() {
        let (model, firmware, mac) =
            parse("Grandstream Model HW GXV3240 V1.6B SW 1.0.1.27 DevId 000b82632815").unwrap();
        assert_eq!((model.as_deref(), firmware.as_deref()), (Some("GXV3240"), Some("1.0.1.27")));
        assert_eq!(mac.map(|m| m.to_string()).as_deref(), Some("000b82632815"));
        assert!(parse("Yealink SIP-T46S 66.86.0.15 00:15:65:aa:bb:cc").is_none());
    }
}
