//! The process's log lines: tracing-subscriber's own text and JSON layouts, with the
//! current request's id and user taken from its [`RequestContext`] (a task-local the
//! edge sets around each request) and written as the span `request{request_id=…
//! user=…}` that the edge used to open for every request.
//!
//! Why: a tracing span per request cost about 0.9 µs of a 7.4 µs `/ping` (the
//! registry's slot, its fields formatted into a `String` at creation and again when
//! the user was recorded, an enter and exit per poll), paid on every request to
//! label the few lines that most requests never write. Reading the task-local costs
//! nothing until a line is written. Lines look as before; a unit test compares them
//! with tracing-subscriber's own for a request span, in both formats.

use std::fmt;
use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use portcullis_core::audit;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

use crate::access_sink::{push_debug_str, push_json_str, push_timestamp};

/// The event formatter of [`crate::init_logging`].
#[derive(Debug, Clone, Copy)]
pub struct LineFormat {
    /// JSON lines (`json().flatten_event(true).with_target(true)`'s layout), else
    /// text without the target (`with_target(false)`).
    pub json: bool,
}

/// The request a line is written in: its id and, once known, its user.
#[derive(Clone, Copy)]
struct InRequest<'a> {
    id: &'a str,
    user: Option<&'a str>,
}

impl<S, N> FormatEvent<S, N> for LineFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let in_request = audit::current(|c| {
            c.with_user(|user| {
                let request = InRequest {
                    id: &c.request_id,
                    user,
                };
                self.line(ctx, writer.by_ref(), event, Some(request))
            })
        });
        match in_request {
            Some(done) => done,
            None => self.line(ctx, writer, event, None),
        }
    }
}

impl LineFormat {
    fn line<S, N>(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
        request: Option<InRequest<'_>>,
    ) -> fmt::Result
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
        N: for<'a> FormatFields<'a> + 'static,
    {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let mut out = Vec::with_capacity(256);
        let level = *event.metadata().level();
        // The spans the event is in (none of ours; a library's, or a test's), root first.
        let spans: Vec<(&'static str, String)> = ctx
            .event_scope()
            .map(|scope| {
                scope
                    .from_root()
                    .map(|span| {
                        let fields = span
                            .extensions()
                            .get::<FormattedFields<N>>()
                            .map(|f| f.fields.clone())
                            .unwrap_or_default();
                        (span.metadata().name(), fields)
                    })
                    .collect()
            })
            .unwrap_or_default();
        if self.json {
            json_line(&mut out, now, level, event, request, &spans);
            return writer.write_str(&String::from_utf8_lossy(&out));
        }
        let ansi = writer.has_ansi_escapes();
        if ansi {
            out.extend_from_slice(b"\x1b[2m");
        }
        push_timestamp(&mut out, now.as_secs(), now.subsec_micros());
        if ansi {
            out.extend_from_slice(b"\x1b[0m");
        }
        out.push(b' ');
        let (name, colour) = match level {
            Level::TRACE => ("TRACE", "35"),
            Level::DEBUG => ("DEBUG", "34"),
            Level::INFO => (" INFO", "32"),
            Level::WARN => (" WARN", "33"),
            Level::ERROR => ("ERROR", "31"),
        };
        if ansi {
            let _ = write!(out, "\x1b[{colour}m{name}\x1b[0m ");
        } else {
            out.extend_from_slice(name.as_bytes());
            out.push(b' ');
        }
        if let Some(r) = request {
            out.extend_from_slice(b"request{request_id=");
            push_debug_str(&mut out, r.id);
            if let Some(user) = r.user {
                out.extend_from_slice(b" user=");
                push_debug_str(&mut out, user);
            }
            out.extend_from_slice(b"}:");
        }
        for (name, fields) in &spans {
            out.extend_from_slice(name.as_bytes());
            if !fields.is_empty() {
                out.push(b'{');
                out.extend_from_slice(fields.as_bytes());
                out.push(b'}');
            }
            out.push(b':');
        }
        if request.is_some() || !spans.is_empty() {
            out.push(b' ');
        }
        writer.write_str(&String::from_utf8_lossy(&out))?;
        ctx.format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// `{"timestamp":…,"level":…,<fields>,"target":…[,"span":{…},"spans":[…]]}`.
fn json_line(
    out: &mut Vec<u8>,
    now: std::time::Duration,
    level: Level,
    event: &Event<'_>,
    request: Option<InRequest<'_>>,
    spans: &[(&'static str, String)],
) {
    out.extend_from_slice(b"{\"timestamp\":\"");
    push_timestamp(out, now.as_secs(), now.subsec_micros());
    out.extend_from_slice(b"\",\"level\":");
    push_json_str(out, level.as_str());
    event.record(&mut JsonFields { out: &mut *out });
    out.extend_from_slice(b",\"target\":");
    push_json_str(out, event.metadata().target());
    // Each span as tracing writes it: its fields' object, with its name added.
    let mut objects: Vec<Vec<u8>> = Vec::with_capacity(spans.len() + 1);
    if let Some(r) = request {
        let mut o = b"{\"request_id\":".to_vec();
        push_json_str(&mut o, r.id);
        if let Some(user) = r.user {
            o.extend_from_slice(b",\"user\":");
            push_json_str(&mut o, user);
        }
        o.extend_from_slice(b",\"name\":\"request\"}");
        objects.push(o);
    }
    for (name, fields) in spans {
        let body = fields.trim();
        let body = body
            .strip_prefix('{')
            .and_then(|b| b.strip_suffix('}'))
            .unwrap_or("");
        let mut o = Vec::with_capacity(body.len() + name.len() + 12);
        o.push(b'{');
        if !body.trim().is_empty() {
            o.extend_from_slice(body.as_bytes());
            o.push(b',');
        }
        o.extend_from_slice(b"\"name\":");
        push_json_str(&mut o, name);
        o.push(b'}');
        objects.push(o);
    }
    if let Some(current) = objects.last() {
        out.extend_from_slice(b",\"span\":");
        out.extend_from_slice(current);
        out.extend_from_slice(b",\"spans\":[");
        for (i, o) in objects.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(o);
        }
        out.push(b']');
    }
    out.extend_from_slice(b"}\n");
}

/// An event's fields as `,"name":value` pairs, in the order they were given (as
/// tracing's flattened JSON events have them).
struct JsonFields<'a> {
    out: &'a mut Vec<u8>,
}

impl JsonFields<'_> {
    fn key(&mut self, field: &Field) {
        self.out.push(b',');
        push_json_str(self.out, field.name());
        self.out.push(b':');
    }

    /// A number or literal, as JSON writes it.
    fn raw(&mut self, field: &Field, value: impl fmt::Display) {
        self.key(field);
        let _ = write!(self.out, "{value}");
    }
}

impl Visit for JsonFields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.key(field);
        push_json_str(self.out, &format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.key(field);
        push_json_str(self.out, value);
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.key(field);
        push_json_str(self.out, &value.to_string());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.raw(field, value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.raw(field, value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.raw(field, value);
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        self.raw(field, value);
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        self.raw(field, value);
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        // serde_json's own float text (`1.0`, not `1`); NaN and infinities are `null`.
        match serde_json::Number::from_f64(value) {
            Some(n) => self.raw(field, n),
            None => self.raw(field, "null"),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::Arc;

    use portcullis_core::audit::RequestContext;
    use portcullis_core::identity::Identity;
    use portcullis_core::prepared::Prepared;
    use portcullis_session::SessionState;
    use tracing_subscriber::fmt::format::JsonFields as TracingJsonFields;

    use super::*;
    use crate::access_sink::tests::{Capture, reference_lines};

    impl Capture {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    fn session_of(user: &str) -> Arc<Prepared> {
        Arc::new(Prepared {
            state: SessionState {
                id: "s".into(),
                id_token: "t".into(),
                id_token_expires_at: 0,
                refresh_token: None,
                created_at: 0,
                expires_at: 0,
                grant: None,
            },
            identity: Identity {
                user: user.into(),
                email: None,
                groups: vec![],
                preferred_username: None,
            },
            headers: http::HeaderMap::new(),
            token_lifetime: None,
        })
    }

    /// Lines of every kind of field, in a nested library span and out of it.
    fn events() {
        tracing::warn!(
            status = 502u64,
            ok = true,
            delta = -3i64,
            ratio = 1.5f64,
            whole = 2.0f64,
            name = "x \"q\"",
            list = ?vec![1, 2],
            shown = %"d",
            "provider {} failed",
            "p"
        );
        tracing::info!(target: "portcullis::audit", event = "sign_in", "audit");
        let inner = tracing::info_span!("inner", k = 1u64, s = "v");
        inner.in_scope(|| tracing::error!("nested"));
        let bare = tracing::info_span!("bare");
        bare.in_scope(|| tracing::info!("in a span without fields"));
    }

    /// The same events through tracing-subscriber's own formatter, in a request span
    /// as the edge opened it (`user` recorded when known), or in no span.
    fn through_tracing(json: bool, request: Option<(&str, Option<&str>)>) -> String {
        reference_lines(json, || match request {
            Some((id, user)) => {
                let span =
                    tracing::info_span!("request", request_id = id, user = tracing::field::Empty);
                if let Some(user) = user {
                    span.record("user", user);
                }
                span.in_scope(events);
            }
            None => events(),
        })
    }

    fn ours(json: bool, request: Option<(&str, Option<&str>)>) -> String {
        let capture = Capture::default();
        let writer = capture.clone();
        let builder = tracing_subscriber::fmt()
            .with_max_level(Level::INFO)
            .with_ansi(false)
            .with_writer(move || writer.clone());
        let emit = || match request {
            Some((id, user)) => {
                let context = RequestContext::new(Arc::from(id), None);
                if let Some(user) = user {
                    *context.session.borrow_mut() = Some(session_of(user));
                }
                audit::sync_scope(context, events);
            }
            None => events(),
        };
        if json {
            let s = builder
                .fmt_fields(TracingJsonFields::new())
                .event_format(LineFormat { json: true })
                .finish();
            tracing::subscriber::with_default(s, emit);
        } else {
            let s = builder.event_format(LineFormat { json: false }).finish();
            tracing::subscriber::with_default(s, emit);
        }
        capture.text()
    }

    /// Lines without their timestamps (27 characters, at a fixed place).
    fn untimed(text: &str, json: bool) -> Vec<String> {
        let at = if json { "{\"timestamp\":\"".len() } else { 0 };
        text.lines()
            .map(|l| format!("{}{}", &l[..at], &l[at + 27..]))
            .collect()
    }

    #[test]
    fn lines_are_tracing_subscribers_own_with_the_request_as_its_span() {
        for json in [false, true] {
            for request in [
                Some(("req-1", Some("alice@example.test"))),
                Some(("req-2", None)),
                None,
            ] {
                let want = untimed(&through_tracing(json, request), json);
                let got = untimed(&ours(json, request), json);
                assert_eq!(want.len(), 4, "{want:#?}");
                assert_eq!(got, want, "json: {json}, request: {request:?}");
            }
        }
    }
}
