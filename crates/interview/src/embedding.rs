//! Local sentence embeddings (all-MiniLM-L6-v2) for judging how well an answer covers a
//! question's knowledge areas, with no network.
//!
//! The model is a 6-layer BERT run on the CPU with candle. Texts are tokenized with the
//! model's own `tokenizer.json`, the last hidden states are mean-pooled under the attention
//! mask and L2-normalised, which reproduces the Python sentence-transformers pipeline.
//! `scripts/setup` installs the three files this needs under `models/minilm/`.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::{Embedding, LayerNorm, Linear, Module, VarBuilder};
use serde::Deserialize;
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams, TruncationStrategy};

/// Longest input in tokens; the rest of a longer text is ignored. The shipped tokenizer says
/// 128, which would cut a long spoken answer short; the model's positions allow 512, and 256
/// keeps the cost of a rambling sentence bounded.
const MAX_TOKENS: usize = 256;

/// Files the embedder needs inside its model directory.
const CONFIG_FILE: &str = "config.json";
const TOKENIZER_FILE: &str = "tokenizer.json";
const WEIGHTS_FILE: &str = "model.safetensors";

/// Why the sentence-embedding model could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// A model file is not there (models are not committed; setup fetches them).
    #[error(
        "sentence-embedding model file {path} is missing: run scripts/setup to install models/minilm/"
    )]
    MissingFile {
        /// The file that was looked for.
        path: PathBuf,
    },
    /// A model file exists but could not be read.
    #[error("cannot read sentence-embedding model file {path}: {source}")]
    Read {
        /// The file that failed.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// `config.json` is not a BERT configuration this embedder can run.
    #[error("{path} is not a usable BERT configuration: {reason}; reinstall it with scripts/setup")]
    Config {
        /// The configuration file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// `tokenizer.json` could not be loaded or configured.
    #[error("tokenizer {path} could not be loaded: {reason}; reinstall it with scripts/setup")]
    Tokenizer {
        /// The tokenizer file.
        path: PathBuf,
        /// What the tokenizer library said.
        reason: String,
    },
    /// The weights do not match the layout the configuration describes.
    #[error(
        "weights in {path} do not match a BERT model: {source}; reinstall them with scripts/setup"
    )]
    Weights {
        /// The weights file.
        path: PathBuf,
        /// What candle said.
        source: candle_core::Error,
    },
    /// Turning a text into tokens failed.
    #[error("could not tokenize text for embedding: {reason}")]
    Tokenize {
        /// What the tokenizer library said.
        reason: String,
    },
    /// The forward pass failed (a bug or an exhausted machine, not bad input).
    #[error("sentence-embedding inference failed: {0}")]
    Inference(#[from] candle_core::Error),
}

/// A sentence's meaning as a unit-length vector: the cosine of two of them is their dot product.
#[derive(Debug, Clone, PartialEq)]
pub struct SentenceEmbedding(Vec<f32>);

impl SentenceEmbedding {
    /// Cosine similarity in [-1, 1]; 1 means the same meaning, around 0 unrelated.
    pub fn cosine(&self, other: &SentenceEmbedding) -> f32 {
        self.0.iter().zip(&other.0).map(|(a, b)| a * b).sum()
    }

    /// The vector's components.
    pub fn as_slice(&self) -> &[f32] {
        &self.0
    }
}

/// The parts of a Hugging Face BERT `config.json` this embedder uses.
#[derive(Debug, Deserialize)]
struct BertConfig {
    vocab_size: usize,
    hidden_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    intermediate_size: usize,
    max_position_embeddings: usize,
    type_vocab_size: usize,
    layer_norm_eps: f64,
    hidden_act: String,
}

/// A loaded all-MiniLM-L6-v2 (or any BERT sentence encoder with the same layout), shareable
/// across interviews.
pub struct Embedder {
    tokenizer: Tokenizer,
    bert: Bert,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder")
            .field("layers", &self.bert.layers.len())
            .finish_non_exhaustive()
    }
}

impl Embedder {
    /// Loads `config.json`, `tokenizer.json` and `model.safetensors` from `dir`
    /// (normally `models/minilm`).
    pub fn load(dir: &Path) -> Result<Embedder, EmbedError> {
        let config_path = existing(dir.join(CONFIG_FILE))?;
        let tokenizer_path = existing(dir.join(TOKENIZER_FILE))?;
        let weights_path = existing(dir.join(WEIGHTS_FILE))?;

        let config_text = read(&config_path)?;
        let config: BertConfig =
            serde_json::from_slice(&config_text).map_err(|e| EmbedError::Config {
                path: config_path.clone(),
                reason: e.to_string(),
            })?;
        if config.hidden_act != "gelu" {
            return Err(EmbedError::Config {
                path: config_path,
                reason: format!(
                    "hidden_act {:?} is not supported (only \"gelu\")",
                    config.hidden_act
                ),
            });
        }
        if config.num_attention_heads == 0
            || !config
                .hidden_size
                .is_multiple_of(config.num_attention_heads)
        {
            return Err(EmbedError::Config {
                path: config_path,
                reason: "hidden_size is not a multiple of num_attention_heads".into(),
            });
        }

        let tokenizer = load_tokenizer(&tokenizer_path, config.max_position_embeddings)?;

        let weights = read(&weights_path)?;
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &Device::Cpu).map_err(
            |source| EmbedError::Weights {
                path: weights_path.clone(),
                source,
            },
        )?;
        let bert = Bert::load(&config, vb).map_err(|source| EmbedError::Weights {
            path: weights_path,
            source,
        })?;
        Ok(Embedder { tokenizer, bert })
    }

    /// Embeds each text. Texts are run as one padded batch; an empty slice gives an empty result.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<SentenceEmbedding>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| EmbedError::Tokenize {
                reason: e.to_string(),
            })?;
        let batch = encodings.len();
        let len = encodings.first().map_or(0, |e| e.get_ids().len());
        let mut ids = Vec::with_capacity(batch * len);
        let mut types = Vec::with_capacity(batch * len);
        let mut mask = Vec::with_capacity(batch * len);
        for encoding in &encodings {
            ids.extend_from_slice(encoding.get_ids());
            types.extend_from_slice(encoding.get_type_ids());
            mask.extend(encoding.get_attention_mask().iter().map(|&m| m as f32));
        }
        let device = Device::Cpu;
        let ids = Tensor::from_vec(ids, (batch, len), &device)?;
        let types = Tensor::from_vec(types, (batch, len), &device)?;
        let mask = Tensor::from_vec(mask, (batch, len), &device)?;

        let hidden = self.bert.forward(&ids, &types, &mask)?;
        // Mean over real tokens only: padding must not pull short texts towards each other.
        let mask3 = mask.unsqueeze(2)?;
        let summed = hidden.broadcast_mul(&mask3)?.sum(1)?;
        let counts = mask3.sum(1)?.clamp(1e-9, f64::MAX)?;
        let mean = summed.broadcast_div(&counts)?;
        let norms = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
        let unit = mean.broadcast_div(&norms)?;
        Ok(unit
            .to_vec2::<f32>()?
            .into_iter()
            .map(SentenceEmbedding)
            .collect())
    }
}

fn existing(path: PathBuf) -> Result<PathBuf, EmbedError> {
    if path.is_file() {
        Ok(path)
    } else {
        Err(EmbedError::MissingFile { path })
    }
}

fn read(path: &Path) -> Result<Vec<u8>, EmbedError> {
    std::fs::read(path).map_err(|source| EmbedError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// The shipped tokenizer pads every input to 128 tokens and cuts there; pad to the longest
/// text of a batch instead (cheaper) and allow longer sentences.
fn load_tokenizer(path: &Path, max_positions: usize) -> Result<Tokenizer, EmbedError> {
    let fail = |reason: String| EmbedError::Tokenizer {
        path: path.to_path_buf(),
        reason,
    };
    let mut tokenizer = Tokenizer::from_file(path).map_err(|e| fail(e.to_string()))?;
    let padding = PaddingParams {
        strategy: PaddingStrategy::BatchLongest,
        ..tokenizer.get_padding().cloned().unwrap_or_default()
    };
    tokenizer.with_padding(Some(padding));
    tokenizer
        .with_truncation(Some(TruncationParams {
            max_length: MAX_TOKENS.min(max_positions),
            strategy: TruncationStrategy::LongestFirst,
            ..TruncationParams::default()
        }))
        .map_err(|e| fail(e.to_string()))?;
    Ok(tokenizer)
}

/// BERT encoder: embeddings and a stack of transformer layers (no pooler; pooling is ours).
struct Bert {
    word: Embedding,
    position: Embedding,
    token_type: Embedding,
    embed_norm: LayerNorm,
    layers: Vec<BertLayer>,
    heads: usize,
}

impl Bert {
    fn load(config: &BertConfig, vb: VarBuilder) -> candle_core::Result<Bert> {
        let h = config.hidden_size;
        let e = vb.pp("embeddings");
        let layers = (0..config.num_hidden_layers)
            .map(|i| BertLayer::load(config, vb.pp(format!("encoder.layer.{i}"))))
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Bert {
            word: candle_nn::embedding(config.vocab_size, h, e.pp("word_embeddings"))?,
            position: candle_nn::embedding(
                config.max_position_embeddings,
                h,
                e.pp("position_embeddings"),
            )?,
            token_type: candle_nn::embedding(
                config.type_vocab_size,
                h,
                e.pp("token_type_embeddings"),
            )?,
            embed_norm: candle_nn::layer_norm(h, config.layer_norm_eps, e.pp("LayerNorm"))?,
            layers,
            heads: config.num_attention_heads,
        })
    }

    /// `ids`, `types`: [batch, len] u32; `mask`: [batch, len] f32 (1 = real token).
    fn forward(&self, ids: &Tensor, types: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
        let (_, len) = ids.dims2()?;
        let positions = Tensor::arange(0u32, len as u32, ids.device())?;
        let x = self
            .word
            .forward(ids)?
            .add(&self.token_type.forward(types)?)?
            .broadcast_add(&self.position.forward(&positions)?)?;
        let mut x = self.embed_norm.forward(&x)?;
        // Padding positions get a large negative score so softmax gives them no weight.
        let bias = ((mask.ones_like()? - mask)? * -10_000.0)?
            .unsqueeze(1)?
            .unsqueeze(1)?;
        for layer in &self.layers {
            x = layer.forward(&x, &bias, self.heads)?;
        }
        Ok(x)
    }
}

struct BertLayer {
    query: Linear,
    key: Linear,
    value: Linear,
    attention_out: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
}

impl BertLayer {
    fn load(config: &BertConfig, vb: VarBuilder) -> candle_core::Result<BertLayer> {
        let h = config.hidden_size;
        let eps = config.layer_norm_eps;
        Ok(BertLayer {
            query: candle_nn::linear(h, h, vb.pp("attention.self.query"))?,
            key: candle_nn::linear(h, h, vb.pp("attention.self.key"))?,
            value: candle_nn::linear(h, h, vb.pp("attention.self.value"))?,
            attention_out: candle_nn::linear(h, h, vb.pp("attention.output.dense"))?,
            attention_norm: candle_nn::layer_norm(h, eps, vb.pp("attention.output.LayerNorm"))?,
            intermediate: candle_nn::linear(
                h,
                config.intermediate_size,
                vb.pp("intermediate.dense"),
            )?,
            output: candle_nn::linear(config.intermediate_size, h, vb.pp("output.dense"))?,
            output_norm: candle_nn::layer_norm(h, eps, vb.pp("output.LayerNorm"))?,
        })
    }

    fn forward(&self, x: &Tensor, bias: &Tensor, heads: usize) -> candle_core::Result<Tensor> {
        let (batch, len, hidden) = x.dims3()?;
        let head_dim = hidden / heads;
        let split = |t: Tensor| -> candle_core::Result<Tensor> {
            t.reshape((batch, len, heads, head_dim))?
                .transpose(1, 2)?
                .contiguous()
        };
        let q = split(self.query.forward(x)?)?;
        let k = split(self.key.forward(x)?)?;
        let v = split(self.value.forward(x)?)?;
        let scores =
            (q.matmul(&k.t()?.contiguous()?)? / (head_dim as f64).sqrt())?.broadcast_add(bias)?;
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let context = probs
            .matmul(&v)?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((batch, len, hidden))?;
        let attended = self
            .attention_norm
            .forward(&(self.attention_out.forward(&context)? + x)?)?;
        let inner = self.intermediate.forward(&attended)?.gelu_erf()?;
        self.output_norm
            .forward(&(self.output.forward(&inner)? + attended)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_model_tells_the_user_to_run_setup() {
        let err = Embedder::load(Path::new("/nonexistent/minilm")).unwrap_err();
        assert!(matches!(err, EmbedError::MissingFile { .. }));
        assert!(err.to_string().contains("scripts/setup"), "{err}");
    }
}
