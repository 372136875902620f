//! GPU trainer (temporary shim until the WGSL trainer lands).
use super::{Sink, TrainJob, Trainer};
pub struct GpuTrainer;
impl GpuTrainer {
    pub fn new(_p: crate::backend::Precision) -> anyhow::Result<Self> {
        anyhow::bail!("the GPU trainer is not built yet")
    }
}
impl Trainer for GpuTrainer {
    fn name(&self) -> &'static str {
        "gpu"
    }
    fn adapter(&self) -> String {
        String::new()
    }
    fn train(&self, _j: &TrainJob, _r: std::ops::Range<u64>, _s: Sink) -> anyhow::Result<()> {
        anyhow::bail!("not built")
    }
}
