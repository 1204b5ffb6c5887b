//! Global authorization: deny by default when a list is configured.

use crate::identity::Identity;
use crate::settings::AuthzSettings;

/// Why a signed-in user was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    /// Not in any allowed group.
    Group,
    /// Email missing, malformed, or outside the allowed domains.
    EmailDomain,
}

impl Denial {
    /// A short reason for logs and the 403 page.
    pub fn reason(self) -> &'static str {
        match self {
            Denial::Group => "not a member of an allowed group",
            Denial::EmailDomain => "email domain not allowed",
        }
    }
}

/// Checks the identity against both lists (AND across lists, OR within one).
pub fn check(identity: &Identity, authz: &AuthzSettings) -> Result<(), Denial> {
    if !authz.allowed_groups.is_empty()
        && !identity
            .groups
            .iter()
            .any(|g| authz.allowed_groups.contains(g))
    {
        return Err(Denial::Group);
    }
    if !authz.allowed_email_domains.is_empty() {
        let domain = identity
            .email
            .as_deref()
            .and_then(email_domain)
            .ok_or(Denial::EmailDomain)?;
        if !authz
            .allowed_email_domains
            .iter()
            .any(|d| d.trim_start_matches('@').eq_ignore_ascii_case(domain))
        {
            return Err(Denial::EmailDomain);
        }
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn id(email: &str, groups: &[&str]) -> Identity {
        Identity {
            user: email.into(),
            email: Some(email.into()),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            preferred_username: None,
        }
    }

    #[test]
    fn policy_table() {
        let open = AuthzSettings::default();
        let groups = AuthzSettings {
            allowed_groups: vec!["admins".into(), "devs".into()],
            allowed_email_domains: vec![],
        };
        let domains = AuthzSettings {
            allowed_groups: vec![],
            allowed_email_domains: vec!["corp.com".into()],
        };
        let both = AuthzSettings {
            allowed_groups: vec!["devs".into()],
            allowed_email_domains: vec!["corp.com".into()],
        };
        assert_eq!(check(&id("a@x.com", &[]), &open), Ok(()));
        assert_eq!(check(&id("a@x.com", &["devs"]), &groups), Ok(()));
        assert_eq!(
            check(&id("a@x.com", &["other"]), &groups),
            Err(Denial::Group)
        );
        assert_eq!(check(&id("a@x.com", &[]), &groups), Err(Denial::Group));
        assert_eq!(check(&id("a@CORP.com", &[]), &domains), Ok(()));
        assert_eq!(
            check(&id("a@evil.com@corp.com", &[]), &domains),
            Err(Denial::EmailDomain)
        );
        assert_eq!(
            check(&id("a@corp.com.evil.com", &[]), &domains),
            Err(Denial::EmailDomain)
        );
        assert_eq!(
            check(&id("@corp.com", &[]), &domains),
            Err(Denial::EmailDomain)
        );
        assert_eq!(check(&id("a@corp.com", &["x"]), &both), Err(Denial::Group));
        assert_eq!(
            check(&id("a@x.com", &["devs"]), &both),
            Err(Denial::EmailDomain)
        );
        assert_eq!(check(&id("a@corp.com", &["devs"]), &both), Ok(()));
    }
}
