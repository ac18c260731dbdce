//! Cisco SPA phones and ATAs and Cisco MPP ("3PCC") phones.
//!
//! # Files
//!
//! Macros and profile rules: Cisco SPA administration guide (mirrored at
//! <https://www.easymanua.ls/cisco/spa301/manual?p=107>) and Cisco IP Phone 8800 Series
//! Multiplatform Phones administration guide
//! (<https://www.easymanua.ls/cisco/penteledata-8800-series/manual/1540324?p=94>).
//!
//! The server chooses the file names through the phone's `Profile_Rule`, whose macros the phone
//! expands: sipprov serves one `<flat-profile>` file per device, `<mac>.xml` with the lower-case
//! MAC of the `$MA` macro (wazo's per-MAC `$MA.xml`), and writes `Profile_Rule` =
//! `provisioning.url` + `$MA.xml` into it, so the phone keeps asking for that name. Requests are
//! matched ignoring case. Gigaset and Snom serve the same `<MAC>.xml` shape; the server tells
//! them apart by looking the MAC up in its inventory ([`Vendor::mac_in_file_name`]).
//!
//! Not served: the first request of a factory-fresh phone, which does not know that rule yet. A
//! SPA with only DHCP option 66 asks for `spa<PSN>.cfg` (e.g. `spa504G.cfg`) and an MPP for
//! `<PSN>.xml`; a model file carrying only `Profile_Rule` from the global settings would point it
//! at its device file, but it is left for later. Until then, set the phone's `Profile_Rule` to
//! `<provisioning.url>/$MA.xml` (web UI, DHCP option 150/66 with the full URL, or a redirect
//! service). The ATA190's `ATA<MAC>.cnf.xml` is another format and not served.
//!
//! # Settings
//!
//! `<flat-profile>` with one element per setting, named after the web-UI label with `_` for
//! spaces; per-line settings end in `_N_`. Mapped, because wazo's
//! `plugins/wazo_cisco_spa/common/templates/base.tpl` and `common/var/tftpboot/spa-phone.xml` use
//! them:
//! per line `Line_Enable_N_` (Yes), `Display_Name_N_`, `User_ID_N_`, `Use_Auth_ID_N_` (Yes) with
//! `Auth_ID_N_` (the auth user name, else the user name), `Password_N_` and `Proxy_N_` (the
//! registrar, with `:port` when the line sets a port); globally `Provision_Enable` and
//! `Resync_On_Reset` (Yes), `Resync_Periodic` (`provisioning.interval_minutes` in seconds),
//! `Resync_From_SIP` (Yes, always: without it the phone ignores sipprov's check-sync NOTIFY,
//! `Event: resync`) and `Profile_Rule`.
//!
//! Also mapped: `SIP_Transport_N_` (`UDP`, `TCP`, `TLS`: Cisco MPP administration guide,
//! "Encrypt Signaling with SIP Over TLS", `<SIP_Transport_1_>TLS</SIP_Transport_1_>`);
//! `Primary_NTP_Server` (wazo `wazo-cisco-spa/common/templates/base.tpl`); the admin password as
//! `Admin_Passwd` on SPA phones and ATAs (same wazo template) and `Admin_Password` on MPP phones
//! (Cisco MPP administration guide, "Access Control Parameters"); `time.zone` as `Time_Zone`
//! (`GMT+01:00`, the standard offset), `Daylight_Saving_Time_Enable` (`yes`/`no`) and, for a zone
//! with daylight saving time, `Daylight_Saving_Time_Rule`
//! `start=<month>/<day>/<weekday>/<time>;end=...;save=<hours>` where `day` -1 with a weekday
//! means the last such weekday of the month, a positive `day` the first such weekday on or after
//! that date, and weekdays run 1 (Monday) to 7 (Sunday) — the format wazo's
//! `wazo-cisco-spa/common/common.py` (`_format_dst_change`) writes, computed from the tz database
//! (e.g. `start=3/-1/7/2;end=10/-1/7/3;save=1` for Europe/Berlin).
//!
//! # HTTP credentials
//!
//! With `provisioning.url`, `http.username` and `http.password` set, `Profile_Rule` carries the
//! credentials as the rule's options, `[--uid <user> --pwd <password>]https://.../$MA.xml`, the
//! form FusionPBX writes for MPP phones and ATAs (`resources/templates/provision/cisco/8841/`
//! `{$mac}.xml`, `spa112/{$mac}.xml`) and Cisco's MPP administration guides name (Cisco IP Phone
//! 6800 Series Multiplatform Phones Administration Guide: the `--uid` and `--pwd` profile rule
//! options; 8800 Series guide, "Profile account setup": a user name and password in the Profile
//! Rule take precedence over the profile account). Credentials with spaces, `[` or `]` are refused, since the options could not
//! carry them. The server does not *generate* credentials for Cisco devices
//! ([`Vendor::http_credential_parameters`] stays empty): they can only ride in `Profile_Rule`,
//! which exists only where `provisioning.url` is set, and a device without it would be locked out
//! after its first fetch. Set `http.username` / `http.password` on the devices or their group.
//!
//! Firmware and resource files: `firmware.url` is `Upgrade_Rule` (the image's URL, e.g. an MPP
//! `.loads` file) with `Upgrade_Enable` `Yes`, and `directory.url` is `XML_Directory_Service_URL`
//! with `XML_Directory_Service_Name` on phones (sources at `PARAMS` and `DIRECTORY_PARAMS`).
//! An MPP phone reports its version in its User-Agent as `11.3.7` or `11.3.7_MPP_0001` while the
//! image is named `…11-3-7MPP0001-….loads`, so [`Cisco::firmware_matches`] compares the numbers.
//!
//! Refused when set on a device, for lack of a verified element: `line.N.label`, `ringtone.url`,
//! `wallpaper.url`, `language.url` (the reasons are in [`Cisco::validate_device`]'s table), and
//! `directory.url` on an ATA.
//!
//! Programmable keys ([`crate::keys`]): a line key as `Extension_N_` = the line (with
//! `Short_Name_N_` for its label), a BLF or speed dial as `Extension_N_` = `Disabled`,
//! `Short_Name_N_` and `Extended_Function_N_` = `fnc=sd+blf+cp;sub=<value>@$PROXY;nme=<label>` or
//! `fnc=sd;ext=<value>@$PROXY;nme=<label>` (wazo `wazo_cisco_spa/common/common.py` and
//! `wazo_cisco_sip/v11_1_0/common.py`, `_add_fkeys`), on the models whose key count those files
//! give (`_NB_FKEY`). Refused: park and expansion modules (no function code verified here), keys
//! on ATAs and on models with no known count.
//!
//! # Raw parameters
//!
//! `vendor.<name>=<value>` writes `<name>value</name>` and replaces a mapped element of the same
//! name (e.g. `vendor.SIP_Transport_1_=TLS`). Names must be Cisco element names
//! ([`is_element_name`]): [`Cisco::validate_device`] refuses others on a Cisco device, and ones
//! inherited from the global or group settings, meant for another vendor (an AudioCodes
//! `section/key`, a Snom `name.N`), are left out of the file.
//!
//! # Security
//!
//! Files are served in clear (profile encryption is not implemented); use HTTPS, optionally with
//! the phones' Cisco-signed client certificates.

use sipprov_model::tz::Switch;
use sipprov_model::{KeyType, LineField, Mac, Settings};

use crate::directory::{self, Contact, DirectoryFile};
use crate::events::CheckSyncEvents;
use crate::mapping::{self, same, ParamDef, Source};
use crate::pnp::PnpDialect;
use crate::shape::OneXmlFile;
use crate::ua;
use crate::{FileScope, FileSpec, ModelInfo, UserAgentInfo, Vendor, VendorParam};

/// The Cisco vendor module.
pub struct Cisco;

/// No source consulted gives line counts, hence `max_lines: None`.
const fn model(name: &'static str, family: &'static str) -> ModelInfo {
    ModelInfo { name, family, aliases: &[], common_file: None, max_lines: None }
}

/// Models whose `<flat-profile>` uses the element names this module writes:
/// * SPA phones: wazo-provd-plugins `plugins/wazo_cisco_spa/v7_5_5/entry.py` (`PSN`: SPA301,
///   303, 501G, 502G, 504G, 508G, 509G, 512G, 514G, 525G, 525G2), one `common/templates/base.tpl`;
/// * SPA112/SPA122 ATAs: wazo `spa100_v1_3_5p/entry.py` and FusionPBX
///   `resources/templates/provision/cisco/spa112/`, `spa122/`;
/// * MPP 88xx: FusionPBX `resources/templates/provision/cisco/<model>/{$mac}.xml` for the 8811,
///   8832, 8841, 8845, 8851, 8861 and 8865 write `Line_Enable_1_`, `User_ID_1_`, `Proxy_1_`,
///   `SIP_Transport_1_`, `Profile_Rule`, `Resync_From_SIP`, `Admin_Password`...;
/// * MPP 68xx: the 6851 (Cisco IP Phone 6800 Series Multiplatform Phones administration guide,
///   <https://www.easymanua.ls/cisco/ip-phone-6851/manual?p=182>) and the 6821, 6841, 6861 and
///   6871, which the same guide covers.
///
/// Left out: the 78xx MPP phones (no source consulted here lists their profile), the ATA191/192
/// (FusionPBX `spa191/`, `spa192/` write no admin password element, so which one they read is
/// unconfirmed), the IP DECT 6800 series (no source consulted here describes its files) and the
/// ATA190 (`ATA<MAC>.cnf.xml`, module doc).
static MODELS: &[ModelInfo] = &[
    model("SPA301", "spa"),
    model("SPA303", "spa"),
    model("SPA501G", "spa"),
    model("SPA502G", "spa"),
    model("SPA504G", "spa"),
    model("SPA508G", "spa"),
    model("SPA509G", "spa"),
    model("SPA512G", "spa"),
    model("SPA514G", "spa"),
    model("SPA525G", "spa"),
    model("SPA525G2", "spa"),
    model("SPA112", "ata"),
    model("SPA122", "ata"),
    ModelInfo { aliases: &["8811"], ..model("CP-8811-3PCC", "mpp") },
    ModelInfo { aliases: &["8832"], ..model("CP-8832-3PCC", "mpp") },
    ModelInfo { aliases: &["8841"], ..model("CP-8841-3PCC", "mpp") },
    ModelInfo { aliases: &["8845"], ..model("CP-8845-3PCC", "mpp") },
    ModelInfo { aliases: &["8851"], ..model("CP-8851-3PCC", "mpp") },
    ModelInfo { aliases: &["8861"], ..model("CP-8861-3PCC", "mpp") },
    ModelInfo { aliases: &["8865"], ..model("CP-8865-3PCC", "mpp") },
    ModelInfo { aliases: &["6821"], ..model("CP-6821-3PCC", "mpp") },
    ModelInfo { aliases: &["6841"], ..model("CP-6841-3PCC", "mpp") },
    ModelInfo { aliases: &["6851"], ..model("CP-6851-3PCC", "mpp") },
    ModelInfo { aliases: &["6861"], ..model("CP-6861-3PCC", "mpp") },
    ModelInfo { aliases: &["6871"], ..model("CP-6871-3PCC", "mpp") },
];

fn yes(_: &str) -> Option<String> {
    Some("Yes".into())
}

/// `provisioning.interval_minutes` is validated as a whole number of minutes.
fn seconds(minutes: &str) -> Option<String> {
    minutes.trim().parse::<u64>().ok().map(|m| (m * 60).to_string())
}

/// `Profile_Rule`: the provisioning URL joined with `$MA.xml`, which the phone expands to its
/// lower-case MAC (Cisco's `$MA` macro), e.g. `https://prov.example.com/cisco/$MA.xml`.
fn profile_rule(url: &str) -> Option<String> {
    let url = url.trim();
    (!url.is_empty()).then(|| format!("{}/$MA.xml", url.trim_end_matches('/')))
}

/// The HTTP credentials as `Profile_Rule` options, `[--uid <user> --pwd <password>]` (see the
/// module doc, "HTTP credentials"); `None` unless both are set.
fn profile_credentials(settings: &Settings) -> Option<String> {
    let user = mapping::get(settings, "http.username").filter(|v| !v.is_empty())?;
    let password = mapping::get(settings, "http.password").filter(|v| !v.is_empty())?;
    Some(format!("[--uid {user} --pwd {password}]"))
}

/// Puts the HTTP credentials in front of the `Profile_Rule` URL, unless `vendor.Profile_Rule`
/// replaces the rule.
fn add_profile_credentials(params: &mut [VendorParam], settings: &Settings) {
    let Some(options) = profile_credentials(settings) else { return };
    if mapping::overridden(settings, "Profile_Rule") || credential_problem(settings).is_some() {
        return;
    }
    if let Some(rule) = params.iter_mut().find(|p| p.name == "Profile_Rule") {
        rule.value = format!("{options}{}", rule.value);
    }
}

/// A credential the `[--uid ... --pwd ...]` options can carry: the options are separated by
/// spaces and end at `]`.
fn credential_problem(settings: &Settings) -> Option<&'static str> {
    mapping::get(settings, "provisioning.url")?;
    ["http.username", "http.password"].into_iter().find(|key| {
        mapping::get(settings, key).is_some_and(|v| v.chars().any(|c| c.is_whitespace() || matches!(c, '[' | ']')))
    })
}

/// Names from wazo `plugins/wazo_cisco_spa/common/templates/base.tpl`; `Proxy_N_` is added
/// by [`Cisco::parameters`], since it combines two line fields.
static PARAMS: &[ParamDef] = &[
    ParamDef::device(Source::Always, "Provision_Enable", yes),
    ParamDef::device(Source::Always, "Resync_On_Reset", yes),
    ParamDef::device(Source::Key("provisioning.interval_minutes"), "Resync_Periodic", seconds),
    // Lets the proxy trigger a resync with a NOTIFY carrying `Event: resync` (Cisco 6800 Series
    // guide p.182): without it
    // the phone ignores sipprov's check-sync.
    ParamDef::device(Source::Always, "Resync_From_SIP", yes),
    ParamDef::device(Source::Key("provisioning.url"), "Profile_Rule", profile_rule),
    ParamDef::device(Source::Key("time.ntp_server"), "Primary_NTP_Server", same),
    // The firmware image's URL: wazo `wazo_cisco_sip/v12_0_1/templates/8811.tpl` writes
    // `<Upgrade_Rule>{server}/sip88xx.12-0-1MPP0001-245.loads</Upgrade_Rule>`, its
    // `wazo_cisco_spa/common/templates/base.tpl` the same element for SPA phones and ATAs, and
    // fpbx `cisco/<model>/{$mac}.xml` (8811 … 8865, spa112, spa122, spa3xx/5xx) writes
    // `Upgrade_Enable` `Yes` next to it.
    ParamDef::device(Source::Key("firmware.url"), "Upgrade_Enable", yes),
    ParamDef::device(Source::Key("firmware.url"), "Upgrade_Rule", same),
    ParamDef::device(Source::Key("time.zone"), "Time_Zone", time_zone),
    ParamDef::device(Source::Key("time.zone"), "Daylight_Saving_Time_Enable", dst_enable),
    ParamDef::device(Source::Key("time.zone"), "Daylight_Saving_Time_Rule", dst_rule),
    ParamDef::device(Source::LineAlways, "Line_Enable_{n}_", yes),
    ParamDef::device(Source::Line(LineField::DisplayName), "Display_Name_{n}_", same),
    ParamDef::device(Source::Line(LineField::Username), "User_ID_{n}_", same),
    ParamDef::device(Source::Line(LineField::AuthUsername), "Use_Auth_ID_{n}_", yes),
    ParamDef::device(Source::Line(LineField::AuthUsername), "Auth_ID_{n}_", same),
    ParamDef::device(Source::Line(LineField::Password), "Password_{n}_", same),
    ParamDef::device(Source::Line(LineField::Transport), "SIP_Transport_{n}_", upper),
];

/// The remote directory (phones only: an ATA has no display): wazo
/// `wazo_cisco_spa/common/templates/base.tpl` and `wazo_cisco_sip/v11_3_1/templates/base.tpl`
/// write `XML_Directory_Service_Name` and `XML_Directory_Service_URL`, which the phone fetches
/// when the user opens the directory (a `CiscoIPPhoneDirectory` object).
static DIRECTORY_PARAMS: &[ParamDef] = &[
    ParamDef::device(Source::Key("directory.url"), "XML_Directory_Service_Name", directory_name),
    ParamDef::device(Source::Key("directory.url"), "XML_Directory_Service_URL", same),
];

/// The name the phone shows for the directory.
fn directory_name(_: &str) -> Option<String> {
    Some("Directory".into())
}

/// `UDP`, `TCP`, `TLS`.
fn upper(v: &str) -> Option<String> {
    Some(v.to_ascii_uppercase())
}

/// `Time_Zone`: the standard offset as `GMT+01:00` (wazo `_format_tzinfo`).
fn time_zone(zone: &str) -> Option<String> {
    let m = mapping::zone_rules(zone)?.std_offset_minutes();
    Some(format!("GMT{}{:02}:{:02}", if m < 0 { '-' } else { '+' }, m.abs() / 60, m.abs() % 60))
}

fn dst_enable(zone: &str) -> Option<String> {
    Some(if mapping::zone_rules(zone)?.dst.is_some() { "yes" } else { "no" }.into())
}

/// `Daylight_Saving_Time_Rule`, e.g. `start=3/-1/7/2;end=10/-1/7/3;save=1` (see the module doc).
fn dst_rule(zone: &str) -> Option<String> {
    let rules = mapping::zone_rules(zone)?;
    let dst = rules.dst?;
    let switch = |sw: Switch| {
        let day = if sw.week == 5 { -1 } else { (i32::from(sw.week) - 1) * 7 + 1 };
        format!("{}/{day}/{}/{}", sw.month, sw.weekday_from_monday1(), hms(sw.time_seconds))
    };
    let save = hms(dst.offset_seconds - rules.std_offset_seconds);
    Some(format!("start={};end={};save={save}", switch(dst.start), switch(dst.end)))
}

/// Whole hours as `2`, otherwise `h:m:s` (wazo writes `h:m:s`; Cisco's examples whole hours).
fn hms(seconds: i32) -> String {
    let sign = if seconds < 0 { "-" } else { "" };
    let a = seconds.abs();
    match a % 3600 {
        0 => format!("{sign}{}", a / 3600),
        _ => format!("{sign}{}:{}:{}", a / 3600, a % 3600 / 60, a % 60),
    }
}

/// The admin web password element: `Admin_Passwd` on SPA phones and ATAs, `Admin_Password` on
/// MPP phones (see the module doc).
fn admin_password_name(model: &ModelInfo) -> &'static str {
    if model.family == "mpp" {
        "Admin_Password"
    } else {
        "Admin_Passwd"
    }
}

/// True for a Cisco element name: web-UI labels with `_` for spaces, so an ASCII letter or `_`,
/// then letters, digits and `_`.
///
/// ```
/// use sipprov_vendors::cisco::is_element_name;
/// assert!(is_element_name("Line_Enable_1_") && is_element_name("Upgrade_Rule"));
/// assert!(!is_element_name("1abc") && !is_element_name("a<b") && !is_element_name("fkey.3"));
/// assert!(!is_element_name("voip/line") && !is_element_name(""));
/// ```
pub fn is_element_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `Proxy_N_`: the registrar, with `:port` when the line sets a port (`pbx.example.com:5060`).
fn proxy(settings: &Settings, n: u32) -> Option<String> {
    let registrar = mapping::line_value(settings, n, LineField::Registrar)?;
    Some(match mapping::line_value(settings, n, LineField::Port) {
        Some(port) => format!("{registrar}:{port}"),
        None => registrar,
    })
}

type Parsed = (Option<String>, Option<String>, Option<Mac>);

/// SPA `Cisco/SPA508G-7.4.4 (0002FDFF2103)(CBT141400UK)` (MAC, then serial; MAC optional),
/// Linksys `Linksys/SPA-942-6.1.5(a) (88019FA42805)` (serial only), MPP
/// `Cisco-CP-8841-3PCC/11.0 (00562b043615)` (called the serial, but MAC-shaped: Cisco OUI). SPA
/// and Linksys samples from wazo `plugins/wazo_cisco_spa/common/common.py`; MPP from the Cisco
/// 8800 Series guide (<https://manualshive.com/en/manual/cisco/8800-series/63905?page=56>).
fn parse(ua: &str) -> Option<Parsed> {
    let some = |s: &str| Some(s.to_string()).filter(|s| !s.is_empty());
    let (head, tail) = ua.split_once(' ').unwrap_or((ua, ""));
    let first_group = || tail.trim().strip_prefix('(').and_then(|s| s.split_once(')')).map(|(g, _)| g);
    if let Some(product) = head.strip_prefix("Cisco/") {
        let (model, version) = product.split_once('-')?;
        let groups = tail.matches('(').count();
        let mac = if groups >= 2 { first_group().and_then(ua::plain_mac) } else { None };
        return Some((some(model), some(version), mac));
    }
    if let Some(product) = head.strip_prefix("Linksys/") {
        let (model, version) = product.rsplit_once('-')?;
        return Some((some(model), some(version), None));
    }
    let (model, version) = head.strip_prefix("Cisco-")?.split_once('/')?;
    Some((some(model), some(version), first_group().and_then(ua::plain_mac)))
}

/// Cisco SPA/MPP elements holding secrets, from wazo `wazo-cisco-spa/common/templates/base.tpl`:
/// the line password `Password_N_` and the admin and user web passwords `Admin_Passwd`,
/// `User_Password`, `Web_Login_Admin_Password`, `Web_Login_Guest_Password`.
/// `Admin_Password`: the MPP admin password (Cisco MPP administration guide, "Access Control").
pub const SECRET_PARAMS: &[&str] = &[
    "Password_{n}_",
    "Admin_Passwd",
    "Admin_Password",
    "User_Password",
    "Web_Login_Admin_Password",
    "Web_Login_Guest_Password",
];

/// The default templates, compiled in (an admin overrides them by name, see [`crate::render`]).
static TEMPLATES: &[(&str, &str)] =
    &[("cisco/flat-profile.xml.j2", include_str!("../templates/cisco/flat-profile.xml.j2"))];

/// One `<mac>.xml` flat profile per device, raw names that are element names.
static SHAPE: OneXmlFile = OneXmlFile {
    vendor: "Cisco",
    check_lines: mapping::check_max_lines,
    template: "cisco/flat-profile.xml.j2",
    is_raw_name: is_element_name,
    raw_name_rule: "a Cisco setting name is a web-UI label with '_' for spaces: a letter or '_', \
                    then letters, digits and '_' (e.g. vendor.SIP_Transport_1_)",
    unmapped: &[
        ("line.N.label", "no verified element for a line key label; use vendor.<element>"),
        (
            "ringtone.url",
            "no consulted source gives an element that downloads a ring tone (Ring<n>_ take the phone's own tones)",
        ),
        (
            "wallpaper.url",
            "Picture_Download_URL needs a Background_Picture_Type whose value for a downloaded picture no consulted \
             source gives",
        ),
        (
            "language.url",
            "the phone takes a language by name (Language_Selection); no consulted source gives an element that \
             downloads a language file",
        ),
    ],
};

impl Vendor for Cisco {
    /// Cisco's XML service directory: `<CiscoIPPhoneDirectory>` with one `<DirectoryEntry>`
    /// (`<Name>`, `<Telephone>`) per number (fpbx
    /// `resources/templates/provision/cisco/spa504g/directory.xml`; Cisco's "IP Phone Services
    /// Application Development Notes", CiscoIPPhoneDirectory). Those notes cap one object at 32
    /// entries on older phones: the whole directory is sent, and such a phone shows the first 32.
    fn directory(&self, contacts: &[Contact]) -> Option<DirectoryFile> {
        Some(directory::name_telephone("CiscoIPPhoneDirectory", Some("Directory"), contacts, true))
    }

    fn id(&self) -> &'static str {
        "cisco"
    }

    fn check_sync_events(&self) -> CheckSyncEvents {
        CheckSyncEvents {
            aliases: &["cisco-spa", "cisco-mpp"],
            resync: "resync",
            reboot: "reboot",
            source: "Cisco MPP 6800 guide (Resync_From_SIP); sip-notify gem",
        }
    }

    fn pnp_dialect(&self) -> PnpDialect {
        // No documented PnP body: the base directory, no credentials in it.
        PnpDialect::DEFAULT
    }

    fn templates(&self) -> &'static [(&'static str, &'static str)] {
        TEMPLATES
    }

    fn secret_params(&self) -> &'static [&'static str] {
        SECRET_PARAMS
    }

    fn display_name(&self) -> &'static str {
        "Cisco"
    }

    fn models(&self) -> &'static [ModelInfo] {
        MODELS
    }

    fn parse_user_agent(&self, ua: &str) -> Option<UserAgentInfo> {
        parse(ua::unquote(ua)).map(|parsed| ua::info(self, parsed))
    }

    fn device_files(&self, _model: &'static ModelInfo, mac: Mac) -> Vec<FileSpec> {
        SHAPE.device_file(mac.file_name(".xml"), Vec::new())
    }

    /// `<12 hex>.xml`, any case (`$MA.xml`); never `spa<PSN>.cfg` or placeholders.
    fn mac_in_file_name(&self, file_name: &str) -> Option<Mac> {
        OneXmlFile::mac_in_file_name(file_name, "")
    }

    fn model_file(&self, _file_name: &str, _ua_model: Option<&str>) -> Option<(&'static ModelInfo, FileSpec)> {
        // `spa<PSN>.cfg` and `<PSN>.xml` are not served (see the module documentation).
        None
    }

    /// The table rows, `Proxy_N_` after each line's `Password_N_` (or last) unless a `vendor.`
    /// setting names it, and only names that are Cisco element names.
    fn parameters(&self, model: &'static ModelInfo, settings: &Settings, scope: FileScope) -> Vec<VendorParam> {
        let admin = |out: &mut Vec<VendorParam>| {
            if let Some(pw) = mapping::get(settings, "admin.password").filter(|_| scope == FileScope::Device) {
                let at = out.iter().position(|p| p.line.is_some()).unwrap_or(out.len());
                let name = admin_password_name(model).to_string();
                out.insert(at, VendorParam { name, value: pw.to_string(), line: None, group: "" });
            }
        };
        let admin_and_keys = |out: &mut Vec<VendorParam>| {
            admin(out);
            if model.family != "ata" {
                let at = out.iter().position(|p| p.line.is_some()).unwrap_or(out.len());
                out.splice(at..at, mapping::key_rows(DIRECTORY_PARAMS, settings, scope));
            }
            if let (FileScope::Device, Ok(caps)) = (scope, key_caps(model)) {
                out.extend(crate::keys::supported(settings, &caps).iter().flat_map(key_params));
            }
        };
        let mut params = mapping::build_with(PARAMS, settings, scope, "", admin_and_keys);
        if scope == FileScope::Device {
            add_profile_credentials(&mut params, settings);
            for n in settings.line_indexes() {
                let name = format!("Proxy_{n}_");
                let Some(value) = proxy(settings, n).filter(|_| !mapping::overridden(settings, &name)) else {
                    continue;
                };
                let at = params.iter().rposition(|p| p.line == Some(n)).map_or(params.len(), |i| i + 1);
                params.insert(at, VendorParam { name, value, line: Some(n), group: "" });
            }
        }
        SHAPE.own_params(params)
    }

    /// Besides the shared checks: a port needs the registrar it goes with (`Proxy_N_`).
    fn validate_device(&self, model: &'static ModelInfo, settings: &Settings) -> Result<(), crate::Refused> {
        SHAPE.validate_device(model, settings, || {
            crate::keys::check_device(settings, "Cisco", model, key_caps(model))?;
            if model.family == "ata" && mapping::get(settings, "directory.url").is_some() {
                return Err(crate::Refused(format!(
                    "directory.url cannot be provisioned on the {}: an ATA has no display to show a directory on",
                    model.name
                )));
            }
            let port_alone = |&n: &u32| {
                mapping::line_value(settings, n, LineField::Registrar).is_none()
                    && mapping::line_value(settings, n, LineField::Port).is_some()
            };
            if let Some(n) = settings.line_indexes().into_iter().find(port_alone) {
                return Err(crate::Refused(format!(
                    "line.{n}.port: Cisco files carry the port in Proxy_{n}_ with the registrar; set line.{n}.registrar too"
                )));
            }
            self.validate_merged(model, settings)
        })
    }

    /// Compares the version numbers when both sides read as Cisco versions (`version_numbers`):
    /// the User-Agent's `11.3.7` or `11.3.7_MPP_0001` (wazo `wazo_cisco_sip/v11_3_1/common.py`
    /// UA samples, `Cisco-CP-7832-3PCC/11.0.1 (00562b043615)`), an image's `11-3-7MPP0001-609`
    /// or `sip88xx.11-3-7MPP0001-609.loads`, or a package's `11.3.2-MPP-609` (wazo
    /// `v11_3_1/pkgs/pkgs.db`); otherwise as the default does.
    fn firmware_matches(&self, reported: &str, target: &str) -> bool {
        match (version_numbers(reported), version_numbers(target)) {
            (Some(a), Some(b)) => a == b,
            _ => reported.trim().eq_ignore_ascii_case(target.trim()),
        }
    }

    /// The HTTP credentials go into `Profile_Rule` options, which spaces and brackets would break.
    fn validate_merged(&self, _model: &'static ModelInfo, merged: &Settings) -> Result<(), crate::Refused> {
        crate::keys::check_merged(merged)?;
        match credential_problem(merged) {
            Some(key) => Err(crate::Refused(format!(
                "{key}: Cisco phones take their HTTP credentials as Profile_Rule options \
                 ([--uid user --pwd password]), which cannot carry spaces, '[' or ']'"
            ))),
            None => Ok(()),
        }
    }
}

/// The release numbers of a Cisco version string: `[11, 3, 7]` for `11.3.7`, `11.3.7_MPP_0001`,
/// `11-3-7MPP0001-609`, `sip88xx.11-3-7MPP0001-609.loads` or `11.3.7-MPP-609` (the build after
/// `MPP` is not part of what the User-Agent reports), `[7, 5, 5]` for `7.5.5`; `None` when the
/// text is not numbers separated by `.`, `-` or `_`, ending or followed by `MPP` (e.g. `7.5.5a`).
fn version_numbers(text: &str) -> Option<Vec<u32>> {
    let text = text.trim();
    // An image file name: `<product>.<version>.loads`; the version is the part starting with a digit.
    let text = match text.split_once('.') {
        Some((head, rest)) if head.starts_with(|c: char| c.is_ascii_alphabetic()) => {
            rest.strip_suffix(".loads").or_else(|| rest.strip_suffix(".LOADS")).unwrap_or(rest)
        }
        _ => text,
    };
    let upper = text.to_ascii_uppercase();
    let numbers = match upper.find("MPP") {
        Some(at) => upper[..at].trim_end_matches(['.', '-', '_']),
        None => upper.as_str(),
    };
    let parts: Option<Vec<u32>> =
        numbers.split(['.', '-', '_']).map(|p| p.parse().ok().filter(|_| !p.is_empty())).collect();
    parts.filter(|p| p.len() >= 2)
}

/// Line keys per model (wazo `wazo_cisco_spa/common/common.py` and
/// `wazo_cisco_sip/v12_0_7/common.py`, `_NB_FKEY`); `None` for a model no source counts.
fn line_key_count(model: &str) -> Option<u32> {
    Some(match model {
        "SPA502G" | "SPA512G" => 0,
        "SPA303" => 3,
        "SPA504G" | "SPA514G" | "CP-6851-3PCC" => 4,
        "SPA525G" | "SPA525G2" => 5,
        "SPA501G" | "SPA508G" => 8,
        "SPA509G" => 12,
        "CP-8841-3PCC" => 10,
        _ => return None,
    })
}

/// What a model's profile can carry as keys: line keys (`Extension_N_`, `Short_Name_N_`) and, on
/// the same key, a BLF or speed dial as `Extended_Function_N_` (the form wazo
/// `wazo_cisco_spa/common/common.py` and `wazo_cisco_sip/v11_1_0/common.py` write; Cisco MPP
/// administration guide, "Line Key" parameters). Call park and expansion modules are not mapped:
/// no source here gives their function codes for both families.
fn key_caps(model: &ModelInfo) -> Result<crate::keys::KeyCaps, &'static str> {
    if model.family == "ata" {
        return Err("an ATA has no keys");
    }
    let keys = line_key_count(model.name).ok_or("no source gives its line key count")?;
    Ok(crate::keys::KeyCaps {
        types: &[KeyType::Line, KeyType::Blf, KeyType::SpeedDial],
        keys: Some(keys),
        modules: 0,
        module_keys: None,
        line_on_every_type: false,
    })
}

/// A BLF or speed dial target: a bare number is completed with the key line's `$PROXY` macro,
/// which the phone expands; a value that names its host is used as it is.
fn key_target(value: &str) -> String {
    let v = value.strip_prefix("sip:").unwrap_or(value);
    if v.contains('@') {
        v.to_string()
    } else {
        format!("{v}@$PROXY")
    }
}

/// One key's elements: a line key shows its account (`Extension_N_` = the line), a BLF or speed
/// dial key is taken off the lines (`Disabled`) and given its function, `nme` being its label.
fn key_params(key: &crate::keys::ProgKey) -> Vec<VendorParam> {
    let n = key.pos.index;
    let el = |name: &str, value: String| VendorParam { name: format!("{name}_{n}_"), value, line: None, group: "" };
    let label = key.label_or_value().unwrap_or_default().to_string();
    let target = key_target(key.value.as_deref().unwrap_or_default());
    let (extension, function) = match key.kind {
        KeyType::Line => (key.line_or_first().to_string(), String::new()),
        KeyType::Blf => ("Disabled".to_string(), format!("fnc=sd+blf+cp;sub={target};nme={label}")),
        KeyType::SpeedDial => ("Disabled".to_string(), format!("fnc=sd;ext={target};nme={label}")),
        KeyType::Park => return Vec::new(),
    };
    let mut out = vec![el("Extension", extension)];
    if key.kind != KeyType::Line || key.label.is_some() {
        out.push(el("Short_Name", label));
    }
    out.push(el("Extended_Function", function));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_secret_row_is_declared() {
        assert_eq!(mapping::undeclared_secret_rows(PARAMS, |n| Cisco.is_secret_param(n)), Vec::<String>::new());
    }

    #[test]
    fn dst_rules_follow_the_tz_database() {
        assert_eq!(dst_rule("Europe/Berlin").as_deref(), Some("start=3/-1/7/2;end=10/-1/7/3;save=1"));
        assert_eq!(dst_rule("America/New_York").as_deref(), Some("start=3/8/7/2;end=11/1/7/2;save=1"));
        assert_eq!(dst_rule("Asia/Tokyo"), None);
        assert_eq!(time_zone("Asia/Kolkata").as_deref(), Some("GMT+05:30"));
        assert_eq!(time_zone("-5").as_deref(), Some("GMT-05:00"));
        assert_eq!(dst_enable("+1").as_deref(), Some("no"));
    }

    #[test]
    fn firmware_versions_match_across_spellings() {
        for (reported, target) in [
            ("11.3.7_MPP_0001", "11-3-7MPP0001-609"),
            ("11.3.7", "sip88xx.11-3-7MPP0001-609.loads"),
            ("11.3.2", "11.3.2-MPP-609"),
            ("11.0", "11.0"),
            ("7.5.5", "7-5-5"),
        ] {
            assert!(Cisco.firmware_matches(reported, target), "{reported} {target}");
        }
        for (reported, target) in [
            ("11.3.7_MPP_0001", "11-3-6MPP0001-609"),
            ("11.3.7", "11.3"),
            ("7.5.5", "7.5.5a"),
            ("11.0.1", "sip88xx.11-0-2MPP0001-1.loads"),
        ] {
            assert!(!Cisco.firmware_matches(reported, target), "{reported} {target}");
        }
        // From a real User-Agent (wazo `v11_3_1/common.py`): the parser hands out the version.
        let (_, firmware, _) = parse("Cisco-CP-7832-3PCC/11.0.1 (00562b043615)").unwrap();
        assert!(Cisco.firmware_matches(&firmware.unwrap(), "11-0-1MPP0001-16"));
    }

    #[test]
    fn profile_rules() {
        assert_eq!(
            profile_rule("https://prov.example.com/cisco/").as_deref(),
            Some("https://prov.example.com/cisco/$MA.xml")
        );
        assert_eq!(profile_rule("http://10.0.0.1:8080").as_deref(), Some("http://10.0.0.1:8080/$MA.xml"));
        assert_eq!(profile_rule(" "), None);
    }

    #[test]
    fn user_agents() {
        let (model, firmware, mac) = parse("Cisco-CP-8841-3PCC/11.0 (00562b043615)").unwrap();
        assert_eq!((model.as_deref(), firmware.as_deref()), (Some("CP-8841-3PCC"), Some("11.0")));
        assert_eq!(mac.map(|m| m.to_string()).as_deref(), Some("00562b043615"));
        assert!(parse("Cisco/SPA525G-7.4.7 (CBT141900G7)").unwrap().2.is_none());
        assert!(parse("Yealink SIP-T46S 66.86.0.15 00:15:65:aa:bb:cc").is_none());
    }
}
