//! The floor under the provisioning listener: a minimal hyper HTTP/1 server that answers every
//! request with the same bytes (one file read at start), on the same runtime and connection
//! setup as `sipprov serve` (the same choice of tokio runtime, hyper's HTTP/1 connection), with no
//! lookups, no access checks and no record. `bench/http.sh` with `FLOOR=1` runs it beside
//! sipprov and nginx, pinned alike, so the report shows what hyper itself costs per request.
//!
//!   cargo run --release -p sipprov-server --example hyper_floor -- 127.0.0.1:18091 body.cfg

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, ETAG};
use hyper_util::rt::TokioIo;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(addr), Some(path)) = (args.next(), args.next()) else {
        eprintln!("usage: hyper_floor <listen address> <file to serve>");
        std::process::exit(2);
    };
    let body = Bytes::from(std::fs::read(path)?);
    // The runtime `sipprov serve` picks, so that the floor runs on the same scheduler.
    sipprov_server::runtime::build()?.block_on(serve(addr, body))
}

async fn serve(addr: String, body: Bytes) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    loop {
        let (tcp, _) = listener.accept().await?;
        let body = body.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |_request| {
                let mut response = hyper::Response::new(Full::new(body.clone()));
                let headers = response.headers_mut();
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
                headers.insert(ETAG, HeaderValue::from_static("\"0123456789abcdef0123456789abcdef\""));
                headers.insert(CACHE_CONTROL, HeaderValue::from_static("private, no-cache"));
                async move { Ok::<_, Infallible>(response) }
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), service).await;
        });
    }
}
