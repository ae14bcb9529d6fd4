//! Several events in one message.
//!
//! A message body is either one envelope (a JSON object: what [`crate::Publisher`] and the
//! outbox send) or a *pack*: a JSON array of envelopes with the same routing key, sent by
//! [`crate::batch::BatchPublisher`] when many small events are waiting. A pack costs the
//! broker one message (one routing decision, one disk write, one confirm, one ack) for all
//! of its events; that per-message work, not the bytes, is what limits RabbitMQ for
//! high-volume interactions. Every event in a pack keeps its own id, so consumers still
//! drop duplicates event by event.
//!
//! Every message the batch publisher sends carries its event count in the
//! [`EVENTS_HEADER`] header, so a batching consumer can fill batches by events rather than
//! by messages without decoding first ([`count`]). A message without it is one event.

use lapin::{
    BasicProperties,
    message::Delivery,
    types::{AMQPValue, FieldTable},
};
use serde_json::value::RawValue;

use crate::{
    Envelope,
    envelope::{DecodeError, Payload},
};

/// The AMQP header with the number of events in a message.
pub const EVENTS_HEADER: &str = "x-events";

/// The body of a pack: the already-encoded envelopes as a JSON array.
pub fn encode(envelopes: &[&[u8]]) -> Vec<u8> {
    let len = envelopes.iter().map(|e| e.len() + 1).sum::<usize>() + 1;
    let mut body = Vec::with_capacity(len);
    body.push(b'[');
    for (i, envelope) in envelopes.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(envelope);
    }
    body.push(b']');
    body
}

/// `properties` with the event count header set.
pub fn with_count(properties: BasicProperties, events: usize) -> BasicProperties {
    let mut headers = FieldTable::default();
    headers.insert(
        EVENTS_HEADER.into(),
        AMQPValue::LongUInt(u32::try_from(events).unwrap_or(u32::MAX)),
    );
    properties.with_headers(headers)
}

/// How many events a message says it carries (1 without the header).
pub fn count(properties: &BasicProperties) -> usize {
    let Some(headers) = properties.headers() else {
        return 1;
    };
    let value = headers
        .inner()
        .iter()
        .find_map(|(name, value)| (name.as_str() == EVENTS_HEADER).then_some(value));
    let n = match value {
        Some(AMQPValue::LongUInt(n)) => u64::from(*n),
        Some(AMQPValue::LongLongInt(n)) => u64::try_from(*n).unwrap_or(1),
        Some(AMQPValue::LongInt(n)) => u64::try_from(*n).unwrap_or(1),
        Some(AMQPValue::ShortUInt(n)) => u64::from(*n),
        _ => 1,
    };
    usize::try_from(n).unwrap_or(usize::MAX).max(1)
}

/// Decodes a message body: one envelope, or a pack of them. Each event is refused if its
/// version is newer than `T` knows (crate::envelope).
///
/// `Err` when the body is not JSON, is neither an object nor an array, or is a single
/// envelope that cannot be used: nothing in it can be. Otherwise one result per event, so
/// one bad event in a pack does not cost the others.
pub fn decode<T: Payload>(
    body: &[u8],
) -> Result<Vec<Result<Envelope<T>, DecodeError>>, DecodeError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'[') {
        let items: Vec<&RawValue> = serde_json::from_slice(body)?;
        Ok(items
            .into_iter()
            .map(|raw| Envelope::decode(raw.get().as_bytes()))
            .collect())
    } else {
        Ok(vec![Ok(Envelope::decode(body)?)])
    }
}

/// The events of a batch of deliveries ([`unpack`]).
pub struct Unpacked<T> {
    /// Every event that decoded, in delivery order.
    pub events: Vec<Envelope<T>>,
    /// Indices of the deliveries whose body could not be read at all: to reject.
    pub reject: Vec<usize>,
    /// Events inside readable packs that did not decode (logged and skipped: the rest of
    /// their pack still counts, and the message is acknowledged with it).
    pub skipped: usize,
}

/// Decodes every delivery of a batch, single envelopes and packs alike.
pub fn unpack<T: Payload>(deliveries: &[Delivery]) -> Unpacked<T> {
    let mut unpacked = Unpacked {
        events: Vec::with_capacity(deliveries.len()),
        reject: Vec::new(),
        skipped: 0,
    };
    for (index, delivery) in deliveries.iter().enumerate() {
        match decode::<T>(&delivery.data) {
            Ok(events) => {
                for event in events {
                    match event {
                        Ok(envelope) => unpacked.events.push(envelope),
                        Err(e) => {
                            tracing::error!(routing_key = %delivery.routing_key, error = %e, "undecodable event");
                            unpacked.skipped += 1;
                        }
                    }
                }
            }
            Err(e) => {
                tracing::error!(routing_key = %delivery.routing_key, error = %e, "undecodable message");
                unpacked.reject.push(index);
            }
        }
    }
    unpacked
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::tests::Ping;

    #[test]
    fn a_pack_decodes_to_its_envelopes_in_order() {
        let envelopes: Vec<Envelope<Ping>> = (0..3).map(|n| Envelope::new(Ping { n })).collect();
        let encoded: Vec<Vec<u8>> = envelopes
            .iter()
            .map(|e| serde_json::to_vec(e).unwrap())
            .collect();
        let parts: Vec<&[u8]> = encoded.iter().map(Vec::as_slice).collect();
        let decoded: Vec<Envelope<Ping>> = decode(&encode(&parts))
            .unwrap()
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(decoded, envelopes);
    }

    #[test]
    fn a_single_envelope_is_a_pack_of_one() {
        let envelope = Envelope::new(Ping { n: 7 });
        let body = serde_json::to_vec(&envelope).unwrap();
        let decoded = decode::<Ping>(&body).unwrap();
        assert_eq!(decoded.len(), 1);
        assert_eq!(decoded[0].as_ref().unwrap(), &envelope);
    }

    #[test]
    fn one_bad_event_does_not_cost_the_others_but_a_bad_body_is_refused() {
        let good = serde_json::to_vec(&Envelope::new(Ping { n: 1 })).unwrap();
        let body = encode(&[&good, br#"{"id":"not an envelope"}"#, &good]);
        let decoded = decode::<Ping>(&body).unwrap();
        assert_eq!(
            decoded.iter().map(Result::is_ok).collect::<Vec<_>>(),
            [true, false, true]
        );
        assert!(decode::<Ping>(b"[1, 2").is_err());
        assert!(decode::<Ping>(b"\"a string\"").is_err());
        assert!(decode::<Ping>(b"").is_err());
    }

    #[test]
    fn the_count_header_round_trips_and_defaults_to_one() {
        assert_eq!(count(&BasicProperties::default()), 1);
        assert_eq!(count(&with_count(BasicProperties::default(), 250)), 250);
        assert_eq!(count(&with_count(BasicProperties::default(), 0)), 1);
    }
}
