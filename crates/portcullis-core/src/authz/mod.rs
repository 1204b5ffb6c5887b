//! Authorization: who may pass once signed in, and which requests need no sign-in.
//!
//! Three sources of policy are combined with AND: the global `[authz]` lists, the
//! policy query parameters of one `/oauth2/auth` or `/oauth2/forward_auth` call (so
//! each Ingress can set its own on the one central instance), and the policy of the
//! upstream a proxied request is routed to. Within one list, any entry admits (OR).

use regex::Regex;

use crate::identity::Identity;

/// Global authorization. An open policy admits everyone who signs in.
#[derive(Debug, Clone, Default)]
pub struct AuthzSettings {
    /// Checked on every request, ANDed with per-request and per-upstream policy.
    pub policy: Policy,
    /// Requests that need no sign-in (method + decoded path).
    pub skip_auth: Vec<SkipRule>,
}

/// Why a signed-in user was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    /// Not in any allowed group.
    Group,
    /// Email missing, malformed, or not in the allowed list.
    Email,
    /// Email missing, malformed, or outside the allowed domains.
    EmailDomain,
}

impl Denial {
    /// A short reason for logs and the 403 page.
    pub fn reason(self) -> &'static str {
        match self {
            Denial::Group => "not a member of an allowed group",
            Denial::Email => "email address not allowed",
            Denial::EmailDomain => "email domain not allowed",
        }
    }
}

/// One set of conditions. An empty list imposes no condition; a list that is present
/// but empty (`allowed_groups=` in a query) is represented by `Some(vec![])`, and
/// admits nobody, so a typo never opens a dashboard to everyone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// Groups admitted (any of), compared exactly.
    pub groups: Option<Vec<String>>,
    /// Email addresses admitted (any of), compared case-insensitively.
    pub emails: Option<Vec<String>>,
    /// Email domains admitted (any of), compared case-insensitively with the part
    /// after the only `@`.
    pub email_domains: Option<Vec<String>>,
}

/// A policy query parameter that could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// A parameter this endpoint does not know (a typo would otherwise admit everyone).
    #[error(
        "unknown policy parameter {0:?} (known: allowed_groups, allowed_emails, allowed_email_domains)"
    )]
    Unknown(String),
    /// The same parameter twice (which one was meant is unclear).
    #[error("policy parameter {0:?} given more than once; use one comma-separated list")]
    Repeated(String),
}

impl Policy {
    /// A policy from configured lists, where an empty list means "no condition".
    pub fn from_lists(groups: &[String], emails: &[String], email_domains: &[String]) -> Self {
        let some = |l: &[String]| (!l.is_empty()).then(|| l.to_vec());
        Self {
            groups: some(groups),
            emails: some(emails),
            email_domains: some(email_domains),
        }
    }

    /// Whether the policy imposes nothing.
    pub fn is_open(&self) -> bool {
        self.groups.is_none() && self.emails.is_none() && self.email_domains.is_none()
    }

    /// The policy in a query string: `allowed_groups`, `allowed_emails`,
    /// `allowed_email_domains`, each a comma-separated list. `None` without a query.
    /// `ignore` names parameters that belong to the endpoint itself.
    pub fn from_query(query: Option<&str>, ignore: &[&str]) -> Result<Self, PolicyError> {
        let mut policy = Self::default();
        let Some(query) = query.filter(|q| !q.is_empty()) else {
            return Ok(policy);
        };
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let slot = match key.as_ref() {
                "allowed_groups" => &mut policy.groups,
                "allowed_emails" => &mut policy.emails,
                "allowed_email_domains" => &mut policy.email_domains,
                k if ignore.contains(&k) => continue,
                other => return Err(PolicyError::Unknown(other.to_owned())),
            };
            if slot.is_some() {
                return Err(PolicyError::Repeated(key.into_owned()));
            }
            *slot = Some(
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .map(str::to_owned)
                    .collect(),
            );
        }
        Ok(policy)
    }

    /// Checks an identity: every present list must admit it.
    pub fn check(&self, identity: &Identity) -> Result<(), Denial> {
        if let Some(groups) = &self.groups
            && !identity.groups.iter().any(|g| groups.contains(g))
        {
            return Err(Denial::Group);
        }
        if let Some(emails) = &self.emails {
            let email = identity
                .email
                .as_deref()
                .filter(|e| email_domain(e).is_some())
                .ok_or(Denial::Email)?;
            if !emails.iter().any(|e| e.eq_ignore_ascii_case(email)) {
                return Err(Denial::Email);
            }
        }
        if let Some(domains) = &self.email_domains {
            let domain = identity
                .email
                .as_deref()
                .and_then(email_domain)
                .ok_or(Denial::EmailDomain)?;
            if !domains
                .iter()
                .any(|d| d.trim_start_matches('@').eq_ignore_ascii_case(domain))
            {
                return Err(Denial::EmailDomain);
            }
        }
        Ok(())
    }
}

/// Checks an identity against several policies (AND).
pub fn check_all(identity: &Identity, policies: &[&Policy]) -> Result<(), Denial> {
    policies.iter().try_for_each(|p| p.check(identity))
}

/// The domain of an email with exactly one `@` and non-empty parts (`a@evil.com@corp.com`
/// is refused, as oauth2-proxy learned).
pub fn email_domain(email: &str) -> Option<&str> {
    let (local, domain) = email.split_once('@')?;
    if local.is_empty() || domain.is_empty() || domain.contains('@') {
        return None;
    }
    Some(domain)
}

/// A request that needs no sign-in: an optional method and a regular expression that
/// must match the WHOLE percent-decoded path (never the query or fragment).
#[derive(Debug, Clone)]
pub struct SkipRule {
    method: Option<String>,
    path: Regex,
    source: String,
}

impl SkipRule {
    /// Parses `"[METHOD ]REGEX"`, e.g. `"GET /healthz"` or `"/static/.*"`. The regex is
    /// anchored at both ends.
    pub fn parse(rule: &str) -> Result<Self, String> {
        let rule = rule.trim();
        let (method, pattern) = match rule.split_once(' ') {
            Some((m, p)) if !m.is_empty() && m.bytes().all(|b| b.is_ascii_uppercase()) => {
                (Some(m.to_owned()), p.trim())
            }
            _ => (None, rule),
        };
        if !pattern.starts_with('/') && !pattern.starts_with("^/") {
            return Err(format!(
                "{rule:?}: the path pattern must start with '/' (optionally preceded by a method, as in \"GET /healthz\")"
            ));
        }
        let anchored = format!(
            "^(?:{})$",
            pattern.trim_start_matches('^').trim_end_matches('$')
        );
        let path = Regex::new(&anchored).map_err(|e| format!("{rule:?}: {e}"))?;
        Ok(Self {
            method,
            path,
            source: rule.to_owned(),
        })
    }

    /// The rule as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }
}

/// Whether a request with `method` and raw (still percent-encoded) `path` matches a
/// skip rule. The path is decoded first; a path that does not decode to clean UTF-8,
/// or that contains dot segments, backslashes, a `%` after decoding (double
/// encoding) or control characters, matches nothing: an upstream might normalise it
/// into a path the rule was never meant to open.
pub fn skip_auth(rules: &[SkipRule], method: &str, raw_path: &str) -> bool {
    if rules.is_empty() {
        return false;
    }
    let Some(path) = clean_decoded_path(raw_path) else {
        return false;
    };
    rules
        .iter()
        .any(|r| r.method.as_deref().is_none_or(|m| m == method) && r.path.is_match(&path))
}

/// The decoded path, or `None` when it is ambiguous (see [`skip_auth`]).
pub fn clean_decoded_path(raw_path: &str) -> Option<String> {
    // Only the path: anything from '?' or '#' on is not part of it.
    let raw = raw_path.split(['?', '#']).next().unwrap_or_default();
    if !raw.starts_with('/') {
        return None;
    }
    let decoded = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .ok()?
        .into_owned();
    if decoded.contains(['%', '\\', '?', '#'])
        || decoded.chars().any(char::is_control)
        || decoded.split('/').any(|seg| seg == "." || seg == "..")
    {
        return None;
    }
    Some(decoded)
}

#[cfg(test)]
mod tests;
