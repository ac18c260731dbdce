//! Writes fetch records, device events and content change times to the store
//! in batches, off the request path.
//!
//! A phone's GET must not wait for a database write: handlers hand records to
//! a bounded channel and a single task flushes them every 250 ms in one
//! transaction per kind. Identical fetches within a batch (same device, file,
//! source, content, status and authentication) become one event with a count. When the
//! channel is full the record is dropped and counted, never blocking a phone.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sipprov_store::{FetchInfo, NewEvent, RenderedState, Store};
use tokio::sync::{mpsc, oneshot};

use crate::metrics::Metrics;

const QUEUE: usize = 65_536;
const BATCH: usize = 8_192;
const INTERVAL: Duration = Duration::from_millis(250);

/// Something to persist.
#[derive(Debug)]
pub enum Record {
    /// A device fetched a file: updates its last-seen columns and appends a `fetch` event.
    /// `auth` says how the requester was accepted (`none`, `digest-sha256`, `client-certificate`, …).
    Fetch { info: FetchInfo, status: u16, auth: &'static str },
    /// Any other device event (refusals, notifications, …).
    Event(NewEvent),
    /// A file's content changed.
    Rendered(RenderedState),
}

enum Command {
    Record(Record),
    Flush(oneshot::Sender<()>),
}

/// The handle handlers use.
#[derive(Clone)]
pub struct FetchLog {
    tx: mpsc::Sender<Command>,
    metrics: Arc<Metrics>,
}

impl FetchLog {
    /// Starts the writer task.
    pub fn spawn(store: Store, metrics: Arc<Metrics>) -> FetchLog {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(writer(store, rx));
        FetchLog { tx, metrics }
    }

    /// Queues a record without waiting; drops it (and counts the drop) when the queue is full.
    pub fn record(&self, record: Record) {
        if self.tx.try_send(Command::Record(record)).is_err() {
            Metrics::inc(&self.metrics.fetch_records_dropped);
        }
    }

    /// Waits until everything queued so far is in the store.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Command::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

#[derive(Default)]
struct Batch {
    /// The latest fetch per device and file (a phone fetches several files in one boot).
    fetches: HashMap<(sipprov_model::Mac, String), FetchInfo>,
    events: Vec<NewEvent>,
    rendered: Vec<RenderedState>,
    last_fetch_event: HashMap<(sipprov_model::Mac, String, String, String, u16, &'static str), usize>,
    waiting: Vec<oneshot::Sender<()>>,
    size: usize,
}

impl Batch {
    fn add(&mut self, record: Record) {
        self.size += 1;
        match record {
            Record::Fetch { info, status, auth } => self.add_fetch(info, status, auth),
            Record::Event(e) => self.events.push(e),
            Record::Rendered(r) => self.rendered.push(r),
        }
    }

    fn add_fetch(&mut self, info: FetchInfo, status: u16, auth: &'static str) {
        let key = (info.mac, info.file.clone(), info.ip.clone(), info.hash.clone(), status, auth);
        if let Some(&i) = self.last_fetch_event.get(&key) {
            if let Some(count) = self.events[i].detail.get_mut("count") {
                *count = serde_json::json!(count.as_u64().unwrap_or(1) + 1);
            }
        } else {
            self.last_fetch_event.insert(key, self.events.len());
            self.events.push(NewEvent {
                mac: info.mac,
                at: info.at,
                kind: "fetch".into(),
                detail: serde_json::json!({
                    "file": info.file, "ip": info.ip, "hash": info.hash, "status": status, "count": 1, "auth": auth,
                    "model": info.reported_model, "firmware": info.reported_firmware,
                }),
            });
        }
        self.fetches.insert((info.mac, info.file.clone()), info);
    }
}

async fn writer(store: Store, mut rx: mpsc::Receiver<Command>) {
    let mut batch = Batch::default();
    let mut tick = tokio::time::interval(INTERVAL);
    loop {
        tokio::select! {
            cmd = rx.recv() => match cmd {
                Some(Command::Record(r)) => {
                    batch.add(r);
                    if batch.size >= BATCH { write(&store, std::mem::take(&mut batch)).await; }
                }
                Some(Command::Flush(done)) => {
                    batch.waiting.push(done);
                    write(&store, std::mem::take(&mut batch)).await;
                }
                None => { write(&store, std::mem::take(&mut batch)).await; return; }
            },
            _ = tick.tick() => {
                if batch.size > 0 { write(&store, std::mem::take(&mut batch)).await; }
            }
        }
    }
}

async fn write(store: &Store, batch: Batch) {
    let mut fetches: Vec<FetchInfo> = batch.fetches.into_values().collect();
    // Oldest first, so each device's last-seen columns end on its latest fetch.
    fetches.sort_by_key(|f| f.at);
    if !fetches.is_empty() {
        if let Err(e) = store.record_fetches(&fetches).await {
            tracing::error!(error = %e, count = fetches.len(), "cannot record fetches");
        }
    }
    if let Err(e) = store.append_events(&batch.events).await {
        tracing::error!(error = %e, count = batch.events.len(), "cannot record device events");
    }
    if !batch.rendered.is_empty() {
        if let Err(e) = store.save_rendered_states(&batch.rendered).await {
            tracing::error!(error = %e, "cannot record content change times");
        }
    }
    for done in batch.waiting {
        let _ = done.send(());
    }
}
