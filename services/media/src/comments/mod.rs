//! Comments: threads in MongoDB (a top-level comment and its replies, one level deep),
//! soft-deleted so a thread keeps its shape, with a per-video counter in the catalogue.
//!
//! The counter lives in PostgreSQL (the feed shows it without touching MongoDB) and the
//! comments in MongoDB, so no transaction spans both: each write changes the comment first
//! and the counter after, and a crash in between leaves the counter off by one. The
//! [`recount`] sweep recomputes every counter from MongoDB periodically, so counters
//! converge to the truth.
//!
//! [`rules`]: held words and blocks (channel owners' and viewers' say over comments).

pub mod graphql;
pub mod id;
pub mod recount;
pub mod rules;
pub mod store;

pub use graphql::{Comment, CommentMutation, CommentQuery};
pub use id::CommentId;
