//! Reading safetensors checkpoints (single file or sharded through
//! `model.safetensors.index.json`) straight from memory maps, and the
//! relative distance ‖a − b‖ / ‖b‖ between two of them, per tensor and over
//! the whole model. No tensor library: bf16/f16/f32 are decoded in chunks
//! and summed in f64, in parallel over slices of tensors.

mod distance;

use memmap2::Mmap;
use rayon::prelude::*;
use safetensors::{Dtype, SafeTensors};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: not a valid safetensors file: {message}")]
    Format { path: PathBuf, message: String },
    #[error("{path}: no *.safetensors weights")]
    NoWeights { path: PathBuf },
    #[error("{path}: {message}")]
    Index { path: PathBuf, message: String },
    #[error("{path}: a symbolic link; the judge does not read through links in the agent's output")]
    Symlink { path: PathBuf },
}

#[derive(Debug, Clone)]
struct Loc {
    file: usize,
    dtype: Dtype,
    shape: Vec<usize>,
    start: usize,
    end: usize,
}

/// An opened checkpoint: the maps stay open, tensors are byte ranges in them.
pub struct Checkpoint {
    pub dir: PathBuf,
    maps: Vec<Mmap>,
    tensors: BTreeMap<String, Loc>,
}

fn weight_files(dir: &Path) -> Result<Vec<PathBuf>, WeightsError> {
    let index = dir.join("model.safetensors.index.json");
    if index.exists() {
        let text = std::fs::read_to_string(&index).map_err(|source| WeightsError::Io { path: index.clone(), source })?;
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| WeightsError::Index { path: index.clone(), message: e.to_string() })?;
        let map = v
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| WeightsError::Index { path: index.clone(), message: "no `weight_map` object".into() })?;
        let mut files: Vec<String> = Vec::new();
        for f in map.values() {
            let f = f.as_str().ok_or_else(|| WeightsError::Index { path: index.clone(), message: "a `weight_map` value is not a string".into() })?;
            // A shard name is a file beside the index, never a path out of the checkpoint.
            if f.contains('/') || f.contains('\\') || f == ".." {
                return Err(WeightsError::Index { path: index.clone(), message: format!("shard `{f}` is not a file name in the checkpoint directory") });
            }
            if !files.iter().any(|g| g == f) {
                files.push(f.to_string());
            }
        }
        files.sort();
        return Ok(files.into_iter().map(|f| dir.join(f)).collect());
    }
    let rd = std::fs::read_dir(dir).map_err(|source| WeightsError::Io { path: dir.to_path_buf(), source })?;
    let mut files: Vec<PathBuf> = rd.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "safetensors")).collect();
    files.sort();
    if files.is_empty() {
        return Err(WeightsError::NoWeights { path: dir.to_path_buf() });
    }
    Ok(files)
}

impl Checkpoint {
    /// Open `dir`'s weights. With `no_links`, a shard that is a symbolic link
    /// is an error instead of being read (the agent's checkpoint).
    pub fn open(dir: &Path, no_links: bool) -> Result<Checkpoint, WeightsError> {
        let mut maps = Vec::new();
        let mut tensors = BTreeMap::new();
        for (i, path) in weight_files(dir)?.into_iter().enumerate() {
            let meta = std::fs::symlink_metadata(&path).map_err(|source| WeightsError::Io { path: path.clone(), source })?;
            if no_links && meta.file_type().is_symlink() {
                return Err(WeightsError::Symlink { path });
            }
            let file = std::fs::File::open(&path).map_err(|source| WeightsError::Io { path: path.clone(), source })?;
            // SAFETY: the map is read-only, and the store's inputs are not
            // written while a stage reads them (they are read-only mounts in
            // containers); a concurrent truncation could fault, as it would
            // for any mmap reader (the engine, safetensors in Python).
            let map = unsafe { Mmap::map(&file) }.map_err(|source| WeightsError::Io { path: path.clone(), source })?;
            // `deserialize` checks the header and that every tensor's range
            // lies inside the file: a truncated file is an error here.
            let st = SafeTensors::deserialize(&map).map_err(|e| WeightsError::Format { path: path.clone(), message: e.to_string() })?;
            let base = map.as_ptr() as usize;
            for (name, view) in st.iter() {
                let start = view.data().as_ptr() as usize - base;
                let loc = Loc { file: i, dtype: view.dtype(), shape: view.shape().to_vec(), start, end: start + view.data().len() };
                tensors.insert(name.to_string(), loc);
            }
            drop(st);
            maps.push(map);
        }
        Ok(Checkpoint { dir: dir.to_path_buf(), maps, tensors })
    }

    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.tensors.get(name).map(|l| l.shape.as_slice())
    }

    fn bytes(&self, l: &Loc) -> &[u8] {
        &self.maps[l.file][l.start..l.end]
    }

    /// The total size of the weights, in bytes.
    pub fn bytes_total(&self) -> u64 {
        self.tensors.values().map(|l| (l.end - l.start) as u64).sum()
    }
}

fn elem_size(d: Dtype) -> Option<usize> {
    match d {
        Dtype::F32 => Some(4),
        Dtype::BF16 | Dtype::F16 => Some(2),
        Dtype::F64 => Some(8),
        _ => None,
    }
}
/// One tensor's distance from the reference.
#[derive(Debug, Clone, Serialize)]
pub struct TensorDistance {
    pub tensor: String,
    /// ‖a − b‖ / ‖b‖ (0 when both are zero; infinite when only b is).
    pub distance: f64,
    /// Elements compared (fewer than the tensor's when vocabularies differ).
    pub elements: u64,
    /// The reference's tensor it was compared with, when not the same name
    /// (tied embeddings).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub against: Option<String>,
}

/// `a` measured against the reference `b`.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// ‖a − b‖ / ‖b‖ over every compared element.
    pub distance: f64,
    pub tensors: Vec<TensorDistance>,
    /// Tensors of the reference with no counterpart in `a`.
    pub missing: Vec<String>,
    /// Tensors of `a` the reference lacks.
    pub extra: Vec<String>,
    /// (name, shape in a, shape in b) where they cannot be compared.
    pub shape_mismatch: Vec<(String, Vec<usize>, Vec<usize>)>,
    /// Tensors skipped for a dtype the judge does not decode (int8, fp8…).
    pub skipped_dtype: Vec<String>,
    /// Resized vocabularies: (name, rows in a, rows in b); the shared rows were compared.
    pub resized: Vec<(String, usize, usize)>,
}

impl Comparison {
    /// The fraction of the reference's tensors compared.
    pub fn coverage(&self, reference_len: usize) -> f64 {
        if reference_len == 0 { 0.0 } else { self.tensors.len() as f64 / reference_len as f64 }
    }
}

fn is_vocab(name: &str) -> bool {
    name.ends_with("embed_tokens.weight") || name.ends_with("lm_head.weight") || name.ends_with("wte.weight") || name.ends_with("embed_out.weight")
}

fn embed_name(c: &Checkpoint) -> Option<String> {
    c.tensors.keys().find(|n| n.ends_with("embed_tokens.weight") || n.ends_with("wte.weight")).cloned()
}

/// One reference's share of a job: its pair, and its bytes for the job's
/// elements (fewer than the final model's where its vocabulary is smaller).
struct RefSlice<'a> {
    reference: usize,
    pair: usize,
    bytes: &'a [u8],
    dtype: Dtype,
}

/// One unit of work: a slice of one of the final model's tensors, and the
/// matching slices of every reference it is compared with.
struct Job<'a> {
    a: &'a [u8],
    da: Dtype,
    refs: Vec<RefSlice<'a>>,
}

/// Elements per job: 8 MiB of bf16, enough to amortise the scheduling and
/// small enough that two cores share a checkpoint's last tensors.
const CHUNK_ELEMS: usize = 1 << 22;

/// Match every tensor of the reference `b` with its counterpart in `a`:
/// (name in a, name in b, elements to compare); the rest goes to `cmp`.
fn pairs(a: &Checkpoint, b: &Checkpoint, cmp: &mut Comparison) -> Vec<(String, String, usize)> {
    let mut pairs = Vec::new();
    let a_embed = embed_name(a);
    let b_embed = embed_name(b);
    for (name, lb) in &b.tensors {
        // Tied embeddings: a checkpoint without `lm_head` uses the embedding.
        let an = if a.tensors.contains_key(name) {
            name.clone()
        } else if name.ends_with("lm_head.weight") && a_embed.is_some() {
            a_embed.clone().expect("checked")
        } else {
            cmp.missing.push(name.clone());
            continue;
        };
        let la = &a.tensors[&an];
        if elem_size(la.dtype).is_none() || elem_size(lb.dtype).is_none() {
            cmp.skipped_dtype.push(name.clone());
            continue;
        }
        let n = if la.shape == lb.shape {
            lb.shape.iter().product()
        } else if is_vocab(name) && la.shape.len() == 2 && lb.shape.len() == 2 && la.shape[1] == lb.shape[1] {
            // A resized vocabulary (added tokens): the shared rows are the base's.
            cmp.resized.push((name.clone(), la.shape[0], lb.shape[0]));
            la.shape[0].min(lb.shape[0]) * lb.shape[1]
        } else {
            cmp.shape_mismatch.push((name.clone(), la.shape.clone(), lb.shape.clone()));
            continue;
        };
        pairs.push((an, name.clone(), n));
    }
    for name in a.tensors.keys() {
        let tied_here = name.ends_with("lm_head.weight") && b_embed.is_some();
        if !b.tensors.contains_key(name) {
            if tied_here {
                // The agent untied (saved lm_head) a base with tied embeddings.
                let bn = b_embed.clone().expect("checked");
                let (la, lb) = (&a.tensors[name], &b.tensors[&bn]);
                if la.shape == lb.shape && elem_size(la.dtype).is_some() && elem_size(lb.dtype).is_some() {
                    pairs.push((name.clone(), bn, lb.shape.iter().product()));
                    continue;
                }
            }
            cmp.extra.push(name.clone());
        }
    }
    pairs
}

/// Compare every tensor of `b` with its counterpart in `a`, on rayon's pool.
pub fn compare(a: &Checkpoint, b: &Checkpoint) -> Comparison {
    compare_all(a, &[b]).pop().expect("one reference, one comparison")
}

/// `a` against each of `refs` (the base, the instruct model), in one pass
/// over `a`'s bytes: each slice of `a` is decoded once and measured against
/// every reference while it is in cache. Parallel over slices of tensors.
pub fn compare_all(a: &Checkpoint, refs: &[&Checkpoint]) -> Vec<Comparison> {
    let empty =
        || Comparison { distance: 0.0, tensors: vec![], missing: vec![], extra: vec![], shape_mismatch: vec![], skipped_dtype: vec![], resized: vec![] };
    let mut cmps: Vec<Comparison> = refs.iter().map(|_| empty()).collect();
    let all_pairs: Vec<Vec<(String, String, usize)>> = refs.iter().zip(cmps.iter_mut()).map(|(b, cmp)| pairs(a, b, cmp)).collect();
    // Group by the final model's tensor: (reference, pair index, elements).
    let mut by_tensor: BTreeMap<&str, Vec<(usize, usize, usize)>> = BTreeMap::new();
    for (r, ps) in all_pairs.iter().enumerate() {
        for (i, (an, _, n)) in ps.iter().enumerate() {
            by_tensor.entry(an.as_str()).or_default().push((r, i, *n));
        }
    }
    let mut jobs = Vec::new();
    for (an, group) in &by_tensor {
        let la = &a.tensors[*an];
        let ea = elem_size(la.dtype).expect("paired tensors have a decodable dtype");
        let ba = a.bytes(la);
        let most = group.iter().map(|g| g.2).max().unwrap_or(0);
        let mut from = 0;
        while from < most {
            let to = (from + CHUNK_ELEMS).min(most);
            let mut rs = Vec::new();
            for &(r, i, n) in group.iter().filter(|g| g.2 > from) {
                let lb = &refs[r].tensors[&all_pairs[r][i].1];
                let eb = elem_size(lb.dtype).expect("paired tensors have a decodable dtype");
                let end = to.min(n);
                rs.push(RefSlice { reference: r, pair: i, bytes: &refs[r].bytes(lb)[from * eb..end * eb], dtype: lb.dtype });
            }
            jobs.push(Job { a: &ba[from * ea..to * ea], da: la.dtype, refs: rs });
            from = to;
        }
    }
    // (reference, pair, ‖a − b‖², ‖b‖²) per job and reference.
    let sums: Vec<(usize, usize, f64, f64)> =
        jobs.par_iter().map_init(|| (vec![0.0f32; STEP], vec![0.0f32; STEP]), |(xa, xb), j| distance::job(j.a, j.da, &j.refs, xa, xb)).flatten_iter().collect();
    let mut per: Vec<Vec<(f64, f64)>> = all_pairs.iter().map(|ps| vec![(0.0, 0.0); ps.len()]).collect();
    for (r, i, d2, n2) in sums {
        per[r][i].0 += d2;
        per[r][i].1 += n2;
    }
    for ((cmp, ps), per) in cmps.iter_mut().zip(&all_pairs).zip(per) {
        let (mut td, mut tn) = (0.0, 0.0);
        for ((an, bn, n), (d2, n2)) in ps.iter().zip(per) {
            td += d2;
            tn += n2;
            cmp.tensors.push(TensorDistance { tensor: an.clone(), distance: ratio(d2, n2), elements: *n as u64, against: (an != bn).then(|| bn.clone()) });
        }
        cmp.distance = ratio(td, tn);
    }
    cmps
}

/// Elements decoded at a time: two f32 buffers of 16 KiB stay in L1.
const STEP: usize = 1 << 12;

fn ratio(d2: f64, n2: f64) -> f64 {
    if n2 > 0.0 {
        (d2 / n2).sqrt()
    } else if d2 == 0.0 {
        0.0
    } else {
        f64::INFINITY
    }
}
