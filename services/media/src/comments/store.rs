//! The `comments` collection.
//!
//! `_id` is a [`CommentId`] (a UUIDv7) in its text form, so it sorts by creation time:
//! pages are keyset ranges on `_id` served by the indexes [`ensure_indexes`] creates.

use futures::TryStreamExt;
use mongodb::{
    Collection, Database, IndexModel,
    bson::{Bson, DateTime, Document, doc},
    options::{FindOneAndUpdateOptions, ReturnDocument},
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{CommentId, rules::ReadFilter};

/// A stored comment, as MongoDB holds it and as live updates carry it (serde: the same
/// document in Redis messages). The ids keep their stored text form here; they are typed
/// at the edges: [`CommentId::parse`] for what clients send, [`CommentDoc::comment_id`] for
/// what was read.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommentDoc {
    #[serde(rename = "_id")]
    pub id: String,
    pub video_id: String,
    pub parent_id: Option<String>,
    pub author_id: String,
    pub body: String,
    pub created_at: DateTime,
    pub edited_at: Option<DateTime>,
    pub deleted: bool,
    pub reply_count: i64,
    /// A UUIDv7 stamped by every write (insert, edit, delete): the comment's place in its
    /// video's change history, which `commentEvents(after:)` replays in order. Absent on
    /// comments written before live updates existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Its author is banned (crate::moderation): left out of every list until the ban is
    /// lifted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub author_hidden: bool,
    /// Held for the video owner's approval (crate::comments::rules): seen by its author
    /// and the owner only, not counted, not streamed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub held: bool,
}

impl CommentDoc {
    /// The id this service minted for the comment ([`CommentId::mint`]). A document whose
    /// `_id` is not one (none is written so) reads as the nil id, which names no comment.
    pub fn comment_id(&self) -> CommentId {
        Uuid::parse_str(&self.id).unwrap_or_default().into()
    }

    /// The comment this one replies to, as [`comment_id`](Self::comment_id) reads ids.
    pub fn parent(&self) -> Option<CommentId> {
        let parent = self.parent_id.as_deref()?;
        Some(Uuid::parse_str(parent).unwrap_or_default().into())
    }
}

#[derive(Clone)]
pub struct Comments {
    collection: Collection<CommentDoc>,
}

impl Comments {
    pub fn new(db: &Database) -> Self {
        Self {
            collection: db.collection("comments"),
        }
    }

    /// Top-level comments of a video, newest first; replies of a comment, oldest first;
    /// a video's changes in order.
    pub async fn ensure_indexes(&self) -> mongodb::error::Result<()> {
        self.collection
            .create_indexes([
                IndexModel::builder()
                    .keys(doc! { "video_id": 1, "parent_id": 1, "_id": -1 })
                    .build(),
                IndexModel::builder()
                    .keys(doc! { "parent_id": 1, "_id": 1 })
                    .build(),
                // A ban hides an author's comments; an erasure anonymises them.
                IndexModel::builder().keys(doc! { "author_id": 1 }).build(),
                IndexModel::builder()
                    .keys(doc! { "video_id": 1, "version": 1 })
                    .build(),
            ])
            .await?;
        Ok(())
    }

    pub async fn get(&self, id: CommentId) -> mongodb::error::Result<Option<CommentDoc>> {
        self.collection.find_one(doc! { "_id": id }).await
    }

    pub async fn insert(&self, comment: &CommentDoc) -> mongodb::error::Result<()> {
        self.collection.insert_one(comment).await?;
        Ok(())
    }

    pub async fn bump_replies(&self, parent: CommentId, by: i64) -> mongodb::error::Result<()> {
        self.collection
            .update_one(
                doc! { "_id": parent },
                doc! { "$inc": { "reply_count": by } },
            )
            .await?;
        Ok(())
    }

    /// Replaces the body of a live comment, holding it (`hold`) if the new text has a
    /// held word; None if it is gone or deleted.
    pub async fn edit(
        &self,
        id: CommentId,
        body: &str,
        hold: bool,
    ) -> mongodb::error::Result<Option<CommentDoc>> {
        let version = Uuid::now_v7().to_string();
        let mut set = doc! { "body": body, "edited_at": DateTime::now(), "version": version };
        if hold {
            set.insert("held", true);
        }
        self.collection
            .find_one_and_update(doc! { "_id": id, "deleted": false }, doc! { "$set": set })
            .with_options(
                FindOneAndUpdateOptions::builder()
                    .return_document(ReturnDocument::After)
                    .build(),
            )
            .await
    }

    /// Releases a held comment (its owner approved it) with a new version, so a
    /// `commentEvents` replay picks it up; None if it is not held (any more).
    pub async fn approve(&self, id: CommentId) -> mongodb::error::Result<Option<CommentDoc>> {
        let version = Uuid::now_v7().to_string();
        self.collection
            .find_one_and_update(
                doc! { "_id": id, "deleted": false, "held": true },
                doc! { "$set": { "held": false, "version": version } },
            )
            .with_options(
                FindOneAndUpdateOptions::builder()
                    .return_document(ReturnDocument::After)
                    .build(),
            )
            .await
    }

    /// Soft-deletes; the comment as deleted if this call deleted it (None if it already
    /// was, or is gone).
    pub async fn soft_delete(&self, id: CommentId) -> mongodb::error::Result<Option<CommentDoc>> {
        let version = Uuid::now_v7().to_string();
        self.collection
            .find_one_and_update(
                doc! { "_id": id, "deleted": false },
                doc! { "$set": {
                    "deleted": true, "body": "", "deleted_at": DateTime::now(), "version": version,
                } },
            )
            .with_options(
                FindOneAndUpdateOptions::builder()
                    .return_document(ReturnDocument::After)
                    .build(),
            )
            .await
    }

    /// Anonymises one live comment of `author` (an erased account): deleted, without text
    /// or author, in its place in the thread. The comment as anonymised, or None when the
    /// author has no live comment left. One at a time, so that each one's counters can
    /// follow it (crate::erasure).
    pub async fn anonymise_next(&self, author: Uuid) -> mongodb::error::Result<Option<CommentDoc>> {
        let version = Uuid::now_v7().to_string();
        self.collection
            .find_one_and_update(
                doc! { "author_id": author.to_string(), "deleted": false },
                doc! { "$set": {
                    "deleted": true, "body": "", "author_id": "", "deleted_at": DateTime::now(),
                    "version": version,
                } },
            )
            .with_options(
                FindOneAndUpdateOptions::builder()
                    .return_document(ReturnDocument::After)
                    .build(),
            )
            .await
    }

    /// Removes `author` from their comments that were already deleted (soft deletion
    /// keeps the author): after this no comment names them. Counters are not involved,
    /// deleted comments are not counted.
    pub async fn forget_author(&self, author: Uuid) -> mongodb::error::Result<u64> {
        let version = Uuid::now_v7().to_string();
        let updated = self
            .collection
            .update_many(
                doc! { "author_id": author.to_string(), "deleted": true },
                doc! { "$set": { "author_id": "", "body": "", "version": version } },
            )
            .await?;
        Ok(updated.modified_count)
    }

    /// Hides (or shows again) every comment of `author`: a ban, or its lifting. Idempotent.
    pub async fn set_author_hidden(
        &self,
        author: Uuid,
        hidden: bool,
    ) -> mongodb::error::Result<u64> {
        let updated = self
            .collection
            .update_many(
                doc! { "author_id": author.to_string(), "author_hidden": { "$ne": hidden } },
                doc! { "$set": { "author_hidden": hidden } },
            )
            .await?;
        Ok(updated.modified_count)
    }

    /// A video's comments (replies included) changed after `version`, in change order.
    pub async fn changed_since(
        &self,
        video: Uuid,
        version: &str,
        limit: i64,
    ) -> mongodb::error::Result<Vec<CommentDoc>> {
        self.collection
            .find(doc! {
                "video_id": video.to_string(),
                "version": { "$gt": version },
                "author_hidden": { "$ne": true },
                "held": { "$ne": true },
            })
            .sort(doc! { "version": 1 })
            .limit(limit)
            .await?
            .try_collect()
            .await
    }

    /// One page of a video's top-level comments, newest first.
    pub async fn top_level(
        &self,
        video: Uuid,
        audience: &ReadFilter,
        before: Option<CommentId>,
        limit: i64,
    ) -> mongodb::error::Result<Vec<CommentDoc>> {
        let mut filter = doc! { "video_id": video.to_string(), "parent_id": Bson::Null };
        read_filter(&mut filter, audience);
        if let Some(before) = before {
            filter.insert("_id", doc! { "$lt": before });
        }
        self.collection
            .find(filter)
            .sort(doc! { "_id": -1 })
            .limit(limit)
            .await?
            .try_collect()
            .await
    }

    /// One page of a comment's replies, oldest first.
    pub async fn replies(
        &self,
        parent: CommentId,
        audience: &ReadFilter,
        after: Option<CommentId>,
        limit: i64,
    ) -> mongodb::error::Result<Vec<CommentDoc>> {
        let mut filter = doc! { "parent_id": parent };
        read_filter(&mut filter, audience);
        if let Some(after) = after {
            filter.insert("_id", doc! { "$gt": after });
        }
        self.collection
            .find(filter)
            .sort(doc! { "_id": 1 })
            .limit(limit)
            .await?
            .try_collect()
            .await
    }

    /// Live (not deleted) comments per video, for the given videos.
    pub async fn live_counts(
        &self,
        videos: &[Uuid],
    ) -> mongodb::error::Result<std::collections::HashMap<Uuid, i64>> {
        let ids: Vec<String> = videos.iter().map(Uuid::to_string).collect();
        let pipeline = [
            doc! { "$match": {
                "video_id": { "$in": ids }, "deleted": false, "held": { "$ne": true },
            } },
            doc! { "$group": { "_id": "$video_id", "n": { "$sum": 1 } } },
        ];
        let mut counts = std::collections::HashMap::new();
        let mut cursor = self.collection.aggregate(pipeline).await?;
        while let Some(row) = cursor.try_next().await? {
            let video = row
                .get_str("_id")
                .ok()
                .and_then(|s| Uuid::parse_str(s).ok());
            let n = match row.get("n") {
                Some(Bson::Int32(n)) => i64::from(*n),
                Some(Bson::Int64(n)) => *n,
                Some(Bson::Double(n)) => *n as i64,
                _ => continue,
            };
            if let Some(video) = video {
                counts.insert(video, n);
            }
        }
        Ok(counts)
    }
}

/// A BSON timestamp (milliseconds) as `time`.
/// What one viewer may see of a list (crate::comments::rules::ReadFilter): never a
/// banned author's comments nor a blocked author's; held comments only when they are the
/// viewer's own or the viewer owns the video.
fn read_filter(filter: &mut Document, audience: &ReadFilter) {
    filter.insert("author_hidden", doc! { "$ne": true });
    if !audience.blocked.is_empty() {
        filter.insert("author_id", doc! { "$nin": &audience.blocked });
    }
    if !audience.owner {
        match audience.viewer {
            Some(me) => {
                filter.insert(
                    "$or",
                    vec![
                        doc! { "held": { "$ne": true } },
                        doc! { "author_id": me.to_string() },
                    ],
                );
            }
            None => {
                filter.insert("held", doc! { "$ne": true });
            }
        }
    }
}

pub fn to_time(at: DateTime) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp_nanos(at.timestamp_millis() as i128 * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}
