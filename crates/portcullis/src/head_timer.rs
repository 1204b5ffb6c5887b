//! The request-head timeouts of a connection, with one timer per connection, not one
//! per request head.
//!
//! hyper starts its HTTP/1 header-read timer each time it waits for a request head (so
//! it also bounds idle keep-alive connections), and with hyper-util's `TokioTimer`
//! every head registers a `tokio` sleep in the runtime's timer wheel and removes it
//! again when the head is in: two locked wheel operations per request, a few tenths of
//! a microsecond on the hot path (README, "Performance"). Here hyper's sleeps are only
//! deadlines ([`HeadSleep`]): polling one reads the clock and records the earliest
//! deadline the connection waits for. One `tokio` sleep per connection
//! ([`Watchdog`], around the connection's future) sleeps until that deadline and is
//! moved only when an earlier one is asked for, or when it fires while a later one is
//! still pending: once per timeout period at most, not once per request. A head not
//! complete by its deadline still ends the connection at that deadline, as before.
//!
//! The watchdog also bounds what hyper does not: before hyper's HTTP/1 or HTTP/2
//! connection exists, hyper-util's auto builder reads the first bytes to tell the
//! two apart, with no timeout, so a client that connects and sends nothing (or part of
//! the HTTP/2 preface) held its connection for ever. Now a connection that has not
//! brought its first request to the service ([`HeadTimer::served`]) within the
//! timeout is closed.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// No sleep of the connection is waiting.
const NONE: u64 = u64::MAX;

/// What a connection's serving ends with.
pub type Served = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// What a connection's sleeps, its service and its watchdog share.
#[derive(Debug)]
struct Shared {
    /// Deadlines are nanoseconds after this (the connection's start).
    base: Instant,
    /// The earliest deadline a pending sleep has asked for since the watchdog last
    /// fired, or [`NONE`].
    earliest: AtomicU64,
    /// Whether a request has reached the service.
    served: AtomicBool,
}

impl Shared {
    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.base).as_nanos()).unwrap_or(NONE - 1)
    }
}

/// The connection's [`hyper::rt::Timer`]: each connection gets its own, and runs its
/// future in the [`Watchdog`] that wakes it ([`HeadTimer::watch`]).
#[derive(Debug, Clone)]
pub struct HeadTimer(Arc<Shared>);

/// A deadline of one connection: ready once the clock has passed it.
#[derive(Debug)]
pub struct HeadSleep {
    shared: Arc<Shared>,
    deadline: Instant,
}

/// Drives a connection's future, wakes it when the earliest deadline of its
/// [`HeadTimer`]'s sleeps has passed, and ends it when no request came in time.
pub struct Watchdog<F> {
    inner: Pin<Box<F>>,
    shared: Arc<Shared>,
    sleep: Pin<Box<tokio::time::Sleep>>,
    /// Whether `sleep` is set to a deadline not yet handled.
    armed: bool,
    /// Still waiting for the first request (`sleep` is then set to its deadline).
    first: bool,
}

impl HeadTimer {
    /// A timer for one new connection.
    pub fn new() -> Self {
        HeadTimer(Arc::new(Shared {
            base: Instant::now(),
            earliest: AtomicU64::new(NONE),
            served: AtomicBool::new(false),
        }))
    }

    /// Notes that a request reached the service (call it from the service).
    pub fn served(&self) {
        if !self.0.served.load(Ordering::Relaxed) {
            self.0.served.store(true, Ordering::Relaxed);
        }
    }

    /// `connection` (served with this timer), woken at this timer's deadlines and
    /// ended with a `TimedOut` error if no request reaches the service within
    /// `first_request` from now.
    pub fn watch<F: Future<Output = Served>>(
        &self,
        connection: F,
        first_request: Duration,
    ) -> Watchdog<F> {
        Watchdog {
            inner: Box::pin(connection),
            shared: Arc::clone(&self.0),
            sleep: Box::pin(tokio::time::sleep(first_request)),
            armed: true,
            first: true,
        }
    }
}

impl Default for HeadTimer {
    fn default() -> Self {
        Self::new()
    }
}

impl hyper::rt::Timer for HeadTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep_until(Instant::now() + duration)
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(HeadSleep {
            shared: Arc::clone(&self.0),
            deadline,
        })
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn hyper::rt::Sleep>>, new_deadline: Instant) {
        match sleep.as_mut().downcast_mut_pin::<HeadSleep>() {
            Some(mine) => mine.get_mut().deadline = new_deadline,
            None => *sleep = self.sleep_until(new_deadline),
        }
    }
}

impl Future for HeadSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        // No waker kept: the connection's task is the watchdog's, which wakes it.
        if Instant::now() >= self.deadline {
            return Poll::Ready(());
        }
        let at = self.shared.nanos(self.deadline);
        self.shared.earliest.fetch_min(at, Ordering::Relaxed);
        Poll::Pending
    }
}

impl hyper::rt::Sleep for HeadSleep {}

impl<F: Future<Output = Served>> Future for Watchdog<F> {
    type Output = Served;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Served> {
        let this = &mut *self;
        loop {
            if let Poll::Ready(out) = this.inner.as_mut().poll(cx) {
                return Poll::Ready(out);
            }
            if this.first && this.shared.served.load(Ordering::Relaxed) {
                this.first = false;
            }
            let earliest = this.shared.earliest.load(Ordering::Relaxed);
            if earliest != NONE {
                let want = tokio::time::Instant::from_std(
                    this.shared.base + Duration::from_nanos(earliest),
                );
                if !this.armed || this.sleep.deadline() > want {
                    this.sleep.as_mut().reset(want);
                    this.armed = true;
                }
            } else if !this.armed {
                return Poll::Pending;
            }
            if this.sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            this.armed = false;
            if this.first {
                // Head deadlines all come after the first request's (they start
                // later, with the same timeout): this was it.
                return Poll::Ready(Err(Box::new(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "no request within the header-read timeout",
                ))));
            }
            // The earliest deadline has passed: its sleep is ready now, and the
            // connection's pending sleeps record their deadlines again when polled.
            this.shared.earliest.store(NONE, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::convert::Infallible;

    use hyper_util::rt::{TokioExecutor, TokioIo};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    const TIMEOUT: Duration = Duration::from_millis(300);

    /// A server of 204s, each connection reporting when it ended. `per_request`:
    /// hyper's HTTP/1 builder with hyper-util's `TokioTimer` (the timer per head, for
    /// comparison); else the binary's way, the auto builder with a [`HeadTimer`].
    async fn server(
        per_request: bool,
    ) -> (std::net::SocketAddr, tokio::sync::mpsc::Receiver<Instant>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (ended, rx) = tokio::sync::mpsc::channel(16);
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let ended = ended.clone();
                tokio::spawn(async move {
                    let timer = HeadTimer::new();
                    let marks = timer.clone();
                    let service = hyper::service::service_fn(move |_| {
                        marks.served();
                        async {
                            Ok::<_, Infallible>(
                                http::Response::builder()
                                    .status(204)
                                    .body(String::new())
                                    .unwrap(),
                            )
                        }
                    });
                    let io = TokioIo::new(stream);
                    if per_request {
                        let mut builder = hyper::server::conn::http1::Builder::new();
                        builder.header_read_timeout(TIMEOUT);
                        builder.timer(hyper_util::rt::TokioTimer::new());
                        let _ = builder.serve_connection(io, service).await;
                    } else {
                        let mut builder =
                            hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                        builder
                            .http1()
                            .header_read_timeout(TIMEOUT)
                            .timer(timer.clone());
                        let conn = builder.serve_connection_with_upgrades(io, service);
                        let _ = timer.watch(conn, TIMEOUT).await;
                    }
                    let _ = ended.send(Instant::now()).await;
                });
            }
        });
        (addr, rx)
    }

    async fn request(stream: &mut TcpStream) -> String {
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 256];
        let n = stream.read(&mut buf).await.unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    /// Whether the server closed `stream` (EOF or reset) within `within`.
    async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
        let mut buf = [0u8; 64];
        matches!(
            tokio::time::timeout(within, stream.read(&mut buf)).await,
            Ok(Ok(0) | Err(_))
        )
    }

    /// How long after `since` the server ended the connection, which must be closed.
    async fn ended_after(
        stream: &mut TcpStream,
        ended: &mut tokio::sync::mpsc::Receiver<Instant>,
        since: Instant,
    ) -> Duration {
        assert!(closed_within(stream, TIMEOUT * 4).await, "still open");
        ended.recv().await.unwrap() - since
    }

    #[tokio::test]
    async fn a_head_sent_too_slowly_ends_the_connection_at_its_deadline() {
        for per_request in [false, true] {
            let (addr, mut ended) = server(per_request).await;
            let mut stream = TcpStream::connect(addr).await.unwrap();
            let start = Instant::now();
            stream.write_all(b"GET / HTTP/1.1\r\nHo").await.unwrap();
            let took = ended_after(&mut stream, &mut ended, start).await;
            assert!(took >= TIMEOUT - Duration::from_millis(20), "{took:?}");
        }
    }

    #[tokio::test]
    async fn an_idle_keep_alive_connection_ends_after_the_timeout() {
        let (addr, mut ended) = server(false).await;
        let mut stream = TcpStream::connect(addr).await.unwrap();
        assert!(request(&mut stream).await.starts_with("HTTP/1.1 204"));
        let idle = Instant::now();
        let took = ended_after(&mut stream, &mut ended, idle).await;
        assert!(took >= TIMEOUT - Duration::from_millis(20), "{took:?}");
    }

    /// Each head has its own deadline: a busy connection outlives many timeouts, and a
    /// head that stalls after them still ends it on time.
    #[tokio::test]
    async fn every_head_gets_the_full_timeout_and_a_late_stall_is_still_caught() {
        let (addr, mut ended) = server(false).await;
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let busy_until = Instant::now() + TIMEOUT * 3;
        let mut answered = 0;
        while Instant::now() < busy_until {
            assert!(request(&mut stream).await.starts_with("HTTP/1.1 204"));
            answered += 1;
            tokio::time::sleep(TIMEOUT / 3).await;
        }
        assert!(answered >= 9, "{answered}");
        stream.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        let stalled = Instant::now();
        let took = ended_after(&mut stream, &mut ended, stalled).await;
        assert!(took >= TIMEOUT / 2, "{took:?}");
        assert!(took < TIMEOUT * 3, "{took:?}");
    }

    /// Before hyper's connection exists (the auto builder telling HTTP/1 from HTTP/2
    /// by the first bytes) only the watchdog's first deadline bounds a client.
    #[tokio::test]
    async fn a_client_that_sends_nothing_or_part_of_the_http2_preface_is_closed() {
        let (addr, mut ended) = server(false).await;
        for opening in [&b""[..], b"PRI * HTTP/2.0\r\n"] {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            let start = Instant::now();
            stream.write_all(opening).await.unwrap();
            let took = ended_after(&mut stream, &mut ended, start).await;
            assert!(took >= TIMEOUT - Duration::from_millis(20), "{took:?}");
        }
    }

    /// An HTTP/2 connection with requests is not the watchdog's to close.
    #[tokio::test]
    async fn an_http2_connection_that_made_a_request_outlives_the_first_deadline() {
        let (addr, _ended) = server(false).await;
        let stream = TcpStream::connect(addr).await.unwrap();
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .unwrap();
        let driver = tokio::spawn(conn);
        let get = || {
            http::Request::builder()
                .uri(format!("http://{addr}/"))
                .body(String::new())
                .unwrap()
        };
        assert_eq!(sender.send_request(get()).await.unwrap().status(), 204);
        tokio::time::sleep(TIMEOUT * 2).await;
        assert!(!driver.is_finished(), "the server ended the connection");
        assert_eq!(sender.send_request(get()).await.unwrap().status(), 204);
    }

    #[test]
    fn a_deadline_in_the_past_is_ready_and_a_future_one_is_recorded() {
        let timer = HeadTimer::new();
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut past = hyper::rt::Timer::sleep_until(&timer, Instant::now());
        assert!(past.as_mut().poll(&mut cx).is_ready());
        let later = Instant::now() + Duration::from_secs(5);
        let mut future = hyper::rt::Timer::sleep_until(&timer, later);
        assert!(future.as_mut().poll(&mut cx).is_pending());
        assert_eq!(
            timer.0.earliest.load(Ordering::Relaxed),
            timer.0.nanos(later)
        );
        hyper::rt::Timer::reset(&timer, &mut future, Instant::now());
        assert!(future.as_mut().poll(&mut cx).is_ready());
    }
}
