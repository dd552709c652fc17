//! safetensors files: named tensors with string metadata, written deterministically and atomically, read back with every offset checked.
//!
//! The layout is the standard one (an 8-byte little-endian header length, a JSON header padded
//! with spaces to a multiple of 8, then the tensor bytes), so any safetensors reader opens
//! what we write. Graph files and training checkpoints both use this module; each adds its own
//! metadata keys and checks on top. A damaged file is always [`Error::Corrupt`], never a panic.

use crate::device::Device;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use crate::tensor::create::byte_size;
use serde_json::{Map, Value as Json, json};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// Largest header accepted: the safetensors reference reader's own limit. Checked before
/// anything is allocated, so a corrupt length cannot ask for a huge buffer.
pub const MAX_HEADER_BYTES: u64 = 100_000_000;

/// The safetensors name of a dtype.
pub fn dtype_name(dtype: DType) -> &'static str {
    match dtype {
        DType::F32 => "F32",
        DType::F64 => "F64",
        DType::F16 => "F16",
        DType::BF16 => "BF16",
        DType::I32 => "I32",
        DType::I64 => "I64",
        DType::U8 => "U8",
        DType::Bool => "BOOL",
    }
}

/// FNV-1a (64-bit) over `text` then each tensor's bytes in ascending name order, written
/// `fnv1a64:<16 hex digits>`. Tiny and dependency-free; it catches accidental corruption
/// (a flipped bit would otherwise load as a silently different model), not tampering.
pub fn checksum<'a>(text: &str, tensors: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> String {
    let mut sorted: Vec<(&str, &[u8])> = tensors.into_iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    feed(text.as_bytes());
    for (_, bytes) in sorted {
        feed(bytes);
    }
    format!("fnv1a64:{h:016x}")
}

/// One tensor's bytes on their way into a file.
pub struct Blob {
    /// The entry name.
    pub name: String,
    /// Element type.
    pub dtype: DType,
    /// Shape.
    pub shape: Vec<usize>,
    /// Row-major little-endian bytes.
    pub bytes: Vec<u8>,
}

impl Blob {
    /// Copies `t` out (contiguous, host) under `name`.
    pub fn of(name: impl Into<String>, t: &Tensor) -> Result<Blob> {
        let mut bytes = vec![0u8; t.nbytes()];
        t.copy_to_bytes(&mut bytes)?;
        Ok(Blob { name: name.into(), dtype: t.dtype(), shape: t.shape().to_vec(), bytes })
    }
}

/// The file bytes for `blobs` (entry names must be unique) and string `metadata`. Entries
/// are laid out in name order, so the same content always gives the same bytes.
pub fn encode(mut blobs: Vec<Blob>, metadata: &BTreeMap<String, String>) -> Result<Vec<u8>> {
    // safetensors is little-endian and tensors are copied out as raw host bytes.
    if cfg!(target_endian = "big") {
        return Err(Error::Unsupported("safetensors files on big-endian hosts".into()));
    }
    blobs.sort_by(|a, b| a.name.cmp(&b.name));
    if let Some(w) = blobs.windows(2).find(|w| w[0].name == w[1].name) {
        return Err(Error::invalid("tensors", format!("two tensors are named `{}`", w[0].name)));
    }
    if let Some(b) = blobs.iter().find(|b| b.name == "__metadata__") {
        return Err(Error::invalid("tensors", format!("`{}` is reserved for the metadata", b.name)));
    }
    let mut header = Map::new();
    header.insert("__metadata__".into(), json!(metadata));
    let mut offset = 0usize;
    for b in &blobs {
        let end = offset + b.bytes.len();
        header.insert(
            b.name.clone(),
            json!({ "dtype": dtype_name(b.dtype), "shape": b.shape, "data_offsets": [offset, end] }),
        );
        offset = end;
    }
    let mut header = Json::Object(header).to_string().into_bytes();
    // Pads with spaces to a multiple of 8, as the reference writer does, so the data starts aligned.
    header.resize(header.len().next_multiple_of(8), b' ');
    if header.len() as u64 > MAX_HEADER_BYTES {
        return Err(Error::Unsupported(format!(
            "a header of {} bytes is over the {MAX_HEADER_BYTES} that safetensors readers accept",
            header.len()
        )));
    }
    let mut out = Vec::with_capacity(8 + header.len() + offset);
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(&header);
    for b in &blobs {
        out.extend_from_slice(&b.bytes);
    }
    Ok(out)
}

/// An I/O failure as an engine error naming the file (`kind`: "graph file", "checkpoint", ...):
/// a missing file or folder is `NotFound`.
pub fn io_error(path: &Path, kind: &str, verb: &str, e: std::io::Error) -> Error {
    let msg = format!("cannot {verb} {kind} `{}`: {e}", path.display());
    if e.kind() == std::io::ErrorKind::NotFound { Error::NotFound(msg) } else { Error::invalid("path", msg) }
}

/// Writes `bytes` to a fresh file beside `path`, syncs it and renames it over `path`, so
/// readers see the old file or the whole new one, never a partial write. On failure the
/// old file is untouched and the temporary one removed.
pub fn write_atomic(path: &Path, kind: &str, bytes: &[u8]) -> Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let Some(file_name) = path.file_name() else {
        return Err(Error::invalid("path", format!("`{}` names no file", path.display())));
    };
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    // Unique per process and call, so concurrent saves to one path never share a temp file.
    let tmp = dir.join(format!(
        ".{}.{}.{}.tmp",
        file_name.to_string_lossy(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        // Best effort: the temp file may not exist if creating it was what failed.
        let _ = std::fs::remove_file(&tmp);
        return Err(io_error(path, kind, "write", e));
    }
    // Makes the rename itself durable; some filesystems refuse to sync a directory, which
    // leaves the data written and only the crash-safety of the rename weaker.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Where one tensor's bytes lie in the data region.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Element type.
    pub dtype: DType,
    /// Shape.
    pub shape: Vec<usize>,
    begin: usize,
    end: usize,
}

/// A parsed file borrowing its bytes: metadata and a checked table of entries.
pub struct Parsed<'a> {
    what: String,
    /// The `__metadata__` strings.
    pub metadata: HashMap<String, String>,
    entries: HashMap<String, Entry>,
    data: &'a [u8],
}

impl<'a> Parsed<'a> {
    /// Parses `bytes`; `what` (a path, "graph bytes") names the source in every error. Checks
    /// the header length, the JSON, every entry's dtype, shape and offsets, and that the
    /// entries tile the data region exactly (no gap, overlap, truncation or trailing bytes).
    pub fn new(bytes: &'a [u8], what: &str) -> Result<Parsed<'a>> {
        if cfg!(target_endian = "big") {
            return Err(Error::Unsupported("safetensors files on big-endian hosts".into()));
        }
        let mut p = Parsed { what: what.to_string(), metadata: HashMap::new(), entries: HashMap::new(), data: &[] };
        let (header, data) = p.split(bytes)?;
        p.data = data;
        p.header(header)?;
        Ok(p)
    }

    /// A `Corrupt` error about this file.
    pub fn corrupt(&self, msg: impl Into<String>) -> Error {
        Error::Corrupt { what: self.what.clone(), msg: msg.into() }
    }

    /// The entry names, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.entries.keys().map(String::as_str).collect();
        v.sort_unstable();
        v
    }

    /// The entry `name`, if present.
    pub fn entry(&self, name: &str) -> Option<&Entry> {
        self.entries.get(name)
    }

    /// The raw bytes of entry `name`, if present.
    pub fn bytes(&self, name: &str) -> Option<&'a [u8]> {
        self.entries.get(name).map(|e| &self.data[e.begin..e.end])
    }

    /// Entry `name` as a host tensor (a copy); a missing entry is `Corrupt`.
    pub fn tensor(&self, name: &str) -> Result<Tensor> {
        let e = self.entries.get(name).ok_or_else(|| self.corrupt(format!("tensor `{name}` is not in the file")))?;
        Tensor::from_bytes(&self.data[e.begin..e.end], e.dtype, &e.shape, Device::Cpu)
            .map_err(|err| self.corrupt(format!("tensor `{name}`: {err}")))
    }

    /// [`checksum`] over `text` and every entry of the file.
    pub fn checksum(&self, text: &str) -> String {
        checksum(text, self.entries.iter().map(|(k, e)| (k.as_str(), &self.data[e.begin..e.end])))
    }

    /// Splits the file into header text and data region.
    fn split<'b>(&self, bytes: &'b [u8]) -> Result<(&'b str, &'b [u8])> {
        if bytes.is_empty() {
            return Err(self.corrupt("the file is empty"));
        }
        let Some((len, rest)) = bytes.split_first_chunk::<8>() else {
            return Err(self.corrupt(format!(
                "the file is {} bytes, shorter than the 8-byte header length that starts a safetensors file",
                bytes.len()
            )));
        };
        let n = u64::from_le_bytes(*len);
        if n > MAX_HEADER_BYTES {
            return Err(self.corrupt(format!("header length {n} exceeds the {MAX_HEADER_BYTES}-byte limit")));
        }
        let n = n as usize;
        if n > rest.len() {
            return Err(self.corrupt(format!(
                "header length {n} exceeds the file ({} bytes after the length field); the file is truncated",
                rest.len()
            )));
        }
        let (header, data) = rest.split_at(n);
        let header =
            std::str::from_utf8(header).map_err(|e| self.corrupt(format!("the header is not UTF-8 text: {e}")))?;
        Ok((header, data))
    }

    /// Parses the header JSON into metadata and the entry table.
    fn header(&mut self, text: &str) -> Result<()> {
        // Writers pad with spaces only; anything else after the object is damage.
        let body = text.trim_end_matches(' ');
        if !body.ends_with('}') {
            return Err(self.corrupt("the header must be a JSON object followed only by space padding"));
        }
        let json: Json =
            serde_json::from_str(body).map_err(|e| self.corrupt(format!("the header JSON does not parse: {e}")))?;
        let Json::Object(obj) = json else { return Err(self.corrupt("the header is not a JSON object")) };
        for (key, value) in &obj {
            if key == "__metadata__" {
                let Json::Object(m) = value else { return Err(self.corrupt("`__metadata__` is not an object")) };
                for (k, v) in m {
                    let Json::String(s) = v else {
                        return Err(self.corrupt(format!("metadata `{k}` is not a string")));
                    };
                    self.metadata.insert(k.clone(), s.clone());
                }
            } else {
                let e = self.parse_entry(key, value)?;
                self.entries.insert(key.clone(), e);
            }
        }
        let mut spans: Vec<(&str, usize, usize)> =
            self.entries.iter().map(|(k, e)| (k.as_str(), e.begin, e.end)).collect();
        spans.sort_by_key(|&(k, b, e)| (b, e, k));
        let mut at = 0;
        for (k, b, e) in spans {
            if b != at {
                let what = if b < at { "overlaps the tensor before it" } else { "leaves a gap before it" };
                return Err(
                    self.corrupt(format!("tensor `{k}` starts at byte {b} of the data, which {what} (expected {at})"))
                );
            }
            at = e;
        }
        if at != self.data.len() {
            return Err(self.corrupt(format!(
                "the tensors cover {at} bytes of data but the file holds {} (the file is truncated or has extra bytes)",
                self.data.len()
            )));
        }
        Ok(())
    }

    fn parse_entry(&self, key: &str, value: &Json) -> Result<Entry> {
        let at = format!("tensor `{key}`");
        let field = |k: &str| value.get(k).ok_or_else(|| self.corrupt(format!("{at}: missing field `{k}`")));
        let index = |v: &Json, what: &str| {
            v.as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| self.corrupt(format!("{at}: {what} is {v}, not a non-negative integer")))
        };
        let dtype_text =
            field("dtype")?.as_str().ok_or_else(|| self.corrupt(format!("{at}: field `dtype` is not a string")))?;
        let Some(dtype) = DType::ALL.into_iter().find(|d| dtype_name(*d) == dtype_text) else {
            let known: Vec<&str> = DType::ALL.into_iter().map(dtype_name).collect();
            return Err(self.corrupt(format!("{at}: dtype `{dtype_text}` is none of {known:?}")));
        };
        let Json::Array(dims) = field("shape")? else {
            return Err(self.corrupt(format!("{at}: field `shape` is not an array")));
        };
        let shape = dims.iter().map(|d| index(d, "a shape entry")).collect::<Result<Vec<_>>>()?;
        let Json::Array(offsets) = field("data_offsets")? else {
            return Err(self.corrupt(format!("{at}: field `data_offsets` is not an array")));
        };
        let [b, e] = offsets.as_slice() else {
            return Err(self.corrupt(format!("{at}: `data_offsets` must hold two numbers")));
        };
        let (begin, end) = (index(b, "the begin offset")?, index(e, "the end offset")?);
        let data_len = self.data.len();
        if begin > end || end > data_len {
            return Err(
                self.corrupt(format!("{at}: data offsets [{begin}, {end}] lie outside the {data_len} bytes of data"))
            );
        }
        let need = byte_size(&shape, dtype, "shape").map_err(|err| self.corrupt(format!("{at}: {err}")))?;
        if end - begin != need {
            return Err(self.corrupt(format!(
                "{at}: {} bytes of data for shape {shape:?} of {dtype}, which needs {need}",
                end - begin
            )));
        }
        Ok(Entry { dtype, shape, begin, end })
    }
}
