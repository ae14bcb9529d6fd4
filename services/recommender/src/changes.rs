//! Stamped writes: how every replica's memory learns what any replica wrote.
//!
//! The recommender's PostgreSQL tables are the truth; the HNSW index and the users'
//! tastes in memory are a view of them that every replica keeps ([`crate::follow`]). A
//! replica's consumers take only their share of each queue's events, and its embedding
//! worker embeds only some videos, so memory cannot be updated by the code that wrote:
//! the other replicas would never hear of it. Instead every write is *stamped* and every
//! replica reads the stamps it has not seen yet.
//!
//! A stamp orders changes only if stamps become visible in order. A plain sequence does
//! not give that: transaction A takes stamp 7, B takes 8 and commits first, a reader sees
//! 8, moves its cursor past 7 and never sees A's rows. So every writing transaction first
//! takes one transaction-scoped advisory lock ([`WRITE_LOCK`]) and only then its stamp:
//! writers run one at a time, a stamp is taken after every smaller one committed or
//! rolled back, and "every row stamped after my cursor" is complete. Writers are short
//! (a consumer batch, one embedding batch's UPDATEs), so serializing them costs little;
//! the model's work and the queue reads happen outside the lock.

use sqlx::{PgPool, Postgres, Transaction};

/// The advisory lock key every stamped writer takes (any constant unique in the
/// recommender's database; `recommend` is its own database).
pub const WRITE_LOCK: i64 = 0x6b69_6e6f_7265_6301; // "kinorec\x01"

/// A transaction that may write stamped rows, and its stamp.
pub struct Stamped {
    pub tx: Transaction<'static, Postgres>,
    /// The stamp to write into `change_seq` (and `embedding_seq`) of every row this
    /// transaction changes.
    pub stamp: i64,
}

/// Begins a writing transaction: the write lock, then the stamp (in that order; see the
/// module docs).
pub async fn begin(pool: &PgPool) -> sqlx::Result<Stamped> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(WRITE_LOCK)
        .execute(&mut *tx)
        .await?;
    let stamp: i64 = sqlx::query_scalar("SELECT nextval('changes')")
        .fetch_one(&mut *tx)
        .await?;
    Ok(Stamped { tx, stamp })
}
