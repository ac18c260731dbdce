//! Everything vendor-specific in sipprov, behind one small interface.
//!
//! Each supported vendor is one module implementing [`Vendor`], and everything sipprov knows
//! about the vendor lives there: the file names its firmware requests, how to read its HTTP
//! `User-Agent`, a data table mapping the vendor-neutral [`Settings`] keys to the vendor's own
//! parameter names, its default templates ([`Vendor::templates`]), its check-sync NOTIFY events
//! ([`Vendor::check_sync_events`]), how its phones read a Plug-and-Play URL
//! ([`Vendor::pnp_dialect`]), which raw parameters are secret, and the setting keys it owns
//! with their validation ([`Vendor::setting_keys`]). Vendors recognised without a module keep
//! their check-sync and PnP facts in [`others`]. [`Renderer`] turns a device's merged settings
//! into the exact bytes sent to the phone.
//!
//! # Layers
//!
//! The dependencies point one way: model ← vendors ← server. The model crate names no vendor;
//! to it `yealink.aes_key` is a free key. This crate owns the vendor namespaces: every entry
//! point that takes settings from outside validates them here ([`validated`],
//! [`validate_setting`], [`parse_settings`]: the model's rules, then the owning module's), and
//! devices with [`validate_device`]. The server asks the trait and never compares vendor ids.
//!
//! ```
//! use sipprov_model::{Mac, Settings};
//! use sipprov_vendors::{registry, RenderContext, Renderer};
//!
//! let ua = "Yealink SIP-T46S 66.86.0.15 00:15:65:aa:bb:cc";
//! let info = registry().identify_user_agent(ua).unwrap();
//! assert_eq!((info.vendor, info.model.as_deref()), ("yealink", Some("T46S")));
//!
//! let vendor = registry().get("yealink").unwrap();
//! let model = vendor.model("SIP-T46S").unwrap();
//! let mac: Mac = "001565aabbcc".parse().unwrap();
//! let files = vendor.device_files(model, mac);
//! assert_eq!(files.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(), ["y000000000066.cfg", "001565aabbcc.cfg"]);
//!
//! let settings = Settings::parse_assignments(["line.1.username=1001", "line.1.registrar=pbx.example.com"]).unwrap();
//! let ctx = RenderContext { vendor, model, mac: Some(mac), settings: &settings, firmware: None };
//! let bytes = Renderer::new(None).render(&ctx, &files[1]).unwrap();
//! assert!(String::from_utf8(bytes).unwrap().contains("account.1.user_name = 1001\n"));
//! ```
//!
//! # Adding a vendor
//!
//! 1. Add a module `src/<id>.rs` with a unit struct implementing [`Vendor`]. The methods without
//!    a default must be written: models, UA parser, file names, [`Vendor::check_sync_events`],
//!    [`Vendor::pnp_dialect`] and [`Vendor::templates`] (each template `include_str!`'d under
//!    the name `<id>/<file>.j2`). Add a [`ParamDef`](mapping::ParamDef) table for
//!    [`Vendor::parameters`], and as needed secret parameters, checks (refusing, with the
//!    reason, every neutral key its files cannot carry, the firmware and resource URLs
//!    included), [`Vendor::firmware_matches`] when its User-Agent spells a version unlike its
//!    image names, and setting keys of its own ([`VendorKey`], all under `<id>.`). A vendor with one XML file per device and raw
//!    names of its own syntax fills in the shape Snom, Grandstream and Cisco share (`shape`).
//! 2. Put its templates under `templates/<id>/`.
//! 3. Add one line to the vendor list in [`registry`] (and remove the vendor's row from
//!    [`others`] if it had one).
//!
//! `tests/one_module.rs` walks the registry: a module whose events, PnP dialect or templates are
//! missing or not its own, or whose files do not render for every model, fails it.
//!
//! Vendor facts are cited in comments next to the code that encodes them, by primary source: the
//! vendor's guide (by title, with a URL where one is known), an RFC section, or a file in a peer
//! project. Short names for the peer projects: "wazo" is `wazo-platform/wazo-provd-plugins`
//! (paths under `plugins/wazo_<vendor>/`), "fpbx" is `fusionpbx/fusionpbx`
//! (`app/provision/index.php`, `resources/templates/provision/<vendor>/<model>/`), "prov.net" is
//! `provisioner/Provisioner` (`endpoint/<vendor>/`). A fact no source confirms is marked
//! unverified.

#![warn(missing_docs)]

pub mod audiocodes;
pub mod cisco;
pub mod directory;
mod error;
pub mod events;
pub mod fanvil;
pub mod gigaset;
pub mod grandstream;
pub mod keys;
pub mod mapping;
pub mod others;
pub mod pnp;
pub mod polycom;
pub mod render;
pub mod setting_keys;
mod shape;
pub mod snom;
mod ua;
pub mod yealink;
pub mod yealink_aes;

use std::borrow::Cow;

use sipprov_model::{Mac, Settings};

pub use error::{DeviceError, Refused};
pub use events::{check_sync_event, check_sync_table, CheckSyncEvents};
pub use mapping::VendorParam;
pub use pnp::PnpDialect;
pub use render::{Overrides, RenderContext, RenderError, Renderer};
pub use setting_keys::{
    check_global_settings, check_group_settings, classify_setting, parse_settings, validate_setting, validated,
    vendor_key, KeyRefusal, VendorKey,
};

/// What a User-Agent header says about the device that sent it.
///
/// `model` is the canonical model name when the vendor knows the model (e.g. `T46S` for
/// `SIP-T46S`, `440HD` for `440HDG-Rev0`), otherwise the model text as the UA spells it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UserAgentInfo {
    /// The vendor id, as [`Vendor::id`] returns it.
    pub vendor: &'static str,
    /// The model, canonical when known: then the vendor's own name for it, borrowed (a phone's
    /// every request is parsed, and a known model costs no allocation); as the UA spells it
    /// otherwise.
    pub model: Option<Cow<'static, str>>,
    /// The firmware version as the UA spells it.
    pub firmware: Option<String>,
    /// The device MAC, when the UA carries one (never a placeholder such as `000000000000`).
    pub mac: Option<Mac>,
}

/// One model a vendor module knows how to provision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ModelInfo {
    /// Canonical name, e.g. `T46S`, `W60B`, `N870`, `440HD`, `MP-118`.
    pub name: &'static str,
    /// The vendor's model family; it selects the parameter table and template
    /// (e.g. `desk`, `dect`, `dect-dm` for Yealink, `nx70`, `400hd`, `mp11x`).
    pub family: &'static str,
    /// Other spellings accepted by [`Vendor::model`] (compared ignoring case and punctuation).
    pub aliases: &'static [&'static str],
    /// The model-scoped common file, if the vendor has one (Yealink `y0000000000XX.cfg`).
    pub common_file: Option<&'static str>,
    /// The highest line number the model accepts, when a hard limit is known (gateway ports,
    /// Grandstream SIP accounts).
    pub max_lines: Option<u32>,
}

/// Which settings a file may contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum FileScope {
    /// Per-device file: accounts, passwords, everything merged global → group → device.
    Device,
    /// Model-wide common file served to anyone who asks: only global, non-secret settings.
    Model,
}

/// One file a device fetches: the name it is served under, accepted aliases, and its template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSpec {
    /// The canonical name, e.g. `001565aabbcc.cfg` or `7C2F80E0D605.xml`.
    pub name: String,
    /// Other names that must be answered with the same file (e.g. Gigaset `provisioning.xml`).
    pub aliases: Vec<String>,
    /// Relative template name, e.g. `yealink/mac.cfg.j2`.
    pub template: &'static str,
    /// Device or model scope.
    pub scope: FileScope,
    /// The HTTP `Content-Type` to send.
    pub content_type: &'static str,
    /// Extra accepted names beyond `aliases`, for families of names.
    pub name_pattern: Option<NamePattern>,
}

/// A key file's names ([`Vendor::key_file_name`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFileName {
    /// The file whose key it holds, e.g. `001565aabbcc.cfg` or `y000000000066.cfg`.
    pub of: String,
    /// The name it is served under, e.g. `001565aabbcc_Security.enc`.
    pub name: String,
}

/// A family of file names a [`FileSpec`] also answers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum NamePattern {
    /// Any Yealink common-file name `y0000000000XX.cfg`: phones of one model do not all ask for
    /// the same number (fpbx's per-model templates: T31G firmware 124.x uses `y000000000123.cfg`),
    /// so the UA decides, not the number.
    YealinkCommon,
}

impl NamePattern {
    /// True when `name` belongs to the family (ignoring case).
    ///
    /// ```
    /// use sipprov_vendors::NamePattern;
    /// assert!(NamePattern::YealinkCommon.matches("Y000000000124.cfg"));
    /// assert!(!NamePattern::YealinkCommon.matches("y00000000012.cfg"));
    /// ```
    pub fn matches(self, name: &str) -> bool {
        match self {
            NamePattern::YealinkCommon => yealink::is_common_name(name),
        }
    }
}

impl FileSpec {
    /// True when `requested` (a bare file name, no directory) names this file, ignoring case.
    ///
    /// ```
    /// use sipprov_vendors::registry;
    /// let v = registry().get("gigaset").unwrap();
    /// let f = &v.device_files(v.model("N870").unwrap(), "7c2f80e0d605".parse().unwrap())[0];
    /// assert!(f.matches("7c2f80e0d605.XML") && f.matches("provisioning.xml") && !f.matches("x.xml"));
    /// ```
    pub fn matches(&self, requested: &str) -> bool {
        self.name.eq_ignore_ascii_case(requested)
            || self.aliases.iter().any(|a| a.eq_ignore_ascii_case(requested))
            || self.name_pattern.is_some_and(|p| p.matches(requested))
    }
}

/// A vendor module. All methods are cheap and pure; implementations are unit structs.
pub trait Vendor: Send + Sync {
    /// Lower-case id used in the inventory and in [`check_sync_event`], e.g. `yealink`.
    fn id(&self) -> &'static str;

    /// Human-readable name, e.g. `Yealink`.
    fn display_name(&self) -> &'static str;

    /// The NOTIFY events that make this vendor's phones re-fetch their files or reboot
    /// ([`check_sync_event`]), with the source they come from.
    fn check_sync_events(&self) -> CheckSyncEvents;

    /// How this vendor's phones read the URL in the body of a Plug-and-Play NOTIFY
    /// ([`pnp::provisioning_url`]).
    fn pnp_dialect(&self) -> PnpDialect;

    /// The module's default templates as `(relative name, source)`, compiled in with
    /// `include_str!`; every [`FileSpec::template`] the module hands out names one of them
    /// (a test renders each for every model). Names start with `<id>/`; an admin overrides one
    /// by dropping a file of the same relative name into the override directory.
    fn templates(&self) -> &'static [(&'static str, &'static str)];

    /// The setting keys this module owns, all under `<id>.` (e.g. `yealink.aes_key`), with their
    /// validation ([`setting_keys`]). Declaring any reserves the namespace: an unknown key in it
    /// is refused as a typo.
    fn setting_keys(&self) -> &'static [VendorKey] {
        &[]
    }

    /// For a request for a key file (a file holding the key of another file the device fetches,
    /// e.g. Yealink's `<mac>_Security.enc` next to `<mac>.cfg`): the file it belongs to, which the
    /// server resolves and authorises the request as, and the key file's canonical name. `None`
    /// for every other name, and for vendors without key files.
    fn key_file_name(&self, file_name: &str) -> Option<KeyFileName> {
        let _ = file_name;
        None
    }

    /// The bytes of the key file for a file of `scope` rendered from `settings` (the device's
    /// merged settings, or the global ones for a common file): `Ok(None)` when the settings do
    /// not turn key files on (the server answers 404), `Err` with a reason naming settings (never
    /// a key) when they make one impossible.
    fn key_file(&self, settings: &Settings, scope: FileScope) -> Result<Option<Vec<u8>>, Refused> {
        let _ = (settings, scope);
        Ok(None)
    }

    /// Checks the global settings on their own, for rules that hold even without devices (the
    /// server runs it before a global change is written), e.g. Yealink's common-file key with
    /// key files switched on.
    fn validate_global(&self, global: &Settings) -> Result<(), Refused> {
        let _ = global;
        Ok(())
    }

    /// The remote phone directory in this vendor's own format ([`directory`]), which the server
    /// serves per device; `None` (the default) when no source gives the module a format.
    fn directory(&self, contacts: &[directory::Contact]) -> Option<directory::DirectoryFile> {
        let _ = contacts;
        None
    }

    /// Every model this module can provision.
    fn models(&self) -> &'static [ModelInfo];

    /// Looks a model up by name, ignoring case, punctuation and the vendor's usual decorations
    /// (`SIP-T46S` → `T46S`, `440HDG` → `440HD`, `MP118` → `MP-118`).
    fn model(&self, name: &str) -> Option<&'static ModelInfo> {
        mapping::find_model(self.models(), name)
    }

    /// Parses a User-Agent header; `None` when it is not this vendor's.
    fn parse_user_agent(&self, ua: &str) -> Option<UserAgentInfo>;

    /// Every file a device of this model gets, with the exact name it is served under plus
    /// accepted aliases.
    fn device_files(&self, model: &'static ModelInfo, mac: Mac) -> Vec<FileSpec>;

    /// The device's own file: the one of [`Vendor::device_files`] whose scope is
    /// [`FileScope::Device`] (what a campaign expects the phone to fetch). A campaign asks this
    /// once per device: a vendor may answer without building the whole list.
    fn own_file(&self, model: &'static ModelInfo, mac: Mac) -> Option<FileSpec> {
        self.device_files(model, mac).into_iter().find(|f| f.scope == FileScope::Device)
    }

    /// The one of [`Vendor::device_files`] that `requested` names ([`FileSpec::matches`]), the
    /// first when several do. Every request for a device's file asks this: a vendor may answer
    /// its common names without building the whole list.
    fn device_file(&self, model: &'static ModelInfo, mac: Mac, requested: &str) -> Option<FileSpec> {
        self.device_files(model, mac).into_iter().find(|f| f.matches(requested))
    }

    /// The MAC a requested file name carries, if it is one of this vendor's per-device names
    /// (e.g. `001565aabbcc.cfg`, `7C2F80E0D605.xml`). Placeholders (`000000000000.cfg`) and
    /// common files (`y000000000066.cfg`) are never taken for a MAC. Several vendors share the
    /// `<mac>.cfg` shape, so the server decides by looking the MAC up in its inventory.
    fn mac_in_file_name(&self, file_name: &str) -> Option<Mac>;

    /// Whether `file_name` carries `mac` as [`Vendor::mac_in_file_name`] reads it (exactly
    /// `self.mac_in_file_name(file_name) == Some(mac)`). Asked first with the MAC a phone's
    /// User-Agent names, on every request for its own file: a vendor may compare the name's
    /// digits with the MAC in place instead of parsing them.
    fn names_mac(&self, file_name: &str, mac: Mac) -> bool {
        self.mac_in_file_name(file_name) == Some(mac)
    }

    /// True when `requested` names the device's own file ([`Vendor::own_file`], whose scope is
    /// [`FileScope::Device`]) and [`Vendor::device_file`] would return that file for it: a
    /// vendor that can tell without building the [`FileSpec`] (a name formatted per device)
    /// says so here, and the server builds it only when it renders. `false` (the default)
    /// when it cannot tell cheaply: the caller then asks [`Vendor::device_file`].
    fn is_own_file(&self, _model: &'static ModelInfo, _mac: Mac, _requested: &str) -> bool {
        false
    }

    /// The MAC of a file this vendor's phones upload (HTTP `PUT`) under `file_name`, e.g. Polycom
    /// `<mac>-phone.cfg` or Yealink `<mac>-local.cfg`; `None` for every other name. The server
    /// accepts uploads of these names only, and only from the device the MAC names.
    ///
    /// ```
    /// use sipprov_vendors::registry;
    /// let polycom = registry().get("polycom").unwrap();
    /// assert_eq!(polycom.upload_mac("0004F2AABBCC-app.log").unwrap().to_string(), "0004f2aabbcc");
    /// assert!(polycom.upload_mac("0004f2aabbcc-device.cfg").is_none());
    /// assert!(registry().get("yealink").unwrap().upload_mac("001565aabbcc-local.cfg").is_some());
    /// ```
    fn upload_mac(&self, file_name: &str) -> Option<Mac> {
        let _ = file_name;
        None
    }

    /// For a request with no MAC and no identified device (e.g. `y000000000066.cfg` from an
    /// unknown phone): the model-scoped file it names, to be rendered from global settings only.
    /// `ua_model` is the model parsed from the UA, if any; it wins over what the name suggests.
    fn model_file(&self, file_name: &str, ua_model: Option<&str>) -> Option<(&'static ModelInfo, FileSpec)>;

    /// The vendor parameters `settings` map to for a file of `scope`, in output order, with
    /// `vendor.<raw>` overrides applied. Templates receive these as `params`.
    fn parameters(&self, model: &'static ModelInfo, settings: &Settings, scope: FileScope) -> Vec<VendorParam> {
        let _ = (model, settings, scope);
        Vec::new()
    }

    /// Turns a rendered file into the bytes served, e.g. Yealink AES encryption when the device's
    /// merged settings carry a key. The default serves the rendering as is. An error message must
    /// never contain a secret value.
    fn seal(&self, file: &FileSpec, settings: &Settings, rendered: Vec<u8>) -> Result<Vec<u8>, String> {
        let _ = (file, settings);
        Ok(rendered)
    }

    /// The vendor's raw parameter names (as `vendor.<name>` spells them) whose values are
    /// secrets: account and admin passwords, HTTP credentials, encryption keys. `{n}` stands
    /// for a number (an account, port or handset). Names are compared ignoring ASCII case, as
    /// overrides are. Every listing, log line and history entry redacts these values, and they
    /// never go into a common file ([`is_secret_setting`]). Each module cites where its names
    /// come from.
    fn secret_params(&self) -> &'static [&'static str] {
        &[]
    }

    /// True when the raw parameter `name` is one of [`Vendor::secret_params`].
    ///
    /// ```
    /// let snom = sipprov_vendors::registry().get("snom").unwrap();
    /// assert!(snom.is_secret_param("user_pass.2") && snom.is_secret_param("HTTP_PASS"));
    /// assert!(!snom.is_secret_param("user_host.2"));
    /// ```
    fn is_secret_param(&self, name: &str) -> bool {
        self.secret_params().iter().any(|pattern| mapping::name_matches(pattern, name))
    }

    /// The file dialect to render for a requester of `model` whose User-Agent reports
    /// `firmware` (`None` when no phone is asking), for vendors whose firmware generations read
    /// different formats (Fanvil `legacy` / `modern`). `None` for vendors with one format.
    /// The renderer hands the choice to the parameter table and templates as the setting
    /// `<vendor>.dialect`, and the server keeps one cached rendering per dialect.
    ///
    /// ```
    /// use sipprov_model::Settings;
    /// let fanvil = sipprov_vendors::registry().get("fanvil").unwrap();
    /// let x4u = fanvil.model("X4U").unwrap();
    /// assert_eq!(fanvil.dialect(x4u, &Settings::new(), Some("2.0.1.2")), Some("legacy"));
    /// assert_eq!(fanvil.dialect(x4u, &Settings::new(), Some("2.12.1")), Some("modern"));
    /// ```
    fn dialect(&self, model: &'static ModelInfo, settings: &Settings, firmware: Option<&str>) -> Option<&'static str> {
        let _ = (model, settings, firmware);
        None
    }

    /// Vendor-specific checks of a device's merged settings before it is saved, e.g. values
    /// that would break the file syntax or line numbers beyond the model's ports.
    fn validate_device(&self, model: &'static ModelInfo, settings: &Settings) -> Result<(), Refused> {
        Ok(mapping::check_max_lines(model, settings)?)
    }

    /// Checks a device's merged settings (global, group, device): rules whose parts may come
    /// from different levels, e.g. a Yealink 32-character key on the device with key files
    /// switched on for its group. The server runs it for every device a change reaches, before
    /// the change is written, and the vendor's render refuses the same combinations.
    ///
    /// The default refuses programmable keys defined by halves ([`keys::check_merged`]).
    fn validate_merged(&self, model: &'static ModelInfo, merged: &Settings) -> Result<(), Refused> {
        let _ = model;
        Ok(keys::check_merged(merged)?)
    }

    /// Why a check-sync NOTIFY asking for a reboot would not reboot a device of `model` whose
    /// merged settings are `settings`, in words naming the parameter and the setting to change;
    /// `None` when its file lets `reboot=true` reboot it.
    ///
    /// `sip.notify_reboot` (default `1`) says whether check-sync may reboot a device. The default
    /// refuses when it is `0`: sipprov then never asks for a reboot, even where the vendor's file
    /// has no parameter to stop the phone obeying one from another sender. Vendors with such a
    /// parameter override this to read the value their file actually carries, `vendor.` overrides
    /// included ([`mapping::reboot_refused_by`]).
    ///
    /// ```
    /// use sipprov_model::Settings;
    /// let g = sipprov_vendors::registry().get("gigaset").unwrap();
    /// let n870 = g.model("N870").unwrap();
    /// assert!(g.reboot_refusal(n870, &Settings::new()).is_none());
    /// let off = Settings::parse_assignments(["sip.notify_reboot=0"]).unwrap();
    /// assert!(g.reboot_refusal(n870, &off).unwrap().contains("CheckSyncRebootEnabled"));
    /// ```
    fn reboot_refusal(&self, model: &'static ModelInfo, settings: &Settings) -> Option<String> {
        let _ = model;
        mapping::reboot_refused_by_setting(settings)
    }

    /// True when a phone whose User-Agent reports firmware `reported` already runs `target` (a
    /// firmware version as the operator names it, e.g. a catalog file's version): the server
    /// then does not ask it to upgrade. The default compares the two ignoring ASCII case and
    /// surrounding whitespace; a vendor whose User-Agent spells a version differently from its
    /// image names overrides it (Cisco MPP: `11.3.7_MPP_0001` runs `11-3-7MPP0001-609`).
    ///
    /// ```
    /// use sipprov_vendors::registry;
    /// let yealink = registry().get("yealink").unwrap();
    /// assert!(yealink.firmware_matches(" 66.86.0.160", "66.86.0.160 "));
    /// assert!(!yealink.firmware_matches("66.86.0.15", "66.86.0.160"));
    /// let cisco = registry().get("cisco").unwrap();
    /// assert!(cisco.firmware_matches("11.3.7_MPP_0001", "sip88xx.11-3-7MPP0001-609.loads"));
    /// ```
    fn firmware_matches(&self, reported: &str, target: &str) -> bool {
        reported.trim().eq_ignore_ascii_case(target.trim())
    }

    /// The longest HTTP password the vendor's phones are known to keep, when a source gives a
    /// limit: the server shortens the passwords it generates for them to it (e.g. Snom's 20,
    /// see [`snom`]). `None`, the default, leaves the server's own length.
    ///
    /// ```
    /// use sipprov_vendors::registry;
    /// assert_eq!(registry().get("snom").unwrap().http_password_max_len(), Some(20));
    /// assert_eq!(registry().get("yealink").unwrap().http_password_max_len(), None);
    /// ```
    fn http_password_max_len(&self) -> Option<usize> {
        None
    }

    /// The vendor parameters through which a device file of `model` hands the phone the HTTP
    /// credentials for its later fetches (`http.username`, `http.password`), e.g. Yealink
    /// `static.auto_provision.server.username/password`; empty when the file cannot carry them.
    /// The server generates per-device credentials only where this is non-empty: elsewhere a
    /// phone could not learn them and would be locked out after its first fetch.
    ///
    /// The default reads the vendor's own parameter table ([`Vendor::parameters`]), so it names
    /// exactly what the templates write.
    ///
    /// ```
    /// use sipprov_vendors::registry;
    /// let yealink = registry().get("yealink").unwrap();
    /// assert_eq!(
    ///     yealink.http_credential_parameters(yealink.model("T46S").unwrap()),
    ///     ["static.auto_provision.server.username", "static.auto_provision.server.password"]
    /// );
    /// let gigaset = registry().get("gigaset").unwrap();
    /// assert!(gigaset.http_credential_parameters(gigaset.model("N870").unwrap()).is_empty());
    /// let snom = registry().get("snom").unwrap();
    /// assert_eq!(snom.http_credential_parameters(snom.model("D785").unwrap()), ["http_client_user", "http_client_pass"]);
    /// ```
    fn http_credential_parameters(&self, model: &'static ModelInfo) -> Vec<String> {
        const USER: &str = "sipprov-probe-user";
        const PASSWORD: &str = "sipprov-probe-password";
        let probe = Settings::parse_assignments([
            format!("http.username={USER}").as_str(),
            format!("http.password={PASSWORD}").as_str(),
        ]);
        let Ok(probe) = probe else { return Vec::new() };
        let params = self.parameters(model, &probe, FileScope::Device);
        let named = |marker: &str| params.iter().find(|p| p.value.contains(marker)).map(|p| p.name.clone());
        match (named(USER), named(PASSWORD)) {
            (Some(user), Some(password)) => vec![user, password],
            _ => Vec::new(),
        }
    }
}

/// A vendor module shows as its id.
impl std::fmt::Debug for dyn Vendor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}

/// The list of vendor modules.
pub struct Registry {
    vendors: &'static [&'static dyn Vendor],
}

static REGISTRY: Registry = Registry {
    vendors: &[
        &yealink::Yealink,
        &gigaset::Gigaset,
        &audiocodes::AudioCodes,
        &polycom::Polycom,
        &snom::Snom,
        &grandstream::Grandstream,
        &cisco::Cisco,
        &fanvil::Fanvil,
    ],
};

/// The process-wide vendor registry.
///
/// ```
/// let ids: Vec<_> = sipprov_vendors::registry().vendors().iter().map(|v| v.id()).collect();
/// assert_eq!(&ids[..3], ["yealink", "gigaset", "audiocodes"]);
/// ```
pub fn registry() -> &'static Registry {
    &REGISTRY
}

impl Registry {
    /// Every vendor, provisionable ones first.
    pub fn vendors(&self) -> &[&'static dyn Vendor] {
        self.vendors
    }

    /// A vendor by id, ignoring case.
    ///
    /// ```
    /// assert_eq!(sipprov_vendors::registry().get("AudioCodes").unwrap().id(), "audiocodes");
    /// ```
    pub fn get(&self, id: &str) -> Option<&'static dyn Vendor> {
        // Stored devices name their vendor by its id exactly: that comparison first (every
        // provisioning request asks), then any case and spacing.
        let exact = self.vendors.iter().copied().find(|v| v.id() == id);
        exact.or_else(|| self.vendors.iter().copied().find(|v| v.id().eq_ignore_ascii_case(id.trim())))
    }

    /// Tries each vendor's UA parser in turn.
    ///
    /// ```
    /// let info = sipprov_vendors::registry().identify_user_agent("AUDC-IPPhone/2.2.8.61 (440HDG-Rev0; 00908F602AAC)").unwrap();
    /// assert_eq!(info.model.as_deref(), Some("440HD"));
    /// assert_eq!(info.mac.unwrap().to_string(), "00908f602aac");
    /// ```
    pub fn identify_user_agent(&self, ua: &str) -> Option<UserAgentInfo> {
        self.vendors.iter().find_map(|v| v.parse_user_agent(ua))
    }
}

/// True when a setting holds a secret: a vendor-owned key declared secret ([`VendorKey::secret`],
/// which decides for such keys), a secret key name ([`sipprov_model::is_secret_key`]:
/// `line.N.password`, `http.password`, `admin.password`, any name with `password`, `secret`,
/// `token`...) or a `vendor.<name>` parameter that any vendor module declares secret
/// ([`Vendor::secret_params`]). Any vendor's: a raw setting at the global or group level
/// reaches every vendor's devices, and redacting a name that is harmless to one vendor costs
/// nothing.
///
/// ```
/// use sipprov_vendors::is_secret_setting;
/// assert!(is_secret_setting("vendor.P406") && is_secret_setting("vendor.user_pass.2"));
/// assert!(is_secret_setting("line.1.password") && is_secret_setting("vendor.account.3.password"));
/// assert!(!is_secret_setting("vendor.P47") && !is_secret_setting("line.1.username"));
/// assert!(is_secret_setting("yealink.aes_key") && !is_secret_setting("yealink.aes_key_file"));
/// ```
pub fn is_secret_setting(key: &str) -> bool {
    if let Some(owned) = vendor_key(key) {
        return owned.secret;
    }
    if sipprov_model::is_secret_key(key) {
        return true;
    }
    match key.strip_prefix("vendor.") {
        Some(raw) => registry().vendors().iter().any(|v| v.is_secret_param(raw)),
        None => false,
    }
}

/// Settings as listings show them: secret values ([`is_secret_setting`]) and URI passwords in
/// other values replaced by `********`. The one redaction the CLI, the API and logs use.
///
/// ```
/// use sipprov_model::Settings;
/// let s = Settings::parse_assignments(["vendor.P2=adminpw", "vendor.P47=pbx.example.com"]).unwrap();
/// let shown = sipprov_vendors::redacted(&s);
/// assert_eq!((shown.get("vendor.P2"), shown.get("vendor.P47")), (Some("********"), Some("pbx.example.com")));
/// ```
pub fn redacted(settings: &Settings) -> Settings {
    settings.redacted_by(is_secret_setting)
}

/// Finds a device's vendor and model, with an error naming what is known when either is not
/// (the provisionable vendors, or the vendor's models).
///
/// ```
/// let (v, m) = sipprov_vendors::find_model("Yealink", "sip-t46s").unwrap();
/// assert_eq!((v.id(), m.name), ("yealink", "T46S"));
/// let err = sipprov_vendors::find_model("yealink", "T99X").unwrap_err();
/// assert!(matches!(err, sipprov_vendors::DeviceError::UnknownModel { .. }));
/// let err = err.to_string();
/// assert!(err.contains("unknown model \"T99X\"") && err.contains("T46S"), "{err}");
/// ```
pub fn find_model(vendor: &str, model: &str) -> Result<(&'static dyn Vendor, &'static ModelInfo), DeviceError> {
    let v = registry().get(vendor).ok_or_else(|| DeviceError::UnknownVendor {
        vendor: vendor.to_string(),
        provisionable: registry().vendors().iter().filter(|v| !v.models().is_empty()).map(|v| v.id()).collect(),
    })?;
    let m = v.model(model).ok_or_else(|| DeviceError::UnknownModel {
        vendor: v.id(),
        vendor_name: v.display_name(),
        model: model.to_string(),
        known: v.models().iter().map(|m| m.name).collect(),
    })?;
    Ok((v, m))
}

/// Checks a device before it is saved, the one check the admin API, PnP and the CLI share: the
/// vendor and model must be known ([`find_model`]) and the vendor's own checks
/// ([`Vendor::validate_device`]) must pass for its `settings`. Returns the vendor and the
/// canonical model.
///
/// ```
/// use sipprov_model::Settings;
/// let err = sipprov_vendors::validate_device("yealink", "T99X", &Settings::new()).unwrap_err();
/// assert!(err.to_string().contains("T46S"), "{err}");
/// let (_, model) = sipprov_vendors::validate_device("yealink", "sip-t46s", &Settings::new()).unwrap();
/// assert_eq!(model.name, "T46S");
/// ```
pub fn validate_device(
    vendor: &str,
    model: &str,
    settings: &Settings,
) -> Result<(&'static dyn Vendor, &'static ModelInfo), DeviceError> {
    let (v, m) = find_model(vendor, model)?;
    v.validate_device(m, settings)?;
    Ok((v, m))
}
