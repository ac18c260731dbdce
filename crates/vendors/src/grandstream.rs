//! Grandstream phones and ATAs.
//!
//! # Files
//!
//! From Grandstream's "SIP Device Provisioning Guide"
//! (<https://documentation.grandstream.com/knowledge-base/sip-device-provisioning-guide/>):
//! on boot a device asks for the binary `cfg<mac>` (newer documentation: `cfg<mac>.bin`), the XML
//! `cfg<mac>.xml`, then the model file `cfg<model>.xml` (e.g. `cfggrp2614.xml`) and the generic
//! `cfg.xml`. sipprov serves only the XML device file, `cfg<mac>.xml`, with the lower-case MAC the
//! guide asks for and wazo writes; requests are matched ignoring case. The binary `cfg<mac>` is not
//! served: its format is proprietary and no source consulted describes it. The model files are not
//! served either: no source names a setting they must carry, and everything goes in the device
//! file.
//!
//! # Settings
//!
//! The format is wazo's `base.tpl`: `<gs_provision version="1">`, the device's `<mac>` (lower
//! case, as the User-Agent shows it; the phone checks it against itself), then
//! `<config version="1">` with one element per P-value. Mapped: `P26015` (Allow SIP Reset),
//! always 1; `P212` (0 TFTP, 1 HTTP, 2 HTTPS, from the scheme of `provisioning.url`) and `P237`
//! (that URL without its scheme); `provisioning.interval_minutes` as `P194` = 1 and `P193` =
//! minutes, which must be 60–5256000 (Grandstream HT814 user manual, mirrored at
//! <http://38.142.81.21:8001/manual/grandstream-networks/ht814/user-s-manual-english/page-33.html>);
//! `admin.password` as `P2`, `time.ntp_server` as `P30` and `time.zone` as `P64`, a POSIX TZ
//! string with the zone's daylight-saving rule (e.g. `CET-1CEST,M3.5.0,M10.5.0/3`: wazo
//! `plugins/wazo_grandstream/common/common.py` writes exactly such a string into `P64`, and
//! `base.tpl` the three P-values).
//!
//! Accounts, from Grandstream's configuration template for the GXP17xx (firmware 1.0.1.133,
//! sections "Account 1/General Settings" and "Account 2/General Settings"): active, account
//! name (the line label, else the display name), SIP server (registrar, `:port` added), SIP user
//! ID, authenticate ID, password, name (display name) and SIP transport (0 UDP, 1 TCP, 2 TLS) are
//! `P271 P270 P47 P35 P36 P34 P3 P130` for account 1 and `P401 P417 P402 P404 P405 P406 P407
//! P448` for account 2. Accounts 3 and 4 follow the same layout one hundred higher (`P501`...,
//! `P601`..., wazo `base.tpl` writes `P{n+2}01`...), with the transports `P548` and `P648`;
//! accounts 5 and 6 use `P1701 P1717 P1702 P1704 P1705 P1706 P1707 P1748` and `P1801 P1817
//! P1802 P1804 P1805 P1806 P1807 P1848` (FusionPBX `resources/templates/provision/grandstream/`
//! `gxp21xx/{$mac}.xml` and `gxv3240/{$mac}.xml`, which follow Grandstream's own templates, each
//! value under its section "Account N"). Accounts 7 and up are not mapped: no source gives their
//! P-values. Each model's [`ModelInfo::max_lines`] is the lower of its SIP account count (the
//! models' data sheets) and 6, and a line beyond it is refused with a message naming both; the
//! HT80x/HT81x ATAs keep one, since their ports 2 and up are configured through other P-values
//! (HT80x port 2 `P7xx`, HT81x the per-port `P4060`...), not an account of this layout. (wazo's
//! `common_ata/templates/base.tpl` writes an HT802's second line as `P401`..., Grandstream's own
//! `ht80x_config_1.0.19.11.txt` puts port 2's password in `P734`: with the sources at odds, port 2
//! is refused rather than guessed.)
//!
//! # HTTP credentials
//!
//! `http.username` / `http.password` go into `P1360` / `P1361`, the "HTTP/HTTPS User Name" and
//! "HTTP/HTTPS Password" of the config server (FusionPBX `grp2614/{$mac}.xml`: "Config Server
//! User Name, Pvalue P1360", "Config Server Password, Pvalue P1361"; `dp750/{$mac}.xml`:
//! "HTTP/HTTPS User Name for config server"). So the server can give a new device per-device
//! credentials in its first file ([`Vendor::http_credential_parameters`]).
//!
//! # Models
//!
//! The same `cfg<mac>.xml` with the same P-values: wazo-provd-plugins
//! `plugins/wazo_grandstream/*/entry.py` provisions the GXP16xx (`v1_0_7_13`), GXP21xx
//! (`v1_0_11_85`), GRP261x (`v1_0_5_48`), GXV33xx (`v1_0_3_2x_android`) and HT801/HT802
//! (`v1_0_63_3`) from one `common/templates/base.tpl` (ATAs: `common_ata/templates/base.tpl`);
//! the GXV3240 (a User-Agent sample in wazo `common/common.py`), WP820 and HT814 (their Grandstream
//! user manuals) use the same file. Not accepted: the DP75x DECT bases, whose
//! account P-values follow another layout (FusionPBX `dp750/{$mac}.xml` uses `P548` for account
//! 3's outbound proxy, the desk phones' account 3 transport), so this module's account table
//! would misconfigure them; and the WP810/WP825 and GRP260x, for which no source was consulted.
//! The `<config version="2">` alias names of newer firmware are not used.
//!
//! # Firmware and resource files
//!
//! Grandstream phones take a firmware *server path*, a directory, not a file URL: `P192`
//! ("Firmware Server Path", host/path without scheme), with `P212` ("Upgrade Via": 1 HTTP, 2
//! HTTPS) shared with the config server, a file prefix `P232` and postfix `P233`, and `P238`
//! (0: always check for new firmware) (fpbx `grandstream/gxp21xx/{$mac}.xml`; wazo
//! `common_ata/templates/HT801V2.tpl` writes `P192` the same way). The phone asks that directory
//! for its firmware under the model's own base name with the prefix and postfix around it
//! (Grandstream SIP Device Provisioning Guide, "Firmware and configuration file prefix and
//! postfix", e.g. `gs_boot.bin_1.0.7.5` for base name `boot.bin`). So `firmware.url` maps as
//! `P192` = the URL's host and directory, `P232`/`P233` empty, and the file the URL names must
//! carry the model's base name, as in Grandstream's release archive (e.g. `gxp2170fw.bin`): the
//! name itself never reaches the phone. A firmware URL whose scheme differs from
//! `provisioning.url`'s is refused (one `P212` for both), as is one with a query.
//!
//! `directory.url` is the phone book download: `P330` (1 HTTP, 3 HTTPS) and `P331`, the path
//! the phone fetches `phonebook.xml` from (fpbx `gxp21xx/{$mac}.xml`, `gxp2170/README.txt`);
//! the URL must therefore end in `/phonebook.xml`. Refused on ATAs, and refused everywhere:
//! `ringtone.url`, `wallpaper.url`, `language.url` (reasons in the module's `unmapped` table).
//!
//! # Raw parameters
//!
//! `vendor.P<digits>=<value>` writes `<P<digits>>value</P<digits>>` and replaces a mapped
//! P-value of the same number (e.g. `vendor.P401=1` for account 2, at the user's own risk). Any
//! other name cannot be a Grandstream P-value ([`is_p_value`]): [`Grandstream::validate_device`]
//! refuses it on a Grandstream device, and one inherited from the global or group settings
//! (meant for another vendor) is left out of the file.
//!
//! # Security
//!
//! Files are served in clear: Grandstream documents the XML encryption as `openssl enc -aes-256-cbc
//! -k <P1359>`, but not which key derivation the device expects (unverified), so it is not
//! implemented; use HTTPS.

use sipprov_model::{LineField, Mac, Settings};

use crate::directory::{Contact, DirectoryFile, NumberKind, XmlWriter};
use crate::events::CheckSyncEvents;
use crate::mapping::{self, one, same, ParamDef, Source};
use crate::pnp::PnpDialect;
use crate::shape::OneXmlFile;
use crate::ua;
use crate::{FileScope, FileSpec, ModelInfo, UserAgentInfo, Vendor, VendorParam};

/// The Grandstream vendor module.
pub struct Grandstream;

/// The highest account number whose P-values this module knows (see the module doc).
pub const MAPPED_ACCOUNTS: u32 = 6;

/// `accounts`: how many SIP accounts the model has (its data sheet); sipprov writes at most
/// [`MAPPED_ACCOUNTS`] of them.
const fn model(name: &'static str, family: &'static str, accounts: u32) -> ModelInfo {
    let max = if accounts < MAPPED_ACCOUNTS { accounts } else { MAPPED_ACCOUNTS };
    ModelInfo { name, family, aliases: &[], common_file: None, max_lines: Some(max) }
}

/// Models provisioned with the same file and P-values (module doc, "Models"), with their SIP
/// account counts from the models' data sheets. ATAs keep one line (module doc, "Accounts").
static MODELS: &[ModelInfo] = &[
    model("GXP1610", "desk", 1),
    model("GXP1615", "desk", 1),
    model("GXP1620", "desk", 2),
    model("GXP1625", "desk", 2),
    model("GXP1628", "desk", 2),
    model("GXP1630", "desk", 3),
    model("GXP2130", "desk", 3),
    model("GXP2135", "desk", 4),
    model("GXP2140", "desk", 4),
    model("GXP2160", "desk", 6),
    model("GXP2170", "desk", 6),
    model("GRP2612", "desk", 2),
    model("GRP2613", "desk", 3),
    model("GRP2614", "desk", 4),
    model("GRP2615", "desk", 5),
    model("GRP2616", "desk", 6),
    model("GXV3240", "video", 6),
    model("GXV3350", "video", 16),
    model("GXV3370", "video", 16),
    model("GXV3380", "video", 16),
    model("WP820", "wifi", 2),
    model("HT801", "ata", 1),
    model("HT802", "ata", 1),
    model("HT814", "ata", 1),
];

/// `P193` range in minutes (Grandstream HT814 user manual); settings already cap the interval at 525600.
const INTERVAL_MINUTES: std::ops::RangeInclusive<u64> = 60..=5_256_000;

/// The provisioning URL split into the `P212` protocol number and the `P237` server path, for the
/// schemes `P212` knows (0 TFTP, 1 HTTP, 2 HTTPS, wazo `common/templates/base.tpl`). The path has no scheme and no trailing
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

/// P-values outside the accounts (wazo `plugins/wazo_grandstream/common/templates/base.tpl`).
static PARAMS: &[ParamDef] = &[
    ParamDef::device(Source::Key("admin.password"), "P2", same),
    ParamDef::device(Source::Key("time.ntp_server"), "P30", same),
    ParamDef::device(Source::Key("time.zone"), "P64", posix_tz),
    // Allow SIP Reset: without it the phone ignores sipprov's check-sync NOTIFY (wazo `base.tpl`;
    // fpbx `grandstream/grp2614/{$mac}.xml` names it `account.1.sip.allowSipReset`).
    ParamDef::device(Source::Always, "P26015", one),
    ParamDef::device(Source::Key("provisioning.url"), "P212", protocol),
    ParamDef::device(Source::Key("provisioning.url"), "P237", server_path),
    ParamDef::device(Source::Key("provisioning.interval_minutes"), "P194", auto_mode),
    ParamDef::device(Source::Key("provisioning.interval_minutes"), "P193", auto_minutes),
    // Firmware (module doc, "Firmware and resource files"): the server path `P192`, the
    // prefix `P232` and postfix `P233` cleared so the phone asks for its own file name, and
    // `P238` 0, "Always Check For New Firmware" (fpbx `grandstream/gxp21xx/{$mac}.xml`).
    ParamDef::device(Source::Key("firmware.url"), "P192", url_dir),
    ParamDef::device(Source::Key("firmware.url"), "P232", empty),
    ParamDef::device(Source::Key("firmware.url"), "P233", empty),
    ParamDef::device(Source::Key("firmware.url"), "P238", zero),
    // Config server HTTP/HTTPS user name and password (module doc, "HTTP credentials").
    ParamDef::device(Source::Key("http.username"), "P1360", same),
    ParamDef::device(Source::Key("http.password"), "P1361", same),
];

/// The phone book download (fpbx `grandstream/gxp21xx/{$mac}.xml`, "Phonebook Management"):
/// `P330` 1 for HTTP, 3 for HTTPS, and `P331` the server path (host/path) the phone fetches
/// `phonebook.xml` from (fpbx `grandstream/gxp2170/README.txt`). Phones only.
static DIRECTORY_PARAMS: &[ParamDef] = &[
    ParamDef::device(Source::Key("directory.url"), "P330", phonebook_download),
    ParamDef::device(Source::Key("directory.url"), "P331", url_dir),
];

/// The file name Grandstream phones fetch from the phone book server path.
pub const PHONEBOOK_FILE: &str = "phonebook.xml";

/// A file URL's host and directory, without scheme ([`mapping::url_parts`]).
fn url_dir(url: &str) -> Option<String> {
    mapping::url_parts(url).map(|p| p.dir.to_string()).filter(|d| !d.is_empty())
}

fn empty(_: &str) -> Option<String> {
    Some(String::new())
}

fn zero(_: &str) -> Option<String> {
    Some("0".into())
}

/// `P330`: 1 HTTP, 3 HTTPS (2 is TFTP).
fn phonebook_download(url: &str) -> Option<String> {
    mapping::url_parts(url).map(|p| if p.scheme == "https" { "3" } else { "1" }.to_string())
}

/// Why `firmware.url` or `directory.url` cannot be written, if one of them is set and cannot.
fn resource_url_problem(model: &ModelInfo, settings: &Settings) -> Option<String> {
    if let Some(url) = mapping::get(settings, "firmware.url") {
        if mapping::url_parts(url).is_none_or(|p| p.dir.is_empty()) {
            return Some(
                "firmware.url: Grandstream phones take a firmware server path (host/path), so the URL cannot \
                 carry a query or fragment"
                    .into(),
            );
        }
    }
    let url = mapping::get(settings, "directory.url")?;
    if model.family == "ata" {
        return Some(format!(
            "directory.url cannot be provisioned on the {}: an ATA has no phone book to download into",
            model.name
        ));
    }
    match mapping::url_parts(url) {
        Some(p) if p.file == PHONEBOOK_FILE && !p.dir.is_empty() => None,
        _ => Some(format!(
            "directory.url: Grandstream phones fetch {PHONEBOOK_FILE} from the directory P331 names, so the URL \
             must end in /{PHONEBOOK_FILE} and carry no query"
        )),
    }
}

/// `P212` serves the config and the firmware server alike.
fn scheme_conflict(merged: &Settings) -> Option<String> {
    let firmware = mapping::url_parts(mapping::get(merged, "firmware.url")?)?.scheme;
    let config = config_server(mapping::get(merged, "provisioning.url")?)?.0;
    let same = matches!((firmware, config), ("http", "1") | ("https", "2"));
    (!same).then(|| {
        "firmware.url and provisioning.url must use the same scheme on Grandstream phones: one P-value, P212, \
         says how both the config and the firmware are fetched"
            .to_string()
    })
}

/// `P64`: the zone as a POSIX TZ string, daylight-saving rule included.
fn posix_tz(zone: &str) -> Option<String> {
    mapping::zone_rules(zone).map(|r| r.posix())
}

/// One account's P-values, in the order they are written (see the module doc for sources).
struct Account {
    active: &'static str,
    name: &'static str,
    server: &'static str,
    user: &'static str,
    auth: &'static str,
    password: &'static str,
    display: &'static str,
    transport: &'static str,
}

static ACCOUNTS: [Account; MAPPED_ACCOUNTS as usize] = [
    account_row(["P271", "P270", "P47", "P35", "P36", "P34", "P3", "P130"]),
    account_row(["P401", "P417", "P402", "P404", "P405", "P406", "P407", "P448"]),
    account_row(["P501", "P517", "P502", "P504", "P505", "P506", "P507", "P548"]),
    account_row(["P601", "P617", "P602", "P604", "P605", "P606", "P607", "P648"]),
    account_row(["P1701", "P1717", "P1702", "P1704", "P1705", "P1706", "P1707", "P1748"]),
    account_row(["P1801", "P1817", "P1802", "P1804", "P1805", "P1806", "P1807", "P1848"]),
];

/// An account from its P-values in [`Account`]'s field order.
const fn account_row(p: [&'static str; 8]) -> Account {
    Account {
        active: p[0],
        name: p[1],
        server: p[2],
        user: p[3],
        auth: p[4],
        password: p[5],
        display: p[6],
        transport: p[7],
    }
}

fn account(n: u32) -> Option<&'static Account> {
    ACCOUNTS.get(usize::try_from(n).ok()?.checked_sub(1)?)
}

/// SIP transport: 0 UDP, 1 TCP, 2 TLS (the template's "SIP Transport" values).
fn transport_number(v: &str) -> String {
    match v {
        "tcp" => "1",
        "tls" => "2",
        _ => "0",
    }
    .into()
}

/// Account `n`'s parameters, in the template's order.
fn account_params(settings: &Settings, n: u32, acc: &Account) -> Vec<(&'static str, String)> {
    let f = |field| mapping::line_value(settings, n, field);
    let candidates = [
        (acc.active, Some("1".to_string())),
        (acc.name, account_name(settings, n)),
        (acc.server, sip_server(settings, n)),
        (acc.user, f(LineField::Username)),
        (acc.auth, f(LineField::AuthUsername)),
        (acc.password, f(LineField::Password)),
        (acc.display, f(LineField::DisplayName)),
        (acc.transport, f(LineField::Transport).map(|t| transport_number(&t))),
    ];
    candidates.into_iter().filter_map(|(name, v)| Some((name, v?))).collect()
}

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

/// The account name (`P270`...): the line's own label, else its display name (not the user name
/// fallback of [`mapping::line_value`], which would name the account after a number).
fn account_name(settings: &Settings, n: u32) -> Option<String> {
    mapping::get(settings, &format!("line.{n}.label"))
        .map(str::to_string)
        .or_else(|| mapping::line_value(settings, n, LineField::DisplayName))
}

/// The SIP server (`P47`...): the registrar, with `:port` when the line sets a port
/// (`pbx.example.com:5060`).
fn sip_server(settings: &Settings, n: u32) -> Option<String> {
    let registrar = mapping::line_value(settings, n, LineField::Registrar)?;
    Some(match mapping::line_value(settings, n, LineField::Port) {
        Some(port) => format!("{registrar}:{port}"),
        None => registrar,
    })
}

/// Parses `Grandstream Model HW GXV3240 V1.6B SW 1.0.1.27 DevId 000b82632815`, or the legacy
/// `Grandstream GXP2000 (gxp2000e.bin:1.2.5.3/boot55e.bin:1.1.6.9) DevId 000b822726c8`
/// (samples in wazo `plugins/wazo_grandstream/common/common.py`).
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

/// The default templates, compiled in (an admin overrides them by name, see [`crate::render`]).
static TEMPLATES: &[(&str, &str)] = &[("grandstream/cfg.xml.j2", include_str!("../templates/grandstream/cfg.xml.j2"))];

/// One `cfg<mac>.xml` per device, raw names that are P-values.
static SHAPE: OneXmlFile = OneXmlFile {
    vendor: "Grandstream",
    check_lines: check_accounts,
    template: "grandstream/cfg.xml.j2",
    is_raw_name: is_p_value,
    raw_name_rule: "a Grandstream setting name must be a P-value, 'P' followed by digits (e.g. vendor.P47)",
    unmapped: &[
        (
            "ringtone.url",
            "custom ring tones are fetched by fixed names from the firmware server path, not from a URL \
             (P104 picks custom ring tone 1-3)",
        ),
        ("wallpaper.url", "no consulted source gives a P-value for a wallpaper URL"),
        (
            "language.url",
            "a downloaded language comes from the firmware server path under a postfix (P1362 gxp, P399), \
             not from a URL",
        ),
    ],
};

impl Vendor for Grandstream {
    /// Grandstream's phonebook: `<AddressBook>` with a `<version>` and one `<Contact>` per contact
    /// (`<FirstName>`, `<LastName>`, one `<Phone type="Work|Cell|Home">` per number holding
    /// `<phonenumber>` and `<accountindex>`) (fpbx
    /// `resources/templates/provision/grandstream/gxp16xx/phonebook.xml`). The phone asks for
    /// `phonebook.xml` under its phonebook server path, which the server answers too.
    fn directory(&self, contacts: &[Contact]) -> Option<DirectoryFile> {
        Some(grandstream_directory(contacts))
    }

    fn id(&self) -> &'static str {
        "grandstream"
    }

    fn check_sync_events(&self) -> CheckSyncEvents {
        // FusionPBX PR #3014 moved the re-fetch to `resync` to avoid reboots.
        CheckSyncEvents { resync: "resync", ..CheckSyncEvents::check_sync("FusionPBX event_notify (PR #3014)") }
    }

    fn pnp_dialect(&self) -> PnpDialect {
        // "A valid URL must be a path with a trailing slash", anything else is silently ignored.
        PnpDialect::DIRECTORY
    }

    fn templates(&self) -> &'static [(&'static str, &'static str)] {
        TEMPLATES
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
        parse(ua::unquote(ua)).map(|parsed| ua::info(self, parsed))
    }

    fn device_files(&self, _model: &'static ModelInfo, mac: Mac) -> Vec<FileSpec> {
        SHAPE.device_file(format!("cfg{mac}.xml"), Vec::new())
    }

    /// `cfg<12 hex>.xml`, any case; never the binary `cfg<mac>`, model files or placeholders.
    fn mac_in_file_name(&self, file_name: &str) -> Option<Mac> {
        OneXmlFile::mac_in_file_name(file_name, "cfg")
    }

    fn model_file(&self, _file_name: &str, _ua_model: Option<&str>) -> Option<(&'static ModelInfo, FileSpec)> {
        // `cfg<model>.xml` and `cfg.xml` are not served (see the module documentation).
        None
    }

    /// The table rows, then each configured account's P-values (accounts beyond
    /// `ACCOUNTS` are refused by [`Grandstream::validate_device`]), and only names that are
    /// P-values.
    fn parameters(&self, model: &'static ModelInfo, settings: &Settings, scope: FileScope) -> Vec<VendorParam> {
        let add_accounts = |out: &mut Vec<VendorParam>| {
            if scope != FileScope::Device {
                return;
            }
            // Without a provisioning URL, P212 comes from the firmware URL's scheme.
            if let Some(url) = mapping::get(settings, "firmware.url").filter(|_| !out.iter().any(|p| p.name == "P212"))
            {
                if let Some(p) = mapping::url_parts(url) {
                    let value = if p.scheme == "https" { "2" } else { "1" }.to_string();
                    out.push(VendorParam { name: "P212".into(), value, line: None, group: "" });
                }
            }
            if model.family != "ata" {
                out.extend(mapping::key_rows(DIRECTORY_PARAMS, settings, scope));
            }
            for n in settings.line_indexes() {
                let Some(acc) = account(n) else { continue };
                for (name, value) in account_params(settings, n, acc) {
                    out.push(VendorParam { name: name.into(), value, line: Some(n), group: "" });
                }
            }
        };
        SHAPE.own_params(mapping::build_with(PARAMS, settings, scope, "", add_accounts))
    }

    fn validate_device(&self, model: &'static ModelInfo, settings: &Settings) -> Result<(), crate::Refused> {
        SHAPE.validate_device(model, settings, || {
            crate::keys::check_device(
                settings,
                "Grandstream",
                model,
                Err("no verified P-values for the multi-purpose keys; set vendor.P<number>"),
            )?;
            mapping::check_server_fields_need_registrar(settings, "Grandstream")?;
            if let Some(problem) = resource_url_problem(model, settings).or_else(|| scheme_conflict(settings)) {
                return Err(crate::Refused(problem));
            }
            Ok(check_interval(settings)?)
        })
    }

    /// A firmware URL whose scheme differs from the provisioning URL's, from any levels
    /// (`scheme_conflict`), and the URL checks of [`Grandstream::validate_device`].
    fn validate_merged(&self, model: &'static ModelInfo, merged: &Settings) -> Result<(), crate::Refused> {
        crate::keys::check_merged(merged)?;
        match resource_url_problem(model, merged).or_else(|| scheme_conflict(merged)) {
            Some(problem) => Err(crate::Refused(problem)),
            None => Ok(()),
        }
    }
}

/// Refuses an interval outside the `P193` range.
fn check_interval(settings: &Settings) -> Result<(), String> {
    match mapping::get(settings, "provisioning.interval_minutes") {
        Some(v) if minutes(v).is_none() => Err(format!(
            "provisioning.interval_minutes = {v:?}: Grandstream devices check every 60 to 5256000 minutes (P193)"
        )),
        _ => Ok(()),
    }
}

/// Refuses a line beyond the model's [`ModelInfo::max_lines`], saying whether the model lacks
/// the account or sipprov lacks its P-values.
fn check_accounts(model: &ModelInfo, settings: &Settings) -> Result<(), String> {
    let (Some(max), Some(&n)) = (model.max_lines, settings.line_indexes().last()) else { return Ok(()) };
    if n <= max {
        return Ok(());
    }
    let why = if model.family == "ata" {
        format!("sipprov provisions port 1 of the {} only (its other ports use other P-values)", model.name)
    } else if max == MAPPED_ACCOUNTS {
        format!("sipprov knows the P-values of Grandstream accounts 1 to {MAPPED_ACCOUNTS} only")
    } else {
        format!("the {} has {max} SIP account{}", model.name, if max == 1 { "" } else { "s" })
    };
    Err(format!("line.{n}.* cannot be provisioned on the {}: {why}", model.name))
}

/// [`Vendor::directory`] for Grandstream: the whole name goes in `FirstName` (sipprov keeps one
/// name per contact), office → `Work`, mobile → `Cell`, other → `Home`, all on account 1.
fn grandstream_directory(contacts: &[Contact]) -> DirectoryFile {
    let mut xml = XmlWriter::new(false);
    xml.open("AddressBook", &[]).text("version", "1");
    for c in contacts {
        xml.open("Contact", &[]).text("FirstName", &c.name).text("LastName", "");
        for (kind, number) in c.numbers() {
            let kind = match kind {
                NumberKind::Office => "Work",
                NumberKind::Mobile => "Cell",
                NumberKind::Other => "Home",
            };
            xml.open("Phone", &[("type", kind)]).text("phonenumber", number).text("accountindex", "1").close();
        }
        xml.close();
    }
    xml.finish()
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
    fn every_account_password_is_declared_secret() {
        for acc in &ACCOUNTS {
            assert!(Grandstream.is_secret_param(acc.password), "{}", acc.password);
        }
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
