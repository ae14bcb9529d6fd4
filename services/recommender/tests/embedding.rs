//! The in-process model agrees with sentence-transformers: the same sentences, embedded
//! with the same package's files by `fixtures/make_reference.py`, give vectors with
//! cosine similarity of at least 0.999 each (and unit length, 384 dimensions).

use recommender::embed::{DIMENSIONS, Model, dot};
use serde::Deserialize;

#[derive(Deserialize)]
struct Reference {
    sentences: Vec<Sentence>,
}

#[derive(Deserialize)]
struct Sentence {
    text: String,
    embedding: Vec<f32>,
}

/// The model directory from `RECOMMENDER_MODEL_DIR` (deploy/local/lib.sh exports it).
pub fn model() -> Model {
    let dir = std::env::var("RECOMMENDER_MODEL_DIR")
        .expect("RECOMMENDER_MODEL_DIR must name the model directory (source deploy/local/lib.sh)");
    Model::load(dir.as_ref(), "all-MiniLM-L6-v2", 256).expect("the model loads")
}

#[test]
fn embeddings_match_sentence_transformers() {
    let reference: Reference =
        serde_json::from_str(include_str!("fixtures/reference.json")).unwrap();
    let model = model();
    let texts: Vec<String> = reference.sentences.iter().map(|s| s.text.clone()).collect();
    let ours = model.embed(&texts).unwrap();
    assert_eq!(ours.len(), texts.len());
    let mut lowest = f32::MAX;
    for (sentence, vector) in reference.sentences.iter().zip(&ours) {
        assert_eq!(vector.len(), DIMENSIONS);
        assert!((dot(vector, vector) - 1.0).abs() < 1e-4, "unit length");
        let expected = &sentence.embedding;
        let cosine = dot(vector, expected) / dot(expected, expected).sqrt();
        assert!(
            cosine >= 0.999,
            "cosine {cosine} for {:?}",
            sentence.text.chars().take(40).collect::<String>()
        );
        lowest = lowest.min(cosine);
    }
    println!("lowest cosine to the reference: {lowest}");
}

#[test]
fn a_text_embeds_the_same_alone_and_in_a_padded_batch() {
    let model = model();
    let short = "Pasta".to_owned();
    let long =
        "A much longer title about football tactics and pressing in the modern game".to_owned();
    let alone = model.embed(std::slice::from_ref(&short)).unwrap();
    let batched = model.embed(&[long, short]).unwrap();
    assert!(
        dot(&alone[0], &batched[1]) > 0.9999,
        "padding is masked out"
    );
}
