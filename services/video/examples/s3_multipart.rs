//! Bench baseline (bench/video/run): a plain sequential multipart upload of a file
//! straight to S3, with the client, part size and server the video service uses, so the
//! service's upload throughput can be compared against it in the same run.
//!
//! Usage: `S3_BUCKET=… s3_multipart <file> <key> [part size, default 8 MiB]`; prints the
//! seconds the upload took. `S3_BUCKET=… s3_multipart --remove-bucket` empties and removes
//! the bench's bucket afterwards.

use std::time::Instant;

use aws_sdk_s3::{
    config::RequestChecksumCalculation,
    primitives::ByteStream,
    types::{CompletedMultipartUpload, CompletedPart},
};
use tokio::io::AsyncReadExt;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let config = platform::s3::S3Config::from_env()?;
    let client = platform::s3::client(&config);
    let client = aws_sdk_s3::Client::from_conf(
        client
            .config()
            .to_builder()
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .build(),
    );
    let first = args.next();
    if first.as_deref() == Some("--remove-bucket") {
        return remove_bucket(&client, &config.bucket).await;
    }
    let (Some(path), Some(key)) = (first, args.next()) else {
        anyhow::bail!("usage: s3_multipart <file> <key> [part size] | --remove-bucket");
    };
    let part_size: usize = args.next().map_or(Ok(8 << 20), |s| s.parse())?;
    platform::s3::ensure_bucket(&client, &config.bucket)
        .await
        .map_err(anyhow::Error::msg)?;

    let started = Instant::now();
    let mut file = tokio::fs::File::open(&path).await?;
    let upload = client
        .create_multipart_upload()
        .bucket(&config.bucket)
        .key(&key)
        .send()
        .await?;
    let upload_id = upload.upload_id().unwrap_or_default();
    let mut parts = Vec::new();
    for number in 1.. {
        let mut buf = Vec::with_capacity(part_size);
        (&mut file)
            .take(part_size as u64)
            .read_to_end(&mut buf)
            .await?;
        if buf.is_empty() {
            break;
        }
        let part = client
            .upload_part()
            .bucket(&config.bucket)
            .key(&key)
            .upload_id(upload_id)
            .part_number(number)
            .body(ByteStream::from(buf))
            .send()
            .await?;
        parts.push(
            CompletedPart::builder()
                .part_number(number)
                .e_tag(part.e_tag().unwrap_or_default())
                .build(),
        );
    }
    client
        .complete_multipart_upload()
        .bucket(&config.bucket)
        .key(&key)
        .upload_id(upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await?;
    println!("{:.3}", started.elapsed().as_secs_f64());
    Ok(())
}

async fn remove_bucket(client: &aws_sdk_s3::Client, bucket: &str) -> anyhow::Result<()> {
    loop {
        let Ok(page) = client.list_objects_v2().bucket(bucket).send().await else {
            return Ok(()); // no bucket
        };
        if page.contents().is_empty() {
            break;
        }
        for key in page.contents().iter().filter_map(|o| o.key()) {
            client
                .delete_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await?;
        }
    }
    client.delete_bucket().bucket(bucket).send().await?;
    Ok(())
}
