//! The template service: overrides of the built-in templates, kept as versions in the store,
//! validated before they are saved, and installed into the provisioning core.
//!
//! A change is checked first (the name must be one of the vendor's built-in templates, the body
//! must compile, and it must render for a synthetic device of every model of the vendor, and for
//! a chosen device when one is given); only then is it stored as a new version and installed.
//! A refused change stores nothing, so the previous version keeps serving. Every change (a new
//! body, a rollback, a reset to the built-in) is a new version: the history is never rewritten.
//!
//! The store is the source of truth: [`Templates::reload`] reads the current version of every
//! template and installs them, which is what start-up does and what a node of a cluster sharing
//! one database would call when another node changed a template. The admin API and the web
//! console call this service; it calls the store and [`Files`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sipprov_api::{TemplateDetail, TemplateSummary, TemplateVersionInfo};
use sipprov_model::{Mac, Settings};
use sipprov_store::{NewTemplateVersion, Store, StoreError, TemplateVersion};
use sipprov_vendors::{
    redacted, registry, FileScope, FileSpec, ModelInfo, RenderContext, RenderError, Renderer, Vendor,
};

use crate::files::Files;
use crate::inventory::Inventory;
use crate::ServerError;

/// Serialises changes and reloads within this process, so two of them cannot install their
/// views of the store in the wrong order.
static CHANGES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The author recorded for versions imported from the old override directory at start.
pub const IMPORT_AUTHOR: &str = "import";

/// Why a template request was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// No vendor by that id.
    #[error("unknown vendor {vendor:?}; known vendors: {}", known.join(", "))]
    UnknownVendor {
        /// What was asked for.
        vendor: String,
        /// The vendor ids.
        known: Vec<&'static str>,
    },
    /// The vendor has no built-in template by that name.
    #[error("vendor {vendor} has no template {file:?}; its templates: {}", known.join(", "))]
    UnknownTemplate {
        /// The vendor.
        vendor: String,
        /// The file asked for.
        file: String,
        /// The vendor's template file names.
        known: Vec<String>,
    },
    /// The body does not compile or does not render; nothing was stored.
    #[error("{}", invalid_text(.0, .1))]
    Invalid(RenderError, Option<String>),
    /// The template has no such version.
    #[error("template {name} has no version {version}")]
    UnknownVersion {
        /// The template.
        name: String,
        /// The version asked for.
        version: i64,
    },
    /// No device with that MAC, or it is not one of the template's vendor.
    #[error("{0}")]
    Device(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// `invalid template: yealink/mac.cfg.j2 line 3 column 11: syntax error: … (rendering …)`.
fn invalid_text(err: &RenderError, during: &Option<String>) -> String {
    let line = err.line.map(|l| format!(" line {l}")).unwrap_or_default();
    let column = err.column.map(|c| format!(" column {c}")).unwrap_or_default();
    let during = during.as_deref().map(|d| format!(" (rendering {d})")).unwrap_or_default();
    format!("invalid template: {}{line}{column}: {}{during}", err.template, err.message)
}

/// The template service over the store, the provisioning core and the inventory; cheap to build
/// (three handles), so callers build one per request.
#[derive(Clone)]
pub struct Templates {
    store: Store,
    files: Arc<Files>,
    inventory: Arc<Inventory>,
}

/// A template name split and checked: its vendor and its built-in source.
struct Known {
    name: String,
    vendor: &'static dyn Vendor,
    builtin: &'static str,
}

impl Templates {
    /// The service over these handles.
    pub fn new(store: Store, files: Arc<Files>, inventory: Arc<Inventory>) -> Templates {
        Templates { store, files, inventory }
    }

    /// Reads the current version of every template from the store and serves them; drops the
    /// render cache. Start-up calls it, and so would a node told that another one changed a
    /// template.
    pub async fn reload(&self) -> Result<(), StoreError> {
        let _guard = CHANGES.lock().await;
        self.reload_locked().await
    }

    async fn reload_locked(&self) -> Result<(), StoreError> {
        let current = self.store.current_template_versions().await?;
        let overrides: BTreeMap<String, String> = current.into_iter().filter_map(|v| Some((v.name, v.body?))).collect();
        tracing::info!(overrides = overrides.len(), "template overrides installed; render cache cleared");
        self.files.install_overrides(Arc::new(overrides));
        Ok(())
    }

    /// Every built-in template, with whether an override serves and its current version.
    pub async fn list(&self) -> Result<Vec<TemplateSummary>, StoreError> {
        let versions: BTreeMap<String, i64> =
            self.store.current_template_versions().await?.into_iter().map(|v| (v.name, v.version)).collect();
        let overrides = self.files.overrides();
        let mut out = Vec::new();
        for vendor in registry().vendors() {
            for (name, _) in vendor.templates() {
                out.push(TemplateSummary {
                    name: name.to_string(),
                    vendor: vendor.id().to_string(),
                    overridden: overrides.contains_key(*name),
                    version: versions.get(*name).copied(),
                });
            }
        }
        Ok(out)
    }

    /// One template: built-in source, current override, every version.
    pub async fn show(&self, vendor: &str, file: &str) -> Result<TemplateDetail, TemplateError> {
        let known = known(vendor, file)?;
        let versions = self.store.template_versions(&known.name).await?;
        let current = versions.last();
        Ok(TemplateDetail {
            name: known.name.clone(),
            vendor: known.vendor.id().to_string(),
            builtin: known.builtin.to_string(),
            current: current.and_then(|v| v.body.clone()),
            version: current.map(|v| v.version),
            versions: versions.iter().map(version_info).collect(),
        })
    }

    /// Validates `body` and, if it passes, stores it as the new current version and serves it.
    pub async fn set(&self, change: Change<'_>, body: &str, device: Option<Mac>) -> Result<i64, TemplateError> {
        let known = known_name(change.name)?;
        let _guard = CHANGES.lock().await;
        self.validate(&known, body, device)?;
        self.record(&known, Some(body), change).await
    }

    /// Makes `version` current again, as a new version (validated first when it has a body).
    pub async fn rollback(&self, change: Change<'_>, version: i64) -> Result<i64, TemplateError> {
        let known = known_name(change.name)?;
        let _guard = CHANGES.lock().await;
        let versions = self.store.template_versions(&known.name).await?;
        let Some(old) = versions.into_iter().find(|v| v.version == version) else {
            return Err(TemplateError::UnknownVersion { name: known.name, version });
        };
        if let Some(body) = &old.body {
            self.validate(&known, body, None)?;
        }
        self.record(&known, old.body.as_deref(), change).await
    }

    /// Serves the built-in template again, recorded as a version without a body.
    pub async fn reset(&self, change: Change<'_>) -> Result<i64, TemplateError> {
        let known = known_name(change.name)?;
        let _guard = CHANGES.lock().await;
        self.record(&known, None, change).await
    }

    async fn record(&self, known: &Known, body: Option<&str>, change: Change<'_>) -> Result<i64, TemplateError> {
        let new = NewTemplateVersion {
            name: &known.name,
            body,
            at: sipprov_store::now_ms(),
            author: &change.actor.name,
            comment: change.comment,
        };
        let action = if body.is_some() { "template.set" } else { "template.reset" };
        let detail = serde_json::json!({ "comment": change.comment, "bytes": body.map(str::len) });
        let entry = crate::access::audit::entry(change.actor, action, "template", &known.name, detail);
        let version = self.store.add_template_version_audited(new, Some(&entry)).await?;
        tracing::info!(template = %known.name, version, author = %change.actor.name, reset = body.is_none(), "template override changed");
        self.reload_locked().await?;
        Ok(version)
    }

    /// A unified diff: `from` (a version; the built-in when `None`) against `to` (a version;
    /// the current one when `None`). A version without a body stands for the built-in.
    pub async fn diff(
        &self,
        vendor: &str,
        file: &str,
        from: Option<i64>,
        to: Option<i64>,
    ) -> Result<sipprov_api::TemplateDiff, TemplateError> {
        let known = known(vendor, file)?;
        let versions = self.store.template_versions(&known.name).await?;
        let side = |v: Option<i64>, default: &str| -> Result<(String, String), TemplateError> {
            let Some(v) = v else {
                let text = match default {
                    "current" => versions.last().and_then(|v| v.body.clone()).unwrap_or_else(|| known.builtin.into()),
                    _ => known.builtin.to_string(),
                };
                return Ok((default.to_string(), text));
            };
            let found = versions.iter().find(|x| x.version == v);
            let found = found.ok_or(TemplateError::UnknownVersion { name: known.name.clone(), version: v })?;
            Ok((format!("version {v}"), found.body.clone().unwrap_or_else(|| known.builtin.to_string())))
        };
        let (from_label, old) = side(from, "built-in")?;
        let (to_label, new) = side(to, "current")?;
        let diff = similar::TextDiff::from_lines(&old, &new)
            .unified_diff()
            .context_radius(3)
            .header(&format!("{} ({from_label})", known.name), &format!("{} ({to_label})", known.name))
            .to_string();
        let diff = if old == new { String::new() } else { diff };
        Ok(sipprov_api::TemplateDiff { from: from_label, to: to_label, diff })
    }

    /// What device `mac` would receive from template `vendor/file` (the current one, or `body`
    /// when given), secrets masked: the redaction rule listings use ([`redacted`]) is applied to
    /// its settings before rendering. Returns the bytes and their content type.
    pub fn preview(
        &self,
        vendor: &str,
        file: &str,
        mac: Mac,
        body: Option<&str>,
    ) -> Result<(Vec<u8>, &'static str), TemplateError> {
        let known = known(vendor, file)?;
        let device = self.inventory.device(mac).ok_or_else(|| TemplateError::Device(format!("no device {mac}")))?;
        let (dev_vendor, model) = self.device_model(&device.vendor, &device.model, mac)?;
        if dev_vendor.id() != known.vendor.id() {
            let msg = format!(
                "device {mac} is a {} phone; {} is a {} template",
                dev_vendor.id(),
                known.name,
                known.vendor.id()
            );
            return Err(TemplateError::Device(msg));
        }
        let spec = dev_vendor.device_files(model, mac).into_iter().chain(common_file(dev_vendor, model));
        let spec = spec.into_iter().find(|f| f.template == known.name).ok_or_else(|| {
            TemplateError::Device(format!("device {mac} (model {}) receives no file from {}", model.name, known.name))
        })?;
        let renderer = self.candidate(&known, body)?;
        let settings = match spec.scope {
            FileScope::Device => redacted(&self.files.device_settings(&device)),
            FileScope::Model => redacted(&self.inventory.global()),
        };
        let mac = (spec.scope == FileScope::Device).then_some(mac);
        let ctx = RenderContext { vendor: dev_vendor, model, mac, settings: &settings, firmware: None };
        let bytes = renderer.render(&ctx, &spec).map_err(|e| TemplateError::Invalid(e, None))?;
        Ok((bytes, spec.content_type))
    }

    fn device_model(
        &self,
        vendor: &str,
        model: &str,
        mac: Mac,
    ) -> Result<(&'static dyn Vendor, &'static ModelInfo), TemplateError> {
        sipprov_vendors::find_model(vendor, model).map_err(|e| TemplateError::Device(format!("device {mac}: {e}")))
    }

    /// A renderer serving the current overrides plus `body` for `known` (when given), checked
    /// to compile.
    fn candidate(&self, known: &Known, body: Option<&str>) -> Result<Renderer, TemplateError> {
        let Some(body) = body else { return Ok(Renderer::with_overrides(self.files.overrides())) };
        let mut overrides = (*self.files.overrides()).clone();
        overrides.insert(known.name.clone(), body.to_string());
        let renderer = Renderer::with_overrides(Arc::new(overrides));
        renderer.check(&known.name).map_err(|e| TemplateError::Invalid(e, None))?;
        Ok(renderer)
    }

    /// Refuses `body` unless it compiles and renders every file of the vendor, for a synthetic
    /// device of each model and for `device` when given, wherever the templates serving now do.
    fn validate(&self, known: &Known, body: &str, device: Option<Mac>) -> Result<(), TemplateError> {
        let renderers = (Renderer::with_overrides(self.files.overrides()), self.candidate(known, Some(body))?);
        let global = self.inventory.global();
        // The chosen device first: its error is the one the operator asked about.
        if let Some(mac) = device {
            let device = self.inventory.device(mac).ok_or_else(|| TemplateError::Device(format!("no device {mac}")))?;
            let (vendor, model) = self.device_model(&device.vendor, &device.model, mac)?;
            if vendor.id() == known.vendor.id() {
                let settings = self.files.device_settings(&device);
                let target =
                    Target { vendor, model, mac, settings: &settings, global: &global, who: format!("device {mac}") };
                try_files(&target, &renderers)?;
            }
        }
        let synthetic = synthetic_settings(&global);
        let mac: Mac = "02000000000a".parse().map_err(|_| TemplateError::Device("synthetic MAC".into()))?;
        for model in known.vendor.models() {
            let who = format!("a synthetic {}", model.name);
            let target = Target { vendor: known.vendor, model, mac, settings: &synthetic, global: &global, who };
            try_files(&target, &renderers)?;
        }
        Ok(())
    }

    /// Imports the files of the old override directory (`<vendor>/<template>`) as versions, all
    /// validated first; then renames the directory to `templates.imported-<ms>` so the next start
    /// does not import them again. An unknown vendor folder, an unknown file or an invalid
    /// template fails start naming the file (and line); nothing is imported then.
    pub async fn import_dir(&self, dir: &Path) -> Result<usize, ServerError> {
        let found = match scan(dir) {
            Ok(found) => found,
            Err(msg) => return Err(ServerError::Config(msg)),
        };
        if found.is_empty() {
            return Ok(0);
        }
        let fail = |path: &Path, e: &dyn std::fmt::Display| {
            ServerError::Config(format!(
                "template override {}: {e}; fix or remove it (overrides now live in the database: `sipprov template set`)",
                path.display()
            ))
        };
        let _guard = CHANGES.lock().await;
        for (path, name, body) in &found {
            let known = known_name(name).map_err(|e| fail(path, &e))?;
            self.validate(&known, body, None).map_err(|e| fail(path, &e))?;
        }
        for (path, name, body) in &found {
            let comment = format!("imported from {}", path.display());
            let new = NewTemplateVersion {
                name,
                body: Some(body),
                at: sipprov_store::now_ms(),
                author: IMPORT_AUTHOR,
                comment: Some(&comment),
            };
            self.store.add_template_version(new).await?;
        }
        let moved = dir.with_file_name(format!("templates.imported-{}", sipprov_store::now_ms()));
        std::fs::rename(dir, &moved).map_err(|e| fail(dir, &e))?;
        tracing::warn!(count = found.len(), moved_to = %moved.display(),
            "template override files imported into the database as versions; the directory is no longer read");
        Ok(found.len())
    }
}

/// A device a candidate is rendered for: real or synthetic.
struct Target<'a> {
    vendor: &'static dyn Vendor,
    model: &'static ModelInfo,
    mac: Mac,
    /// The device's merged settings.
    settings: &'a Settings,
    /// The global settings, for common files.
    global: &'a Settings,
    /// How an error names it.
    who: String,
}

/// Renders each of the target's files with the candidate (`renderers.1`) wherever the
/// templates serving now (`renderers.0`) render it.
fn try_files(t: &Target<'_>, renderers: &(Renderer, Renderer)) -> Result<(), TemplateError> {
    let (current, candidate) = renderers;
    for spec in t.vendor.device_files(t.model, t.mac).into_iter().chain(common_file(t.vendor, t.model)) {
        let (mac, settings) = match spec.scope {
            FileScope::Device => (Some(t.mac), t.settings),
            FileScope::Model => (None, t.global),
        };
        let ctx = RenderContext { vendor: t.vendor, model: t.model, mac, settings, firmware: None };
        if current.render(&ctx, &spec).is_err() {
            continue;
        }
        if let Err(e) = candidate.render(&ctx, &spec) {
            return Err(TemplateError::Invalid(e, Some(format!("{} for {}", spec.name, t.who))));
        }
    }
    Ok(())
}

/// Who makes a change, to which template, and why.
#[derive(Debug, Clone, Copy)]
pub struct Change<'a> {
    /// The template's relative name, `vendor/file`.
    pub name: &'a str,
    /// Who (recorded with the version, and as the audit entry's actor).
    pub actor: &'a crate::access::Actor,
    /// Why, if said.
    pub comment: Option<&'a str>,
}

fn version_info(v: &TemplateVersion) -> TemplateVersionInfo {
    TemplateVersionInfo {
        version: v.version,
        created_at: v.created_at,
        author: v.author.clone(),
        comment: v.comment.clone(),
        builtin: v.body.is_none(),
    }
}

/// The vendor's common file for `model`, if it has one.
fn common_file(vendor: &'static dyn Vendor, model: &'static ModelInfo) -> Option<FileSpec> {
    let name = model.common_file?;
    vendor.model_file(name, Some(model.name)).map(|(_, spec)| spec)
}

/// Global settings plus one configured line, so line loops and account fields render.
fn synthetic_settings(global: &Settings) -> Settings {
    let mut s = global.clone();
    let line = [
        ("line.1.username", "1001"),
        ("line.1.auth_username", "1001"),
        ("line.1.password", "synthetic-password"),
        ("line.1.display_name", "Synthetic"),
        ("line.1.registrar", "sip.example.invalid"),
    ];
    for (k, v) in line {
        if s.get(k).is_none() {
            // A key this build does not accept is simply left out of the synthetic device.
            let _ = s.set(k, v);
        }
    }
    s
}

/// Checks `vendor/file` names a built-in template.
fn known(vendor: &str, file: &str) -> Result<Known, TemplateError> {
    let Some(v) = registry().get(vendor).filter(|v| v.id() == vendor) else {
        let known = registry().vendors().iter().filter(|v| !v.templates().is_empty()).map(|v| v.id()).collect();
        return Err(TemplateError::UnknownVendor { vendor: vendor.to_string(), known });
    };
    let name = format!("{vendor}/{file}");
    match v.templates().iter().find(|(n, _)| *n == name) {
        Some((_, builtin)) => Ok(Known { name, vendor: v, builtin }),
        None => {
            let prefix = format!("{vendor}/");
            let known =
                v.templates().iter().map(|(n, _)| n.strip_prefix(prefix.as_str()).unwrap_or(*n).to_string()).collect();
            Err(TemplateError::UnknownTemplate { vendor: vendor.to_string(), file: file.to_string(), known })
        }
    }
}

/// [`known`] for a whole relative name, `vendor/file`.
fn known_name(name: &str) -> Result<Known, TemplateError> {
    let (vendor, file) = name.split_once('/').unwrap_or((name, ""));
    known(vendor, file)
}

/// The old override directory's files as `(path, name, body)`; anything that is not
/// `<vendor>/<file>` with readable UTF-8 is an error naming it.
fn scan(dir: &Path) -> Result<Vec<(PathBuf, String, String)>, String> {
    let mut found = Vec::new();
    let read = match std::fs::read_dir(dir) {
        Ok(read) => read,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(format!("cannot read template override directory {}: {e}", dir.display())),
    };
    for entry in read {
        let entry = entry.map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        let path = entry.path();
        let vendor = entry.file_name().to_string_lossy().into_owned();
        if !path.is_dir() {
            return Err(format!("template override {}: expected a vendor folder (e.g. yealink/)", path.display()));
        }
        for file in std::fs::read_dir(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))? {
            let file = file.map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let fpath = file.path();
            let fname = file.file_name().to_string_lossy().into_owned();
            if let Err(e) = known(&vendor, &fname) {
                return Err(format!("template override {}: {e}", fpath.display()));
            }
            let body = std::fs::read_to_string(&fpath).map_err(|e| format!("cannot read {}: {e}", fpath.display()))?;
            found.push((fpath, format!("{vendor}/{fname}"), body));
        }
    }
    found.sort();
    Ok(found)
}
