//! An endpoint's URL, parsed once when it is registered or changed (parse, don't validate):
//! http or https, a host, no credentials, not too long, and, unless
//! `WEBHOOK_ALLOW_PRIVATE`, a host that resolves to public addresses only. The same
//! address check is made again on every attempt (crate::delivery::guard), since what a
//! name resolves to can change.

use reqwest::Url;

use crate::delivery::guard::{self, GuardedResolver};

/// The longest URL accepted.
pub const MAX_LEN: usize = 2048;

/// A URL deliveries may be sent to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointUrl(Url);

impl EndpointUrl {
    /// Parses `raw` and checks where it points. The error is the client's to read.
    pub async fn parse(raw: &str, allow_private: bool) -> Result<Self, String> {
        let url = Self::parse_syntax(raw)?;
        guard::check_literal(&url.0, allow_private).map_err(|why| format!("the URL {why}"))?;
        if let Some(url::Host::Domain(host)) = url.0.host() {
            GuardedResolver { allow_private }
                .lookup(host)
                .await
                .map_err(|why| format!("the URL's host {why}"))?;
        }
        Ok(url)
    }

    /// The checks that need no network.
    fn parse_syntax(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if raw.len() > MAX_LEN {
            return Err(format!("the URL is longer than {MAX_LEN} characters"));
        }
        let url = Url::parse(raw).map_err(|e| format!("not a valid URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("the URL must be http or https".into());
        }
        if url.host().is_none() {
            return Err("the URL has no host".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(
                "the URL must not carry credentials; verify deliveries by their signature".into(),
            );
        }
        if url.fragment().is_some() {
            return Err("the URL must not have a fragment (#…)".into());
        }
        Ok(Self(url))
    }

    /// A URL as stored (it was checked when it was stored; the address is checked again
    /// on every attempt).
    pub fn stored(raw: &str) -> Result<Url, String> {
        Self::parse_syntax(raw).map(|u| u.0)
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_plain_http_urls_to_public_hosts_are_taken() {
        for (bad, why) in [
            ("ftp://example.com/x", "http or https"),
            ("not a url", "not a valid URL"),
            ("https://user:pw@example.com/x", "credentials"),
            ("https://example.com/x#frag", "fragment"),
            ("http://127.0.0.1:9000/hook", "non-public"),
            ("http://[::1]/hook", "non-public"),
            ("http://10.0.0.8/hook", "non-public"),
            ("http://localhost:8080/hook", "non-public"),
        ] {
            let error = EndpointUrl::parse(bad, false).await.unwrap_err();
            assert!(error.contains(why), "{bad}: {error}");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_LEN));
        assert!(EndpointUrl::parse(&long, false).await.is_err());
        let local = EndpointUrl::parse(" http://127.0.0.1:9000/hook ", true)
            .await
            .unwrap();
        assert_eq!(local.as_str(), "http://127.0.0.1:9000/hook");
        let public = EndpointUrl::parse("https://8.8.8.8/hook", false)
            .await
            .unwrap();
        assert_eq!(public.as_str(), "https://8.8.8.8/hook");
    }
}
