//! The state every handler shares, and the one path from a request to bytes.
//!
//! [`AppState::resolve`] turns a requested file name plus what the User-Agent
//! says into a device file or a model-scoped common file; [`AppState::served`]
//! returns it from the cache or renders it. The admin API's `render` uses the
//! same functions, so what it prints is exactly what a phone receives.

use std::sync::Arc;
use std::time::Duration;

use sipprov_model::known;
use sipprov_model::{Mac, Settings};
use sipprov_store::{DeviceRecord, FirstFetchClaim, Store, StoreError};
use sipprov_vendors::{registry, FileScope, FileSpec, ModelInfo, RenderContext, Renderer, UserAgentInfo, Vendor};

use crate::cache::{content_hash, model_key, RenderCache, Served, MODEL_SCOPE_MAC};
use crate::config::ServerConfig;
use crate::fetchlog::{FetchLog, Record};
use crate::inventory::Inventory;
use crate::metrics::Metrics;
use crate::ServerError;

/// Shared server state.
pub struct AppState {
    pub store: Store,
    pub inventory: Inventory,
    pub renderer: Renderer,
    pub cache: RenderCache,
    pub fetchlog: FetchLog,
    pub metrics: Arc<Metrics>,
    pub api_token: String,
    pub config: ServerConfig,
    /// Campaigns being driven or cancelled by this process.
    pub campaigns: crate::campaign::Campaigns,
    /// The SIP endpoint, set once the listener is bound.
    pub sip: std::sync::OnceLock<sipprov_sip::Endpoint>,
    /// Phone authentication: nonces, failure throttle, first-fetch unlocks (`crate::auth`).
    pub security: crate::auth::Security,
}

/// What a request names.
pub enum Resolved {
    /// One of a known device's files.
    Device { device: Arc<DeviceRecord>, spec: FileSpec },
    /// A common file for a model, rendered from global settings only.
    Model { vendor: &'static dyn Vendor, model: &'static ModelInfo, spec: FileSpec, device: Option<Arc<DeviceRecord>> },
}

/// Why a request gets no file.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Nothing by that name for this requester: a plain 404.
    NotFound,
    /// The User-Agent's MAC contradicts the MAC in the path.
    MacMismatch { path: Mac, user_agent: Mac },
}

/// Why a device, vendor or model in the inventory cannot be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderFailure {
    #[error("device {mac} names vendor {vendor:?}, which this server does not know")]
    UnknownVendor { mac: Mac, vendor: String },
    #[error("device {mac} names model {model:?}, which vendor {vendor} does not know")]
    UnknownModel { mac: Mac, vendor: String, model: String },
    #[error("{0}")]
    Template(String),
}

impl AppState {
    /// Opens the store, loads the inventory and starts the background writer.
    pub async fn open(config: &ServerConfig) -> Result<Arc<AppState>, ServerError> {
        let dir_err = |source| ServerError::DataDir { path: config.data_dir.display().to_string(), source };
        crate::datadir::create(&config.data_dir).map_err(dir_err)?;
        std::fs::create_dir_all(config.template_dir()).map_err(dir_err)?;
        crate::writable::check_data_dir(&config.data_dir)?;
        let api_token = crate::token::load_or_create(&config.data_dir).map_err(dir_err)?;
        let store = crate::writable::open_database(config).await?;
        crate::datadir::warn_if_exposed(&config.data_dir);
        let inventory = Inventory::load(&store).await?;
        let cache = RenderCache::new(store.rendered_states().await?);
        let metrics = Arc::new(Metrics::default());
        let fetchlog = FetchLog::spawn(store.clone(), metrics.clone(), &config.fetch_log);
        let security = crate::auth::Security::new(&config.security);
        load_windows(&store, &security).await?;
        tracing::info!(devices = inventory.len(), "inventory loaded");
        release_freed_memory();
        let state = Arc::new(AppState {
            renderer: Renderer::new(Some(config.template_dir())),
            store,
            inventory,
            cache,
            fetchlog,
            metrics,
            api_token,
            config: config.clone(),
            sip: std::sync::OnceLock::new(),
            campaigns: Default::default(),
            security,
        });
        crate::auth::posture::assess(&state, sipprov_store::now_ms()).log(&state.security.config);
        Ok(state)
    }

    /// What a device's templates and access policy see: its merged settings, plus the HTTP
    /// credentials generated for it (`auth::window`) when it has none of its own and its file
    /// can carry them.
    pub fn device_settings(&self, device: &DeviceRecord) -> Settings {
        let mut settings = self.inventory.merged_settings(device);
        self.add_generated_credentials(device, &mut settings);
        settings
    }

    /// Adds the device's generated credentials to `settings` when these name neither
    /// `http.username` nor `http.password`.
    pub fn add_generated_credentials(&self, device: &DeviceRecord, settings: &mut Settings) {
        let named = |key| settings.get_key(key).is_some_and(|v: &str| !v.is_empty());
        if named(&known::HTTP_USERNAME) || named(&known::HTTP_PASSWORD) {
            return;
        }
        let Some(generated) = self.security.windows.generated(device.mac) else { return };
        if can_carry_credentials(device) {
            // Generated values are plain letters and digits, which every key accepts.
            let _ = settings.set(known::HTTP_USERNAME.name(), &generated.username);
            let _ = settings.set(known::HTTP_PASSWORD.name(), &generated.password);
        }
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
        let path_mac = ua_vendor
            .and_then(|v| v.mac_in_file_name(file_name))
            .or_else(|| registry().vendors().iter().find_map(|v| v.mac_in_file_name(file_name)));
        let ua_mac = ua.and_then(|u| u.mac);
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
        let spec = vendor
            .device_files(model, device.mac)
            .into_iter()
            .find(|f| f.matches(file_name))
            .ok_or(Refusal::NotFound)?;
        if matches!(spec.scope, FileScope::Model) {
            return Ok(Resolved::Model { vendor, model, spec, device: Some(device) });
        }
        Ok(Resolved::Device { device, spec })
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
        let requested = requested.to_ascii_lowercase();
        match resolved {
            Resolved::Device { device, spec } => {
                let (vendor, model) = vendor_model(device)?;
                let dialect = self.device_dialect(device, vendor, model, firmware);
                let key = dialect_key(requested, dialect);
                if let Some(hit) = self.cache.device_file(device.mac, &key) {
                    Metrics::inc(&self.metrics.cache_hits);
                    return Ok(hit);
                }
                let generation = self.cache.generation();
                let settings = self.device_settings(device);
                let ctx = RenderContext { vendor, model, mac: Some(device.mac), settings: &settings, firmware };
                let served = self.finish_render(&ctx, spec, device.mac, &dialect_key(spec.name.clone(), dialect))?;
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
                let served = self.finish_render(&ctx, spec, MODEL_SCOPE_MAC, &key)?;
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
        let settings = self.device_settings(device);
        let ctx = RenderContext { vendor, model, mac: Some(device.mac), settings: &settings, firmware: None };
        let state_key = dialect_key(spec.name.clone(), vendor.dialect(model, &settings, None));
        self.finish_render(&ctx, spec, device.mac, &state_key)
    }

    /// The SHA-256 of a device file as it would be served now, without caching it or
    /// recording a content change (a campaign needs only the hash, for 100,000 devices). No
    /// phone is asking, so a vendor with dialects gives the one its settings or the model name.
    pub fn rendered_hash(&self, device: &DeviceRecord, spec: &FileSpec) -> Result<String, RenderFailure> {
        let (vendor, model) = vendor_model(device)?;
        let dialect = self.device_dialect(device, vendor, model, None);
        if let Some(hit) = self.cache.device_file(device.mac, &dialect_key(spec.name.to_ascii_lowercase(), dialect)) {
            return Ok(hit.hash.clone());
        }
        let settings = self.device_settings(device);
        let ctx = RenderContext { vendor, model, mac: Some(device.mac), settings: &settings, firmware: None };
        let bytes = self.renderer.render(&ctx, spec).map_err(|e| RenderFailure::Template(e.to_string()))?;
        Ok(content_hash(&bytes))
    }

    fn finish_render(
        &self,
        ctx: &RenderContext<'_>,
        spec: &FileSpec,
        mac: Mac,
        state_key: &str,
    ) -> Result<Arc<Served>, RenderFailure> {
        Metrics::inc(&self.metrics.renders);
        let bytes = self.renderer.render(ctx, spec).map_err(|e| RenderFailure::Template(e.to_string()))?;
        let hash = content_hash(&bytes);
        let (changed_at, new_state) = self.cache.note_content(mac, state_key, &hash, sipprov_store::now_ms());
        if let Some(state) = new_state {
            self.fetchlog.record(Record::Rendered(state));
        }
        Ok(Arc::new(Served::new(spec.name.clone(), bytes, spec.content_type, hash, changed_at)))
    }

    /// The files a device is served, for listings and `render`.
    pub fn device_files(&self, device: &DeviceRecord) -> Result<Vec<FileSpec>, RenderFailure> {
        let (vendor, model) = vendor_model(device)?;
        Ok(vendor.device_files(model, device.mac))
    }

    /// Settings changed for one device.
    pub fn device_changed(&self, device: DeviceRecord) {
        let mac = device.mac;
        if let Some(group) = &device.group {
            self.inventory.ensure_group(group);
        }
        self.inventory.put_device(device);
        self.cache.invalidate_device(mac);
    }

    /// A group's settings changed.
    pub fn group_changed(&self, name: &str, settings: Settings) {
        self.inventory.put_group(name, settings);
        self.cache.invalidate_all();
    }

    /// The global settings changed.
    pub fn global_changed(&self, settings: Settings) {
        self.inventory.set_global(settings);
        self.cache.invalidate_all();
    }

    /// Polls the template override directory; an edit drops the render cache.
    pub async fn watch_templates(self: Arc<Self>) -> Result<(), ServerError> {
        let mut last = self.renderer.overrides_fingerprint();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            let now = self.renderer.overrides_fingerprint();
            if now != last {
                last = now;
                self.renderer.reload();
                self.cache.invalidate_all();
                tracing::info!(dir = %self.config.template_dir().display(), "template overrides changed; render cache cleared");
            }
        }
    }
}

/// A file's cache and change-time key: its name, plus `#<dialect>` for vendors with dialects,
/// so two firmware generations never share a rendering or an ETag history.
fn dialect_key(name: String, dialect: Option<&str>) -> String {
    match dialect {
        Some(d) => format!("{name}#{d}"),
        None => name,
    }
}

/// The vendor and model a stored device names.
pub fn vendor_model(device: &DeviceRecord) -> Result<(&'static dyn Vendor, &'static ModelInfo), RenderFailure> {
    let vendor = registry()
        .get(&device.vendor)
        .ok_or_else(|| RenderFailure::UnknownVendor { mac: device.mac, vendor: device.vendor.clone() })?;
    let model = vendor.model(&device.model).ok_or_else(|| RenderFailure::UnknownModel {
        mac: device.mac,
        vendor: device.vendor.clone(),
        model: device.model.clone(),
    })?;
    Ok((vendor, model))
}

/// True when the device's file can hand the phone HTTP credentials
/// ([`Vendor::http_credential_parameters`]).
/// Remembered per vendor and model (a bounded set): imports and start-up ask for every device.
pub fn can_carry_credentials(device: &DeviceRecord) -> bool {
    type Known = std::sync::Mutex<std::collections::HashMap<(&'static str, &'static str), bool>>;
    static KNOWN: std::sync::OnceLock<Known> = std::sync::OnceLock::new();
    let Ok((vendor, model)) = vendor_model(device) else { return false };
    let known = KNOWN.get_or_init(Known::default);
    let key = (vendor.id(), model.name);
    if let Some(answer) = known.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return *answer;
    }
    let answer = !vendor.http_credential_parameters(model).is_empty();
    known.lock().unwrap_or_else(|e| e.into_inner()).insert(key, answer);
    answer
}

/// Reloads what a restart must keep: windows an operator re-opened, windows already used, and
/// generated credentials.
async fn load_windows(store: &Store, security: &crate::auth::Security) -> Result<(), ServerError> {
    let windows = &security.windows;
    if security.config.first_fetch_window_secs > 0 {
        let since = security.unlocks_worth_keeping_since(sipprov_store::now_ms());
        for (mac, at) in store.unlocks_since(since).await? {
            windows.unlock(mac, at);
        }
        for (mac, at) in store.first_fetches_since(since).await? {
            windows.used(mac, at);
        }
    }
    for (mac, credentials) in store.generated_credentials().await? {
        windows.set_generated(mac, credentials);
    }
    Ok(())
}

/// Returns the memory freed after loading (decoded rows, temporary vectors) to the OS.
///
/// glibc keeps freed heap pages in its arenas; after loading 100,000 devices that is tens of
/// megabytes of resident memory the server will not need again.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free heap pages; it touches no live allocation.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Caps glibc at two malloc arenas. By default it creates up to eight per core, and a server
/// whose tasks hop between threads leaves freed memory stranded in each of them: during a
/// 100,000-device campaign that stranded memory is most of the resident set.
pub fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; it is called before the heavy allocation starts.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}
