//! Writing our entries into a kubeconfig: for each cluster a `cluster` (server, CA)
//! and a `context`, and one `user` whose `exec` runs our credential plugin. Every
//! other entry and key stays as it was, in its order.

use serde_yaml::{Mapping, Value};

use crate::server::Cluster;

/// What to write.
pub struct Entries<'a> {
    /// The Portcullis server the plugin asks.
    pub server: &'a str,
    /// The clusters to configure.
    pub clusters: &'a [Cluster],
    /// Prepended to cluster and context names.
    pub context_prefix: &'a str,
    /// The plugin's command (this binary).
    pub command: &'a str,
    /// Sets `current-context` to this context when given.
    pub current_context: Option<&'a str>,
}

/// The user entry's name for a server (`portcullis@auth.example.com`).
pub fn user_name(server: &str) -> String {
    let host = url::Url::parse(server)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| server.to_owned());
    format!("portcullis@{host}")
}

fn key(k: &str) -> Value {
    Value::String(k.to_owned())
}

/// Replaces the entry named `name` in the list `list` of `doc`, or appends it.
fn upsert(doc: &mut Mapping, list: &str, name: &str, entry: Value) -> Result<(), String> {
    let seq = doc
        .entry(key(list))
        .or_insert_with(|| Value::Sequence(Vec::new()));
    if seq.is_null() {
        *seq = Value::Sequence(Vec::new());
    }
    let Value::Sequence(items) = seq else {
        return Err(format!("kubeconfig: `{list}` is not a list"));
    };
    match items
        .iter_mut()
        .find(|i| i.get("name").and_then(Value::as_str) == Some(name))
    {
        Some(existing) => *existing = entry,
        None => items.push(entry),
    }
    Ok(())
}

/// `existing` (a kubeconfig, or `None`) with our entries merged in.
pub fn merge(existing: Option<&str>, entries: &Entries<'_>) -> Result<String, String> {
    let mut doc = match existing.map(str::trim) {
        None | Some("") => Mapping::new(),
        Some(text) => match serde_yaml::from_str::<Value>(text) {
            Ok(Value::Mapping(m)) => m,
            Ok(Value::Null) => Mapping::new(),
            Ok(_) => return Err("kubeconfig is not a mapping".into()),
            Err(e) => return Err(format!("kubeconfig does not parse: {e}")),
        },
    };
    doc.entry(key("apiVersion")).or_insert_with(|| key("v1"));
    doc.entry(key("kind")).or_insert_with(|| key("Config"));
    let user = user_name(entries.server);
    for c in entries.clusters {
        let name = format!("{}{}", entries.context_prefix, c.name);
        let mut cluster = Mapping::new();
        cluster.insert(key("server"), key(&c.server));
        if let Some(ca) = &c.certificate_authority_data {
            cluster.insert(key("certificate-authority-data"), key(ca));
        }
        let mut entry = Mapping::new();
        entry.insert(key("name"), key(&name));
        entry.insert(key("cluster"), Value::Mapping(cluster));
        upsert(&mut doc, "clusters", &name, Value::Mapping(entry))?;

        let mut context = Mapping::new();
        context.insert(key("cluster"), key(&name));
        context.insert(key("user"), key(&user));
        let mut entry = Mapping::new();
        entry.insert(key("name"), key(&name));
        entry.insert(key("context"), Value::Mapping(context));
        upsert(&mut doc, "contexts", &name, Value::Mapping(entry))?;
    }
    let exec: Value = serde_yaml::to_value(serde_json::json!({
        "apiVersion": "client.authentication.k8s.io/v1",
        "command": entries.command,
        "args": ["kubectl-credential", "--server", entries.server],
        "interactiveMode": "IfAvailable",
        "provideClusterInfo": false,
    }))
    .map_err(|e| e.to_string())?;
    let mut u = Mapping::new();
    u.insert(key("exec"), exec);
    let mut entry = Mapping::new();
    entry.insert(key("name"), key(&user));
    entry.insert(key("user"), Value::Mapping(u));
    upsert(&mut doc, "users", &user, Value::Mapping(entry))?;
    if let Some(current) = entries.current_context {
        doc.insert(key("current-context"), key(current));
    }
    serde_yaml::to_string(&Value::Mapping(doc)).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const THEIRS: &str = "apiVersion: v1
kind: Config
preferences: {}
current-context: kind-dev
clusters:
- name: kind-dev
  cluster:
    server: https://127.0.0.1:6443
- name: c1
  cluster:
    server: https://old.example
contexts:
- name: kind-dev
  context:
    cluster: kind-dev
    user: kind-dev
users:
- name: kind-dev
  user:
    client-certificate-data: Y2VydA==
";

    fn clusters() -> Vec<Cluster> {
        ["c1", "c2"]
            .iter()
            .map(|n| Cluster {
                name: (*n).into(),
                server: format!("https://{n}.example.com:6443"),
                description: String::new(),
                certificate_authority_data: Some("Q0E=".into()),
            })
            .collect()
    }

    #[test]
    fn merges_keeping_everything_else() {
        let cs = clusters();
        let e = Entries {
            server: "https://auth.example.com",
            clusters: &cs,
            context_prefix: "",
            command: "/usr/local/bin/portcullis",
            current_context: None,
        };
        let out = merge(Some(THEIRS), &e).unwrap();
        let v: Value = serde_yaml::from_str(&out).unwrap();
        assert_eq!(v["current-context"], "kind-dev", "not changed unless asked");
        assert_eq!(v["users"][0]["user"]["client-certificate-data"], "Y2VydA==");
        let names: Vec<&str> = v["clusters"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            ["kind-dev", "c1", "c2"],
            "order kept, c1 replaced in place"
        );
        assert_eq!(
            v["clusters"][1]["cluster"]["server"],
            "https://c1.example.com:6443"
        );
        assert_eq!(
            v["contexts"][1]["context"]["user"],
            "portcullis@auth.example.com"
        );
        let exec = &v["users"][1]["user"]["exec"];
        assert_eq!(exec["apiVersion"], "client.authentication.k8s.io/v1");
        assert_eq!(exec["interactiveMode"], "IfAvailable");
        assert_eq!(exec["args"][2], "https://auth.example.com");
        assert!(out.find("preferences").unwrap() < out.find("clusters").unwrap());
        // Idempotent.
        assert_eq!(merge(Some(&out), &e).unwrap(), out);
        // A prefix and current-context when asked; an empty file is fine.
        let e = Entries {
            context_prefix: "acme-",
            current_context: Some("acme-c2"),
            ..e
        };
        let fresh: Value = serde_yaml::from_str(&merge(None, &e).unwrap()).unwrap();
        assert_eq!(fresh["current-context"], "acme-c2");
        assert_eq!(fresh["contexts"][1]["name"], "acme-c2");
        assert!(merge(Some("- a list"), &e).is_err());
        assert!(merge(Some("clusters: 3"), &e).is_err());
    }
}
