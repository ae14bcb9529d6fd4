//! Which routes may be called without a token: a small table, deny by default.
//!
//! `PUBLIC_ROUTES` is a comma-separated list of `METHOD /path/prefix` entries (`*` for any
//! method). A prefix matches the path itself and anything below it (`/media/graphql`
//! matches `/media/graphql` and `/media/graphql/x`, not `/media/graphqlx`). Paths that try
//! to climb out of a prefix (`..`, encoded dots or slashes, `//`) never match.

use std::str::FromStr;

/// The default table: the ops endpoints, and the catalogue's read-only entry points (the
/// services themselves decide what an anonymous viewer may see). `GET /video` covers
/// video status and HLS delivery (the video service serves private videos to their owner
/// only); `OPTIONS /video/upload` is tus capability discovery. `/metrics` under a prefix
/// passes only so that everyone gets the service's 404 (metrics are served at the pod's
/// root, which the gateway never routes), not a 401 that suggests a token would help.
pub const DEFAULT_PUBLIC_ROUTES: &str = "GET /media/healthz, GET /media/readyz, GET /video, \
     OPTIONS /video/upload, GET /user/healthz, GET /user/readyz, GET /media/graphql, POST /media/graphql, \
     GET /media/metrics, GET /user/metrics";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Upper-case method, or `None` for any.
    method: Option<String>,
    prefix: String,
}

#[derive(Debug, Clone, Default)]
pub struct Policy {
    rules: Vec<Rule>,
}

impl FromStr for Policy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut rules = Vec::new();
        for entry in s.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (method, prefix) = entry
                .split_once(' ')
                .ok_or_else(|| format!("{entry:?}: expected `METHOD /prefix`"))?;
            let prefix = prefix.trim();
            if !prefix.starts_with('/') || is_suspicious(prefix) {
                return Err(format!(
                    "{entry:?}: the prefix must be a plain absolute path"
                ));
            }
            let method = (method != "*").then(|| method.to_ascii_uppercase());
            rules.push(Rule {
                method,
                prefix: prefix.trim_end_matches('/').to_owned(),
            });
        }
        Ok(Self { rules })
    }
}

fn is_suspicious(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    path.contains("..")
        || path.contains("//")
        || lower.contains("%2e")
        || lower.contains("%2f")
        || lower.contains("%5c")
        || path.contains('\\')
}

impl Policy {
    /// Whether `method uri` (the original request, from the gateway's `X-Forwarded-*`) may
    /// go through without a token.
    pub fn is_public(&self, method: &str, uri: &str) -> bool {
        let path = uri.split(['?', '#']).next().unwrap_or("");
        if !path.starts_with('/') || is_suspicious(path) {
            return false;
        }
        self.rules.iter().any(|rule| {
            let method_ok = rule
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method));
            let path_ok = path == rule.prefix
                || path
                    .strip_prefix(rule.prefix.as_str())
                    .is_some_and(|rest| rest.starts_with('/'));
            method_ok && path_ok
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_match_whole_segments_and_methods() {
        let policy: Policy = "GET /media/graphql, * /video/hls".parse().unwrap();
        assert!(policy.is_public("GET", "/media/graphql"));
        assert!(policy.is_public("GET", "/media/graphql?query={feed}"));
        assert!(policy.is_public("GET", "/media/graphql/ws"));
        assert!(!policy.is_public("GET", "/media/graphqlx"));
        assert!(!policy.is_public("POST", "/media/graphql"));
        assert!(policy.is_public("DELETE", "/video/hls/x"));
    }

    #[test]
    fn deny_by_default_and_no_escapes() {
        let policy: Policy = "GET /media/healthz".parse().unwrap();
        assert!(!policy.is_public("GET", "/user/profile"));
        assert!(!policy.is_public("GET", "/media/healthz/../../user/profile"));
        assert!(!policy.is_public("GET", "/media/healthz/%2e%2e/%2E%2E/user/profile"));
        assert!(!policy.is_public("GET", "/media/healthz/..%2f..%2fuser"));
        assert!(!policy.is_public("GET", "//media/healthz"));
        assert!(!policy.is_public("GET", ""));
        assert!(!Policy::default().is_public("GET", "/media/healthz"));
    }

    #[test]
    fn bad_tables_are_refused() {
        assert!("GET media".parse::<Policy>().is_err());
        assert!("GET /a/../b".parse::<Policy>().is_err());
        assert!(DEFAULT_PUBLIC_ROUTES.parse::<Policy>().is_ok());
    }
}
