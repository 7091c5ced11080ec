//! fastText supervised models (`.bin`, and `.ftz` quantised with product quantisation), read
//! from their bytes and applied to one text as fastText 0.9's `predict` does.
//!
//! What must match fastText bit for bit to give its probabilities:
//! - words split on ' ', '\n', '\r', '\t', '\v', '\f', '\0' and an end-of-line token `</s>`
//!   closes the line; tokens starting with `__label__` are not words;
//! - token hashes are 32-bit FNV-1a over bytes **sign-extended** from `int8_t`;
//! - word n-gram hashes start from the 32-bit token hash sign-extended to 64 bits and add each
//!   next hash sign-extended too (`fasttext-pure-rs` 0.1.0 zero-extends here, which is why every
//!   `wordNgrams ≥ 2` model came out wrong with it);
//! - the hidden vector is the float mean of the input rows, in fastText's order (each word's
//!   id and character n-grams, then the word n-grams);
//! - the reported probability is `exp(score)`, where a softmax or one-vs-all score is
//!   `log(p + 1e-5)` and a hierarchical-softmax score sums `log(σ + 1e-5)` along the label's
//!   path, all in single precision.

use std::collections::HashMap;

/// What went wrong reading a model file.
pub type LoadError = String;

const MAGIC: i32 = 793_712_314;
const VERSION: i32 = 12;
const EOS: &[u8] = b"</s>";
const BOW: u8 = b'<';
const EOW: u8 = b'>';
const LABEL_PREFIX: &[u8] = b"__label__";
const KSUB: usize = 256;

/// fastText's loss, which decides how scores become probabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loss {
    /// Hierarchical softmax (a Huffman tree over the label counts).
    HierarchicalSoftmax,
    /// Negative sampling: one sigmoid per label, as one-vs-all.
    NegativeSampling,
    /// Softmax over the labels.
    Softmax,
    /// One-vs-all: one sigmoid per label.
    OneVsAll,
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], LoadError> {
        match self.at.checked_add(n) {
            Some(end) if end <= self.bytes.len() => {
                let s = &self.bytes[self.at..end];
                self.at = end;
                Ok(s)
            }
            _ => Err(format!(
                "the file ends early (truncated?) while reading {what} at byte {}",
                self.at
            )),
        }
    }
    fn i32(&mut self, what: &str) -> Result<i32, LoadError> {
        Ok(i32::from_le_bytes(
            self.take(4, what)?
                .try_into()
                .map_err(|_| what.to_string())?,
        ))
    }
    fn i64(&mut self, what: &str) -> Result<i64, LoadError> {
        Ok(i64::from_le_bytes(
            self.take(8, what)?
                .try_into()
                .map_err(|_| what.to_string())?,
        ))
    }
    fn f64(&mut self, what: &str) -> Result<f64, LoadError> {
        Ok(f64::from_le_bytes(
            self.take(8, what)?
                .try_into()
                .map_err(|_| what.to_string())?,
        ))
    }
    fn u8(&mut self, what: &str) -> Result<u8, LoadError> {
        Ok(self.take(1, what)?[0])
    }
    fn f32s(&mut self, n: usize, what: &str) -> Result<Vec<f32>, LoadError> {
        let bytes = self.take(n.checked_mul(4).ok_or("size overflow")?, what)?;
        Ok(bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
    fn cstring(&mut self, what: &str) -> Result<&'a [u8], LoadError> {
        let rest = &self.bytes[self.at..];
        let Some(end) = rest.iter().position(|&b| b == 0) else {
            return Err(format!("the file ends early (truncated?) inside {what}"));
        };
        self.at += end + 1;
        Ok(&rest[..end])
    }
}

/// A product quantiser: `nsubq` sub-vectors, each one of 256 centroids.
struct Pq {
    dim: usize,
    nsubq: usize,
    dsub: usize,
    lastdsub: usize,
    centroids: Vec<f32>,
}

impl Pq {
    fn load(r: &mut Reader) -> Result<Self, LoadError> {
        let dim = r.i32("the quantiser's dimension")?;
        let nsubq = r.i32("the quantiser's sub-quantisers")?;
        let dsub = r.i32("the quantiser's sub-dimension")?;
        let lastdsub = r.i32("the quantiser's last sub-dimension")?;
        if dim <= 0
            || nsubq <= 0
            || dsub <= 0
            || lastdsub <= 0
            || (nsubq - 1) * dsub + lastdsub != dim
        {
            return Err(format!(
                "the product quantiser's shape is inconsistent (dim {dim}, nsubq {nsubq}, dsub {dsub}, lastdsub {lastdsub})"
            ));
        }
        let (dim, nsubq, dsub, lastdsub) = (
            dim as usize,
            nsubq as usize,
            dsub as usize,
            lastdsub as usize,
        );
        let centroids = r.f32s(dim * KSUB, "the quantiser's centroids")?;
        Ok(Pq {
            dim,
            nsubq,
            dsub,
            lastdsub,
            centroids,
        })
    }
    fn centroid(&self, m: usize, i: u8) -> &[f32] {
        let i = usize::from(i);
        if m == self.nsubq - 1 {
            let at = m * KSUB * self.dsub + i * self.lastdsub;
            &self.centroids[at..at + self.lastdsub]
        } else {
            let at = (m * KSUB + i) * self.dsub;
            &self.centroids[at..at + self.dsub]
        }
    }
}

/// A dense or product-quantised matrix of `rows × cols` floats. A dense one stays in the
/// file's bytes (`at` is where its floats start): a model of 2M buckets × 100 is 800 MB, and
/// a second copy as `f32`s would double the memory and the load time.
enum Matrix {
    Dense {
        cols: usize,
        at: usize,
    },
    Quant {
        codes: Vec<u8>,
        pq: Pq,
        norms: Option<(Vec<u8>, Pq)>,
    },
}

impl Matrix {
    fn load(r: &mut Reader, quant: bool, what: &str) -> Result<(Self, usize, usize), LoadError> {
        if !quant {
            let (m, n) = (r.i64(what)?, r.i64(what)?);
            if m < 0 || n <= 0 {
                return Err(format!("{what} has the impossible shape {m} × {n}"));
            }
            let (m, n) = (m as usize, n as usize);
            let at = r.at;
            let bytes = m
                .checked_mul(n)
                .and_then(|v| v.checked_mul(4))
                .ok_or("size overflow")?;
            r.take(bytes, what)?;
            return Ok((Matrix::Dense { cols: n, at }, m, n));
        }
        let qnorm = r.u8(what)? != 0;
        let (m, n) = (r.i64(what)?, r.i64(what)?);
        let codesize = r.i32(what)?;
        if m < 0 || n <= 0 || codesize < 0 {
            return Err(format!(
                "{what} has the impossible shape {m} × {n} ({codesize} codes)"
            ));
        }
        let (m, n) = (m as usize, n as usize);
        let codes = r.take(codesize as usize, what)?.to_vec();
        let pq = Pq::load(r)?;
        if pq.dim != n || codes.len() != m * pq.nsubq {
            return Err(format!(
                "{what}: the quantiser does not fit the matrix ({m} × {n})"
            ));
        }
        let norms = if qnorm {
            let codes = r.take(m, what)?.to_vec();
            let npq = Pq::load(r)?;
            if npq.dim != 1 {
                return Err(format!("{what}: the norm quantiser is not one-dimensional"));
            }
            Some((codes, npq))
        } else {
            None
        };
        Ok((Matrix::Quant { codes, pq, norms }, m, n))
    }

    fn norm(norms: &Option<(Vec<u8>, Pq)>, i: usize) -> f32 {
        norms
            .as_ref()
            .map_or(1.0, |(codes, npq)| npq.centroid(0, codes[i])[0])
    }

    /// Row i of a dense matrix, as little-endian float bytes.
    fn dense_row<'a>(
        bytes: &'a [u8],
        at: usize,
        cols: usize,
        i: usize,
    ) -> impl Iterator<Item = f32> + 'a {
        let start = at + i * cols * 4;
        bytes[start..start + cols * 4]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
    }

    /// x += row i.
    fn add_row(&self, bytes: &[u8], x: &mut [f32], i: usize) {
        match self {
            Matrix::Dense { cols, at } => {
                for (v, a) in x.iter_mut().zip(Self::dense_row(bytes, *at, *cols, i)) {
                    *v += a;
                }
            }
            Matrix::Quant { codes, pq, norms } => {
                let alpha = Self::norm(norms, i);
                let code = &codes[pq.nsubq * i..pq.nsubq * (i + 1)];
                for (m, &c) in code.iter().enumerate() {
                    let base = m * pq.dsub;
                    for (n, v) in pq.centroid(m, c).iter().enumerate() {
                        x[base + n] += alpha * v;
                    }
                }
            }
        }
    }

    /// Row i · x, summed as fastText sums it.
    fn dot_row(&self, bytes: &[u8], x: &[f32], i: usize) -> f32 {
        match self {
            Matrix::Dense { cols, at } => {
                let mut d = 0f32;
                for (a, v) in Self::dense_row(bytes, *at, *cols, i).zip(x) {
                    d += a * v;
                }
                d
            }
            Matrix::Quant { codes, pq, norms } => {
                let alpha = Self::norm(norms, i);
                let code = &codes[pq.nsubq * i..pq.nsubq * (i + 1)];
                let mut res = 0f32;
                for (m, &c) in code.iter().enumerate() {
                    let base = m * pq.dsub;
                    for (n, v) in pq.centroid(m, c).iter().enumerate() {
                        res += x[base + n] * v;
                    }
                }
                res * alpha
            }
        }
    }
}

/// A loaded fastText supervised model.
pub struct FastText {
    /// The file; dense matrices are read from it in place.
    bytes: Vec<u8>,
    dim: usize,
    word_ngrams: i32,
    bucket: i32,
    minn: usize,
    maxn: usize,
    loss: Loss,
    nwords: i32,
    /// Every dictionary entry's bytes, and fastText's open-addressing table over them (by the
    /// token hash each token needs anyway for the word n-grams).
    words: Vec<Vec<u8>>,
    word2int: Vec<i32>,
    /// Whether entry i is a label.
    is_label: Vec<bool>,
    labels: Vec<String>,
    prune: Option<HashMap<i32, i32>>,
    input: Matrix,
    output: Matrix,
    /// Per label: the (internal node, goes right) steps from the root (hierarchical softmax).
    paths: Vec<Vec<(usize, bool)>>,
}

/// The slot of `word` in fastText's open-addressing table (`Dictionary::find`): its own, or
/// the empty one where it would go.
fn find(word2int: &[i32], words: &[Vec<u8>], word: &[u8], h: u32) -> usize {
    let n = word2int.len();
    let mut slot = h as usize % n;
    while word2int[slot] != -1 && words[word2int[slot] as usize] != word {
        slot = (slot + 1) % n;
    }
    slot
}

/// fastText's 32-bit FNV-1a with bytes sign-extended, as `Dictionary::hash`.
fn hash(bytes: &[u8]) -> u32 {
    let mut h: u32 = 2_166_136_261;
    for &b in bytes {
        h ^= b as i8 as i32 as u32;
        h = h.wrapping_mul(16_777_619);
    }
    h
}

impl FastText {
    /// Read a model from the bytes of a `.bin` or `.ftz` file.
    pub fn load(bytes: Vec<u8>) -> Result<Self, LoadError> {
        let mut r = Reader {
            bytes: &bytes,
            at: 0,
        };
        let magic = r.i32("the header")?;
        if magic != MAGIC {
            return Err("it is not a fastText model (wrong magic number)".into());
        }
        let version = r.i32("the header")?;
        if !(11..=VERSION).contains(&version) {
            return Err(format!(
                "fastText file format version {version} is not supported (versions 11 and 12 are)"
            ));
        }
        let mut a = [0i32; 12];
        for v in a.iter_mut() {
            *v = r.i32("the model arguments")?;
        }
        let _t = r.f64("the model arguments")?;
        let [dim, _ws, _epoch, _min_count, _neg, word_ngrams, loss, model, bucket, minn, mut maxn, _lr_update] =
            a;
        if model != 3 {
            return Err(format!(
                "it is a fastText {} model, not a supervised classifier",
                match model {
                    1 => "cbow (word vector)",
                    2 => "skipgram (word vector)",
                    _ => "unknown",
                }
            ));
        }
        if version == 11 {
            maxn = 0;
        }
        let loss = match loss {
            1 => Loss::HierarchicalSoftmax,
            2 => Loss::NegativeSampling,
            3 => Loss::Softmax,
            4 => Loss::OneVsAll,
            other => {
                return Err(format!(
                    "its loss (code {other}) is not one fastText defines"
                ))
            }
        };
        if dim <= 0 || bucket < 0 || minn < 0 || maxn < 0 {
            return Err(format!("its arguments are impossible (dim {dim}, bucket {bucket}, minn {minn}, maxn {maxn})"));
        }
        let size = r.i32("the dictionary")?;
        let nwords = r.i32("the dictionary")?;
        let nlabels = r.i32("the dictionary")?;
        let _ntokens = r.i64("the dictionary")?;
        let prune_size = r.i64("the dictionary")?;
        if size < 0 || nwords < 0 || nlabels <= 0 || nwords + nlabels != size {
            return Err(format!(
                "its dictionary sizes disagree ({size} entries, {nwords} words, {nlabels} labels)"
            ));
        }
        let mut words = Vec::with_capacity(size as usize);
        let mut is_label = Vec::with_capacity(size as usize);
        let mut labels = Vec::new();
        let mut counts = Vec::new();
        for _ in 0..size {
            let word = r.cstring("the dictionary")?;
            let count = r.i64("the dictionary")?;
            let kind = r.u8("the dictionary")?;
            if kind == 1 {
                labels.push(String::from_utf8_lossy(word).into_owned());
                counts.push(count);
            }
            is_label.push(kind == 1);
            words.push(word.to_vec());
        }
        let table = ((f64::from(size) / 0.7).ceil() as usize).max(1);
        let mut word2int = vec![-1i32; table];
        for (i, w) in words.iter().enumerate() {
            let slot = find(&word2int, &words, w, hash(w));
            word2int[slot] = i as i32;
        }
        if labels.len() != nlabels as usize {
            return Err(format!(
                "its dictionary lists {} labels, its header {nlabels}",
                labels.len()
            ));
        }
        let prune = if prune_size >= 0 {
            let mut map = HashMap::new();
            for _ in 0..prune_size {
                let from = r.i32("the pruning index")?;
                let to = r.i32("the pruning index")?;
                if to < 0 {
                    return Err(format!(
                        "its pruning index maps n-gram {from} to the negative row {to}"
                    ));
                }
                map.insert(from, to);
            }
            Some(map)
        } else {
            None
        };
        let quant_input = r.u8("the input matrix flag")? != 0;
        let (input, input_rows, in_cols) = Matrix::load(&mut r, quant_input, "the input matrix")?;
        if !quant_input && prune.is_some() {
            return Err("it has a pruned dictionary but an unquantised input matrix".into());
        }
        let qout = r.u8("the output matrix flag")? != 0;
        let (output, out_rows, out_cols) =
            Matrix::load(&mut r, quant_input && qout, "the output matrix")?;
        if in_cols != dim as usize || out_cols != dim as usize {
            return Err(format!(
                "its matrices have {in_cols} and {out_cols} columns, its dimension is {dim}"
            ));
        }
        let expected_out = if loss == Loss::HierarchicalSoftmax {
            (nlabels - 1).max(0) as usize
        } else {
            nlabels as usize
        };
        if out_rows < expected_out {
            return Err(format!(
                "its output matrix has {out_rows} rows for {nlabels} labels"
            ));
        }
        let buckets_kept = match &prune {
            None => bucket as usize,
            Some(p) => p.values().map(|&to| to as usize + 1).max().unwrap_or(0),
        };
        let rows_ok = match &prune {
            None => input_rows == nwords as usize + bucket as usize,
            Some(_) => input_rows >= nwords as usize + buckets_kept,
        };
        if !rows_ok {
            return Err(format!(
                "its input matrix has {input_rows} rows, expected {nwords} words + {buckets_kept} n-gram buckets"
            ));
        }
        if r.at != bytes.len() {
            return Err(format!(
                "{} bytes follow the model (not a fastText model file?)",
                bytes.len() - r.at
            ));
        }
        let paths = if loss == Loss::HierarchicalSoftmax {
            huffman_paths(&counts)
        } else {
            Vec::new()
        };
        Ok(FastText {
            bytes,
            dim: dim as usize,
            word_ngrams,
            bucket,
            minn: minn as usize,
            maxn: maxn as usize,
            loss,
            nwords,
            words,
            word2int,
            is_label,
            labels,
            prune,
            input,
            output,
            paths,
        })
    }

    /// The model's labels, in its order.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// Index of a label, e.g. `__label__hq`.
    pub fn label_index(&self, label: &str) -> Option<usize> {
        self.labels.iter().position(|l| l == label)
    }

    fn push_hash(&self, line: &mut Vec<usize>, id: i32) {
        if id < 0 {
            return;
        }
        let id = match &self.prune {
            None => id,
            Some(p) => match p.get(&id) {
                Some(&to) => to,
                None => return,
            },
        };
        line.push((self.nwords + id) as usize);
    }

    /// Character n-grams of `<word>`, as `Dictionary::computeSubwords`.
    fn subwords(&self, token: &[u8], line: &mut Vec<usize>) {
        if self.maxn == 0 || self.bucket == 0 {
            return;
        }
        let mut word = Vec::with_capacity(token.len() + 2);
        word.push(BOW);
        word.extend_from_slice(token);
        word.push(EOW);
        let mut ngram = Vec::new();
        for i in 0..word.len() {
            if word[i] & 0xC0 == 0x80 {
                continue;
            }
            ngram.clear();
            let mut j = i;
            let mut n = 1;
            while j < word.len() && n <= self.maxn {
                ngram.push(word[j]);
                j += 1;
                while j < word.len() && word[j] & 0xC0 == 0x80 {
                    ngram.push(word[j]);
                    j += 1;
                }
                if n >= self.minn && !(n == 1 && (i == 0 || j == word.len())) {
                    let h = hash(&ngram) % self.bucket as u32;
                    self.push_hash(line, h as i32);
                }
                n += 1;
            }
        }
    }

    /// The input rows of a text, as `Dictionary::getLine` (the text is one line: a line break
    /// inside it separates words, and `</s>` ends it).
    fn rows(&self, text: &[u8], line: &mut Vec<usize>, hashes: &mut Vec<i32>) {
        line.clear();
        hashes.clear();
        let tokens = text
            .split(|&c| matches!(c, b' ' | b'\n' | b'\r' | b'\t' | 0x0B | 0x0C | 0))
            .filter(|t| !t.is_empty())
            .chain(std::iter::once(EOS));
        for token in tokens {
            let h = hash(token);
            let id = match self.word2int[find(&self.word2int, &self.words, token, h)] {
                -1 => None,
                i => Some(i),
            };
            let label = match id {
                Some(i) => self.is_label[i as usize],
                None => token.starts_with(LABEL_PREFIX),
            };
            if label {
                continue;
            }
            match id {
                Some(wid) => {
                    line.push(wid as usize);
                    if token != EOS {
                        self.subwords(token, line);
                    }
                }
                None if token != EOS => self.subwords(token, line),
                None => {}
            }
            hashes.push(h as i32);
        }
        let n = self.word_ngrams.max(1) as usize;
        let bucket = u64::from(self.bucket.max(0) as u32);
        if bucket == 0 {
            return;
        }
        for (i, &first) in hashes.iter().enumerate() {
            let mut h = first as i64 as u64;
            for &next in &hashes[i + 1..hashes.len().min(i + n)] {
                h = h.wrapping_mul(116_049_371).wrapping_add(next as i64 as u64);
                self.push_hash(line, (h % bucket) as i32);
            }
        }
    }

    /// The probability fastText's `predict` reports for label `label` (an index into
    /// [`labels`](Self::labels)) given `text`; `None` when no word or n-gram of the text is in
    /// the model (fastText then predicts nothing).
    pub fn probability(&self, text: &str, label: usize, scratch: &mut Scratch) -> Option<f64> {
        self.rows(text.as_bytes(), &mut scratch.line, &mut scratch.hashes);
        if scratch.line.is_empty() {
            return None;
        }
        let hidden = &mut scratch.hidden;
        hidden.clear();
        hidden.resize(self.dim, 0.0);
        for &row in &scratch.line {
            self.input.add_row(&self.bytes, hidden, row);
        }
        let inv = (1.0 / scratch.line.len() as f64) as f32;
        hidden.iter_mut().for_each(|v| *v *= inv);
        let std_log = |x: f32| ((f64::from(x) + 1e-5).ln()) as f32;
        let score =
            match self.loss {
                Loss::Softmax => {
                    let out = &mut scratch.output;
                    out.clear();
                    out.extend(
                        (0..self.labels.len()).map(|i| self.output.dot_row(&self.bytes, hidden, i)),
                    );
                    let max = out.iter().copied().fold(out[0], f32::max);
                    let mut z = 0f32;
                    for v in out.iter_mut() {
                        *v = (*v - max).exp();
                        z += *v;
                    }
                    std_log(out[label] / z)
                }
                Loss::OneVsAll | Loss::NegativeSampling => std_log(table_sigmoid(
                    self.output.dot_row(&self.bytes, hidden, label),
                )),
                Loss::HierarchicalSoftmax => {
                    let mut score = 0f32;
                    for &(node, right) in &self.paths[label] {
                        let f = self.output.dot_row(&self.bytes, hidden, node);
                        // `1. / (1 + std::exp(-f))`: a float exp, a double quotient.
                        let f = (1.0 / f64::from(1.0 + (-f).exp())) as f32;
                        score += if right {
                            std_log(f)
                        } else {
                            std_log((1.0 - f64::from(f)) as f32)
                        };
                    }
                    score
                }
            };
        Some(f64::from(score.exp()))
    }
}

/// fastText's table sigmoid (`Loss::sigmoid`): 512 steps over [−8, 8].
fn table_sigmoid(x: f32) -> f32 {
    const SIZE: i64 = 512;
    const MAX: f32 = 8.0;
    if x < -MAX {
        0.0
    } else if x > MAX {
        1.0
    } else {
        let i = ((x + MAX) * SIZE as f32 / MAX / 2.0) as i64;
        let t = (i * 2 * MAX as i64) as f32 / SIZE as f32 - MAX;
        (1.0 / (1.0 + f64::from((-t).exp()))) as f32
    }
}

/// Root-to-leaf paths of fastText's Huffman tree over the label counts
/// (`HierarchicalSoftmaxLoss::buildTree`): (internal node − labels, is the right child).
fn huffman_paths(counts: &[i64]) -> Vec<Vec<(usize, bool)>> {
    let osz = counts.len();
    if osz < 2 {
        return vec![Vec::new(); osz];
    }
    let nodes = 2 * osz - 1;
    let mut count: Vec<i64> = (0..nodes)
        .map(|i| {
            if i < osz {
                counts[i]
            } else {
                1_000_000_000_000_000
            }
        })
        .collect();
    let mut parent = vec![usize::MAX; nodes];
    let mut binary = vec![false; nodes];
    let mut leaf = osz as isize - 1;
    let mut node = osz;
    for i in osz..nodes {
        let mut mini = [0usize; 2];
        for m in mini.iter_mut() {
            if leaf >= 0 && count[leaf as usize] < count[node] {
                *m = leaf as usize;
                leaf -= 1;
            } else {
                *m = node;
                node += 1;
            }
        }
        count[i] = count[mini[0]] + count[mini[1]];
        parent[mini[0]] = i;
        parent[mini[1]] = i;
        binary[mini[1]] = true;
    }
    (0..osz)
        .map(|i| {
            let mut path = Vec::new();
            let mut j = i;
            while parent[j] != usize::MAX {
                path.push((parent[j] - osz, binary[j]));
                j = parent[j];
            }
            path.reverse();
            path
        })
        .collect()
}

/// Reused buffers of one thread applying a model.
#[derive(Default)]
pub struct Scratch {
    line: Vec<usize>,
    hashes: Vec<i32>,
    hidden: Vec<f32>,
    output: Vec<f32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_sign_extends_bytes() {
        // fastText's value for "é" (0xC3 0xA9): bytes are int8_t, sign-extended.
        let mut h: u32 = 2_166_136_261;
        for b in [0xC3u8, 0xA9] {
            h ^= 0xFFFF_FF00 | u32::from(b);
            h = h.wrapping_mul(16_777_619);
        }
        assert_eq!(hash("é".as_bytes()), h);
        assert_eq!(hash(b"a"), (2_166_136_261u32 ^ 97).wrapping_mul(16_777_619));
    }

    #[test]
    fn huffman_paths_reach_every_label_once() {
        let paths = huffman_paths(&[50, 30, 15, 5]);
        assert_eq!(paths.len(), 4);
        // The most frequent label is nearest the root.
        assert!(paths[0].len() <= paths[3].len());
        assert!(paths.iter().all(|p| p.first().map(|s| s.0) == Some(2)));
    }

    #[test]
    fn refuses_garbage_and_truncation() {
        assert!(FastText::load(Vec::new())
            .err()
            .unwrap()
            .contains("ends early"));
        assert!(FastText::load(vec![0u8; 64])
            .err()
            .unwrap()
            .contains("magic"));
        let mut v = MAGIC.to_le_bytes().to_vec();
        v.extend(99i32.to_le_bytes());
        assert!(FastText::load(v).err().unwrap().contains("version 99"));
    }
}
