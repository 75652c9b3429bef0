//! Secrets: `${NAME}`, `${file:PATH}` and `${credential:NAME}` references in config values,
//! resolved from the process's environment, files and systemd credentials.

use super::*;

/// A Standard Webhooks secret's signing key: `whsec_` and base64 (or the base64 alone), of 24
/// to 64 bytes, as the specification has them and its libraries read them.
pub(super) fn webhook_key(secret: &str) -> Result<Vec<u8>, String> {
    use base64::Engine as _;
    let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
    let key = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| {
            "must be a Standard Webhooks secret: whsec_ and base64 (generate one: \
             echo whsec_$(openssl rand -base64 32))"
                .to_string()
        })?;
    if !(24..=64).contains(&key.len()) {
        return Err(format!(
            "is {} bytes once decoded; a webhook secret has 24 to 64 (echo whsec_$(openssl rand -base64 32))",
            key.len()
        ));
    }
    Ok(key)
}

/// Where `${…}` references in the config are read from: the environment, files, and systemd
/// credentials.
#[derive(Debug, Clone, Default)]
pub(crate) struct Secrets {
    pub(super) env: std::collections::HashMap<String, String>,
    pub(super) credentials: Option<PathBuf>,
}

impl Secrets {
    /// The process's environment and `$CREDENTIALS_DIRECTORY` (set by systemd's
    /// `LoadCredential=`).
    pub(crate) fn from_process() -> Secrets {
        Secrets {
            env: std::env::vars().collect(),
            credentials: std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from),
        }
    }

    /// `text` with its references replaced; the error names the reference, never a secret.
    pub(crate) fn expand(&self, text: &str, base: &Path) -> Result<String, String> {
        if !text.contains('$') {
            return Ok(text.to_string());
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            let after = &rest[at..];
            if let Some(literal) = after.strip_prefix("$${") {
                out.push_str("${");
                rest = literal;
                continue;
            }
            let Some(body) = after.strip_prefix("${") else {
                out.push('$');
                rest = &after[1..];
                continue;
            };
            let close = body
                .find('}')
                .ok_or_else(|| "`${` without a closing `}`".to_string())?;
            let reference = &body[..close];
            out.push_str(self.lookup(reference, base)?.trim_end_matches(['\n', '\r']));
            rest = &body[close + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    pub(super) fn lookup(&self, reference: &str, base: &Path) -> Result<String, String> {
        let read = |path: &Path, what: &str| {
            std::fs::read_to_string(path)
                .map_err(|e| format!("`${{{reference}}}`: cannot read {what} {}: {e}", path.display()))
        };
        if let Some(file) = reference.strip_prefix("file:") {
            return read(&base.join(file), "the file");
        }
        if let Some(name) = reference.strip_prefix("credential:") {
            let Some(dir) = &self.credentials else {
                return Err(format!(
                    "`${{{reference}}}`: no systemd credentials here (CREDENTIALS_DIRECTORY is not set; \
                     see LoadCredential= in the unit)"
                ));
            };
            if name.contains('/') {
                return Err(format!("`${{{reference}}}`: a credential name has no `/`"));
            }
            return read(&dir.join(name), "the credential");
        }
        let valid = !reference.is_empty() && reference.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(format!(
                "`${{{reference}}}` is not a reference: write ${{NAME}}, ${{file:PATH}} or ${{credential:NAME}}"
            ));
        }
        self.env
            .get(reference)
            .cloned()
            .ok_or_else(|| format!("the environment variable {reference} (in `${{{reference}}}`) is not set"))
    }
}
