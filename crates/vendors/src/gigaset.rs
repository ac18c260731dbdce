//! Gigaset N610 / N670 / N770 / N870 / N870E IP PRO ("Nx70", provisioning format version 1.1).
//!
//! Models: the Nx70 DECT bases (the model table cites its source). Not accepted, because they are
//! provisioned another way: the N510 and N720 (wazo gives them their own plugins, `N510/` and
//! `N720/`, with other files and parameters), the older C/S-series consumer bases (wazo `C470/`,
//! `C590/`: configured through the web interface) and the Maxwell desk phones (no source
//! consulted here). Gigaset sells no ATA.
//!
//! One XML file per base, `<MAC>.xml` (Gigaset wiki, provisioning format version 1.1,
//! <https://teamwork.gigaset.com/gigawiki/pages/viewpage.action?pageId=1268679466>). Gigaset's
//! examples use an upper-case MAC, wazo (`Nx70_83_v2_65_0/common.py`) lower case, so names match
//! ignoring case. When the provisioning URL
//! names only a server the base first asks for `provisioning.xml`, which is therefore an alias
//! of the device file (the server identifies the base by the MAC in its UA).
//!
//! From wazo `wazo-gigaset/N870_83_v2_39_0/templates/base.tpl`: `DmGlobal.0.NtpServer`
//! (`time.ntp_server`), `DmGlobal.0.TimeZone` and `WebUIAccounts.1.Password` (`admin.password`).
//! wazo writes its `timezone` setting, an IANA name, into `DmGlobal.0.TimeZone` as is, so the
//! base applies the zone's daylight-saving rule itself; a fixed offset is written as the
//! equivalent IANA `Etc/GMT∓N` zone (POSIX sign: `+1` is `Etc/GMT-1`), and an offset that is not
//! a whole number of hours, which has no such zone, is refused.
//!
//! Refused when set on a device, for lack of a verified parameter name (neither Gigaset's wiki nor
//! wazo's Nx70 template names one):
//! `provisioning.interval_minutes` and `line.N.label`; and `firmware.url` without a version
//! (`gigaset.firmware_version`, else the server-side `firmware.version`, which the server also
//! sets when it derives the URL from a stored image), since the `<firmware>` element needs
//! both. With both, the file
//! carries `<firmware><file version=… url=…/></firmware>` (wazo
//! `Nx70_83_v2_65_0/templates/base.tpl`), from the device's merged settings. Also refused:
//! `ringtone.url`, `wallpaper.url`, `language.url` (no source names a download for them) and
//! `directory.url` (the base's `XMLDir.1.ServerURL` is a search service, not a file).

use std::borrow::Cow;

use sipprov_model::{LineField, Mac, Settings};

use crate::events::CheckSyncEvents;
use crate::mapping::{self, same, ParamDef, Source};
use crate::pnp::PnpDialect;
use crate::ua;
use crate::{FileScope, FileSpec, ModelInfo, UserAgentInfo, Vendor, VendorParam};

/// The Gigaset vendor module.
pub struct Gigaset;

const fn nx70(name: &'static str, aliases: &'static [&'static str]) -> ModelInfo {
    ModelInfo { name, family: "nx70", aliases, common_file: None, max_lines: None }
}

/// The Nx70 bases wazo-provd-plugins provisions with this format and firmware 83.V2.65.0
/// (`plugins/wazo_gigaset/Nx70_83_v2_65_0/entry.py`: N610, N670, N770, N870, N870E IP PRO, one
/// `common/templates/base.tpl`).
static MODELS: &[ModelInfo] =
    &[nx70("N610", &[]), nx70("N670", &[]), nx70("N770", &[]), nx70("N870", &[]), nx70("N870E", &[])];

/// 1 UDP, 2 TCP, 3 TLS (wazo Nx70 `_SIP_TRANSPORT`).
fn transport(v: &str) -> Option<String> {
    Some(
        match v {
            "tcp" => "2",
            "tls" => "3",
            _ => "1",
        }
        .into(),
    )
}

/// `CheckSyncRebootEnabled = 1` lets `check-sync;reboot=true` reboot the base (firmware >= 2.52,
/// Gigaset pro-wiki "FAQ - Auto provisioning: Check-sync with reboot"); 0 makes it
/// re-provision only. Written 1 unless `sip.notify_reboot = 0`, so `device notify --reboot`
/// reboots by default; the base still ignores a reboot asked by an anonymous check-sync.
fn reboot_enabled(v: &str) -> Option<String> {
    Some(if v == "0" { "0" } else { "1" }.into())
}

/// `DmGlobal.0.TimeZone`: the IANA name; a whole-hour offset as `Etc/GMT∓N` (see the module doc).
fn iana_zone(zone: &str) -> Option<String> {
    match sipprov_model::tz::Zone::parse(zone)? {
        sipprov_model::tz::Zone::Named(name) => Some(name),
        sipprov_model::tz::Zone::Offset(0) => Some("Etc/UTC".into()),
        sipprov_model::tz::Zone::Offset(m) if m % 60 == 0 => {
            Some(format!("Etc/GMT{}{}", if m > 0 { '-' } else { '+' }, m.abs() / 60))
        }
        sipprov_model::tz::Zone::Offset(_) => None,
    }
}

const REBOOT_PARAM: &str = "SystemSettings.global.CheckSyncRebootEnabled";

fn provider_zero(_: &str) -> Option<String> {
    Some("0".into())
}

/// Parameter names from wazo `plugins/wazo_gigaset/Nx70_83_v2_65_0/templates/base.tpl`. All lines
/// share provider 0, as in that template; [`Gigaset::validate_device`] refuses lines that would
/// need a second provider.
static PARAMS: &[ParamDef] = &[
    ParamDef::device(Source::Key("provisioning.url"), "Provisioning.global.ProvisioningServer", same),
    ParamDef::device(Source::Key("admin.password"), "WebUIAccounts.1.Password", same),
    ParamDef::device(Source::Key("time.ntp_server"), "DmGlobal.0.NtpServer", same),
    ParamDef::device(Source::Key("time.zone"), "DmGlobal.0.TimeZone", iana_zone),
    ParamDef::device(Source::Key("sip.notify_reboot"), REBOOT_PARAM, reboot_enabled).or("1"),
    ParamDef::device(Source::FirstLine(LineField::Registrar), "SipProvider.0.Name", same),
    ParamDef::device(Source::FirstLine(LineField::Registrar), "SipProvider.0.Domain", same),
    ParamDef::device(Source::FirstLine(LineField::Registrar), "SipProvider.0.ProxyServerAddress", same),
    ParamDef::device(Source::FirstLine(LineField::Port), "SipProvider.0.ProxyServerPort", same),
    ParamDef::device(Source::FirstLine(LineField::Registrar), "SipProvider.0.RegServerAddress", same),
    ParamDef::device(Source::FirstLine(LineField::Transport), "SipProvider.0.TransportProtocol", transport),
    ParamDef::device(Source::Line(LineField::AuthUsername), "SipAccount.{hs}.AuthName", same),
    ParamDef::device(Source::Line(LineField::Password), "SipAccount.{hs}.AuthPassword", same),
    ParamDef::device(Source::Line(LineField::Username), "SipAccount.{hs}.UserName", same),
    ParamDef::device(Source::Line(LineField::DisplayName), "SipAccount.{hs}.DisplayName", same),
    ParamDef::device(Source::LineAlways, "SipAccount.{hs}.ProviderId", provider_zero),
];

/// Parses `[Gigaset ]<model>/<version>[+build…];<MAC>[;Handset=n]`, optionally quoted
/// (the regex in wazo `plugins/wazo_gigaset/Nx70_83_v2_65_0/common.py`).
fn parse(ua: &str) -> Option<(String, String, Option<Mac>)> {
    let t = ua::unquote(ua);
    let (product, rest) = t.split_once('/')?;
    let product = product.strip_prefix("Gigaset ").unwrap_or(product);
    // `N870 IP PRO`, `N720-DM-PRO`: the model is the first word.
    let model = product.split([' ', '-']).next()?;
    let b = model.as_bytes();
    if b.len() < 4 || b[0] != b'N' || !b[1..4].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut fields = rest.split(';');
    let version = fields.next()?.trim();
    // Versions look like `83.V2.11.0+build.a546b91` or `42.245.00.000.000`.
    if version.split('+').next()?.split('.').count() < 3 {
        return None;
    }
    let mac = fields.next().and_then(ua::plain_mac);
    Some((model.to_string(), version.to_string(), mac))
}

/// Gigaset parameters holding secrets: the handset accounts' `SipAccount.NNNNN.AuthPassword`,
/// the web UI password `WebUIAccounts.N.Password` and the DECT manager password `DMPpasswd`
/// (wazo `wazo-gigaset/N870_83_v2_39_0/templates/base.tpl`); the N510 account password
/// `BS_IP_Data1.aucS_SIP_PASSWORD[_N]` (wazo `wazo-gigaset/N510/templates/base.tpl`) and its
/// provisioning password `S_PROV_PASSWORD` (Gigaset pro-wiki, "Provisioning step by step / HTTP
/// digest").
pub const SECRET_PARAMS: &[&str] = &[
    "SipAccount.{n}.AuthPassword",
    "WebUIAccounts.{n}.Password",
    "DMPpasswd",
    "BS_IP_Data1.aucS_SIP_PASSWORD",
    "BS_IP_Data1.aucS_SIP_PASSWORD_{n}",
    "BS_IP_Data3.aucS_SIP_PASSWORD",
    "S_PROV_PASSWORD",
];

/// The default templates, compiled in (an admin overrides them by name, see [`crate::render`]).
static TEMPLATES: &[(&str, &str)] = &[("gigaset/nx70.xml.j2", include_str!("../templates/gigaset/nx70.xml.j2"))];

impl Vendor for Gigaset {
    fn id(&self) -> &'static str {
        "gigaset"
    }

    fn check_sync_events(&self) -> CheckSyncEvents {
        // reboot=true needs firmware >= 2.52 and CheckSyncRebootEnabled=1 (Gigaset wiki).
        CheckSyncEvents::check_sync("Gigaset wiki 'Check-sync with reboot'")
    }

    fn pnp_dialect(&self) -> PnpDialect {
        // The file itself: sipprov serves Gigaset its <MAC>.xml; the phone takes no credentials in the
        // URL and tries its MAC / MAC-ID first.
        PnpDialect { path: "{MAC}.xml", userinfo: false }
    }

    fn templates(&self) -> &'static [(&'static str, &'static str)] {
        TEMPLATES
    }

    fn secret_params(&self) -> &'static [&'static str] {
        SECRET_PARAMS
    }

    fn display_name(&self) -> &'static str {
        "Gigaset"
    }

    fn models(&self) -> &'static [ModelInfo] {
        MODELS
    }

    fn model(&self, name: &str) -> Option<&'static ModelInfo> {
        let n = mapping::normalize(name);
        let n = n.strip_prefix("GIGASET").unwrap_or(&n);
        let n = n.strip_suffix("PRO").unwrap_or(n);
        let n = n.strip_suffix("IP").or_else(|| n.strip_suffix("DM")).unwrap_or(n);
        mapping::find_model(MODELS, n)
    }

    fn parse_user_agent(&self, ua: &str) -> Option<UserAgentInfo> {
        let (model, firmware, mac) = parse(ua)?;
        let model = self.model(&model).map_or(Cow::Owned(model), |m| Cow::Borrowed(m.name));
        Some(UserAgentInfo { vendor: "gigaset", model: Some(model), firmware: Some(firmware), mac })
    }

    fn device_files(&self, _model: &'static ModelInfo, mac: Mac) -> Vec<FileSpec> {
        vec![FileSpec {
            name: format!("{}.xml", mac.upper()),
            aliases: vec!["provisioning.xml".into()],
            template: "gigaset/nx70.xml.j2",
            scope: FileScope::Device,
            content_type: "application/xml",
            name_pattern: None,
        }]
    }

    fn mac_in_file_name(&self, file_name: &str) -> Option<Mac> {
        ua::mac_file(file_name, &["xml"])
    }

    fn model_file(&self, _file_name: &str, _ua_model: Option<&str>) -> Option<(&'static ModelInfo, FileSpec)> {
        // No common file: `provisioning.xml` without a MAC in the UA names no device.
        None
    }

    fn parameters(&self, _model: &'static ModelInfo, settings: &Settings, scope: FileScope) -> Vec<VendorParam> {
        mapping::build(PARAMS, settings, scope, "")
    }

    /// The User-Agent reports `83.V2.65.0+build.8504c90` where the `<firmware>` element and the
    /// image name say `2.65.0` and `V2.65.0` (wazo `Nx70_83_v2_65_0/templates/base.tpl`:
    /// `<file version="2.65.0" url=".../Gigaset-Nx70-V2.65.0-build.8504c90.bin"/>`): the
    /// versions are compared without the product prefix `83.` and the `V`, and the builds only
    /// when both name one.
    fn firmware_matches(&self, reported: &str, target: &str) -> bool {
        let (a, b) = (release(reported), release(target));
        a.0 == b.0 && (a.1.is_none() || b.1.is_none() || a.1 == b.1)
    }

    /// Refused when the file's `CheckSyncRebootEnabled` is not 1.
    fn reboot_refusal(&self, model: &'static ModelInfo, settings: &Settings) -> Option<String> {
        let params = self.parameters(model, settings, FileScope::Device);
        mapping::reboot_refused_by(&params, settings, REBOOT_PARAM, |v| v.trim() == "1")
    }

    fn validate_device(&self, model: &'static ModelInfo, settings: &Settings) -> Result<(), crate::Refused> {
        mapping::check_max_lines(model, settings)?;
        crate::keys::check_device(
            settings,
            "Gigaset",
            model,
            Err("a Gigaset DECT base's file has no programmable keys"),
        )?;
        mapping::check_one_server(settings, "the Gigaset file's one SIP provider")?;
        if let Some(zone) = mapping::get(settings, "time.zone").filter(|z| iana_zone(z).is_none()) {
            return Err(crate::Refused(format!(
                "time.zone = {zone:?}: Gigaset bases take an IANA zone name, and a UTC offset that is not whole \
                 hours has no Etc/GMT zone; use a name such as Asia/Kolkata"
            )));
        }
        if mapping::get(settings, "firmware.url").is_some()
            && mapping::get(settings, "gigaset.firmware_version").is_none()
            && mapping::get(settings, "firmware.version").is_none()
        {
            return Err("firmware.url needs gigaset.firmware_version (or firmware.version) on Gigaset devices: the \
                        <firmware> element names both"
                .into());
        }
        Ok(mapping::refuse_unmapped(
            settings,
            "Gigaset",
            &[
                ("provisioning.interval_minutes", "no verified parameter for the polling interval"),
                ("line.N.label", "handsets show the display name; there is no separate label"),
                ("ringtone.url", "neither Gigaset's wiki nor wazo's Nx70 template names a ring tone download"),
                ("wallpaper.url", "neither Gigaset's wiki nor wazo's Nx70 template names a wallpaper download"),
                ("language.url", "neither Gigaset's wiki nor wazo's Nx70 template names a language download"),
                (
                    "directory.url",
                    "XMLDir.1.ServerURL takes a directory search service queried per lookup (wazo \
                     Nx70_83_v2_65_0/common.py points it at a lookup API), not a directory file",
                ),
            ],
        )?)
    }
}

/// A Nx70 version as `(release, build)`, lower case: `("2.65.0", Some("build.8504c90"))` for
/// `83.V2.65.0+build.8504c90`, `("2.65.0", None)` for `2.65.0` or `V2.65.0`.
fn release(version: &str) -> (String, Option<String>) {
    let lower = version.trim().to_ascii_lowercase();
    let (release, build) = match lower.split_once('+') {
        Some((r, b)) => (r.to_string(), Some(b.to_string())),
        None => (lower, None),
    };
    let without_product = match release.split_once(".v") {
        Some((product, rest)) if product.bytes().all(|b| b.is_ascii_digit()) => rest.to_string(),
        _ => release,
    };
    (without_product.strip_prefix('v').map(str::to_string).unwrap_or(without_product), build)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A URL the server derived from a stored image comes with `firmware.version`, which names
    /// the image in the `<firmware>` element when `gigaset.firmware_version` is not set.
    #[test]
    fn a_derived_firmware_url_is_written_with_its_version() {
        let model = Gigaset.model("N870").unwrap();
        let set = |pairs: &[&str]| Settings::parse_assignments(pairs.iter().copied()).unwrap();
        let base = ["line.1.username=1001", "line.1.registrar=pbx.example.com"];
        let url = "firmware.url=https://p.example/files/n870.bin";
        let with_version = set(&[&base[..], &[url, "firmware.version=2.65.0"]].concat());
        assert!(Gigaset.validate_device(model, &with_version).is_ok());
        let ctx = crate::RenderContext { vendor: &Gigaset, model, mac: None, settings: &with_version, firmware: None };
        let spec = Gigaset.device_files(model, "7c2f80aabbcc".parse().unwrap()).remove(0);
        let bytes = crate::Renderer::new(None).render(&ctx, &spec).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.contains(r#"<file version="2.65.0" url="https://p.example/files/n870.bin"/>"#), "{text}");
        let err = Gigaset.validate_device(model, &set(&[&base[..], &[url]].concat())).unwrap_err();
        assert!(err.to_string().contains("firmware.version"), "{err}");
    }

    /// Real User-Agents (wazo `plugins/wazo_gigaset/Nx70_83_v2_65_0/common.py` samples) against
    /// the version spellings of wazo's template.
    #[test]
    fn firmware_versions_match_across_spellings() {
        let ua = "Gigaset N870 IP PRO/83.V2.65.0+build.8504c90;7C2F80E0D605";
        let (_, reported, _) = parse(ua).unwrap();
        for target in ["2.65.0", "V2.65.0", "83.V2.65.0", "83.V2.65.0+build.8504c90"] {
            assert!(Gigaset.firmware_matches(&reported, target), "{target}");
        }
        for target in ["2.66.0", "2.65", "83.V2.65.0+build.1111111"] {
            assert!(!Gigaset.firmware_matches(&reported, target), "{target}");
        }
    }

    #[test]
    fn zones_are_iana_names() {
        assert_eq!(iana_zone("europe/berlin").as_deref(), Some("Europe/Berlin"));
        assert_eq!(iana_zone("+1").as_deref(), Some("Etc/GMT-1"));
        assert_eq!(iana_zone("UTC-05:00").as_deref(), Some("Etc/GMT+5"));
        assert_eq!(iana_zone("+5:30"), None);
    }

    #[test]
    fn every_secret_row_is_declared() {
        assert_eq!(mapping::undeclared_secret_rows(PARAMS, |n| Gigaset.is_secret_param(n)), Vec::<String>::new());
    }
}
