//! Kino's internal gRPC APIs: the contracts, compiled once from `proto/` for both sides,
//! and what every gRPC server and client of the platform shares.
//!
//! * [`auth::v1`]: auth's user directory (`kino.auth.v1.UserDirectory`), called by media
//!   for public profiles;
//! * [`recommender::v1`]: the recommender's queries (`kino.recommender.v1.Recommender`),
//!   called by media for `related` and `recommended`;
//! * [`server`]: serving them on their own port (`GRPC_BIND_ADDR`) with the standard
//!   health service (SERVING while the service's stores are) and per-method metrics;
//! * [`client`]: channels that spread calls over every replica behind a name, and calls
//!   with a deadline and bounded retries;
//! * [`metrics`]: the per-method series both sides record.
//!
//! The public APIs stay HTTP (REST, GraphQL, JWKS) behind the gateway; these are for
//! service-to-service calls only, never routed by it.

pub mod client;
pub mod metrics;
pub mod server;

use time::OffsetDateTime;
use tonic::Status;
use uuid::Uuid;

/// `kino.auth.v1`: auth's user directory.
pub mod auth {
    pub mod v1 {
        tonic::include_proto!("kino.auth.v1");
    }
}

/// `kino.recommender.v1`: the recommender's queries.
pub mod recommender {
    pub mod v1 {
        tonic::include_proto!("kino.recommender.v1");
    }
}

/// Parses one id field of a request; a malformed id is INVALID_ARGUMENT naming the field.
pub fn parse_id(field: &str, text: &str) -> Result<Uuid, Status> {
    Uuid::parse_str(text)
        .map_err(|_| Status::invalid_argument(format!("{field}: {text:?} is not a UUID")))
}

/// Parses a repeated id field (see [`parse_id`]).
pub fn parse_ids(field: &str, texts: &[String]) -> Result<Vec<Uuid>, Status> {
    texts.iter().map(|t| parse_id(field, t)).collect()
}

/// A protobuf timestamp of `at`.
pub fn timestamp(at: OffsetDateTime) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.unix_timestamp(),
        nanos: at.nanosecond() as i32,
    }
}

/// The instant a protobuf timestamp names (`None` for one missing or out of range).
pub fn from_timestamp(at: Option<&prost_types::Timestamp>) -> Option<OffsetDateTime> {
    let at = at?;
    let nanos = i128::from(at.seconds) * 1_000_000_000 + i128::from(at.nanos);
    OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_to_the_nanosecond() {
        let at = OffsetDateTime::from_unix_timestamp_nanos(1_765_000_000_123_456_789).unwrap();
        assert_eq!(from_timestamp(Some(&timestamp(at))), Some(at));
        assert_eq!(from_timestamp(None), None);
    }

    #[test]
    fn a_malformed_id_names_its_field() {
        let status = parse_ids("ids", &["nope".into()]).unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(status.message().contains("ids"), "{}", status.message());
        let id = Uuid::now_v7();
        assert_eq!(parse_ids("ids", &[id.to_string()]).unwrap(), [id]);
    }
}
