//! The binary's access-line writer ([`portcullis_http::access::AccessSink`]): each line
//! composed in a per-thread buffer, in exactly the text or JSON that
//! `tracing-subscriber` writes for the edge's event, and appended to the batched log
//! sink. No `fmt` machinery, no allocation per line once the buffer has grown.

use std::cell::RefCell;
use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use portcullis_http::access::{AccessLine, AccessSink};
use tracing_subscriber::fmt::MakeWriter as _;

use crate::log_sink::BatchedWriter;

/// Access lines into the batched writer, as text or JSON lines.
pub struct FastAccess {
    /// Where log lines go.
    pub writer: BatchedWriter,
    /// JSON lines (`log.format = "json"`), else text.
    pub json: bool,
}

thread_local! {
    static LINE: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(256));
}

impl AccessSink for FastAccess {
    fn write(&self, line: &AccessLine<'_>) {
        LINE.with(|buf| {
            let Ok(mut buf) = buf.try_borrow_mut() else {
                return;
            };
            buf.clear();
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            if self.json {
                json_line(&mut buf, now.as_secs(), now.subsec_micros(), line);
            } else {
                text_line(&mut buf, now.as_secs(), now.subsec_micros(), line);
            }
            let _ = self.writer.make_writer().write_all(&buf);
        });
    }
}

/// Appends `n` in decimal.
fn push_u64(out: &mut Vec<u8>, n: u64) {
    push_padded(out, n, 1);
}

/// Appends `n` in decimal, zero-padded to `width` (at most 20).
fn push_padded(out: &mut Vec<u8>, mut n: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let start = i.min(digits.len() - width.min(digits.len()));
    out.extend_from_slice(&digits[start..]);
}

thread_local! {
    /// The last second written, as `2026-12-04T01:04:12.`: lines of one second share
    /// it, so the date arithmetic runs once a second per thread, not once a line.
    static SECOND: std::cell::Cell<(u64, [u8; 20])> =
        const { std::cell::Cell::new((u64::MAX, [0; 20])) };
}

/// `2026-12-04T01:04:12.152799Z`, as tracing-subscriber's default timer writes it.
pub(crate) fn push_timestamp(out: &mut Vec<u8>, secs: u64, micros: u32) {
    let (cached, prefix) = SECOND.get();
    if cached == secs {
        out.extend_from_slice(&prefix);
    } else {
        let start = out.len();
        push_second(out, secs);
        // Four-digit years (all of them until 9999) make the 20 bytes cached.
        if let Ok(prefix) = <[u8; 20]>::try_from(&out[start..]) {
            SECOND.set((secs, prefix));
        }
    }
    push_padded(out, u64::from(micros), 6);
    out.push(b'Z');
}

/// `2026-12-04T01:04:12.`: the civil date and time `secs` after the epoch (UTC).
fn push_second(out: &mut Vec<u8>, secs: u64) {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    push_padded(out, y.max(0) as u64, 4);
    out.push(b'-');
    push_padded(out, m as u64, 2);
    out.push(b'-');
    push_padded(out, d as u64, 2);
    out.push(b'T');
    push_padded(out, rem / 3600, 2);
    out.push(b':');
    push_padded(out, (rem % 3600) / 60, 2);
    out.push(b':');
    push_padded(out, rem % 60, 2);
    out.push(b'.');
}

/// A string as Rust's `Debug` writes it for plain text (tracing's `field="value"`):
/// quotes, with `"` and `\` escaped and control characters as `\u{..}`.
pub(crate) fn push_debug_str(out: &mut Vec<u8>, s: &str) {
    if s.bytes()
        .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\' || b == b' ')
    {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        let _ = write!(out, "{s:?}");
    }
}

/// A JSON string.
pub(crate) fn push_json_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let mut b = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
        }
    }
    out.push(b'"');
}

/// `<ts>  INFO request{request_id="…" user="…"}: finished processing request method=GET path=/p route=/p status=200 latency_us=12`
fn text_line(out: &mut Vec<u8>, secs: u64, micros: u32, l: &AccessLine<'_>) {
    push_timestamp(out, secs, micros);
    out.extend_from_slice(if l.warn { b"  WARN " } else { b"  INFO " });
    out.extend_from_slice(b"request{request_id=");
    push_debug_str(out, l.request_id);
    if let Some(user) = l.user {
        out.extend_from_slice(b" user=");
        push_debug_str(out, user);
    }
    out.extend_from_slice(b"}: finished processing request method=");
    out.extend_from_slice(l.method.as_bytes());
    out.extend_from_slice(b" path=");
    out.extend_from_slice(l.path.as_bytes());
    out.extend_from_slice(b" route=");
    out.extend_from_slice(l.route.as_bytes());
    out.extend_from_slice(b" status=");
    push_u64(out, u64::from(l.status));
    out.extend_from_slice(b" latency_us=");
    push_u64(out, l.latency_us);
    out.push(b'\n');
}

/// The JSON line of `json().flatten_event(true).with_target(true)`.
fn json_line(out: &mut Vec<u8>, secs: u64, micros: u32, l: &AccessLine<'_>) {
    out.extend_from_slice(b"{\"timestamp\":\"");
    push_timestamp(out, secs, micros);
    out.extend_from_slice(if l.warn {
        b"\",\"level\":\"WARN\""
    } else {
        b"\",\"level\":\"INFO\""
    });
    out.extend_from_slice(b",\"message\":\"finished processing request\",\"method\":");
    push_json_str(out, l.method);
    out.extend_from_slice(b",\"path\":");
    push_json_str(out, l.path);
    out.extend_from_slice(b",\"route\":");
    push_json_str(out, l.route);
    out.extend_from_slice(b",\"status\":");
    push_u64(out, u64::from(l.status));
    out.extend_from_slice(b",\"latency_us\":");
    push_u64(out, l.latency_us);
    out.extend_from_slice(b",\"target\":\"portcullis::access\",\"span\":");
    out.extend_from_slice(b"{\"request_id\":");
    push_json_str(out, l.request_id);
    if let Some(user) = l.user {
        out.extend_from_slice(b",\"user\":");
        push_json_str(out, user);
    }
    // As tracing wrote the edge's access event: `span` is its parent (given), and
    // `spans` lists the entered ones (none: the line is written after the request).
    out.extend_from_slice(b",\"name\":\"request\"},\"spans\":[]}\n");
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A writer that keeps what it was given, for comparing log lines.
    #[derive(Clone, Default)]
    pub(crate) struct Capture(pub(crate) Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Capture {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// What tracing-subscriber writes for the edge's span and access event.
    fn through_tracing(json: bool, line: &AccessLine<'_>) -> String {
        let emit = || {
            let span = tracing::info_span!(
                "request",
                request_id = line.request_id,
                user = tracing::field::Empty,
            );
            if let Some(user) = line.user {
                span.record("user", user);
            }
            let (method, path, route) = (line.method, line.path, line.route);
            let (status, latency_us) = (line.status, line.latency_us);
            if line.warn {
                tracing::warn!(target: "portcullis::access", parent: &span, %method, %path, %route, status, latency_us, "finished processing request");
            } else {
                tracing::info!(target: "portcullis::access", parent: &span, %method, %path, %route, status, latency_us, "finished processing request");
            }
        };
        reference_lines(json, emit)
    }

    /// What `emit` logs through tracing-subscriber's own formatter, configured as the
    /// process configured it before it had its own (text without the target, or
    /// flattened JSON with it): the reference our lines are compared with.
    pub(crate) fn reference_lines(json: bool, emit: impl Fn()) -> String {
        let capture = Capture::default();
        let writer = capture.clone();
        let builder = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_target(false)
            .with_ansi(false)
            .with_writer(move || writer.clone());
        if json {
            let s = builder
                .json()
                .flatten_event(true)
                .with_target(true)
                .finish();
            tracing::subscriber::with_default(s, emit);
        } else {
            tracing::subscriber::with_default(builder.finish(), emit);
        }
        String::from_utf8(capture.0.lock().unwrap().clone()).unwrap()
    }

    fn ours(json: bool, line: &AccessLine<'_>) -> String {
        let mut out = Vec::new();
        if json {
            json_line(&mut out, 1_796_350_000, 42, line);
        } else {
            text_line(&mut out, 1_796_350_000, 42, line);
        }
        String::from_utf8(out).unwrap()
    }

    fn lines() -> Vec<AccessLine<'static>> {
        let base = AccessLine {
            warn: false,
            method: "GET",
            path: "/oauth2/auth",
            route: "/oauth2/auth",
            status: 202,
            latency_us: 123,
            request_id: "5747ccd1ef32-00000054",
            user: Some("alice@example.test"),
        };
        vec![
            base,
            AccessLine {
                user: None,
                status: 401,
                ..base
            },
            AccessLine {
                warn: true,
                status: 503,
                method: "POST",
                ..base
            },
            AccessLine {
                path: "/a\"b\\c",
                user: Some("o'brien \"x\""),
                request_id: "nginx-req-4711",
                ..base
            },
        ]
    }

    #[test]
    fn text_lines_are_what_tracing_writes() {
        for line in lines() {
            let theirs = through_tracing(false, &line);
            let mine = ours(false, &line);
            // The timestamps differ (27 characters); everything after is the same.
            assert_eq!(
                &mine[27..],
                &theirs[27..],
                "\nours:   {mine}theirs: {theirs}"
            );
            assert_eq!(&mine[..27], "2026-12-04T02:06:40.000042Z");
        }
    }

    #[test]
    fn json_lines_are_what_tracing_writes() {
        for line in lines() {
            let parse = |s: &str| {
                let mut v: serde_json::Value = serde_json::from_str(s.trim_end()).unwrap();
                v.as_object_mut().unwrap().remove("timestamp");
                v
            };
            let theirs = through_tracing(true, &line);
            let mine = ours(true, &line);
            assert_eq!(
                parse(&mine),
                parse(&theirs),
                "\nours:   {mine}theirs: {theirs}"
            );
            assert!(mine.ends_with('\n'));
        }
    }

    #[test]
    fn timestamps_are_right_whether_their_second_was_cached_or_not() {
        let stamp = |secs, micros| {
            let mut out = Vec::new();
            push_timestamp(&mut out, secs, micros);
            String::from_utf8(out).unwrap()
        };
        for (secs, micros, want) in [
            (0, 0, "1970-01-01T00:00:00.000000Z"),
            (0, 999_999, "1970-01-01T00:00:00.999999Z"),
            (951_782_400, 7, "2000-02-29T00:00:00.000007Z"),
            (1_709_164_799, 123_456, "2024-02-28T23:59:59.123456Z"),
            (1_709_164_800, 5, "2024-02-29T00:00:00.000005Z"),
            (1_709_164_800, 6, "2024-02-29T00:00:00.000006Z"),
            (1_796_350_000, 42, "2026-12-04T02:06:40.000042Z"),
            (253_402_300_799, 1, "9999-12-31T23:59:59.000001Z"),
        ] {
            assert_eq!(stamp(secs, micros), want);
            // Again, from the cached second.
            assert_eq!(stamp(secs, micros), want);
        }
    }
}
