//! Serving one stored file (firmware, ringtones, …) the way RFC 9110 asks of a static resource:
//! strong validators, conditional requests, single byte ranges, HEAD, streamed from disk.
//!
//! - **Validators** (RFC 9110 §8.8): the strong `ETag` is the quoted SHA-256 of the content
//!   (the catalog's content address: two different contents never share one), and
//!   `Last-Modified` is when the file entered the catalog.
//! - **Conditionals**, evaluated in the order of §13.2.2: `If-Match` (strong comparison,
//!   §13.1.1) else `If-Unmodified-Since` (§13.1.4) → 412; then `If-None-Match` (weak comparison,
//!   §13.1.2) else `If-Modified-Since` (§13.1.3) → 304; then `Range` with `If-Range`.
//! - **Ranges** (§14): `Accept-Ranges: bytes`; one range (`bytes=a-b`, `a-`, `-n`) gets 206 with
//!   `Content-Range` (§14.4, §15.3.7); a range that does not overlap the file gets 416 with
//!   `Content-Range: bytes */size` (§15.5.17). A request for several ranges gets the whole file
//!   with 200, which §14.2 allows ("a server MAY ignore the Range header field"): phones and
//!   download tools resume with one range, and a multipart/byteranges body would cost a second
//!   code path for no client we serve. A `Range` that does not parse, or in another unit, is
//!   ignored the same way (§14.2). `If-Range` (§13.1.5) holds only for our strong ETag or the
//!   exact `Last-Modified` date; otherwise the whole file is sent, so a resumed download can never
//!   splice two contents. Range handling is defined for GET only (§14.2): HEAD ignores it.
//! - **HEAD** (§9.3.2) answers the same status and headers as GET, without the body.
//!
//! **Streaming.** The body is read in chunks of [`CHUNK`] bytes (16 KiB under a bandwidth cap),
//! from the page cache without blocking when the chunk is there, else on tokio's blocking pool
//! (`read_at`), and handed to hyper one at a time: hyper asks for
//! the next chunk only when its write queue for the connection is under its limit
//! (`listener::WRITE_BUFFER_BYTES`), so a client that reads slowly holds at most about two chunks
//! of server memory, and one that stops reading is dropped by the listener's idle timeout.
//!
//! **No sendfile.** A zero-copy `sendfile(2)` needs the socket: hyper owns the connection and
//! writes only through its own buffers (a body is a stream of byte buffers), and on HTTPS every
//! byte must pass through rustls to be encrypted in user space anyway (the kernel's TLS offload
//! is not used). Sending files around hyper would mean a second HTTP/1 implementation for the
//! responses that matter most; instead each chunk is read once into a buffer that hyper writes
//! with `writev` straight from it (one copy into the socket, none into hyper's buffer).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::bandwidth::Bandwidth;
use super::dates;

/// Bytes read from disk and handed to hyper at once. Large enough that the per-chunk costs (a
/// blocking-pool hop, a `pread`, a `writev`) stay small against copying the bytes, small enough
/// that hundreds of slow downloads hold little memory (see the module doc).
pub(crate) const CHUNK: usize = 64 * 1024;

/// The chunk under a bandwidth cap: tokens are taken per chunk, and a smaller one keeps every
/// download moving often enough for the listener's idle timeout (see `[files]`).
pub(crate) const CAPPED_CHUNK: usize = 16 * 1024;

/// A file to serve: where its content is, and its validators.
#[derive(Debug, Clone)]
pub(crate) struct StoredFile {
    /// The content on disk.
    pub(crate) path: PathBuf,
    /// Its length in bytes, as the catalog recorded it; a file on disk of another length is
    /// refused rather than served under a wrong `Content-Length`.
    pub(crate) size: u64,
    /// The SHA-256 of the content, lower-case hex (the strong ETag, quoted on the wire).
    pub(crate) sha256: String,
    /// When the file entered the catalog (whole seconds).
    pub(crate) last_modified: SystemTime,
    /// Whether only its device may have it: no shared cache may keep it then.
    pub(crate) private: bool,
}

impl StoredFile {
    fn etag(&self) -> String {
        format!("\"{}\"", self.sha256)
    }

    /// `Last-Modified` from unix seconds (negative ones, which no real file has, read as the epoch).
    pub(crate) fn time_of(unix_secs: i64) -> SystemTime {
        UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(unix_secs).unwrap_or(0))
    }
}

/// A byte range of the file, both ends included (RFC 9110 §14.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ByteRange {
    /// The first byte.
    pub(crate) first: u64,
    /// The last byte (inclusive).
    pub(crate) last: u64,
}

/// What a request gets, decided from its method and headers alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plan {
    /// 304: the client's copy is current.
    NotModified,
    /// 412: an `If-Match` or `If-Unmodified-Since` failed.
    PreconditionFailed,
    /// 200 with the whole file.
    Full,
    /// 206 with one range.
    Partial(ByteRange),
    /// 416: no requested byte lies in the file.
    Unsatisfiable,
}

/// How a response went, for the download's record: its status, the first byte sent, how many
/// bytes were handed to the connection, and whether that was all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// The status answered.
    pub(crate) status: StatusCode,
    /// The offset of the first byte of the body.
    pub(crate) first: u64,
    /// Bytes of the body handed to the connection.
    pub(crate) sent: u64,
    /// Whether the whole body was handed over (false: the client went away, or a read failed).
    pub(crate) complete: bool,
}

/// Decides the answer (RFC 9110 §13.2.2 order; see the module doc).
pub(crate) fn plan(method: &Method, headers: &HeaderMap, file: &StoredFile) -> Plan {
    let etag = file.etag();
    if let Some(list) = text(headers, &header::IF_MATCH) {
        if !list_matches(list, &etag, Comparison::Strong) {
            return Plan::PreconditionFailed;
        }
    } else if let Some(date) = text(headers, &header::IF_UNMODIFIED_SINCE).and_then(strict_date) {
        if file.last_modified > date {
            return Plan::PreconditionFailed;
        }
    }
    if let Some(list) = text(headers, &header::IF_NONE_MATCH) {
        if list_matches(list, &etag, Comparison::Weak) {
            return Plan::NotModified;
        }
    } else if let Some(date) = text(headers, &header::IF_MODIFIED_SINCE).and_then(dates::parse_lenient) {
        // §13.1.3: a date later than the server's clock is no evidence of anything.
        if file.last_modified <= date && !dates::is_future(date) {
            return Plan::NotModified;
        }
    }
    if method != Method::GET {
        return Plan::Full;
    }
    let Some(range) = text(headers, &header::RANGE) else { return Plan::Full };
    if let Some(condition) = text(headers, &header::IF_RANGE) {
        if !if_range_holds(condition, &etag, file.last_modified) {
            return Plan::Full;
        }
    }
    match parse_range(range, file.size) {
        RangeAsk::Ignore => Plan::Full,
        RangeAsk::One(range) => Plan::Partial(range),
        RangeAsk::Unsatisfiable => Plan::Unsatisfiable,
    }
}

fn text<'h>(headers: &'h HeaderMap, name: &header::HeaderName) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn strict_date(text: &str) -> Option<SystemTime> {
    httpdate::parse_http_date(text).ok()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Comparison {
    /// §8.8.3.2 strong comparison: both strong and identical.
    Strong,
    /// §8.8.3.2 weak comparison: identical once `W/` is set aside.
    Weak,
}

/// Whether a list of entity tags (or `*`, which any current representation matches) names ours.
fn list_matches(list: &str, ours: &str, comparison: Comparison) -> bool {
    list.split(',').map(str::trim).any(|tag| {
        tag == "*"
            || match comparison {
                Comparison::Strong => tag == ours,
                Comparison::Weak => tag.trim_start_matches("W/") == ours,
            }
    })
}

/// §13.1.5: an entity tag must match ours by strong comparison (a weak tag never does); a date
/// must equal `Last-Modified` exactly. Anything else fails, and the whole file is sent.
fn if_range_holds(condition: &str, etag: &str, last_modified: SystemTime) -> bool {
    let condition = condition.trim();
    if condition.starts_with('"') || condition.starts_with("W/") {
        return condition == etag;
    }
    strict_date(condition) == Some(last_modified)
}

/// What a `Range` field asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RangeAsk {
    /// Nothing we honour: not parseable, another unit, or several ranges (see the module doc).
    Ignore,
    /// One range, clipped to the file.
    One(ByteRange),
    /// One range that lies past the end of the file (or a zero-length suffix, or an empty file).
    Unsatisfiable,
}

/// Parses `bytes=first-last`, `bytes=first-` or `bytes=-suffix` (§14.1.2) against a file of
/// `size` bytes.
fn parse_range(field: &str, size: u64) -> RangeAsk {
    let field = field.trim();
    let Some(set) = field.get(..6).filter(|unit| unit.eq_ignore_ascii_case("bytes=")).map(|_| &field[6..]) else {
        return RangeAsk::Ignore;
    };
    // §5.6.1: empty list elements are allowed and mean nothing.
    let mut specs = set.split(',').map(str::trim).filter(|s| !s.is_empty());
    let (Some(spec), None) = (specs.next(), specs.next()) else { return RangeAsk::Ignore };
    let Some((first, last)) = spec.split_once('-') else { return RangeAsk::Ignore };
    if first.is_empty() {
        let Some(suffix) = number(last) else { return RangeAsk::Ignore };
        if suffix == 0 || size == 0 {
            return RangeAsk::Unsatisfiable;
        }
        return RangeAsk::One(ByteRange { first: size.saturating_sub(suffix), last: size - 1 });
    }
    let Some(first) = number(first) else { return RangeAsk::Ignore };
    let last = if last.is_empty() {
        u64::MAX
    } else {
        match number(last) {
            // §14.1.1: a last position before the first makes the range-spec invalid.
            Some(last) if last >= first => last,
            _ => return RangeAsk::Ignore,
        }
    };
    if first >= size {
        return RangeAsk::Unsatisfiable;
    }
    RangeAsk::One(ByteRange { first, last: last.min(size - 1) })
}

/// 1*DIGIT; a number past u64 reads as u64::MAX (it lies past any file either way).
fn number(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.parse().unwrap_or(u64::MAX))
}

/// Opens the file and checks its length against the catalog's.
pub(crate) async fn open(file: &StoredFile) -> io::Result<File> {
    let (path, expected) = (file.path.clone(), file.size);
    tokio::task::spawn_blocking(move || {
        let opened = File::open(&path)?;
        let len = opened.metadata()?.len();
        if len != expected {
            let what = format!("{} holds {len} bytes where the catalog records {expected}", path.display());
            return Err(io::Error::new(io::ErrorKind::InvalidData, what));
        }
        Ok(opened)
    })
    .await
    .map_err(io::Error::other)?
}

/// Where a body's progress goes: the bytes counter of every download, the optional bandwidth
/// cap, and what to do once the body is done (sent, or dropped by a client that went away).
pub(crate) struct Delivery {
    /// Every byte handed to a connection is added here (`sipprov_file_bytes_served`).
    pub(crate) bytes_counter: Arc<Metered>,
    /// The global cap, when `[files] bandwidth_bytes_per_sec` sets one.
    pub(crate) bandwidth: Option<Arc<Bandwidth>>,
    /// Called once with how the response went.
    pub(crate) done: Box<dyn FnOnce(Outcome) + Send>,
}

/// A counter of served bytes (an alias keeps the signature short).
pub(crate) type Metered = AtomicU64;

/// Builds the answer for `plan`, with the body streamed from `opened` for 200 and 206 on GET.
pub(crate) fn respond(method: &Method, plan: Plan, file: &StoredFile, opened: File, delivery: Delivery) -> Response {
    let (status, range) = match plan {
        Plan::NotModified => return finish(validators(StatusCode::NOT_MODIFIED, file), delivery),
        Plan::PreconditionFailed => return finish(StatusCode::PRECONDITION_FAILED.into_response(), delivery),
        Plan::Unsatisfiable => {
            let mut response = validators(StatusCode::RANGE_NOT_SATISFIABLE, file);
            set(&mut response, header::CONTENT_RANGE, format!("bytes */{}", file.size));
            return finish(response, delivery);
        }
        Plan::Full => (StatusCode::OK, (file.size > 0).then(|| ByteRange { first: 0, last: file.size - 1 })),
        Plan::Partial(range) => (StatusCode::PARTIAL_CONTENT, Some(range)),
    };
    let length = range.map_or(0, |r| r.last - r.first + 1);
    let first = range.map_or(0, |r| r.first);
    let mut response = validators(status, file);
    set(&mut response, header::CONTENT_TYPE, "application/octet-stream".to_string());
    set(&mut response, header::CONTENT_LENGTH, length.to_string());
    if let (StatusCode::PARTIAL_CONTENT, Some(r)) = (status, range) {
        set(&mut response, header::CONTENT_RANGE, format!("bytes {}-{}/{}", r.first, r.last, file.size));
    }
    if method == Method::HEAD || length == 0 {
        return finish(response, delivery);
    }
    let chunk = if delivery.bandwidth.is_some() { CAPPED_CHUNK } else { CHUNK };
    let sending = Sending {
        file: Arc::new(opened),
        next: first,
        end: first + length,
        chunk,
        bandwidth: delivery.bandwidth,
        bytes_counter: delivery.bytes_counter,
        progress: Progress { status, first, sent: 0, total: length, done: Some(delivery.done) },
    };
    *response.body_mut() = stream(sending);
    response
}

/// A response without a body (or a HEAD): reported at once.
fn finish(response: Response, delivery: Delivery) -> Response {
    (delivery.done)(Outcome { status: response.status(), first: 0, sent: 0, complete: true });
    response
}

/// The status with the validators and caching headers every answer about the file carries
/// (§15.4.5: a 304 sends what a 200 would have in `ETag`, `Last-Modified`, `Cache-Control`).
fn validators(status: StatusCode, file: &StoredFile) -> Response {
    let mut response = status.into_response();
    set(&mut response, header::ETAG, file.etag());
    set(&mut response, header::LAST_MODIFIED, httpdate::fmt_http_date(file.last_modified));
    set(&mut response, header::ACCEPT_RANGES, "bytes".to_string());
    // The content behind a name can change (a file removed and added again), so caches must
    // revalidate; the strong ETag makes that a 304. A device's file is for it alone.
    let cache = if file.private { "private, no-cache" } else { "no-cache" };
    set(&mut response, header::CACHE_CONTROL, cache.to_string());
    response
}

fn set(response: &mut Response, name: header::HeaderName, value: String) {
    if let Ok(value) = HeaderValue::try_from(value) {
        response.headers_mut().insert(name, value);
    }
}

/// A body being sent: the file, the part still to read, and what it reports.
struct Sending {
    file: Arc<File>,
    next: u64,
    /// One past the last byte to send.
    end: u64,
    chunk: usize,
    bandwidth: Option<Arc<Bandwidth>>,
    bytes_counter: Arc<Metered>,
    progress: Progress,
}

/// Reports the outcome when the body is dropped: after its last chunk, or when hyper drops it
/// because the client went away (a cut download counts what was handed over until then).
struct Progress {
    status: StatusCode,
    first: u64,
    sent: u64,
    total: u64,
    done: Option<Box<dyn FnOnce(Outcome) + Send>>,
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(done) = self.done.take() {
            let complete = self.sent == self.total;
            done(Outcome { status: self.status, first: self.first, sent: self.sent, complete });
        }
    }
}

/// The body: one chunk at a time, each only when hyper asks for it.
fn stream(sending: Sending) -> Body {
    Body::from_stream(futures_util::stream::try_unfold(sending, |mut s| async move {
        if s.next >= s.end {
            return Ok::<_, io::Error>(None);
        }
        let len = usize::try_from(s.end - s.next).map_or(s.chunk, |left| left.min(s.chunk));
        if let Some(bandwidth) = &s.bandwidth {
            bandwidth.take(len).await;
        }
        let bytes = read_at(s.file.clone(), s.next, len).await?;
        s.next += len as u64;
        s.progress.sent += len as u64;
        s.bytes_counter.fetch_add(len as u64, Ordering::Relaxed);
        Ok(Some((bytes, s)))
    }))
}

/// Reads exactly `len` bytes at `offset`: from the page cache on the calling task when they
/// are all there ([`read_cached`]), else on the blocking pool, since a disk read must not stall
/// a runtime thread. A file shorter than the catalog says (changed under us) is an error, and
/// hyper then cuts the connection: the client sees a short body, never wrong bytes under the
/// strong ETag.
async fn read_at(file: Arc<File>, offset: u64, len: usize) -> io::Result<Bytes> {
    let mut buf = vec![0; len];
    if read_cached(&file, offset, &mut buf) {
        return Ok(Bytes::from(buf));
    }
    tokio::task::spawn_blocking(move || {
        file.read_exact_at(&mut buf, offset)?;
        Ok(Bytes::from(buf))
    })
    .await
    .map_err(io::Error::other)?
}

/// Fills `buf` from the page cache without ever waiting for the disk: Linux `preadv2` with
/// `RWF_NOWAIT` (since 4.14) fails with `EAGAIN` rather than block. A firmware image being
/// rolled out is read by many phones and stays cached, so most chunks are read here, saving two
/// thread switches each (to a blocking-pool thread and back). False when anything is not
/// cached, or on another system: the caller then reads on the blocking pool.
#[cfg(target_os = "linux")]
fn read_cached(file: &File, offset: u64, buf: &mut [u8]) -> bool {
    use std::os::fd::AsRawFd;
    let Ok(offset) = libc::off_t::try_from(offset) else { return false };
    let iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    // SAFETY: `iov` describes `buf`, which is valid and writable for its whole length during
    // the call, and the descriptor belongs to `file`, open for as long as it is borrowed.
    let read = unsafe { libc::preadv2(file.as_raw_fd(), &iov, 1, offset, libc::RWF_NOWAIT) };
    usize::try_from(read).is_ok_and(|n| n == buf.len())
}

#[cfg(not(target_os = "linux"))]
fn read_cached(_file: &File, _offset: u64, _buf: &mut [u8]) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(size: u64) -> StoredFile {
        StoredFile {
            path: PathBuf::from("/nonexistent"),
            size,
            sha256: "ab".repeat(32),
            last_modified: StoredFile::time_of(1_700_000_000),
            private: false,
        }
    }

    fn plan_of(method: Method, fields: &[(&str, &str)], size: u64) -> Plan {
        let mut headers = HeaderMap::new();
        for (name, value) in fields {
            headers.append(header::HeaderName::from_bytes(name.as_bytes()).unwrap(), value.parse().unwrap());
        }
        plan(&method, &headers, &file(size))
    }

    fn get(fields: &[(&str, &str)]) -> Plan {
        plan_of(Method::GET, fields, 1000)
    }

    fn part(first: u64, last: u64) -> Plan {
        Plan::Partial(ByteRange { first, last })
    }

    #[test]
    fn single_ranges_of_every_form() {
        assert_eq!(get(&[("range", "bytes=0-99")]), part(0, 99));
        assert_eq!(get(&[("range", "bytes=900-")]), part(900, 999));
        assert_eq!(get(&[("range", "bytes=-100")]), part(900, 999));
        assert_eq!(get(&[("range", "bytes=-5000")]), part(0, 999));
        assert_eq!(get(&[("range", "bytes=990-5000")]), part(990, 999));
        assert_eq!(get(&[("range", "BYTES = 1-2")]), Plan::Full, "no space is allowed before '='");
        assert_eq!(get(&[("range", "Bytes=1-2, ")]), part(1, 2));
        assert_eq!(get(&[("range", "bytes=999-999")]), part(999, 999));
    }

    #[test]
    fn ranges_past_the_end_are_unsatisfiable_and_nonsense_is_ignored() {
        assert_eq!(get(&[("range", "bytes=1000-")]), Plan::Unsatisfiable);
        assert_eq!(get(&[("range", "bytes=5000-6000")]), Plan::Unsatisfiable);
        assert_eq!(get(&[("range", "bytes=-0")]), Plan::Unsatisfiable);
        assert_eq!(plan_of(Method::GET, &[("range", "bytes=0-")], 0), Plan::Unsatisfiable);
        for ignored in ["bytes=5-1", "items=0-1", "bytes=a-b", "bytes=", "bytes=1", "bytes=0-1,5-6", "bytes=--1"] {
            assert_eq!(get(&[("range", ignored)]), Plan::Full, "{ignored}");
        }
        assert_eq!(get(&[("range", "bytes=99999999999999999999999-")]), Plan::Unsatisfiable);
    }

    #[test]
    fn head_and_other_methods_ignore_range() {
        assert_eq!(plan_of(Method::HEAD, &[("range", "bytes=0-1")], 1000), Plan::Full);
    }

    #[test]
    fn if_range_needs_our_strong_etag_or_exact_date() {
        let etag = format!("\"{}\"", "ab".repeat(32));
        let date = httpdate::fmt_http_date(StoredFile::time_of(1_700_000_000));
        let later = httpdate::fmt_http_date(StoredFile::time_of(1_700_000_001));
        assert_eq!(get(&[("range", "bytes=10-"), ("if-range", &etag)]), part(10, 999));
        assert_eq!(get(&[("range", "bytes=10-"), ("if-range", &date)]), part(10, 999));
        assert_eq!(get(&[("range", "bytes=10-"), ("if-range", &format!("W/{etag}"))]), Plan::Full);
        assert_eq!(get(&[("range", "bytes=10-"), ("if-range", "\"other\"")]), Plan::Full);
        assert_eq!(get(&[("range", "bytes=10-"), ("if-range", &later)]), Plan::Full);
        assert_eq!(get(&[("range", "bytes=10-"), ("if-range", "garbage")]), Plan::Full);
    }

    #[test]
    fn conditionals_follow_the_rfc_order() {
        let etag = format!("\"{}\"", "ab".repeat(32));
        let date = httpdate::fmt_http_date(StoredFile::time_of(1_700_000_000));
        let earlier = httpdate::fmt_http_date(StoredFile::time_of(1_600_000_000));
        assert_eq!(get(&[("if-none-match", &etag)]), Plan::NotModified);
        assert_eq!(get(&[("if-none-match", &format!("\"x\", W/{etag}"))]), Plan::NotModified);
        assert_eq!(get(&[("if-none-match", "\"x\"")]), Plan::Full);
        // If-None-Match decides alone when present (§13.2.2 step 3).
        assert_eq!(get(&[("if-none-match", "\"x\""), ("if-modified-since", &date)]), Plan::Full);
        assert_eq!(get(&[("if-modified-since", &date)]), Plan::NotModified);
        assert_eq!(get(&[("if-modified-since", &earlier)]), Plan::Full);
        assert_eq!(get(&[("if-match", "\"x\"")]), Plan::PreconditionFailed);
        assert_eq!(get(&[("if-match", &format!("W/{etag}"))]), Plan::PreconditionFailed);
        assert_eq!(get(&[("if-match", &etag), ("range", "bytes=0-0")]), part(0, 0));
        assert_eq!(get(&[("if-unmodified-since", &earlier)]), Plan::PreconditionFailed);
        // A 304 beats a range.
        assert_eq!(get(&[("if-none-match", &etag), ("range", "bytes=0-0")]), Plan::NotModified);
    }

    #[tokio::test]
    async fn a_body_streams_exactly_the_range_and_reports_it() {
        use http_body_util::BodyExt;
        let dir = tempfile::tempdir().unwrap();
        let content: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let path = dir.path().join("blob");
        std::fs::write(&path, &content).unwrap();
        let stored = StoredFile { path, size: content.len() as u64, ..file(0) };
        let counter = Arc::new(AtomicU64::new(0));
        let (tx, rx) = std::sync::mpsc::channel();
        let delivery = Delivery {
            bytes_counter: counter.clone(),
            bandwidth: None,
            done: Box::new(move |outcome| tx.send(outcome).unwrap()),
        };
        let plan = Plan::Partial(ByteRange { first: 1000, last: 150_000 });
        let response = respond(&Method::GET, plan, &stored, open(&stored).await.unwrap(), delivery);
        assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(response.headers()[header::CONTENT_RANGE], "bytes 1000-150000/200000");
        assert_eq!(response.headers()[header::CONTENT_LENGTH], "149001");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], &content[1000..=150_000]);
        let outcome = rx.recv().unwrap();
        assert_eq!(
            outcome,
            Outcome { status: StatusCode::PARTIAL_CONTENT, first: 1000, sent: 149_001, complete: true }
        );
        assert_eq!(counter.load(Ordering::Relaxed), 149_001);
    }

    #[tokio::test]
    async fn a_file_of_another_length_than_recorded_is_not_served() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        std::fs::write(&path, b"short").unwrap();
        let err = open(&StoredFile { path, size: 6, ..file(0) }).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
