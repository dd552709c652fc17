//! Training checkpoints: parameters, optimizer slots, step, RNG state and data cursor in one safetensors file, written atomically and found again after a crash.
//!
//! A checkpoint is `ckpt-<step, 12 digits>.safetensors` in the trainer's directory. Its
//! tensors are the parameters under the names the graph shows (so any safetensors reader
//! loads the weights), the optimizer slots as `optimizer/<param>/<slot>` and, with loss
//! scaling, the scaler's state as `amp/scale` and `amp/growth_tracker`. The metadata
//! holds `format` = `deepseek.checkpoint`, `format_version`, `step`, `rng_state`,
//! `data_cursor` and a checksum over those values and every tensor's bytes. Files are
//! written to a temporary name, synced and renamed, so a crash leaves the previous
//! checkpoint or the new one, never half of one; a damaged newest file is reported and the
//! one before it used.

use crate::error::{Error, Result};
use crate::safetensors::{Blob, Parsed, encode, io_error, write_atomic};
use crate::tensor::Tensor;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// The `format` metadata value of a checkpoint.
pub const CHECKPOINT_FORMAT: &str = "deepseek.checkpoint";

/// The checkpoint format version this library writes and reads.
pub const CHECKPOINT_VERSION: u64 = 1;

/// Prefix of optimizer slot entries.
const OPTIMIZER_PREFIX: &str = "optimizer/";

/// Prefix of mixed-precision state entries (the loss scaler's).
const AMP_PREFIX: &str = "amp/";

/// Everything needed to continue training bitwise where it stopped.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    /// Optimizer steps taken.
    pub step: u64,
    /// The trainer's random generator state.
    pub rng_state: u64,
    /// Samples of input data consumed (the caller's data stream position).
    pub data_cursor: u64,
    /// Parameters by graph name.
    pub params: Vec<(String, Tensor)>,
    /// Optimizer slots, each named `<param>/<slot>`.
    pub optimizer_state: Vec<(String, Tensor)>,
    /// Mixed-precision state (`scale`, `growth_tracker`); empty without loss scaling and in
    /// checkpoints written before it existed.
    pub amp_state: Vec<(String, Tensor)>,
}

impl Checkpoint {
    /// The file name of the checkpoint after `step` steps; names sort by step.
    pub fn file_name(step: u64) -> String {
        format!("ckpt-{step:012}.safetensors")
    }

    /// The step a checkpoint file name encodes, if it is one.
    pub fn step_of(file_name: &str) -> Option<u64> {
        let digits = file_name.strip_prefix("ckpt-")?.strip_suffix(".safetensors")?;
        (digits.len() == 12 && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.parse().ok())?
    }

    /// The text the checksum covers besides the tensors: the scalar state, in a fixed order.
    fn summary(step: u64, rng_state: u64, data_cursor: u64) -> String {
        format!("step={step};rng_state={rng_state};data_cursor={data_cursor}")
    }

    /// The checkpoint as safetensors bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut blobs = Vec::with_capacity(self.params.len() + self.optimizer_state.len());
        for (name, t) in &self.params {
            if name.starts_with(AMP_PREFIX) {
                return Err(Error::invalid(
                    "params",
                    format!(
                        "parameter `{name}` starts with `{AMP_PREFIX}`, which checkpoints reserve for mixed-precision state"
                    ),
                ));
            }
            if name.starts_with(OPTIMIZER_PREFIX) {
                return Err(Error::invalid(
                    "params",
                    format!(
                        "parameter `{name}` starts with `{OPTIMIZER_PREFIX}`, which checkpoints reserve for optimizer slots"
                    ),
                ));
            }
            blobs.push(Blob::of(name.clone(), t)?);
        }
        for (name, t) in &self.optimizer_state {
            blobs.push(Blob::of(format!("{OPTIMIZER_PREFIX}{name}"), t)?);
        }
        for (name, t) in &self.amp_state {
            blobs.push(Blob::of(format!("{AMP_PREFIX}{name}"), t)?);
        }
        let summary = Self::summary(self.step, self.rng_state, self.data_cursor);
        let sum = crate::safetensors::checksum(&summary, blobs.iter().map(|b| (b.name.as_str(), b.bytes.as_slice())));
        let metadata = BTreeMap::from([
            ("format".to_string(), CHECKPOINT_FORMAT.to_string()),
            ("format_version".to_string(), CHECKPOINT_VERSION.to_string()),
            ("step".to_string(), self.step.to_string()),
            ("rng_state".to_string(), self.rng_state.to_string()),
            ("data_cursor".to_string(), self.data_cursor.to_string()),
            ("checksum".to_string(), sum),
        ]);
        encode(blobs, &metadata)
    }

    /// Parses and verifies bytes written by [`Checkpoint::to_bytes`]; `what` names the source
    /// in errors. Damage of any kind is [`Error::Corrupt`].
    pub fn from_bytes(bytes: &[u8], what: &str) -> Result<Checkpoint> {
        let file = Parsed::new(bytes, what)?;
        let meta = |key: &str| {
            file.metadata.get(key).ok_or_else(|| file.corrupt(format!("the metadata has no `{key}`; not a checkpoint")))
        };
        let number = |key: &str| -> Result<u64> {
            let text = meta(key)?;
            text.parse().map_err(|_| file.corrupt(format!("metadata `{key}` is `{text}`, not a number")))
        };
        if meta("format")? != CHECKPOINT_FORMAT {
            return Err(file.corrupt(format!(
                "format `{}` is not a deepseek checkpoint (expected `{CHECKPOINT_FORMAT}`)",
                meta("format")?
            )));
        }
        match number("format_version")? {
            CHECKPOINT_VERSION => {}
            v if v > CHECKPOINT_VERSION => {
                return Err(file.corrupt(format!(
                    "written by a newer checkpoint format version {v}; this library reads version {CHECKPOINT_VERSION}"
                )));
            }
            v => return Err(file.corrupt(format!("checkpoint format version {v} is not one this library reads"))),
        }
        let (step, rng_state, data_cursor) = (number("step")?, number("rng_state")?, number("data_cursor")?);
        let sum = file.checksum(&Self::summary(step, rng_state, data_cursor));
        if *meta("checksum")? != sum {
            return Err(file.corrupt(format!(
                "checksum mismatch: the file says {}, its contents hash to {sum} (the file was altered or damaged)",
                meta("checksum")?
            )));
        }
        let mut ckpt = Checkpoint {
            step,
            rng_state,
            data_cursor,
            params: Vec::new(),
            optimizer_state: Vec::new(),
            amp_state: Vec::new(),
        };
        for name in file.names() {
            let t = file.tensor(name)?;
            if let Some(slot) = name.strip_prefix(OPTIMIZER_PREFIX) {
                ckpt.optimizer_state.push((slot.to_string(), t));
            } else if let Some(entry) = name.strip_prefix(AMP_PREFIX) {
                ckpt.amp_state.push((entry.to_string(), t));
            } else {
                ckpt.params.push((name.to_string(), t));
            }
        }
        Ok(ckpt)
    }

    /// Reads and verifies the checkpoint file at `path`.
    pub fn load(path: &Path) -> Result<Checkpoint> {
        let bytes = std::fs::read(path).map_err(|e| io_error(path, "checkpoint", "read", e))?;
        Self::from_bytes(&bytes, &path.display().to_string())
    }

    /// Lists how this checkpoint's parameters differ from `expected` (name, dtype, shape), one
    /// line per difference; empty when they match.
    pub fn param_differences(&self, expected: &[(String, Tensor)]) -> Vec<String> {
        let have: HashMap<&str, &Tensor> = self.params.iter().map(|(n, t)| (n.as_str(), t)).collect();
        let want: HashMap<&str, &Tensor> = expected.iter().map(|(n, t)| (n.as_str(), t)).collect();
        let mut diffs = Vec::new();
        for (name, w) in expected {
            match have.get(name.as_str()) {
                None => diffs.push(format!("`{name}` is missing from the checkpoint")),
                Some(h) if h.dtype() != w.dtype() || h.shape() != w.shape() => diffs.push(format!(
                    "`{name}` is {} {:?} in the checkpoint but {} {:?} in the graph",
                    h.dtype(),
                    h.shape(),
                    w.dtype(),
                    w.shape()
                )),
                Some(_) => {}
            }
        }
        for (name, _) in &self.params {
            if !want.contains_key(name.as_str()) {
                diffs.push(format!("`{name}` is in the checkpoint but not a parameter of the graph"));
            }
        }
        diffs
    }
}

/// A directory of checkpoints: saves keep the newest `keep`; loading finds the newest valid one.
#[derive(Debug, Clone)]
pub struct CheckpointDir {
    dir: PathBuf,
    keep: usize,
}

/// What [`CheckpointDir::load_newest`] found.
#[derive(Debug)]
pub struct Recovered {
    /// The checkpoint loaded.
    pub checkpoint: Checkpoint,
    /// Its file.
    pub path: PathBuf,
    /// One line per newer file that could not be used, with the reason.
    pub skipped: Vec<String>,
}

impl CheckpointDir {
    /// Checkpoints under `dir` (created when missing), keeping the newest `keep` (at least 1).
    pub fn new(dir: impl Into<PathBuf>, keep: usize) -> Result<CheckpointDir> {
        let dir = dir.into();
        if keep == 0 {
            return Err(Error::invalid("keep", "a checkpoint directory must keep at least 1 checkpoint"));
        }
        std::fs::create_dir_all(&dir).map_err(|e| io_error(&dir, "checkpoint directory", "create", e))?;
        Ok(CheckpointDir { dir, keep })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Checkpoint files present, newest first.
    pub fn list(&self) -> Result<Vec<(u64, PathBuf)>> {
        let entries =
            std::fs::read_dir(&self.dir).map_err(|e| io_error(&self.dir, "checkpoint directory", "read", e))?;
        let mut found: Vec<(u64, PathBuf)> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| Some((Checkpoint::step_of(e.file_name().to_str()?)?, e.path())))
            .collect();
        found.sort_by_key(|f| std::cmp::Reverse(f.0));
        Ok(found)
    }

    /// Writes `ckpt` atomically, then removes all but the newest `keep` checkpoints. On a
    /// failed write (read-only or full directory) the error names the file and every older
    /// checkpoint is left as it was.
    pub fn save(&self, ckpt: &Checkpoint) -> Result<PathBuf> {
        let path = self.dir.join(Checkpoint::file_name(ckpt.step));
        write_atomic(&path, "checkpoint", &ckpt.to_bytes()?)?;
        for (_, old) in self.list()?.into_iter().skip(self.keep) {
            // Best effort: a checkpoint that cannot be pruned costs disk space, not correctness.
            let _ = std::fs::remove_file(old);
        }
        Ok(path)
    }

    /// The newest checkpoint that reads and verifies, with a line for each newer one that did
    /// not (truncated, corrupt, unreadable); `None` when the directory holds none at all.
    /// When every file is damaged, the error lists them all.
    pub fn load_newest(&self) -> Result<Option<Recovered>> {
        let mut skipped = Vec::new();
        let files = self.list()?;
        if files.is_empty() {
            return Ok(None);
        }
        for (_, path) in files {
            match Checkpoint::load(&path) {
                Ok(checkpoint) => return Ok(Some(Recovered { checkpoint, path, skipped })),
                Err(e) => skipped.push(format!("skipped {}: {e}", path.display())),
            }
        }
        Err(Error::Corrupt {
            what: self.dir.display().to_string(),
            msg: format!("no checkpoint in the directory is usable: {}", skipped.join("; ")),
        })
    }
}
