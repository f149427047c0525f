//! Built-in models and GPUs. STUB: being written.

use crate::hardware::Gpu;
use crate::model::Model;

/// A catalog model with the public source of its numbers.
#[derive(Clone, Debug)]
pub struct ModelEntry {
    /// The model's shape.
    pub model: Model,
    /// Where its numbers come from.
    pub source: &'static str,
}

/// A catalog GPU with the public source of its numbers.
#[derive(Clone, Debug)]
pub struct GpuEntry {
    /// The GPU's numbers.
    pub gpu: Gpu,
    /// Where its numbers come from.
    pub source: &'static str,
}

/// Every built-in model, in catalog order.
pub fn models() -> Vec<ModelEntry> {
    Vec::new()
}

/// Every built-in GPU, in catalog order.
pub fn gpus() -> Vec<GpuEntry> {
    Vec::new()
}

/// The built-in model called `name`, if any.
pub fn model(name: &str) -> Option<Model> {
    models()
        .into_iter()
        .find(|e| e.model.name == name)
        .map(|e| e.model)
}

/// The built-in GPU called `name`, if any.
pub fn gpu(name: &str) -> Option<Gpu> {
    gpus()
        .into_iter()
        .find(|e| e.gpu.name == name)
        .map(|e| e.gpu)
}
