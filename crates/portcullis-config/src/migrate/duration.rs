//! Go durations (`time.ParseDuration`: `168h`, `1h30m`, `1.5h`, `300ms`) read and
//! written in the humantime form Portcullis reads (`168h`, `90m`, `45s`).

use std::time::Duration;

/// Parses a Go duration; `None` when Go would refuse it too. Negative durations are
/// refused (no option of oauth2-proxy means anything by them).
pub(crate) fn parse_go(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s == "0" {
        return Some(Duration::ZERO);
    }
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(num_len);
        if num.is_empty() || num == "." {
            return None;
        }
        let n: f64 = num.parse().ok()?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += n * scale;
        rest = tail;
    }
    Duration::try_from_secs_f64(total).ok()
}

/// The humantime form: whole hours, minutes or seconds when exact, else milliseconds.
pub(crate) fn human(d: Duration) -> String {
    let ms = d.as_millis();
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let s = d.as_secs();
    match s {
        0 => "0s".to_owned(),
        s if s.is_multiple_of(3600) => format!("{}h", s / 3600),
        s if s.is_multiple_of(60) => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        let cases = [
            ("168h", Some(168 * 3600)),
            ("1h30m", Some(5400)),
            ("1.5h", Some(5400)),
            ("15m", Some(900)),
            ("0", Some(0)),
            ("0s", Some(0)),
            ("", None),
            ("7d", None),
            ("h", None),
            ("-1h", None),
            ("12", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_go(text).map(|d| d.as_secs()), want, "{text:?}");
        }
        assert_eq!(parse_go("300ms"), Some(Duration::from_millis(300)));
        assert_eq!(human(Duration::from_secs(168 * 3600)), "168h");
        assert_eq!(human(Duration::from_secs(5400)), "90m");
        assert_eq!(human(Duration::from_secs(61)), "61s");
        assert_eq!(human(Duration::from_millis(1500)), "1500ms");
    }
}
