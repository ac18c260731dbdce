//! The one place the server is put together: it opens the store, builds each service from the
//! ones below it, binds the listeners and starts the tasks.
//!
//! The order is the dependency order. The shared in-memory pieces come first (inventory,
//! render cache, event sink, security state), then the services over them (provisioning core
//! [`Files`], device [`Registry`]). The SIP endpoint is bound before the [`Notifier`] that
//! sends through it and the [`CampaignEngine`] that drives it, so neither can exist without an
//! endpoint. Each listener then gets only what it uses: the phone router a [`Phones`], the
//! admin API an [`ApiServices`] from which each handler extracts its own services, the web
//! console (on the admin listener) a [`ConsoleServices`], PnP a [`PnpServices`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sipprov_store::{Checkpointer, Store};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::access::Tokens;
use crate::api::ApiServices;
use crate::auth::Security;
use crate::cache::RenderCache;
use crate::campaign::CampaignEngine;
use crate::config::ServerConfig;
use crate::console::ConsoleServices;
use crate::directories::Directories;
use crate::discoveries::Discoveries;
use crate::fetchlog::FetchLog;
use crate::files::{Files, FilesParts};
use crate::filestore::FileStore;
use crate::inventory::Inventory;
use crate::listener::drain::Drain;
use crate::metrics::Metrics;
use crate::notify::Notifier;
use crate::pins::FirmwarePins;
use crate::pnp::PnpServices;
use crate::provision::Phones;
use crate::registry::Registry;
use crate::resources::ResourceCatalog;
use crate::rollout::{RolloutEngine, RolloutParts};
use crate::users::Users;
use crate::ServerError;

/// A started server: its bound addresses and its tasks.
pub struct RunningServer {
    /// The provisioning HTTP listener.
    pub http_addr: SocketAddr,
    /// The admin API listener.
    pub api_addr: SocketAddr,
    tasks: JoinSet<Result<(), ServerError>>,
    /// Stops the HTTP listeners and their connections (a clean stop's first step).
    drain: Drain,
    /// The fetch log, written out on a clean stop.
    records: FetchLog,
    /// The WAL checkpointer (SQLite on a file), stopped after the fetch log's last write.
    checkpointer: Option<Checkpointer>,
}

/// How long a clean stop waits for open HTTP connections to answer the request in hand (a
/// download of a large firmware file may take longer; its fetch is recorded when it starts).
const DRAIN_WAIT: Duration = Duration::from_secs(5);
/// How long a clean stop waits for the fetch log's last write (a database that cannot write
/// would otherwise hold the process until the service manager kills it). With [`DRAIN_WAIT`],
/// within the 30 s the packaged systemd unit allows a stop (`TimeoutStopSec`).
const FLUSH_WAIT: Duration = Duration::from_secs(20);

impl RunningServer {
    /// The fetch log, for a caller that writes it out itself (tests, embedders).
    pub fn fetch_log(&self) -> FetchLog {
        self.records.clone()
    }

    /// Runs until a listener fails. Cancel-safe: a caller may stop waiting on a signal and then
    /// [`RunningServer::stop`].
    pub async fn wait(&mut self) -> Result<(), ServerError> {
        while let Some(done) = self.tasks.join_next().await {
            done.map_err(|e| ServerError::Task(e.to_string()))??;
        }
        Ok(())
    }

    /// A clean stop (SIGTERM): first stops serving HTTP (no new connection; each open one
    /// answers the request in hand and closes), then ends the other tasks (SIP, campaigns),
    /// then writes what the fetch log still holds. In that order the last write holds every
    /// fetch answered: a server that kept answering while it wrote would add records behind
    /// the write (and under a fleet's load take minutes to stop). Each wait is bounded, and a
    /// bound reached is logged with what it cost.
    pub async fn stop(mut self) {
        if !self.drain.stop_serving(DRAIN_WAIT).await {
            tracing::warn!(
                waited_secs = DRAIN_WAIT.as_secs(),
                "stopping with HTTP connections still open (long downloads); their fetches are recorded"
            );
        }
        self.tasks.shutdown().await;
        if tokio::time::timeout(FLUSH_WAIT, self.records.flush()).await.is_err() {
            tracing::error!(
                waited_secs = FLUSH_WAIT.as_secs(),
                "the fetch log's last write did not finish; the records it held are lost"
            );
        }
        if let Some(checkpointer) = self.checkpointer.take() {
            checkpointer.stop().await;
        }
    }
}

/// What every service is built over: the store and the shared in-memory pieces.
struct Core {
    store: Store,
    /// Checkpoints the SQLite WAL off every commit path (`None` on PostgreSQL).
    checkpointer: Option<Checkpointer>,
    /// This process among the nodes sharing the database.
    node: crate::node::NodeId,
    /// The bootstrap token and the named API tokens.
    tokens: Arc<Tokens>,
    inventory: Arc<Inventory>,
    metrics: Arc<Metrics>,
    events: FetchLog,
    security: Arc<Security>,
    files: Arc<Files>,
    registry: Arc<Registry>,
    /// The firmware pins rollouts write and the render reads (loaded at start).
    pins: Arc<FirmwarePins>,
    /// Remote phone directories (in memory, loaded at start).
    directories: Arc<Directories>,
    /// The catalog of stored firmware and resource files (in memory, loaded at start).
    resources: ResourceCatalog,
    cache: Arc<RenderCache>,
    /// What each device fetched last (the fetch log writes it; other nodes' fetches are read
    /// back into it).
    seen: Arc<crate::seen::SeenIndex>,
    /// The change-feed position the in-memory copies were loaded at (read before loading).
    feed_start: i64,
}

/// Opens the store, loads the inventory, binds the listeners and starts serving.
pub async fn start(config: ServerConfig) -> Result<RunningServer, ServerError> {
    limit_malloc_arenas();
    let core = open_core(&config).await?;
    tracing::info!(node = %core.node, backend = ?core.store.backend(), "node started");
    let admission = crate::listener::Admission::new(&config.limits, core.metrics.clone());
    let http = bind("provisioning HTTP", config.http.listen).await?;
    let api = bind("admin API", config.api.listen).await?;
    let (http_addr, api_addr) = (local(&http, config.http.listen)?, local(&api, config.api.listen)?);
    // Bound before the services that send through it: none of them waits for an endpoint.
    let (sip, pnp) = crate::sip_service::bind(&config, http_addr, &admission).await?;
    let https = crate::tls::HttpsListener::bind(config.http.tls.as_ref()).await?;
    write_listening(&config, http_addr, api_addr, &sip, https.as_ref().map(|h| h.addr));
    let outbound_proxy = config.sip.outbound_proxy.clone();
    let notifier = Arc::new(Notifier::new(
        sip.clone(),
        core.inventory.clone(),
        core.events.clone(),
        core.metrics.clone(),
        outbound_proxy,
    ));
    // Campaign chunks and rollouts are held under leases, taken over when their node dies.
    let leases = crate::lease::LeasePolicy::new(
        core.node.clone(),
        std::time::Duration::from_secs(config.cluster.lease_secs),
        core.store.backend() == sipprov_store::Backend::Postgres,
    );
    let campaigns = Arc::new(CampaignEngine::new(
        core.store.clone(),
        core.store.own_writer().await?,
        notifier.clone(),
        core.files.clone(),
        core.inventory.clone(),
        core.events.clone(),
        leases.clone(),
    ));
    let rollouts = Arc::new(RolloutEngine::new(RolloutParts {
        store: core.store.clone(),
        notifier: notifier.clone(),
        files: core.files.clone(),
        inventory: core.inventory.clone(),
        registry: core.registry.clone(),
        events: core.events.clone(),
        pins: core.pins.clone(),
        leases,
    }));

    let mut tasks = JoinSet::new();
    let (drain, draining) = Drain::new();
    let phone_app = crate::provision::PhoneHandler::new(Arc::new(
        Phones::new(
            core.files.clone(),
            core.inventory.clone(),
            core.security.clone(),
            core.events.clone(),
            core.metrics.clone(),
            core.store.clone(),
            config.uploads.clone(),
            core.resources.clone(),
        )
        .with_directories(core.directories.clone())
        .with_bandwidth_cap(config.files.bandwidth_bytes_per_sec)
        .with_trusted_proxies(config.http.proxies().map_err(ServerError::Config)?),
    ));
    let (timeouts, http_limiter) = (admission.http, admission.phone_limiter("provisioning HTTP"));
    let provisioning = crate::listener::serve_http(
        "provisioning HTTP",
        http,
        phone_app.clone(),
        http_limiter,
        timeouts,
        draining.clone(),
    );
    tasks.spawn(provisioning);
    if let Some(https) = https {
        tasks.spawn(https.serve(phone_app, admission.phone_limiter("provisioning HTTPS"), timeouts, draining.clone()));
    }
    let discoveries = Arc::new(Discoveries::new(
        core.store.clone(),
        core.inventory.clone(),
        core.registry.clone(),
        config.pnp.discovered_group.clone(),
    ));
    let pnp_services = Arc::new(
        PnpServices::new(
            core.inventory.clone(),
            core.registry.clone(),
            discoveries.clone(),
            core.security.clone(),
            core.events.clone(),
            core.metrics.clone(),
            sip.clone(),
        )
        .with_responder(pnp_responder(&config, &core, pnp.is_some())),
    );
    tasks.spawn(crate::sip_service::serve(sip, pnp_services, pnp));
    tasks.spawn(campaigns.clone().run());
    tasks.spawn(rollouts.clone().run());
    let filestore = Arc::new(
        FileStore::new(
            core.store.clone(),
            core.resources.clone(),
            core.inventory.clone(),
            core.cache.clone(),
            &config.files,
        )
        .with_pins(core.pins.clone()),
    );
    if core.store.backend() == sipprov_store::Backend::Postgres {
        tokio::spawn(sweep_unnamed_content(filestore.clone()));
    }
    let users = Arc::new(Users::new(core.store.clone()).map_err(|e| ServerError::Config(e.to_string()))?);
    start_cluster(&mut tasks, &core, users.clone(), http_addr, api_addr);
    let console_app = crate::console::router(ConsoleServices::new(
        core.store.clone(),
        core.inventory.clone(),
        core.files.clone(),
        core.registry.clone(),
        notifier.clone(),
        campaigns.clone(),
        rollouts.clone(),
        core.security.clone(),
        core.events.clone(),
        users.clone(),
        core.tokens.clone(),
        discoveries.clone(),
        core.directories.clone(),
        filestore.clone(),
        config.console.clone(),
    ));
    let api_app = crate::api::router(ApiServices {
        tokens: core.tokens,
        store: core.store,
        inventory: core.inventory,
        files: core.files,
        registry: core.registry,
        notifier,
        campaigns,
        rollouts,
        security: core.security,
        events: core.events.clone(),
        metrics: core.metrics,
        discoveries,
        users,
        directories: core.directories,
        filestore,
    })
    .merge(console_app);
    tasks.spawn(crate::listener::serve_http("admin API", api, api_app, admission.api_limiter(), timeouts, draining));
    Ok(RunningServer { http_addr, api_addr, tasks, drain, records: core.events, checkpointer: core.checkpointer })
}

/// Opens the data directory and the store, loads what is kept in memory, and builds the
/// services that need no listener: the provisioning core and the registry. Logs the access
/// posture, so the default (closed) one never fails silently (see [`log_posture`]).
async fn open_core(config: &ServerConfig) -> Result<Core, ServerError> {
    let (store, api_token) = open_data(config).await?;
    // First, while no other connection opens: its worker thread is then told apart and set to
    // the lowest priority (`sipprov_store::Checkpointer`).
    let checkpointer = store.start_checkpointer().await?;
    let node = crate::node::NodeId::new(config.cluster.node_name.as_deref());
    store.set_origin(node.as_str());
    // Before anything is loaded: a change another node makes during the load is then read
    // from the feed again rather than missed.
    let feed_start = store.change_feed_head().await?;
    let tokens = Arc::new(Tokens::load(store.clone(), &api_token).await?);
    let seen = Arc::new(crate::seen::SeenIndex::default());
    let inventory = Arc::new(Inventory::load_taking_fetches(&store, |fetch| seen.merge(fetch)).await?);
    let cache = Arc::new(RenderCache::new(store.rendered_states().await?).with_max_bytes(config.cache.max_bytes));
    let metrics = Arc::new(Metrics::default());
    // The fetch log's writes on a connection of their own, below the process's CPU priority;
    // every other statement (campaign outcomes, the API) keeps the normal one.
    let events = FetchLog::spawn(store.background_writer().await?, metrics.clone(), &config.fetch_log, seen.clone());
    let security = Arc::new(security_for(&store, config).await?);
    load_windows(&store, &security).await?;
    tracing::info!(devices = inventory.len(), "inventory loaded");
    let resources = ResourceCatalog::load(&store, &config.data_dir).await?;
    tracing::info!(files = resources.list().len(), "file catalog loaded");
    release_freed_memory();
    let pins = Arc::new(FirmwarePins::new(store.firmware_pins().await?, cache.clone()));
    let files = Arc::new(Files::new(FilesParts {
        store: store.clone(),
        inventory: inventory.clone(),
        cache: cache.clone(),
        events: events.clone(),
        metrics: metrics.clone(),
        security: security.clone(),
        resources: resources.clone(),
        pins: pins.clone(),
        pnp_url: config.pnp.url.clone(),
    }));
    let templates = crate::templates::Templates::new(store.clone(), files.clone(), inventory.clone());
    templates.import_dir(&config.template_dir()).await?;
    templates.reload().await?;
    let directories = Arc::new(Directories::load(store.clone(), inventory.clone()).await?);
    let registry = Arc::new(
        Registry::new(store.clone(), inventory.clone(), cache.clone(), security.clone())
            .with_references(directories.clone(), resources.clone()),
    );
    log_posture(inventory.clone(), security.clone());
    if store.backend() == sipprov_store::Backend::Postgres {
        crate::auth::shared::spawn(store.clone(), security.clone());
    }
    Ok(Core {
        node,
        store,
        checkpointer,
        tokens,
        inventory,
        metrics,
        events,
        security,
        files,
        registry,
        pins,
        directories,
        resources,
        cache,
        seen,
        feed_start,
    })
}

/// Logs the access posture ([`crate::auth::posture::assess`]) on a blocking thread, beside the
/// rest of the start-up rather than before the listeners open.
///
/// The posture is a report for the operator, not something serving waits for, and it walks the
/// whole inventory: at a million devices that took a second or more of a start-up's 5 to 7
/// (`perf` of `bench/scale.sh`'s restart), a second during which no phone was answered. Its
/// lines follow `sipprov listening` by about as much.
fn log_posture(inventory: Arc<Inventory>, security: Arc<Security>) {
    tokio::task::spawn_blocking(move || {
        crate::auth::posture::assess(&inventory, &security, sipprov_store::now_ms()).log(&security.config);
    });
}

/// Starts this node's heartbeat and, on PostgreSQL, the follower that applies the other
/// nodes' changes (see [`crate::cluster`]).
fn start_cluster(
    tasks: &mut JoinSet<Result<(), ServerError>>,
    core: &Core,
    users: Arc<Users>,
    http_addr: SocketAddr,
    api_addr: SocketAddr,
) {
    let beat = sipprov_store::NodeHeartbeat {
        id: core.node.as_str().to_string(),
        name: core.node.name().to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        started_at: sipprov_store::now_ms(),
        http_addr: http_addr.to_string(),
        api_addr: api_addr.to_string(),
    };
    let store = core.store.clone();
    tasks.spawn(async move {
        crate::cluster::heartbeat::run(store, beat).await;
        Ok(())
    });
    if core.store.backend() != sipprov_store::Backend::Postgres {
        return;
    }
    let replicas = Arc::new(crate::cluster::Replicas {
        store: core.store.clone(),
        inventory: core.inventory.clone(),
        cache: core.cache.clone(),
        files: core.files.clone(),
        directories: core.directories.clone(),
        tokens: core.tokens.clone(),
        users,
        resources: core.resources.clone(),
        pins: core.pins.clone(),
        security: core.security.clone(),
        seen: core.seen.clone(),
    });
    let start = core.feed_start;
    tasks.spawn(async move {
        crate::cluster::follower::run(replicas, start).await;
        Ok(())
    });
}

/// On PostgreSQL, drops every minute the local content of files another node removed.
async fn sweep_unnamed_content(filestore: Arc<FileStore>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        tick.tick().await;
        let swept = filestore.sweep_unnamed_content().await;
        if swept > 0 {
            tracing::info!(swept, "removed the local content of files removed through another node");
        }
    }
}

/// Whether this node answers PnP multicast: always on SQLite; on PostgreSQL, while it holds its
/// segment's responder lock (see `pnp::responder`).
fn pnp_responder(config: &ServerConfig, core: &Core, pnp_on: bool) -> Arc<crate::pnp::responder::Responder> {
    use crate::pnp::responder::Responder;
    if !pnp_on || core.store.backend() != sipprov_store::Backend::Postgres {
        return Responder::always();
    }
    Responder::contend(core.store.clone(), config.pnp.segment_name(), core.node.as_str().to_string())
}

/// The security state; on PostgreSQL, sharing the Digest nonce key, the nonce counts and the
/// failure throttle with the other nodes of the database.
async fn security_for(store: &Store, config: &ServerConfig) -> Result<Security, ServerError> {
    let mut security = Security::new(&config.security);
    if store.backend() == sipprov_store::Backend::Postgres {
        security.digest.share(store.clone()).await?;
    }
    Ok(security)
}

/// Creates the data directory, checks they are writable, and opens
/// the API token and the database.
async fn open_data(config: &ServerConfig) -> Result<(Store, String), ServerError> {
    let dir_err = |source| ServerError::DataDir { path: config.data_dir.display().to_string(), source };
    crate::datadir::create(&config.data_dir).map_err(dir_err)?;
    crate::config::remove_stale_listening_file(&config.data_dir);
    crate::writable::check_data_dir(&config.data_dir)?;
    let api_token = crate::token::load_or_create(&config.data_dir).map_err(dir_err)?;
    let store = crate::writable::open_database(config).await?;
    crate::datadir::warn_if_exposed(&config.data_dir);
    Ok((store, api_token))
}

/// Writes where every listener is bound, for the CLI and the tests.
fn write_listening(
    config: &ServerConfig,
    http_addr: SocketAddr,
    api_addr: SocketAddr,
    sip: &sipprov_sip::Endpoint,
    https: Option<SocketAddr>,
) {
    let sip_udp = sip.local_addr(sipprov_sip::Transport::Udp);
    let sip_tcp = sip.local_addr(sipprov_sip::Transport::Tcp);
    let sip_tls = sip.local_addr(sipprov_sip::Transport::Tls);
    crate::config::write_listening_file(
        &config.data_dir,
        &serde_json::json!({
            "http": http_addr.to_string(), "api": api_addr.to_string(),
            "sip_udp": sip_udp.map(|a| a.to_string()), "sip_tcp": sip_tcp.map(|a| a.to_string()),
            "sip_tls": sip_tls.map(|a| a.to_string()),
            "https": https.map(|h| h.to_string()),
        }),
    );
    tracing::info!(%http_addr, %api_addr, ?sip_udp, ?sip_tcp, ?sip_tls, data_dir = %config.data_dir.display(), "sipprov listening");
}

async fn bind(what: &'static str, addr: SocketAddr) -> Result<TcpListener, ServerError> {
    crate::listener::bind_tcp(addr).map_err(|source| ServerError::Listen { what, addr, source })
}

fn local(listener: &TcpListener, addr: SocketAddr) -> Result<SocketAddr, ServerError> {
    listener.local_addr().map_err(|source| ServerError::Listen { what: "local address", addr, source })
}
/// Reloads what a restart must keep: windows an operator re-opened, windows already used, and
/// generated credentials.
async fn load_windows(store: &Store, security: &crate::auth::Security) -> Result<(), ServerError> {
    let windows = &security.windows;
    if security.config.first_fetch_window_secs > 0 {
        let since = security.unlocks_worth_keeping_since(sipprov_store::now_ms());
        for (mac, at) in store.unlocks_since(since).await? {
            windows.unlock(mac, at);
        }
        for (mac, at) in store.first_fetches_since(since).await? {
            windows.used(mac, at);
        }
    }
    for (mac, credentials) in store.generated_credentials().await? {
        windows.set_generated(mac, credentials);
    }
    Ok(())
}

/// Returns the memory freed after loading (decoded rows, temporary vectors) to the OS.
///
/// glibc keeps freed heap pages in its arenas; after loading 100,000 devices that is tens of
/// megabytes of resident memory the server will not need again.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free heap pages; it touches no live allocation.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Caps glibc at two malloc arenas. By default it creates up to eight per core, and a server
/// whose tasks hop between threads leaves freed memory stranded in each of them: during a
/// 100,000-device campaign that stranded memory is most of the resident set.
pub(crate) fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; it is called before the heavy allocation starts.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_configured_cache_bound_defaults_to_the_caches_own() {
        assert_eq!(crate::config::CacheConfig::default().max_bytes, crate::cache::DEFAULT_MAX_BYTES);
    }
}
