//! The command line: every subcommand and flag, declared with clap.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Provisioning server for fleets of SIP phones, DECT bases and gateways.
#[derive(Debug, Parser)]
#[command(name = "sipprov", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// How client commands reach the server.
#[derive(Debug, Args, Clone)]
pub struct ApiArgs {
    /// Admin API base URL.
    #[arg(long, env = "SIPPROV_API", default_value = "http://127.0.0.1:8081")]
    pub api: String,
    /// Data directory holding the API token (used when SIPPROV_TOKEN is not set).
    #[arg(long, default_value = "./sipprov-data")]
    pub data_dir: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (provisioning HTTP, admin API).
    Serve(ServeArgs),
    /// Manage devices.
    #[command(subcommand)]
    Device(DeviceCommand),
    /// Manage groups (settings shared by their devices).
    #[command(subcommand)]
    Group(GroupCommand),
    /// Show or change global settings (the lowest level of the merge).
    #[command(subcommand)]
    Settings(SettingsCommand),
    /// Print exactly the bytes a device receives for one of its files.
    Render {
        /// The device's MAC, in any common spelling.
        mac: String,
        /// The file name (default: the device's own configuration file).
        file: Option<String>,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// List supported vendors and models.
    Vendors {
        #[command(flatten)]
        api: ApiArgs,
    },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML configuration file; flags win over it.
    #[arg(long, short = 'c')]
    pub config: Option<PathBuf>,
    /// Data directory (SQLite database, API token, template overrides). [default: ./sipprov-data]
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Provisioning HTTP listener for phones. [default: 0.0.0.0:8080]
    #[arg(long)]
    pub http_listen: Option<SocketAddr>,
    /// Admin API listener. [default: 127.0.0.1:8081]
    #[arg(long)]
    pub api_listen: Option<SocketAddr>,
    /// SIP listener, UDP and TCP. [default: 0.0.0.0:5060]
    #[arg(long)]
    pub sip_listen: Option<SocketAddr>,
    /// Use PostgreSQL (postgres://…) instead of the embedded SQLite.
    #[arg(long, env = "SIPPROV_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Log format.
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// Add a device.
    Add {
        mac: String,
        #[arg(long)]
        vendor: String,
        #[arg(long)]
        model: String,
        #[arg(long)]
        group: Option<String>,
        /// SIP URI where check-sync reaches the device.
        #[arg(long)]
        contact: Option<String>,
        /// A setting, KEY=VALUE; repeat for more.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Import devices from CSV (header: mac,vendor,model,group, then setting keys); all or nothing.
    Import {
        file: PathBuf,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// List devices.
    List {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Show one device, with its last fetch.
    Show {
        mac: String,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Change settings (KEY=VALUE; KEY= removes), or the group, contact or model.
    Set {
        mac: String,
        #[arg(value_name = "KEY=VALUE")]
        settings: Vec<String>,
        #[arg(long)]
        group: Option<String>,
        #[arg(long)]
        contact: Option<String>,
        #[arg(long)]
        model: Option<String>,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Remove a device.
    Rm {
        mac: String,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Show a device's history (fetches, refusals, notifications).
    Log {
        mac: String,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// Change a group's settings (KEY=VALUE; KEY= removes); creates the group if needed.
    Set {
        name: String,
        #[arg(value_name = "KEY=VALUE", required = true)]
        settings: Vec<String>,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Show a group.
    Show {
        name: String,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// List groups.
    List {
        #[command(flatten)]
        api: ApiArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum SettingsCommand {
    /// Change global settings (KEY=VALUE; KEY= removes).
    Set {
        #[arg(value_name = "KEY=VALUE", required = true)]
        settings: Vec<String>,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Show global settings (secrets redacted).
    Show {
        #[command(flatten)]
        api: ApiArgs,
    },
}
