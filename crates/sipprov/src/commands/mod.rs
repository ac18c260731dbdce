//! One function per subcommand; each calls the admin API and prints the answer.

use std::io::Write;

use reqwest::Method;
use sipprov_model::Mac;

use crate::cli::{ApiArgs, Cli, Command, DeviceCommand, GroupCommand, SettingsCommand};
use crate::client::{segment, Body, Client};
use crate::output;

mod campaign;
mod notify;

/// Runs one parsed command line.
pub async fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Serve(args) => crate::serve::run(args).await,
        Command::Device(cmd) => device(cmd).await,
        Command::Group(cmd) => group(cmd).await,
        Command::Settings(cmd) => settings(cmd).await,
        Command::Render { mac, file, api } => render(&mac, file.as_deref(), &api).await,
        Command::Notify(args) => notify::one_shot(args).await,
        Command::Resync(args) => campaign::resync(args).await,
        Command::Campaign(cmd) => campaign::command(cmd).await,
        Command::Vendors { api } => {
            let v = Client::new(&api)?.json(Method::GET, "/api/v1/vendors", None).await?;
            for vendor in v.as_array().into_iter().flatten() {
                let models: Vec<&str> =
                    vendor["models"].as_array().into_iter().flatten().filter_map(|m| m.as_str()).collect();
                println!("{:<11} {}", vendor["id"].as_str().unwrap_or("?"), models.join(" "));
            }
            Ok(())
        }
    }
}

/// Canonical MAC for URLs; the server checks again, but a local check gives the clearer error sooner.
fn mac(text: &str) -> Result<String, String> {
    text.parse::<Mac>().map(|m| m.to_string()).map_err(|e| e.to_string())
}

/// Validates KEY=VALUE arguments locally and turns them into a JSON object.
fn assignments(items: &[String]) -> Result<serde_json::Value, String> {
    let settings = sipprov_vendors::parse_settings(items.iter().map(String::as_str)).map_err(|e| e.to_string())?;
    serde_json::to_value(&settings).map_err(|e| e.to_string())
}

async fn device(cmd: DeviceCommand) -> Result<(), String> {
    match cmd {
        DeviceCommand::Add { mac: m, vendor, model, group, contact, set, api } => {
            let body = serde_json::json!({
                "mac": mac(&m)?, "vendor": vendor, "model": model, "group": group, "contact": contact,
                "settings": assignments(&set)?,
            });
            let d = Client::new(&api)?.json(Method::POST, "/api/v1/devices", Some(Body::Json(body))).await?;
            println!(
                "added {} ({} {})",
                d["mac"].as_str().unwrap_or("?"),
                d["vendor"].as_str().unwrap_or("?"),
                d["model"].as_str().unwrap_or("?")
            );
            Ok(())
        }
        DeviceCommand::Import { file, api } => {
            let text = std::fs::read_to_string(&file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            let r = Client::new(&api)?.json(Method::POST, "/api/v1/devices/import", Some(Body::Text(text))).await?;
            println!("imported {} devices", r["imported"]);
            Ok(())
        }
        DeviceCommand::List { json, api } => {
            let v = Client::new(&api)?.json(Method::GET, "/api/v1/devices", None).await?;
            if json {
                output::json(&v);
            } else {
                output::device_table(v.as_array().map(Vec::as_slice).unwrap_or_default());
            }
            Ok(())
        }
        DeviceCommand::Show { mac: m, json, api } => {
            let v = Client::new(&api)?.json(Method::GET, &format!("/api/v1/devices/{}", mac(&m)?), None).await?;
            if json {
                output::json(&v)
            } else {
                output::device(&v)
            }
            Ok(())
        }
        DeviceCommand::Set { mac: m, settings, group, contact, model, api } => {
            if settings.is_empty() && group.is_none() && contact.is_none() && model.is_none() {
                return Err("nothing to change: give KEY=VALUE settings, --group, --contact or --model".into());
            }
            let mut body = serde_json::json!({ "group": group, "contact": contact, "model": model });
            if !settings.is_empty() {
                body["settings"] = assignments(&settings)?;
            }
            if let Some(obj) = body.as_object_mut() {
                obj.retain(|_, v| !v.is_null());
            }
            let path = format!("/api/v1/devices/{}", mac(&m)?);
            Client::new(&api)?.json(Method::PATCH, &path, Some(Body::Json(body))).await?;
            println!("updated {}", mac(&m)?);
            Ok(())
        }
        DeviceCommand::Rm { mac: m, api } => {
            Client::new(&api)?.call(Method::DELETE, &format!("/api/v1/devices/{}", mac(&m)?), None).await?;
            println!("removed {}", mac(&m)?);
            Ok(())
        }
        DeviceCommand::Notify { mac: m, reboot, api } => notify::device(&mac(&m)?, reboot, &api).await,
        DeviceCommand::Unlock { mac: m, api } => {
            let path = format!("/api/v1/devices/{}/unlock", mac(&m)?);
            let v = Client::new(&api)?.json(Method::POST, &path, None).await?;
            println!(
                "{}: first-fetch window open for {} s (until epoch ms {})",
                v["mac"].as_str().unwrap_or("?"),
                v["window_secs"],
                v["open_until"]
            );
            Ok(())
        }
        DeviceCommand::Uploads { mac: m, json, api } => {
            let path = format!("/api/v1/devices/{}/uploads", mac(&m)?);
            let v = Client::new(&api)?.json(Method::GET, &path, None).await?;
            if json {
                output::json(&v)
            } else {
                output::uploads(v.as_array().map(Vec::as_slice).unwrap_or_default())
            }
            Ok(())
        }
        DeviceCommand::Upload { mac: m, file, api } => {
            let path = format!("/api/v1/devices/{}/uploads/{}", mac(&m)?, segment(&file));
            let bytes = Client::new(&api)?.call(Method::GET, &path, None).await?;
            let mut out = std::io::stdout().lock();
            out.write_all(&bytes).and_then(|_| out.flush()).map_err(|e| format!("cannot write to stdout: {e}"))
        }
        DeviceCommand::Log { mac: m, limit, json, api } => {
            let path = format!("/api/v1/devices/{}/log?limit={limit}", mac(&m)?);
            let v = Client::new(&api)?.json(Method::GET, &path, None).await?;
            if json {
                output::json(&v)
            } else {
                output::events(v.as_array().map(Vec::as_slice).unwrap_or_default())
            }
            Ok(())
        }
    }
}

async fn group(cmd: GroupCommand) -> Result<(), String> {
    match cmd {
        GroupCommand::Set { name, settings, api } => {
            let path = format!("/api/v1/groups/{}", segment(&name));
            let g = Client::new(&api)?.json(Method::PATCH, &path, Some(Body::Json(assignments(&settings)?))).await?;
            println!("group {} updated", g["name"].as_str().unwrap_or(&name));
            Ok(())
        }
        GroupCommand::Show { name, json, api } => {
            let g = Client::new(&api)?.json(Method::GET, &format!("/api/v1/groups/{}", segment(&name)), None).await?;
            if json {
                output::json(&g);
            } else {
                println!("group {}: {} devices", g["name"].as_str().unwrap_or("?"), g["devices"]);
                output::settings(&g["settings"]);
            }
            Ok(())
        }
        GroupCommand::List { api } => {
            let v = Client::new(&api)?.json(Method::GET, "/api/v1/groups", None).await?;
            for g in v.as_array().into_iter().flatten() {
                let n = g["settings"].as_object().map(|m| m.len()).unwrap_or(0);
                println!("{:<24} {n} settings", g["name"].as_str().unwrap_or("?"));
            }
            Ok(())
        }
    }
}

async fn settings(cmd: SettingsCommand) -> Result<(), String> {
    match cmd {
        SettingsCommand::Set { settings, api } => {
            Client::new(&api)?
                .json(Method::PATCH, "/api/v1/settings", Some(Body::Json(assignments(&settings)?)))
                .await?;
            println!("global settings updated");
            Ok(())
        }
        SettingsCommand::Show { api } => {
            output::settings(&Client::new(&api)?.json(Method::GET, "/api/v1/settings", None).await?);
            Ok(())
        }
    }
}

async fn render(m: &str, file: Option<&str>, api: &ApiArgs) -> Result<(), String> {
    let mut path = format!("/api/v1/devices/{}/render", mac(m)?);
    if let Some(f) = file {
        path.push_str(&format!("?file={}", segment(f)));
    }
    let bytes = Client::new(api)?.call(Method::GET, &path, None).await?;
    let mut out = std::io::stdout().lock();
    out.write_all(&bytes).and_then(|_| out.flush()).map_err(|e| format!("cannot write to stdout: {e}"))
}
