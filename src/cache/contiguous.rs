//! Contiguous placement. STUB: being written.
use super::{KvCache, KvLayout, MemoryUsage, NoRoom, SeqId, SeqInfo};

/// One contiguous region per sequence in a linear address space, first-fit.
pub struct ContiguousCache {
    layout: KvLayout,
}

impl ContiguousCache {
    /// A cache over `budget_bytes` with `layout`.
    pub fn new(_budget_bytes: u64, layout: KvLayout) -> Self {
        ContiguousCache { layout }
    }
}

impl KvCache for ContiguousCache {
    fn admit(&mut self, _seq: &SeqInfo) -> Result<(), NoRoom> {
        todo!()
    }
    fn grow(&mut self, _seq: SeqId, _n: u32) -> Result<(), NoRoom> {
        todo!()
    }
    fn release(&mut self, _seq: SeqId) {
        todo!()
    }
    fn reset(&mut self) {
        todo!()
    }
    fn attended_bytes(&self, _seq: SeqId) -> u64 {
        todo!()
    }
    fn fits_when_empty(&self, _seq: &SeqInfo) -> bool {
        todo!()
    }
    fn usage(&self) -> MemoryUsage {
        todo!()
    }
    fn layout(&self) -> &KvLayout {
        &self.layout
    }
}
