//! `[store]` and `[node]`: where entries are kept, and this node's name and lease in a cluster.

use super::*;

impl Validator<'_> {
    /// `store.url`: a PostgreSQL connection string (URL or `host=… dbname=…`), its `${NAME}`
    /// references read. Not together with `store.path`: one store or the other.
    pub(super) fn store_url(
        &mut self,
        raw: Option<toml::Spanned<String>>,
        with_path: bool,
    ) -> Option<String> {
        let raw = raw?;
        if with_path {
            self.report(
                raw.span(),
                "store.url",
                "give store.path (SQLite) or store.url (PostgreSQL), not both",
            );
        }
        if !crate::model::is_server_url(raw.get_ref()) {
            self.report(
                raw.span(),
                "store.url",
                "must be a PostgreSQL connection string: postgres://USER@HOST/DB, postgresql://…, \
                 or host=/run/postgresql dbname=…",
            );
            return None;
        }
        let expanded = self.expand(&raw, "store.url")?;
        // The store parses the string when it connects (and `check` asks it to, to report a
        // malformed one here); a password written into the config itself is a secret in the
        // file, which `check` warns about.
        let literal_password = match url::Url::parse(raw.get_ref()) {
            Ok(url) => url.password().is_some(),
            Err(_) => raw
                .get_ref()
                .split_whitespace()
                .any(|kv| kv.starts_with("password=")),
        };
        if literal_password && !raw.get_ref().contains("${") {
            self.uses_secrets = true;
        }
        self.places
            .insert("store.url".into(), self.locator.place(raw.span().start));
        Some(expanded)
    }

    pub(super) fn node(&mut self, raw: raw::RawNode) -> NodeConfig {
        let name = match raw.name {
            Some(n) if n.get_ref().trim().is_empty() => {
                self.report(n.span(), "node.name", "must not be empty");
                None
            }
            Some(n) => Some(n.get_ref().trim().to_string()),
            None => None,
        };
        let lease = self.duration(raw.lease.clone(), "node.lease", false);
        if let (Some(lease), Some(raw)) = (lease, &raw.lease)
            && lease < Duration::from_secs(5)
        {
            self.report(
                raw.span(),
                "node.lease",
                "must be at least 5s: a claim is renewed every third of it",
            );
        }
        NodeConfig {
            name: name.unwrap_or_else(default_node_name),
            lease: lease.unwrap_or(DEFAULT_LEASE),
        }
    }
}
