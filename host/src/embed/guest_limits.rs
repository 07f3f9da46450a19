//! Limits on a guest's own resources: linear memory, tables and instances,
//! recording when one was refused so a trap can be explained.

use crate::policy::limits::Limits;
use wasmtime::ResourceLimiter;

/// A `ResourceLimiter` that remembers whether it refused memory.
#[derive(Debug)]
pub(crate) struct GuestLimiter {
    memory_bytes: usize,
    table_elements: usize,
    hit_memory: bool,
}

impl GuestLimiter {
    pub(crate) fn new(limits: &Limits) -> Self {
        Self {
            memory_bytes: usize::try_from(limits.guest_memory_bytes).unwrap_or(usize::MAX),
            table_elements: limits.guest_table_elements as usize,
            hit_memory: false,
        }
    }

    /// Whether a memory growth was refused.
    pub(crate) fn hit_memory_limit(&self) -> bool {
        self.hit_memory
    }
}

impl ResourceLimiter for GuestLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = desired <= self.memory_bytes;
        self.hit_memory |= !allowed;
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= self.table_elements)
    }

    fn instances(&self) -> usize {
        64
    }

    fn tables(&self) -> usize {
        64
    }

    fn memories(&self) -> usize {
        16
    }
}
