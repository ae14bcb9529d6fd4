//! Identity at the edge: the contract between the gateway and the services behind it.
//!
//! The gateway's ForwardAuth hop asks auth about every request on `/user`, `/media` and
//! `/video`. For a valid token auth answers with the identity headers below
//! ([`identity_headers`]); the gateway removes any that the client sent and copies auth's
//! onto the upstream request. A service therefore trusts these headers alone
//! ([`caller`]) and never sees a client's own.
//!
//! Invariants, the same in every service:
//! * no `X-User-Id` means an anonymous caller;
//! * an `X-User-Id` that is not a UUID means something is wrong between the gateway and
//!   the service: the request is refused ([`MalformedIdentity`], a 400), never treated as
//!   anonymous, so a misconfigured hop is seen at once rather than silently logging
//!   everyone out.
//!
//! Clients present their access token as `Authorization: Bearer <jwt>`, or, where they
//! cannot set headers (browsers' WebSockets), in a `connection_init` payload with the same
//! value; [`bearer`] reads both.

use http::{HeaderMap, HeaderName, HeaderValue};
use uuid::Uuid;

use crate::{Claims, Role};

/// The caller's user id, set by the gateway from auth's answer.
pub const USER_ID_HEADER: HeaderName = HeaderName::from_static("x-user-id");
/// The caller's username, set by the gateway from auth's answer (so a service can show it
/// without asking auth).
pub const USER_NAME_HEADER: HeaderName = HeaderName::from_static("x-user-name");

/// The caller's roles beyond user (`moderator`, `admin`, comma-separated), set by the
/// gateway from auth's answer; absent for an ordinary user. Like the others, the gateway
/// removes any copy a client sent (in any case, with `_` for `-` too).
pub const USER_ROLES_HEADER: HeaderName = HeaderName::from_static("x-user-roles");

/// The identity headers auth answers a ForwardAuth request with, for a verified token.
/// A username that cannot travel in a header (not visible ASCII) is left out; the id,
/// which is what services act on, always travels.
pub fn identity_headers(claims: &Claims) -> Vec<(HeaderName, HeaderValue)> {
    let mut headers = vec![(
        USER_ID_HEADER,
        HeaderValue::from_str(&claims.sub.to_string()).expect("a UUID is a header value"),
    )];
    if let Ok(name) = HeaderValue::from_str(&claims.name) {
        headers.push((USER_NAME_HEADER, name));
    }
    if !claims.roles.is_empty() {
        let roles: Vec<&str> = claims.roles.iter().map(|r| r.as_str()).collect();
        let value = HeaderValue::from_str(&roles.join(",")).expect("role names are ASCII");
        headers.push((USER_ROLES_HEADER, value));
    }
    headers
}

/// The caller's roles, as the gateway says (empty for an ordinary user or anonymous).
/// An unknown role or an unreadable value is refused like a malformed id.
pub fn roles(headers: &HeaderMap) -> Result<Vec<Role>, MalformedIdentity> {
    let Some(value) = headers.get(USER_ROLES_HEADER) else {
        return Ok(Vec::new());
    };
    let value = value
        .to_str()
        .map_err(|_| MalformedIdentity("x-user-roles"))?;
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| Role::parse(s).ok_or(MalformedIdentity("x-user-roles")))
        .collect()
}

/// The gateway sent an identity header that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed {0} header")]
pub struct MalformedIdentity(pub &'static str);

/// Who is calling, as the gateway says: `Ok(None)` for an anonymous caller.
pub fn caller(headers: &HeaderMap) -> Result<Option<Uuid>, MalformedIdentity> {
    let Some(value) = headers.get(USER_ID_HEADER) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|s| Uuid::parse_str(s.trim()).ok())
        .map(Some)
        .ok_or(MalformedIdentity("x-user-id"))
}

/// A credential that is present but is not a usable bearer token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("credentials must be `Bearer <access token>`")]
pub struct NotBearer;

/// The token in an `Authorization` value (`Bearer <token>`, the scheme in any case,
/// surrounding spaces ignored). Anything else — another scheme, an empty token, a token
/// with spaces in it — is [`NotBearer`]: a caller who sent credentials expects them to
/// count, so they are refused rather than ignored.
pub fn bearer(value: &str) -> Result<&str, NotBearer> {
    let (scheme, token) = value.trim().split_once(' ').ok_or(NotBearer)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || token.contains(' ') {
        return Err(NotBearer);
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(id: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(id) = id {
            h.insert(USER_ID_HEADER, HeaderValue::from_str(id).unwrap());
        }
        h
    }

    #[test]
    fn the_caller_is_the_gateways_user_id_or_anonymous() {
        let id = Uuid::now_v7();
        assert_eq!(caller(&headers(Some(&id.to_string()))), Ok(Some(id)));
        assert_eq!(caller(&headers(Some(&format!(" {id} ")))), Ok(Some(id)));
        assert_eq!(caller(&headers(None)), Ok(None));
    }

    #[test]
    fn a_malformed_user_id_is_refused_not_anonymous() {
        assert!(caller(&headers(Some("not-a-uuid"))).is_err());
        assert!(caller(&headers(Some(""))).is_err());
        let mut h = HeaderMap::new();
        h.insert(USER_ID_HEADER, HeaderValue::from_bytes(b"\xff").unwrap());
        assert!(caller(&h).is_err());
    }

    #[test]
    fn identity_headers_round_trip_through_caller() {
        let claims = Claims {
            sub: Uuid::now_v7(),
            name: "ada".into(),
            jti: Uuid::now_v7(),
            iss: "i".into(),
            aud: "a".into(),
            iat: 0,
            exp: 1,
            roles: vec![],
        };
        let mut h = HeaderMap::new();
        for (name, value) in identity_headers(&claims) {
            h.insert(name, value);
        }
        assert_eq!(caller(&h), Ok(Some(claims.sub)));
        assert_eq!(h.get(USER_NAME_HEADER).unwrap(), "ada");
        assert!(h.get(USER_ROLES_HEADER).is_none());
        assert_eq!(roles(&h), Ok(vec![]));
        let moderator = Claims {
            roles: vec![Role::Moderator, Role::Admin],
            ..claims
        };
        let mut h = HeaderMap::new();
        for (name, value) in identity_headers(&moderator) {
            h.insert(name, value);
        }
        assert_eq!(h.get(USER_ROLES_HEADER).unwrap(), "moderator,admin");
        assert_eq!(roles(&h), Ok(vec![Role::Moderator, Role::Admin]));
        h.insert(
            USER_ROLES_HEADER,
            HeaderValue::from_static("moderator,root"),
        );
        assert!(roles(&h).is_err());
    }

    #[test]
    fn bearer_tokens_are_read_and_anything_else_refused() {
        assert_eq!(bearer("Bearer abc"), Ok("abc"));
        assert_eq!(bearer("bearer  abc "), Ok("abc"));
        assert_eq!(bearer(" BEARER abc"), Ok("abc"));
        for bad in ["Basic abc", "Bearer", "Bearer ", "Bearer a b", "abc", ""] {
            assert_eq!(bearer(bad), Err(NotBearer), "{bad:?}");
        }
    }
}
