//! `sipprov token …` and `sipprov audit`.

use reqwest::Method;
use sipprov_api::{AuditEntry, CreateToken, CreatedToken, TokenInfo};

use super::mac;
use crate::cli::{ApiArgs, AuditArgs, TokenCommand};
use crate::client::{segment, Body, Client};
use crate::output;

/// Creates, lists or revokes a named token.
pub(crate) async fn token(cmd: TokenCommand, api: &ApiArgs) -> Result<(), String> {
    let client = Client::new(api)?;
    match cmd {
        TokenCommand::Create { name, role } => {
            let body = Body::json(&CreateToken { name, role })?;
            let created: CreatedToken = client.json(Method::POST, "/api/v1/tokens", Some(body)).await?;
            eprintln!("token {:?} ({}) created; it is shown this once, store it now:", created.name, created.role);
            println!("{}", created.token);
        }
        TokenCommand::List { json } => {
            let tokens: Vec<TokenInfo> = client.json(Method::GET, "/api/v1/tokens", None).await?;
            if json {
                output::json(&tokens);
            } else {
                println!("{:<24} {:<10} {:<20} {:<20} CREATED BY", "NAME", "ROLE", "CREATED", "LAST USED");
                for t in tokens {
                    let last = t.last_used_at.map(output::time).unwrap_or_else(|| "never".into());
                    println!(
                        "{:<24} {:<10} {:<20} {:<20} {}",
                        t.name,
                        t.role,
                        output::time(t.created_at),
                        last,
                        t.created_by
                    );
                }
            }
        }
        TokenCommand::Revoke { name } => {
            client.call(Method::DELETE, &format!("/api/v1/tokens/{}", segment(&name)), None).await?;
            println!("revoked {name}");
        }
    }
    Ok(())
}

/// Prints the audit trail, newest first.
pub(crate) async fn audit(args: AuditArgs, api: &ApiArgs) -> Result<(), String> {
    let mut path = match &args.device {
        Some(m) => format!("/api/v1/devices/{}/audit?limit={}", mac(m)?, args.limit),
        None => format!("/api/v1/audit?limit={}", args.limit),
    };
    if let Some(actor) = &args.actor {
        if args.device.is_some() {
            return Err("give --device or --actor, not both".into());
        }
        path.push_str(&format!("&actor={}", segment(actor)));
    }
    let entries: Vec<AuditEntry> = Client::new(api)?.json(Method::GET, &path, None).await?;
    if args.json {
        output::json(&entries);
        return Ok(());
    }
    for e in entries {
        println!(
            "{:<20} {:<16} {:<16} {}:{} {}",
            output::time(e.at),
            e.actor,
            e.action,
            e.target_kind,
            e.target,
            e.detail
        );
    }
    Ok(())
}
