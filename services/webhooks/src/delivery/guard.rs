//! Deliveries go to the public internet only (unless `WEBHOOK_ALLOW_PRIVATE`): a webhook
//! URL is chosen by a user, and without this check it would let anyone make Kino's
//! network send requests to its own databases, to cloud metadata services
//! (169.254.169.254) or to anything else behind the firewall.
//!
//! The check is made where it cannot be dodged: on the addresses the HTTP client actually
//! connects to. [`GuardedResolver`] is the client's DNS resolver and drops every
//! non-public address a name resolves to (so a name that pointed somewhere public when
//! the endpoint was registered and somewhere private now, DNS rebinding, is refused at
//! send time), and URLs whose host is an IP literal, which skip the resolver, are checked
//! by [`check_literal`] before each attempt. Redirects are never followed (the client
//! is built with none), so a public endpoint cannot bounce a delivery inward either.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::Arc,
};

use reqwest::{
    Url,
    dns::{Addrs, Name, Resolve, Resolving},
};

/// Why an address may not be delivered to.
pub const NOT_PUBLIC: &str = "resolves to a loopback, private or otherwise non-public address";

/// Whether `ip` is an ordinary public unicast address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            // An IPv4 address in IPv6 clothing is judged as the IPv4 address it is:
            // mapped (::ffff:a.b.c.d), and the well-known NAT64 prefix 64:ff9b::/96.
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let s = v6.segments();
            if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
                let [a, b] = s[6].to_be_bytes();
                let [c, d] = s[7].to_be_bytes();
                return is_public_v4(Ipv4Addr::new(a, b, c, d));
            }
            is_public_v6(v6)
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240) // reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (first & 0xffc0) == 0xfec0 // site-local (deprecated) fec0::/10
        || first == 0x2001 && ip.segments()[1] == 0x0db8 // documentation
        || first == 0x0100 && ip.segments()[1..4] == [0, 0, 0]) // discard-only 100::/64
}

/// A URL whose host is an IP literal (which the resolver never sees): allowed only if
/// public or `allow_private`.
pub fn check_literal(url: &Url, allow_private: bool) -> Result<(), &'static str> {
    let ip = match url.host() {
        Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
        _ => return Ok(()),
    };
    if allow_private || is_public(ip) {
        Ok(())
    } else {
        Err(NOT_PUBLIC)
    }
}

/// Resolves like the system does, then keeps only public addresses (all of them with
/// `allow_private`). A name left with none fails to resolve, with [`NOT_PUBLIC`].
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    pub allow_private: bool,
}

impl GuardedResolver {
    /// The addresses `host` may be delivered to, or why none.
    pub async fn lookup(self, host: &str) -> Result<Vec<SocketAddr>, String> {
        let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
            .await
            .map_err(|e| format!("{host} does not resolve: {e}"))?
            .collect();
        let allowed: Vec<SocketAddr> = resolved
            .into_iter()
            .filter(|addr| self.allow_private || is_public(addr.ip()))
            .collect();
        if allowed.is_empty() {
            return Err(format!("{host} {NOT_PUBLIC}"));
        }
        Ok(allowed)
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let this = *self;
        Box::pin(async move {
            let addrs = this.lookup(name.as_str()).await?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// The resolver as the HTTP client takes it.
pub fn resolver(allow_private: bool) -> Arc<GuardedResolver> {
    Arc::new(GuardedResolver { allow_private })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_unicast_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2001:db8::1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:1.1.1.1",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn literal_hosts_are_checked_names_are_left_to_the_resolver() {
        let url = |s: &str| Url::parse(s).unwrap();
        assert_eq!(
            check_literal(&url("http://127.0.0.1:9/x"), false),
            Err(NOT_PUBLIC)
        );
        assert_eq!(
            check_literal(&url("http://[::1]/x"), false),
            Err(NOT_PUBLIC)
        );
        assert_eq!(check_literal(&url("http://127.0.0.1/x"), true), Ok(()));
        assert_eq!(check_literal(&url("https://8.8.8.8/x"), false), Ok(()));
        assert_eq!(check_literal(&url("https://example.com/x"), false), Ok(()));
    }

    #[tokio::test]
    async fn the_resolver_drops_private_answers() {
        let guarded = GuardedResolver {
            allow_private: false,
        };
        let refused = guarded.lookup("localhost").await.unwrap_err();
        assert!(refused.contains(NOT_PUBLIC), "{refused}");
        let open = GuardedResolver {
            allow_private: true,
        };
        assert!(!open.lookup("localhost").await.unwrap().is_empty());
    }
}
