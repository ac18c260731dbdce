//! The command line: every subcommand and flag, declared with clap.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use sipprov_api::CreateCampaign;
use sipprov_server::ServerConfig;

/// `what` followed by clap's usual `[default: …]`, for flags whose default lives in the
/// server's configuration rather than in this file.
fn with_default(what: &str, default: impl std::fmt::Display) -> String {
    format!("{} [default: {default}]", what.trim_end_matches('.'))
}

/// The admin API URL of a server started with the default configuration.
fn default_api_url() -> String {
    format!("http://{}", ServerConfig::default().api.listen)
}

/// Provisioning server for fleets of SIP phones, DECT bases and gateways.
#[derive(Debug, Parser)]
#[command(name = "sipprov", version, about)]
pub(crate) struct Cli {
    /// How client commands reach the server; accepted before or after the subcommand.
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// How client commands reach the server.
#[derive(Debug, Args, Clone)]
pub(crate) struct ApiArgs {
    /// Admin API base URL.
    #[arg(long, global = true, env = "SIPPROV_API", default_value_t = default_api_url())]
    pub api: String,
    // `serve` keeps its database, API token and template overrides there; client commands read
    // the API token from it. `None` leaves the configuration file's value (or the default).
    #[arg(long, global = true, help = with_default(
        "Data directory: the server's database, API token and template overrides; client commands read the token there when SIPPROV_TOKEN is not set.",
        ServerConfig::default().data_dir.display()))]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the server (provisioning HTTP and HTTPS, admin API, SIP).
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
    },
    /// Re-sync devices with a paced, resumable campaign (check-sync, or reboot).
    Resync(ResyncArgs),
    /// Follow, cancel or retry re-sync campaigns.
    #[command(subcommand)]
    Campaign(CampaignCommand),
    /// Firmware rollouts in waves: start one, follow, resume, abort or roll it back.
    #[command(subcommand)]
    Rollout(RolloutCommand),
    /// Send a check-sync NOTIFY to a SIP URI now (no running server needed).
    Notify(NotifyArgs),
    /// List supported vendors and models.
    Vendors,
    /// Manage web console users (admin API token needed).
    #[command(subcommand)]
    User(UserCommand),
    /// Remote phone directories: contact lists phones show (`directory.name` picks one).
    #[command(subcommand)]
    Directory(DirectoryCommand),
    /// Write a consistent snapshot of the SQLite database to FILE (works while the server runs).
    Backup {
        /// Where to write it (mode 0600; replaced atomically if it exists).
        file: PathBuf,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Replace the SQLite database with a backup (refused while a server uses the data directory).
    Restore {
        /// A file written by `sipprov backup`.
        file: PathBuf,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Write man pages into DIR: sipprov.1 and one per subcommand.
    Man {
        /// The directory (created if missing).
        dir: PathBuf,
    },
    /// Override the built-in templates: validated, versioned, kept in the database.
    #[command(subcommand)]
    Template(TemplateCommand),
    /// Create, list and revoke named API tokens (admin role).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Show the audit trail: who changed what, and when (newest first).
    Audit(AuditArgs),
    /// Devices PnP discovered (`pnp.mode = "any"`): list, approve into a group, reject.
    #[command(subcommand)]
    Pnp(PnpCommand),
    /// Firmware images phones download: upload, list, remove (admin role to change).
    #[command(subcommand)]
    Firmware(FirmwareCommand),
    /// Ringtones, wallpapers and language files phones download: upload, list, remove.
    #[command(subcommand)]
    Resource(ResourceCommand),
    /// The fleet at a glance: devices by vendor, model and firmware, silent devices, refusals
    /// and throttled sources of the last 24 hours, campaigns in progress.
    Status {
        /// Print the API's JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// The nodes serving one fleet from one PostgreSQL database.
    #[command(subcommand)]
    Cluster(ClusterCommand),
}

/// `sipprov cluster …`.
#[derive(Debug, Subcommand)]
pub(crate) enum ClusterCommand {
    /// Every node that wrote a heartbeat: name, id, version, start, last heartbeat, alive or
    /// stale (on SQLite, the one node).
    Status {
        /// Print the API's JSON answer.
        #[arg(long)]
        json: bool,
    },
}

/// `sipprov firmware …`. Further firmware actions (rollouts) are added as variants here.
#[derive(Debug, Subcommand)]
pub(crate) enum FirmwareCommand {
    /// Upload FILE (streamed, stored once per content) as the firmware of some models of a
    /// vendor; prints the name and SHA-256.
    Add {
        /// The image file.
        file: PathBuf,
        /// The vendor id (`sipprov vendors` lists them).
        #[arg(long)]
        vendor: String,
        /// The models it installs on, comma-separated or repeated (T46S,T48S).
        #[arg(long = "model", value_delimiter = ',', required = true)]
        models: Vec<String>,
        /// The version, as the phones report it in their User-Agent (66.86.0.160).
        #[arg(long)]
        version: String,
        /// The name it is served under (default: FILE's name).
        #[arg(long)]
        name: Option<String>,
        /// `open` (anyone reaching the provisioning listener) or `device` (only a device, with
        /// its own authentication).
        #[arg(long, default_value = "open")]
        access: String,
    },
    /// Every stored firmware image.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove a firmware image (refused while a device targets its version).
    Rm {
        /// The file's name.
        name: String,
    },
    /// Move a group to a firmware version in waves: a canary, then waves; each device must come
    /// back reporting the version within the window; halts past the failure threshold
    /// (`sipprov rollout …` follows, resumes, aborts or rolls it back).
    Rollout(RolloutArgs),
}

/// `sipprov resource …`.
#[derive(Debug, Subcommand)]
pub(crate) enum ResourceCommand {
    /// Upload FILE (streamed, stored once per content) as a ringtone, wallpaper or language
    /// file; prints the name and SHA-256.
    Add {
        /// The file.
        file: PathBuf,
        /// `ringtone`, `wallpaper` or `language`.
        #[arg(long)]
        kind: String,
        /// The name it is served under (default: FILE's name).
        #[arg(long)]
        name: Option<String>,
        /// `open` or `device` (see `firmware add`).
        #[arg(long, default_value = "open")]
        access: String,
    },
    /// Every stored ringtone, wallpaper and language file.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove a resource file (refused while in use).
    Rm {
        /// The file's name.
        name: String,
    },
}

/// `sipprov pnp …`.
#[derive(Debug, Subcommand)]
pub(crate) enum PnpCommand {
    /// The devices waiting in the discovered group, with what their SUBSCRIBEs reported.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Move a waiting device into an existing group.
    Approve {
        /// The device's MAC, in any common spelling.
        mac: String,
        /// The group it joins (must exist).
        #[arg(long)]
        group: String,
    },
    /// Remove a waiting device (it is discovered again if it subscribes again in `any` mode).
    Reject {
        /// The device's MAC, in any common spelling.
        mac: String,
    },
}

/// Named API tokens. The data directory's `api-token` file stays the bootstrap admin credential.
#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Create a token and print it (the only time it is shown; the server keeps its hash).
    Create {
        /// A unique name (A-Z a-z 0-9 . _ -), recorded in the audit trail for its changes.
        name: String,
        /// admin, operator or read-only.
        #[arg(long)]
        role: sipprov_api::Role,
    },
    /// List tokens: name, role, created, last used (never the token).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token: refused from the next request on.
    Revoke {
        /// The token's name.
        name: String,
    },
}

#[derive(Debug, Args)]
pub(crate) struct AuditArgs {
    /// Only this device's entries.
    #[arg(long)]
    pub device: Option<String>,
    /// Only this actor's changes (a token's name, `admin`, `pnp`).
    #[arg(long)]
    pub actor: Option<String>,
    /// At most this many entries (1 to 1000).
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    #[arg(long)]
    pub json: bool,
}

/// Which database `backup` and `restore` work on.
#[derive(Debug, Args)]
pub(crate) struct DataArgs {
    /// The server's TOML configuration file, for its data_dir (the global --data-dir wins).
    #[arg(long, short = 'c')]
    pub config: Option<PathBuf>,
}

/// `sipprov template …`. NAME is `vendor/file`, e.g. `yealink/mac.cfg.j2` (`template list`).
#[derive(Debug, Subcommand)]
pub(crate) enum TemplateCommand {
    /// Every built-in template, whether an override serves, and its current version.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Print the template serving now (the override, or the built-in).
    Show {
        name: String,
        /// Print the built-in template instead.
        #[arg(long)]
        builtin: bool,
    },
    /// Save FILE as the new override, after the server validated it (syntax, and a render for
    /// every model of the vendor); a refused file changes nothing.
    Set {
        name: String,
        file: PathBuf,
        /// Why, recorded with the version.
        #[arg(long)]
        comment: Option<String>,
        /// Also render for this device (MAC) before accepting.
        #[arg(long)]
        device: Option<String>,
    },
    /// Unified diff: the built-in against the current one, or between two versions.
    Diff {
        name: String,
        /// Old side: a version (default: the built-in).
        #[arg(long)]
        from: Option<i64>,
        /// New side: a version (default: the current one).
        #[arg(long)]
        to: Option<i64>,
    },
    /// Every version of a template, oldest first.
    Versions {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Make an earlier version current again (recorded as a new version).
    Rollback {
        name: String,
        version: i64,
        #[arg(long)]
        comment: Option<String>,
    },
    /// Serve the built-in template again (recorded as a version).
    Reset {
        name: String,
        #[arg(long)]
        comment: Option<String>,
    },
    /// Print what a device would receive from the template, secrets masked.
    Preview {
        name: String,
        /// The device (MAC).
        #[arg(long)]
        device: String,
        /// A proposed template to render instead of the current one.
        #[arg(long)]
        file: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub(crate) struct ResyncArgs {
    /// Devices by MAC.
    pub macs: Vec<String>,
    /// Every device of a group.
    #[arg(long)]
    pub group: Option<String>,
    /// Every device.
    #[arg(long)]
    pub all: bool,
    /// Only devices whose current config differs from what they last fetched (narrows the others).
    #[arg(long)]
    pub changed: bool,
    /// Ask for a reboot rather than a re-provision.
    #[arg(long)]
    pub reboot: bool,
    #[arg(long, help = with_default("NOTIFYs per second.", CreateCampaign::DEFAULT_RATE))]
    pub rate: Option<u32>,
    #[arg(long, help = with_default("NOTIFYs awaiting a final response at most.", CreateCampaign::DEFAULT_MAX_IN_FLIGHT))]
    pub max_in_flight: Option<u32>,
    /// Start later: RFC 3339 UTC time (2026-11-22T02:00:00Z) or a delay (+30s, +10m, +2h).
    #[arg(long)]
    pub at: Option<String>,
    #[arg(long, help = with_default(
        "Seconds a notified device has to fetch its new config to count as confirmed.",
        CreateCampaign::DEFAULT_CONFIRM_WINDOW_SECONDS))]
    pub confirm_window: Option<u64>,
    /// Follow the campaign with a progress bar until it ends.
    #[arg(long)]
    pub wait: bool,
    /// Do not ask for confirmation (needed for --all --reboot without a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum CampaignCommand {
    /// List campaigns, newest first.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Counts per outcome and the failing devices.
    Show {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Follow a campaign with a progress bar until it is done or cancelled (from any node of
    /// a cluster, whichever nodes send it).
    Watch { id: i64 },
    /// Stop sending; outcomes so far are kept.
    Cancel { id: i64 },
    /// Send again to the failed and unconfirmed devices only.
    Retry {
        id: i64,
        #[arg(long)]
        wait: bool,
    },
}

/// `firmware rollout` (and `rollout start`): move a group to a firmware version in waves.
#[derive(Debug, Args)]
pub(crate) struct RolloutArgs {
    /// The group to move.
    #[arg(long)]
    pub group: String,
    /// The firmware version, as the phones' User-Agent reports it (a firmware file of that
    /// version must be in the catalog for each model: `sipprov firmware add`).
    #[arg(long)]
    pub to: String,
    #[arg(long, help = with_default("Devices in the canary wave, upgraded first.", sipprov_api::CreateRollout::DEFAULT_CANARY))]
    pub canary: Option<u32>,
    #[arg(long, value_name = "PERCENT", help = with_default(
        "Each later wave's share of the devices left after the canary (20 or 20%).",
        format!("{}%", sipprov_api::CreateRollout::DEFAULT_WAVE_PERCENT)))]
    pub wave: Option<String>,
    #[arg(long, value_name = "DURATION", help = with_default(
        "How long a pinned device has to come back reporting the version (90s, 30m, 2h).",
        format!("{}m", sipprov_api::CreateRollout::DEFAULT_WINDOW_SECONDS / 60)))]
    pub window: Option<String>,
    #[arg(long, value_name = "PERCENT", help = with_default(
        "Halt when failed devices pass this share of decided ones (5 or 5%).",
        format!("{}%", sipprov_api::CreateRollout::DEFAULT_HALT_PERCENT)))]
    pub halt_on: Option<String>,
    /// Follow the rollout with a progress bar until it ends or halts.
    #[arg(long)]
    pub wait: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum RolloutCommand {
    /// Start a rollout (the same as `sipprov firmware rollout`, kept here beside the other
    /// rollout commands).
    Start(RolloutArgs),
    /// List rollouts, newest first.
    List {
        #[arg(long)]
        json: bool,
    },
    /// A rollout's state, counts and devices.
    Show {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Follow a rollout with a progress bar until it ends or halts.
    Watch { id: i64 },
    /// Resume a halted rollout: its next wave starts.
    Resume { id: i64 },
    /// Abort a rollout: devices not decided yet are unpinned.
    Abort { id: i64 },
    /// Roll back: the devices moved are pinned to the previous version and notified.
    Rollback { id: i64 },
}

/// How `sipprov notify` trusts a phone over TLS (after the flags in --help).
const NOTIFY_TLS_HELP: &str = "\
TLS (--transport tls, a sips: URI, or ;transport=tls; port 5061 unless given):
  The phone's certificate must name the URI's host (or the --proxy host) and
  verify against --tls-ca FILE, a PEM bundle of the phones' CAs; a certificate
  listed in that file (a phone's self-signed one) is also accepted as is.
  --tls-name NAME checks for NAME instead of the host; a MAC (001565aabbcc)
  also matches a vendor device certificate naming the MAC in its subject.
  --tls-insecure accepts any certificate instead, unverified.
  With neither, the system's CA store is used (SSL_CERT_FILE, SSL_CERT_DIR).";

#[derive(Debug, Args)]
#[command(after_help = NOTIFY_TLS_HELP)]
pub(crate) struct NotifyArgs {
    /// The device's SIP account, e.g. sip:1001@192.0.2.10:5060 or sips:1001@192.0.2.10 (Request-URI and To).
    pub uri: String,
    /// Ask for a reboot (check-sync;reboot=true) rather than a re-provision.
    #[arg(long)]
    pub reboot: bool,
    /// The Event header, overriding the vendor table (e.g. resync, check-sync).
    #[arg(long)]
    pub event: Option<String>,
    /// Pick the Event from this vendor's entry in the check-sync table.
    #[arg(long)]
    pub vendor: Option<String>,
    /// User name for a digest challenge.
    #[arg(long, requires = "auth_password")]
    pub auth_user: Option<String>,
    /// Password for a digest challenge (prefer SIPPROV_NOTIFY_PASSWORD: arguments are visible to
    /// other users in the process list).
    #[arg(long, requires = "auth_user", env = "SIPPROV_NOTIFY_PASSWORD", hide_env_values = true)]
    pub auth_password: Option<sipprov_model::Secret>,
    /// Transport (default: tls for sips: URIs, else the URI's transport parameter, else udp).
    #[arg(long, value_enum)]
    pub transport: Option<TransportArg>,
    /// TLS: PEM bundle of the CAs (or self-signed certificates) to verify the phone against.
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// TLS: accept any certificate from the phone, unverified (insecure; warns).
    #[arg(long, conflicts_with = "tls_ca")]
    pub tls_insecure: bool,
    /// TLS: the name the phone's certificate must carry instead of the URI's host, e.g. its MAC
    /// (001565aabbcc) for a vendor device certificate.
    #[arg(long, value_name = "NAME")]
    pub tls_name: Option<String>,
    /// TLS: PEM certificate chain to present to a phone that demands mutual TLS.
    #[arg(long, value_name = "FILE", requires = "tls_client_key")]
    pub tls_client_cert: Option<PathBuf>,
    /// TLS: PEM private key of --tls-client-cert.
    #[arg(long, value_name = "FILE", requires = "tls_client_cert")]
    pub tls_client_key: Option<PathBuf>,
    /// Send through this proxy or registrar (HOST:PORT).
    #[arg(long)]
    pub proxy: Option<String>,
    /// From URI (default sip:sipprov@LOCAL-ADDRESS, the address the NOTIFY leaves from).
    #[arg(long)]
    pub from: Option<String>,
    /// Give up after this many seconds (Timer F; T1 = timeout/64).
    #[arg(long, default_value_t = 32.0)]
    pub timeout: f64,
    /// Local address to send from.
    #[arg(long, default_value = "0.0.0.0:0")]
    pub bind: std::net::SocketAddr,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum TransportArg {
    Udp,
    Tcp,
    Tls,
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// TOML configuration file; flags win over it.
    #[arg(long, short = 'c')]
    pub config: Option<PathBuf>,
    // The defaults shown in --help come from `ServerConfig::default()`, the one place they are
    // written; `None` leaves the configuration file's value (or that default) in place. The data
    // directory is the global `--data-dir` ([`ApiArgs`]).
    #[arg(long, help = with_default("Provisioning HTTP listener for phones.", ServerConfig::default().http.listen))]
    pub http_listen: Option<SocketAddr>,
    #[arg(long, help = with_default("Admin API listener.", ServerConfig::default().api.listen))]
    pub api_listen: Option<SocketAddr>,
    #[arg(long, help = with_default("SIP listener, UDP and TCP.", ServerConfig::default().sip.listen))]
    pub sip_listen: Option<SocketAddr>,
    /// SIP over TLS listener, e.g. 0.0.0.0:5061 (needs [sip.tls] cert and key in the config file).
    #[arg(long, value_name = "ADDR")]
    pub sip_tls_listen: Option<SocketAddr>,
    /// Use PostgreSQL (postgres://…) instead of the embedded SQLite.
    #[arg(long, env = "SIPPROV_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<sipprov_model::Secret>,
    /// Log format.
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub(crate) enum DeviceCommand {
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
    },
    /// Import devices from CSV (header: mac,vendor,model,group, then setting keys); all or nothing.
    Import { file: PathBuf },
    /// List devices: all of them by MAC, or those the filters match (every filter must hold).
    List(DeviceListArgs),
    /// Show one device, with its last fetch.
    Show {
        mac: String,
        #[arg(long)]
        json: bool,
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
    },
    /// Remove a device.
    Rm { mac: String },
    /// Send check-sync to a device now, through the server, and record the outcome.
    Notify {
        mac: String,
        /// Ask for a reboot rather than a re-provision.
        #[arg(long)]
        reboot: bool,
    },
    /// Re-open a device's first-fetch window from now: one more fetch without credentials, within security.first_fetch_window_secs.
    Unlock { mac: String },
    /// List the files a device uploaded (Polycom -phone.cfg and logs, Yealink -local.cfg), latest per name.
    Uploads {
        mac: String,
        #[arg(long)]
        json: bool,
    },
    /// Print one uploaded file exactly as the phone sent it.
    Upload {
        mac: String,
        /// The file name, e.g. 0004f2aabbcc-phone.cfg.
        file: String,
    },
    /// Show a device's history (fetches, refusals, notifications).
    Log {
        mac: String,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum GroupCommand {
    /// Change a group's settings (KEY=VALUE; KEY= removes); creates the group if needed.
    Set {
        name: String,
        #[arg(value_name = "KEY=VALUE", required = true)]
        settings: Vec<String>,
    },
    /// Show a group.
    Show {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// List groups.
    List,
}

#[derive(Debug, Subcommand)]
pub(crate) enum UserCommand {
    /// Add a console user; the password is asked for (twice) or read from stdin.
    Add {
        /// Login name: letters, digits, '.', '_', '-' or '@'.
        name: String,
        /// admin, operator or read-only.
        #[arg(long)]
        role: sipprov_api::Role,
        /// Read the password from the first line of stdin instead of asking.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List console users and their roles.
    List,
    /// Change a user's password (ends the user's console sessions).
    Passwd {
        name: String,
        /// Read the password from the first line of stdin instead of asking.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Remove a console user (ends the user's console sessions).
    Rm { name: String },
}

#[derive(Debug, Subcommand)]
pub(crate) enum DirectoryCommand {
    /// Create a directory or replace its contacts from a CSV file (header row naming the
    /// columns name, office, mobile, other; all or nothing).
    Import {
        /// The directory's name: letters, digits, '.', '_' or '-'.
        name: String,
        /// The CSV file.
        file: PathBuf,
    },
    /// List directories and their sizes.
    List,
    /// Show a directory's contacts.
    Show {
        name: String,
        /// Print the directory as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a directory (refused while a directory.name setting names it).
    Rm { name: String },
}

#[derive(Debug, Subcommand)]
pub(crate) enum SettingsCommand {
    /// Change global settings (KEY=VALUE; KEY= removes).
    Set {
        #[arg(value_name = "KEY=VALUE", required = true)]
        settings: Vec<String>,
    },
    /// Show global settings (secrets redacted).
    Show,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsed_arguments_debug_shows_no_password() {
        let cli = Cli::parse_from([
            "sipprov",
            "notify",
            "sip:1001@192.0.2.10",
            "--auth-user",
            "1001",
            "--auth-password",
            "N0tify-Secret",
        ]);
        let shown = format!("{cli:?}");
        assert!(!shown.contains("N0tify-Secret") && shown.contains("1001"), "{shown}");
        let Command::Notify(args) = cli.command else { panic!("not notify") };
        assert_eq!(args.auth_password.map(|p| p.into_inner()).as_deref(), Some("N0tify-Secret"));
        let serve = Cli::parse_from(["sipprov", "serve", "--database-url", "postgres://u:Db-Secret@h/db"]);
        assert!(!format!("{serve:?}").contains("Db-Secret"));
    }
}

/// `sipprov device list`: filters, order and paging of `GET /api/v1/devices`.
#[derive(Debug, Args)]
pub(crate) struct DeviceListArgs {
    /// Print the devices as a JSON array.
    #[arg(long)]
    pub json: bool,
    /// Only this vendor id (e.g. yealink).
    #[arg(long)]
    pub vendor: Option<String>,
    /// Only this model (case-insensitive).
    #[arg(long)]
    pub model: Option<String>,
    /// Only this group ("" for devices in no group).
    #[arg(long)]
    pub group: Option<String>,
    /// Only devices that last reported this firmware.
    #[arg(long)]
    pub firmware: Option<String>,
    /// Only devices silent for longer than their provisioning interval allows.
    #[arg(long)]
    pub silent: bool,
    /// Only devices that never fetched a file.
    #[arg(long)]
    pub never_seen: bool,
    /// Part of a MAC in any spelling, or of a display name.
    #[arg(long)]
    pub search: Option<String>,
    /// Sort key.
    #[arg(long, value_enum, default_value = "mac")]
    pub sort: SortArg,
    /// Largest first.
    #[arg(long)]
    pub desc: bool,
    /// At most this many devices (default: every match, fetched a page at a time).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Skip this many matches first.
    #[arg(long, default_value_t = 0)]
    pub offset: usize,
}

/// What `device list --sort` accepts.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum SortArg {
    /// MAC address.
    Mac,
    /// Vendor id.
    Vendor,
    /// Model.
    Model,
    /// Group.
    Group,
    /// Last fetch time.
    LastSeen,
    /// Reported firmware.
    Firmware,
}

impl From<SortArg> for sipprov_api::DeviceSort {
    fn from(s: SortArg) -> Self {
        match s {
            SortArg::Mac => Self::Mac,
            SortArg::Vendor => Self::Vendor,
            SortArg::Model => Self::Model,
            SortArg::Group => Self::Group,
            SortArg::LastSeen => Self::LastSeen,
            SortArg::Firmware => Self::Firmware,
        }
    }
}
