//! `[[clusters]]`: the API servers kubectl signs in to through Portcullis.

use portcullis_core::authz::Policy;
use portcullis_http::settings::ClusterSettings;

use super::report::Errors;
use crate::schema::Cluster;

/// Validates the clusters; returns those that are well formed.
pub(crate) fn clusters(e: &mut Errors, clusters: &[Cluster]) -> Vec<ClusterSettings> {
    let mut out = Vec::new();
    for (i, c) in clusters.iter().enumerate() {
        let key = format!("clusters[{i}]");
        let mut ok = true;
        let name_ok = !c.name.is_empty()
            && c.name.len() <= 63
            && c.name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !c.name.starts_with('-');
        if !name_ok {
            e.push(
                &format!("{key}.name"),
                format!("{:?} must be 1-63 characters of a-z, 0-9 and '-'", c.name),
            );
            ok = false;
        }
        if clusters[..i].iter().any(|p| p.name == c.name) {
            e.push(
                &format!("{key}.name"),
                format!("{:?} is listed twice", c.name),
            );
            ok = false;
        }
        // kubectl sends exec-plugin credentials over TLS only, and API servers serve it.
        let server = url::Url::parse(&c.server).ok().filter(|u| {
            u.scheme() == "https"
                && u.host_str().is_some()
                && u.username().is_empty()
                && u.password().is_none()
                && u.query().is_none()
        });
        if server.is_none() {
            e.push(
                &format!("{key}.server"),
                format!("{:?} is not an https://host[:port] URL", c.server),
            );
            ok = false;
        }
        let ca = certificate_authority(&c.certificate_authority);
        if let Err(m) = &ca {
            e.push(&format!("{key}.certificate_authority"), m.clone());
            ok = false;
        }
        if let (true, Some(server), Ok(ca)) = (ok, server, ca) {
            out.push(ClusterSettings {
                name: c.name.clone(),
                server: server.as_str().trim_end_matches('/').to_owned(),
                certificate_authority: ca,
                description: c.description.clone(),
                policy: Policy::from_lists(&c.allowed_groups, &[], &[]),
            });
        }
    }
    out
}

/// The CA's PEM, read from the file it names or given inline; `None` when unset (the
/// system's roots verify the API server).
fn certificate_authority(value: &str) -> Result<Option<String>, String> {
    if value.is_empty() {
        return Ok(None);
    }
    let pem = if value.trim_start().starts_with("-----BEGIN") {
        value.to_owned()
    } else {
        std::fs::read_to_string(value).map_err(|err| format!("cannot read {value:?}: {err}"))?
    };
    if !pem.contains("-----BEGIN CERTIFICATE-----") || !pem.contains("-----END CERTIFICATE-----") {
        return Err("holds no PEM certificate".into());
    }
    Ok(Some(pem))
}
