//! The client's IP for throttling, as a Rocket request guard. Which address that is (the
//! peer, or what a trusted proxy put in `X-Forwarded-For`) is decided once for every
//! service, in [`platform::client_ip`].

use std::net::IpAddr;

use rocket::{
    Request,
    request::{FromRequest, Outcome},
};

use crate::Context;

pub struct ClientIp(pub IpAddr);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for ClientIp {
    type Error = std::convert::Infallible;
    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let ctx = req.rocket().state::<Context>().expect("context is managed");
        let peer = req.remote().map_or(IpAddr::from([0, 0, 0, 0]), |a| a.ip());
        let ip = ctx
            .config
            .trusted_proxies
            .resolve(peer, req.headers().get("X-Forwarded-For"));
        Outcome::Success(ClientIp(ip))
    }
}
