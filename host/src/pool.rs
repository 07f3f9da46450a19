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
//!
//! A freed slot can keep the first [`InstancePool::table_keep_resident`]
//! bytes of each table and [`InstancePool::memory_keep_resident`] bytes of
//! each memory resident: wasmtime resets them to their initial contents in
//! place (only the pages the guest dirtied, where the kernel has the
//! `PAGEMAP_SCAN` ioctl, Linux 6.7 and later) instead of returning them to
//! the kernel, so the next guest in the slot takes no page faults there.
//! Everything past those bytes is returned to the kernel. Either way a
//! guest never sees what an earlier guest of its slot left behind.

use wasmtime::{Enabled, InstanceAllocationStrategy, PoolingAllocationConfig};

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
    /// Bytes at the start of each linear memory a freed slot keeps
    /// resident and resets in place. Default 0: instantiation touches
    /// almost none of a guest's memory (the Python example: one page), so
    /// only an embedder whose guests rerun often and fault in the same
    /// memory each run gains from it. Costs up to `memories ×
    /// memory_keep_resident` of resident memory, held by slots guests
    /// have used.
    pub memory_keep_resident: usize,
    /// Bytes at the start of each table a freed slot keeps resident and
    /// resets in place. Default 64 KiB, 8,192 function references: enough
    /// for the Python example's 5,684-element table, which its start code
    /// fills at every instantiation (12 page faults otherwise). Only pages
    /// a guest dirtied stay resident (52 KiB for the Python example, 4 KiB
    /// for a small guest), at most `tables × table_keep_resident` (256 MiB
    /// for the default pool if every one of its 4,096 table slots held a
    /// table this large).
    pub table_keep_resident: usize,
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
            memory_keep_resident: 0,
            table_keep_resident: 64 << 10,
        }
    }
}

impl InstancePool {
    /// The allocation strategy for an engine with this pool: copy-on-write
    /// memory images, and memories, tables and fiber stacks reused from
    /// their slots, the kept-resident part reset in place.
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
            .max_core_instance_size(4 << 20)
            .linear_memory_keep_resident(self.memory_keep_resident)
            .table_keep_resident(self.table_keep_resident)
            // Reset only the pages a guest dirtied, where the kernel can
            // say which (otherwise the whole kept-resident part is reset).
            .pagemap_scan(Enabled::Auto);
        InstanceAllocationStrategy::Pooling(pool)
    }
}
