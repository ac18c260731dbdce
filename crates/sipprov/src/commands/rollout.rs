//! `sipprov firmware rollout` and `sipprov rollout …`: start, follow, resume, abort and roll
//! back firmware rollouts.

use std::time::Duration;

use reqwest::Method;
use sipprov_api::{CreateRollout, Rollout};

use crate::cli::{ApiArgs, RolloutArgs, RolloutCommand};
use crate::client::{Body, Client};
use crate::output;

/// Starts a rollout; with `--wait`, follows it.
pub(crate) async fn start(args: RolloutArgs, api: &ApiArgs) -> Result<(), String> {
    let body = CreateRollout {
        group: args.group,
        version: args.to,
        canary: args.canary,
        wave_percent: args.wave.as_deref().map(|w| percent("--wave", w)).transpose()?,
        window_seconds: args.window.as_deref().map(duration_secs).transpose()?,
        halt_percent: args.halt_on.as_deref().map(|h| percent("--halt-on", h)).transpose()?,
    };
    let client = Client::new(api)?;
    let r: Rollout = client.json(Method::POST, "/api/v1/rollouts", Some(Body::json(&body)?)).await?;
    println!(
        "rollout {} started: group {} to {}, {} devices in {} waves, {} skipped",
        r.id,
        r.group,
        r.version,
        r.total(),
        r.waves,
        r.counts.get(&sipprov_api::RolloutDeviceState::Skipped).copied().unwrap_or(0)
    );
    for d in r.devices.iter().filter(|d| d.state == sipprov_api::RolloutDeviceState::Skipped) {
        println!("  skipped {}: {}", d.mac, d.reason.as_deref().unwrap_or("-"));
    }
    if args.wait {
        follow(&client, r.id).await
    } else {
        Ok(())
    }
}

/// The `rollout` subcommands.
pub(super) async fn command(cmd: RolloutCommand, api: &ApiArgs) -> Result<(), String> {
    match cmd {
        RolloutCommand::Start(args) => start(args, api).await,
        RolloutCommand::List { json } => {
            let all: Vec<Rollout> = Client::new(api)?.json(Method::GET, "/api/v1/rollouts", None).await?;
            if json {
                output::json(&all);
                return Ok(());
            }
            println!("{:<5} {:<12} {:<16} {:<16} {:<21} DEVICES", "ID", "STATE", "GROUP", "VERSION", "CREATED");
            for r in &all {
                println!(
                    "{:<5} {:<12} {:<16} {:<16} {:<21} {}",
                    r.id,
                    r.state,
                    r.group,
                    r.version,
                    output::time(r.created_at),
                    counts(r)
                );
            }
            Ok(())
        }
        RolloutCommand::Show { id, json } => {
            let r: Rollout = Client::new(api)?.json(Method::GET, &format!("/api/v1/rollouts/{id}"), None).await?;
            if json {
                output::json(&r);
            } else {
                show(&r);
            }
            Ok(())
        }
        RolloutCommand::Watch { id } => follow(&Client::new(api)?, id).await,
        RolloutCommand::Resume { id } => act(api, id, "resume", "resumed").await,
        RolloutCommand::Abort { id } => act(api, id, "abort", "aborted").await,
        RolloutCommand::Rollback { id } => act(api, id, "rollback", "rolling back").await,
    }
}

async fn act(api: &ApiArgs, id: i64, action: &str, done: &str) -> Result<(), String> {
    let r: Rollout = Client::new(api)?.json(Method::POST, &format!("/api/v1/rollouts/{id}/{action}"), None).await?;
    println!("rollout {id} {done}: {} ({})", r.state, counts(&r));
    Ok(())
}

/// Polls the rollout with a progress bar (decided of all devices taking part) until it is
/// finished or halted; then prints it.
async fn follow(client: &Client, id: i64) -> Result<(), String> {
    let bar = output::job_bar("rollout", id)?;
    loop {
        let r: Rollout = client.json(Method::GET, &format!("/api/v1/rollouts/{id}"), None).await?;
        bar.set_length(u64::try_from(r.total()).unwrap_or(0));
        bar.set_position(u64::try_from(r.decided()).unwrap_or(0));
        bar.set_message(format!("wave {}/{} {}", r.wave + 1, r.waves, counts(&r)));
        if r.is_finished() || r.state == sipprov_api::RolloutState::Halted {
            bar.finish_and_clear();
            show(&r);
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn show(r: &Rollout) {
    println!(
        "rollout {}: {} (group {} to {}, was {})",
        r.id,
        r.state,
        r.group,
        r.version,
        r.previous_version.as_deref().unwrap_or("unset")
    );
    if let Some(reason) = &r.reason {
        println!("  reason: {reason}");
    }
    println!(
        "  created {} by {}, wave {} of {}, canary {}, waves of {}%, window {} s, halt past {}%",
        output::time(r.created_at),
        r.created_by,
        r.wave + 1,
        r.waves,
        r.canary,
        r.wave_percent,
        r.window_ms / 1000,
        r.halt_percent
    );
    for (k, v) in &r.counts {
        println!("  {k:<12} {v}");
    }
    for d in &r.devices {
        println!("    {} wave {:<3} {:<11} {}", d.mac, d.wave, d.state, d.reason.as_deref().unwrap_or(""));
    }
}

fn counts(r: &Rollout) -> String {
    r.counts.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
}

/// `20` or `20%`.
fn percent(flag: &str, text: &str) -> Result<u32, String> {
    text.trim_end_matches('%').parse().map_err(|_| format!("invalid {flag} {text:?}: use a percentage such as 20%"))
}

/// `90s`, `30m`, `2h` or plain seconds.
fn duration_secs(text: &str) -> Result<u64, String> {
    let bad = || format!("invalid --window {text:?}: use 90s, 30m or 2h");
    let (num, mult) = match text.chars().last() {
        Some('s') => (&text[..text.len() - 1], 1),
        Some('m') => (&text[..text.len() - 1], 60),
        Some('h') => (&text[..text.len() - 1], 3600),
        _ => (text, 1),
    };
    num.parse::<u64>().ok().and_then(|n| n.checked_mul(mult)).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_and_percentages_parse() {
        assert_eq!(duration_secs("30m").unwrap(), 1800);
        assert_eq!(duration_secs("5s").unwrap(), 5);
        assert_eq!(duration_secs("2h").unwrap(), 7200);
        assert_eq!(duration_secs("45").unwrap(), 45);
        assert!(duration_secs("soon").is_err() && duration_secs("m").is_err());
        assert_eq!(percent("--wave", "20%").unwrap(), 20);
        assert!(percent("--wave", "many").is_err());
    }
}
