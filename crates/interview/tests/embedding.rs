//! Sentence embeddings on the real model (`models/minilm`, installed by `scripts/setup`):
//! unit vectors that rank meaning, equal to an independent reference implementation's, and
//! the same whatever else is in the batch.

use std::sync::OnceLock;

use viva_interview::Embedder;
use viva_test_support::models::model;

/// The model, loaded once for all tests in this process.
fn embedder() -> &'static Embedder {
    static EMBEDDER: OnceLock<Embedder> = OnceLock::new();
    EMBEDDER.get_or_init(|| Embedder::load(&model("minilm")).unwrap_or_else(|err| panic!("{err}")))
}

#[test]
fn embeddings_are_unit_length_and_rank_meaning() {
    let e = embedder();
    let v = e
        .embed(&[
            "We cache hot rows in Redis and invalidate them when the row changes.",
            "Cache invalidation: evict the Redis entry on every write to the table.",
            "My favourite holiday was a week of hiking in the mountains.",
        ])
        .unwrap();
    assert_eq!(v.len(), 3);
    for x in &v {
        assert_eq!(x.as_slice().len(), 384);
        let norm: f32 = x.as_slice().iter().map(|a| a * a).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "norm {norm}");
    }
    let related = v[0].cosine(&v[1]);
    let unrelated = v[0].cosine(&v[2]);
    assert!(related > 0.5, "related {related}");
    assert!(unrelated < 0.2, "unrelated {unrelated}");
}

#[test]
fn matches_an_independent_reference_implementation() {
    // First components computed by a plain NumPy BERT over the same files and the
    // Python `tokenizers` package (mean pooling, L2 normalisation).
    let reference = [
        -0.065661, -0.041170, -0.091504, 0.051561, -0.038325, -0.038581, -0.007095, -0.113484,
    ];
    let v = embedder()
        .embed(&["We cache hot rows in Redis and invalidate them when the row changes."])
        .unwrap()
        .remove(0);
    for (got, want) in v.as_slice().iter().zip(reference) {
        assert!((got - want).abs() < 1e-4, "{got} vs {want}");
    }
}

#[test]
fn padding_in_a_batch_does_not_change_an_embedding() {
    let e = embedder();
    let short = "Indexes speed up reads.";
    let alone = e.embed(&[short]).unwrap().remove(0);
    let batched = e
        .embed(&[
            short,
            "A much longer sentence about composite indexes, query plans and the cost of writes.",
        ])
        .unwrap()
        .remove(0);
    assert!(
        alone.cosine(&batched) > 0.9999,
        "{}",
        alone.cosine(&batched)
    );
}

#[test]
fn same_text_gives_the_same_vector() {
    let e = embedder();
    let a = e.embed(&["Retries need exponential backoff."]).unwrap();
    let b = e.embed(&["Retries need exponential backoff."]).unwrap();
    assert_eq!(a, b);
}

#[test]
fn empty_input_gives_empty_output() {
    assert!(embedder().embed(&[]).unwrap().is_empty());
}
