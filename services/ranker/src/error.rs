//! The ranker's one error type. Every failure here is a store or the broker being
//! unavailable (the batch is retried) or a batch that kept meeting moved landmarks.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("MongoDB: {0}")]
    Mongo(#[from] mongodb::error::Error),
    #[error(transparent)]
    Events(#[from] events::Error),
    #[error("landmarks kept moving under the batch")]
    Stale,
}
