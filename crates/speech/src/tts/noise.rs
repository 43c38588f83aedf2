//! Reproducible noise for Piper voices.
//!
//! A Piper (VITS) graph draws Gaussian noise with `RandomNormalLike` twice per synthesis: for
//! the stochastic duration predictor (scaled by `noise_w`) and for the latent audio (scaled by
//! `noise_scale`). That noise is what makes the voice's rhythm and timbre sound natural, but
//! ONNX Runtime's generator advances on every run and a seed can only be set per session, so
//! the same sentence never came out the same twice. The voice cache, the tests and anyone
//! comparing two runs need the same text to give the same audio.
//!
//! So the graph is rewritten at load time: each `RandomNormalLike` becomes a window of a fixed
//! pool of Gaussian samples (generated here from a fixed seed, stored once in the session), and
//! where each window starts is a graph input the engine derives from what is being said. Every
//! sentence still hears standard normal noise, the kind the model was trained with, taken from
//! a different place of the pool for different text; but it is now a pure function of (phoneme
//! ids, scales, speaker). Zeroing `noise_scale` and `noise_w` would also be reproducible, but
//! it changes the voice: the duration predictor then gives every phoneme its mean length, a
//! flatter rhythm than the one the voice was tuned with (speech 1.6 % faster over the
//! interviewer lines, measured).
//!
//! Replacing one node `y = RandomNormalLike(x)`, for noise source `k`:
//! ```text
//! shape  = Shape(x)                         count = ReduceProd(shape)
//! index  = Mod(Range(0, count, 1) + Gather(viva_noise_offsets, k), POOL_LEN)
//! y      = Reshape(Gather(viva_noise_pool, index), shape)
//! ```

use super::protobuf::{self, Value};

/// The graph input the engine feeds with one pool offset per noise source (`int64[n]`).
pub(crate) const OFFSETS_INPUT: &str = "viva_noise_offsets";

/// Gaussian samples in the pool: 2 MiB of f32. The latent noise of the longest clause the text
/// splitter lets through (240 characters, about 15 s, 1300 frames of 192 channels) fits twice,
/// so no sentence ever hears its own noise repeat.
const POOL_LEN: usize = 1 << 19;
const POOL_BYTES: usize = POOL_LEN * 4;

/// The pool's seed. Changing it changes every voice's audio (and invalidates cached audio).
const POOL_SEED: u64 = 0x5649_5641_2d54_5453; // "VIVA-TTS"

/// Ops that would still draw fresh randomness after the rewrite.
const RANDOM_OPS: &[&str] = &[
    "RandomNormal",
    "RandomNormalLike",
    "RandomUniform",
    "RandomUniformLike",
    "Multinomial",
    "Bernoulli",
];

// ONNX field numbers (onnx.proto) of the messages the rewrite reads or writes.
const MODEL_GRAPH: u32 = 7;
const GRAPH_NODE: u32 = 1;
const GRAPH_INITIALIZER: u32 = 5;
const GRAPH_INPUT: u32 = 11;
const NODE_INPUT: u32 = 1;
const NODE_OUTPUT: u32 = 2;
const NODE_NAME: u32 = 3;
const NODE_OP_TYPE: u32 = 4;
const NODE_ATTRIBUTE: u32 = 5;
const NODE_DOMAIN: u32 = 7;
const ATTRIBUTE_NAME: u32 = 1;
const ATTRIBUTE_F: u32 = 2;
const ATTRIBUTE_I: u32 = 3;
const ATTRIBUTE_G: u32 = 6;
const ATTRIBUTE_GRAPHS: u32 = 11;
const ATTRIBUTE_TYPE: u32 = 20;
const ATTRIBUTE_TYPE_INT: u64 = 2;
const TENSOR_DIMS: u32 = 1;
const TENSOR_DATA_TYPE: u32 = 2;
const TENSOR_NAME: u32 = 8;
const TENSOR_RAW_DATA: u32 = 9;
const DATA_TYPE_FLOAT: u64 = 1;
const DATA_TYPE_INT64: u64 = 7;
const VALUE_INFO_NAME: u32 = 1;
const VALUE_INFO_TYPE: u32 = 2;
const TYPE_TENSOR: u32 = 1;
const TENSOR_TYPE_ELEM_TYPE: u32 = 1;
const TENSOR_TYPE_SHAPE: u32 = 2;
const SHAPE_DIM: u32 = 1;
const DIM_VALUE: u32 = 1;

/// Why a model could not be rewritten, as the end of a sentence naming the model file.
#[derive(Debug, PartialEq)]
pub(crate) enum Unusable {
    /// The bytes are not a complete ONNX model.
    Malformed(String),
    /// The graph draws randomness the rewrite cannot replace.
    Unseedable(String),
}

impl From<String> for Unusable {
    fn from(reason: String) -> Unusable {
        Unusable::Malformed(reason)
    }
}

impl std::fmt::Display for Unusable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unusable::Malformed(reason) => write!(f, "is not a complete ONNX model ({reason})"),
            Unusable::Unseedable(reason) => {
                write!(f, "draws noise that cannot be made reproducible ({reason})")
            }
        }
    }
}

/// A voice model whose noise is drawn from the pool.
pub(crate) struct SeededModel {
    /// The rewritten ONNX model.
    pub(crate) onnx: Vec<u8>,
    /// How many noise sources the graph has: the length of [`OFFSETS_INPUT`].
    pub(crate) sources: usize,
}

/// Rewrites an encoded ONNX model so that its `RandomNormalLike` noise comes from the seeded
/// pool. Fails, saying which node and why, when the model is not protobuf or draws randomness
/// some other way.
pub(crate) fn seeded_model(onnx: &[u8]) -> Result<SeededModel, Unusable> {
    // Written straight into one buffer. Building the graph and the pool in buffers of their
    // own first left 22 MiB more resident once ONNX Runtime had loaded the model (measured;
    // freeing a buffer under 32 MiB raises glibc's mmap threshold, so ONNX Runtime's large
    // temporary allocations then came from the heap, which does not shrink).
    let mut out = Vec::with_capacity(onnx.len() + POOL_BYTES + 64 * 1024);
    let mut sources = None;
    for field in protobuf::fields(onnx) {
        let field = field?;
        match (field.number, field.bytes()) {
            (MODEL_GRAPH, Some(graph)) => {
                let pieces = seeded_graph(graph)?;
                protobuf::put_len_prefix(&mut out, MODEL_GRAPH, pieces.len());
                pieces.write(&mut out);
                sources = Some(pieces.sources);
            }
            _ => out.extend_from_slice(field.raw),
        }
    }
    let sources = sources.ok_or_else(|| Unusable::Malformed("it has no graph".to_owned()))?;
    Ok(SeededModel { onnx: out, sources })
}

/// Pool offsets, one per noise source, for one utterance: a hash of everything that shapes it,
/// so the same input always hears the same noise and different inputs hear different noise.
pub(crate) fn offsets(sources: usize, ids: &[i64], scales: &[f32], speaker: i64) -> Vec<i64> {
    let mut hash = Fnv1a::new();
    for id in ids {
        hash.write(&id.to_le_bytes());
    }
    for scale in scales {
        hash.write(&scale.to_bits().to_le_bytes());
    }
    hash.write(&speaker.to_le_bytes());
    let utterance = hash.0;
    (0..sources as u64)
        .map(|source| {
            // Mixed again per source, so the two noise sources are not the same window.
            let mixed = splitmix64(utterance ^ splitmix64(source));
            (mixed % POOL_LEN as u64) as i64
        })
        .collect()
}

/// The rewritten graph, as the parts to write one after the other.
struct GraphPieces<'a> {
    pieces: Vec<Piece<'a>>,
    sources: usize,
}

enum Piece<'a> {
    /// Fields of the original graph, copied as they are.
    Kept(&'a [u8]),
    /// Fields the rewrite encoded (small).
    New(Vec<u8>),
    /// The pool initializer: its encoded start, then [`POOL_BYTES`] of samples.
    Pool(Vec<u8>),
}

impl GraphPieces<'_> {
    fn len(&self) -> usize {
        self.pieces
            .iter()
            .map(|piece| match piece {
                Piece::Kept(bytes) => bytes.len(),
                Piece::New(bytes) => bytes.len(),
                Piece::Pool(start) => start.len() + POOL_BYTES,
            })
            .sum()
    }

    fn write(&self, out: &mut Vec<u8>) {
        for piece in &self.pieces {
            match piece {
                Piece::Kept(bytes) => out.extend_from_slice(bytes),
                Piece::New(bytes) => out.extend_from_slice(bytes),
                Piece::Pool(start) => {
                    out.extend_from_slice(start);
                    out.extend(gaussian_pool().flat_map(f32::to_le_bytes));
                }
            }
        }
    }
}

fn seeded_graph(graph: &[u8]) -> Result<GraphPieces<'_>, Unusable> {
    let mut pieces = Vec::new();
    let mut sources = 0;
    for field in protobuf::fields(graph) {
        let field = field?;
        let node = match (field.number, field.bytes()) {
            (GRAPH_NODE, Some(node)) => Node::read(node)?,
            _ => {
                pieces.push(Piece::Kept(field.raw));
                continue;
            }
        };
        if node.op_type == "RandomNormalLike" && node.in_default_domain() {
            node.check_standard_normal()?;
            let (Some(&input), Some(&output)) = (node.inputs.first(), node.outputs.first()) else {
                return Err(Unusable::Malformed(format!(
                    "node {:?} lacks its input or output",
                    node.name
                )));
            };
            let mut window = Vec::new();
            for node in window_nodes(sources, input, output) {
                protobuf::put_bytes(&mut window, GRAPH_NODE, &node);
            }
            let index = int64_scalar(&source_name(sources, "index"), sources as i64);
            protobuf::put_bytes(&mut window, GRAPH_INITIALIZER, &index);
            pieces.push(Piece::New(window));
            sources += 1;
        } else {
            node.check_deterministic()?;
            pieces.push(Piece::Kept(field.raw));
        }
    }
    // Names may appear in any order within a graph's fields: ONNX Runtime sorts the nodes
    // topologically and looks inputs and initializers up by name.
    pieces.push(Piece::Pool(pool_start()));
    let mut rest = Vec::new();
    for (name, value) in [
        ("viva_noise_zero", 0),
        ("viva_noise_one", 1),
        ("viva_noise_pool_len", POOL_LEN as i64),
    ] {
        protobuf::put_bytes(&mut rest, GRAPH_INITIALIZER, &int64_scalar(name, value));
    }
    protobuf::put_bytes(
        &mut rest,
        GRAPH_INPUT,
        &int64_vector_input(OFFSETS_INPUT, sources),
    );
    pieces.push(Piece::New(rest));
    Ok(GraphPieces { pieces, sources })
}

/// The fields of a `NodeProto` the rewrite looks at.
struct Node<'a> {
    name: String,
    op_type: String,
    domain: String,
    inputs: Vec<&'a str>,
    outputs: Vec<&'a str>,
    attributes: Vec<&'a [u8]>,
}

impl<'a> Node<'a> {
    fn read(node: &'a [u8]) -> Result<Node<'a>, String> {
        let mut read = Node {
            name: String::new(),
            op_type: String::new(),
            domain: String::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            attributes: Vec::new(),
        };
        for field in protobuf::fields(node) {
            let field = field?;
            let Some(bytes) = field.bytes() else { continue };
            let text = || {
                std::str::from_utf8(bytes)
                    .map_err(|_| "a node has a name that is not UTF-8".to_owned())
            };
            match field.number {
                NODE_INPUT => read.inputs.push(text()?),
                NODE_OUTPUT => read.outputs.push(text()?),
                NODE_NAME => read.name = text()?.to_owned(),
                NODE_OP_TYPE => read.op_type = text()?.to_owned(),
                NODE_DOMAIN => read.domain = text()?.to_owned(),
                NODE_ATTRIBUTE => read.attributes.push(bytes),
                _ => {}
            }
        }
        Ok(read)
    }

    /// ONNX's own operators; "ai.onnx" is another name for the default domain.
    fn in_default_domain(&self) -> bool {
        matches!(self.domain.as_str(), "" | "ai.onnx")
    }

    /// The pool holds standard normal f32 samples, so the node must ask for exactly those.
    fn check_standard_normal(&self) -> Result<(), Unusable> {
        for attribute in &self.attributes {
            let (name, value) = attribute_value(attribute)?;
            let standard = match (name.as_str(), value) {
                ("dtype", Some(Value::Varint(dtype))) => dtype == DATA_TYPE_FLOAT,
                ("mean", Some(Value::Fixed32(bits))) => f32::from_bits(bits) == 0.0,
                ("scale", Some(Value::Fixed32(bits))) => f32::from_bits(bits) == 1.0,
                // The seed only chose the generator this rewrite replaces.
                ("seed", _) => true,
                _ => false,
            };
            if !standard {
                return Err(Unusable::Unseedable(format!(
                    "noise node {:?} has attribute {name:?} set to something other than a \
                     standard normal float (dtype 1, mean 0, scale 1)",
                    self.name
                )));
            }
        }
        Ok(())
    }

    /// Fails if this node, or a graph nested in its attributes, draws random numbers.
    fn check_deterministic(&self) -> Result<(), Unusable> {
        if self.in_default_domain() && RANDOM_OPS.contains(&self.op_type.as_str()) {
            return Err(Unusable::Unseedable(format!(
                "node {:?} draws random numbers with {}",
                self.name, self.op_type
            )));
        }
        for attribute in &self.attributes {
            for field in protobuf::fields(attribute) {
                let field = field?;
                if let (ATTRIBUTE_G | ATTRIBUTE_GRAPHS, Some(graph)) = (field.number, field.bytes())
                {
                    check_graph_deterministic(graph)?;
                }
            }
        }
        Ok(())
    }
}

/// Subgraphs (of `If`, `Loop`, `Scan`) are checked, not rewritten: Piper graphs have none, and
/// a voice that draws noise inside one is refused rather than left random.
fn check_graph_deterministic(graph: &[u8]) -> Result<(), Unusable> {
    for field in protobuf::fields(graph) {
        let field = field?;
        if let (GRAPH_NODE, Some(node)) = (field.number, field.bytes()) {
            Node::read(node)?.check_deterministic()?;
        }
    }
    Ok(())
}

/// An attribute's name and its scalar value (`f` or `i`), if it has one.
fn attribute_value(attribute: &[u8]) -> Result<(String, Option<Value<'_>>), String> {
    let mut name = String::new();
    let mut value = None;
    for field in protobuf::fields(attribute) {
        let field = field?;
        match field.number {
            ATTRIBUTE_NAME => {
                name = String::from_utf8_lossy(field.bytes().unwrap_or_default()).into_owned()
            }
            ATTRIBUTE_F | ATTRIBUTE_I => value = Some(field.value),
            _ => {}
        }
    }
    Ok((name, value))
}

fn source_name(source: usize, part: &str) -> String {
    format!("viva_noise{source}_{part}")
}

/// The nodes that compute noise source `source`'s window into `output`, shaped like `input`.
fn window_nodes(source: usize, input: &str, output: &str) -> Vec<Vec<u8>> {
    let name = |part: &str| source_name(source, part);
    vec![
        node("Shape", &[input], &name("shape"), &[]),
        node(
            "ReduceProd",
            &[&name("shape")],
            &name("count"),
            &[("keepdims", 0)],
        ),
        node(
            "Range",
            &["viva_noise_zero", &name("count"), "viva_noise_one"],
            &name("range"),
            &[],
        ),
        node(
            "Gather",
            &[OFFSETS_INPUT, &name("index")],
            &name("offset"),
            &[("axis", 0)],
        ),
        node(
            "Add",
            &[&name("range"), &name("offset")],
            &name("position"),
            &[],
        ),
        node(
            "Mod",
            &[&name("position"), "viva_noise_pool_len"],
            &name("wrapped"),
            &[],
        ),
        node(
            "Gather",
            &["viva_noise_pool", &name("wrapped")],
            &name("samples"),
            &[("axis", 0)],
        ),
        node("Reshape", &[&name("samples"), &name("shape")], output, &[]),
    ]
}

/// An encoded `NodeProto` in the default domain, named after its output.
fn node(op_type: &str, inputs: &[&str], output: &str, int_attributes: &[(&str, i64)]) -> Vec<u8> {
    let mut node = Vec::new();
    for input in inputs {
        protobuf::put_bytes(&mut node, NODE_INPUT, input.as_bytes());
    }
    protobuf::put_bytes(&mut node, NODE_OUTPUT, output.as_bytes());
    protobuf::put_bytes(&mut node, NODE_NAME, output.as_bytes());
    protobuf::put_bytes(&mut node, NODE_OP_TYPE, op_type.as_bytes());
    for (name, value) in int_attributes {
        let mut attribute = Vec::new();
        protobuf::put_bytes(&mut attribute, ATTRIBUTE_NAME, name.as_bytes());
        protobuf::put_varint(&mut attribute, ATTRIBUTE_I, *value as u64);
        protobuf::put_varint(&mut attribute, ATTRIBUTE_TYPE, ATTRIBUTE_TYPE_INT);
        protobuf::put_bytes(&mut node, NODE_ATTRIBUTE, &attribute);
    }
    node
}

fn int64_scalar(name: &str, value: i64) -> Vec<u8> {
    let mut tensor = Vec::new();
    protobuf::put_varint(&mut tensor, TENSOR_DATA_TYPE, DATA_TYPE_INT64);
    protobuf::put_bytes(&mut tensor, TENSOR_NAME, name.as_bytes());
    protobuf::put_bytes(&mut tensor, TENSOR_RAW_DATA, &value.to_le_bytes());
    tensor
}

/// The pool initializer's graph field up to its samples, which follow as raw little-endian
/// f32 (`TensorProto.raw_data`).
fn pool_start() -> Vec<u8> {
    let mut tensor_start = Vec::new();
    protobuf::put_varint(&mut tensor_start, TENSOR_DIMS, POOL_LEN as u64);
    protobuf::put_varint(&mut tensor_start, TENSOR_DATA_TYPE, DATA_TYPE_FLOAT);
    protobuf::put_bytes(&mut tensor_start, TENSOR_NAME, b"viva_noise_pool");
    protobuf::put_len_prefix(&mut tensor_start, TENSOR_RAW_DATA, POOL_BYTES);
    let mut start = Vec::new();
    protobuf::put_len_prefix(
        &mut start,
        GRAPH_INITIALIZER,
        tensor_start.len() + POOL_BYTES,
    );
    start.extend_from_slice(&tensor_start);
    start
}

/// A `ValueInfoProto` for a graph input of type `int64[len]`.
fn int64_vector_input(name: &str, len: usize) -> Vec<u8> {
    let mut dim = Vec::new();
    protobuf::put_varint(&mut dim, DIM_VALUE, len as u64);
    let mut shape = Vec::new();
    protobuf::put_bytes(&mut shape, SHAPE_DIM, &dim);
    let mut tensor_type = Vec::new();
    protobuf::put_varint(&mut tensor_type, TENSOR_TYPE_ELEM_TYPE, DATA_TYPE_INT64);
    protobuf::put_bytes(&mut tensor_type, TENSOR_TYPE_SHAPE, &shape);
    let mut value_type = Vec::new();
    protobuf::put_bytes(&mut value_type, TYPE_TENSOR, &tensor_type);
    let mut input = Vec::new();
    protobuf::put_bytes(&mut input, VALUE_INFO_NAME, name.as_bytes());
    protobuf::put_bytes(&mut input, VALUE_INFO_TYPE, &value_type);
    input
}

/// [`POOL_LEN`] standard normal samples from [`POOL_SEED`]. Written out here (SplitMix64 and
/// Box-Muller) rather than taken from a crate, because the samples must never change with a
/// dependency update: they are part of every voice's sound.
fn gaussian_pool() -> impl Iterator<Item = f32> {
    let mut state = POOL_SEED;
    let mut uniform = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        // 53 random bits as a float in (0, 1]: never 0, so the logarithm stays finite.
        ((splitmix64(state) >> 11) + 1) as f64 / (1_u64 << 53) as f64
    };
    std::iter::repeat_with(move || {
        let radius = (-2.0 * uniform().ln()).sqrt();
        let angle = std::f64::consts::TAU * uniform();
        [(radius * angle.cos()) as f32, (radius * angle.sin()) as f32]
    })
    .flatten()
    .take(POOL_LEN)
}

/// SplitMix64's output function: a fast, well-mixed 64-bit bijection.
fn splitmix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// 64-bit FNV-1a: a stable hash (std's `DefaultHasher` may change between Rust releases, and
/// the offsets must not).
struct Fnv1a(u64);

impl Fnv1a {
    fn new() -> Fnv1a {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::protobuf::Field;
    use super::*;

    #[test]
    fn the_pool_is_standard_normal() {
        let pool: Vec<f32> = gaussian_pool().collect();
        assert_eq!(pool.len(), POOL_LEN);
        let n = pool.len() as f64;
        let mean = pool.iter().map(|&s| f64::from(s)).sum::<f64>() / n;
        let variance = pool
            .iter()
            .map(|&s| (f64::from(s) - mean).powi(2))
            .sum::<f64>()
            / n;
        assert!(mean.abs() < 0.005, "mean {mean}");
        assert!((variance - 1.0).abs() < 0.01, "variance {variance}");
        let beyond_2_sigma = pool.iter().filter(|s| s.abs() > 2.0).count() as f64 / n;
        assert!((beyond_2_sigma - 0.0455).abs() < 0.002, "{beyond_2_sigma}");
        assert!(pool.iter().all(|s| s.is_finite()));
    }

    #[test]
    fn offsets_depend_on_everything_that_shapes_an_utterance() {
        let ids = [1, 0, 20, 0, 14, 0, 2];
        let scales = [0.667, 1.0, 0.8];
        let base = offsets(2, &ids, &scales, 0);
        assert_eq!(base, offsets(2, &ids, &scales, 0));
        assert_eq!(base.len(), 2);
        assert_ne!(base[0], base[1]);
        assert!(base.iter().all(|&o| (0..POOL_LEN as i64).contains(&o)));
        assert_ne!(base, offsets(2, &ids[..5], &scales, 0));
        assert_ne!(base, offsets(2, &ids, &[0.667, 1.1, 0.8], 0));
        assert_ne!(base, offsets(2, &ids, &scales, 1));
    }

    /// A two-node graph, `noisy = RandomNormalLike(x)`, `y = Add(noisy, x)`.
    fn tiny_model(noise_attributes: &[(&str, i64)], noise_op: &str) -> Vec<u8> {
        let mut graph = Vec::new();
        let mut noise = node(noise_op, &["x"], "noisy", noise_attributes);
        // A field the rewrite does not know must survive it.
        protobuf::put_bytes(&mut noise, 6, b"doc");
        protobuf::put_bytes(&mut graph, GRAPH_NODE, &noise);
        protobuf::put_bytes(
            &mut graph,
            GRAPH_NODE,
            &node("Add", &["noisy", "x"], "y", &[]),
        );
        protobuf::put_bytes(&mut graph, 2, b"tiny");
        let mut model = Vec::new();
        protobuf::put_varint(&mut model, 1, 8);
        protobuf::put_bytes(&mut model, MODEL_GRAPH, &graph);
        protobuf::put_bytes(&mut model, 2, b"test");
        model
    }

    fn graph_of(model: &[u8]) -> Vec<u8> {
        protobuf::fields(model)
            .map(Result::unwrap)
            .find(|f| f.number == MODEL_GRAPH)
            .and_then(|f| f.bytes())
            .unwrap()
            .to_vec()
    }

    #[test]
    fn noise_nodes_are_replaced_and_everything_else_kept() {
        let model = tiny_model(&[("dtype", 1)], "RandomNormalLike");
        let seeded = seeded_model(&model).unwrap();
        assert_eq!(seeded.sources, 1);
        let fields: Vec<Field> = protobuf::fields(&seeded.onnx).map(Result::unwrap).collect();
        assert_eq!(
            fields.iter().map(|f| f.number).collect::<Vec<_>>(),
            [1, MODEL_GRAPH, 2],
            "model fields keep their order"
        );
        let graph = graph_of(&seeded.onnx);
        let nodes: Vec<Node> = protobuf::fields(&graph)
            .map(Result::unwrap)
            .filter(|f| f.number == GRAPH_NODE)
            .map(|f| Node::read(f.bytes().unwrap()).unwrap())
            .collect();
        let ops: Vec<&str> = nodes.iter().map(|n| n.op_type.as_str()).collect();
        assert_eq!(
            ops,
            [
                "Shape",
                "ReduceProd",
                "Range",
                "Gather",
                "Add",
                "Mod",
                "Gather",
                "Reshape",
                "Add"
            ]
        );
        assert_eq!(nodes[0].inputs, ["x"]);
        assert_eq!(
            nodes[7].outputs,
            ["noisy"],
            "the window takes the noise's place"
        );
        let names = |number| -> Vec<String> {
            protobuf::fields(&graph)
                .map(Result::unwrap)
                .filter(|f| f.number == number)
                .map(|f| {
                    let name_field = if number == GRAPH_INPUT {
                        VALUE_INFO_NAME
                    } else {
                        TENSOR_NAME
                    };
                    let name = protobuf::fields(f.bytes().unwrap())
                        .map(Result::unwrap)
                        .find(|f| f.number == name_field)
                        .unwrap();
                    String::from_utf8(name.bytes().unwrap().to_vec()).unwrap()
                })
                .collect()
        };
        assert_eq!(names(GRAPH_INPUT), [OFFSETS_INPUT]);
        assert_eq!(
            names(GRAPH_INITIALIZER),
            [
                "viva_noise0_index",
                "viva_noise_pool",
                "viva_noise_zero",
                "viva_noise_one",
                "viva_noise_pool_len"
            ]
        );
        assert!(
            graph.windows(4).any(|w| w == b"tiny"),
            "the graph's name is kept"
        );
    }

    #[test]
    fn randomness_that_cannot_be_seeded_is_refused() {
        let err = seeded_model(&tiny_model(&[("dtype", 10)], "RandomNormalLike"))
            .err()
            .unwrap();
        assert!(matches!(&err, Unusable::Unseedable(reason) if reason.contains("\"dtype\"")));
        let err = seeded_model(&tiny_model(&[], "RandomUniformLike"))
            .err()
            .unwrap();
        assert!(err.to_string().contains("RandomUniformLike"), "{err}");
        assert!(matches!(
            seeded_model(b"not a model"),
            Err(Unusable::Malformed(_))
        ));
        assert_eq!(
            seeded_model(&[]).err().unwrap().to_string(),
            "is not a complete ONNX model (it has no graph)"
        );
    }
}
