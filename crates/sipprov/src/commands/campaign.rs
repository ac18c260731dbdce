//! `sipprov resync` and `sipprov campaign …`: start, follow, cancel and retry campaigns.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use reqwest::Method;
use sipprov_api::{Campaign, CreateCampaign};

use crate::cli::{ApiArgs, CampaignCommand, ResyncArgs};
use crate::client::{Body, Client};
use crate::output;

/// Starts a campaign; with `--wait`, follows it to the end.
pub(super) async fn resync(args: ResyncArgs, api: &ApiArgs) -> Result<(), String> {
    if args.all && args.reboot && !args.yes && !confirm("Reboot EVERY device in the inventory?")? {
        return Err("cancelled; nothing was sent".into());
    }
    let start_at = args.at.as_deref().map(parse_at).transpose()?;
    let body = CreateCampaign {
        macs: args.macs,
        group: args.group,
        all: args.all,
        changed: args.changed,
        reboot: args.reboot,
        rate: args.rate,
        max_in_flight: args.max_in_flight,
        start_at,
        confirm_window_seconds: args.confirm_window,
    };
    let client = Client::new(api)?;
    let c: Campaign = client.json(Method::POST, "/api/v1/campaigns", Some(Body::json(&body)?)).await?;
    println!("campaign {} started: {} devices ({}), state {}", c.id, c.devices, c.selector, c.state);
    if args.wait {
        follow(&client, c.id).await
    } else {
        Ok(())
    }
}

/// The `campaign` subcommands.
pub(super) async fn command(cmd: CampaignCommand, api: &ApiArgs) -> Result<(), String> {
    match cmd {
        CampaignCommand::List { json } => {
            let campaigns: Vec<Campaign> = Client::new(api)?.json(Method::GET, "/api/v1/campaigns", None).await?;
            if json {
                output::json(&campaigns);
                return Ok(());
            }
            println!("{:<5} {:<10} {:<21} {:>7}  {:<28} OUTCOMES", "ID", "STATE", "CREATED", "DEVICES", "SELECTION");
            for c in &campaigns {
                println!(
                    "{:<5} {:<10} {:<21} {:>7}  {:<28} {}",
                    c.id,
                    c.state,
                    output::time(c.created_at),
                    c.devices,
                    c.selector,
                    counts(c)
                );
            }
            Ok(())
        }
        CampaignCommand::Show { id, json } => {
            let c: Campaign = Client::new(api)?.json(Method::GET, &format!("/api/v1/campaigns/{id}"), None).await?;
            if json {
                output::json(&c);
            } else {
                show(&c);
            }
            Ok(())
        }
        CampaignCommand::Watch { id } => follow(&Client::new(api)?, id).await,
        CampaignCommand::Cancel { id } => {
            let c: Campaign =
                Client::new(api)?.json(Method::POST, &format!("/api/v1/campaigns/{id}/cancel"), None).await?;
            println!("campaign {id} cancelled: {}", counts(&c));
            Ok(())
        }
        CampaignCommand::Retry { id, wait } => {
            let client = Client::new(api)?;
            let c: Campaign = client.json(Method::POST, &format!("/api/v1/campaigns/{id}/retry"), None).await?;
            println!("campaign {id} retrying: {}", counts(&c));
            if wait {
                follow(&client, id).await
            } else {
                Ok(())
            }
        }
    }
}

/// Polls the campaign with a progress bar until it is done or cancelled; then prints the report.
async fn follow(client: &Client, id: i64) -> Result<(), String> {
    let bar = output::job_bar("campaign", id)?;
    loop {
        let c: Campaign = client.json(Method::GET, &format!("/api/v1/campaigns/{id}"), None).await?;
        bar.set_length(u64::try_from(c.devices).unwrap_or(0));
        bar.set_position(u64::try_from(c.settled()).unwrap_or(0));
        bar.set_message(counts(&c));
        if c.is_finished() {
            bar.finish_and_clear();
            show(&c);
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn show(c: &Campaign) {
    println!(
        "campaign {}: {} ({} devices, {}{})",
        c.id,
        c.state,
        c.devices,
        c.selector,
        if c.reboot { ", reboot" } else { "" }
    );
    println!(
        "  created {}, rate {}/s, at most {} in flight, confirmation window {} s",
        output::time(c.created_at),
        c.rate,
        c.max_in_flight,
        c.confirm_window_ms / 1000
    );
    if let Some(last) = c.last_notified_at {
        let seconds = (last - c.created_at).max(0) as f64 / 1000.0;
        println!("  last NOTIFY sent {} ({seconds:.1} s after creation)", output::time(last));
    }
    if let Some(last) = c.last_outcome_at {
        let seconds = (last - c.created_at).max(0) as f64 / 1000.0;
        println!("  last outcome recorded {} ({seconds:.1} s after creation)", output::time(last));
    }
    for (k, v) in &c.counts {
        println!("  {k:<22} {v}");
    }
    if !c.failing.is_empty() {
        println!("  failing devices:");
        for d in &c.failing {
            let status = d.status.map(|s| format!("{s} ")).unwrap_or_default();
            println!("    {} {:<15} {status}{}", d.mac, d.outcome, d.reason.as_deref().unwrap_or("-"));
        }
    }
}

fn counts(c: &Campaign) -> String {
    c.counts.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
}

fn confirm(question: &str) -> Result<bool, String> {
    if !std::io::stdin().is_terminal() {
        return Err(format!("{question} Refusing without a terminal; add --yes"));
    }
    eprint!("{question} Type yes to continue: ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).map_err(|e| e.to_string())?;
    Ok(answer.trim() == "yes")
}

/// `+30s`, `+10m`, `+2h`, or an RFC 3339 UTC time, to milliseconds since the epoch.
fn parse_at(text: &str) -> Result<i64, String> {
    let bad = || format!("invalid --at {text:?}: use +30s, +10m, +2h or 2026-11-22T02:00:00Z");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_err(|e| e.to_string())?;
    if let Some(rel) = text.strip_prefix('+') {
        let (num, unit) = rel.split_at(rel.len().saturating_sub(1));
        let n: u64 = num.parse().map_err(|_| bad())?;
        let secs = match unit {
            "s" => n,
            "m" => n * 60,
            "h" => n * 3600,
            _ => return Err(bad()),
        };
        return i64::try_from((now.as_secs() + secs) * 1000).map_err(|_| bad());
    }
    let t = httpdate_rfc3339(text).ok_or_else(bad)?;
    Ok(t * 1000)
}

/// Parses `YYYY-MM-DDTHH:MM[:SS]Z` to seconds since the epoch.
fn httpdate_rfc3339(text: &str) -> Option<i64> {
    let t = text.strip_suffix('Z')?;
    let (date, time) = t.split_once('T')?;
    let d: Vec<i64> = date.split('-').map(|p| p.parse().ok()).collect::<Option<_>>()?;
    let h: Vec<i64> = time.split(':').map(|p| p.parse().ok()).collect::<Option<_>>()?;
    let ([y, m, day], [hh, mm, rest @ ..]) = (d.as_slice(), h.as_slice()) else { return None };
    let ss = rest.first().copied().unwrap_or(0);
    if !(1..=12).contains(m) || !(1..=31).contains(day) || *hh > 23 || *mm > 59 || ss > 60 {
        return None;
    }
    let (y, m) = if *m <= 2 { (y - 1, m + 9) } else { (*y, m - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_parses_absolute_and_relative_times() {
        assert_eq!(parse_at("2026-11-22T02:00:00Z").unwrap(), 1_795_312_800_000);
        assert!(parse_at("+10m").unwrap() > parse_at("+10s").unwrap());
        for bad in ["tomorrow", "+10d", "2026-13-01T00:00Z", "+m"] {
            assert!(parse_at(bad).is_err(), "{bad}");
        }
    }
}
