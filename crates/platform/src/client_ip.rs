//! The client's IP address, for per-IP limits, as every service behind the gateway reads it.
//!
//! `X-Forwarded-For` is believed only when the TCP peer is a trusted proxy (the gateway,
//! `TRUSTED_PROXIES`); otherwise anyone could pick their own address and escape a per-IP
//! limit. Walking the header from the right, the first address that is not a trusted proxy
//! is the client: the hops to its left were written by the client itself and prove nothing.
//!
//! Auth (Rocket) calls [`resolve`] from its request guard; the axum services wrap their
//! router with [`resolving`] and take [`ClientIp`] as an extractor. Both need the peer
//! address, which [`crate::http::serve`] records for every connection.

use std::{net::IpAddr, net::SocketAddr, sync::Arc};

use axum::{
    Router,
    extract::{ConnectInfo, FromRequestParts, Request},
    http::request::Parts,
    middleware::Next,
};

use crate::config::{ConfigError, var};

/// A network (`10.0.0.0/8`, `127.0.0.1/32`, `::1/128`; a bare address is a /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl std::str::FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = s.trim().split_once('/').unwrap_or((s.trim(), ""));
        let network: IpAddr = addr.parse().map_err(|e| format!("{s}: {e}"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = if prefix.is_empty() {
            max
        } else {
            prefix.parse().map_err(|_| format!("{s}: bad prefix"))?
        };
        if prefix > max {
            return Err(format!("{s}: prefix over {max}"));
        }
        Ok(Self { network, prefix })
    }
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`, what a dual-stack socket reports) as
/// the IPv4 address it is.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// `TRUSTED_PROXIES`: the peers whose `X-Forwarded-For` is believed. Cheap to clone.
#[derive(Debug, Clone)]
pub struct TrustedProxies(Arc<[Cidr]>);

/// The local gateway (Caddy, Traefik in compose) connects from loopback.
pub const DEFAULT_TRUSTED_PROXIES: &str = "127.0.0.1/32,::1/128";

impl std::str::FromStr for TrustedProxies {
    type Err = String;
    /// Comma-separated CIDRs; empty trusts nobody.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let cidrs = s
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::parse)
            .collect::<Result<Vec<Cidr>, String>>()?;
        Ok(Self(cidrs.into()))
    }
}

impl TrustedProxies {
    /// Reads `TRUSTED_PROXIES` (default: loopback).
    pub fn from_env() -> Result<Self, ConfigError> {
        var("TRUSTED_PROXIES", DEFAULT_TRUSTED_PROXIES)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|c| c.contains(ip))
    }

    /// The client behind `peer`, given the `X-Forwarded-For` values of the request.
    pub fn resolve<'a>(
        &self,
        peer: IpAddr,
        forwarded_for: impl Iterator<Item = &'a str>,
    ) -> IpAddr {
        resolve(peer, forwarded_for, &self.0)
    }
}

/// Resolves the client address from the peer and the `X-Forwarded-For` values.
pub fn resolve<'a>(
    peer: IpAddr,
    forwarded_for: impl Iterator<Item = &'a str>,
    trusted: &[Cidr],
) -> IpAddr {
    let peer = canonical(peer);
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let hops: Vec<&str> = forwarded_for
        .flat_map(|h| h.split(','))
        .map(str::trim)
        .collect();
    for hop in hops.iter().rev() {
        match hop.parse::<IpAddr>() {
            Ok(ip) if is_trusted(ip) => continue,
            Ok(ip) => return canonical(ip),
            Err(_) => break, // garbage: stop believing the header here
        }
    }
    peer
}

/// The client's address, as [`resolving`] found it. Without a peer address (a router
/// driven without [`crate::http::serve`], e.g. `oneshot` in a unit test) it is the
/// unspecified address: one shared bucket, never an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<ClientIp>()
            .copied()
            .unwrap_or_else(|| ClientIp(peer(parts.extensions.get::<ConnectInfo<SocketAddr>>()))))
    }
}

fn peer(info: Option<&ConnectInfo<SocketAddr>>) -> IpAddr {
    info.map_or(IpAddr::from([0, 0, 0, 0]), |ConnectInfo(addr)| addr.ip())
}

/// Wraps `router` so that every request carries its [`ClientIp`], resolved once.
pub fn resolving<S>(router: Router<S>, trusted: TrustedProxies) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    router.layer(axum::middleware::from_fn(
        move |mut req: Request, next: Next| {
            let trusted = trusted.clone();
            async move {
                let peer = peer(req.extensions().get::<ConnectInfo<SocketAddr>>());
                let forwarded = req
                    .headers()
                    .get_all("x-forwarded-for")
                    .iter()
                    .filter_map(|v| v.to_str().ok());
                let ip = trusted.resolve(peer, forwarded);
                req.extensions_mut().insert(ClientIp(ip));
                next.run(req).await
            }
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidrs(list: &[&str]) -> Vec<Cidr> {
        list.iter().map(|c| c.parse().unwrap()).collect()
    }

    #[test]
    fn forwarded_for_is_ignored_from_untrusted_peers() {
        let trusted = cidrs(&["127.0.0.1/32"]);
        let peer: IpAddr = "203.0.113.9".parse().unwrap();
        assert_eq!(resolve(peer, ["1.2.3.4"].into_iter(), &trusted), peer);
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let trusted = cidrs(&["127.0.0.1", "10.0.0.0/8"]);
        let peer: IpAddr = "127.0.0.1".parse().unwrap();
        // The client sent a spoofed "6.6.6.6"; the gateway appended the real address.
        let ip = resolve(
            peer,
            ["6.6.6.6, 198.51.100.7, 10.1.2.3"].into_iter(),
            &trusted,
        );
        assert_eq!(ip, "198.51.100.7".parse::<IpAddr>().unwrap());
        assert_eq!(resolve(peer, std::iter::empty(), &trusted), peer);
    }

    #[test]
    fn a_mapped_peer_is_its_ipv4_address() {
        let trusted: TrustedProxies = "127.0.0.1/32".parse().unwrap();
        let peer: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        let ip = trusted.resolve(peer, ["198.51.100.7"].into_iter());
        assert_eq!(ip, "198.51.100.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn cidr_matching() {
        let net: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(net.contains("10.200.1.1".parse().unwrap()));
        assert!(!net.contains("11.0.0.1".parse().unwrap()));
        assert!(
            "::1"
                .parse::<Cidr>()
                .unwrap()
                .contains("::1".parse().unwrap())
        );
        assert!("bad".parse::<Cidr>().is_err());
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("10.0.0.0/8, bad".parse::<TrustedProxies>().is_err());
        assert!(
            !"".parse::<TrustedProxies>()
                .unwrap()
                .contains("127.0.0.1".parse().unwrap())
        );
    }
}
