//! The raw event archive: every interaction, once, in MongoDB (`interactions` collection).
//!
//! A consumer of its own queue (`ranker.archive`, bound like the ranking queue), so the
//! ranking never waits on the archive and the archive catches up on its own after an
//! outage. Events are stored as they came (envelope fields and the raw `data`), keyed by
//! event id (`_id`, unique): a batch is inserted unordered, and duplicate-key errors
//! (a redelivery after a crash, a re-published event) are the expected outcome of
//! inserting an event that is already there. The batch is acknowledged after the insert.

use events::{
    Envelope,
    consumer::{self, BatchOutcome},
    pack,
};
use lapin::message::Delivery;
use mongodb::{
    Collection,
    bson::{self, Document, doc},
    error::ErrorKind,
    options::InsertManyOptions,
};

use crate::Context;

/// MongoDB's duplicate key error.
const DUPLICATE_KEY: i32 = 11000;

pub const COLLECTION: &str = "interactions";

pub fn spawn(ctx: &Context, shutdown: &platform::Shutdown) {
    let collection: Collection<Document> = ctx.mongo.collection(COLLECTION);
    let spec = ctx.config.queue("ranker.archive");
    let ingest = ctx.config.ingest;
    let batching = ingest.batching(ingest.archive_batch_size);
    consumer::spawn_batched(ctx.rabbit.clone(), spec, batching, shutdown, move |batch| {
        let collection = collection.clone();
        async move { handle(&collection, batch).await }
    });
}

/// The archived form of one raw event.
fn document(envelope: Envelope<serde_json::Value>) -> Result<Document, bson::ser::Error> {
    let millis = envelope
        .occurred_at
        .unix_timestamp_nanos()
        .div_euclid(1_000_000) as i64;
    Ok(doc! {
        "_id": envelope.id.to_string(),
        "type": envelope.kind,
        "version": i32::from(envelope.version),
        "occurred_at": bson::DateTime::from_millis(millis),
        "data": bson::to_bson(&envelope.data)?,
    })
}

async fn handle(collection: &Collection<Document>, batch: Vec<Delivery>) -> BatchOutcome {
    let unpacked = pack::unpack::<serde_json::Value>(&batch);
    let reject = unpacked.reject;
    let mut docs = Vec::with_capacity(unpacked.events.len());
    for envelope in unpacked.events {
        match document(envelope) {
            Ok(doc) => docs.push(doc),
            Err(e) => tracing::error!(error = %e, "unarchivable event"),
        }
    }
    if docs.is_empty() {
        return BatchOutcome::Ack { reject };
    }
    let count = docs.len();
    match insert(collection, docs).await {
        Ok(()) => {
            metrics::counter!("ranker_archived_total").increment(count as u64);
            BatchOutcome::Ack { reject }
        }
        Err(e) => {
            tracing::warn!(error = %e, "archive batch not stored; will retry");
            BatchOutcome::Retry
        }
    }
}

/// Inserts `docs`, treating already-archived ones as done.
pub async fn insert(
    collection: &Collection<Document>,
    docs: Vec<Document>,
) -> mongodb::error::Result<()> {
    let unordered = InsertManyOptions::builder().ordered(false).build();
    match collection.insert_many(docs).with_options(unordered).await {
        Ok(_) => Ok(()),
        Err(e) => match e.kind.as_ref() {
            ErrorKind::InsertMany(failure)
                if failure.write_concern_error.is_none()
                    && failure
                        .write_errors
                        .as_ref()
                        .is_some_and(|errors| errors.iter().all(|w| w.code == DUPLICATE_KEY)) =>
            {
                Ok(())
            }
            _ => Err(e),
        },
    }
}
