//! Converts a CTranslate2 Whisper model into the ggml file whisper.cpp loads.
//!
//! Offline tooling, run by `viva models convert` when `scripts/setup` installs a model; nothing
//! at run time needs it, so the speech crate carries none of it.
//!
//! The only Whisper weights we can fetch are CTranslate2 exports (`model.bin` plus
//! `vocabulary.txt`), while whisper.cpp reads the single-file ggml format written by its
//! `models/convert-pt-to-ggml.py`. The output of [`convert_ct2_to_ggml`] follows that script
//! exactly (same tensors, names, types and layout), so a converted model is byte-for-byte the
//! size of the official `ggml-*.bin` of the same model.
//!
//! Layout written, all little endian:
//! - `i32` magic `ggml`, then eleven `i32` hyperparameters (see [`WhisperHparams`]) ending with
//!   the weight type (1: float16);
//! - the mel filterbank: `i32 n_mels`, `i32 n_fft_bins`, then `n_mels * n_fft_bins` `f32`;
//! - the vocabulary: `i32` count, then per token `i32` length and its raw bytes;
//! - the tensors, each `i32 n_dims`, `i32 name_len`, `i32 type` (0 f32, 1 f16), the dims
//!   innermost first, the name, then the data.

mod mel;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use half::{bf16, f16};
use regex::Regex;

pub use crate::mel::MelFilterbank;

/// Weights file of a CTranslate2 model directory.
const MODEL_FILE: &str = "model.bin";
/// Token list of a CTranslate2 model directory, one GPT-2 byte-level token per line.
const VOCABULARY_FILE: &str = "vocabulary.txt";

/// CTranslate2 binary versions whose variable records all read `dtype id, byte count`. Older
/// versions predate Whisper support in CTranslate2; newer ones may change the layout.
const SUPPORTED_CT2_VERSIONS: RangeInclusive<u32> = 4..=6;
const WHISPER_SPEC: &str = "WhisperSpec";

/// `ggml` read as a little-endian i32, the first four bytes of every whisper.cpp model.
const GGML_MAGIC: i32 = 0x6767_6d6c;
/// The hyperparameter `ftype` of a model whose large weights are float16.
const GGML_FTYPE_MOSTLY_F16: i32 = 1;

/// The first special token: every line before it in `vocabulary.txt` is a regular
/// (byte-pair) token.
const END_OF_TEXT: &str = "<|endoftext|>";
/// whisper.cpp's test for a multilingual model (`n_vocab >= 51865`); English-only models have
/// one token fewer (no separate slot before `<|endoftext|>`).
const MULTILINGUAL_MIN_N_VOCAB: u32 = 51_865;
/// whisper.cpp looks these up with `std::map::at` while suppressing tokens; a vocabulary
/// without them makes it throw a C++ exception, which aborts a Rust process.
const TOKENS_WHISPER_CPP_REQUIRES: [&str; 3] = [" ", " -", " '"];

/// Whisper attention heads are 64 wide in every released size.
const WHISPER_HEAD_DIM: u64 = 64;
/// Widths of the released Whisper sizes (tiny, base, small, medium, large).
const WHISPER_WIDTHS: [u64; 5] = [384, 512, 768, 1024, 1280];

/// Read and write granularity for tensor data, so no tensor is ever held whole in memory.
const STREAM_CHUNK_ELEMENTS: usize = 64 * 1024;

/// Hyperparameters of a Whisper model, in the order whisper.cpp reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WhisperHparams {
    /// Rows of the token embedding: regular tokens plus special and timestamp tokens
    /// (51864 for English-only models, 51865 for multilingual ones).
    pub n_vocab: u32,
    /// Audio positions the encoder attends over (1500 for 30 s of audio).
    pub n_audio_ctx: u32,
    /// Encoder width.
    pub n_audio_state: u32,
    /// Encoder attention heads.
    pub n_audio_head: u32,
    /// Encoder blocks.
    pub n_audio_layer: u32,
    /// Text positions the decoder attends over (448).
    pub n_text_ctx: u32,
    /// Decoder width (always the encoder width in Whisper).
    pub n_text_state: u32,
    /// Decoder attention heads.
    pub n_text_head: u32,
    /// Decoder blocks.
    pub n_text_layer: u32,
    /// Mel bands of the input spectrogram (80, or 128 for large-v3).
    pub n_mels: u32,
}

/// What a successful conversion wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversionSummary {
    /// Hyperparameters written to the header (the weights are float16).
    pub hparams: WhisperHparams,
    /// Tokens written to the vocabulary section (50257 for the released models).
    pub vocabulary_tokens: usize,
    /// Tensors written.
    pub tensors: usize,
    /// Size of the ggml file.
    pub bytes_written: u64,
}

/// Why a model could not be converted. Every variant names the file concerned.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// A file the conversion needs is not there.
    #[error(
        "{path}: file not found; a CTranslate2 Whisper model directory holds {MODEL_FILE} and \
         {VOCABULARY_FILE} (unpack the model package there)"
    )]
    MissingFile {
        /// The missing file.
        path: PathBuf,
    },
    /// Reading or writing failed at the operating-system level.
    #[error("{path}: {source}")]
    Io {
        /// The file being read or written.
        path: PathBuf,
        /// The underlying failure.
        #[source]
        source: io::Error,
    },
    /// The model file ends in the middle of a record.
    #[error(
        "{path}: file ends early (while reading {what}); it is probably an incomplete \
         download, fetch the model again"
    )]
    Truncated {
        /// The model file.
        path: PathBuf,
        /// The record being read when the data ran out.
        what: String,
    },
    /// The model file was written by a CTranslate2 release whose format this converter does
    /// not know.
    #[error(
        "{path}: CTranslate2 binary version {found} is not supported (supported: {} to {}); \
         if this is a CTranslate2 model.bin, export it with a CTranslate2 release that writes \
         one of these, otherwise point the converter at a CTranslate2 model directory",
        SUPPORTED_CT2_VERSIONS.start(),
        SUPPORTED_CT2_VERSIONS.end()
    )]
    UnsupportedVersion {
        /// The model file.
        path: PathBuf,
        /// The version in its header.
        found: u32,
    },
    /// The model file holds a CTranslate2 model of another architecture.
    #[error("{path}: model spec is {found:?}, not {WHISPER_SPEC:?}; this is not a Whisper model")]
    NotWhisper {
        /// The model file.
        path: PathBuf,
        /// The spec name in its header.
        found: String,
    },
    /// The model file is internally inconsistent.
    #[error("{path}: corrupt model file: {problem}")]
    Corrupt {
        /// The model file.
        path: PathBuf,
        /// What is inconsistent.
        problem: String,
    },
    /// The model file holds a tensor that has no place in a float Whisper model.
    #[error(
        "{path}: unknown tensor {name:?}; only float16/float32/bfloat16 Whisper models can be \
         converted (quantized exports carry extra scale tensors)"
    )]
    UnknownTensor {
        /// The model file.
        path: PathBuf,
        /// The CTranslate2 variable name.
        name: String,
    },
    /// A tensor every Whisper model has is absent.
    #[error("{path}: tensor {name:?} is missing; the model export is incomplete")]
    MissingTensor {
        /// The model file.
        path: PathBuf,
        /// The CTranslate2 variable name.
        name: String,
    },
    /// A tensor's shape disagrees with the model's dimensions.
    #[error("{path}: tensor {name:?} has shape {found:?}, expected {expected:?}")]
    ShapeMismatch {
        /// The model file.
        path: PathBuf,
        /// The CTranslate2 variable name.
        name: String,
        /// The shape the rest of the model implies.
        expected: Vec<u64>,
        /// The shape in the file.
        found: Vec<u64>,
    },
    /// A weight is stored in a type whisper.cpp's float16 format cannot be made from.
    #[error(
        "{path}: tensor {name:?} is stored as {dtype}; convert a float16 or float32 export \
         instead (ct2 converters: --quantization float16)"
    )]
    UnsupportedDtype {
        /// The model file.
        path: PathBuf,
        /// The CTranslate2 variable name.
        name: String,
        /// The stored type.
        dtype: &'static str,
    },
    /// The model width matches no Whisper size and the file does not state its head count.
    #[error(
        "{path}: model width {n_state} is not a Whisper size ({WHISPER_WIDTHS:?}) and the file \
         has no num_heads entry, so the attention head count is unknown"
    )]
    UnknownModelWidth {
        /// The model file.
        path: PathBuf,
        /// The encoder width found.
        n_state: u64,
    },
    /// `vocabulary.txt` cannot be read as a GPT-2 byte-level token list.
    #[error("{path}: {problem}")]
    BadVocabulary {
        /// The vocabulary file.
        path: PathBuf,
        /// What is wrong, with the line number where there is one.
        problem: String,
    },
    /// The vocabulary lacks a token whisper.cpp cannot run without.
    #[error(
        "{path}: vocabulary has no {token:?} token, which whisper.cpp needs; this is not a \
         Whisper (GPT-2 byte-level) vocabulary"
    )]
    VocabularyMissingToken {
        /// The vocabulary file.
        path: PathBuf,
        /// The token that is missing.
        token: String,
    },
}

/// Converts the CTranslate2 Whisper model in `model_dir` (`model.bin`, float16/float32/bfloat16
/// weights, and `vocabulary.txt`) into a float16 ggml model at `out`.
///
/// The file is written under a temporary name next to `out` and renamed into place only when
/// complete, so an interrupted or failed run never leaves a partial model behind. Tensors are
/// streamed from the source file in small chunks.
pub fn convert_ct2_to_ggml(
    model_dir: &Path,
    out: &Path,
) -> Result<ConversionSummary, ConvertError> {
    let model_path = model_dir.join(MODEL_FILE);
    let vocabulary_path = model_dir.join(VOCABULARY_FILE);
    for path in [&model_path, &vocabulary_path] {
        if !path.is_file() {
            return Err(ConvertError::MissingFile { path: path.clone() });
        }
    }

    let model = Ct2Model::open(&model_path)?;
    let hparams = model.hparams()?;
    let tensors = plan_tensors(&model, &hparams)?;
    let english_only = hparams.n_vocab < MULTILINGUAL_MIN_N_VOCAB;
    let vocabulary = Vocabulary::load(&vocabulary_path, english_only)?;
    if vocabulary.tokens.len() > hparams.n_vocab as usize {
        return Err(ConvertError::BadVocabulary {
            path: vocabulary_path,
            problem: format!(
                "{} tokens, but the model's token embedding has only {} rows; the vocabulary \
                 belongs to another model",
                vocabulary.tokens.len(),
                hparams.n_vocab
            ),
        });
    }
    let filters = MelFilterbank::whisper(hparams.n_mels as usize);

    let partial = PartialFile::create(out)?;
    let mut writer = GgmlWriter {
        out: BufWriter::new(partial.file()?),
        path: partial.path.clone(),
        written: 0,
    };
    writer.header(&hparams)?;
    writer.mel_filters(&filters)?;
    writer.vocabulary(&vocabulary)?;
    let mut source = model.data_reader()?;
    for tensor in &tensors {
        writer.tensor(tensor, &mut source)?;
    }
    let bytes_written = writer.finish()?;
    partial.commit(out)?;

    tracing::info!(
        model = %model_dir.display(),
        out = %out.display(),
        bytes_written,
        tensors = tensors.len(),
        "converted CTranslate2 Whisper model to ggml"
    );
    Ok(ConversionSummary {
        hparams,
        vocabulary_tokens: vocabulary.tokens.len(),
        tensors: tensors.len(),
        bytes_written,
    })
}

// ---------------------------------------------------------------------------------------------
// CTranslate2 model.bin

/// Element types of CTranslate2 variables, by their id in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ct2Dtype {
    F32,
    I8,
    I16,
    I32,
    F16,
    Bf16,
}

impl Ct2Dtype {
    fn from_id(id: u8) -> Option<Self> {
        Some(match id {
            0 => Self::F32,
            1 => Self::I8,
            2 => Self::I16,
            3 => Self::I32,
            4 => Self::F16,
            5 => Self::Bf16,
            _ => return None,
        })
    }

    fn size(self) -> u64 {
        match self {
            Self::I8 => 1,
            Self::I16 | Self::F16 | Self::Bf16 => 2,
            Self::F32 | Self::I32 => 4,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::F32 => "float32",
            Self::I8 => "int8",
            Self::I16 => "int16",
            Self::I32 => "int32",
            Self::F16 => "float16",
            Self::Bf16 => "bfloat16",
        }
    }

    fn as_float(self) -> Option<FloatType> {
        match self {
            Self::F32 => Some(FloatType::F32),
            Self::F16 => Some(FloatType::F16),
            Self::Bf16 => Some(FloatType::Bf16),
            Self::I8 | Self::I16 | Self::I32 => None,
        }
    }
}

/// The CTranslate2 element types a float16 ggml model can be made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FloatType {
    F32,
    F16,
    Bf16,
}

impl FloatType {
    fn size(self) -> u64 {
        match self {
            Self::F16 | Self::Bf16 => 2,
            Self::F32 => 4,
        }
    }
}

/// Where one variable's data lies in `model.bin`.
#[derive(Debug)]
struct Ct2Variable {
    /// Shape, outermost first (row-major, as PyTorch and CTranslate2 store it).
    dims: Vec<u64>,
    dtype: Ct2Dtype,
    /// Byte offset of the data in the file.
    offset: u64,
}

/// The index of a CTranslate2 `model.bin`: every variable's shape, type and position, with the
/// data left on disk.
#[derive(Debug)]
struct Ct2Model {
    path: PathBuf,
    variables: BTreeMap<String, Ct2Variable>,
    /// Alias name -> the variable it shares data with.
    aliases: HashMap<String, String>,
}

impl Ct2Model {
    fn open(path: &Path) -> Result<Self, ConvertError> {
        let io_error = |source| ConvertError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io_error)?;
        let len = file.metadata().map_err(io_error)?.len();
        let mut reader = IndexReader {
            inner: BufReader::new(file),
            path,
            position: 0,
            len,
        };

        let version = reader.u32("the format version")?;
        if !SUPPORTED_CT2_VERSIONS.contains(&version) {
            return Err(ConvertError::UnsupportedVersion {
                path: path.to_path_buf(),
                found: version,
            });
        }
        let spec = reader.string("the spec name")?;
        if spec != WHISPER_SPEC {
            return Err(ConvertError::NotWhisper {
                path: path.to_path_buf(),
                found: spec,
            });
        }
        let _spec_revision = reader.u32("the spec revision")?;

        let n_variables = reader.u32("the variable count")?;
        let mut variables = BTreeMap::new();
        for index in 0..n_variables {
            let name = reader.string(&format!("the name of variable {index}"))?;
            let rank = reader.u8(&format!("the rank of {name}"))?;
            let dims = (0..rank)
                .map(|_| reader.u32(&format!("the shape of {name}")).map(u64::from))
                .collect::<Result<Vec<_>, _>>()?;
            let dtype_id = reader.u8(&format!("the type of {name}"))?;
            let dtype = Ct2Dtype::from_id(dtype_id)
                .ok_or_else(|| reader.corrupt(format!("{name} has unknown type id {dtype_id}")))?;
            let n_bytes = u64::from(reader.u32(&format!("the size of {name}"))?);
            let expected_bytes = dims
                .iter()
                .try_fold(dtype.size(), |acc, &d| acc.checked_mul(d))
                .ok_or_else(|| {
                    reader.corrupt(format!("{name} has an impossible shape {dims:?}"))
                })?;
            if n_bytes != expected_bytes {
                return Err(reader.corrupt(format!(
                    "{name} has shape {dims:?} of {} but {n_bytes} bytes of data",
                    dtype.name()
                )));
            }
            let offset = reader.position;
            reader.skip(n_bytes, &format!("the data of {name}"))?;
            variables.insert(
                name,
                Ct2Variable {
                    dims,
                    dtype,
                    offset,
                },
            );
        }

        let n_aliases = reader.u32("the alias count")?;
        let mut aliases = HashMap::new();
        for index in 0..n_aliases {
            let alias = reader.string(&format!("alias {index}"))?;
            let target = reader.string(&format!("the target of alias {alias}"))?;
            if !variables.contains_key(&target) {
                return Err(reader.corrupt(format!("alias {alias} points to unknown {target}")));
            }
            aliases.insert(alias, target);
        }

        Ok(Self {
            path: path.to_path_buf(),
            variables,
            aliases,
        })
    }

    /// A variable by name, following aliases.
    fn variable(&self, name: &str) -> Option<&Ct2Variable> {
        let name = self.aliases.get(name).map_or(name, String::as_str);
        self.variables.get(name)
    }

    /// The dims of a variable that must exist with the given rank.
    fn dims_of(&self, name: &str, rank: usize) -> Result<&[u64], ConvertError> {
        let variable = self
            .variable(name)
            .ok_or_else(|| ConvertError::MissingTensor {
                path: self.path.clone(),
                name: name.to_owned(),
            })?;
        if variable.dims.len() != rank {
            return Err(ConvertError::Corrupt {
                path: self.path.clone(),
                problem: format!(
                    "{name} has {} dimensions, expected {rank}",
                    variable.dims.len()
                ),
            });
        }
        Ok(&variable.dims)
    }

    /// An integer scalar (CTranslate2 stores model options such as `num_heads` this way).
    fn integer_scalar(&self, name: &str) -> Result<Option<u64>, ConvertError> {
        let Some(variable) = self.variable(name) else {
            return Ok(None);
        };
        if !variable.dims.is_empty() || variable.dtype.as_float().is_some() {
            return Err(ConvertError::Corrupt {
                path: self.path.clone(),
                problem: format!("{name} should be an integer scalar"),
            });
        }
        let mut bytes = [0u8; 4];
        let size = variable.dtype.size() as usize;
        let mut reader = self.data_reader()?;
        reader.read_at(variable.offset, &mut bytes[..size])?;
        let value = match variable.dtype {
            Ct2Dtype::I8 => i64::from(bytes[0] as i8),
            Ct2Dtype::I16 => i64::from(i16::from_le_bytes([bytes[0], bytes[1]])),
            _ => i64::from(i32::from_le_bytes(bytes)),
        };
        u64::try_from(value)
            .map(Some)
            .map_err(|_| ConvertError::Corrupt {
                path: self.path.clone(),
                problem: format!("{name} is negative ({value})"),
            })
    }

    /// Number of `{side}/layer_N/` blocks (side: encoder or decoder).
    fn layer_count(&self, side: &str) -> Result<u64, ConvertError> {
        // `layer_norm` shares the `layer_` prefix, so insist on digits and a slash.
        static BLOCK: LazyLock<Regex> = LazyLock::new(|| {
            Regex::new(r"^(encoder|decoder)/layer_(\d+)/").expect("a valid literal pattern")
        });
        let mut highest = None;
        for name in self.variables.keys() {
            let Some(captures) = BLOCK.captures(name) else {
                continue;
            };
            if &captures[1] == side {
                highest = highest.max(captures[2].parse::<u64>().ok());
            }
        }
        // Blocks are numbered from 0; a missing block in between surfaces as a missing tensor
        // when the blocks are mapped. No block at all: ask for block 0 so that is what the error
        // names.
        let Some(highest) = highest else {
            return Err(ConvertError::MissingTensor {
                path: self.path.clone(),
                name: format!("{side}/layer_0/"),
            });
        };
        Ok(highest + 1)
    }

    fn head_count(&self, side: &str, n_state: u64) -> Result<u64, ConvertError> {
        let name = format!("{side}/num_heads");
        let heads = match self.integer_scalar(&name)? {
            Some(heads) => heads,
            // Exports that do not record the head count: every released size uses 64-wide heads.
            None if WHISPER_WIDTHS.contains(&n_state) => n_state / WHISPER_HEAD_DIM,
            None => {
                return Err(ConvertError::UnknownModelWidth {
                    path: self.path.clone(),
                    n_state,
                });
            }
        };
        if heads == 0 || !n_state.is_multiple_of(heads) {
            return Err(ConvertError::Corrupt {
                path: self.path.clone(),
                problem: format!("{name} is {heads}, which does not divide the width {n_state}"),
            });
        }
        Ok(heads)
    }

    fn hparams(&self) -> Result<WhisperHparams, ConvertError> {
        let conv1 = self.dims_of("encoder/conv1/weight", 3)?;
        let (n_audio_state, n_mels) = (conv1[0], conv1[1]);
        let n_audio_ctx = self.dims_of("encoder/position_encodings/encodings", 2)?[0];
        let embeddings = self.dims_of("decoder/embeddings/weight", 2)?;
        let (n_vocab, n_text_state) = (embeddings[0], embeddings[1]);
        // whisper.cpp asserts this (an abort, not an error), so refuse it here.
        if n_text_state != n_audio_state {
            return Err(ConvertError::ShapeMismatch {
                path: self.path.clone(),
                name: "decoder/embeddings/weight".to_owned(),
                expected: vec![n_vocab, n_audio_state],
                found: embeddings.to_vec(),
            });
        }
        let n_text_ctx = self.dims_of("decoder/position_encodings/encodings", 2)?[0];

        let to_u32 = |value: u64, what: &str| {
            u32::try_from(value)
                .ok()
                .filter(|v| i32::try_from(*v).is_ok())
                .ok_or_else(|| ConvertError::Corrupt {
                    path: self.path.clone(),
                    problem: format!("{what} {value} is too large for a ggml model"),
                })
        };
        Ok(WhisperHparams {
            n_vocab: to_u32(n_vocab, "vocabulary size")?,
            n_audio_ctx: to_u32(n_audio_ctx, "audio context")?,
            n_audio_state: to_u32(n_audio_state, "width")?,
            n_audio_head: to_u32(self.head_count("encoder", n_audio_state)?, "head count")?,
            n_audio_layer: to_u32(self.layer_count("encoder")?, "layer count")?,
            n_text_ctx: to_u32(n_text_ctx, "text context")?,
            n_text_state: to_u32(n_text_state, "width")?,
            n_text_head: to_u32(self.head_count("decoder", n_text_state)?, "head count")?,
            n_text_layer: to_u32(self.layer_count("decoder")?, "layer count")?,
            n_mels: to_u32(n_mels, "mel band count")?,
        })
    }

    fn data_reader(&self) -> Result<DataReader<'_>, ConvertError> {
        let file = File::open(&self.path).map_err(|source| ConvertError::Io {
            path: self.path.clone(),
            source,
        })?;
        Ok(DataReader {
            file,
            path: &self.path,
        })
    }
}

/// Sequential reader of the `model.bin` header records.
struct IndexReader<'p> {
    inner: BufReader<File>,
    path: &'p Path,
    position: u64,
    len: u64,
}

impl IndexReader<'_> {
    fn corrupt(&self, problem: String) -> ConvertError {
        ConvertError::Corrupt {
            path: self.path.to_path_buf(),
            problem,
        }
    }

    fn truncated(&self, what: &str) -> ConvertError {
        ConvertError::Truncated {
            path: self.path.to_path_buf(),
            what: what.to_owned(),
        }
    }

    fn bytes(&mut self, buf: &mut [u8], what: &str) -> Result<(), ConvertError> {
        self.inner.read_exact(buf).map_err(|source| {
            if source.kind() == io::ErrorKind::UnexpectedEof {
                self.truncated(what)
            } else {
                ConvertError::Io {
                    path: self.path.to_path_buf(),
                    source,
                }
            }
        })?;
        self.position += buf.len() as u64;
        Ok(())
    }

    fn u8(&mut self, what: &str) -> Result<u8, ConvertError> {
        let mut buf = [0u8; 1];
        self.bytes(&mut buf, what)?;
        Ok(buf[0])
    }

    fn u16(&mut self, what: &str) -> Result<u16, ConvertError> {
        let mut buf = [0u8; 2];
        self.bytes(&mut buf, what)?;
        Ok(u16::from_le_bytes(buf))
    }

    fn u32(&mut self, what: &str) -> Result<u32, ConvertError> {
        let mut buf = [0u8; 4];
        self.bytes(&mut buf, what)?;
        Ok(u32::from_le_bytes(buf))
    }

    /// A `u16` length (counting a trailing NUL), the bytes, the NUL.
    fn string(&mut self, what: &str) -> Result<String, ConvertError> {
        let len = self.u16(what)?;
        let mut buf = vec![0u8; usize::from(len)];
        self.bytes(&mut buf, what)?;
        if buf.pop() != Some(0) {
            return Err(self.corrupt(format!("{what} is not NUL-terminated")));
        }
        String::from_utf8(buf).map_err(|_| self.corrupt(format!("{what} is not UTF-8")))
    }

    fn skip(&mut self, n_bytes: u64, what: &str) -> Result<(), ConvertError> {
        // Seeking past the end succeeds silently, so check against the length first.
        if self.len.saturating_sub(self.position) < n_bytes {
            return Err(self.truncated(what));
        }
        let offset = i64::try_from(n_bytes).map_err(|_| self.truncated(what))?;
        self.inner
            .seek_relative(offset)
            .map_err(|source| ConvertError::Io {
                path: self.path.to_path_buf(),
                source,
            })?;
        self.position += n_bytes;
        Ok(())
    }
}

/// Random-access reader of variable data in `model.bin`.
struct DataReader<'p> {
    file: File,
    path: &'p Path,
}

impl DataReader<'_> {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), ConvertError> {
        self.file
            .seek(SeekFrom::Start(offset))
            .and_then(|_| self.file.read_exact(buf))
            .map_err(|source| {
                if source.kind() == io::ErrorKind::UnexpectedEof {
                    ConvertError::Truncated {
                        path: self.path.to_path_buf(),
                        what: "tensor data (the file shrank during conversion)".to_owned(),
                    }
                } else {
                    ConvertError::Io {
                        path: self.path.to_path_buf(),
                        source,
                    }
                }
            })
    }
}

// ---------------------------------------------------------------------------------------------
// Mapping CTranslate2 variables onto whisper.cpp tensors

/// Element types of ggml tensors, by their id in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GgmlType {
    F32 = 0,
    F16 = 1,
}

/// One tensor of the output: a whisper.cpp name, a shape, and the run of elements of
/// `model.bin` it is made of.
#[derive(Debug)]
struct PlannedTensor {
    name: String,
    /// Outermost first, as PyTorch reports it.
    shape: Vec<u64>,
    ggml_type: GgmlType,
    source: TensorSource,
}

/// A run of float elements in `model.bin`: a whole variable, or a slice of a fused projection.
#[derive(Debug, Clone, Copy)]
struct TensorSource {
    /// Byte offset of the first element.
    offset: u64,
    dtype: FloatType,
}

impl PlannedTensor {
    fn n_elements(&self) -> u64 {
        self.shape.iter().product()
    }
}

/// Builds the tensor list, checking every source shape and that no variable is left over.
struct Planner<'m> {
    model: &'m Ct2Model,
    used: BTreeSet<String>,
    tensors: Vec<PlannedTensor>,
}

impl<'m> Planner<'m> {
    /// The variable `ct2_name`, which must have exactly `dims` and a float type.
    fn source(&mut self, ct2_name: &str, dims: &[u64]) -> Result<TensorSource, ConvertError> {
        let model = self.model;
        let variable = model
            .variable(ct2_name)
            .ok_or_else(|| ConvertError::MissingTensor {
                path: model.path.clone(),
                name: ct2_name.to_owned(),
            })?;
        if variable.dims != dims {
            return Err(ConvertError::ShapeMismatch {
                path: model.path.clone(),
                name: ct2_name.to_owned(),
                expected: dims.to_vec(),
                found: variable.dims.clone(),
            });
        }
        let dtype = variable
            .dtype
            .as_float()
            .ok_or_else(|| ConvertError::UnsupportedDtype {
                path: model.path.clone(),
                name: ct2_name.to_owned(),
                dtype: variable.dtype.name(),
            })?;
        let canonical = model.aliases.get(ct2_name).map_or(ct2_name, String::as_str);
        self.used.insert(canonical.to_owned());
        Ok(TensorSource {
            offset: variable.offset,
            dtype,
        })
    }

    fn push(&mut self, name: String, shape: Vec<u64>, source: TensorSource) {
        // convert-pt-to-ggml.py keeps vectors, the conv biases and the positional embeddings
        // in float32 and stores every other (matrix) weight as float16.
        let full_precision = shape.len() < 2
            || name.ends_with("conv1.bias")
            || name.ends_with("conv2.bias")
            || name.ends_with("positional_embedding");
        self.tensors.push(PlannedTensor {
            name,
            shape,
            ggml_type: if full_precision {
                GgmlType::F32
            } else {
                GgmlType::F16
            },
            source,
        });
    }

    /// A variable copied whole under a new name.
    fn whole(&mut self, name: &str, ct2_name: &str, dims: &[u64]) -> Result<(), ConvertError> {
        let source = self.source(ct2_name, dims)?;
        self.push(name.to_owned(), dims.to_vec(), source);
        Ok(())
    }

    /// Rows `first_row .. first_row + shape[0]` of a fused projection (q,k,v or k,v stacked
    /// along the output dimension), which are contiguous in row-major storage.
    fn rows(
        &mut self,
        name: &str,
        ct2_name: &str,
        ct2_dims: &[u64],
        first_row: u64,
        shape: &[u64],
    ) -> Result<(), ConvertError> {
        let whole = self.source(ct2_name, ct2_dims)?;
        let row_len: u64 = ct2_dims[1..].iter().product();
        let slice = TensorSource {
            offset: whole.offset + first_row * row_len * whole.dtype.size(),
            ..whole
        };
        self.push(name.to_owned(), shape.to_vec(), slice);
        Ok(())
    }

    /// `{ct2}/{gamma,beta}` -> `{name}.{weight,bias}`.
    fn layer_norm(&mut self, name: &str, ct2: &str, width: u64) -> Result<(), ConvertError> {
        self.whole(&format!("{name}.weight"), &format!("{ct2}/gamma"), &[width])?;
        self.whole(&format!("{name}.bias"), &format!("{ct2}/beta"), &[width])
    }

    /// `{ct2}/{weight,bias}` -> `{name}.{weight,bias}` for a `[n_out, n_in]` projection.
    fn linear(&mut self, name: &str, ct2: &str, n_out: u64, n_in: u64) -> Result<(), ConvertError> {
        self.whole(
            &format!("{name}.weight"),
            &format!("{ct2}/weight"),
            &[n_out, n_in],
        )?;
        self.whole(&format!("{name}.bias"), &format!("{ct2}/bias"), &[n_out])
    }

    /// The feed-forward part of a block, common to encoder and decoder.
    fn mlp(&mut self, block: &str, ct2_block: &str, width: u64) -> Result<(), ConvertError> {
        let ffn = format!("{ct2_block}/ffn");
        self.linear(
            &format!("{block}.mlp.0"),
            &format!("{ffn}/linear_0"),
            4 * width,
            width,
        )?;
        self.linear(
            &format!("{block}.mlp.2"),
            &format!("{ffn}/linear_1"),
            width,
            4 * width,
        )?;
        self.layer_norm(
            &format!("{block}.mlp_ln"),
            &format!("{ffn}/layer_norm"),
            width,
        )
    }

    /// Self-attention: CTranslate2 fuses query, key and value into one `[3D, D]` projection.
    /// Whisper's key projection has no bias; CTranslate2 fills that slot of the fused bias
    /// with zeros, and dropping it is exact anyway (a key bias adds the same score to every
    /// key of a query, which the softmax cancels).
    fn self_attention(&mut self, block: &str, ct2_block: &str, d: u64) -> Result<(), ConvertError> {
        let attn = format!("{block}.attn");
        let ct2 = format!("{ct2_block}/self_attention");
        let (fused_w, fused_b) = (
            format!("{ct2}/linear_0/weight"),
            format!("{ct2}/linear_0/bias"),
        );
        let fused_dims = [3 * d, d];
        self.rows(
            &format!("{attn}.query.weight"),
            &fused_w,
            &fused_dims,
            0,
            &[d, d],
        )?;
        self.rows(&format!("{attn}.query.bias"), &fused_b, &[3 * d], 0, &[d])?;
        self.rows(
            &format!("{attn}.key.weight"),
            &fused_w,
            &fused_dims,
            d,
            &[d, d],
        )?;
        self.rows(
            &format!("{attn}.value.weight"),
            &fused_w,
            &fused_dims,
            2 * d,
            &[d, d],
        )?;
        self.rows(
            &format!("{attn}.value.bias"),
            &fused_b,
            &[3 * d],
            2 * d,
            &[d],
        )?;
        self.linear(&format!("{attn}.out"), &format!("{ct2}/linear_1"), d, d)?;
        self.layer_norm(&format!("{block}.attn_ln"), &format!("{ct2}/layer_norm"), d)
    }

    /// Cross-attention: query on its own, key and value fused into one `[2D, D]` projection
    /// (key bias slot: see [`Planner::self_attention`]).
    fn cross_attention(
        &mut self,
        block: &str,
        ct2_block: &str,
        d: u64,
    ) -> Result<(), ConvertError> {
        let attn = format!("{block}.cross_attn");
        let ct2 = format!("{ct2_block}/attention");
        let (fused_w, fused_b) = (
            format!("{ct2}/linear_1/weight"),
            format!("{ct2}/linear_1/bias"),
        );
        let fused_dims = [2 * d, d];
        self.linear(&format!("{attn}.query"), &format!("{ct2}/linear_0"), d, d)?;
        self.rows(
            &format!("{attn}.key.weight"),
            &fused_w,
            &fused_dims,
            0,
            &[d, d],
        )?;
        self.rows(
            &format!("{attn}.value.weight"),
            &fused_w,
            &fused_dims,
            d,
            &[d, d],
        )?;
        self.rows(&format!("{attn}.value.bias"), &fused_b, &[2 * d], d, &[d])?;
        self.linear(&format!("{attn}.out"), &format!("{ct2}/linear_2"), d, d)?;
        self.layer_norm(
            &format!("{block}.cross_attn_ln"),
            &format!("{ct2}/layer_norm"),
            d,
        )
    }
}

/// The output tensors in PyTorch `state_dict` order (what convert-pt-to-ggml.py writes), each
/// mapped to its CTranslate2 source with the shape checked.
fn plan_tensors(model: &Ct2Model, hp: &WhisperHparams) -> Result<Vec<PlannedTensor>, ConvertError> {
    let mut plan = Planner {
        model,
        used: BTreeSet::new(),
        tensors: Vec::new(),
    };
    let d = u64::from(hp.n_audio_state);
    let n_mels = u64::from(hp.n_mels);

    plan.whole(
        "encoder.positional_embedding",
        "encoder/position_encodings/encodings",
        &[u64::from(hp.n_audio_ctx), d],
    )?;
    plan.whole(
        "encoder.conv1.weight",
        "encoder/conv1/weight",
        &[d, n_mels, 3],
    )?;
    // whisper.cpp adds the conv bias to a [time, channel] result, so it wants [n, 1].
    let conv1_bias = plan.source("encoder/conv1/bias", &[d])?;
    plan.push("encoder.conv1.bias".to_owned(), vec![d, 1], conv1_bias);
    plan.whole("encoder.conv2.weight", "encoder/conv2/weight", &[d, d, 3])?;
    let conv2_bias = plan.source("encoder/conv2/bias", &[d])?;
    plan.push("encoder.conv2.bias".to_owned(), vec![d, 1], conv2_bias);
    for layer in 0..hp.n_audio_layer {
        let (block, ct2_block) = (
            format!("encoder.blocks.{layer}"),
            format!("encoder/layer_{layer}"),
        );
        plan.self_attention(&block, &ct2_block, d)?;
        plan.mlp(&block, &ct2_block, d)?;
    }
    plan.layer_norm("encoder.ln_post", "encoder/layer_norm", d)?;

    plan.whole(
        "decoder.positional_embedding",
        "decoder/position_encodings/encodings",
        &[u64::from(hp.n_text_ctx), d],
    )?;
    plan.whole(
        "decoder.token_embedding.weight",
        "decoder/embeddings/weight",
        &[u64::from(hp.n_vocab), d],
    )?;
    for layer in 0..hp.n_text_layer {
        let (block, ct2_block) = (
            format!("decoder.blocks.{layer}"),
            format!("decoder/layer_{layer}"),
        );
        plan.self_attention(&block, &ct2_block, d)?;
        plan.cross_attention(&block, &ct2_block, d)?;
        plan.mlp(&block, &ct2_block, d)?;
    }
    plan.layer_norm("decoder.ln", "decoder/layer_norm", d)?;

    // Scalars are model options (activation, num_heads, pre_norm, ...); any tensor left over
    // means a model variant this mapping would silently get wrong.
    if let Some((name, _)) = model
        .variables
        .iter()
        .find(|(name, variable)| !variable.dims.is_empty() && !plan.used.contains(*name))
    {
        return Err(ConvertError::UnknownTensor {
            path: model.path.clone(),
            name: name.clone(),
        });
    }
    Ok(plan.tensors)
}

// ---------------------------------------------------------------------------------------------
// vocabulary.txt

/// The text tokens of a Whisper vocabulary as raw bytes, in id order: what the vocabulary
/// section of a ggml file holds.
///
/// The official ggml files were made from OpenAI's GPT-2 style `vocab.json`, which for
/// English-only models lists `<|endoftext|>` after the byte-pair tokens and for multilingual
/// models stops before it. Doing the same keeps converted files identical in layout (and size)
/// to the official ones; whisper.cpp names the remaining special tokens itself.
struct Vocabulary {
    tokens: Vec<Vec<u8>>,
}

impl Vocabulary {
    fn load(path: &Path, english_only: bool) -> Result<Self, ConvertError> {
        let bad = |problem: String| ConvertError::BadVocabulary {
            path: path.to_path_buf(),
            problem,
        };
        let text = fs::read(path).map_err(|source| ConvertError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let text = String::from_utf8(text).map_err(|e| {
            bad(format!(
                "not UTF-8 (byte {}); a CTranslate2 vocabulary.txt is UTF-8 text",
                e.utf8_error().valid_up_to()
            ))
        })?;

        let decoder = Gpt2ByteDecoder::new();
        let mut tokens = Vec::new();
        let mut found_end_of_text = false;
        for (index, line) in text.split('\n').enumerate() {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line == END_OF_TEXT {
                found_end_of_text = true;
                if english_only {
                    tokens.push(END_OF_TEXT.as_bytes().to_vec());
                }
                break;
            }
            let token = decoder.decode(line).map_err(|c| {
                bad(format!(
                    "line {}: token {line:?} contains {c:?}, which is not a GPT-2 byte-level \
                     character; this is not a Whisper vocabulary",
                    index + 1
                ))
            })?;
            tokens.push(token);
        }
        if !found_end_of_text {
            return Err(bad(format!(
                "no {END_OF_TEXT} line, so the regular tokens cannot be told from the special \
                 ones; this is not a Whisper vocabulary"
            )));
        }
        for required in TOKENS_WHISPER_CPP_REQUIRES {
            if !tokens.iter().any(|t| t == required.as_bytes()) {
                return Err(ConvertError::VocabularyMissingToken {
                    path: path.to_path_buf(),
                    token: required.to_owned(),
                });
            }
        }
        Ok(Self { tokens })
    }
}

/// The inverse of GPT-2's `bytes_to_unicode`: byte-level BPE vocabularies spell every byte as a
/// printable character (printable Latin-1 bytes as themselves, the other 68 bytes as U+0100
/// onwards, so a space is "Ġ" and a newline "Ċ").
struct Gpt2ByteDecoder {
    /// Indexed by code point; every character GPT-2 uses is below U+0144.
    bytes: [Option<u8>; 0x144],
}

impl Gpt2ByteDecoder {
    fn new() -> Self {
        let mut bytes = [None; 0x144];
        let mut next_remapped = 0x100;
        for byte in 0..=255u8 {
            let printable = matches!(byte, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
            let code = if printable {
                usize::from(byte)
            } else {
                next_remapped += 1;
                next_remapped - 1
            };
            bytes[code] = Some(byte);
        }
        Self { bytes }
    }

    /// The raw bytes of a token, or the first character that is not a byte spelling.
    fn decode(&self, token: &str) -> Result<Vec<u8>, char> {
        token
            .chars()
            .map(|c| self.bytes.get(c as usize).copied().flatten().ok_or(c))
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Writing

/// The output file under a temporary name beside its destination; removed unless committed.
struct PartialFile {
    path: PathBuf,
    committed: bool,
}

impl PartialFile {
    fn create(out: &Path) -> Result<Self, ConvertError> {
        let file_name = out.file_name().ok_or_else(|| ConvertError::Io {
            path: out.to_path_buf(),
            source: io::Error::new(io::ErrorKind::InvalidInput, "output path has no file name"),
        })?;
        let mut partial_name = std::ffi::OsString::from(".");
        partial_name.push(file_name);
        partial_name.push(format!(".partial-{}", std::process::id()));
        Ok(Self {
            path: out.with_file_name(partial_name),
            committed: false,
        })
    }

    fn file(&self) -> Result<File, ConvertError> {
        File::create(&self.path).map_err(|source| ConvertError::Io {
            path: self.path.clone(),
            source,
        })
    }

    fn commit(mut self, out: &Path) -> Result<(), ConvertError> {
        fs::rename(&self.path, out).map_err(|source| ConvertError::Io {
            path: out.to_path_buf(),
            source,
        })?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for PartialFile {
    fn drop(&mut self) {
        if !self.committed {
            // Best effort: the file may never have been created.
            let _ = fs::remove_file(&self.path);
        }
    }
}

struct GgmlWriter {
    out: BufWriter<File>,
    path: PathBuf,
    written: u64,
}

impl GgmlWriter {
    fn bytes(&mut self, bytes: &[u8]) -> Result<(), ConvertError> {
        self.out
            .write_all(bytes)
            .map_err(|source| ConvertError::Io {
                path: self.path.clone(),
                source,
            })?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn i32(&mut self, value: i32) -> Result<(), ConvertError> {
        self.bytes(&value.to_le_bytes())
    }

    /// A count or size as the `i32` the format uses.
    fn length(&mut self, value: u64, what: &str) -> Result<(), ConvertError> {
        let value = i32::try_from(value).map_err(|_| ConvertError::Io {
            path: self.path.clone(),
            source: io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{what} {value} does not fit the ggml format"),
            ),
        })?;
        self.i32(value)
    }

    fn header(&mut self, hp: &WhisperHparams) -> Result<(), ConvertError> {
        self.i32(GGML_MAGIC)?;
        for value in [
            hp.n_vocab,
            hp.n_audio_ctx,
            hp.n_audio_state,
            hp.n_audio_head,
            hp.n_audio_layer,
            hp.n_text_ctx,
            hp.n_text_state,
            hp.n_text_head,
            hp.n_text_layer,
            hp.n_mels,
        ] {
            self.length(u64::from(value), "hyperparameter")?;
        }
        self.i32(GGML_FTYPE_MOSTLY_F16)
    }

    fn mel_filters(&mut self, filters: &MelFilterbank) -> Result<(), ConvertError> {
        self.length(filters.n_mels() as u64, "mel band count")?;
        self.length(filters.n_fft_bins() as u64, "FFT bin count")?;
        let bytes: Vec<u8> = filters
            .weights()
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect();
        self.bytes(&bytes)
    }

    fn vocabulary(&mut self, vocabulary: &Vocabulary) -> Result<(), ConvertError> {
        self.length(vocabulary.tokens.len() as u64, "token count")?;
        for token in &vocabulary.tokens {
            self.length(token.len() as u64, "token length")?;
            self.bytes(token)?;
        }
        Ok(())
    }

    fn tensor(
        &mut self,
        tensor: &PlannedTensor,
        source: &mut DataReader,
    ) -> Result<(), ConvertError> {
        self.length(tensor.shape.len() as u64, "tensor rank")?;
        self.length(tensor.name.len() as u64, "tensor name length")?;
        self.i32(tensor.ggml_type as i32)?;
        // ggml lists dimensions innermost first.
        for &dim in tensor.shape.iter().rev() {
            self.length(dim, "tensor dimension")?;
        }
        self.bytes(tensor.name.as_bytes())?;

        let src_type = tensor.source.dtype;
        let src_size = src_type.size();
        let mut remaining = tensor.n_elements();
        let mut offset = tensor.source.offset;
        let mut raw = Vec::new();
        let mut converted = Vec::new();
        while remaining > 0 {
            let n = remaining.min(STREAM_CHUNK_ELEMENTS as u64);
            raw.resize((n * src_size) as usize, 0);
            source.read_at(offset, &mut raw)?;
            converted.clear();
            convert_elements(&raw, src_type, tensor.ggml_type, &mut converted);
            self.bytes(&converted)?;
            offset += n * src_size;
            remaining -= n;
        }
        Ok(())
    }

    /// Flushes and syncs the file so the rename that follows publishes complete data.
    fn finish(self) -> Result<u64, ConvertError> {
        let io_error = |source| ConvertError::Io {
            path: self.path.clone(),
            source,
        };
        let file = self
            .out
            .into_inner()
            .map_err(|e| io_error(e.into_error()))?;
        file.sync_all().map_err(io_error)?;
        Ok(self.written)
    }
}

/// Converts little-endian elements of type `from` into `to`, appending to `out`.
fn convert_elements(raw: &[u8], from: FloatType, to: GgmlType, out: &mut Vec<u8>) {
    match (from, to) {
        (FloatType::F16, GgmlType::F16) | (FloatType::F32, GgmlType::F32) => {
            out.extend_from_slice(raw)
        }
        _ => {
            // Each chunk is exactly one element of `from`, so the indexing is in bounds.
            let decode: fn(&[u8]) -> f32 = match from {
                FloatType::F16 => |b| f16::from_le_bytes([b[0], b[1]]).to_f32(),
                FloatType::Bf16 => |b| bf16::from_le_bytes([b[0], b[1]]).to_f32(),
                FloatType::F32 => |b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            };
            let values = raw.chunks_exact(from.size() as usize).map(decode);
            match to {
                GgmlType::F32 => values.for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
                GgmlType::F16 => {
                    values.for_each(|v| out.extend_from_slice(&f16::from_f32(v).to_le_bytes()))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory under the system temp dir, removed on drop.
    struct ScratchDir(PathBuf);

    impl ScratchDir {
        fn new(label: &str) -> Self {
            let path = std::env::temp_dir()
                .join(format!("viva-convert-test-{label}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&path);
            fs::create_dir_all(&path).unwrap();
            Self(path)
        }

        fn entries(&self) -> BTreeSet<String> {
            fs::read_dir(&self.0)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        }
    }

    impl Drop for ScratchDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    const CT2_F32: u8 = 0;
    const CT2_I8: u8 = 1;
    const CT2_I16: u8 = 2;
    const CT2_F16: u8 = 4;

    /// One variable of a synthetic `model.bin`.
    #[derive(Clone)]
    struct Var {
        name: String,
        dims: Vec<u32>,
        dtype: u8,
        data: Vec<u8>,
    }

    /// Element `i` of the variable numbered `seed`: integers below 2048 are exact in float16,
    /// and the prime period makes the q/k/v slices of a fused projection differ.
    fn synthetic_value(seed: usize, i: usize) -> f32 {
        ((seed * 131 + i) % 2039) as f32
    }

    /// A small Whisper-shaped CTranslate2 model: the variables CTranslate2's Whisper export
    /// writes, with the same names, shapes and option scalars.
    struct SyntheticWhisper {
        width: u32,
        n_mels: u32,
        audio_ctx: u32,
        text_ctx: u32,
        n_vocab: u32,
        layers: u32,
        /// `num_heads` scalars; old exports lack them.
        heads: Option<i16>,
        /// CTranslate2 type id of the weights.
        dtype: u8,
    }

    impl SyntheticWhisper {
        fn small() -> Self {
            Self {
                width: 64,
                n_mels: 80,
                audio_ctx: 6,
                text_ctx: 5,
                n_vocab: 12,
                layers: 2,
                heads: Some(1),
                dtype: CT2_F16,
            }
        }

        fn variables(&self) -> Vec<Var> {
            let (d, mut vars) = (self.width, Vec::new());
            let mut float = |name: String, dims: &[u32]| {
                let seed = vars.len();
                let n: u32 = dims.iter().product();
                let data = (0..n as usize)
                    .flat_map(|i| {
                        let v = synthetic_value(seed, i);
                        match self.dtype {
                            CT2_F32 => v.to_le_bytes().to_vec(),
                            _ => f16::from_f32(v).to_le_bytes().to_vec(),
                        }
                    })
                    .collect();
                vars.push(Var {
                    name,
                    dims: dims.to_vec(),
                    dtype: self.dtype,
                    data,
                });
            };
            let layer_norm = |float: &mut dyn FnMut(String, &[u32]), scope: &str| {
                float(format!("{scope}/layer_norm/gamma"), &[d]);
                float(format!("{scope}/layer_norm/beta"), &[d]);
            };
            let linear = |float: &mut dyn FnMut(String, &[u32]), scope: &str, n_out: u32, n_in| {
                float(format!("{scope}/weight"), &[n_out, n_in]);
                float(format!("{scope}/bias"), &[n_out]);
            };

            float("encoder/conv1/weight".into(), &[d, self.n_mels, 3]);
            float("encoder/conv1/bias".into(), &[d]);
            float("encoder/conv2/weight".into(), &[d, d, 3]);
            float("encoder/conv2/bias".into(), &[d]);
            float(
                "encoder/position_encodings/encodings".into(),
                &[self.audio_ctx, d],
            );
            for side in ["encoder", "decoder"] {
                for layer in 0..self.layers {
                    let block = format!("{side}/layer_{layer}");
                    let attn = format!("{block}/self_attention");
                    layer_norm(&mut float, &attn);
                    linear(&mut float, &format!("{attn}/linear_0"), 3 * d, d);
                    linear(&mut float, &format!("{attn}/linear_1"), d, d);
                    if side == "decoder" {
                        let cross = format!("{block}/attention");
                        layer_norm(&mut float, &cross);
                        linear(&mut float, &format!("{cross}/linear_0"), d, d);
                        linear(&mut float, &format!("{cross}/linear_1"), 2 * d, d);
                        linear(&mut float, &format!("{cross}/linear_2"), d, d);
                    }
                    let ffn = format!("{block}/ffn");
                    layer_norm(&mut float, &ffn);
                    linear(&mut float, &format!("{ffn}/linear_0"), 4 * d, d);
                    linear(&mut float, &format!("{ffn}/linear_1"), d, 4 * d);
                }
                layer_norm(&mut float, side);
            }
            float("decoder/embeddings/weight".into(), &[self.n_vocab, d]);
            float(
                "decoder/position_encodings/encodings".into(),
                &[self.text_ctx, d],
            );

            let scalar = |name: &str, dtype: u8, data: Vec<u8>| Var {
                name: name.into(),
                dims: vec![],
                dtype,
                data,
            };
            vars.push(scalar("decoder/activation", CT2_I8, vec![1]));
            vars.push(scalar("decoder/pre_norm", CT2_I8, vec![1]));
            if let Some(heads) = self.heads {
                for side in ["encoder", "decoder"] {
                    let name = format!("{side}/num_heads");
                    vars.push(scalar(&name, CT2_I16, heads.to_le_bytes().to_vec()));
                }
            }
            vars
        }
    }

    const PROJECTION_ALIAS: (&str, &str) =
        ("decoder/projection/weight", "decoder/embeddings/weight");

    fn model_bin(version: u32, vars: &[Var], aliases: &[(&str, &str)]) -> Vec<u8> {
        fn string(out: &mut Vec<u8>, s: &str) {
            out.extend_from_slice(&(s.len() as u16 + 1).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
            out.push(0);
        }
        let mut out = version.to_le_bytes().to_vec();
        string(&mut out, WHISPER_SPEC);
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&(vars.len() as u32).to_le_bytes());
        for var in vars {
            string(&mut out, &var.name);
            out.push(var.dims.len() as u8);
            for dim in &var.dims {
                out.extend_from_slice(&dim.to_le_bytes());
            }
            out.push(var.dtype);
            out.extend_from_slice(&(var.data.len() as u32).to_le_bytes());
            out.extend_from_slice(&var.data);
        }
        out.extend_from_slice(&(aliases.len() as u32).to_le_bytes());
        for (alias, target) in aliases {
            string(&mut out, alias);
            string(&mut out, target);
        }
        out
    }

    /// GPT-2 byte-level spellings, as CTranslate2 writes them: "Ġ" is a space, "Ċ" a newline,
    /// "Ã©" the two UTF-8 bytes of "é".
    const VOCABULARY: [&str; 9] = [
        "!",
        "Ġthe",
        "Ċ",
        "Ġ",
        "Ġ-",
        "Ġ'",
        "Ã©",
        "<|endoftext|>",
        "<|startoftranscript|>",
    ];

    fn write_model_dir(dir: &Path, model: &[u8], vocabulary: &[&str]) {
        fs::write(dir.join(MODEL_FILE), model).unwrap();
        fs::write(dir.join(VOCABULARY_FILE), vocabulary.join("\n") + "\n").unwrap();
    }

    /// A parsed ggml file, read independently of the writer.
    struct GgmlFile {
        magic: i32,
        hparams: [i32; 11],
        mel_shape: (i32, i32),
        mel: Vec<f32>,
        vocabulary: Vec<Vec<u8>>,
        tensors: Vec<GgmlTensor>,
    }

    struct GgmlTensor {
        name: String,
        ne: Vec<i32>,
        ftype: i32,
        data: Vec<u8>,
    }

    impl GgmlTensor {
        fn values(&self) -> Vec<f32> {
            match self.ftype {
                0 => self
                    .data
                    .chunks(4)
                    .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                    .collect(),
                1 => self
                    .data
                    .chunks(2)
                    .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
                    .collect(),
                other => panic!("unexpected ftype {other}"),
            }
        }
    }

    struct Cursor<'a> {
        bytes: &'a [u8],
        pos: usize,
    }

    impl<'a> Cursor<'a> {
        fn take(&mut self, n: usize) -> &'a [u8] {
            let slice = &self.bytes[self.pos..self.pos + n];
            self.pos += n;
            slice
        }

        fn i32(&mut self) -> i32 {
            i32::from_le_bytes(self.take(4).try_into().unwrap())
        }
    }

    fn parse_ggml(bytes: &[u8]) -> GgmlFile {
        let mut c = Cursor { bytes, pos: 0 };
        let magic = c.i32();
        let hparams: [i32; 11] = std::array::from_fn(|_| c.i32());
        let mel_shape = (c.i32(), c.i32());
        let mel = (0..mel_shape.0 * mel_shape.1)
            .map(|_| f32::from_le_bytes(c.take(4).try_into().unwrap()))
            .collect();
        let n_tokens = c.i32();
        let vocabulary = (0..n_tokens)
            .map(|_| {
                let len = c.i32() as usize;
                c.take(len).to_vec()
            })
            .collect();
        let mut tensors = Vec::new();
        while c.pos < bytes.len() {
            let (n_dims, name_len, ftype) = (c.i32(), c.i32(), c.i32());
            let ne: Vec<i32> = (0..n_dims).map(|_| c.i32()).collect();
            let name = String::from_utf8(c.take(name_len as usize).to_vec()).unwrap();
            let element_size = if ftype == 0 { 4 } else { 2 };
            let n: i32 = ne.iter().product();
            let data = c.take(n as usize * element_size).to_vec();
            tensors.push(GgmlTensor {
                name,
                ne,
                ftype,
                data,
            });
        }
        GgmlFile {
            magic,
            hparams,
            mel_shape,
            mel,
            vocabulary,
            tensors,
        }
    }

    /// Converts `model` (with the standard test vocabulary unless given) in a fresh directory.
    fn convert(
        label: &str,
        model: &[u8],
        vocabulary: Option<&[&str]>,
    ) -> (ScratchDir, Result<ConversionSummary, ConvertError>) {
        let dir = ScratchDir::new(label);
        write_model_dir(&dir.0, model, vocabulary.unwrap_or(&VOCABULARY));
        let result = convert_ct2_to_ggml(&dir.0, &dir.0.join("ggml.bin"));
        (dir, result)
    }

    fn source_values(vars: &[Var], name: &str) -> Vec<f32> {
        let var = vars.iter().find(|v| v.name == name).unwrap();
        match var.dtype {
            CT2_F32 => var
                .data
                .chunks(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                .collect(),
            _ => var
                .data
                .chunks(2)
                .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
        }
    }

    #[test]
    fn synthetic_model_round_trips() {
        let spec = SyntheticWhisper::small();
        let vars = spec.variables();
        let (dir, result) = convert(
            "round-trip",
            &model_bin(6, &vars, &[PROJECTION_ALIAS]),
            None,
        );
        let summary = result.unwrap();
        let out = dir.0.join("ggml.bin");
        let bytes = fs::read(&out).unwrap();
        assert_eq!(summary.bytes_written, bytes.len() as u64);
        assert_eq!(
            dir.entries(),
            [MODEL_FILE, VOCABULARY_FILE, "ggml.bin"]
                .map(String::from)
                .into()
        );

        let ggml = parse_ggml(&bytes);
        assert_eq!(ggml.magic, 0x6767_6d6c);
        // n_vocab, audio ctx/state/head/layer, text ctx/state/head/layer, n_mels, ftype f16.
        assert_eq!(ggml.hparams, [12, 6, 64, 1, 2, 5, 64, 1, 2, 80, 1]);
        let expected_hparams = WhisperHparams {
            n_vocab: 12,
            n_audio_ctx: 6,
            n_audio_state: 64,
            n_audio_head: 1,
            n_audio_layer: 2,
            n_text_ctx: 5,
            n_text_state: 64,
            n_text_head: 1,
            n_text_layer: 2,
            n_mels: 80,
        };
        assert_eq!(summary.hparams, expected_hparams);

        assert_eq!(ggml.mel_shape, (80, 201));
        assert_eq!(ggml.mel, MelFilterbank::whisper(80).weights());

        // English-only (n_vocab < 51865): the regular tokens, then <|endoftext|>, decoded
        // from GPT-2 byte spellings to raw bytes.
        let expected_vocabulary: Vec<&[u8]> = vec![
            b"!",
            b" the",
            b"\n",
            b" ",
            b" -",
            b" '",
            "é".as_bytes(),
            b"<|endoftext|>",
        ];
        assert_eq!(ggml.vocabulary, expected_vocabulary);
        assert_eq!(summary.vocabulary_tokens, 8);

        // 11 model-level tensors, 15 per encoder block, 24 per decoder block.
        assert_eq!(ggml.tensors.len(), 11 + 15 * 2 + 24 * 2);
        assert_eq!(summary.tensors, ggml.tensors.len());
        let names: BTreeSet<&str> = ggml.tensors.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names.len(), ggml.tensors.len(), "tensor names are unique");
        let tensor = |name: &str| {
            ggml.tensors
                .iter()
                .find(|t| t.name == name)
                .unwrap_or_else(|| panic!("no tensor {name}"))
        };
        for layer in 0..2 {
            for side in ["encoder", "decoder"] {
                for suffix in [
                    "attn_ln.weight",
                    "attn_ln.bias",
                    "attn.query.weight",
                    "attn.query.bias",
                    "attn.key.weight",
                    "attn.value.weight",
                    "attn.value.bias",
                    "attn.out.weight",
                    "attn.out.bias",
                    "mlp_ln.weight",
                    "mlp_ln.bias",
                    "mlp.0.weight",
                    "mlp.0.bias",
                    "mlp.2.weight",
                    "mlp.2.bias",
                ] {
                    tensor(&format!("{side}.blocks.{layer}.{suffix}"));
                }
            }
            for suffix in [
                "query.weight",
                "query.bias",
                "key.weight",
                "value.weight",
                "value.bias",
            ] {
                tensor(&format!("decoder.blocks.{layer}.cross_attn.{suffix}"));
            }
            assert!(!names.contains(format!("encoder.blocks.{layer}.attn.key.bias").as_str()));
        }

        // ggml dims are innermost first; vectors, conv biases and positional embeddings are
        // f32, matrices f16.
        let shape = |name: &str| (tensor(name).ne.clone(), tensor(name).ftype);
        assert_eq!(shape("encoder.conv1.weight"), (vec![3, 80, 64], 1));
        assert_eq!(shape("encoder.conv1.bias"), (vec![1, 64], 0));
        assert_eq!(shape("encoder.conv2.bias"), (vec![1, 64], 0));
        assert_eq!(shape("encoder.positional_embedding"), (vec![64, 6], 0));
        assert_eq!(shape("decoder.positional_embedding"), (vec![64, 5], 0));
        assert_eq!(shape("decoder.token_embedding.weight"), (vec![64, 12], 1));
        assert_eq!(shape("encoder.blocks.1.mlp.0.weight"), (vec![64, 256], 1));
        assert_eq!(shape("encoder.blocks.1.mlp.0.bias"), (vec![256], 0));
        assert_eq!(
            shape("decoder.blocks.0.cross_attn.key.weight"),
            (vec![64, 64], 1)
        );
        assert_eq!(shape("decoder.ln.weight"), (vec![64], 0));
        assert_eq!(shape("encoder.ln_post.bias"), (vec![64], 0));

        // Fused projections are split by rows: q | k | v, and k | v for cross-attention.
        let d = 64;
        let qkv = source_values(&vars, "encoder/layer_1/self_attention/linear_0/weight");
        assert_eq!(
            tensor("encoder.blocks.1.attn.query.weight").values(),
            qkv[..d * d]
        );
        assert_eq!(
            tensor("encoder.blocks.1.attn.key.weight").values(),
            qkv[d * d..2 * d * d]
        );
        assert_eq!(
            tensor("encoder.blocks.1.attn.value.weight").values(),
            qkv[2 * d * d..]
        );
        let qkv_bias = source_values(&vars, "decoder/layer_0/self_attention/linear_0/bias");
        assert_eq!(
            tensor("decoder.blocks.0.attn.query.bias").values(),
            qkv_bias[..d]
        );
        assert_eq!(
            tensor("decoder.blocks.0.attn.value.bias").values(),
            qkv_bias[2 * d..]
        );
        let kv = source_values(&vars, "decoder/layer_1/attention/linear_1/weight");
        assert_eq!(
            tensor("decoder.blocks.1.cross_attn.key.weight").values(),
            kv[..d * d]
        );
        assert_eq!(
            tensor("decoder.blocks.1.cross_attn.value.weight").values(),
            kv[d * d..]
        );
        let kv_bias = source_values(&vars, "decoder/layer_1/attention/linear_1/bias");
        assert_eq!(
            tensor("decoder.blocks.1.cross_attn.value.bias").values(),
            kv_bias[d..]
        );
        for (ggml_name, ct2_name) in [
            ("encoder.conv2.bias", "encoder/conv2/bias"),
            (
                "encoder.positional_embedding",
                "encoder/position_encodings/encodings",
            ),
            (
                "decoder.token_embedding.weight",
                "decoder/embeddings/weight",
            ),
            (
                "decoder.blocks.1.cross_attn.out.weight",
                "decoder/layer_1/attention/linear_2/weight",
            ),
            (
                "decoder.blocks.0.cross_attn_ln.bias",
                "decoder/layer_0/attention/layer_norm/beta",
            ),
            (
                "encoder.blocks.0.attn_ln.weight",
                "encoder/layer_0/self_attention/layer_norm/gamma",
            ),
            (
                "encoder.blocks.0.mlp.2.weight",
                "encoder/layer_0/ffn/linear_1/weight",
            ),
            ("decoder.ln.bias", "decoder/layer_norm/beta"),
        ] {
            assert_eq!(
                tensor(ggml_name).values(),
                source_values(&vars, ct2_name),
                "{ggml_name}"
            );
        }
    }

    #[test]
    fn float32_export_converts_to_the_same_file_as_float16() {
        let mut spec = SyntheticWhisper::small();
        let (f16_dir, f16_result) = convert("f16", &model_bin(6, &spec.variables(), &[]), None);
        spec.dtype = CT2_F32;
        let (f32_dir, f32_result) = convert("f32", &model_bin(6, &spec.variables(), &[]), None);
        f16_result.unwrap();
        f32_result.unwrap();
        let f16_bytes = fs::read(f16_dir.0.join("ggml.bin")).unwrap();
        assert!(f16_bytes == fs::read(f32_dir.0.join("ggml.bin")).unwrap());
    }

    #[test]
    fn bfloat16_and_float32_elements_convert_to_float16() {
        let values = [0.0f32, 1.5, -2.25, 1024.0];
        let bf16_raw: Vec<u8> = values
            .iter()
            .flat_map(|v| bf16::from_f32(*v).to_le_bytes())
            .collect();
        let f32_raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let expected: Vec<u8> = values
            .iter()
            .flat_map(|v| f16::from_f32(*v).to_le_bytes())
            .collect();
        for (raw, from) in [(bf16_raw, FloatType::Bf16), (f32_raw, FloatType::F32)] {
            let mut out = Vec::new();
            convert_elements(&raw, from, GgmlType::F16, &mut out);
            assert_eq!(out, expected, "{from:?}");
        }
        let mut out = Vec::new();
        convert_elements(&expected, FloatType::F16, GgmlType::F32, &mut out);
        let widened: Vec<f32> = out
            .chunks(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        assert_eq!(widened, values);
    }

    #[test]
    fn gpt2_byte_decoder_inverts_bytes_to_unicode() {
        let decoder = Gpt2ByteDecoder::new();
        assert_eq!(decoder.decode("Ġthe"), Ok(b" the".to_vec()));
        assert_eq!(decoder.decode("Ċ"), Ok(b"\n".to_vec()));
        assert_eq!(decoder.decode("ĉ"), Ok(b"\t".to_vec()));
        assert_eq!(decoder.decode("Ā"), Ok(vec![0]));
        assert_eq!(decoder.decode("ł"), Ok(vec![0xA0]), "no-break space");
        assert_eq!(
            decoder.decode("Ń"),
            Ok(vec![0xAD]),
            "the last remapped byte (soft hyphen)"
        );
        assert_eq!(decoder.decode("é"), Ok(vec![0xE9]));
        assert_eq!(decoder.decode("a€"), Err('€'));
        assert_eq!(decoder.decode("ń"), Err('ń'), "one past the remapped range");
        // A bijection onto all 256 bytes.
        let decoded: BTreeSet<u8> = decoder.bytes.iter().flatten().copied().collect();
        assert_eq!(decoded.len(), 256);
        assert_eq!(decoder.bytes.iter().flatten().count(), 256);
    }

    #[test]
    fn multilingual_vocabulary_stops_before_end_of_text() {
        let dir = ScratchDir::new("multilingual-vocab");
        let path = dir.0.join(VOCABULARY_FILE);
        fs::write(&path, VOCABULARY.join("\n")).unwrap();
        let english = Vocabulary::load(&path, true).unwrap();
        let multilingual = Vocabulary::load(&path, false).unwrap();
        assert_eq!(english.tokens.len(), 8);
        assert_eq!(english.tokens.last().unwrap(), b"<|endoftext|>");
        assert_eq!(multilingual.tokens, english.tokens[..7]);
    }

    #[test]
    fn head_count_follows_from_width_when_the_file_omits_it() {
        let spec = SyntheticWhisper {
            width: 384,
            layers: 1,
            heads: None,
            ..SyntheticWhisper::small()
        };
        let (_dir, result) = convert("derived-heads", &model_bin(6, &spec.variables(), &[]), None);
        let hparams = result.unwrap().hparams;
        assert_eq!((hparams.n_audio_head, hparams.n_text_head), (6, 6));
        assert_eq!((hparams.n_audio_layer, hparams.n_text_layer), (1, 1));
    }

    #[test]
    fn unknown_width_without_head_count_is_rejected() {
        let spec = SyntheticWhisper {
            heads: None,
            ..SyntheticWhisper::small()
        };
        let (dir, result) = convert("unknown-width", &model_bin(6, &spec.variables(), &[]), None);
        match result {
            Err(ConvertError::UnknownModelWidth { path, n_state: 64 }) => {
                assert_eq!(path, dir.0.join(MODEL_FILE));
            }
            other => panic!("expected UnknownModelWidth, got {other:?}"),
        }
    }

    #[test]
    fn truncated_model_is_an_error_and_leaves_no_output() {
        let vars = SyntheticWhisper::small().variables();
        let model = model_bin(6, &vars, &[PROJECTION_ALIAS]);
        // version, spec name, revision, variable count, name length, name.
        let first_name_end = 4 + (2 + WHISPER_SPEC.len() + 1) + 4 + 4 + 2 + vars[0].name.len();
        // Inside: the version, the spec name, a variable name, the last variable's data, the
        // alias table.
        for cut in [2, 9, first_name_end - 3, model.len() - 60, model.len() - 1] {
            let (dir, result) = convert("truncated", &model[..cut], None);
            match result {
                Err(ConvertError::Truncated { path, what }) => {
                    assert_eq!(path, dir.0.join(MODEL_FILE), "cut at {cut}");
                    assert!(!what.is_empty());
                }
                other => panic!("cut at {cut}: expected Truncated, got {other:?}"),
            }
            assert_eq!(
                dir.entries(),
                [MODEL_FILE, VOCABULARY_FILE].map(String::from).into()
            );
        }
    }

    #[test]
    fn unsupported_versions_are_rejected() {
        let vars = SyntheticWhisper::small().variables();
        for version in [3, 7] {
            let (_dir, result) = convert("version", &model_bin(version, &vars, &[]), None);
            let found = match result {
                Err(ConvertError::UnsupportedVersion { found, .. }) => found,
                other => panic!("version {version}: expected UnsupportedVersion, got {other:?}"),
            };
            assert_eq!(found, version);
        }
        let (_dir, result) = convert("version-4", &model_bin(4, &vars, &[]), None);
        result.unwrap();
    }

    #[test]
    fn missing_files_are_named() {
        let dir = ScratchDir::new("missing");
        let out = dir.0.join("ggml.bin");
        fs::write(
            dir.0.join(MODEL_FILE),
            model_bin(6, &SyntheticWhisper::small().variables(), &[]),
        )
        .unwrap();
        match convert_ct2_to_ggml(&dir.0, &out) {
            Err(ConvertError::MissingFile { path }) => {
                assert_eq!(path, dir.0.join(VOCABULARY_FILE))
            }
            other => panic!("expected MissingFile, got {other:?}"),
        }
        fs::remove_file(dir.0.join(MODEL_FILE)).unwrap();
        match convert_ct2_to_ggml(&dir.0, &out) {
            Err(ConvertError::MissingFile { path }) => assert_eq!(path, dir.0.join(MODEL_FILE)),
            other => panic!("expected MissingFile, got {other:?}"),
        }
        assert!(!out.exists());
    }

    #[test]
    fn vocabulary_without_tokens_whisper_cpp_needs_is_rejected() {
        let model = model_bin(6, &SyntheticWhisper::small().variables(), &[]);
        for (missing, spelling) in [(" -", "Ġ-"), (" '", "Ġ'"), (" ", "Ġ")] {
            let vocabulary: Vec<&str> = VOCABULARY.into_iter().filter(|t| *t != spelling).collect();
            let (dir, result) = convert("required-token", &model, Some(&vocabulary));
            match result {
                Err(ConvertError::VocabularyMissingToken { path, token }) => {
                    assert_eq!(path, dir.0.join(VOCABULARY_FILE));
                    assert_eq!(token, missing);
                }
                other => {
                    panic!("without {missing:?}: expected VocabularyMissingToken, got {other:?}")
                }
            }
        }
    }

    #[test]
    fn vocabulary_that_is_not_gpt2_byte_level_is_rejected() {
        let model = model_bin(6, &SyntheticWhisper::small().variables(), &[]);
        let no_end_of_text: Vec<&str> = VOCABULARY[..7].to_vec();
        let raw_space = ["!", "the end", "<|endoftext|>"];
        let too_many: Vec<&str> = std::iter::repeat_n("Ġ", 12).chain(VOCABULARY).collect();
        for (case, vocabulary) in [
            ("no end of text", &no_end_of_text[..]),
            ("a raw space", &raw_space[..]),
            ("more tokens than embeddings", &too_many[..]),
        ] {
            let (_dir, result) = convert("bad-vocab", &model, Some(vocabulary));
            assert!(
                matches!(result, Err(ConvertError::BadVocabulary { .. })),
                "{case}: {result:?}"
            );
        }
    }

    #[test]
    fn tensors_outside_a_float_whisper_model_are_rejected() {
        let mut vars = SyntheticWhisper::small().variables();
        vars.push(Var {
            name: "encoder/layer_0/self_attention/linear_0/weight_scale".into(),
            dims: vec![192],
            dtype: CT2_F32,
            data: vec![0; 192 * 4],
        });
        let (_dir, result) = convert("unknown-tensor", &model_bin(6, &vars, &[]), None);
        assert!(
            matches!(&result, Err(ConvertError::UnknownTensor { name, .. })
                if name == "encoder/layer_0/self_attention/linear_0/weight_scale"),
            "{result:?}"
        );
    }

    #[test]
    fn quantized_weights_are_rejected() {
        let mut vars = SyntheticWhisper::small().variables();
        let weight = vars
            .iter_mut()
            .find(|v| v.name == "encoder/layer_1/ffn/linear_0/weight")
            .unwrap();
        weight.dtype = CT2_I8;
        weight.data.truncate(weight.data.len() / 2);
        let (_dir, result) = convert("int8", &model_bin(6, &vars, &[]), None);
        assert!(
            matches!(&result, Err(ConvertError::UnsupportedDtype { name, dtype: "int8", .. })
                if name == "encoder/layer_1/ffn/linear_0/weight"),
            "{result:?}"
        );
    }

    #[test]
    fn shape_mismatch_is_reported() {
        let mut vars = SyntheticWhisper::small().variables();
        let weight = vars
            .iter_mut()
            .find(|v| v.name == "decoder/layer_1/ffn/linear_0/weight")
            .unwrap();
        weight.dims = vec![128, 128];
        let (_dir, result) = convert("shape", &model_bin(6, &vars, &[]), None);
        match result {
            Err(ConvertError::ShapeMismatch {
                name,
                expected,
                found,
                ..
            }) => {
                assert_eq!(name, "decoder/layer_1/ffn/linear_0/weight");
                assert_eq!((expected, found), (vec![256, 64], vec![128, 128]));
            }
            other => panic!("expected ShapeMismatch, got {other:?}"),
        }
    }

    #[test]
    fn missing_block_is_named() {
        let vars: Vec<Var> = SyntheticWhisper::small()
            .variables()
            .into_iter()
            .filter(|v| !v.name.starts_with("encoder/layer_0/"))
            .collect();
        let (_dir, result) = convert("missing-block", &model_bin(6, &vars, &[]), None);
        assert!(
            matches!(&result, Err(ConvertError::MissingTensor { name, .. })
                if name.starts_with("encoder/layer_0/")),
            "{result:?}"
        );
    }

    #[test]
    fn byte_count_disagreeing_with_shape_is_corrupt() {
        let mut vars = SyntheticWhisper::small().variables();
        vars[3].data.extend_from_slice(&[0, 0]);
        let (_dir, result) = convert("corrupt", &model_bin(6, &vars, &[]), None);
        assert!(
            matches!(result, Err(ConvertError::Corrupt { .. })),
            "{result:?}"
        );
    }

    #[test]
    fn failed_write_keeps_the_previous_output_and_no_partial_file() {
        let dir = ScratchDir::new("unwritable");
        write_model_dir(
            &dir.0,
            &model_bin(6, &SyntheticWhisper::small().variables(), &[]),
            &VOCABULARY,
        );
        // A directory where the partial file should go makes creating it fail.
        let out = dir.0.join("ggml.bin");
        fs::write(&out, b"previous model").unwrap();
        let partial = PartialFile::create(&out).unwrap();
        fs::create_dir(&partial.path).unwrap();
        let result = convert_ct2_to_ggml(&dir.0, &out);
        assert!(matches!(result, Err(ConvertError::Io { .. })), "{result:?}");
        assert_eq!(fs::read(&out).unwrap(), b"previous model");
        fs::remove_dir(&partial.path).unwrap();

        // Dropping an uncommitted partial file removes it.
        let partial = PartialFile::create(&out).unwrap();
        partial.file().unwrap();
        let partial_path = partial.path.clone();
        assert!(partial_path.exists());
        drop(partial);
        assert!(!partial_path.exists());
        assert_eq!(
            dir.entries(),
            [MODEL_FILE, VOCABULARY_FILE, "ggml.bin"]
                .map(String::from)
                .into()
        );
    }
}
