//! One function per subcommand; each calls the admin API and prints the answer.

use std::io::Write;

use reqwest::Method;
use sipprov_api::{
    AddDevice, Device, DeviceEvent, Group, GroupChanged, GroupSummary, Imported, PatchDevice, Unlocked, Upload,
    VendorInfo,
};
use sipprov_model::{Mac, Settings};

use crate::cli::{ApiArgs, Cli, Command, DeviceCommand, GroupCommand, SettingsCommand};
use crate::client::{segment, Body, Client};
use crate::output;

mod access;
mod backup;
mod campaign;
mod directory;
mod files;
mod list;
mod manuals;
mod notify;
mod pnp;
mod rollout;
mod template;
mod user;

/// Runs one parsed command line.
pub(crate) async fn run(cli: Cli) -> Result<(), String> {
    let api = &cli.api;
    match cli.command {
        Command::Serve(args) => crate::serve::run(args, api.data_dir.clone()).await,
        Command::Device(cmd) => device(cmd, api).await,
        Command::Group(cmd) => group(cmd, api).await,
        Command::Settings(cmd) => settings(cmd, api).await,
        Command::Render { mac, file } => render(&mac, file.as_deref(), api).await,
        Command::Notify(args) => notify::one_shot(args).await,
        Command::Resync(args) => campaign::resync(args, api).await,
        Command::Campaign(cmd) => campaign::command(cmd, api).await,
        Command::Rollout(cmd) => rollout::command(cmd, api).await,
        Command::User(cmd) => user::command(cmd, api).await,
        Command::Directory(cmd) => directory::command(cmd, api).await,
        Command::Backup { file, data } => backup::backup(&file, &data, api.data_dir.as_deref()).await,
        Command::Restore { file, data } => backup::restore(&file, &data, api.data_dir.as_deref()).await,
        Command::Completions { shell } => manuals::completions(shell),
        Command::Man { dir } => manuals::man(&dir),
        Command::Template(cmd) => template::command(cmd, api).await,
        Command::Token(cmd) => access::token(cmd, api).await,
        Command::Audit(args) => access::audit(args, api).await,
        Command::Pnp(cmd) => pnp::command(cmd, api).await,
        Command::Firmware(cmd) => files::firmware(cmd, api).await,
        Command::Resource(cmd) => files::resource(cmd, api).await,
        Command::Status { json } => list::status(json, api).await,
        Command::Cluster(crate::cli::ClusterCommand::Status { json }) => list::cluster_status(json, api).await,
        Command::Vendors => {
            let vendors: Vec<VendorInfo> = Client::new(api)?.json(Method::GET, "/api/v1/vendors", None).await?;
            for vendor in vendors {
                println!("{:<11} {}", vendor.id, vendor.models.join(" "));
            }
            Ok(())
        }
    }
}

/// Canonical MAC for URLs; the server checks again, but a local check gives the clearer error sooner.
fn mac(text: &str) -> Result<String, String> {
    text.parse::<Mac>().map(|m| m.to_string()).map_err(|e| e.to_string())
}

/// Validates KEY=VALUE arguments locally, vendor-owned keys by their vendor.
fn assignments(items: &[String]) -> Result<Settings, String> {
    sipprov_vendors::parse_settings(items.iter().map(String::as_str)).map_err(|e| e.to_string())
}

async fn device(cmd: DeviceCommand, api: &ApiArgs) -> Result<(), String> {
    match cmd {
        DeviceCommand::Add { mac: m, vendor, model, group, contact, set } => {
            let body = AddDevice { mac: mac(&m)?, vendor, model, group, contact, settings: assignments(&set)? };
            let d: Device = Client::new(api)?.json(Method::POST, "/api/v1/devices", Some(Body::json(&body)?)).await?;
            println!("added {} ({} {})", d.mac, d.vendor, d.model);
            Ok(())
        }
        DeviceCommand::Import { file } => {
            // Streamed from the open file: a million-row file is never read whole, here or there.
            let cannot = |e: std::io::Error| format!("cannot read {}: {e}", file.display());
            let open = tokio::fs::File::open(&file).await.map_err(cannot)?;
            let len = open.metadata().await.map_err(cannot)?.len();
            let body = Body::CsvFile { file: open, len };
            let r: Imported = Client::new(api)?.json(Method::POST, "/api/v1/devices/import", Some(body)).await?;
            println!("imported {} devices", r.imported);
            Ok(())
        }
        DeviceCommand::List(args) => list::devices(args, api).await,
        DeviceCommand::Show { mac: m, json } => {
            let d: Device = Client::new(api)?.json(Method::GET, &format!("/api/v1/devices/{}", mac(&m)?), None).await?;
            if json {
                output::json(&d)
            } else {
                output::device(&d)
            }
            Ok(())
        }
        DeviceCommand::Set { mac: m, settings, group, contact, model } => {
            if settings.is_empty() && group.is_none() && contact.is_none() && model.is_none() {
                return Err("nothing to change: give KEY=VALUE settings, --group, --contact or --model".into());
            }
            let settings = if settings.is_empty() { None } else { Some(assignments(&settings)?) };
            let body = PatchDevice { vendor: None, model, group, contact, settings };
            let path = format!("/api/v1/devices/{}", mac(&m)?);
            let _: Device = Client::new(api)?.json(Method::PATCH, &path, Some(Body::json(&body)?)).await?;
            println!("updated {}", mac(&m)?);
            Ok(())
        }
        DeviceCommand::Rm { mac: m } => {
            Client::new(api)?.call(Method::DELETE, &format!("/api/v1/devices/{}", mac(&m)?), None).await?;
            println!("removed {}", mac(&m)?);
            Ok(())
        }
        DeviceCommand::Notify { mac: m, reboot } => notify::device(&mac(&m)?, reboot, api).await,
        DeviceCommand::Unlock { mac: m } => {
            let path = format!("/api/v1/devices/{}/unlock", mac(&m)?);
            let u: Unlocked = Client::new(api)?.json(Method::POST, &path, None).await?;
            println!("{}: first-fetch window open for {} s (until epoch ms {})", u.mac, u.window_secs, u.open_until);
            Ok(())
        }
        DeviceCommand::Uploads { mac: m, json } => {
            let path = format!("/api/v1/devices/{}/uploads", mac(&m)?);
            let uploads: Vec<Upload> = Client::new(api)?.json(Method::GET, &path, None).await?;
            if json {
                output::json(&uploads)
            } else {
                output::uploads(&uploads)
            }
            Ok(())
        }
        DeviceCommand::Upload { mac: m, file } => {
            let path = format!("/api/v1/devices/{}/uploads/{}", mac(&m)?, segment(&file));
            let bytes = Client::new(api)?.call(Method::GET, &path, None).await?;
            let mut out = std::io::stdout().lock();
            out.write_all(&bytes).and_then(|_| out.flush()).map_err(|e| format!("cannot write to stdout: {e}"))
        }
        DeviceCommand::Log { mac: m, limit, json } => {
            let path = format!("/api/v1/devices/{}/log?limit={limit}", mac(&m)?);
            let events: Vec<DeviceEvent> = Client::new(api)?.json(Method::GET, &path, None).await?;
            if json {
                output::json(&events)
            } else {
                output::events(&events)
            }
            Ok(())
        }
    }
}

async fn group(cmd: GroupCommand, api: &ApiArgs) -> Result<(), String> {
    match cmd {
        GroupCommand::Set { name, settings } => {
            let path = format!("/api/v1/groups/{}", segment(&name));
            let body = Body::json(&assignments(&settings)?)?;
            let g: GroupChanged = Client::new(api)?.json(Method::PATCH, &path, Some(body)).await?;
            println!("group {} updated", g.name);
            Ok(())
        }
        GroupCommand::Show { name, json } => {
            let path = format!("/api/v1/groups/{}", segment(&name));
            let g: Group = Client::new(api)?.json(Method::GET, &path, None).await?;
            if json {
                output::json(&g);
            } else {
                println!("group {}: {} devices", g.name, g.devices);
                output::settings(&g.settings);
            }
            Ok(())
        }
        GroupCommand::List => {
            let groups: Vec<GroupSummary> = Client::new(api)?.json(Method::GET, "/api/v1/groups", None).await?;
            for g in groups {
                println!("{:<24} {} settings", g.name, g.settings.len());
            }
            Ok(())
        }
    }
}

async fn settings(cmd: SettingsCommand, api: &ApiArgs) -> Result<(), String> {
    match cmd {
        SettingsCommand::Set { settings } => {
            let body = Body::json(&assignments(&settings)?)?;
            let _: Settings = Client::new(api)?.json(Method::PATCH, "/api/v1/settings", Some(body)).await?;
            println!("global settings updated");
            Ok(())
        }
        SettingsCommand::Show => {
            let settings: Settings = Client::new(api)?.json(Method::GET, "/api/v1/settings", None).await?;
            output::settings(&settings);
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
