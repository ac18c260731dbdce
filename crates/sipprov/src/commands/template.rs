//! `sipprov template …`: list, show, set, diff, version history, rollback, reset and preview of
//! template overrides, through `/api/v1/templates`.

use std::io::Write;

use reqwest::Method;
use sipprov_api::{
    PreviewTemplate, RollbackTemplate, SetTemplate, TemplateChanged, TemplateDetail, TemplateDiff, TemplateSummary,
};
use sipprov_model::Mac;

use crate::cli::{ApiArgs, TemplateCommand};
use crate::client::{segment, Body, Client};
use crate::output;

/// Runs one `template` subcommand.
pub(super) async fn command(cmd: TemplateCommand, api: &ApiArgs) -> Result<(), String> {
    let client = Client::new(api)?;
    match cmd {
        TemplateCommand::List { json } => {
            let list: Vec<TemplateSummary> = client.json(Method::GET, "/api/v1/templates", None).await?;
            if json {
                output::json(&list);
                return Ok(());
            }
            for t in list {
                let state = match (t.overridden, t.version) {
                    (true, Some(v)) => format!("overridden (version {v})"),
                    (false, Some(v)) => format!("built-in (version {v})"),
                    _ => "built-in".to_string(),
                };
                println!("{:<28} {state}", t.name);
            }
            Ok(())
        }
        TemplateCommand::Show { name, builtin } => {
            let t: TemplateDetail = client.json(Method::GET, &path(&name, "")?, None).await?;
            let body = if builtin { t.builtin } else { t.current.unwrap_or(t.builtin) };
            write_out(body.as_bytes())
        }
        TemplateCommand::Set { name, file, comment, device } => {
            let body = std::fs::read_to_string(&file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            let device = device.map(|d| d.parse::<Mac>().map_err(|e| format!("--device: {e}"))).transpose()?;
            let req = Body::json(&SetTemplate { body, comment, device })?;
            let r: TemplateChanged = client.json(Method::PUT, &path(&name, "")?, Some(req)).await?;
            println!("{}: version {} now serves", r.name, r.version);
            Ok(())
        }
        TemplateCommand::Diff { name, from, to } => {
            let mut query = Vec::new();
            query.extend(from.map(|v| format!("from={v}")));
            query.extend(to.map(|v| format!("to={v}")));
            let q = if query.is_empty() { String::new() } else { format!("?{}", query.join("&")) };
            let d: TemplateDiff = client.json(Method::GET, &format!("{}{q}", path(&name, "/diff")?), None).await?;
            if d.diff.is_empty() {
                eprintln!("no difference between {} and {}", d.from, d.to);
            }
            write_out(d.diff.as_bytes())
        }
        TemplateCommand::Versions { name, json } => {
            let t: TemplateDetail = client.json(Method::GET, &path(&name, "")?, None).await?;
            if json {
                output::json(&t.versions);
                return Ok(());
            }
            if t.versions.is_empty() {
                println!("{}: no versions; the built-in template serves", t.name);
            }
            for v in &t.versions {
                let what = if v.builtin { "built-in" } else { "override" };
                let comment = v.comment.as_deref().unwrap_or("");
                println!("{:>4}  {}  {:<10} {:<9} {comment}", v.version, output::time(v.created_at), v.author, what);
            }
            Ok(())
        }
        TemplateCommand::Rollback { name, version, comment } => {
            let req = Body::json(&RollbackTemplate { version, comment })?;
            let r: TemplateChanged = client.json(Method::POST, &path(&name, "/rollback")?, Some(req)).await?;
            println!("{}: version {version} restored as version {}", r.name, r.version);
            Ok(())
        }
        TemplateCommand::Reset { name, comment } => {
            let q = comment.map(|c| format!("?comment={}", segment(&c))).unwrap_or_default();
            let r: TemplateChanged = client.json(Method::DELETE, &format!("{}{q}", path(&name, "")?), None).await?;
            println!("{}: built-in template serves again (version {})", r.name, r.version);
            Ok(())
        }
        TemplateCommand::Preview { name, device, file } => {
            let device = device.parse::<Mac>().map_err(|e| format!("--device: {e}"))?;
            let body = file
                .map(|f| std::fs::read_to_string(&f).map_err(|e| format!("cannot read {}: {e}", f.display())))
                .transpose()?;
            let req = Body::json(&PreviewTemplate { device, body })?;
            let bytes = client.call(Method::POST, &path(&name, "/preview")?, Some(req)).await?;
            write_out(&bytes)
        }
    }
}

/// `/api/v1/templates/{vendor}/{file}{tail}` for NAME `vendor/file`.
fn path(name: &str, tail: &str) -> Result<String, String> {
    let (vendor, file) = name.split_once('/').filter(|(v, f)| !v.is_empty() && !f.is_empty()).ok_or_else(|| {
        format!("template name {name:?} is not vendor/file (e.g. yealink/mac.cfg.j2; see `sipprov template list`)")
    })?;
    Ok(format!("/api/v1/templates/{}/{}{tail}", segment(vendor), segment(file)))
}

fn write_out(bytes: &[u8]) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes).and_then(|_| out.flush()).map_err(|e| format!("cannot write to stdout: {e}"))
}
