//! The provisioning core: the one path from a request to bytes.
//!
//! [`Files::resolve`] turns a requested file name plus what the User-Agent says into a device
//! file or a model-scoped common file; [`Files::served`] returns it from the render cache or
//! renders it. The admin API's `render` and the campaigns' `--changed` use the same functions,
//! so what they show is exactly what a phone receives. It reads the inventory, writes the render
//! cache and records content changes in the event sink. The one thing it stores is a device's
//! first fetch ([`Files::claim_first_fetch`]), which must be durable before the file is sent;
//! device settings change only through the registry.

mod base;
mod firmware;
mod resource_urls;

use std::borrow::Cow;
use std::sync::Arc;

use sipprov_model::known;
use sipprov_model::{Mac, Settings};
use sipprov_store::{DeviceRecord, FirstFetchClaim, Store, StoreError};
use sipprov_vendors::{
    registry, FileScope, FileSpec, ModelInfo, Overrides, RenderContext, Renderer, UserAgentInfo, Vendor,
};

use crate::auth::Security;
use crate::cache::{content_hash, model_key, RenderCache, Served, MODEL_SCOPE_MAC};
pub use crate::catalog::RenderFailure;
use crate::catalog::{can_carry_credentials, vendor_model};
use crate::fetchlog::{FetchLog, Record};
use crate::inventory::Inventory;
use crate::metrics::Metrics;
use crate::pins::FirmwarePins;
use crate::resources::ResourceCatalog;

/// The provisioning core: resolves requests, renders, and keeps the render cache.
pub struct Files {
    store: Store,
    inventory: Arc<Inventory>,
    cache: Arc<RenderCache>,
    renderer: Renderer,
    events: FetchLog,
    metrics: Arc<Metrics>,
    security: Arc<Security>,
    resources: ResourceCatalog,
    pins: Arc<FirmwarePins>,
    /// `[pnp] url`: the base of derived URLs (`firmware.url`, resource and directory URLs) when
    /// a device has no `provisioning.url`.
    pnp_url: Option<String>,
}

/// What a request names.
pub enum Resolved {
    /// One of a known device's files.
    Device {
        /// The device.
        device: Arc<DeviceRecord>,
        /// Which of its files; `None` for its own file ([`Vendor::own_file`]), whose spec (a
        /// name formatted per device) is built only when it is rendered, not per cached fetch.
        spec: Option<FileSpec>,
        /// The device's vendor and model, found once for the request (`vendor_model`).
        vendor: &'static dyn Vendor,
        /// See `vendor`.
        model: &'static ModelInfo,
    },
    /// A common file for a model, rendered from global settings only.
    Model {
        /// The vendor.
        vendor: &'static dyn Vendor,
        /// The model whose common file it is.
        model: &'static ModelInfo,
        /// The file.
        spec: FileSpec,
        /// The requester, when its User-Agent names a known device (for the fetch record).
        device: Option<Arc<DeviceRecord>>,
    },
}

/// Why a request gets no file.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Nothing by that name for this requester: a plain 404.
    NotFound,
    /// The User-Agent's MAC contradicts the MAC in the path.
    MacMismatch {
        /// The MAC the path names.
        path: Mac,
        /// The MAC the User-Agent names.
        user_agent: Mac,
    },
}

/// What [`Files`] is built from: the shared pieces it reads and writes.
pub struct FilesParts {
    /// For the first-fetch claim, stored before the file is sent.
    pub store: Store,
    /// The devices and their merged settings.
    pub inventory: Arc<Inventory>,
    /// Rendered files by device, file and dialect.
    pub cache: Arc<RenderCache>,
    /// Where fetches are recorded.
    pub events: FetchLog,
    /// Serving counters.
    pub metrics: Arc<Metrics>,
    /// Generated credentials a device's file carries.
    pub security: Arc<Security>,
    /// The stored firmware and resource files a render may point a device at.
    pub resources: ResourceCatalog,
    /// The firmware versions rollouts hold devices to.
    pub pins: Arc<FirmwarePins>,
    /// `[pnp] url`, the base of derived URLs for a device without `provisioning.url`.
    pub pnp_url: Option<String>,
}

impl Files {
    /// The provisioning core over these pieces, rendering the built-in templates until the
    /// template service installs the overrides ([`Files::install_overrides`]).
    pub fn new(parts: FilesParts) -> Files {
        let FilesParts { store, inventory, cache, events, metrics, security, resources, pins, pnp_url } = parts;
        let renderer = Renderer::new(None);
        Files { store, inventory, cache, renderer, events, metrics, security, resources, pins, pnp_url }
    }

    /// The catalog of stored firmware and resource files (in memory).
    pub fn resources(&self) -> &ResourceCatalog {
        &self.resources
    }

    /// Serves `overrides` (by template name) from now on: every cached rendering is dropped, so
    /// the next fetch renders with them. Only the template service calls it, after validating.
    pub fn install_overrides(&self, overrides: Overrides) {
        self.renderer.set_overrides(overrides);
        self.cache.invalidate_all();
    }

    /// The overrides serving now, by template name.
    pub fn overrides(&self) -> Overrides {
        self.renderer.overrides()
    }

    /// The render cache's generation: policies computed from settings are valid for one.
    pub fn cache_generation(&self) -> u64 {
        self.cache.generation()
    }

    /// What a device's templates and access policy see: its merged settings, plus the HTTP
    /// credentials generated for it (`auth::window`) when it has none of its own and its file
    /// can carry them.
    pub fn device_settings(&self, device: &DeviceRecord) -> Settings {
        let mut settings = self.inventory.merged_settings(device);
        self.security.add_generated_credentials(device, &mut settings);
        settings
    }

    /// Claims `device`'s first-fetch window, opened at `opened_at`, for the request being
    /// answered: true when it is the first fetch since the window opened. Stored before it
    /// returns true, so a restart or a concurrent fetch cannot make a second "first"; with the
    /// claim, a device that has no credentials and whose file can carry them gets generated
    /// ones, which the file being served then contains.
    pub async fn claim_first_fetch(&self, device: &DeviceRecord, opened_at: i64) -> Result<bool, StoreError> {
        let mac = device.mac;
        let windows = &self.security.windows;
        if windows.is_used(mac, opened_at) {
            return Ok(false);
        }
        let keys = [known::HTTP_USERNAME.name(), known::HTTP_PASSWORD.name(), known::HTTP_AUTH.name()];
        let own = self.inventory.merged_keys(device, &keys);
        // Offered even when some are known here: the store keeps what it has and returns it.
        // Not with `http.auth=none`: no password would be accepted.
        let wants_credentials = own.get_key(&known::HTTP_USERNAME).is_none_or(str::is_empty)
            && own.get_key(&known::HTTP_PASSWORD).is_none_or(str::is_empty)
            && own.get_key(&known::HTTP_AUTH) != Some(known::HttpAuth::None)
            && can_carry_credentials(device);
        let max_len = vendor_model(device).ok().and_then(|(vendor, _)| vendor.http_password_max_len());
        let fresh = wants_credentials.then(|| crate::auth::window::generate(mac, max_len));
        let now = sipprov_store::now_ms();
        match self.store.claim_first_fetch(mac, opened_at, now, fresh.as_ref()).await? {
            FirstFetchClaim::Claimed(stored) => {
                windows.used(mac, now);
                let known = windows.generated(mac);
                if let Some(credentials) = stored.filter(|c| known.as_deref() != Some(c)) {
                    tracing::info!(%mac, username = %credentials.username,
                        "HTTP credentials generated; the device's file now carries them");
                    windows.set_generated(mac, credentials);
                    self.cache.invalidate_device(mac);
                }
                Ok(true)
            }
            FirstFetchClaim::AlreadyUsed => {
                windows.used(mac, opened_at);
                Ok(false)
            }
        }
    }

    /// Finds what a request for `file_name` names, given what its User-Agent says.
    pub fn resolve(&self, file_name: &str, ua: Option<&UserAgentInfo>) -> Result<Resolved, Refusal> {
        let ua_vendor = ua.and_then(|u| registry().get(u.vendor));
        let ua_mac = ua.and_then(|u| u.mac);
        // A phone asking for its own file names its MAC in both: compared in place first (the
        // same answer as the parse, `Vendor::names_mac`), parsed only otherwise.
        let path_mac = match (ua_vendor, ua_mac) {
            (Some(vendor), Some(mac)) if vendor.names_mac(file_name, mac) => Some(mac),
            _ => ua_vendor
                .and_then(|v| v.mac_in_file_name(file_name))
                .or_else(|| registry().vendors().iter().find_map(|v| v.mac_in_file_name(file_name))),
        };
        if let Some(mac) = path_mac {
            if let Some(ua_mac) = ua_mac.filter(|m| *m != mac) {
                return Err(Refusal::MacMismatch { path: mac, user_agent: ua_mac });
            }
            let device = self.inventory.device(mac).ok_or(Refusal::NotFound)?;
            return self.device_file(device, file_name);
        }
        if let Some(device) = ua_mac.and_then(|m| self.inventory.device(m)) {
            if let Ok(found) = self.device_file(device, file_name) {
                return Ok(found);
            }
        }
        let ua_model = ua.and_then(|u| u.model.as_deref());
        let candidates = ua_vendor.into_iter().chain(registry().vendors().iter().copied());
        for vendor in candidates {
            if let Some((model, spec)) = vendor.model_file(file_name, ua_model) {
                let device = ua_mac.and_then(|m| self.inventory.device(m));
                return Ok(Resolved::Model { vendor, model, spec, device });
            }
        }
        Err(Refusal::NotFound)
    }

    fn device_file(&self, device: Arc<DeviceRecord>, file_name: &str) -> Result<Resolved, Refusal> {
        let (vendor, model) = vendor_model(&device).map_err(|_| Refusal::NotFound)?;
        if vendor.is_own_file(model, device.mac, file_name) {
            return Ok(Resolved::Device { device, spec: None, vendor, model });
        }
        let spec = vendor.device_file(model, device.mac, file_name).ok_or(Refusal::NotFound)?;
        if matches!(spec.scope, FileScope::Model) {
            return Ok(Resolved::Model { vendor, model, spec, device: Some(device) });
        }
        Ok(Resolved::Device { device, spec: Some(spec), vendor, model })
    }

    /// The bytes for a resolved request, from the cache or freshly rendered. `firmware` is what
    /// the requester's User-Agent reports (`None` when no phone is asking): a vendor whose
    /// firmware generations read different dialects ([`Vendor::dialect`]) gets the one it reads,
    /// cached apart from the others.
    pub fn served(
        &self,
        resolved: &Resolved,
        requested: &str,
        firmware: Option<&str>,
    ) -> Result<Arc<Served>, RenderFailure> {
        match resolved {
            Resolved::Device { device, spec, vendor, model } => {
                let (vendor, model) = (*vendor, *model);
                let dialect = self.device_dialect(device, vendor, model, firmware);
                // A rendering made while the device had no firmware target is what every
                // requester gets until something about the device changes, and each such change
                // (a setting at any level, a rollout's pin) drops it from the cache: it is served
                // without working out the plan (a pin look-up and the merged setting's, two locks
                // and three maps) on every fetch.
                let plain = self.cache.device_file(device.mac, &device_key(requested, dialect, None));
                if let Some(hit) = plain.as_ref().filter(|s| s.no_firmware_target) {
                    Metrics::inc(&self.metrics.cache_hits);
                    return Ok(hit.clone());
                }
                // Read before the plan: a pin or setting changed from here on moves it, and this
                // rendering is then not kept (with its flag, it would outlive the change).
                let generation = self.cache.generation();
                let plan = self.firmware_plan(device, vendor, model, firmware);
                let key = device_key(requested, dialect, plan.key_version());
                let hit = if plan.key_version().is_none() { plain } else { self.cache.device_file(device.mac, &key) };
                if let Some(hit) = hit {
                    Metrics::inc(&self.metrics.cache_hits);
                    return Ok(hit);
                }
                let key = key.into_owned();
                let mut settings = self.device_settings(device);
                plan.warn_if_missing(device);
                self.apply_firmware(device, &plan, &mut settings)?;
                self.resource_urls(device, vendor, model, &mut settings)?;
                let own;
                let spec = match spec {
                    Some(spec) => spec,
                    None => {
                        own = vendor
                            .own_file(model, device.mac)
                            .ok_or_else(|| RenderFailure::Template(format!("{} has no file of its own", device.mac)))?;
                        &own
                    }
                };
                let ctx = RenderContext { vendor, model, mac: Some(device.mac), settings: &settings, firmware };
                let state_key = dialect_key(spec.name.clone(), dialect);
                let no_target = plan.target.is_none();
                let served = self.finish_render(&ctx, spec, device.mac, &state_key, no_target)?;
                self.cache.insert_device_file(generation, device.mac, key, served.clone());
                Ok(served)
            }
            Resolved::Model { vendor, model, spec, .. } => {
                let dialect = self.global_dialect(*vendor, model, firmware);
                let key = model_key(vendor.id(), model.name, &dialect_key(spec.name.clone(), dialect));
                if let Some(hit) = self.cache.model_file(&key) {
                    Metrics::inc(&self.metrics.cache_hits);
                    return Ok(hit);
                }
                let generation = self.cache.generation();
                let settings = self.inventory.global();
                let ctx = RenderContext { vendor: *vendor, model, mac: None, settings: &settings, firmware };
                let served = self.finish_render(&ctx, spec, MODEL_SCOPE_MAC, &key, false)?;
                self.cache.insert_model_file(generation, key, served.clone());
                Ok(served)
            }
        }
    }

    /// The dialect a device's requester gets ([`Vendor::dialect`]), from the one setting that
    /// decides it rather than the fully merged settings, so a cache hit stays cheap.
    fn device_dialect(
        &self,
        device: &DeviceRecord,
        vendor: &'static dyn Vendor,
        model: &'static ModelInfo,
        firmware: Option<&str>,
    ) -> Option<&'static str> {
        vendor.dialect(model, &Settings::new(), firmware)?;
        let key = format!("{}.dialect", vendor.id());
        vendor.dialect(model, &self.inventory.merged_keys(device, &[key.as_str()]), firmware)
    }

    /// The dialect of a common file ([`Vendor::dialect`]), from the one global setting that
    /// decides it, for the same reason as [`Self::device_dialect`].
    fn global_dialect(
        &self,
        vendor: &'static dyn Vendor,
        model: &'static ModelInfo,
        firmware: Option<&str>,
    ) -> Option<&'static str> {
        vendor.dialect(model, &Settings::new(), firmware)?;
        let key = format!("{}.dialect", vendor.id());
        vendor.dialect(model, &self.inventory.global_keys(&[key.as_str()]), firmware)
    }

    /// Renders one of a device's files, bypassing the cache, as no particular phone would get
    /// it: a vendor with dialects gives the one its settings or the model name (`render`).
    pub fn render_device_file(&self, device: &DeviceRecord, spec: &FileSpec) -> Result<Arc<Served>, RenderFailure> {
        let (vendor, model) = vendor_model(device)?;
        let mut settings = self.device_settings(device);
        let plan = self.firmware_plan(device, vendor, model, None);
        self.apply_firmware(device, &plan, &mut settings)?;
        self.resource_urls(device, vendor, model, &mut settings)?;
        let ctx = RenderContext { vendor, model, mac: Some(device.mac), settings: &settings, firmware: None };
        let state_key = dialect_key(spec.name.clone(), vendor.dialect(model, &settings, None));
        self.finish_render(&ctx, spec, device.mac, &state_key, false)
    }

    /// The SHA-256 of a device file as it would be served now, without caching it or
    /// recording a content change (a campaign needs only the hash, for 100,000 devices). No
    /// phone is asking, so a vendor with dialects gives the one its settings or the model name,
    /// and the firmware target counts the device as running what it last reported.
    pub fn rendered_hash(&self, device: &DeviceRecord, spec: &FileSpec) -> Result<String, RenderFailure> {
        let (vendor, model) = vendor_model(device)?;
        let dialect = self.device_dialect(device, vendor, model, None);
        // The same plan and key a fetch reporting the firmware last seen gets, so the hash is
        // that of what the phone was (or will be) served.
        let plan = self.firmware_plan(device, vendor, model, None);
        let key = dialect_key(spec.name.to_ascii_lowercase(), dialect) + &plan.key_suffix();
        if let Some(hit) = self.cache.device_file(device.mac, &key) {
            return Ok(hit.hash().to_string());
        }
        let mut settings = self.device_settings(device);
        self.apply_firmware(device, &plan, &mut settings)?;
        self.resource_urls(device, vendor, model, &mut settings)?;
        let ctx = RenderContext { vendor, model, mac: Some(device.mac), settings: &settings, firmware: None };
        let bytes = self.renderer.render(&ctx, spec).map_err(|e| RenderFailure::Template(e.to_string()))?;
        Ok(content_hash(&bytes))
    }

    /// Renders, notes the content's change time and wraps it for serving; `no_firmware_target`
    /// marks a device rendering made without a firmware target ([`Served::no_firmware_target`]).
    fn finish_render(
        &self,
        ctx: &RenderContext<'_>,
        spec: &FileSpec,
        mac: Mac,
        state_key: &str,
        no_firmware_target: bool,
    ) -> Result<Arc<Served>, RenderFailure> {
        Metrics::inc(&self.metrics.renders);
        let bytes = self.renderer.render(ctx, spec).map_err(|e| RenderFailure::Template(e.to_string()))?;
        let hash = content_hash(&bytes);
        let (changed_at, new_state) = self.cache.note_content(mac, state_key, &hash, sipprov_store::now_ms());
        if let Some(state) = new_state {
            self.events.record(Record::Rendered(state));
        }
        let served = Served::new(spec.name.clone(), bytes, spec.content_type, hash, changed_at);
        Ok(Arc::new(Served { no_firmware_target, ..served }))
    }

    /// The files a device is served, for listings and `render`.
    pub fn device_files(&self, device: &DeviceRecord) -> Result<Vec<FileSpec>, RenderFailure> {
        let (vendor, model) = vendor_model(device)?;
        Ok(vendor.device_files(model, device.mac))
    }

    /// The SHA-256 of the device's own config file as rendered now (for `--changed`).
    pub fn primary_file_hash(&self, mac: Mac) -> Option<String> {
        let device = self.inventory.device(mac)?;
        let spec = own_file(&device)?;
        self.rendered_hash(&device, &spec).ok()
    }

    /// The name of the device's own config file.
    pub fn primary_file_name(&self, mac: Mac) -> Option<String> {
        self.own_file_name(&*self.inventory.device(mac)?)
    }

    /// The name of a device's own config file (what its fetch must be to confirm a campaign's
    /// NOTIFY), without building the list of every file it gets.
    pub fn own_file_name(&self, device: &DeviceRecord) -> Option<String> {
        own_file(device).map(|f| f.name)
    }
}

/// A device's own config file ([`sipprov_vendors::Vendor::own_file`]); `None` when its vendor
/// or model is unknown.
fn own_file(device: &DeviceRecord) -> Option<FileSpec> {
    let (vendor, model) = vendor_model(device).ok()?;
    vendor.own_file(model, device.mac)
}

/// A device file's render cache key: the requested name in lower case, plus `#<dialect>` and
/// `~fw=<version>` ([`firmware::FirmwarePlan::key_suffix`]) when they apply. Borrowed, with
/// nothing allocated, in the common case of a lower-case name and neither suffix: it is built on
/// every request, cache hits included.
fn device_key<'a>(requested: &'a str, dialect: Option<&str>, firmware: Option<&str>) -> Cow<'a, str> {
    if dialect.is_none() && firmware.is_none() && !requested.bytes().any(|b| b.is_ascii_uppercase()) {
        return Cow::Borrowed(requested);
    }
    let mut key = dialect_key(requested.to_ascii_lowercase(), dialect);
    if let Some(version) = firmware {
        key.push_str("~fw=");
        key.push_str(version);
    }
    Cow::Owned(key)
}

/// A file's cache and change-time key: its name, plus `#<dialect>` for vendors with dialects,
/// so two firmware generations never share a rendering or an ETag history.
fn dialect_key(name: String, dialect: Option<&str>) -> String {
    match dialect {
        Some(d) => format!("{name}#{d}"),
        None => name,
    }
}
