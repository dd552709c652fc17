//! Per-parameter optimizer state: lazily created slot tensors and step counters, exported and
//! restored for checkpoints.

use crate::device::Device;
use crate::dtype::{DType, Element};
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use std::collections::BTreeMap;

/// The float types optimizers compute in.
pub(crate) trait Real: Element + num_traits::Float {}
impl Real for f32 {}
impl Real for f64 {}

/// The name of the step counter slot.
pub(crate) const STEP: &str = "step";

/// One state tensor an optimizer keeps per parameter.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SlotSpec {
    /// Slot name, the part after `<param>/` in `state()`.
    pub name: &'static str,
    /// One value per row (`[rows]`) instead of the parameter's shape.
    pub per_row: bool,
    /// The value a new slot is filled with.
    pub init: f64,
}

/// The state of one parameter.
pub(crate) struct ParamState {
    /// The slot tensors, in the order of the store's specs.
    pub slots: Vec<Tensor>,
    /// Updates applied so far (bias correction counts from it).
    pub step: u64,
}

impl ParamState {
    /// Mutable host views of every slot (copy-on-write when a snapshot shares one).
    pub fn slices<T: Element>(&mut self) -> Result<Vec<&mut [T]>> {
        self.slots.iter_mut().map(|t| t.host_data_mut::<T>()).collect()
    }
}

/// All parameters' state for one optimizer.
pub(crate) struct SlotStore {
    optimizer: &'static str,
    specs: Vec<SlotSpec>,
    has_step: bool,
    params: BTreeMap<String, ParamState>,
}

impl SlotStore {
    /// An empty store for `optimizer` keeping `specs` (and a step counter when `has_step`).
    pub fn new(optimizer: &'static str, specs: Vec<SlotSpec>, has_step: bool) -> Self {
        SlotStore { optimizer, specs, has_step, params: BTreeMap::new() }
    }

    fn slot_shape(spec: &SlotSpec, param_shape: &[usize]) -> Vec<usize> {
        if spec.per_row { vec![param_shape.first().copied().unwrap_or(1)] } else { param_shape.to_vec() }
    }

    /// The state of `param_name`, created on first use; existing state must fit `param`.
    pub fn entry(&mut self, param_name: &str, param: &Tensor) -> Result<&mut ParamState> {
        if !self.params.contains_key(param_name) {
            let mut slots = Vec::with_capacity(self.specs.len());
            for spec in &self.specs {
                let shape = Self::slot_shape(spec, param.shape());
                slots.push(Tensor::full(&shape, spec.init, param.dtype(), Device::Cpu)?);
            }
            self.params.insert(param_name.to_string(), ParamState { slots, step: 0 });
        }
        let state = self.params.get_mut(param_name).expect("inserted above");
        for (spec, slot) in self.specs.iter().zip(&state.slots) {
            let want = Self::slot_shape(spec, param.shape());
            if slot.shape() != want.as_slice() || slot.dtype() != param.dtype() {
                return Err(Error::shape(
                    "state",
                    format!(
                        "{}: slot `{param_name}/{}` is {} {:?} but parameter `{param_name}` ({} {:?}) needs {} {want:?} \
                         (state from another model?)",
                        self.optimizer,
                        spec.name,
                        slot.dtype(),
                        slot.shape(),
                        param.dtype(),
                        param.shape(),
                        param.dtype()
                    ),
                ));
            }
        }
        Ok(state)
    }

    /// Every slot as `("<param>/<slot>", tensor)`, sorted by name.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for (param, st) in &self.params {
            for (spec, t) in self.specs.iter().zip(&st.slots) {
                out.push((format!("{param}/{}", spec.name), t.clone()));
            }
            if self.has_step {
                let step = Tensor::from_slice(&[st.step as i64], &[]).expect("a scalar from one value");
                out.push((format!("{param}/{STEP}"), step));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Replaces all state with `state`, after checking all of it (one error lists every problem).
    pub fn load(&mut self, state: &[(String, Tensor)]) -> Result<()> {
        let mut problems = Vec::new();
        let mut grouped: BTreeMap<&str, BTreeMap<&str, &Tensor>> = BTreeMap::new();
        for (name, t) in state {
            let Some((param, slot)) = name.rsplit_once('/') else {
                problems.push(format!("`{name}` is not of the form <param>/<slot>"));
                continue;
            };
            let known = self.specs.iter().any(|s| s.name == slot) || (self.has_step && slot == STEP);
            if !known {
                problems.push(format!("`{name}`: unknown slot `{slot}` (expected {})", self.expected_slots()));
            } else if grouped.entry(param).or_default().insert(slot, t).is_some() {
                problems.push(format!("`{name}` given twice"));
            }
        }
        let mut params = BTreeMap::new();
        for (param, slots) in &grouped {
            if let Some(st) = self.check_param(param, slots, &mut problems) {
                params.insert(param.to_string(), st);
            }
        }
        if !problems.is_empty() {
            return Err(Error::invalid(
                "state",
                format!("{}: cannot load state: {}", self.optimizer, problems.join("; ")),
            ));
        }
        self.params = params;
        Ok(())
    }

    fn expected_slots(&self) -> String {
        let mut names: Vec<&str> = self.specs.iter().map(|s| s.name).collect();
        if self.has_step {
            names.push(STEP);
        }
        if names.is_empty() { "none: this optimizer keeps no state".into() } else { names.join(", ") }
    }

    /// One parameter's loaded slots as state, or `None` with the problems recorded.
    fn check_param(
        &self,
        param: &str,
        slots: &BTreeMap<&str, &Tensor>,
        problems: &mut Vec<String>,
    ) -> Option<ParamState> {
        let before = problems.len();
        let mut tensors = Vec::with_capacity(self.specs.len());
        let mut dtype: Option<DType> = None;
        let mut full_shape: Option<&[usize]> = None;
        for spec in &self.specs {
            let Some(t) = slots.get(spec.name) else {
                problems.push(format!("`{param}/{}` missing", spec.name));
                continue;
            };
            if !matches!(t.dtype(), DType::F32 | DType::F64) {
                problems.push(format!("`{param}/{}` is {}, expected f32 or f64", spec.name, t.dtype()));
            } else if dtype.is_some_and(|d| d != t.dtype()) {
                problems.push(format!(
                    "`{param}/{}` is {} but another slot is {}",
                    spec.name,
                    t.dtype(),
                    dtype.unwrap()
                ));
            }
            dtype.get_or_insert(t.dtype());
            if spec.per_row {
                if t.ndim() != 1 {
                    problems.push(format!("`{param}/{}` has shape {:?}, expected [rows]", spec.name, t.shape()));
                }
            } else if let Some(s) = full_shape {
                if s != t.shape() {
                    problems.push(format!(
                        "`{param}/{}` has shape {:?} but another slot has {s:?}",
                        spec.name,
                        t.shape()
                    ));
                }
            } else {
                full_shape = Some(t.shape());
            }
            tensors.push(t.to_device(Device::Cpu));
        }
        let mut step = 0;
        if self.has_step {
            match slots.get(STEP) {
                None => problems.push(format!("`{param}/{STEP}` missing")),
                Some(t) if t.dtype() != DType::I64 || t.numel() != 1 => {
                    problems.push(format!("`{param}/{STEP}` must be one i64, given {} {:?}", t.dtype(), t.shape()))
                }
                Some(t) => match t.to_vec::<i64>().map(|v| v[0]) {
                    Ok(s) if s >= 0 => step = s as u64,
                    Ok(s) => problems.push(format!("`{param}/{STEP}` is negative ({s})")),
                    Err(e) => problems.push(format!("`{param}/{STEP}`: {e}")),
                },
            }
        }
        let mut out = Vec::with_capacity(tensors.len());
        for (spec, t) in self.specs.iter().zip(tensors) {
            match t {
                Ok(t) => out.push(t),
                Err(e) => problems.push(format!("`{param}/{}`: {e}", spec.name)),
            }
        }
        (problems.len() == before).then_some(ParamState { slots: out, step })
    }
}
