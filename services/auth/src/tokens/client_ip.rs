//! The client's IP for throttling. `X-Forwarded-For` is believed only when the TCP peer is a
//! trusted proxy (the gateway); otherwise anyone could pick their own IP and escape the
//! per-IP limit. Walking the header from the right, the first address that is not a
//! trusted proxy is the client.

use std::net::IpAddr;

use rocket::{
    Request,
    request::{FromRequest, Outcome},
};

use crate::Context;

/// A network (`10.0.0.0/8`, `127.0.0.1/32`, `::1/128`) from `TRUSTED_PROXIES`.
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
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.network, ip) {
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

/// Resolves the client address from the peer and the `X-Forwarded-For` values.
pub fn resolve<'a>(
    peer: IpAddr,
    forwarded_for: impl Iterator<Item = &'a str>,
    trusted: &[Cidr],
) -> IpAddr {
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
            Ok(ip) => return ip,
            Err(_) => break, // garbage: stop believing the header here
        }
    }
    peer
}

pub struct ClientIp(pub IpAddr);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for ClientIp {
    type Error = std::convert::Infallible;
    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let ctx = req.rocket().state::<Context>().expect("context is managed");
        let peer = req.remote().map_or(IpAddr::from([0, 0, 0, 0]), |a| a.ip());
        let ip = resolve(
            peer,
            req.headers().get("X-Forwarded-For"),
            &ctx.config.trusted_proxies,
        );
        Outcome::Success(ClientIp(ip))
    }
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
    }
}
