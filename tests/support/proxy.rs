//! A fault-injecting HTTP/1.1 loopback proxy for S3 tests and benchmarks.
//!
//! It listens on 127.0.0.1, forwards each request to an upstream server (moto)
//! and logs its request line. A seeded random draw decides, per request,
//! whether to answer `503 SlowDown` with S3's XML error body, reset the
//! connection before answering, reset it halfway through the response body,
//! or delay the answer; [`Faults::latency`] adds a fixed delay to every
//! request (the benchmark's 20 ms first-byte latency).
//!
//! Each client connection is kept alive across requests; each forwarded
//! request uses a fresh upstream connection with `Connection: close`, and the
//! whole upstream response is read before it is relayed, so faults can be
//! placed anywhere in it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the proxy does to requests.
#[derive(Clone, Copy, Debug, Default)]
pub struct Faults {
    /// Fraction of requests that fail: a third answered 503 SlowDown, a third
    /// reset before any answer, a third reset in the middle of the body
    /// (answered 503 when there is no body to cut).
    pub fail: f64,
    /// Fraction of requests delayed by `delay`.
    pub delay_fraction: f64,
    /// The delay of delayed requests.
    pub delay: Duration,
    /// Added to every request.
    pub latency: Duration,
    /// Seed of the random draws.
    pub seed: u64,
    /// When set, faults and delays hit only requests whose request line
    /// contains this text (such as `.json.gz`: object downloads only).
    pub only_matching: Option<&'static str>,
    /// When set, the buckets live in this region: a request signed for
    /// another one gets S3's answer, `301 PermanentRedirect` with the
    /// bucket's region in `x-amz-bucket-region`, as from the wrong regional
    /// endpoint.
    pub bucket_region: Option<&'static str>,
    /// With `bucket_region`: a `HEAD` is answered only after another request
    /// was redirected (or after 10 s), so a client that checks the bucket's
    /// region alongside its first requests surely sends one of them to the
    /// wrong region first, however long it takes to start.
    pub redirect_others_first: bool,
    /// When set, the first request whose head (request line or headers)
    /// contains this text, such as `AWSGlue.UpdateTable`, is forwarded, and
    /// its answer replaced by Glue's `ConcurrentModificationException`: the
    /// write happened, and the client is told it conflicted. Real Glue
    /// answers so when a reply is lost and the SDK retries the request,
    /// since the retry's `VersionId` is no longer the table's.
    pub conflict_after_forwarding: Option<&'static str>,
    /// When set, the first request whose head contains this text is not
    /// forwarded but answered with Glue's `ConcurrentModificationException`,
    /// as when another writer's commit came first: the write did not happen.
    pub conflict_without_forwarding: Option<&'static str>,
    /// When set, the first request whose head contains this text is
    /// forwarded, and the client's connection then reset without an answer:
    /// the write happened and its reply was lost, as when a load balancer
    /// in front of a catalog server drops a connection.
    pub reset_after_forwarding: Option<&'static str>,
    /// Every multipart upload that `ListMultipartUploads` lists is dated
    /// now: moto dates them all 2010-11-10, so an upload started a moment
    /// ago otherwise looks years old.
    pub uploads_started_now: bool,
}

/// What happened to the requests so far.
#[derive(Debug, Default)]
pub struct Counts {
    /// Requests received.
    pub requests: AtomicU64,
    /// 503 SlowDown answers.
    pub slow_downs: AtomicU64,
    /// Connections reset before an answer.
    pub resets: AtomicU64,
    /// Responses cut in the middle of the body.
    pub truncations: AtomicU64,
    /// Requests delayed.
    pub delays: AtomicU64,
    /// Requests answered `301 PermanentRedirect` (see [`Faults::bucket_region`]).
    pub redirects: AtomicU64,
    /// Requests forwarded and then answered with a conflict (see
    /// [`Faults::conflict_after_forwarding`]).
    pub conflicts_after_forwarding: AtomicU64,
    /// Requests answered with a conflict unforwarded (see
    /// [`Faults::conflict_without_forwarding`]).
    pub conflicts_without_forwarding: AtomicU64,
    /// Requests forwarded and then left unanswered (see
    /// [`Faults::reset_after_forwarding`]).
    pub resets_after_forwarding: AtomicU64,
    /// `ListMultipartUploads` answers redated (see
    /// [`Faults::uploads_started_now`]).
    pub upload_lists_redated: AtomicU64,
}

/// A running proxy; stops accepting on drop.
pub struct Proxy {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    log: Arc<Mutex<Vec<String>>>,
    /// Fault counters.
    pub counts: Arc<Counts>,
    stop: Arc<AtomicBool>,
    port: u16,
}

impl Proxy {
    /// Starts a proxy in front of `upstream` (`127.0.0.1:PORT`).
    pub fn start(upstream: &str, faults: Faults) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let counts = Arc::new(Counts::default());
        let stop = Arc::new(AtomicBool::new(false));
        let upstream = upstream.to_owned();
        let (l, c, s) = (log.clone(), counts.clone(), stop.clone());
        std::thread::spawn(move || {
            let draws = Arc::new(Mutex::new(Rng(faults.seed.wrapping_mul(2) | 1)));
            for conn in listener.incoming() {
                if s.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                // Without TCP_NODELAY, a response written as head then body
                // waits for the client's delayed ACK of the head (Nagle):
                // about 40 ms more on every small answer, on top of
                // `latency`, which made the "20 ms" proxy a 60 ms one.
                let _ = conn.set_nodelay(true);
                let (upstream, l, c, d) = (upstream.clone(), l.clone(), c.clone(), draws.clone());
                std::thread::spawn(move || serve(conn, &upstream, faults, &l, &c, &d));
            }
        });
        Proxy {
            endpoint: format!("http://127.0.0.1:{port}"),
            log,
            counts,
            stop,
            port,
        }
    }

    /// The request lines so far (`GET /bucket?list-type=2&prefix=… HTTP/1.1`).
    pub fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Failures injected so far.
    pub fn failures(&self) -> u64 {
        let c = &self.counts;
        c.slow_downs.load(Ordering::Relaxed)
            + c.resets.load(Ordering::Relaxed)
            + c.truncations.load(Ordering::Relaxed)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// xorshift64*: small, seeded, good enough to spread faults.
struct Rng(u64);

impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

const SLOW_DOWN: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><RequestId>TRAILMILLPROXY</RequestId><HostId>proxy</HostId></Error>";

enum Fault {
    None,
    SlowDown,
    Reset,
    Truncate,
}

fn serve(
    conn: TcpStream,
    upstream: &str,
    faults: Faults,
    log: &Mutex<Vec<String>>,
    counts: &Counts,
    draws: &Mutex<Rng>,
) {
    let mut reader = BufReader::new(conn.try_clone().expect("clone the connection"));
    let mut client = conn;
    loop {
        let Some((head, body)) = read_request(&mut reader) else {
            return;
        };
        let line = head.lines().next().unwrap_or_default().to_owned();
        log.lock().unwrap().push(line.clone());
        counts.requests.fetch_add(1, Ordering::Relaxed);
        let targeted = faults.only_matching.is_none_or(|t| line.contains(t));
        let (fault, delayed) = if !targeted {
            (Fault::None, false)
        } else {
            let mut rng = draws.lock().unwrap();
            let f = rng.next_f64();
            let fault = if f < faults.fail / 3.0 {
                Fault::SlowDown
            } else if f < faults.fail * 2.0 / 3.0 {
                Fault::Reset
            } else if f < faults.fail {
                Fault::Truncate
            } else {
                Fault::None
            };
            (fault, rng.next_f64() < faults.delay_fraction)
        };
        let mut wait = faults.latency;
        if delayed {
            counts.delays.fetch_add(1, Ordering::Relaxed);
            wait += faults.delay;
        }
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
        if let Some(region) = faults.bucket_region
            && signing_region(&head).is_some_and(|r| r != region)
        {
            if faults.redirect_others_first && line.starts_with("HEAD ") {
                let started = std::time::Instant::now();
                while counts.redirects.load(Ordering::Relaxed) == 0
                    && started.elapsed() < Duration::from_secs(10)
                {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            counts.redirects.fetch_add(1, Ordering::Relaxed);
            if permanent_redirect(&mut client, region, line.starts_with("HEAD ")).is_err() {
                return;
            }
            continue;
        }
        if first_match(
            faults.conflict_after_forwarding,
            &head,
            &counts.conflicts_after_forwarding,
        ) {
            if forward(upstream, &head, &body).is_none() || glue_conflict(&mut client).is_err() {
                return;
            }
            continue;
        }
        if first_match(
            faults.conflict_without_forwarding,
            &head,
            &counts.conflicts_without_forwarding,
        ) {
            if glue_conflict(&mut client).is_err() {
                return;
            }
            continue;
        }
        if first_match(
            faults.reset_after_forwarding,
            &head,
            &counts.resets_after_forwarding,
        ) {
            let _ = forward(upstream, &head, &body);
            reset(&client);
            return;
        }
        match fault {
            Fault::SlowDown => {
                if slow_down(&mut client, counts).is_err() {
                    return;
                }
                continue;
            }
            Fault::Reset => {
                counts.resets.fetch_add(1, Ordering::Relaxed);
                reset(&client);
                return;
            }
            Fault::Truncate | Fault::None => {}
        }
        let Some(response) = forward(upstream, &head, &body) else {
            reset(&client);
            return;
        };
        let (mut resp_head, resp_body, keep_alive) = frame(&response, line.starts_with("HEAD "));
        let redated;
        let resp_body = if faults.uploads_started_now
            && resp_body
                .windows(b"<ListMultipartUploadsResult".len())
                .any(|w| w == b"<ListMultipartUploadsResult")
        {
            counts.upload_lists_redated.fetch_add(1, Ordering::Relaxed);
            (resp_head, redated) = started_now(&resp_head, resp_body);
            &redated[..]
        } else {
            resp_body
        };
        if matches!(fault, Fault::Truncate) {
            if resp_body.len() < 2 {
                // Nothing to cut: fail the request as a 503 instead.
                if slow_down(&mut client, counts).is_err() {
                    return;
                }
                continue;
            }
            counts.truncations.fetch_add(1, Ordering::Relaxed);
            let _ = client.write_all(&resp_head);
            let _ = client.write_all(&resp_body[..resp_body.len() / 2]);
            let _ = client.flush();
            reset(&client);
            return;
        }
        if client.write_all(&resp_head).is_err() || client.write_all(resp_body).is_err() {
            return;
        }
        if !keep_alive {
            let _ = client.shutdown(Shutdown::Both);
            return;
        }
    }
}

/// A `ListMultipartUploads` answer with every `<Initiated>` set to now, and
/// its `Content-Length` to match.
fn started_now(head: &[u8], body: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let now = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S.000Z")
        .to_string();
    let text = String::from_utf8_lossy(body);
    let mut out = String::new();
    let mut rest = &text[..];
    while let Some(open) = rest.find("<Initiated>") {
        let value = open + "<Initiated>".len();
        let close = rest[value..]
            .find("</Initiated>")
            .expect("an <Initiated> element is closed");
        out.push_str(&rest[..value]);
        out.push_str(&now);
        rest = &rest[value + close..];
    }
    out.push_str(rest);
    let head: String = String::from_utf8_lossy(head)
        .split_inclusive("\r\n")
        .map(|line| {
            if line
                .split_once(':')
                .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
            {
                format!("Content-Length: {}\r\n", out.len())
            } else {
                line.to_owned()
            }
        })
        .collect();
    (head.into_bytes(), out.into_bytes())
}

/// Answers `503 SlowDown` with S3's XML error body, and counts it.
fn slow_down(client: &mut TcpStream, counts: &Counts) -> std::io::Result<()> {
    counts.slow_downs.fetch_add(1, Ordering::Relaxed);
    xml_error(client, "503 Slow Down", "", SLOW_DOWN)
}

/// Whether `head` is the first request to contain `target` (a fault that
/// strikes once), counting it in `count`.
fn first_match(target: Option<&str>, head: &str, count: &AtomicU64) -> bool {
    target.is_some_and(|t| head.contains(t))
        && count
            .compare_exchange(0, 1, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
}

/// Answers as Glue does an `UpdateTable` whose `VersionId` is stale.
fn glue_conflict(client: &mut TcpStream) -> std::io::Result<()> {
    let body = r#"{"__type":"ConcurrentModificationException","Message":"Update table failed due to concurrent modifications."}"#;
    let response = format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/x-amz-json-1.1\r\nx-amzn-ErrorType: ConcurrentModificationException\r\nx-amzn-RequestId: TRAILMILLPROXY\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    client.write_all(response.as_bytes())
}

/// Writes an error answer with an XML body, as S3 does: `status` (code and
/// reason), `headers` (each ending in CRLF) besides the usual ones, and
/// `body` (empty for HEAD requests).
fn xml_error(
    client: &mut TcpStream,
    status: &str,
    headers: &str,
    body: &str,
) -> std::io::Result<()> {
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n{headers}x-amz-request-id: TRAILMILLPROXY\r\n\r\n{body}",
        body.len()
    );
    client.write_all(response.as_bytes())
}

/// The region of a SigV4 `Authorization` header's credential scope
/// (`Credential=KEY/DATE/REGION/SERVICE/aws4_request`).
fn signing_region(head: &str) -> Option<&str> {
    let auth = header(head, "authorization")?;
    let scope = auth.split("Credential=").nth(1)?;
    scope.split(['/', ',']).nth(2)
}

/// Answers as S3 does a request sent to another region than its bucket's.
fn permanent_redirect(client: &mut TcpStream, region: &str, is_head: bool) -> std::io::Result<()> {
    let body = if is_head {
        String::new()
    } else {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>PermanentRedirect</Code><Message>The bucket you are attempting to access must be addressed using the specified endpoint. Please send all future requests to this endpoint.</Message><Endpoint>s3.{region}.amazonaws.com</Endpoint><RequestId>TRAILMILLPROXY</RequestId></Error>"
        )
    };
    let headers = format!("x-amz-bucket-region: {region}\r\n");
    xml_error(client, "301 Moved Permanently", &headers, &body)
}

/// Reads one request: its head (up to the blank line) and its body
/// (`Content-Length` bytes). `None` at the end of the connection.
fn read_request(reader: &mut BufReader<TcpStream>) -> Option<(String, Vec<u8>)> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if line == "\r\n" || line == "\n" {
            if head.is_empty() {
                continue;
            }
            break;
        }
        head.push_str(&line);
    }
    let len = header(&head, "content-length")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some((head, body))
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Sends the request upstream on a fresh connection and reads the whole answer.
fn forward(upstream: &str, head: &str, body: &[u8]) -> Option<Vec<u8>> {
    let mut up = TcpStream::connect(upstream).ok()?;
    let _ = up.set_nodelay(true); // as for the client side: no Nagle stalls
    let mut out = String::new();
    for (i, line) in head.lines().enumerate() {
        if i > 0
            && line
                .split_once(':')
                .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case("connection"))
        {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    up.write_all(out.as_bytes()).ok()?;
    up.write_all(body).ok()?;
    let mut response = Vec::new();
    up.read_to_end(&mut response).ok()?;
    Some(response)
}

/// Splits an upstream response into a head for the client (its `Connection`
/// header replaced) and its body; says whether the connection can stay open
/// (the body is delimited by a length or chunks).
fn frame(response: &[u8], is_head: bool) -> (Vec<u8>, &[u8], bool) {
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(response.len(), |i| i + 4);
    let head = String::from_utf8_lossy(&response[..split]);
    let body = &response[split..];
    let delimited = is_head
        || header(&head, "content-length").is_some()
        || header(&head, "transfer-encoding").is_some_and(|v| v.contains("chunked"))
        || head.starts_with("HTTP/1.1 204")
        || head.starts_with("HTTP/1.1 304");
    let mut out = String::new();
    for (i, line) in head.trim_end().lines().enumerate() {
        if i > 0
            && line
                .split_once(':')
                .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case("connection"))
        {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str(if delimited {
        "Connection: keep-alive\r\n\r\n"
    } else {
        "Connection: close\r\n\r\n"
    });
    (out.into_bytes(), body, delimited)
}

/// Makes the close of `conn` a TCP reset (SO_LINGER 0), as a crashed server
/// would: callers return right after, dropping the connection's descriptors.
fn reset(conn: &TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: the descriptor is open for the call's duration, and the option
    // value is a valid `linger` of the size passed.
    unsafe {
        libc::setsockopt(
            conn.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}
