//! Small-object and deletion helpers (the bucket belongs to this service and the
//! transcoder). Large objects (uploads, HLS delivery) stream elsewhere.

use aws_sdk_s3::{error::DisplayErrorContext, primitives::ByteStream};
use futures::StreamExt;

use crate::{Context, error::ApiError};

/// A small text object (a playlist), whole.
pub async fn get_text(ctx: &Context, key: &str) -> Result<String, ApiError> {
    let object = ctx
        .storage
        .client
        .get_object()
        .bucket(&ctx.storage.name)
        .key(key)
        .send()
        .await
        .map_err(ApiError::storage)?;
    let bytes = object
        .body
        .collect()
        .await
        .map_err(|e| ApiError::unavailable(anyhow::anyhow!(e)))?
        .into_bytes();
    String::from_utf8(bytes.to_vec()).map_err(|e| ApiError::unavailable(anyhow::anyhow!(e)))
}

/// Writes a small object whole.
pub async fn put(
    ctx: &Context,
    key: &str,
    body: String,
    content_type: &str,
) -> Result<(), ApiError> {
    ctx.storage
        .client
        .put_object()
        .bucket(&ctx.storage.name)
        .key(key)
        .content_type(content_type)
        .body(ByteStream::from(body.into_bytes()))
        .send()
        .await
        .map_err(ApiError::storage)?;
    Ok(())
}

/// Deletes every object under `prefix`. S3 deletes are idempotent, so a retry after a
/// partial failure is safe.
pub async fn delete_prefix(ctx: &Context, prefix: &str) -> Result<(), String> {
    let mut token = None;
    loop {
        let page = ctx
            .storage
            .client
            .list_objects_v2()
            .bucket(&ctx.storage.name)
            .prefix(prefix)
            .set_continuation_token(token.take())
            .send()
            .await
            .map_err(|e| DisplayErrorContext(e).to_string())?;
        let keys: Vec<String> = page
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_owned))
            .collect();
        delete_keys(ctx, keys).await?;
        match page.next_continuation_token() {
            Some(next) => token = Some(next.to_owned()),
            None => return Ok(()),
        }
    }
}

pub async fn delete_keys(ctx: &Context, keys: Vec<String>) -> Result<(), String> {
    let results: Vec<Result<(), String>> = futures::stream::iter(keys)
        .map(|key| async move {
            ctx.storage
                .client
                .delete_object()
                .bucket(&ctx.storage.name)
                .key(key)
                .send()
                .await
                .map(drop)
                .map_err(|e| DisplayErrorContext(e).to_string())
        })
        .buffer_unordered(8)
        .collect()
        .await;
    results.into_iter().collect()
}

/// Best effort: staged pieces nobody reads any more. A failure leaves garbage the
/// sweeper's purge of finished uploads removes later.
pub fn delete_keys_in_background(ctx: &Context, keys: Vec<String>) {
    if keys.is_empty() {
        return;
    }
    let ctx = ctx.clone();
    tokio::spawn(async move {
        if let Err(error) = delete_keys(&ctx, keys).await {
            tracing::warn!(%error, "could not delete staged pieces");
        }
    });
}

pub fn delete_prefix_in_background(ctx: &Context, prefix: String) {
    let ctx = ctx.clone();
    tokio::spawn(async move {
        if let Err(error) = delete_prefix(&ctx, &prefix).await {
            tracing::warn!(%error, prefix, "could not delete objects");
        }
    });
}
