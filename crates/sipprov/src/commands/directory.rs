//! `sipprov directory import|list|show|rm`: remote phone directories, through
//! `/api/v1/directories`.
//!
//! `import NAME FILE.csv` replaces the directory's contacts with the file's (header row
//! `name,office,mobile,other`, any order; at least `name` and one number column), all or
//! nothing: a refused file names the line and column, and the directory stays as it was.

use reqwest::Method;
use sipprov_api::{Directory, DirectorySummary};

use crate::cli::{ApiArgs, DirectoryCommand};
use crate::client::{segment, Body, Client};
use crate::output;

/// Runs one `sipprov directory` command.
pub(crate) async fn command(cmd: DirectoryCommand, api: &ApiArgs) -> Result<(), String> {
    match cmd {
        DirectoryCommand::Import { name, file } => {
            let text = std::fs::read_to_string(&file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            let path = format!("/api/v1/directories/{}/import", segment(&name));
            let d: DirectorySummary = Client::new(api)?.json(Method::POST, &path, Some(Body::Text(text))).await?;
            println!("directory {} imported: {} contacts", d.name, d.contacts);
            Ok(())
        }
        DirectoryCommand::List => {
            let all: Vec<DirectorySummary> = Client::new(api)?.json(Method::GET, "/api/v1/directories", None).await?;
            for d in all {
                println!("{:<32} {:>6} contacts  updated {}", d.name, d.contacts, output::time(d.updated_at));
            }
            Ok(())
        }
        DirectoryCommand::Show { name, json } => {
            let path = format!("/api/v1/directories/{}", segment(&name));
            let d: Directory = Client::new(api)?.json(Method::GET, &path, None).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&d).map_err(|e| e.to_string())?);
                return Ok(());
            }
            println!("{}: {} contacts, updated {}", d.name, d.contacts.len(), output::time(d.updated_at));
            for c in d.contacts {
                let numbers: Vec<String> = [("office", &c.office), ("mobile", &c.mobile), ("other", &c.other)]
                    .iter()
                    .filter_map(|(k, v)| v.as_ref().map(|n| format!("{k} {n}")))
                    .collect();
                println!("  {:<40} {}", c.name, numbers.join(", "));
            }
            Ok(())
        }
        DirectoryCommand::Rm { name } => {
            Client::new(api)?.call(Method::DELETE, &format!("/api/v1/directories/{}", segment(&name)), None).await?;
            println!("directory {name} removed");
            Ok(())
        }
    }
}
