//! The instance pool of a [`Runtime`](crate::Runtime)'s engine: how many
//! guests may be instantiated at once and what each may hold.
//!
//! With a pool, wasmtime reserves every slot's address space when the
//! runtime starts and reuses slots: a guest's linear memory is reset by
//! remapping its copy-on-write image instead of mapping a fresh region, so
//! instantiating a prepared guest again costs well under a millisecond.
//! The reservation is virtual (no memory is committed until a guest touches
//! it), but it is large: each linear-memory slot spans the 4 GiB a 32-bit
//! memory can address plus a guard region, so [`InstancePool::memories`]
//! slots reserve about `memories × 4 GiB` of address space.

use wasmtime::{InstanceAllocationStrategy, PoolingAllocationConfig};

/// Sizes of the instance pool ([`RuntimeConfig::pool`](crate::RuntimeConfig::pool)).
///
/// The defaults fit 256 guests at once, each with up to 64 core instances,
/// two linear memories and sixteen tables (the Python and JavaScript
/// example components need at most one memory and a few tables each), and
/// reserve about 2 TiB of address space (of the 128 TiB a 64-bit Linux
/// process has). A guest that needs more than a limit allows fails to
/// instantiate with an error naming the limit; a guest instantiated while
/// every slot is taken fails the same way rather than waiting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstancePool {
    /// Guests (component instances) alive at once. Default 256.
    pub guests: u32,
    /// Core wasm instances alive at once, across all guests. Default
    /// `guests × 64`.
    pub core_instances: u32,
    /// Linear memories alive at once, across all guests; the term that
    /// sets the address-space reservation. Default `guests × 2`.
    pub memories: u32,
    /// Tables alive at once, across all guests. Default `guests × 16`.
    pub tables: u32,
    /// Most elements of one table. Default 100,000 (the default
    /// `guest_table_elements` limit of a policy).
    pub table_elements: usize,
    /// Most bytes of one linear memory. Default 4 GiB, all a 32-bit memory
    /// can address, so the policy's `guest_memory_bytes` is the limit that
    /// applies.
    pub memory_bytes: usize,
}

impl Default for InstancePool {
    fn default() -> Self {
        let guests = 256;
        Self {
            guests,
            core_instances: guests * 64,
            memories: guests * 2,
            tables: guests * 16,
            table_elements: 100_000,
            memory_bytes: 1 << 32,
        }
    }
}

impl InstancePool {
    /// The allocation strategy for an engine with this pool: copy-on-write
    /// memory images, and memories, tables and fiber stacks reused from
    /// their slots.
    pub(crate) fn strategy(&self) -> InstanceAllocationStrategy {
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(self.guests)
            .total_core_instances(self.core_instances)
            .total_memories(self.memories)
            .total_tables(self.tables)
            .total_stacks(self.guests)
            .total_gc_heaps(self.guests)
            .max_memories_per_module(2)
            .max_tables_per_module(16)
            .table_elements(self.table_elements)
            .max_memory_size(self.memory_bytes)
            // Component and core instance records of an interpreter-sized
            // guest (hundreds of functions and globals) outgrow the 1 MiB
            // default; this is a bound, not an allocation.
            .max_component_instance_size(4 << 20)
            .max_core_instance_size(4 << 20);
        InstanceAllocationStrategy::Pooling(pool)
    }
}
