//! `sipprov pnp`: the devices PnP discovered (`pnp.mode = "any"`), approved into a group or
//! rejected.

use reqwest::Method;
use sipprov_api::{ApproveDiscovery, Device, Discovery};

use super::mac;
use crate::cli::{ApiArgs, PnpCommand};
use crate::client::{Body, Client};
use crate::output;

/// Runs one `sipprov pnp` subcommand.
pub(super) async fn command(cmd: PnpCommand, api: &ApiArgs) -> Result<(), String> {
    let client = Client::new(api)?;
    match cmd {
        PnpCommand::List { json } => {
            let waiting: Vec<Discovery> = client.json(Method::GET, "/api/v1/pnp/discoveries", None).await?;
            if json {
                output::json(&waiting);
            } else {
                print_list(&waiting);
            }
            Ok(())
        }
        PnpCommand::Approve { mac: m, group } => {
            let path = format!("/api/v1/pnp/discoveries/{}/approve", mac(&m)?);
            let body = Body::json(&ApproveDiscovery { group })?;
            let d: Device = client.json(Method::POST, &path, Some(body)).await?;
            println!("approved {} into group {}", d.mac, d.group.as_deref().unwrap_or("-"));
            Ok(())
        }
        PnpCommand::Reject { mac: m } => {
            let m = mac(&m)?;
            client.call(Method::DELETE, &format!("/api/v1/pnp/discoveries/{m}"), None).await?;
            println!("rejected {m}: removed (it is discovered again if it subscribes again while pnp.mode = any)");
            Ok(())
        }
    }
}

fn print_list(waiting: &[Discovery]) {
    if waiting.is_empty() {
        println!("no discovered devices waiting");
        return;
    }
    println!(
        "{:<12}  {:<11}  {:<14}  {:<16}  {:<21}  {:<20}  LAST SUBSCRIBE",
        "MAC", "VENDOR", "MODEL", "FIRMWARE", "SOURCE", "FIRST SUBSCRIBE"
    );
    for d in waiting {
        let seen = |t: Option<i64>| t.map_or_else(|| "-".to_string(), output::time);
        println!(
            "{:<12}  {:<11}  {:<14}  {:<16}  {:<21}  {:<20}  {}",
            d.mac,
            d.vendor,
            d.model,
            d.firmware.as_deref().unwrap_or("-"),
            d.source.as_deref().unwrap_or("-"),
            seen(d.first_seen),
            seen(d.last_seen)
        );
    }
}
