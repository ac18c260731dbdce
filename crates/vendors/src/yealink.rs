//! Yealink desk phones (T2x/T3x/T4x/T5x/T7x/T8x, CP, AX) and W-series DECT bases.
//!
//! Files (Yealink administrator guides, "Boot Files", e.g. the SIP-T58V/A guide mirrored at
//! <https://easymanua.ls/yealink/sip-t58v-a/manual?p=131>): the per-model common file
//! `y0000000000XX.cfg` and the per-device `<mac>.cfg` (lower-case MAC). Both are `key = value`
//! text whose first line must be `#!version:1.0.0.1`. Boot files (`<mac>.boot`,
//! `y000000000000.boot`) are not generated: without them the phone falls back to the common + MAC
//! file pair (the guides' "old mechanism"), which every firmware generation understands, so a boot file would only add a
//! request and a template without changing what the phone applies.
//!
//! # Models
//!
//! Common-file numbers per model come from fpbx `resources/templates/provision/yealink/<model>/`
//! and, for the models fpbx lacks, from the firmware prefix wazo pins (the number usually equals
//! it, and the User-Agent decides anyway):
//! * desk, current: T3x (T30, T30P, T31, T31P, T31G, T33, T33P, T33G: wazo
//!   `plugins/wazo_yealink/v86/entry.py`, firmware `T31(T30,T30P,T31G,T31P,T33P,T33G)-124.x`),
//!   T31W/T34W/T44W, T4xS/T4xU (T41U, T44U: wazo v86, firmware 108.x), T5x (T53/T53W,
//!   T54/T54W, T57/T57W, T56A/T58, T58W), T7x/T8x (wazo `v87/entry.py`), CP9xx, AX83H/AX86R (fpbx);
//! * DECT bases: W52P/W56P, W60B, W70B, W75B/W75DM (wazo `v87/entry.py`, firmware 175.x),
//!   W80B/W80DM, W90B/W90DM;
//! * legacy desk, firmware v7x and older only: T20P, T22P, T26P, T28P, T32G, T38G, VP530P
//!   (wazo `plugins/xivo-yealink/70.0/entry.py`, whose `COMMON_FILES` give their common files);
//! * ATAs: none. No source consulted (fpbx, wazo, Yealink's guides) lists a Yealink ATA.
//!
//! # Dialects
//!
//! Firmware v80 and later read `static.auto_provision.*`, `static.firmware.url` and
//! `account.N.sip_server.1.*` (`DESK_PARAMS`, wazo `wazo_yealink/v87/templates/base.tpl`). The
//! legacy models never got v8x and read the v7x names (`LEGACY_PARAMS`): `auto_provision.server.url`,
//! `firmware.url`, `security.user_password` and `account.N.sip_server_host` / `.sip_server_port`
//! (sipXecom `yealinkConstants.java`, its `*_V7X_SETTING` names; wazo
//! `xivo-yealink/70.0/templates/base.tpl`), `account.N.transport` (wazo
//! `wazo_yealink/v73/templates/base.tpl`, for T20P/T22P/T26P/T28P on 73.x). The dialect follows
//! the model, not the User-Agent's firmware: render results are cached per device and model, and
//! a model that also ran v7x firmware (T46G, W52P) is provisioned for the firmware it can be
//! upgraded to with `firmware.url`. Not mapped for the legacy models (no source for their v7x
//! names): the polling interval and the key-file switch, both refused on a legacy device, and the
//! HTTP credentials, which the server then never generates for it (the phone is given them by
//! hand, or its group opens its files).
//!
//! # Firmware and resource files
//!
//! `firmware.url` is `static.firmware.url` (v8x: wazo `wazo_yealink/v87/templates/base.tpl` and
//! `base-dect.tpl`, fpbx `t46u/y000000000108.cfg`) or `firmware.url` (legacy v7x models, see
//! Dialects). Like every global row it is written into the common file from the global settings
//! and again into `<mac>.cfg` from the device's merged settings, which the phone reads last, so a
//! group's or device's own URL wins for that phone. The resource files (`ringtone.url`,
//! `wallpaper.url`, `language.url`, `directory.url`) follow the same rule; their parameters and
//! sources are listed at `DESK_RESOURCES`. Refused on a device: any of them on a legacy model (no
//! v7x names), all but `directory.url` on a DECT base, `wallpaper.url` on a model no source lists.
//!
//! # Programmable keys
//!
//! `key.N.*` and `expansion.M.key.N.*` ([`crate::keys`]) become `linekey.N.type/value/line/label`
//! and `expansion_module.M.key.N.*` on desk phones (Yealink SIP-T2/T4/T5 administrator's guide,
//! "Line Keys"; wazo `wazo_yealink/v87/common.py`, `BaseYealinkFunckeyGenerator`), type codes 15
//! line, 16 BLF, 13 speed dial, 10 call park (the same file; fusionpbx
//! `app/devices/resources/classes/yealink.php`). Key counts and expansion chains per model come
//! from wazo's `_NB_LINEKEY` and `_expmod_by_model` (`key_caps`). Refused: keys on legacy
//! models (no source for their v7x names), on DECT bases, and on models with no line keys.
//!
//! # Encryption
//!
//! With `yealink.aes_key` the `<mac>.cfg` is AES-encrypted ("MAC-Oriented AES key"); with the
//! global `yealink.common_aes_key` the common file is too ("Common AES key"): the phone decrypts
//! the common file with the common key and the MAC file with the MAC key (Yealink SIP-T4X Auto
//! Provisioning Guide, "Resolving and Updating the Configurations"). That lets phones set to
//! accept only encrypted files (`static.auto_provision.update_file_mode = 1`) take the common
//! file. It is not confidentiality: the common file is served to anyone and holds no secrets, and
//! with `yealink.aes_key_file = 1` its key file `y0000000000XX_Security.enc` (named after the
//! common file, as Yealink's tool names it) is served to anyone too, wrapping the common key with
//! Yealink's public built-in key ([`crate::yealink_aes`]). Anyone can then decrypt the common
//! file, exactly as anyone can fetch it in the clear without a common key. The common key is
//! therefore never the MAC key: keep them different, or the open common key file would give away
//! the device files' key.
//!
//! Key files carry 16-character keys only (confenc `lib.sh` and gitaware `Yealink.py`, legacy
//! mode: 16 bytes in, 16 out; the 32-character keys belong to the RSA mode), so a 32-character
//! key with `yealink.aes_key_file = 1` is refused where it is set ([`Yealink::validate_device`])
//! and, when the two come from different levels (key on the device, switch on the group), the
//! file is not served and the reason is logged ([`key_file_problem`]).

use std::borrow::Cow;

use sipprov_model::{KeyType, LineField, Mac, Settings};

use crate::directory::{self, Contact, DirectoryFile};
use crate::events::CheckSyncEvents;
use crate::mapping::{self, one, same, ParamDef, Source};
use crate::pnp::PnpDialect;
use crate::setting_keys::{self, VendorKey};
use crate::ua::{self, is_numeric_version};
use crate::yealink_aes;
use crate::{FileScope, FileSpec, KeyFileName, ModelInfo, NamePattern, UserAgentInfo, Vendor, VendorParam};

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

const fn legacy(name: &'static str, common: &'static str) -> ModelInfo {
    ModelInfo { name, family: "legacy", aliases: &[], common_file: Some(common), max_lines: None }
}

/// Common-file numbers from fpbx `resources/templates/provision/yealink/<model>/`, others as the
/// module doc says. The first model listed for a number is the one an unidentified
/// request for it resolves to.
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
    desk("T31G", "y000000000123.cfg", &[]),
    desk("T33G", "y000000000124.cfg", &[]),
    // T3x sharing the T31G/T33G firmware (124.x, wazo v86 entry.py): the number is its prefix.
    desk("T30", "y000000000124.cfg", &[]),
    desk("T30P", "y000000000124.cfg", &[]),
    desk("T31", "y000000000124.cfg", &[]),
    desk("T31P", "y000000000124.cfg", &[]),
    desk("T33", "y000000000124.cfg", &[]),
    desk("T33P", "y000000000124.cfg", &[]),
    // The T4xU firmware (108.x, wazo v86 entry.py) also runs the T41U and T44U.
    desk("T41U", "y000000000108.cfg", &[]),
    desk("T44U", "y000000000108.cfg", &[]),
    // T56A, T54 and T57 from the T58V and T54W firmware lists (wazo v86 entry.py).
    desk("T56A", "y000000000058.cfg", &["T56"]),
    desk("T54", "y000000000096.cfg", &[]),
    desk("T57", "y000000000096.cfg", &[]),
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
    desk("AX83H", "y000000000180.cfg", &[]),
    desk("AX86R", "y000000000182.cfg", &[]),
    // Firmware v7x and older only (wazo xivo-yealink 70.0 entry.py `COMMON_FILES`).
    legacy("T28P", "y000000000000.cfg"),
    legacy("T26P", "y000000000004.cfg"),
    legacy("T22P", "y000000000005.cfg"),
    legacy("T20P", "y000000000007.cfg"),
    legacy("VP530P", "y000000000023.cfg"),
    legacy("T32G", "y000000000032.cfg"),
    legacy("T38G", "y000000000038.cfg"),
    // W52P and W60B use the desk-phone account keys (wazo v8x); the UA of a W56P system says W52P.
    dect("W52P", "dect", "y000000000025.cfg", &["W56P"]),
    dect("W60B", "dect", "y000000000077.cfg", &[]),
    // W70B/W80/W90 put the server in template.N.* (wazo `v87/templates/base-dect.tpl`).
    dect("W70B", "dect-dm", "y000000000146.cfg", &[]),
    dect("W80DM", "dect-dm", "y000000000175.cfg", &["W80B", "W80"]),
    // W75 firmware is 175.x (wazo v87 entry.py; its W75B.tpl extends base-dect.tpl).
    dect("W75DM", "dect-dm", "y000000000175.cfg", &["W75B", "W75"]),
    // Number taken from the W90DM firmware prefix (130.x), which usually but not always matches
    // (T31G firmware 124.x uses `…123.cfg`); unidentified requests for it fall back on the UA model.
    dect("W90DM", "dect-dm", "y000000000130.cfg", &["W90B", "W90"]),
];

/// 0 UDP, 1 TCP, 2 TLS (wazo `_SIP_TRANSPORT`).
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

/// `sip.notify_reboot_enable`: 0 = re-provision, reboot only on `reboot=true`; 1 = reboot on
/// every check-sync; 2 = ignore check-sync (Yealink CP969 administrator guide, mirrored at
/// <https://manualshive.com/en/manual/yealink/cp969/909068?page=779>). Always 0: the
/// NOTIFY decides, as on the other vendors, so `device notify` re-provisions and
/// `device notify --reboot` reboots (1 would reboot on a plain re-provision). Yealink has no
/// value that re-provisions but never reboots, so `sip.notify_reboot = 0` is honoured by the
/// server refusing to ask for a reboot ([`Vendor::reboot_refusal`]).
fn notify_reboot(_: &str) -> Option<String> {
    Some("0".into())
}

/// `local_time.time_zone` takes an offset such as `+1`, `-5` or `+5:30`; for a zone name, its
/// standard offset (the daylight-saving rule goes into the `local_time.*` DST parameters).
fn time_zone(v: &str) -> Option<String> {
    let m = mapping::zone_rules(v)?.std_offset_minutes();
    let sign = if m < 0 { "-" } else { "+" };
    let (h, min) = (m.abs() / 60, m.abs() % 60);
    Some(match (m, min) {
        (0, _) => "0".into(),
        (_, 0) => format!("{sign}{h}"),
        _ => format!("{sign}{h}:{min:02}"),
    })
}

/// A named zone's daylight-saving rule when Yealink's by-week format can hold it (switch times in
/// whole hours); `None` for offsets, zones without DST and the rare fractional-hour switches.
fn yealink_dst(zone: &str) -> Option<sipprov_model::tz::Dst> {
    if !mapping::is_named_zone(zone) {
        return None;
    }
    mapping::zone_rules(zone)?.dst.filter(|d| d.start.time_seconds % 3600 == 0 && d.end.time_seconds % 3600 == 0)
}

/// `local_time.summer_time` for a named zone: 1 (enabled, rule written below) when it has a
/// daylight-saving rule the file can hold, 0 (disabled) when it has none, 2 (automatic, the
/// phone's own table) otherwise. Not written for fixed offsets.
fn summer_time(zone: &str) -> Option<String> {
    if !mapping::is_named_zone(zone) {
        return None;
    }
    let rules = mapping::zone_rules(zone)?;
    Some(
        match (rules.dst.is_some(), yealink_dst(zone).is_some()) {
            (false, _) => "0",
            (true, true) => "1",
            (true, false) => "2",
        }
        .into(),
    )
}

/// `local_time.dst_time_type = 1`: DST by week.
fn dst_by_week(zone: &str) -> Option<String> {
    yealink_dst(zone).map(|_| "1".into())
}

/// `Month/Week of Month/Day of Week/Hour of Day`, week 5 = the last, days 1 (Monday) to 7
/// (Sunday): Yealink's example `3/5/7/2` is the last Sunday of March at 02:00.
fn yealink_switch(sw: sipprov_model::tz::Switch) -> String {
    format!("{}/{}/{}/{}", sw.month, sw.week, sw.weekday_from_monday1(), sw.time_seconds / 3600)
}

fn dst_start(zone: &str) -> Option<String> {
    yealink_dst(zone).map(|d| yealink_switch(d.start))
}

fn dst_end(zone: &str) -> Option<String> {
    yealink_dst(zone).map(|d| yealink_switch(d.end))
}

/// `local_time.offset_time`: minutes added during daylight saving time.
fn dst_offset_minutes(zone: &str) -> Option<String> {
    let rules = mapping::zone_rules(zone)?;
    yealink_dst(zone).map(|d| ((d.offset_seconds - rules.std_offset_seconds) / 60).to_string())
}

fn admin_password(v: &str) -> Option<String> {
    Some(format!("admin:{v}"))
}

macro_rules! yealink_globals {
    () => {
        [
            // fpbx `resources/templates/provision/yealink/t46u/y000000000108.cfg`.
            ParamDef::global(Source::Key("provisioning.url"), "static.auto_provision.server.url", same),
            ParamDef::global(Source::Key("provisioning.interval_minutes"), "static.auto_provision.repeat.enable", one),
            ParamDef::global(
                Source::Key("provisioning.interval_minutes"),
                "static.auto_provision.repeat.minutes",
                same,
            ),
            ParamDef::global(Source::Key("time.ntp_server"), "local_time.ntp_server1", same),
            ParamDef::global(Source::Key("time.zone"), "local_time.time_zone", time_zone),
            // Daylight saving time (Yealink SIP-T2/T4/T5 administrator's guide, "Daylight Saving
            // Time" and "Auto DST File Attributes"), from the tz database for named zones.
            ParamDef::global(Source::Key("time.zone"), "local_time.summer_time", summer_time),
            ParamDef::global(Source::Key("time.zone"), "local_time.dst_time_type", dst_by_week),
            ParamDef::global(Source::Key("time.zone"), "local_time.start_time", dst_start),
            ParamDef::global(Source::Key("time.zone"), "local_time.end_time", dst_end),
            ParamDef::global(Source::Key("time.zone"), "local_time.offset_time", dst_offset_minutes),
            ParamDef::global(Source::Key("firmware.url"), "static.firmware.url", same),
            ParamDef::global(Source::Key("sip.notify_reboot"), "sip.notify_reboot_enable", notify_reboot).or("0"),
            ParamDef::device(Source::Key("admin.password"), "static.security.user_password", admin_password),
            // The phone's own credentials for later fetches (fpbx `t46u/y000000000108.cfg`).
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
static DESK_PARAMS: [ParamDef; 25] = concat(
    yealink_globals!(),
    [
        ParamDef::device(Source::Line(LineField::Registrar), "account.{n}.sip_server.1.address", same),
        ParamDef::device(Source::Line(LineField::Port), "account.{n}.sip_server.1.port", same),
        ParamDef::device(Source::Line(LineField::Transport), "account.{n}.sip_server.1.transport_type", transport),
    ],
);

/// W70B/W80/W90: one server template per line, referenced by the account (wazo base-dect.tpl).
static DECT_DM_PARAMS: [ParamDef; 26] = concat(
    yealink_globals!(),
    [
        ParamDef::device(Source::LineNumber(LineField::Registrar), "account.{n}.sip_server.template", same),
        ParamDef::device(Source::Line(LineField::Registrar), "template.{n}.sip_server.1.address", same),
        ParamDef::device(Source::Line(LineField::Port), "template.{n}.sip_server.1.port", same),
        ParamDef::device(Source::Line(LineField::Transport), "template.{n}.sip_server.1.transport_type", transport),
    ],
);

/// Firmware v7x and older (legacy models): the v7x names, as the module doc cites them.
static LEGACY_PARAMS: [ParamDef; 15] = [
    ParamDef::global(Source::Key("provisioning.url"), "auto_provision.server.url", same),
    ParamDef::global(Source::Key("time.ntp_server"), "local_time.ntp_server1", same),
    ParamDef::global(Source::Key("time.zone"), "local_time.time_zone", time_zone),
    ParamDef::global(Source::Key("firmware.url"), "firmware.url", same),
    ParamDef::global(Source::Key("sip.notify_reboot"), "sip.notify_reboot_enable", notify_reboot).or("0"),
    ParamDef::device(Source::Key("admin.password"), "security.user_password", admin_password),
    ParamDef::device(Source::LineAlways, "account.{n}.enable", one),
    ParamDef::device(Source::Line(LineField::Label), "account.{n}.label", same),
    ParamDef::device(Source::Line(LineField::DisplayName), "account.{n}.display_name", same),
    ParamDef::device(Source::Line(LineField::AuthUsername), "account.{n}.auth_name", same),
    ParamDef::device(Source::Line(LineField::Username), "account.{n}.user_name", same),
    ParamDef::device(Source::Line(LineField::Password), "account.{n}.password", same),
    ParamDef::device(Source::Line(LineField::Registrar), "account.{n}.sip_server_host", same),
    ParamDef::device(Source::Line(LineField::Port), "account.{n}.sip_server_port", same),
    // 0 UDP, 1 TCP, 2 TLS as in v8x `transport_type` (wazo v73 `base.tpl`).
    ParamDef::device(Source::Line(LineField::Transport), "account.{n}.transport", transport),
];

/// Resource files a desk phone downloads, each written in the common file (global) and the
/// device file (merged settings), like `static.firmware.url`:
/// * `ringtone.url` as `ringtone.url` (fpbx `yealink/t46u/y000000000108.cfg`), selected with
///   `phone_setting.ring_type` = `Config:<file name>`, the form Yealink's own template text gives
///   for an uploaded tone ("If you set the custom ring tone (Busy.wav) for the phone, the value
///   is: phone_setting.ring_type = Config:Busy.wav", fpbx `yealink/cp860/y000000000037.cfg`);
/// * `wallpaper.url` as `wallpaper_upload.url`, shown with `phone_setting.backgrounds` =
///   `Config:<file name>` (fpbx `t46u/y000000000108.cfg`, "Backgrounds Settings"), on the models
///   that file lists ([`WALLPAPER_MODELS`]);
/// * `language.url` as `gui_lang.url`, selected with `lang.gui` = `<Name>` when the file carries
///   Yealink's name `<NNN>.GUI.<Name>.lang` (wazo `wazo_yealink/v86/templates/T46S.tpl` writes
///   `gui_lang.url = …/004.GUI.French.lang` and its `common.py` `_LOCALE` the matching
///   `lang.gui = French`); another name is uploaded and left for the user to pick;
/// * `directory.url` as `remote_phonebook.data.1.url` with `remote_phonebook.data.1.name`
///   (wazo `wazo_yealink/v87/templates/base.tpl` and `base-dect.tpl`; fpbx
///   `t46u/y000000000108.cfg`), the only one the DECT bases get.
static DESK_RESOURCES: [ParamDef; 8] = [
    ParamDef::global(Source::Key("ringtone.url"), "ringtone.url", same),
    ParamDef::global(Source::Key("ringtone.url"), "phone_setting.ring_type", uploaded),
    ParamDef::global(Source::Key("wallpaper.url"), "wallpaper_upload.url", same),
    ParamDef::global(Source::Key("wallpaper.url"), "phone_setting.backgrounds", uploaded),
    ParamDef::global(Source::Key("language.url"), "gui_lang.url", same),
    ParamDef::global(Source::Key("language.url"), "lang.gui", gui_language),
    ParamDef::global(Source::Key("directory.url"), "remote_phonebook.data.1.url", same),
    ParamDef::global(Source::Key("directory.url"), "remote_phonebook.data.1.name", directory_name),
];

/// The DECT bases' resource rows: the remote phone book only (see [`DESK_RESOURCES`]).
static DECT_RESOURCES: [ParamDef; 2] = [
    ParamDef::global(Source::Key("directory.url"), "remote_phonebook.data.1.url", same),
    ParamDef::global(Source::Key("directory.url"), "remote_phonebook.data.1.name", directory_name),
];

/// The models fpbx's `t46u/y000000000108.cfg` lists as taking a wallpaper ("File Formate:
/// SIP-T57W/T54W/T54S/T52S/T48S/T48G/T46G/T46S/T29G/T46U/T48U").
pub const WALLPAPER_MODELS: &[&str] =
    &["T57W", "T54W", "T54S", "T52S", "T48S", "T48G", "T46G", "T46S", "T29G", "T46U", "T48U"];

/// `Config:<file name>`: a file the phone downloaded (`ringtone.url`, `wallpaper_upload.url`).
fn uploaded(url: &str) -> Option<String> {
    mapping::url_file_name(url).map(|name| format!("Config:{name}"))
}

/// `French` for `…/004.GUI.French.lang`; `None` for any other file name.
fn gui_language(url: &str) -> Option<String> {
    let name = mapping::url_file_name(url)?;
    let mut parts = name.split('.');
    let (number, gui, language, ext) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let ok = parts.next().is_none()
        && !number.is_empty()
        && number.bytes().all(|b| b.is_ascii_digit())
        && gui.eq_ignore_ascii_case("GUI")
        && ext.eq_ignore_ascii_case("lang")
        && !language.is_empty();
    ok.then(|| language.to_string())
}

/// The name the phone shows for the remote phone book.
fn directory_name(_: &str) -> Option<String> {
    Some("Directory".into())
}

/// The resource rows a model's files carry ([`DESK_RESOURCES`], [`DECT_RESOURCES`]).
fn resource_rows(model: &ModelInfo) -> Vec<ParamDef> {
    match model.family {
        "legacy" => Vec::new(),
        "dect" | "dect-dm" => DECT_RESOURCES.to_vec(),
        _ if WALLPAPER_MODELS.contains(&model.name) => DESK_RESOURCES.to_vec(),
        _ => DESK_RESOURCES.iter().filter(|d| !matches!(d.source, Source::Key("wallpaper.url"))).copied().collect(),
    }
}

/// Resource keys a model's files have no parameter for, with why (refused on its devices).
fn unmapped_resources(model: &ModelInfo) -> Vec<(&'static str, &'static str)> {
    const NO_V7X: &str = "no source gives the v7x name of its parameter";
    const NO_DECT: &str = "no source gives a DECT base's parameter for it (wazo's base-dect.tpl has none)";
    match model.family {
        "legacy" => vec![
            ("ringtone.url", NO_V7X),
            ("wallpaper.url", NO_V7X),
            ("language.url", NO_V7X),
            ("directory.url", NO_V7X),
        ],
        "dect" | "dect-dm" => vec![("ringtone.url", NO_DECT), ("wallpaper.url", NO_DECT), ("language.url", NO_DECT)],
        _ if !WALLPAPER_MODELS.contains(&model.name) => {
            vec![("wallpaper.url", "no source lists this model as taking a wallpaper (wallpaper_upload.url)")]
        }
        _ => Vec::new(),
    }
}

/// Settings a legacy device's file has no name for: refused on the device, with the reason.
/// (`http.*` stay allowed: the server checks them, the phone is then configured by hand.)
const LEGACY_UNMAPPED: &[(&str, &str)] = &[
    ("provisioning.interval_minutes", "no source gives the v7x name of the polling interval"),
    ("yealink.aes_key_file", "no source gives the v7x name of the key-file switch"),
];

/// `^y0{9}\d{3}\.cfg$`, any case: every common-file name (the fpbx per-model templates use
/// numbers that do not always match the firmware prefix).
pub fn is_common_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.len() == 17
        && n.starts_with("y000000000")
        && n.ends_with(".cfg")
        && n.as_bytes()[10..13].iter().all(u8::is_ascii_digit)
}

/// A device's own config file, `<mac>.cfg`.
fn device_spec(mac: Mac) -> FileSpec {
    FileSpec {
        name: mac.file_name(".cfg"),
        aliases: Vec::new(),
        template: "yealink/mac.cfg.j2",
        scope: FileScope::Device,
        content_type: "text/plain",
        name_pattern: None,
    }
}

/// Whether `name` is `<mac>.cfg` in any case (what [`FileSpec::matches`] accepts for
/// [`device_spec`]): exactly what [`Vendor::mac_in_file_name`] reads as `mac`, compared digit by
/// digit in place (this runs on every device file request), without formatting the list's
/// names.
fn names_mac_cfg(name: &str, mac: Mac) -> bool {
    // Each of the name's digits against the MAC's own, in either case: the byte itself, or for
    // a letter digit the byte with its case bit set (only `A`-`F` and `a`-`f` then give `a`-`f`).
    // Every request for a phone's own file asks this, twice (about 230 instructions each when
    // the name's digits were each decoded with `to_digit`).
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let same = |c: u8, want: u8| c == want || (want >= b'a' && c | 0x20 == want);
    let name = name.as_bytes();
    name.len() == 16
        && name[12..].eq_ignore_ascii_case(b".cfg")
        && !mac.is_placeholder()
        && mac
            .bytes()
            .iter()
            .zip(name[..12].chunks_exact(2))
            .all(|(&b, pair)| same(pair[0], HEX[usize::from(b >> 4)]) && same(pair[1], HEX[usize::from(b & 0x0f)]))
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

/// Parses the model, firmware and MAC tokens of the User-Agent forms quoted in wazo
/// `common/common.py` and `v8x/common.py` and in fpbx `app/provision/index.php`.
fn parse_tokens(ua: &str) -> Option<(&str, Option<String>, Option<Mac>)> {
    // The forms below read at most five tokens, and one of them needs to know there are exactly
    // three: the first six are kept on the stack (this runs on every request a phone makes).
    // User-Agents are ASCII: splitting at ASCII whitespace is the same split, without decoding
    // characters.
    let mut tokens = [""; 6];
    let mut count = 0;
    for (slot, token) in tokens.iter_mut().zip(ua::unquote(ua).split_ascii_whitespace()) {
        *slot = token;
        count += 1;
    }
    let t = &tokens[..count];
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
    Some((model, firmware, mac))
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

/// The default templates, compiled in (an admin overrides them by name, see [`crate::render`]).
static TEMPLATES: &[(&str, &str)] = &[
    ("yealink/common.cfg.j2", include_str!("../templates/yealink/common.cfg.j2")),
    ("yealink/mac.cfg.j2", include_str!("../templates/yealink/mac.cfg.j2")),
];

impl Vendor for Yealink {
    /// Yealink's remote phone book: `<YealinkIPPhoneDirectory>` with one `<DirectoryEntry>` per
    /// contact, its `<Name>` and a `<Telephone>` for each number (fpbx
    /// `resources/templates/provision/yealink/t46s/directory.xml`).
    fn directory(&self, contacts: &[Contact]) -> Option<DirectoryFile> {
        Some(directory::name_telephone("YealinkIPPhoneDirectory", None, contacts, false))
    }

    fn id(&self) -> &'static str {
        "yealink"
    }

    fn check_sync_events(&self) -> CheckSyncEvents {
        // With sip.notify_reboot_enable = 0 (what the templates write by default) the phone reboots
        // only when the header says reboot=true (Yealink admin guide, "Check-sync").
        CheckSyncEvents::check_sync("Yealink admin guide (sip.notify_reboot_enable); FusionPBX event_notify")
    }

    fn pnp_dialect(&self) -> PnpDialect {
        // A directory: the phone then fetches y0000000000XX.cfg and <mac>.cfg under it.
        PnpDialect::DIRECTORY
    }

    fn templates(&self) -> &'static [(&'static str, &'static str)] {
        TEMPLATES
    }

    fn secret_params(&self) -> &'static [&'static str] {
        SECRET_PARAMS
    }

    fn display_name(&self) -> &'static str {
        "Yealink"
    }

    /// Refused when a `vendor.sip.notify_reboot_enable = 2` override makes the phone ignore
    /// check-sync, or when `sip.notify_reboot = 0` (`notify_reboot`).
    fn reboot_refusal(&self, model: &'static ModelInfo, settings: &Settings) -> Option<String> {
        let params = self.parameters(model, settings, FileScope::Device);
        mapping::reboot_refused_by(&params, settings, "sip.notify_reboot_enable", |v| v.trim() != "2")
            .or_else(|| mapping::reboot_refused_by_setting(settings))
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
        // A token spelling a model's name exactly (`T46S`, nearly every phone) is that model:
        // `model` would trim it and strip prefixes no model name has (a test checks the
        // table), then find the same first exact match, about 100 instructions more per request.
        let known = MODELS.iter().find(|m| m.name == model).or_else(|| self.model(model));
        let model = known.map_or_else(|| Cow::Owned(model.to_string()), |m| Cow::Borrowed(m.name));
        Some(UserAgentInfo { vendor: "yealink", model: Some(model), firmware, mac })
    }

    fn device_files(&self, model: &'static ModelInfo, mac: Mac) -> Vec<FileSpec> {
        model.common_file.map(common_spec).into_iter().chain([device_spec(mac)]).collect()
    }

    /// The device's own file is always `<mac>.cfg`, whatever the model.
    fn own_file(&self, _model: &'static ModelInfo, mac: Mac) -> Option<FileSpec> {
        Some(device_spec(mac))
    }

    /// The device's own `<mac>.cfg` is recognised without formatting the list's names (the
    /// common file's name is 17 characters, so never both).
    fn device_file(&self, model: &'static ModelInfo, mac: Mac, requested: &str) -> Option<FileSpec> {
        if names_mac_cfg(requested, mac) {
            return Some(device_spec(mac));
        }
        self.device_files(model, mac).into_iter().find(|f| f.matches(requested))
    }

    fn mac_in_file_name(&self, file_name: &str) -> Option<Mac> {
        ua::mac_file(file_name, &["cfg"])
    }

    /// `<mac>.cfg` compared in place: the same answer as `mac_in_file_name` (12 hex digits of
    /// any case and `.cfg`, never a placeholder), without parsing the name.
    fn names_mac(&self, file_name: &str, mac: Mac) -> bool {
        names_mac_cfg(file_name, mac)
    }

    /// `<mac>.cfg` is `own_file` (`device_spec`), and what `device_file` answers first.
    fn is_own_file(&self, _model: &'static ModelInfo, mac: Mac, requested: &str) -> bool {
        names_mac_cfg(requested, mac)
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
        let defs: &[ParamDef] = match model.family {
            "dect-dm" => &DECT_DM_PARAMS,
            "legacy" => &LEGACY_PARAMS,
            _ => &DESK_PARAMS,
        };
        let resources_and_keys = |out: &mut Vec<VendorParam>| {
            let at = out.iter().position(|p| p.line.is_some()).unwrap_or(out.len());
            let resources = mapping::key_rows(&resource_rows(model), settings, scope);
            out.splice(at..at, resources);
            if let (FileScope::Device, Ok(caps)) = (scope, key_caps(model)) {
                out.extend(crate::keys::supported(settings, &caps).iter().flat_map(key_params));
            }
        };
        mapping::build_with(defs, settings, scope, "", resources_and_keys)
    }

    /// A device file is AES-encrypted with the merged `yealink.aes_key`, a common file with the
    /// global `yealink.common_aes_key` (a common file's settings are the global ones). A key that
    /// the settings make unservable ([`key_file_problem`]) fails the render with the reason.
    fn seal(&self, file: &FileSpec, settings: &Settings, rendered: Vec<u8>) -> Result<Vec<u8>, String> {
        let name = key_setting(file.scope);
        let Some(key) = mapping::get(settings, name) else { return Ok(rendered) };
        if let Some(problem) = key_file_problem(settings, file.scope) {
            return Err(problem);
        }
        let padding = yealink_aes::Padding::from_setting(mapping::get(settings, "yealink.aes_padding"));
        yealink_aes::encrypt(&rendered, key, padding).map_err(|e| format!("{name}: {e}"))
    }

    /// A device's own settings: the common key belongs to the global level, the key-file rules of
    /// [`key_file_problem`], and what the legacy dialect cannot write.
    fn validate_device(&self, model: &'static ModelInfo, settings: &Settings) -> Result<(), crate::Refused> {
        mapping::check_max_lines(model, settings)?;
        if mapping::get(settings, COMMON_KEY).is_some() {
            return Err(crate::Refused(format!(
                "{COMMON_KEY} is a global setting: the common file is rendered from global settings only"
            )));
        }
        if let Some(problem) = key_file_problem(settings, FileScope::Device) {
            return Err(problem.into());
        }
        crate::keys::check_device(settings, "Yealink", model, key_caps(model))?;
        if let Some((key, why)) =
            unmapped_resources(model).into_iter().find(|(key, _)| mapping::get(settings, key).is_some())
        {
            return Err(crate::Refused(format!("{key} cannot be provisioned on the {}: {why}", model.name)));
        }
        if model.family == "legacy" {
            for (key, why) in LEGACY_UNMAPPED {
                if mapping::get(settings, key).is_some_and(|v| *key != "yealink.aes_key_file" || v == "1") {
                    return Err(crate::Refused(format!(
                        "{key} cannot be provisioned on the {} (firmware v7x and older): {why}",
                        model.name
                    )));
                }
            }
        }
        Ok(())
    }

    fn setting_keys(&self) -> &'static [VendorKey] {
        SETTING_KEYS
    }

    /// `<stem>_Security.enc` (any case) belongs to `<stem>.cfg`.
    fn key_file_name(&self, file_name: &str) -> Option<KeyFileName> {
        let stem = key_file_stem(file_name)?;
        Some(KeyFileName { of: format!("{stem}.cfg"), name: format!("{stem}_Security.enc") })
    }

    /// The key for `scope` wrapped with the fixed key-file key ([`yealink_aes::wrap_key`]), when
    /// `yealink.aes_key_file = 1` and the settings hold a key.
    fn key_file(&self, settings: &Settings, scope: FileScope) -> Result<Option<Vec<u8>>, crate::Refused> {
        let Some(key) = mapping::get(settings, key_setting(scope)) else { return Ok(None) };
        if mapping::get(settings, "yealink.aes_key_file") != Some("1") {
            return Ok(None);
        }
        if let Some(problem) = key_file_problem(settings, scope) {
            return Err(problem.into());
        }
        Ok(yealink_aes::wrap_key(key).ok())
    }

    /// The common file's key with key files switched on ([`key_file_problem`]).
    fn validate_global(&self, global: &Settings) -> Result<(), crate::Refused> {
        key_file_problem(global, FileScope::Model).map_or(Ok(()), |p| Err(p.into()))
    }

    /// Both key files the device may ask for: its own and the common file's (the common key is
    /// global, the key-file switch may come from any level).
    fn validate_merged(&self, _model: &'static ModelInfo, merged: &Settings) -> Result<(), crate::Refused> {
        crate::keys::check_merged(merged)?;
        let problem =
            key_file_problem(merged, FileScope::Device).or_else(|| key_file_problem(merged, FileScope::Model));
        problem.map_or(Ok(()), |p| Err(p.into()))
    }
}

/// Line-key counts per model (wazo `wazo_yealink/v87/common.py`, `_NB_LINEKEY`); a model it does
/// not list takes keys without a known bound, a model with 0 takes none.
fn line_key_count(model: &str) -> Option<u32> {
    Some(match model {
        "CP920" | "CP925" | "T30" | "T30P" | "AX83H" | "AX86R" => 0,
        "T31" | "T31G" | "T31P" | "T31W" => 2,
        "T33G" | "T33P" | "T34W" => 12,
        "T41S" | "T41U" | "T42S" | "T42U" | "T43U" => 15,
        "T27G" | "T53" | "T53W" => 21,
        "T44W" => 24,
        "T46S" | "T46U" | "T54S" | "T54W" | "T58A" | "T58W" => 27,
        "T48S" | "T48U" | "T57W" => 29,
        "T73U" | "T73W" => 48,
        "T74U" | "T74W" => 60,
        "T85W" => 72,
        "T77U" | "T87W" | "T88W" | "T88V" => 95,
        _ => return None,
    })
}

/// Expansion modules a model chains and their key count (wazo v87 `_expmod_by_model`: EXP40 on
/// T27G/T46S/T48S, six of 40 keys; EXP43 on T4xU and EXP50 on T5x, three of 60; EXP55 on T7x/T8x,
/// three of 78).
fn expansion(model: &str) -> (u32, Option<u32>) {
    match model {
        "T27G" | "T46S" | "T48S" => (6, Some(40)),
        "T43U" | "T46U" | "T48U" => (3, Some(60)),
        m if m.starts_with("T5") => (3, Some(60)),
        m if m.starts_with("T7") || m.starts_with("T8") => (3, Some(78)),
        _ => (0, None),
    }
}

/// What a model's file can carry as `linekey.N.*` / `expansion_module.M.key.N.*` (Yealink
/// SIP-T2/T4/T5 administrator's guide, "Line Keys" and "Expansion Module Keys"; wazo
/// `wazo_yealink/v87/common.py`, `BaseYealinkFunckeyGenerator`).
fn key_caps(model: &ModelInfo) -> Result<crate::keys::KeyCaps, &'static str> {
    match model.family {
        "desk" => {}
        "legacy" => return Err("no source gives the v7x names of its keys"),
        _ => return Err("a DECT base's file has no programmable keys"),
    }
    let keys = line_key_count(model.name);
    if keys == Some(0) {
        return Err("it has no programmable line keys");
    }
    let (modules, module_keys) = expansion(model.name);
    Ok(crate::keys::KeyCaps {
        types: &[KeyType::Line, KeyType::Blf, KeyType::SpeedDial, KeyType::Park],
        keys,
        modules,
        module_keys,
        line_on_every_type: true,
    })
}

/// Yealink key type codes: 15 line, 16 BLF, 13 speed dial, 10 call park (wazo v87
/// `_format_funckey_*`; fusionpbx `app/devices/resources/classes/yealink.php`).
fn key_type_code(t: KeyType) -> &'static str {
    match t {
        KeyType::Line => "15",
        KeyType::Blf => "16",
        KeyType::SpeedDial => "13",
        KeyType::Park => "10",
    }
}

/// One key's rows: `linekey.N.*` or `expansion_module.M.key.N.*` with `type`, `value`, `line`
/// (the account, 1-based on v8x firmware) and `label`.
fn key_params(key: &crate::keys::ProgKey) -> Vec<VendorParam> {
    let prefix = match key.pos.module {
        None => format!("linekey.{}", key.pos.index),
        Some(m) => format!("expansion_module.{m}.key.{}", key.pos.index),
    };
    let row = |field: &str, value: &str| VendorParam {
        name: format!("{prefix}.{field}"),
        value: value.to_string(),
        line: None,
        group: "",
    };
    let mut out = vec![row("type", key_type_code(key.kind))];
    out.extend(key.value.as_deref().map(|v| row("value", v)));
    out.push(row("line", &key.line_or_first().to_string()));
    out.extend(key.label.as_deref().map(|l| row("label", l)));
    out
}

/// The global setting holding the common file's key ("Common AES key").
pub const COMMON_KEY: &str = "yealink.common_aes_key";

/// The `yealink.*` settings: the AES keys of the device files (`yealink.aes_key`, "MAC-Oriented
/// AES key") and of the common file ([`COMMON_KEY`], global only, since the common file is
/// rendered from global settings), the padding ([`yealink_aes`]) and the key-file switch
/// (`static.auto_provision.aes_key_in_file`).
static SETTING_KEYS: &[VendorKey] = &[
    VendorKey::secret("yealink.aes_key", aes_key),
    VendorKey::secret(COMMON_KEY, aes_key).global_only(),
    VendorKey::plain("yealink.aes_padding", aes_padding),
    VendorKey::plain("yealink.aes_key_file", setting_keys::flag),
];

/// Characters Yealink accepts in an AES key besides letters and digits (Yealink "Configuration
/// Encryption Tool" guide: 16 or 32 characters from 0-9 A-Z a-z and these).
const KEY_CHARS: &str = "#$%*+,-.:=?@[]^_{}~";

fn aes_key(value: &str) -> Result<String, String> {
    let ok_len = value.len() == 16 || value.len() == 32;
    let ok_chars = value.chars().all(|c| c.is_ascii_alphanumeric() || KEY_CHARS.contains(c));
    if !ok_len || !ok_chars {
        return Err(format!(
            "must be 16 or 32 characters from 0-9 A-Z a-z {KEY_CHARS} (got {} characters)",
            value.chars().count()
        ));
    }
    Ok(value.to_string())
}

fn aes_padding(value: &str) -> Result<String, String> {
    match value.to_ascii_lowercase().as_str() {
        p @ ("pkcs7" | "space") => Ok(p.to_string()),
        _ => Err("must be pkcs7 (the default) or space".into()),
    }
}

/// The suffix of a key file's name.
const KEY_FILE_SUFFIX: &str = "_security.enc";

/// The name a key file belongs to (`001565aabbcc` for `001565aabbcc_Security.enc`), if it is
/// one (Yealink "Configuration Encryption Tool" guide: `<name>_Security.enc`).
fn key_file_stem(file: &str) -> Option<&str> {
    let split = file.len().checked_sub(KEY_FILE_SUFFIX.len())?;
    let (stem, suffix) = (file.get(..split)?, file.get(split..)?);
    (suffix.eq_ignore_ascii_case(KEY_FILE_SUFFIX) && !stem.is_empty()).then_some(stem)
}

/// The setting holding the key for a file of `scope`: the common key for common files, the
/// device's own (`yealink.aes_key`, "MAC-Oriented AES key") for `<mac>.cfg`.
pub fn key_setting(scope: FileScope) -> &'static str {
    match scope {
        FileScope::Model => COMMON_KEY,
        FileScope::Device => "yealink.aes_key",
    }
}

/// Why a file of `scope` or its key file cannot be served with these (merged) settings: a
/// 32-character key while `yealink.aes_key_file = 1` (a key file holds 16 characters only), or a
/// device key equal to the common key (the common key protects a file served to anyone, and its
/// key file is open to anyone). The message names settings, never a key.
///
/// ```
/// use sipprov_model::Settings;
/// use sipprov_vendors::{yealink::key_file_problem, FileScope};
/// let s = Settings::parse_assignments(["yealink.aes_key=0123456789abcdef0123456789abcdef", "yealink.aes_key_file=1"]).unwrap();
/// assert!(key_file_problem(&s, FileScope::Device).unwrap().contains("16-character"));
/// let s = Settings::parse_assignments(["yealink.aes_key=0123456789abcdef", "yealink.aes_key_file=1"]).unwrap();
/// assert_eq!(key_file_problem(&s, FileScope::Device), None);
/// ```
pub fn key_file_problem(settings: &Settings, scope: FileScope) -> Option<String> {
    let name = key_setting(scope);
    let key = mapping::get(settings, name)?;
    if scope == FileScope::Device && mapping::get(settings, COMMON_KEY) == Some(key) {
        return Some(format!(
            "yealink.aes_key must differ from {COMMON_KEY}: the common key protects a file served to anyone, \
             and its key file is open to anyone"
        ));
    }
    let key_files = mapping::get(settings, "yealink.aes_key_file") == Some("1");
    (key_files && key.len() != 16).then(|| {
        format!(
            "{name} has {} characters, but yealink.aes_key_file=1 needs a 16-character key: a Yealink key \
             file (_Security.enc) holds 16 characters only. Use a 16-character key, or set \
             yealink.aes_key_file=0 and enter the key on the phone",
            key.len()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `parse_user_agent` takes a token equal to a model's name as that model without asking
    /// `model`: the same answer only while no name has what `model` trims or strips.
    #[test]
    fn an_exact_model_name_is_what_model_finds() {
        for m in MODELS {
            assert_eq!(m.name, m.name.trim(), "{}", m.name);
            for prefix in ["Yealink", "SIP-"] {
                assert!(!m.name.get(..prefix.len()).is_some_and(|p| p.eq_ignore_ascii_case(prefix)), "{}", m.name);
            }
            let found = Yealink.model(m.name).unwrap();
            assert!(std::ptr::eq(found, MODELS.iter().find(|k| k.name == m.name).unwrap()), "{}", m.name);
            let ua = format!("Yealink SIP-{} 66.86.0.15 00:15:65:aa:bb:cc", m.name);
            assert_eq!(Yealink.parse_user_agent(&ua).unwrap().model.as_deref(), Some(found.name), "{ua}");
        }
    }

    #[test]
    fn the_device_file_for_a_name_is_the_lists_match() {
        let mac: Mac = "001565aabbcc".parse().unwrap();
        let model = Yealink.model("T46S").unwrap();
        let names = [
            "001565aabbcc.cfg",
            "001565AABBCC.CFG",
            "001565aabbcd.cfg",
            "001565aabbcc.xml",
            "001565aabbc.cfgx",
            "y000000000028.cfg",
            "Y000000000028.CFG",
            "y000000000066.cfg",
            "favicon.ico",
        ];
        assert!(names_mac_cfg("001565aabbcc.cfg", mac) && names_mac_cfg("001565AABBCC.Cfg", mac));
        assert!(!names_mac_cfg("001565aabbcd.cfg", mac) && !names_mac_cfg("001565aabbcc.xml", mac));
        // The in-place comparison agrees with reading the MAC out of the name.
        let placeholder = Mac::from_bytes([0; 6]);
        for name in ["001565aabbcc.cfg", "001565AaBbCc.CFG", "001565aabbc.cfg", "001565aabbccc.cfg", "x01565aabbcc.cfg"]
            .into_iter()
            .chain(["001565aabbcc.cfg.cfg", "001565aabbcc-local.cfg", "000000000000.cfg", "001565aabbcc"])
            .chain(["\u{10}01565aabbcc.cfg", "001565aabb\u{03}c.cfg", "001565aabbcG.cfg", "001565aabbc\u{e9}.cfg"])
        {
            for m in [mac, placeholder] {
                assert_eq!(names_mac_cfg(name, m), ua::mac_file(name, &["cfg"]) == Some(m), "{name} {m}");
            }
        }
        for name in names {
            let listed = Yealink.device_files(model, mac).into_iter().find(|f| f.matches(name));
            assert_eq!(Yealink.device_file(model, mac, name), listed, "{name}");
        }
    }

    #[test]
    fn key_file_names() {
        assert_eq!(key_file_stem("001565aabbcc_Security.enc"), Some("001565aabbcc"));
        assert_eq!(key_file_stem("y000000000066_security.ENC"), Some("y000000000066"));
        assert_eq!(key_file_stem("_Security.enc"), None);
        assert_eq!(key_file_stem("001565aabbcc.cfg"), None);
        let names = Yealink.key_file_name("y000000000066_security.ENC").unwrap();
        assert_eq!((names.of.as_str(), names.name.as_str()), ("y000000000066.cfg", "y000000000066_Security.enc"));
    }

    #[test]
    fn every_secret_row_is_declared() {
        assert_eq!(mapping::undeclared_secret_rows(&DESK_PARAMS, |n| Yealink.is_secret_param(n)), Vec::<String>::new());
        assert_eq!(
            mapping::undeclared_secret_rows(&DECT_DM_PARAMS, |n| Yealink.is_secret_param(n)),
            Vec::<String>::new()
        );
        assert_eq!(
            mapping::undeclared_secret_rows(&LEGACY_PARAMS, |n| Yealink.is_secret_param(n)),
            Vec::<String>::new()
        );
    }
}
