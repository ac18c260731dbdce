//! Polycom / Poly phones running UC Software: VVX, Trio and Edge E/B.
//!
//! # Files
//!
//! The phone asks for its own master file `<mac>.cfg` first and, when there is none, for the
//! default master file `000000000000.cfg` (Poly UC Software administrator's guide 5.9, "Master
//! configuration file", documents.polycom.com/bundle/ucs-ag-5-9-0). A master file is an
//! `<APPLICATION>` element whose `APP_FILE_PATH` names the firmware and whose `CONFIG_FILES` lists
//! the configuration files to load, `[PHONE_MAC_ADDRESS]` expanded by the phone; a file listed
//! earlier wins over a later one. sipprov serves:
//!
//! * `000000000000.cfg` and `<mac>.cfg`: the master file, the same for every phone (no device
//!   setting in it, so it needs no credentials and does not use up a device's first-fetch window);
//! * `<mac>-device.cfg`: the device's own settings (lines, passwords, provisioning credentials);
//! * `site.cfg`: the global, non-secret settings every phone shares (the name of the site-wide
//!   template Poly ships with UC Software).
//!
//! The peers' layout is the same: wazo's master file lists `[PHONE_MAC_ADDRESS]-user.cfg,
//! common.cfg` (`plugins/wazo_polycom/v5_4_3/var/tftpboot/000000000000.cfg`).
//!
//! Programmable keys: BLF keys only, as `attendant.resourceList.N.*` (`key_caps` gives the
//! sources and why the other types are refused).
//!
//! # Settings
//!
//! Settings are attributes of one `<polycomConfig>` element. `device.*` parameters only take
//! effect with their `device.<name>.set="1"` companion and `device.set="1"`. Names, from wazo
//! `plugins/wazo_polycom/common/templates/base.tpl` and `common/common.py`, and the Poly UC
//! Software administrator's guide:
//!
//! * lines: `reg.N.displayName`, `reg.N.address`, `reg.N.label`, `reg.N.auth.userId`,
//!   `reg.N.auth.password`, `reg.N.server.1.address`, `.port`, `.transport` (`UDPOnly`,
//!   `TCPOnly`, `TLS`: wazo `_SIP_TRANSPORT`);
//! * time: `tcpIpApp.sntp.address` with `tcpIpApp.sntp.address.overrideDHCP`,
//!   `tcpIpApp.sntp.gmtOffset` in seconds with `tcpIpApp.sntp.daylightSavings.*` (wazo
//!   `common.py` time zone code; see below), and the device-level `device.sntp.serverName`;
//! * admin password: `device.auth.localAdminPassword` (wazo `base.tpl`);
//! * provisioning server: `device.prov.serverName` (host and path, no scheme),
//!   `device.prov.serverType` (`HTTP`/`HTTPS`), `device.prov.user`, `device.prov.password`
//!   (administrator's guide "device parameters"; the same attributes in operators' published
//!   `<change device.prov.user.set="1" …>` override files);
//! * polling: `prov.polling.enabled`, `prov.polling.mode` `rel`, `prov.polling.period` in seconds
//!   (administrator's guide 5.8.1, "Provisional polling of Polycom phones");
//! * check-sync: a NOTIFY with `Event: check-sync` (asterisk `pjsip_notify.conf.sample`
//!   `[polycom-check-cfg]`) makes the phone re-read its files; with
//!   `voIpProt.SIP.specialEvent.checkSync.alwaysReboot="1"` it always reboots, with `0` it reboots
//!   only when a change needs it. `sip.notify_reboot` sets it; the default is `0`, the one
//!   exception to `sip.notify_reboot`'s default of `1`: with `1` every check-sync reboots, so it
//!   is an explicit choice, and `device notify --reboot` is refused while the file says `0`.
//!
//! `time.zone` becomes the standard offset and the zone's daylight-saving rule from the tz
//! database: `tcpIpApp.sntp.daylightSavings.enable`, `fixedDayEnable = 0` and each switch's
//! `month`, `date` (the first day of the week it falls in: 1, 8, 15, 22), `dayOfWeek` (Sunday =
//! 1), `dayOfWeek.lastInMonth` and `time` (the hour), as the administrator's guide describes them;
//! a zone whose saving is not one hour, or that switches off the whole hour, is refused on a
//! device.
//!
//! Firmware and resource files: `firmware.url` is the master file's `APP_FILE_PATH`, a path on
//! the provisioning server or a URL of its own (Poly UC Software administrator's guide 5.9,
//! "Master configuration file", cited above). The master file is served to anyone, before the phone authenticates, and rendered
//! from the global settings, so only a global `firmware.url` applies: a device's own is refused
//! ([`Polycom::validate_device`]) and a group's reaches no Polycom phone. (fpbx writes
//! `device.prov.upgradeServer`, but no consulted source says the phone installs from it unasked.)
//! `wallpaper.url` is `bg.color.bm.1.name` with `bg.background.enabled` and `bg.color.selection`.
//! Refused on a device: `ringtone.url`, `language.url` and `directory.url` (the phone fetches
//! `<mac>-directory.xml` by that fixed name).
//!
//! Not mapped: firmware per part number. `vendor.<name>` settings cover anything else; a name
//! must be an XML attribute name ([`crate::snom::is_xml_name`]).
//!
//! # Uploads
//!
//! The phone PUTs back `<mac>-phone.cfg` (settings changed on the phone), `<mac>-web.cfg`
//! (changed in its web interface), `<mac>-directory.xml` (its contact directory) and the logs
//! `<mac>-app.log` and `<mac>-boot.log` (Poly community FAQ "What files does my phone download or
//! upload and why", community.poly.com t5/VoIP-SIP-Phones/…/td-p/30582).
//!
//! # User-Agent
//!
//! `FileTransport PolycomVVX-VVX_410-UA/5.9.5.0614 Type/Application` for file transfers (wazo
//! `common.py`), `PolycomVVX-VVX_410-UA/5.9.0.9373` in SIP, `PolycomRealPresenceTrio-Trio_8800-UA/…`
//! on Trio, `PolyEdge-Edge_E450-UA/8.0.0.15602` on Edge. The MAC is not in it, except for newer
//! firmware's `(SN:482567b5313f)`; the file name carries it.

use sipprov_model::tz::Switch;
use sipprov_model::{KeyType, LineField, Mac, Settings};

use crate::directory::{Contact, DirectoryFile, NumberKind, XmlWriter};
use crate::events::CheckSyncEvents;
use crate::mapping::{self, one, same, ParamDef, Source};
use crate::pnp::PnpDialect;
use crate::snom::is_xml_name;
use crate::ua;
use crate::{FileScope, FileSpec, ModelInfo, UserAgentInfo, Vendor, VendorParam};

/// Whether every check-sync reboots the phone (Poly UC Software admin guide, "checkSync").
const ALWAYS_REBOOT: &str = "voIpProt.SIP.specialEvent.checkSync.alwaysReboot";

/// The Polycom vendor module.
pub struct Polycom;

const fn model(name: &'static str, family: &'static str, aliases: &'static [&'static str]) -> ModelInfo {
    ModelInfo { name, family, aliases, common_file: None, max_lines: None }
}

/// VVX models: the wazo plugin's per-model templates (`plugins/wazo_polycom/common/templates/VVX*.tpl`);
/// Trio: the UAs above and Poly's Trio 8300/8500/8800/C60 admin guides; Edge E and B: Poly Edge E
/// series and Edge B series data sheets (poly.com), UA `PolyEdge-Edge_E450`. Not accepted: Poly's
/// Rove DECT bases and OBi ATAs, which do not run UC Software (no source consulted here covers
/// their files), and the CCX, whose files no consulted source describes either.
static MODELS: &[ModelInfo] = &[
    model("VVX101", "vvx", &["VVX 101"]),
    model("VVX150", "vvx", &["VVX 150"]),
    model("VVX201", "vvx", &["VVX 201"]),
    model("VVX250", "vvx", &["VVX 250"]),
    model("VVX300", "vvx", &["VVX 300"]),
    model("VVX301", "vvx", &["VVX 301"]),
    model("VVX310", "vvx", &["VVX 310"]),
    model("VVX311", "vvx", &["VVX 311"]),
    model("VVX350", "vvx", &["VVX 350"]),
    model("VVX400", "vvx", &["VVX 400"]),
    model("VVX401", "vvx", &["VVX 401"]),
    model("VVX410", "vvx", &["VVX 410"]),
    model("VVX411", "vvx", &["VVX 411"]),
    model("VVX450", "vvx", &["VVX 450"]),
    model("VVX500", "vvx", &["VVX 500"]),
    model("VVX501", "vvx", &["VVX 501"]),
    model("VVX600", "vvx", &["VVX 600"]),
    model("VVX601", "vvx", &["VVX 601"]),
    model("VVX1500", "vvx", &["VVX 1500"]),
    model("Trio8300", "trio", &["Trio 8300", "RealPresence Trio 8300"]),
    model("Trio8500", "trio", &["Trio 8500", "RealPresence Trio 8500"]),
    model("Trio8800", "trio", &["Trio 8800", "RealPresence Trio 8800"]),
    model("TrioC60", "trio", &["Trio C60"]),
    model("E100", "edge-e", &["Edge E100", "Edge_E100"]),
    model("E220", "edge-e", &["Edge E220", "Edge_E220"]),
    model("E300", "edge-e", &["Edge E300", "Edge_E300"]),
    model("E320", "edge-e", &["Edge E320", "Edge_E320"]),
    model("E350", "edge-e", &["Edge E350", "Edge_E350"]),
    model("E400", "edge-e", &["Edge E400", "Edge_E400"]),
    model("E450", "edge-e", &["Edge E450", "Edge_E450"]),
    model("E500", "edge-e", &["Edge E500", "Edge_E500"]),
    model("E550", "edge-e", &["Edge E550", "Edge_E550"]),
    model("B10", "edge-b", &["Edge B10", "Edge_B10"]),
    model("B20", "edge-b", &["Edge B20", "Edge_B20"]),
    model("B30", "edge-b", &["Edge B30", "Edge_B30"]),
];

/// The default master file's name: the phone's fallback when it finds no `<mac>.cfg`.
pub const DEFAULT_MASTER: &str = "000000000000.cfg";
/// The site-wide configuration file listed in the master file.
pub const SITE_FILE: &str = "site.cfg";
/// The suffix of the device's own configuration file, `<mac>-device.cfg`.
const DEVICE_SUFFIX: &str = "-device.cfg";
/// The suffixes of the files the phone uploads, `<mac><suffix>` (see the module documentation).
const UPLOAD_SUFFIXES: &[&str] = &["-phone.cfg", "-web.cfg", "-directory.xml", "-app.log", "-boot.log"];

/// `provisioning.url` without its scheme: `device.prov.serverName` takes host and path.
fn server_name(url: &str) -> Option<String> {
    let (_, rest) = url.split_once("://")?;
    Some(rest.to_string()).filter(|r| !r.is_empty())
}

/// The scheme of `provisioning.url` as `device.prov.serverType` spells it.
fn server_type(url: &str) -> Option<String> {
    let scheme = url.split_once("://")?.0.to_ascii_lowercase();
    match scheme.as_str() {
        "http" => Some("HTTP".into()),
        "https" => Some("HTTPS".into()),
        "ftp" => Some("FTP".into()),
        "tftp" => Some("TFTP".into()),
        _ => None,
    }
}

/// Relative polling every `provisioning.interval_minutes`, in seconds.
fn period(minutes: &str) -> Option<String> {
    minutes.parse::<u64>().ok().map(|m| (m * 60).to_string())
}

fn rel(_: &str) -> Option<String> {
    Some("rel".into())
}

/// `tcpIpApp.sntp.gmtOffset`: the zone's standard offset in seconds.
fn gmt_offset(zone: &str) -> Option<String> {
    mapping::zone_rules(zone).map(|r| r.std_offset_seconds.to_string())
}

/// `tcpIpApp.sntp.daylightSavings.enable`: `1` when the zone observes daylight saving time.
fn dst_enable(zone: &str) -> Option<String> {
    Some(if polycom_dst(zone)?.is_some() { "1" } else { "0" }.into())
}

/// The zone's daylight-saving switches as Polycom can express them, `Some(None)` for a zone
/// without DST, `None` for one Polycom cannot express (a saving other than one hour, which has
/// no parameter, or a switch off the whole hour; refused on a device by `validate_device`).
fn polycom_dst(zone: &str) -> Option<Option<(Switch, Switch)>> {
    let rules = mapping::zone_rules(zone)?;
    let Some(dst) = rules.dst else { return Some(None) };
    let whole_hours = |sw: &Switch| sw.time_seconds % 3600 == 0;
    let one_hour = dst.offset_seconds - rules.std_offset_seconds == 3600;
    (one_hour && whole_hours(&dst.start) && whole_hours(&dst.end)).then_some(Some((dst.start, dst.end)))
}

/// One field of the start (`stop = false`) or stop switch, written only for a zone with DST.
/// `date` is the first day of the week the switch falls in (1, 8, 15, 22), with
/// `dayOfWeek.lastInMonth = 1` for "the last"; `dayOfWeek` counts from Sunday = 1; `time` is
/// the local hour (Poly UC Software administrator's guide, `tcpIpApp.sntp.daylightSavings.*`).
fn switch_field(zone: &str, stop: bool, field: fn(&Switch) -> String) -> Option<String> {
    let (start, end) = polycom_dst(zone)??;
    Some(field(if stop { &end } else { &start }))
}

fn sw_month(sw: &Switch) -> String {
    sw.month.to_string()
}
fn sw_date(sw: &Switch) -> String {
    if sw.week == 5 { 1 } else { (u32::from(sw.week) - 1) * 7 + 1 }.to_string()
}
fn sw_day_of_week(sw: &Switch) -> String {
    (sw.weekday_from_sunday0() + 1).to_string()
}
fn sw_last_in_month(sw: &Switch) -> String {
    u8::from(sw.week == 5).to_string()
}
fn sw_hour(sw: &Switch) -> String {
    (sw.time_seconds / 3600).to_string()
}
fn dst_fixed_day(zone: &str) -> Option<String> {
    polycom_dst(zone)??;
    Some("0".into())
}
fn start_month(z: &str) -> Option<String> {
    switch_field(z, false, sw_month)
}
fn start_date(z: &str) -> Option<String> {
    switch_field(z, false, sw_date)
}
fn start_day_of_week(z: &str) -> Option<String> {
    switch_field(z, false, sw_day_of_week)
}
fn start_last_in_month(z: &str) -> Option<String> {
    switch_field(z, false, sw_last_in_month)
}
fn start_time(z: &str) -> Option<String> {
    switch_field(z, false, sw_hour)
}
fn stop_month(z: &str) -> Option<String> {
    switch_field(z, true, sw_month)
}
fn stop_date(z: &str) -> Option<String> {
    switch_field(z, true, sw_date)
}
fn stop_day_of_week(z: &str) -> Option<String> {
    switch_field(z, true, sw_day_of_week)
}
fn stop_last_in_month(z: &str) -> Option<String> {
    switch_field(z, true, sw_last_in_month)
}
fn stop_time(z: &str) -> Option<String> {
    switch_field(z, true, sw_hour)
}

fn transport(t: &str) -> Option<String> {
    match t.to_ascii_lowercase().as_str() {
        "udp" => Some("UDPOnly".into()),
        "tcp" => Some("TCPOnly".into()),
        "tls" => Some("TLS".into()),
        _ => None,
    }
}

fn bool01(v: &str) -> Option<String> {
    Some(if v == "1" { "1" } else { "0" }.into())
}

/// The parameter table (sources in the module documentation). `global` rows also go into
/// `site.cfg`; every row goes into `<mac>-device.cfg`, which the phone reads first.
/// `2,1`: the first downloaded bitmap (fpbx `polycom/5.x/{$mac}.cfg`).
fn background_selection(_: &str) -> Option<String> {
    Some("2,1".into())
}

static PARAMS: &[ParamDef] = &[
    ParamDef::device(Source::Always, "device.set", one),
    ParamDef::device(Source::Key("provisioning.url"), "device.prov.serverName.set", one),
    ParamDef::device(Source::Key("provisioning.url"), "device.prov.serverName", server_name),
    ParamDef::device(Source::Key("provisioning.url"), "device.prov.serverType.set", one),
    ParamDef::device(Source::Key("provisioning.url"), "device.prov.serverType", server_type),
    ParamDef::device(Source::Key("http.username"), "device.prov.user.set", one),
    ParamDef::device(Source::Key("http.username"), "device.prov.user", same),
    ParamDef::device(Source::Key("http.password"), "device.prov.password.set", one),
    ParamDef::device(Source::Key("http.password"), "device.prov.password", same),
    ParamDef::device(Source::Key("admin.password"), "device.auth.localAdminPassword.set", one),
    ParamDef::device(Source::Key("admin.password"), "device.auth.localAdminPassword", same),
    ParamDef::device(Source::Key("time.ntp_server"), "device.sntp.serverName.set", one),
    ParamDef::device(Source::Key("time.ntp_server"), "device.sntp.serverName", same),
    // The wallpaper (fpbx `polycom/5.x/{$mac}.cfg`, `<BG>`: `bg.background.enabled` 1,
    // `bg.color.selection` `2,1`, `bg.color.bm.1.name` the image's URL).
    ParamDef::global(Source::Key("wallpaper.url"), "bg.background.enabled", one),
    ParamDef::global(Source::Key("wallpaper.url"), "bg.color.selection", background_selection),
    ParamDef::global(Source::Key("wallpaper.url"), "bg.color.bm.1.name", same),
    ParamDef::global(Source::Key("time.ntp_server"), "tcpIpApp.sntp.address.overrideDHCP", one),
    ParamDef::global(Source::Key("time.ntp_server"), "tcpIpApp.sntp.address", same),
    ParamDef::global(Source::Key("time.zone"), "tcpIpApp.sntp.gmtOffset", gmt_offset),
    ParamDef::global(Source::Key("time.zone"), "tcpIpApp.sntp.daylightSavings.enable", dst_enable),
    ParamDef::global(Source::Key("time.zone"), "tcpIpApp.sntp.daylightSavings.fixedDayEnable", dst_fixed_day),
    ParamDef::global(Source::Key("time.zone"), "tcpIpApp.sntp.daylightSavings.start.month", start_month),
    ParamDef::global(Source::Key("time.zone"), "tcpIpApp.sntp.daylightSavings.start.date", start_date),
    ParamDef::global(Source::Key("time.zone"), "tcpIpApp.sntp.daylightSavings.start.dayOfWeek", start_day_of_week),
    ParamDef::global(
        Source::Key("time.zone"),
        "tcpIpApp.sntp.daylightSavings.start.dayOfWeek.lastInMonth",
        start_last_in_month,
    ),
    ParamDef::global(Source::Key("time.zone"), "tcpIpApp.sntp.daylightSavings.start.time", start_time),
    ParamDef::global(Source::Key("time.zone"), "tcpIpApp.sntp.daylightSavings.stop.month", stop_month),
    ParamDef::global(Source::Key("time.zone"), "tcpIpApp.sntp.daylightSavings.stop.date", stop_date),
    ParamDef::global(Source::Key("time.zone"), "tcpIpApp.sntp.daylightSavings.stop.dayOfWeek", stop_day_of_week),
    ParamDef::global(
        Source::Key("time.zone"),
        "tcpIpApp.sntp.daylightSavings.stop.dayOfWeek.lastInMonth",
        stop_last_in_month,
    ),
    ParamDef::global(Source::Key("time.zone"), "tcpIpApp.sntp.daylightSavings.stop.time", stop_time),
    ParamDef::global(Source::Key("provisioning.interval_minutes"), "prov.polling.enabled", one),
    ParamDef::global(Source::Key("provisioning.interval_minutes"), "prov.polling.mode", rel),
    ParamDef::global(Source::Key("provisioning.interval_minutes"), "prov.polling.period", period),
    ParamDef::global(Source::Key("sip.notify_reboot"), ALWAYS_REBOOT, bool01).or("0"),
    ParamDef::device(Source::Line(LineField::DisplayName), "reg.{n}.displayName", same),
    ParamDef::device(Source::Line(LineField::Username), "reg.{n}.address", same),
    ParamDef::device(Source::Line(LineField::Label), "reg.{n}.label", same),
    ParamDef::device(Source::Line(LineField::AuthUsername), "reg.{n}.auth.userId", same),
    ParamDef::device(Source::Line(LineField::Password), "reg.{n}.auth.password", same),
    ParamDef::device(Source::Line(LineField::Registrar), "reg.{n}.server.1.address", same),
    ParamDef::device(Source::Line(LineField::Port), "reg.{n}.server.1.port", same),
    ParamDef::device(Source::Line(LineField::Transport), "reg.{n}.server.1.transport", transport),
];

/// Polycom parameters holding secrets: account and provisioning passwords, the local admin and
/// user passwords, the configuration encryption key (Poly UC Software administrator's guide;
/// wazo `base.tpl`). Their `.set` companions hold only `1`, but they are fed by a secret
/// setting, and redacting a `1` costs nothing.
pub const SECRET_PARAMS: &[&str] = &[
    "reg.{n}.auth.password",
    "device.prov.password",
    "device.prov.password.set",
    "device.auth.localAdminPassword",
    "device.auth.localAdminPassword.set",
    "device.auth.localUserPassword",
    "device.sec.configEncryption.key",
];

fn some(s: &str) -> Option<String> {
    Some(s.to_string()).filter(|s| !s.is_empty())
}

/// Finds the `Poly…-<model>-UA/<version>` token anywhere in the header:
/// `FileTransport PolycomVVX-VVX_410-UA/5.9.5.0614 Type/Application`,
/// `Polycom/5.4.3.2007 PolycomRealPresenceTrio-Trio_8800-UA/5.4.3.2007`,
/// `PolyEdge-Edge_E450-UA/8.0.0.15602 (SN:482567b5313f)`.
fn parse(ua: &str) -> Option<(Option<String>, Option<String>, Option<Mac>)> {
    let token = ua.split_whitespace().find(|t| t.starts_with("Poly") && t.contains("-UA/"))?;
    let (product, version) = token.split_once("-UA/")?;
    let model = product.split_once('-').map_or("", |(_, m)| m);
    let version = version.split(|c: char| !(c.is_ascii_digit() || c == '.')).next().unwrap_or("");
    let mac = ua.split_once("(SN:").and_then(|(_, s)| s.split_once(')')).and_then(|(m, _)| ua::plain_mac(m.trim()));
    Some((some(model), some(version), mac))
}

/// The MAC of `<mac><suffix>` (any case), for one of `suffixes`.
fn mac_with_suffix(file_name: &str, suffixes: &[&str]) -> Option<Mac> {
    let lower = file_name.to_ascii_lowercase();
    let stem = suffixes.iter().find_map(|s| lower.strip_suffix(s))?;
    ua::plain_mac(stem)
}

impl Polycom {
    fn master(name: String) -> FileSpec {
        FileSpec {
            name,
            aliases: Vec::new(),
            template: "polycom/master.xml.j2",
            scope: FileScope::Model,
            content_type: "application/xml",
            name_pattern: None,
        }
    }

    fn config(name: String, scope: FileScope) -> FileSpec {
        FileSpec {
            name,
            aliases: Vec::new(),
            template: "polycom/config.xml.j2",
            scope,
            content_type: "application/xml",
            name_pattern: None,
        }
    }
}

/// The default templates, compiled in (an admin overrides them by name, see [`crate::render`]).
static TEMPLATES: &[(&str, &str)] = &[
    ("polycom/master.xml.j2", include_str!("../templates/polycom/master.xml.j2")),
    ("polycom/config.xml.j2", include_str!("../templates/polycom/config.xml.j2")),
];

/// Line keys per VVX model, without expansion modules (wazo `wazo_polycom/common/common.py`,
/// `_NB_FKEY`); `None` for the Trio and Edge phones, which it does not count.
fn line_key_count(model: &str) -> Option<u32> {
    Some(match model {
        "VVX101" | "VVX150" | "VVX201" => 2,
        "VVX250" => 4,
        "VVX300" | "VVX301" | "VVX310" | "VVX311" | "VVX350" | "VVX1500" => 6,
        "VVX400" | "VVX401" | "VVX410" | "VVX411" | "VVX450" | "VVX500" | "VVX501" => 12,
        "VVX600" | "VVX601" => 16,
        _ => return None,
    })
}

/// BLF keys only, as `attendant.resourceList.N.address` and `.label` (wazo
/// `wazo_polycom/common/common.py`, `_add_fkeys`; Poly UC Software administrator's guide,
/// "Busy Lamp Field"). UC Software puts resource-list entries on the line keys its registrations
/// leave free, in order, so `key.N` is the Nth entry rather than a fixed key. Speed dials (which
/// UC Software keeps in the contact directory), line keys, park and expansion modules are not
/// mapped, and the entry's account is the phone's first line.
fn key_caps(model: &ModelInfo) -> Result<crate::keys::KeyCaps, &'static str> {
    let keys = line_key_count(model.name).ok_or("no source gives its line key count")?;
    Ok(crate::keys::KeyCaps {
        types: &[KeyType::Blf],
        keys: Some(keys),
        modules: 0,
        module_keys: None,
        line_on_every_type: false,
    })
}

/// One BLF entry: the watched address and its label (the value when unset).
fn key_params(key: &crate::keys::ProgKey) -> Vec<VendorParam> {
    let row = |field: &str, value: &str| VendorParam {
        name: format!("attendant.resourceList.{}.{field}", key.pos.index),
        value: value.to_string(),
        line: None,
        group: "",
    };
    let value = key.value.as_deref().unwrap_or_default();
    vec![row("address", value), row("label", key.label_or_value().unwrap_or_default())]
}

impl Vendor for Polycom {
    /// Polycom's contact directory, the `<MAC>-directory.xml` the phone fetches from its
    /// provisioning server by itself: `<directory><item_list>` with one `<item>` per number
    /// (`<fn>`, `<ln>`, `<ct>` the number to call) (fpbx
    /// `resources/templates/provision/polycom/5.x/{$mac}-directory.xml`). No speed-dial index
    /// (`<sd>`) is written, so the directory does not take over line keys.
    fn directory(&self, contacts: &[Contact]) -> Option<DirectoryFile> {
        Some(polycom_directory(contacts))
    }

    fn id(&self) -> &'static str {
        "polycom"
    }

    fn check_sync_events(&self) -> CheckSyncEvents {
        // No reboot parameter: voIpProt.SIP.specialEvent.checkSync.alwaysReboot decides.
        CheckSyncEvents {
            aliases: &["poly"],
            resync: "check-sync",
            reboot: "check-sync",
            source: "asterisk polycom-check-cfg; sip-notify gem",
        }
    }

    fn pnp_dialect(&self) -> PnpDialect {
        // No documented PnP body: the base directory, no credentials in it.
        PnpDialect::DEFAULT
    }

    fn templates(&self) -> &'static [(&'static str, &'static str)] {
        TEMPLATES
    }

    /// A Polycom phone does not read `reboot=true`: its file decides. With `alwaysReboot = 1` every
    /// check-sync reboots it (so a reboot asked for is a reboot done); with `0` it reboots only
    /// when a change needs it, so `--reboot` is refused rather than reported as done.
    fn reboot_refusal(&self, model: &'static ModelInfo, settings: &Settings) -> Option<String> {
        let params = self.parameters(model, settings, FileScope::Device);
        mapping::reboot_refused_by(&params, settings, ALWAYS_REBOOT, |v| v.trim() == "1")
    }

    fn display_name(&self) -> &'static str {
        "Polycom"
    }

    fn models(&self) -> &'static [ModelInfo] {
        MODELS
    }

    fn secret_params(&self) -> &'static [&'static str] {
        SECRET_PARAMS
    }

    fn parse_user_agent(&self, ua: &str) -> Option<UserAgentInfo> {
        parse(ua::unquote(ua)).map(|parsed| ua::info(self, parsed))
    }

    /// The master file under the device's name, the device's own file and the site file.
    fn device_files(&self, _model: &'static ModelInfo, mac: Mac) -> Vec<FileSpec> {
        vec![
            Self::master(mac.file_name(".cfg")),
            Self::config(mac.file_name(DEVICE_SUFFIX), FileScope::Device),
            Self::config(SITE_FILE.to_string(), FileScope::Model),
        ]
    }

    fn mac_in_file_name(&self, file_name: &str) -> Option<Mac> {
        ua::mac_file(file_name, &["cfg"]).or_else(|| mac_with_suffix(file_name, &[DEVICE_SUFFIX]))
    }

    /// `000000000000.cfg` and `site.cfg` are the same for every model: a requester without a
    /// recognised model gets them rendered for the first VVX.
    fn upload_mac(&self, file_name: &str) -> Option<Mac> {
        mac_with_suffix(file_name, UPLOAD_SUFFIXES)
    }

    fn model_file(&self, file_name: &str, ua_model: Option<&str>) -> Option<(&'static ModelInfo, FileSpec)> {
        let spec = if file_name.eq_ignore_ascii_case(DEFAULT_MASTER) {
            Self::master(DEFAULT_MASTER.to_string())
        } else if file_name.eq_ignore_ascii_case(SITE_FILE) {
            Self::config(SITE_FILE.to_string(), FileScope::Model)
        } else {
            return None;
        };
        let model = ua_model.and_then(|m| self.model(m)).unwrap_or(&MODELS[0]);
        Some((model, spec))
    }

    fn parameters(&self, model: &'static ModelInfo, settings: &Settings, scope: FileScope) -> Vec<VendorParam> {
        let keys = |out: &mut Vec<VendorParam>| {
            if let (FileScope::Device, Ok(caps)) = (scope, key_caps(model)) {
                out.extend(crate::keys::supported(settings, &caps).iter().flat_map(key_params));
            }
        };
        let mut params = mapping::build_with(PARAMS, settings, scope, "", keys);
        // `vendor.` settings reach every vendor: one that cannot be an attribute name is meant
        // for another vendor and left out rather than breaking every Polycom file.
        params.retain(|p| is_xml_name(&p.name));
        params
    }

    fn validate_device(&self, model: &'static ModelInfo, settings: &Settings) -> Result<(), crate::Refused> {
        mapping::check_max_lines(model, settings)?;
        crate::keys::check_device(settings, "Polycom", model, key_caps(model))?;
        if let Some(zone) = mapping::get(settings, "time.zone").filter(|z| polycom_dst(z).is_none()) {
            return Err(crate::Refused(format!(
                "time.zone = {zone:?}: its daylight saving is not one hour switched on a whole hour, \
                 which tcpIpApp.sntp.daylightSavings.* cannot express; use a UTC offset"
            )));
        }
        mapping::refuse_unmapped(
            settings,
            "Polycom",
            &[
                (
                    "firmware.url",
                    "the firmware is APP_FILE_PATH in the master file (<mac>.cfg, 000000000000.cfg), which is \
                     served before the phone authenticates and is therefore rendered from the global settings only; \
                     set firmware.url globally",
                ),
                ("ringtone.url", "no consulted source gives a parameter that downloads a ring tone"),
                (
                    "language.url",
                    "the phone takes a language by name (lcl.ml.lang); no consulted source gives a parameter that \
                     downloads a language file",
                ),
                (
                    "directory.url",
                    "the phone fetches its directory itself, as <mac>-directory.xml next to its configuration \
                     files (fpbx polycom/5.x/{$mac}-directory.xml); no parameter names a URL",
                ),
            ],
        )?;
        Ok(mapping::check_raw_names(
            settings,
            is_xml_name,
            "a Polycom parameter name must start with a letter or '_' and contain only letters, \
             digits, '_', '-' and '.'",
        )?)
    }
}

/// [`Vendor::directory`] for Polycom: the whole name in `fn` (sipprov keeps one name), the
/// kind of a mobile or other number in `ln` so the entries of one contact stay apart.
fn polycom_directory(contacts: &[Contact]) -> DirectoryFile {
    let mut xml = XmlWriter::new(true);
    xml.open("directory", &[]).open("item_list", &[]);
    for c in contacts {
        for (kind, number) in c.numbers() {
            let ln = match kind {
                NumberKind::Office => "",
                NumberKind::Mobile => "(mobile)",
                NumberKind::Other => "(other)",
            };
            xml.open("item", &[]).text("fn", &c.name).text("ln", ln).text("ct", number).close();
        }
    }
    xml.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The US switches on the second Sunday of March and the first of November at 02:00, the EU
    /// on the last Sunday of March (02:00) and October (03:00); Lord Howe's 30-minute saving
    /// cannot be written.
    #[test]
    fn daylight_saving_in_polycom_form() {
        let fields = |z: &str| {
            [start_month, start_date, start_day_of_week, start_last_in_month, start_time]
                .iter()
                .chain(&[stop_month, stop_date, stop_day_of_week, stop_last_in_month, stop_time])
                .map(|f| f(z).unwrap_or_default())
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(gmt_offset("America/Chicago").as_deref(), Some("-21600"));
        assert_eq!(dst_enable("America/Chicago").as_deref(), Some("1"));
        assert_eq!(fields("America/Chicago"), "3 8 1 0 2 11 1 1 0 2");
        assert_eq!(fields("Europe/Paris"), "3 1 1 1 2 10 1 1 1 3");
        assert_eq!(dst_enable("Asia/Tokyo").as_deref(), Some("0"));
        assert_eq!(start_month("Asia/Tokyo"), None);
        assert_eq!(dst_enable("Australia/Lord_Howe"), None);
    }

    #[test]
    fn every_secret_row_is_declared() {
        assert_eq!(mapping::undeclared_secret_rows(PARAMS, |n| Polycom.is_secret_param(n)), Vec::<String>::new());
    }

    #[test]
    fn user_agents() {
        let cases = [
            ("FileTransport PolycomVVX-VVX_410-UA/5.9.5.0614 Type/Application", "VVX410", "5.9.5.0614", None),
            ("PolycomVVX-VVX_410-UA/5.9.0.9373", "VVX410", "5.9.0.9373", None),
            ("Polycom/5.4.3.2007 PolycomRealPresenceTrio-Trio_8800-UA/5.4.3.2007", "Trio8800", "5.4.3.2007", None),
            (
                "FileTransport PolyEdge-Edge_E450-UA/8.0.0.15602 (SN:482567b5313f) Type/Application",
                "E450",
                "8.0.0.15602",
                Some("482567b5313f"),
            ),
            ("FileTransport PolycomSoundPointIP-SPIP_335-UA/3.2.1.0078", "SPIP_335", "3.2.1.0078", None),
        ];
        for (ua, model, fw, mac) in cases {
            let info = Polycom.parse_user_agent(ua).unwrap_or_else(|| panic!("{ua}"));
            assert_eq!(info.model.as_deref(), Some(model), "{ua}");
            assert_eq!(info.firmware.as_deref(), Some(fw), "{ua}");
            assert_eq!(info.mac.map(|m| m.to_string()).as_deref(), mac, "{ua}");
        }
        for other in ["Yealink SIP-T46S 66.86.0.15", "Polycom", "FileTransport Foo-UA/1", ""] {
            assert!(Polycom.parse_user_agent(other).is_none(), "{other}");
        }
    }

    #[test]
    fn file_names() {
        let mac: Mac = "0004f2aabbcc".parse().unwrap();
        assert_eq!(Polycom.mac_in_file_name("0004f2aabbcc.cfg"), Some(mac));
        assert_eq!(Polycom.mac_in_file_name("0004F2AABBCC-device.cfg"), Some(mac));
        assert_eq!(Polycom.mac_in_file_name("000000000000.cfg"), None);
        assert_eq!(Polycom.mac_in_file_name("0004f2aabbcc-phone.cfg"), None);
        for name in ["0004f2aabbcc-phone.cfg", "0004F2AABBCC-APP.LOG", "0004f2aabbcc-web.cfg", "0004f2aabbcc-boot.log"]
        {
            assert_eq!(Polycom.upload_mac(name), Some(mac), "{name}");
        }
        for name in ["0004f2aabbcc-device.cfg", "0004f2aabbcc.cfg", "000000000000-phone.cfg", "x-phone.cfg"] {
            assert_eq!(Polycom.upload_mac(name), None, "{name}");
        }
        assert!(Polycom.upload_mac("0004f2aabbcc-directory.xml").is_some());
        assert!(Polycom.model_file("000000000000.cfg", None).is_some());
        assert!(Polycom.model_file("site.cfg", Some("VVX_410")).is_some_and(|(m, _)| m.name == "VVX410"));
        assert!(Polycom.model_file("sip.cfg", None).is_none());
    }

    #[test]
    fn provisioning_server() {
        assert_eq!(server_name("https://prov.example.com/p/").as_deref(), Some("prov.example.com/p/"));
        assert_eq!(server_type("HTTPS://x/").as_deref(), Some("HTTPS"));
        assert_eq!(server_type("gopher://x/"), None);
    }
}
