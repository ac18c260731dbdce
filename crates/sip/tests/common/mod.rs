//! Test harness: an endpoint whose observer records every transaction event, check-sync
//! requests, and SIPp (from sipprov-testkit) as a request target.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sipprov_sip::{Endpoint, EndpointConfig, Request, Target, Timers, Transport, TxEvent};

use sipprov_testkit::Sipp;

/// A scenario from this crate's tests/sipp.
pub(crate) fn scenario(name: &str) -> PathBuf {
    sipprov_testkit::scenario(&[concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sipp")], name)
}

/// Where to send a request to SIPp. The harness names its transport by a string, as it knows
/// nothing of this crate; the target is built here.
pub(crate) trait SippTarget {
    /// SIPp's address and transport as a [`Target`].
    fn target(&self) -> Target;
}

impl SippTarget for Sipp {
    fn target(&self) -> Target {
        let transport = if self.transport == "udp" { Transport::Udp } else { Transport::Tcp };
        Target::new(self.addr, transport)
    }
}

/// Every event seen by an endpoint's observer.
#[derive(Clone, Default)]
pub(crate) struct Recorder(pub Arc<Mutex<Vec<TxEvent>>>);

impl Recorder {
    pub(crate) fn events(&self) -> Vec<TxEvent> {
        self.0.lock().unwrap().clone()
    }
}

/// An endpoint on 127.0.0.1 (UDP and TCP, ephemeral ports) with a recording observer.
pub(crate) async fn endpoint(timers: Timers) -> (Endpoint, Recorder) {
    let rec = Recorder::default();
    let sink = rec.0.clone();
    let cfg = EndpointConfig {
        udp: Some("127.0.0.1:0".parse().unwrap()),
        tcp: Some("127.0.0.1:0".parse().unwrap()),
        timers,
        user_agent: Some("sipprov-test".into()),
        observer: Some(Arc::new(move |e: &TxEvent| sink.lock().unwrap().push(e.clone()))),
        ..Default::default()
    };
    (Endpoint::bind(cfg).await.expect("bind endpoint"), rec)
}

/// A check-sync NOTIFY to user 100 at `target`.
pub(crate) fn check_sync(ep: &Endpoint, target: &Target) -> Request {
    let uri = format!("sip:100@{}", target.addr);
    ep.request("NOTIFY", &uri, target)
        .unwrap()
        .from("sip:prov@127.0.0.1")
        .to(&uri)
        .header("Event", "check-sync;reboot=false")
        .header("Subscription-State", "terminated")
        .build()
}

pub(crate) fn fast_timers() -> Timers {
    Timers { t1: Duration::from_millis(100), t2: Duration::from_millis(400), t4: Duration::from_millis(500) }
}
