//! `sipprov device list` (filtered, sorted, paged) and `sipprov status` (the fleet summary).

use reqwest::Method;
use sipprov_api::{Device, DeviceQuery, FleetSummary, Page, SortOrder, MAX_PAGE};

use crate::cli::{ApiArgs, DeviceListArgs};
use crate::client::{segment, Client};
use crate::output;

/// A query as a query string: every member present, percent-encoded.
fn query_string(query: &DeviceQuery) -> Result<String, String> {
    let value = serde_json::to_value(query).map_err(|e| format!("cannot encode the query: {e}"))?;
    let pairs: Vec<String> = value
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| {
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            format!("{k}={}", segment(&text))
        })
        .collect();
    Ok(pairs.join("&"))
}

/// `device list`: follows pages until `--limit` devices (or every match) are read.
pub(super) async fn devices(args: DeviceListArgs, api: &ApiArgs) -> Result<(), String> {
    let client = Client::new(api)?;
    let mut query = DeviceQuery {
        vendor: args.vendor,
        model: args.model,
        group: args.group,
        firmware: args.firmware,
        silent: args.silent.then_some(true),
        never_seen: args.never_seen.then_some(true),
        q: args.search,
        sort: Some(args.sort.into()),
        order: Some(if args.desc { SortOrder::Desc } else { SortOrder::Asc }),
        offset: Some(args.offset),
        ..DeviceQuery::default()
    };
    let wanted = args.limit.unwrap_or(usize::MAX);
    let mut devices: Vec<Device> = Vec::new();
    let mut total = 0;
    while devices.len() < wanted {
        query.limit = Some((wanted - devices.len()).min(MAX_PAGE));
        let page: Page<Device> =
            client.json(Method::GET, &format!("/api/v1/devices?{}", query_string(&query)?), None).await?;
        total = page.total;
        devices.extend(page.items);
        match page.next_offset {
            Some(next) => query.offset = Some(next),
            None => break,
        }
    }
    if args.json {
        output::json(&devices);
    } else {
        output::device_table(&devices);
        if devices.len() < total {
            println!("({} of {total} matching devices shown)", devices.len());
        }
    }
    Ok(())
}

/// `status`: the fleet summary.
pub(super) async fn status(json: bool, api: &ApiArgs) -> Result<(), String> {
    let summary: FleetSummary = Client::new(api)?.json(Method::GET, "/api/v1/summary", None).await?;
    if json {
        output::json(&summary);
    } else {
        output::summary(&summary);
    }
    Ok(())
}

/// `sipprov cluster status`: one line per node, alive ones first in the server's order.
pub(super) async fn cluster_status(json: bool, api: &ApiArgs) -> Result<(), String> {
    let status: sipprov_api::ClusterStatus = Client::new(api)?.json(Method::GET, "/api/v1/cluster", None).await?;
    if json {
        output::json(&status);
        return Ok(());
    }
    println!("backend: {}", status.backend);
    println!("{:<20} {:<40} {:<8} {:<20} {:<20} state", "NAME", "ID", "VERSION", "STARTED", "LAST HEARTBEAT");
    for n in &status.nodes {
        let state = match (n.alive, n.this_node) {
            (true, true) => "alive (this node)",
            (true, false) => "alive",
            (false, _) => "stale",
        };
        println!(
            "{:<20} {:<40} {:<8} {:<20} {:<20} {state}",
            n.name,
            n.id,
            n.version,
            output::time(n.started_at),
            output::time(n.heartbeat_at)
        );
    }
    if status.leases.is_empty() {
        println!("\nleases: none held");
        return Ok(());
    }
    println!("\n{:<32} {:<40} EXPIRES", "LEASE", "HOLDER");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    for l in &status.leases {
        let expires = match l.expires_at {
            Some(at) if at < now => format!("{} (ran out, not yet taken over)", output::time(at)),
            Some(at) => output::time(at),
            None => "while its holder's database connection lasts".to_string(),
        };
        println!("{:<32} {:<40} {expires}", l.what, l.holder);
    }
    Ok(())
}
