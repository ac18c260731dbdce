//! Rendering a device's files from minijinja templates.
//!
//! Default templates are compiled into the binary, each vendor module listing its own
//! ([`Vendor::templates`]). Overrides by the same relative name (e.g. `yealink/mac.cfg.j2`) come
//! from an in-memory set the caller installs ([`Renderer::set_overrides`]; the server keeps them
//! as versions in its database) or, for library users, from an override directory.
//! [`Renderer::check`] tells whether a candidate compiles, naming the line and column.
//! Rendering is strict (an undefined value is an error), bounded by a fuel limit, and
//! all-or-nothing: an error names the template file and line, and no partial bytes are returned.
//! Output is byte-stable: the context is built from ordered maps and vectors only.
//!
//! # Template context
//!
//! | name | content |
//! |---|---|
//! | `vendor` | vendor id, e.g. `yealink` |
//! | `model` | `{name, family, aliases, common_file, max_lines}` |
//! | `mac`, `mac_upper` | `001565aabbcc` / `001565AABBCC` (none for common files) |
//! | `file` | `{name, scope}` with scope `device` or `model` |
//! | `params` | the vendor parameters, `[{name, value, line, group}]`, overrides applied |
//! | `lines` | `[{number, index, handset, display_name, username, auth_username, password, registrar, port, transport, label}]`; unset fields are `""` |
//! | `settings` | every merged setting by key (for free keys: `settings["my.key"]`) |
//!
//! For a vendor whose files come in dialects ([`Vendor::dialect`]), `settings` holds
//! `<vendor>.dialect`, the one chosen for this requester, and so does what `params` was built from.
//! For common (model-scope) files `lines` is empty and `settings` holds no `line.*` key, no
//! secret ([`crate::is_secret_setting`]) and no value carrying a URI password.
//! Templates whose name ends in `.xml.j2` escape every printed value for XML automatically; the
//! `xml` filter does the same explicitly elsewhere, and `ini_cell` refuses values that would break
//! an AudioCodes ini table row. Blocks trim their trailing newline (`trim_blocks`, `lstrip_blocks`)
//! and a template's final newline is kept.
//!
//! ```
//! use sipprov_model::Settings;
//! use sipprov_vendors::{registry, RenderContext, Renderer};
//! let v = registry().get("gigaset").unwrap();
//! let model = v.model("N870").unwrap();
//! let mac = "7c2f80e0d605".parse().unwrap();
//! let settings = Settings::parse_assignments(["line.1.display_name=A&B", "line.1.username=1001"]).unwrap();
//! let file = &v.device_files(model, mac)[0];
//! let out = Renderer::new(None).render(&RenderContext { vendor: v, model, mac: Some(mac), settings: &settings, firmware: None }, file).unwrap();
//! assert!(String::from_utf8(out).unwrap().contains(r#"value="A&amp;B""#));
//! ```

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, RwLock};

use minijinja::value::Value;
use minijinja::{AutoEscape, Environment, Error, ErrorKind, UndefinedBehavior};
use sipprov_model::{redact_uri_password, LineField, Mac, Settings, REDACTED};

use crate::mapping::{self, VendorParam};
use crate::{FileScope, FileSpec, ModelInfo, Vendor};

/// Instruction budget per render: generous for 99 lines, but stops a runaway override template.
const FUEL: u64 = 2_000_000;

/// What one file is rendered for.
pub struct RenderContext<'a> {
    /// The device's vendor.
    pub vendor: &'static dyn Vendor,
    /// The device's model (for a common file: the model it was requested for).
    pub model: &'static ModelInfo,
    /// The device's MAC; `None` for common files requested by an unknown phone.
    pub mac: Option<Mac>,
    /// Settings already merged global → group → device; for model-scope files, global only.
    pub settings: &'a Settings,
    /// The firmware version the requester's User-Agent reports, `None` when no phone is asking
    /// (`sipprov render`, a campaign's hash). Vendors whose files come in several dialects pick
    /// one with it ([`Vendor::dialect`]).
    pub firmware: Option<&'a str>,
}

/// A template could not be loaded or rendered. Its `Display` names the template file and line,
/// e.g. `yealink/mac.cfg.j2 line 4: undefined value`. It never carries a setting's value: it is
/// logged, and shown by the admin API to whoever renders (see [`RenderError::message`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{template}{}: {message}", line.map(|l| format!(" line {l}")).unwrap_or_default())]
pub struct RenderError {
    /// The template the error is in (an included template when the error is there).
    pub template: String,
    /// The 1-based line, when known.
    pub line: Option<usize>,
    /// The 1-based column (in characters), when known: only [`Renderer::check`] fills it, for
    /// errors in the template it checks.
    pub column: Option<usize>,
    /// What went wrong: the kind of error, with minijinja's detail only for kinds whose detail
    /// describes the template's source (`detail_is_about_source`), never the data.
    pub message: String,
}

impl RenderError {
    /// Builds the error without any value the template was given: minijinja's detail may quote
    /// one (`{% include settings["line.1.password"] %}` reports the missing template by that
    /// name), so it is kept only for kinds about the template's own text, and even then any
    /// setting value found in it is replaced by `********`.
    fn from_minijinja(err: &Error, fallback: &str, settings: &Settings) -> RenderError {
        let message = match err.detail().filter(|d| detail_is_about_source(err.kind(), d)) {
            Some(detail) => scrub(&format!("{}: {detail}", err.kind()), settings),
            None => err.kind().to_string(),
        };
        RenderError {
            template: err.name().unwrap_or(fallback).to_string(),
            line: err.line().filter(|l| *l > 0),
            column: None,
            message,
        }
    }
}

/// Messages this module raises itself, which name no value.
const OWN_MESSAGES: &[&str] = &[INI_CELL_REFUSED, "cannot read override template "];

/// True when minijinja's detail for `kind` is about the template's text (a syntax error, an
/// unknown filter or function, fuel) rather than about a value it was given, or is one of this
/// module's own messages.
fn detail_is_about_source(kind: ErrorKind, detail: &str) -> bool {
    matches!(
        kind,
        ErrorKind::SyntaxError
            | ErrorKind::UnknownFilter
            | ErrorKind::UnknownFunction
            | ErrorKind::UnknownTest
            | ErrorKind::UnknownMethod
            | ErrorKind::TooManyArguments
            | ErrorKind::MissingArgument
            | ErrorKind::InvalidDelimiter
    ) || OWN_MESSAGES.iter().any(|m| detail.starts_with(m))
}

/// `text` with every setting value of three characters or more replaced by `********`: a
/// second guard behind [`detail_is_about_source`] (shorter values are digits and flags, and
/// replacing them would garble the message without hiding anything).
fn scrub(text: &str, settings: &Settings) -> String {
    let mut out = text.to_string();
    let mut values: Vec<&str> = settings.iter().map(|(_, v)| v).collect();
    // Longest first, so a value containing another is replaced whole.
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    for v in values.into_iter().filter(|v| v.len() >= 3) {
        if out.contains(v) {
            out = out.replace(v, REDACTED);
        }
    }
    out
}

/// Renders files; cheap to share (`Send + Sync`), caches compiled templates until [`Renderer::reload`].
pub struct Renderer {
    override_dir: Option<PathBuf>,
    overrides: RwLock<Overrides>,
    env: RwLock<Arc<Environment<'static>>>,
}

/// Override sources by relative template name (`yealink/mac.cfg.j2`).
pub type Overrides = Arc<BTreeMap<String, String>>;

impl Renderer {
    /// A renderer whose templates come from `override_dir` when a file of the same relative
    /// name exists there, and from the built-in defaults otherwise.
    pub fn new(override_dir: Option<PathBuf>) -> Renderer {
        let overrides = Overrides::default();
        let env = RwLock::new(Arc::new(environment(override_dir.clone(), overrides.clone())));
        Renderer { override_dir, overrides: RwLock::new(overrides), env }
    }

    /// A renderer with no override directory whose templates come from `overrides` by name,
    /// and from the built-in defaults otherwise.
    pub fn with_overrides(overrides: Overrides) -> Renderer {
        let r = Renderer::new(None);
        r.set_overrides(overrides);
        r
    }

    /// Replaces the in-memory override set (they win over the override directory) and drops
    /// every compiled template, so the next render uses them.
    pub fn set_overrides(&self, overrides: Overrides) {
        let fresh = Arc::new(environment(self.override_dir.clone(), overrides.clone()));
        *self.overrides.write().unwrap_or_else(|e| e.into_inner()) = overrides;
        *self.env.write().unwrap_or_else(|e| e.into_inner()) = fresh;
    }

    /// The in-memory override set in use.
    pub fn overrides(&self) -> Overrides {
        Arc::clone(&self.overrides.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Compiles template `name` (and what it includes statically) without rendering it: a
    /// syntax error comes back with its line and, when it is in `name` itself, its column.
    pub fn check(&self, name: &str) -> Result<(), RenderError> {
        let env = Arc::clone(&self.env.read().unwrap_or_else(|e| e.into_inner()));
        let source = self.overrides().get(name).cloned();
        env.get_template(name).map(drop).map_err(|e| {
            let mut err = RenderError::from_minijinja(&e, name, &Settings::new());
            if err.template == name {
                err.column = e.range().zip(source.as_deref()).and_then(|(r, src)| column_of(src, r.start));
            }
            err
        })
    }

    /// Renders one file. Either the complete output or an error; never partial bytes.
    pub fn render(&self, ctx: &RenderContext, file: &FileSpec) -> Result<Vec<u8>, RenderError> {
        let env = Arc::clone(&self.env.read().unwrap_or_else(|e| e.into_inner()));
        let fail = |e: Error| RenderError::from_minijinja(&e, file.template, ctx.settings);
        let template = env.get_template(file.template).map_err(fail)?;
        let with_dialect = with_dialect(ctx);
        let ctx = &RenderContext { settings: with_dialect.as_ref().unwrap_or(ctx.settings), ..*ctx };
        let out = template.render(context(ctx, file)).map_err(fail)?;
        // Encryption and the like happen here so the cache, ETag and `sipprov render` all see the served bytes.
        ctx.vendor.seal(file, ctx.settings, out.into_bytes()).map_err(|message| RenderError {
            template: file.template.to_string(),
            line: None,
            column: None,
            message,
        })
    }

    /// Drops every cached template so edited override files take effect.
    pub fn reload(&self) {
        let fresh = Arc::new(environment(self.override_dir.clone(), self.overrides()));
        *self.env.write().unwrap_or_else(|e| e.into_inner()) = fresh;
    }

    /// A hash of the override directory's file names, sizes and modification times (0 without
    /// a directory), cheap enough to poll so the server can call [`Renderer::reload`] and drop
    /// its cached output when it changes.
    pub fn overrides_fingerprint(&self) -> u64 {
        let Some(dir) = &self.override_dir else { return 0 };
        let mut entries = Vec::new();
        collect_files(dir, Path::new(""), 0, &mut entries);
        entries.sort();
        let mut h = std::hash::DefaultHasher::new();
        entries.hash(&mut h);
        h.finish()
    }

    /// The built-in templates as `(relative name, source)`, e.g. for `sipprov template list`.
    ///
    /// ```
    /// let names: Vec<_> = sipprov_vendors::Renderer::default_templates().map(|(n, _)| n).collect();
    /// assert!(names.contains(&"yealink/mac.cfg.j2"));
    /// ```
    pub fn default_templates() -> impl Iterator<Item = (&'static str, &'static str)> {
        crate::registry().vendors().iter().flat_map(|v| v.templates().iter().copied())
    }
}

/// For a vendor with dialects: the settings with `<vendor>.dialect` set to the one chosen for this
/// requester, so the parameter table and the template both read it; `None` when nothing changes.
fn with_dialect(ctx: &RenderContext) -> Option<Settings> {
    let dialect = ctx.vendor.dialect(ctx.model, ctx.settings, ctx.firmware)?;
    let key = format!("{}.dialect", ctx.vendor.id());
    if ctx.settings.get(&key) == Some(dialect) {
        return None;
    }
    let mut settings = ctx.settings.clone();
    settings.set(&key, dialect).ok()?;
    Some(settings)
}

/// Depth-limited walk collecting `(relative path, size, mtime)`; unreadable entries are skipped.
fn collect_files(dir: &Path, rel: &Path, depth: usize, out: &mut Vec<(PathBuf, u64, u128)>) {
    let Ok(read) = std::fs::read_dir(dir.join(rel)) else { return };
    for entry in read.flatten() {
        let (Ok(meta), path) = (entry.metadata(), rel.join(entry.file_name())) else { continue };
        if meta.is_dir() && depth < 8 {
            collect_files(dir, &path, depth + 1, out);
        } else if meta.is_file() {
            let mtime = meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
            out.push((path, meta.len(), mtime.map_or(0, |d| d.as_nanos())));
        }
    }
}

/// The 1-based character column of byte offset `at` in `source`.
fn column_of(source: &str, at: usize) -> Option<usize> {
    let before = source.get(..at)?;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    Some(before[line_start..].chars().count() + 1)
}

fn environment(override_dir: Option<PathBuf>, overrides: Overrides) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(FUEL));
    env.set_debug(false);
    let syntax = minijinja::syntax::SyntaxConfig::builder()
        .keep_trailing_newline(true)
        .trim_blocks(true)
        .lstrip_blocks(true)
        .build()
        .expect("static syntax config is valid");
    env.set_syntax(syntax);
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".xml.j2") || name.ends_with(".xml") {
            AutoEscape::Custom("xml".into())
        } else {
            AutoEscape::None
        }
    });
    env.set_formatter(format_value);
    env.add_filter("xml", |v: String| Value::from_safe_string(xml_escape(&v)));
    env.add_filter("ini_cell", ini_cell);
    env.set_loader(move |name| match overrides.get(name) {
        Some(source) => Ok(Some(source.clone())),
        None => load(override_dir.as_deref(), name),
    });
    env
}

/// The formatter: XML-escapes in `xml` auto-escape mode, defers to minijinja otherwise.
fn format_value(out: &mut minijinja::Output, state: &mut minijinja::State, value: &Value) -> Result<(), Error> {
    match state.auto_escape() {
        AutoEscape::Custom(mode) if mode == "xml" && !value.is_safe() => out
            .write_str(&xml_escape(&value.to_string()))
            .map_err(|_| Error::new(ErrorKind::WriteFailure, "write failed")),
        _ => minijinja::escape_formatter(out, state, value),
    }
}

/// Escapes the five XML special characters, so any value is safe inside an attribute.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// What `ini_cell` says about a value it refuses (never the value: it may be a password).
const INI_CELL_REFUSED: &str = "value contains , ; ' \" [ ] or surrounding spaces, which an ini table row cannot carry";

/// Refuses a value that would break an ini table row (`Authentication 0 = user, pass;`).
fn ini_cell(v: String) -> Result<String, Error> {
    if v.contains(crate::audiocodes::INI_TABLE_FORBIDDEN) || v.trim() != v {
        return Err(Error::new(ErrorKind::InvalidOperation, INI_CELL_REFUSED));
    }
    Ok(v)
}

/// Loads an override file if present, else the built-in default; `..` and absolute names are refused.
fn load(override_dir: Option<&Path>, name: &str) -> Result<Option<String>, Error> {
    let rel = Path::new(name);
    if !rel.components().all(|c| matches!(c, Component::Normal(_))) {
        return Ok(None);
    }
    if let Some(dir) = override_dir {
        let path = dir.join(rel);
        match std::fs::read_to_string(&path) {
            Ok(source) => return Ok(Some(source)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                let msg = format!("cannot read override template {}: {e}", path.display());
                return Err(Error::new(ErrorKind::InvalidOperation, msg));
            }
        }
    }
    Ok(Renderer::default_templates().find(|(n, _)| *n == name).map(|(_, s)| s.to_string()))
}

#[derive(serde::Serialize)]
struct TemplateContext<'a> {
    vendor: &'static str,
    model: &'static ModelInfo,
    mac: Option<String>,
    mac_upper: Option<String>,
    file: FileContext<'a>,
    params: Vec<VendorParam>,
    lines: Vec<BTreeMap<&'static str, Value>>,
    settings: SettingsMap<'a>,
}

/// The `settings` a template sees: the merged settings, in key order, those a common file may
/// carry only ([`may_be_common`]) for a model-scoped file. Serialized straight from the
/// settings, which are kept in key order already: a `BTreeMap` built per rendering to the same
/// end cost about 12,000 instructions of each.
struct SettingsMap<'a> {
    settings: &'a Settings,
    device: bool,
}

impl serde::Serialize for SettingsMap<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let shown = self.settings.iter().filter(|(k, v)| self.device || may_be_common(k, v));
        let mut map = serializer.serialize_map(None)?;
        for (key, value) in shown {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

#[derive(serde::Serialize)]
struct FileContext<'a> {
    name: &'a str,
    scope: &'static str,
}

fn context<'a>(ctx: &RenderContext<'a>, file: &'a FileSpec) -> Value {
    let device = file.scope == FileScope::Device;
    let settings = SettingsMap { settings: ctx.settings, device };
    let lines = if device {
        ctx.settings.line_indexes().into_iter().map(|n| line(ctx.settings, n)).collect()
    } else {
        Vec::new()
    };
    Value::from(minijinja::value::Serde(TemplateContext {
        vendor: ctx.vendor.id(),
        model: ctx.model,
        mac: ctx.mac.map(|m| m.to_string()),
        mac_upper: ctx.mac.map(|m| m.upper()),
        file: FileContext { name: &file.name, scope: if device { "device" } else { "model" } },
        params: ctx.vendor.parameters(ctx.model, ctx.settings, file.scope),
        lines,
        settings,
    }))
}

/// The rule for what a common file, served to anyone who asks, may carry of the global settings:
/// no line, no secret, no URI with a password in it.
fn may_be_common(key: &str, value: &str) -> bool {
    !(key.starts_with("line.") || crate::is_secret_setting(key) || redact_uri_password(value) != value)
}

fn line(settings: &Settings, n: u32) -> BTreeMap<&'static str, Value> {
    let mut m: BTreeMap<&'static str, Value> = LineField::ALL
        .into_iter()
        .map(|f| (f.name(), Value::from(mapping::line_value(settings, n, f).unwrap_or_default())))
        .collect();
    m.insert("number", Value::from(n));
    m.insert("index", Value::from(n - 1));
    m.insert("handset", Value::from(format!("{n:05}")));
    m
}
