//! Fanvil desk phones (X and V series) and W-series DECT, in the two XML dialects Fanvil
//! firmware generations read.
//!
//! # Dialects
//!
//! * `legacy`: `<VOIP_CONFIG_FILE><version>2.0002</version>` with `*_CONFIG_MODULE` sections
//!   and one `<SIP_Line_List_Entry><ID>SIPn</ID>` per line (wazo-provd-plugins
//!   `plugins/wazo_fanvil/common/templates/base.tpl` and `common/model.tpl`; FusionPBX
//!   `resources/templates/provision/fanvil/x4/{$mac}.cfg`).
//! * `modern`: `<sysConf><Version>2.0000000000</Version>` with `<ap>`, `<phone><date>`, `<web>`
//!   and `<sip><line index="n">` (wazo `base-new.tpl`, `base-w-series.tpl`, `base-V66-67.tpl`;
//!   FusionPBX `resources/templates/provision/fanvil/x6u/{$mac}.cfg`, whose header says the
//!   template is "optimized for firmware ver 2.2.10 and newer. Older firmware has incorrect tag
//!   names").
//!
//! Which one a request gets ([`Fanvil::dialect`]): the setting `fanvil.dialect` when set (device,
//! group or global); otherwise the firmware version in the requester's User-Agent, `modern` from
//! 2.2.10 on (the FusionPBX threshold above) and `legacy` below it (a major-0 build says
//! nothing); otherwise, when no phone is asking (`sipprov render`, a campaign's hash) or the UA carries no version, the model's
//! default: `legacy` for the first-generation X2/X3/X3S/X4/X5/X6, which wazo still provisions
//! with `base.tpl`, `modern` for every current model. The sources disagree on two old models:
//! wazo serves X4 (UA sample `Fanvil X4 2.10.2.6887`) and X3S the legacy file although their
//! version passes 2.2.10; set `fanvil.dialect = legacy` for such phones.
//!
//! # Files
//!
//! * `<mac>.cfg`, lower-case MAC, the per-device file (wazo `common/common.py`
//!   `_dev_specific_filename` and its path regex `\b(?!0{12})([\da-f]{12})\.cfg$`); `<mac>.xml`
//!   is accepted too (FusionPBX names the W611W file `{$mac}.xml`).
//! * The per-model common file the phone asks for first, named by Fanvil (e.g.
//!   `F0V00X600000.cfg`, `f0X4hw1.100.cfg`, `F0V0V6500000.cfg`), as listed in wazo's
//!   `serie_x` / `serie_v` / `serie_w` `entry.py` `COMMON_FILES`. It carries global, non-secret
//!   settings only. wazo ends the legacy common file with a literal `<<END OF FILE>>` line; sipprov
//!   leaves it out so the file stays well-formed XML (no source says the phone needs it).
//!
//! # Parameters
//!
//! Names are XML paths, `<section>.<Element>`, and line rows `<lines>.<n>.<Element>`; a
//! `vendor.<path>` setting overrides or adds an element in a section the dialect's template
//! writes (e.g. `vendor.sip.line.1.DTMFMode=2`, `vendor.GLOBAL_CONFIG_MODULE.Language=en`).
//! Sources per row: wazo `base.tpl` / `base-new.tpl` / `base-w-series.tpl` (lines, SNTP, time
//! zone in quarter hours with wazo's `_TZ_INFO` names, the web account `admin` (account 1, whose
//! name the template writes) and the menu password,
//! `NotifyReboot`), FusionPBX x6u (`<ap>` `DefaultUsername` / `DefaultPassword`,
//! `FlashServerIP`) and wazo `base.tpl` (`Download_Username` / `Download_Password`,
//! `Download_Server_IP`). Transport: 0 UDP, 1 TCP, 3 TLS (wazo `_SIP_TRANSPORT`).
//!
//! `firmware.url` is `<AUTOUPDATE_CONFIG_MODULE><Auto_Image_URL>` in both dialects (wazo
//! `base.tpl` for the legacy file, `base-new.tpl` inside `<sysConf>`), on the models those
//! templates serve (`FIRMWARE_MODELS`); refused on the others. `directory.url` is the modern
//! dialect's `<phone><xmlContact index="1">` (`DIRECTORY_PARAMS`, `DIRECTORY_MODELS`): a phone
//! whose old firmware gets the legacy file goes without it, as without `sip.notify_reboot`.
//!
//! Not mapped, for lack of a source for the value's meaning: `provisioning.interval_minutes`
//! (`FlashInterval` / `Download_Interval` have no documented unit), time-zone names,
//! `line.N.label`, `sip.notify_reboot` in the legacy dialect (no element known), and the resource
//! files `ringtone.url`, `wallpaper.url`, `language.url` (reasons in [`Fanvil::validate_device`]).
//!
//! # Check-sync
//!
//! `resync` re-fetches and `check-sync;reboot=true` reboots (FusionPBX `event_notify`; see
//! [`crate::events`]). The modern `<sip><NotifyReboot>` switch is written only when
//! `sip.notify_reboot` is set: wazo writes 0 and FusionPBX 1, and no source documents what it
//! changes.

use sipprov_model::{LineField, Mac, Settings};

use crate::directory::{Contact, DirectoryFile, XmlWriter};
use crate::events::CheckSyncEvents;
use crate::mapping::{self, one, same, ParamDef, Source};
use crate::pnp::PnpDialect;
use crate::setting_keys::VendorKey;
use crate::ua::{self, is_numeric_version};
use crate::{FileScope, FileSpec, ModelInfo, UserAgentInfo, Vendor, VendorParam};

/// The Fanvil vendor module.
pub struct Fanvil;

/// The two dialects, as `fanvil.dialect` spells them.
pub const LEGACY: &str = "legacy";
/// See [`LEGACY`].
pub const MODERN: &str = "modern";

/// `fanvil.dialect`: which dialect a device's files use when the requester's firmware does not
/// say (`legacy` `<VOIP_CONFIG_FILE>` or `modern` `<sysConf>`).
static SETTING_KEYS: &[VendorKey] = &[VendorKey::plain("fanvil.dialect", dialect_setting)];

fn dialect_setting(value: &str) -> Result<String, String> {
    match value.to_ascii_lowercase().as_str() {
        d @ (LEGACY | MODERN) => Ok(d.to_string()),
        _ => Err("must be legacy (<VOIP_CONFIG_FILE>) or modern (<sysConf>)".into()),
    }
}

/// The first firmware version that reads `<sysConf>` (FusionPBX x6u template header).
const MODERN_FROM: [u32; 3] = [2, 2, 10];

/// A model; `family` is the dialect it gets when nothing else decides.
const fn model(
    name: &'static str,
    family: &'static str,
    aliases: &'static [&'static str],
    common: Option<&'static str>,
) -> ModelInfo {
    ModelInfo { name, family, aliases, common_file: common, max_lines: None }
}

/// Models, with the common file names from wazo `serie_x`/`serie_v`/`serie_w` `entry.py`
/// `COMMON_FILES` where it lists one. X-series: wazo `serie_x` `MODELS` and FusionPBX
/// `fanvil/x*`; V-series: wazo `serie_v` and FusionPBX `fanvil/v6*`; W-series DECT: wazo
/// `serie_w` and FusionPBX `fanvil/w611w`. No source covers a Fanvil ATA.
static MODELS: &[ModelInfo] = &[
    model("X2", LEGACY, &[], Some("f0X2hw1.100.cfg")),
    model("X3", LEGACY, &[], Some("F0V00X300000.cfg")),
    model("X3S", LEGACY, &[], Some("f0X3shw1.100.cfg")),
    model("X4", LEGACY, &[], Some("f0X4hw1.100.cfg")),
    model("X5", LEGACY, &[], Some("f0X5hw1.100.cfg")),
    model("X6", LEGACY, &[], Some("F0V00X600000.cfg")),
    model("X210", MODERN, &[], Some("F0V00X200000.cfg")),
    model("X210i", MODERN, &[], None),
    model("X3SG", MODERN, &[], Some("f0X3sghw1.100.cfg")),
    model("X3U", MODERN, &[], None),
    model("X3U-Pro", MODERN, &[], None),
    model("X4U", MODERN, &[], None),
    model("X4U-V2", MODERN, &[], None),
    model("X5S", MODERN, &[], Some("F0V00X5S0000.cfg")),
    model("X5U", MODERN, &[], None),
    model("X5U-V2", MODERN, &[], Some("F0V5UV200000.cfg")),
    model("X6U", MODERN, &[], None),
    model("X6U-Pro", MODERN, &[], None),
    model("X7", MODERN, &[], None),
    model("X7A", MODERN, &[], None),
    model("X7C", MODERN, &[], None),
    model("V62", MODERN, &[], Some("F0VV6200000.cfg")),
    model("V62-Pro", MODERN, &["V62Pro"], Some("F0V0V6210000.cfg")),
    model("V63", MODERN, &[], Some("F0V0V6300000.cfg")),
    model("V64", MODERN, &[], Some("F0V0V6400000.cfg")),
    model("V65", MODERN, &[], Some("F0V0V6500000.cfg")),
    model("V66", MODERN, &[], Some("F0V0V6600000.cfg")),
    model("V66-Pro", MODERN, &["V66Pro"], Some("F0V0V6610000.cfg")),
    model("V67", MODERN, &[], Some("F0V0V6700000.cfg")),
    model("W610W", MODERN, &[], Some("F0V610W00000.cfg")),
    model("W611W", MODERN, &[], Some("F0V611W00000.cfg")),
    model("W620W", MODERN, &[], Some("F0V620W00000.cfg")),
];

/// 0 UDP, 1 TCP, 3 TLS (wazo `common.py` `_SIP_TRANSPORT`; FusionPBX x6u).
fn transport(v: &str) -> Option<String> {
    Some(
        match v {
            "tcp" => "1",
            "tls" => "3",
            _ => "0",
        }
        .into(),
    )
}

/// Quarter hours east of UTC, wazo's `_TZ_INFO` value (`UTC+1` → 4); names give `None`.
fn quarter_hours(zone: &str) -> Option<String> {
    let minutes = mapping::fixed_offset_minutes(zone)?;
    (minutes % 15 == 0).then(|| (minutes / 15).to_string())
}

/// wazo's `_TZ_INFO` names for whole hours: `UCT`, `UTC+1`, `UTC-05`.
fn zone_name(zone: &str) -> Option<String> {
    let minutes = mapping::fixed_offset_minutes(zone)?;
    match minutes {
        0 => Some("UCT".into()),
        m if m % 60 != 0 => None,
        m if m > 0 => Some(format!("UTC+{}", m / 60)),
        m => Some(format!("UTC-{:02}", -m / 60)),
    }
}

fn flag(v: &str) -> Option<String> {
    Some(if v == "1" { "1" } else { "0" }.into())
}

/// `<sysConf>` rows (sources in the module doc).
static MODERN_PARAMS: &[ParamDef] = &[
    ParamDef::device(Source::Key("http.username"), "ap.DefaultUsername", same).group("ap"),
    ParamDef::device(Source::Key("http.password"), "ap.DefaultPassword", same).group("ap"),
    ParamDef::global(Source::Key("provisioning.url"), "ap.FlashServerIP", same).group("ap"),
    ParamDef::global(Source::Key("time.ntp_server"), "phone.date.EnableSNTP", one).group("phone.date"),
    ParamDef::global(Source::Key("time.ntp_server"), "phone.date.SNTPServer", same).group("phone.date"),
    ParamDef::global(Source::Key("time.zone"), "phone.date.TimeZone", quarter_hours).group("phone.date"),
    ParamDef::global(Source::Key("time.zone"), "phone.date.TimeZoneName", zone_name).group("phone.date"),
    ParamDef::device(Source::Key("admin.password"), "phone.MenuPassword", same).group("phone"),
    ParamDef::device(Source::Key("admin.password"), "web.account.1.Password", same).group("web.account.1"),
    ParamDef::global(Source::Key("sip.notify_reboot"), "sip.NotifyReboot", flag).group("sip"),
    ParamDef::device(Source::Line(LineField::Username), "sip.line.{n}.PhoneNumber", same).group("sip.line"),
    ParamDef::device(Source::Line(LineField::DisplayName), "sip.line.{n}.DisplayName", same).group("sip.line"),
    ParamDef::device(Source::Line(LineField::Registrar), "sip.line.{n}.RegisterAddr", same).group("sip.line"),
    ParamDef::device(Source::Line(LineField::Port), "sip.line.{n}.RegisterPort", same).group("sip.line"),
    ParamDef::device(Source::Line(LineField::AuthUsername), "sip.line.{n}.RegisterUser", same).group("sip.line"),
    ParamDef::device(Source::Line(LineField::Password), "sip.line.{n}.RegisterPswd", same).group("sip.line"),
    ParamDef::device(Source::LineAlways, "sip.line.{n}.EnableReg", one).group("sip.line"),
    ParamDef::device(Source::Line(LineField::Transport), "sip.line.{n}.Transport", transport).group("sip.line"),
];

/// `<VOIP_CONFIG_FILE>` rows (sources in the module doc).
static LEGACY_PARAMS: &[ParamDef] = &[
    ParamDef::device(Source::Key("http.username"), "AUTOUPDATE_CONFIG_MODULE.Download_Username", same)
        .group("AUTOUPDATE_CONFIG_MODULE"),
    ParamDef::device(Source::Key("http.password"), "AUTOUPDATE_CONFIG_MODULE.Download_Password", same)
        .group("AUTOUPDATE_CONFIG_MODULE"),
    ParamDef::global(Source::Key("provisioning.url"), "AUTOUPDATE_CONFIG_MODULE.Download_Server_IP", same)
        .group("AUTOUPDATE_CONFIG_MODULE"),
    ParamDef::global(Source::Key("time.ntp_server"), "GLOBAL_CONFIG_MODULE.Enable_SNTP", one)
        .group("GLOBAL_CONFIG_MODULE"),
    ParamDef::global(Source::Key("time.ntp_server"), "GLOBAL_CONFIG_MODULE.SNTP_Server", same)
        .group("GLOBAL_CONFIG_MODULE"),
    ParamDef::global(Source::Key("time.zone"), "GLOBAL_CONFIG_MODULE.Time_Zone", quarter_hours)
        .group("GLOBAL_CONFIG_MODULE"),
    ParamDef::global(Source::Key("time.zone"), "GLOBAL_CONFIG_MODULE.Time_Zone_Name", zone_name)
        .group("GLOBAL_CONFIG_MODULE"),
    ParamDef::device(Source::Key("admin.password"), "MMI_Account.Account1.Password", same)
        .group("MMI_Account.Account1"),
    ParamDef::device(Source::Key("admin.password"), "PHONE_CONFIG_MODULE.Menu_Password", same)
        .group("PHONE_CONFIG_MODULE"),
    ParamDef::device(Source::Line(LineField::Username), "SIP.{n}.Phone_Number", same).group("SIP"),
    ParamDef::device(Source::Line(LineField::DisplayName), "SIP.{n}.Display_Name", same).group("SIP"),
    ParamDef::device(Source::Line(LineField::Registrar), "SIP.{n}.Register_Addr", same).group("SIP"),
    ParamDef::device(Source::Line(LineField::Port), "SIP.{n}.Register_Port", same).group("SIP"),
    ParamDef::device(Source::Line(LineField::AuthUsername), "SIP.{n}.Register_User", same).group("SIP"),
    ParamDef::device(Source::Line(LineField::Password), "SIP.{n}.Register_Pswd", same).group("SIP"),
    ParamDef::device(Source::LineAlways, "SIP.{n}.Enable_Reg", one).group("SIP"),
    ParamDef::device(Source::Line(LineField::Transport), "SIP.{n}.Transport", transport).group("SIP"),
];

/// The sections each dialect's template writes; a raw override must name one of them.
const MODERN_SECTIONS: &[&str] = &[
    "AUTOUPDATE_CONFIG_MODULE",
    "ap",
    "phone",
    "phone.date",
    "phone.xmlContact.1",
    "web",
    "web.account.1",
    "sip",
    "sip.line",
];

/// The firmware image's URL, in both dialects: wazo `common/templates/base.tpl` writes
/// `<AUTOUPDATE_CONFIG_MODULE><Auto_Image_URL>` in the legacy file and `base-new.tpl` the same
/// section inside `<sysConf>`. For [`FIRMWARE_MODELS`] only.
static FIRMWARE_PARAMS: &[ParamDef] =
    &[ParamDef::global(Source::Key("firmware.url"), "AUTOUPDATE_CONFIG_MODULE.Auto_Image_URL", same)
        .group("AUTOUPDATE_CONFIG_MODULE")];

/// The models whose wazo template writes `<Auto_Image_URL>`: those that include `base.tpl`
/// (`X2.tpl` … `X6.tpl`, `X3S.tpl`, `X3SG.tpl`, `X5S.tpl`) and the X-series that extend
/// `base-new.tpl` (`X210.tpl`, `X4U.tpl`, …). wazo's V- and W-series templates
/// (`base-V-series.tpl`, `base-V66-67.tpl`, `base-w-series.tpl`) write only `<fwCheck>` with
/// `UpgradeServer1`, a server directory whose file naming no source gives, and `X7C.tpl` neither.
pub const FIRMWARE_MODELS: &[&str] = &[
    "X2", "X3", "X3S", "X3SG", "X4", "X5", "X5S", "X6", "X210", "X210i", "X4U", "X4U-V2", "X5U", "X5U-V2", "X6U",
    "X6U-Pro", "X7",
];

/// The remote phone book of the modern dialect: `<phone><xmlContact index="1">` with `Name`,
/// `Addr` (the directory's URL), `Sipline` and `BindLine` -1 and `PhonebookType` 0, as wazo's
/// `base-new.tpl`, `base-V-series.tpl`, `base-V66-67.tpl` and `base-w-series.tpl` write it (empty
/// `UserName`/`PassWd` left out). For [`DIRECTORY_MODELS`]; a legacy file has no such element
/// and leaves it out, as it does `sip.notify_reboot`.
static DIRECTORY_PARAMS: &[ParamDef] = &[
    ParamDef::global(Source::Key("directory.url"), "phone.xmlContact.1.Name", directory_name)
        .group("phone.xmlContact.1"),
    ParamDef::global(Source::Key("directory.url"), "phone.xmlContact.1.Addr", same).group("phone.xmlContact.1"),
    ParamDef::global(Source::Key("directory.url"), "phone.xmlContact.1.Sipline", minus_one).group("phone.xmlContact.1"),
    ParamDef::global(Source::Key("directory.url"), "phone.xmlContact.1.BindLine", minus_one)
        .group("phone.xmlContact.1"),
    ParamDef::global(Source::Key("directory.url"), "phone.xmlContact.1.PhonebookType", zero)
        .group("phone.xmlContact.1"),
];

/// The models whose wazo template extends one of the templates `DIRECTORY_PARAMS` cites.
pub const DIRECTORY_MODELS: &[&str] = &[
    "X210", "X210i", "X4U", "X4U-V2", "X5U", "X5U-V2", "X6U", "X6U-Pro", "X7", "V62", "V62-Pro", "V63", "V64", "V65",
    "V66", "V66-Pro", "V67", "W610W", "W611W", "W620W",
];

fn directory_name(_: &str) -> Option<String> {
    Some("Directory".into())
}

fn minus_one(_: &str) -> Option<String> {
    Some("-1".into())
}

fn zero(_: &str) -> Option<String> {
    Some("0".into())
}
const LEGACY_SECTIONS: &[&str] = &[
    "AUTOUPDATE_CONFIG_MODULE",
    "GLOBAL_CONFIG_MODULE",
    "MMI_CONFIG_MODULE",
    "MMI_Account.Account1",
    "SIP_CONFIG_MODULE",
    "SIP",
    "PHONE_CONFIG_MODULE",
];

/// Fanvil parameters holding secrets: line, proxy, provisioning and web passwords and the
/// config encryption keys, in both dialects and both as bare element names and as the paths
/// [`Vendor::parameters`] uses (wazo `base.tpl` / `base-new.tpl`; FusionPBX x6u).
pub const SECRET_PARAMS: &[&str] = &[
    "Register_Pswd",
    "RegisterPswd",
    "Proxy_Pswd",
    "ProxyPswd",
    "DefaultPassword",
    "Download_Password",
    "Config_File_Key",
    "Common_Cfg_File_Key",
    "DeviceCfgFileKey",
    "CommonCfgFileKey",
    "sip.line.{n}.RegisterPswd",
    "sip.line.{n}.ProxyPswd",
    "SIP.{n}.Register_Pswd",
    "SIP.{n}.Proxy_Pswd",
    "ap.DefaultPassword",
    "ap.DeviceCfgFileKey",
    "ap.CommonCfgFileKey",
    "AUTOUPDATE_CONFIG_MODULE.Download_Password",
    "AUTOUPDATE_CONFIG_MODULE.Config_File_Key",
    "AUTOUPDATE_CONFIG_MODULE.Common_Cfg_File_Key",
    "web.account.{n}.Password",
    "MMI_Account.Account{n}.Password",
    "phone.MenuPassword",
    "PHONE_CONFIG_MODULE.Menu_Password",
];

/// The dialect a firmware version reads; `None` when the text is not a dotted version or is a
/// major-0 build (wazo's sample `Fanvil X6U Pro 0.0.10` is a current model), which says nothing.
pub fn dialect_of_firmware(firmware: &str) -> Option<&'static str> {
    let parts: Vec<u32> = firmware.trim().split('.').map(|p| p.parse().ok()).collect::<Option<_>>()?;
    if parts.first().is_none_or(|major| *major == 0) {
        return None;
    }
    let mut key = [0u32; 3];
    for (slot, part) in key.iter_mut().zip(&parts) {
        *slot = *part;
    }
    Some(if key >= MODERN_FROM { MODERN } else { LEGACY })
}

/// `Fanvil X6U Pro 0.0.10 0c383e2cd782`: the model may contain a space; the MAC is last
/// (wazo `common.py` samples; FusionPBX's `Fanvil X5U-V2 2.12.1 0c3800000000)` has a stray `)`).
fn parse(ua: &str) -> Option<(Option<String>, Option<String>, Option<Mac>)> {
    let t: Vec<&str> = ua.trim_end_matches(')').split_whitespace().collect();
    if t.first() != Some(&"Fanvil") || t.len() < 3 {
        return None;
    }
    let mac = ua::plain_mac(t[t.len() - 1]);
    let end = if mac.is_some() { t.len() - 1 } else { t.len() };
    let (firmware, model_end) = match t.get(end - 1) {
        Some(v) if end > 2 && is_numeric_version(v) => (Some(v.to_string()), end - 1),
        _ => (None, end),
    };
    let model = t[1..model_end].join(" ");
    Some((Some(model).filter(|m| !m.is_empty()), firmware, mac))
}

/// Raw names must be XML element paths: letters, digits, `_` and `.`.
fn is_element_path(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

/// The section of an added raw parameter and its line number, when it belongs to one the
/// dialect's template writes: `sip.line.2.DTMFMode` → (`sip.line`, 2).
fn placement(name: &str, sections: &[&'static str], lines: &'static str) -> Option<(&'static str, Option<u32>)> {
    if let Some(rest) = name.strip_prefix(lines).and_then(|r| r.strip_prefix('.')) {
        let (n, element) = rest.split_once('.')?;
        let n: u32 = n.parse().ok().filter(|n| *n >= 1)?;
        return (!element.is_empty() && !element.contains('.')).then_some((lines, Some(n)));
    }
    let (section, element) = name.rsplit_once('.')?;
    let section = sections.iter().find(|s| s.eq_ignore_ascii_case(section))?;
    (!element.is_empty() && *section != lines).then_some((section, None))
}

/// The default templates, compiled in (an admin overrides them by name, see [`crate::render`]).
static TEMPLATES: &[(&str, &str)] = &[
    ("fanvil/config.xml.j2", include_str!("../templates/fanvil/config.xml.j2")),
    ("fanvil/legacy.xml.j2", include_str!("../templates/fanvil/legacy.xml.j2")),
    ("fanvil/modern.xml.j2", include_str!("../templates/fanvil/modern.xml.j2")),
];

impl Vendor for Fanvil {
    /// Fanvil's remote phonebook: `<FanvilIPPhoneDirectory>` with one `<DirectoryEntry>` per
    /// contact holding `<Name>`, `<Telephone>` (office), `<Mobile>`, `<Other>`, `<Ring>` and
    /// `<Group>` (fpbx `resources/templates/provision/fanvil/w611w/directory.xml`).
    fn directory(&self, contacts: &[Contact]) -> Option<DirectoryFile> {
        Some(fanvil_directory(contacts))
    }

    fn id(&self) -> &'static str {
        "fanvil"
    }

    fn check_sync_events(&self) -> CheckSyncEvents {
        CheckSyncEvents { resync: "resync", ..CheckSyncEvents::check_sync("FusionPBX event_notify") }
    }

    fn pnp_dialect(&self) -> PnpDialect {
        // Not documented; treated like Yealink, a base directory.
        PnpDialect::DIRECTORY
    }

    fn templates(&self) -> &'static [(&'static str, &'static str)] {
        TEMPLATES
    }

    fn display_name(&self) -> &'static str {
        "Fanvil"
    }

    fn models(&self) -> &'static [ModelInfo] {
        MODELS
    }

    fn model(&self, name: &str) -> Option<&'static ModelInfo> {
        let n = mapping::normalize(name);
        mapping::find_model(MODELS, n.strip_prefix("FANVIL").unwrap_or(&n))
    }

    fn secret_params(&self) -> &'static [&'static str] {
        SECRET_PARAMS
    }

    fn parse_user_agent(&self, ua: &str) -> Option<UserAgentInfo> {
        parse(ua::unquote(ua)).map(|parsed| ua::info(self, parsed))
    }

    fn device_files(&self, _model: &'static ModelInfo, mac: Mac) -> Vec<FileSpec> {
        vec![FileSpec {
            name: mac.file_name(".cfg"),
            aliases: vec![mac.file_name(".xml")],
            template: "fanvil/config.xml.j2",
            scope: FileScope::Device,
            content_type: "application/xml",
            name_pattern: None,
        }]
    }

    fn mac_in_file_name(&self, file_name: &str) -> Option<Mac> {
        ua::mac_file(file_name, &["cfg", "xml"])
    }

    fn model_file(&self, file_name: &str, ua_model: Option<&str>) -> Option<(&'static ModelInfo, FileSpec)> {
        let named = MODELS.iter().find(|m| m.common_file.is_some_and(|f| f.eq_ignore_ascii_case(file_name)))?;
        // Fanvil gives several models one file name only across generations, so the UA may
        // name the model more precisely; the name still has to be one of ours.
        let model = ua_model.and_then(|m| self.model(m)).filter(|m| m.common_file.is_some()).unwrap_or(named);
        let spec = FileSpec {
            name: named.common_file.unwrap_or(file_name).to_string(),
            aliases: Vec::new(),
            template: "fanvil/config.xml.j2",
            scope: FileScope::Model,
            content_type: "application/xml",
            name_pattern: None,
        };
        Some((model, spec))
    }

    fn setting_keys(&self) -> &'static [VendorKey] {
        SETTING_KEYS
    }

    fn dialect(&self, model: &'static ModelInfo, settings: &Settings, firmware: Option<&str>) -> Option<&'static str> {
        let chosen = match mapping::get(settings, "fanvil.dialect") {
            Some(d) if d.eq_ignore_ascii_case(LEGACY) => LEGACY,
            Some(d) if d.eq_ignore_ascii_case(MODERN) => MODERN,
            _ => firmware.and_then(dialect_of_firmware).unwrap_or(if model.family == LEGACY { LEGACY } else { MODERN }),
        };
        Some(chosen)
    }

    fn parameters(&self, model: &'static ModelInfo, settings: &Settings, scope: FileScope) -> Vec<VendorParam> {
        let legacy = self.dialect(model, settings, None) == Some(LEGACY);
        let (defs, sections, lines) =
            if legacy { (LEGACY_PARAMS, LEGACY_SECTIONS, "SIP") } else { (MODERN_PARAMS, MODERN_SECTIONS, "sip.line") };
        let resources = |out: &mut Vec<VendorParam>| {
            if FIRMWARE_MODELS.contains(&model.name) {
                out.extend(mapping::key_rows(FIRMWARE_PARAMS, settings, scope));
            }
            if !legacy && DIRECTORY_MODELS.contains(&model.name) {
                out.extend(mapping::key_rows(DIRECTORY_PARAMS, settings, scope));
            }
        };
        let mut params = mapping::build_with(defs, settings, scope, "", resources);
        // Raw overrides the table does not know were appended without a section: place them,
        // and leave out names this dialect's template has no place for (another dialect's or
        // another vendor's, inherited from a group or the global level).
        params.retain_mut(|p| {
            if !p.group.is_empty() {
                return true;
            }
            match placement(&p.name, sections, lines).filter(|_| is_element_path(&p.name)) {
                Some((group, line)) => {
                    p.group = group;
                    p.line = line;
                    scope == FileScope::Device || line.is_none()
                }
                None => false,
            }
        });
        params
    }

    fn validate_device(&self, model: &'static ModelInfo, settings: &Settings) -> Result<(), crate::Refused> {
        mapping::check_max_lines(model, settings)?;
        if !FIRMWARE_MODELS.contains(&model.name) && mapping::get(settings, "firmware.url").is_some() {
            return Err(crate::Refused(format!(
                "firmware.url cannot be provisioned on the Fanvil {}: its wazo template sets no image URL \
                 (Auto_Image_URL), at most an upgrade server directory (fwCheck UpgradeServer1)",
                model.name
            )));
        }
        if !DIRECTORY_MODELS.contains(&model.name) && mapping::get(settings, "directory.url").is_some() {
            return Err(crate::Refused(format!(
                "directory.url cannot be provisioned on the Fanvil {}: no consulted source gives this model a \
                 remote phone book (<phone><xmlContact>)",
                model.name
            )));
        }
        crate::keys::check_device(
            settings,
            "Fanvil",
            model,
            Err("no verified DSS key names for either XML dialect; set vendor.<section>.<Element>"),
        )?;
        // Nothing accepted and then dropped: what no source maps is refused on the device (see
        // the module doc); set it as `vendor.<section>.<Element>` where the operator knows it.
        mapping::refuse_unmapped(
            settings,
            "Fanvil",
            &[
                ("provisioning.interval_minutes", "no source documents the unit of FlashInterval / Download_Interval"),
                ("line.N.label", "no verified element for a line label"),
                ("ringtone.url", "no consulted source gives an element that downloads a ring tone"),
                ("wallpaper.url", "no consulted source gives an element that downloads a wallpaper"),
                ("language.url", "no consulted source gives an element that downloads a language file"),
            ],
        )?;
        mapping::refuse_zone_with_dst(settings, "the Fanvil file")?;
        Ok(mapping::check_raw_names(
            settings,
            |name| {
                is_element_path(name)
                    && (placement(name, MODERN_SECTIONS, "sip.line").is_some()
                        || placement(name, LEGACY_SECTIONS, "SIP").is_some())
            },
            "a Fanvil parameter is an XML path <section>.<Element> in a section sipprov writes (modern: \
             AUTOUPDATE_CONFIG_MODULE, ap, phone, phone.date, phone.xmlContact.1, web, sip, sip.line.N; \
             legacy: AUTOUPDATE_CONFIG_MODULE, GLOBAL_CONFIG_MODULE, MMI_CONFIG_MODULE, SIP_CONFIG_MODULE, \
             SIP.N, PHONE_CONFIG_MODULE)",
        )?)
    }
}

/// [`Vendor::directory`] for Fanvil: every number kind has its own element, empty when unset,
/// as the peer template writes them; `Ring` 0 is the default ring, `Group` none.
fn fanvil_directory(contacts: &[Contact]) -> DirectoryFile {
    let mut xml = XmlWriter::new(false);
    xml.open("FanvilIPPhoneDirectory", &[]).text("Title", "Directory");
    for c in contacts {
        xml.open("DirectoryEntry", &[])
            .text("Name", &c.name)
            .text("Telephone", c.office.as_deref().unwrap_or_default())
            .text("Mobile", c.mobile.as_deref().unwrap_or_default())
            .text("Other", c.other.as_deref().unwrap_or_default())
            .text("Ring", "0")
            .text("Group", "")
            .close();
    }
    xml.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_secret_row_is_declared() {
        for defs in [MODERN_PARAMS, LEGACY_PARAMS] {
            assert_eq!(mapping::undeclared_secret_rows(defs, |n| Fanvil.is_secret_param(n)), Vec::<String>::new());
        }
    }

    #[test]
    fn firmware_versions_pick_the_dialect() {
        assert_eq!(dialect_of_firmware("2.2.10"), Some(MODERN));
        assert_eq!(dialect_of_firmware("2.12.16.17"), Some(MODERN));
        assert_eq!(dialect_of_firmware("2.2.9"), Some(LEGACY));
        assert_eq!(dialect_of_firmware("1.12.2"), Some(LEGACY));
        assert_eq!(dialect_of_firmware("0.0.10"), None);
        assert_eq!(dialect_of_firmware("2.x"), None);
    }

    #[test]
    fn raw_names_are_placed_in_sections() {
        assert_eq!(placement("sip.line.2.DTMFMode", MODERN_SECTIONS, "sip.line"), Some(("sip.line", Some(2))));
        assert_eq!(placement("phone.date.DSTMinOffset", MODERN_SECTIONS, "sip.line"), Some(("phone.date", None)));
        assert_eq!(placement("SIP.1.DTMF_Mode", LEGACY_SECTIONS, "SIP"), Some(("SIP", Some(1))));
        assert_eq!(placement("nowhere.X", MODERN_SECTIONS, "sip.line"), None);
        assert_eq!(placement("sip.line.0.X", MODERN_SECTIONS, "sip.line"), None);
    }
}
