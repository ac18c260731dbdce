//! Inbound TCP connections under the endpoint's [`ConnectionGate`] and [`StreamTimeouts`]: a
//! refused connection is reset before anything is read, an admitted one holds its permit until
//! it closes, and idle or half-sent connections are closed on time.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sipprov_sip::{ConnectionGate, ConnectionPermit, Endpoint, EndpointConfig, StreamTimeouts, Transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Admits at most `cap` connections at once; counts what it holds.
struct Gate {
    cap: usize,
    open: Arc<AtomicUsize>,
}

/// Gives the slot back when the connection closes.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl ConnectionGate for Gate {
    fn admit(&self, transport: Transport, _peer: SocketAddr) -> Option<ConnectionPermit> {
        assert_eq!(transport, Transport::Tcp);
        let taken = self.open.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n < self.cap).then_some(n + 1));
        taken.ok().map(|_| Box::new(Slot(self.open.clone())) as ConnectionPermit)
    }
}

async fn endpoint(cap: usize, timeouts: StreamTimeouts) -> (Endpoint, Arc<AtomicUsize>) {
    let open = Arc::new(AtomicUsize::new(0));
    let cfg = EndpointConfig {
        tcp: Some("127.0.0.1:0".parse().unwrap()),
        stream_timeouts: timeouts,
        connection_gate: Some(Arc::new(Gate { cap, open: open.clone() })),
        ..EndpointConfig::default()
    };
    (Endpoint::bind(cfg).await.unwrap(), open)
}

/// How long until the peer closes `c` (EOF or reset), within `limit`.
async fn closed_within(c: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 256];
    loop {
        match tokio::time::timeout(limit, c.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test]
async fn over_the_gate_is_reset_and_a_closed_connection_gives_its_permit_back() {
    let timeouts = StreamTimeouts { idle: Duration::from_secs(30), ..StreamTimeouts::default() };
    let (ep, open) = endpoint(1, timeouts).await;
    let addr = ep.local_addr(Transport::Tcp).unwrap();
    let first = TcpStream::connect(addr).await.unwrap();
    // The reset may come before the connect completes on our side, or just after.
    let closed = match TcpStream::connect(addr).await {
        Err(e) => (e.kind() == std::io::ErrorKind::ConnectionReset).then_some(Duration::ZERO),
        Ok(mut second) => closed_within(&mut second, Duration::from_secs(5)).await,
    };
    assert!(closed.is_some_and(|t| t < Duration::from_secs(1)), "over the cap: reset at once ({closed:?})");
    assert_eq!(open.load(Ordering::SeqCst), 1);
    drop(first);
    let released = async {
        while open.load(Ordering::SeqCst) != 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), released).await.expect("the permit is dropped with the connection");
    let mut third = TcpStream::connect(addr).await.unwrap();
    assert!(closed_within(&mut third, Duration::from_millis(500)).await.is_none(), "the slot is free again");
}

#[tokio::test]
async fn idle_and_half_sent_connections_are_closed_on_time() {
    let timeouts =
        StreamTimeouts { idle: Duration::from_millis(1500), message: Duration::from_millis(500), ..Default::default() };
    let (ep, open) = endpoint(10, timeouts).await;
    let addr = ep.local_addr(Transport::Tcp).unwrap();
    let mut idle = TcpStream::connect(addr).await.unwrap();
    let mut half = TcpStream::connect(addr).await.unwrap();
    half.write_all(b"OPTIONS sip:a SIP/2.0\r\nVia: SIP/2.0/TCP").await.unwrap();
    // Keep-alive CRLFs (RFC 5626 §3.5.1) are activity, not the start of a message.
    let mut pinging = TcpStream::connect(addr).await.unwrap();
    let (half_closed, idle_closed, pinging_open) = tokio::join!(
        closed_within(&mut half, Duration::from_secs(5)),
        closed_within(&mut idle, Duration::from_secs(5)),
        async {
            for _ in 0..4 {
                tokio::time::sleep(Duration::from_millis(700)).await;
                pinging.write_all(b"\r\n\r\n").await.unwrap();
            }
            closed_within(&mut pinging, Duration::from_millis(100)).await.is_none()
        }
    );
    let half_closed = half_closed.expect("a half-sent message is dropped");
    assert!(half_closed >= Duration::from_millis(400) && half_closed < Duration::from_millis(1400), "{half_closed:?}");
    let idle_closed = idle_closed.expect("an idle connection is dropped");
    assert!(idle_closed >= Duration::from_millis(1400) && idle_closed < Duration::from_secs(4), "{idle_closed:?}");
    assert!(pinging_open, "a connection kept alive with CRLFs stays open");
    assert_eq!(open.load(Ordering::SeqCst), 1, "the closed connections gave their permits back");
}
