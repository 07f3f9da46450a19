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

use crate::deadline::Deadline;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::{Enabled, InstanceAllocationStrategy, PoolingAllocationConfig};

/// Sizes of the instance pool ([`RuntimeConfig::pool`](crate::RuntimeConfig::pool)),
/// and what a guest does when every slot is taken ([`WhenFull`]).
///
/// The default pool is sized from a memory budget
/// ([`InstancePool::for_memory_budget`]): a quarter of the host's memory
/// (the physical memory, or the host's cgroup `memory.max` if lower),
/// [`GUEST_SLOT_BYTES`] per guest, between [`MIN_DEFAULT_GUESTS`] and
/// [`MAX_DEFAULT_GUESTS`] guests. Each guest may hold up to 64 core
/// instances, two linear memories and sixteen tables (the Python and
/// JavaScript example components need at most one memory and a few tables
/// each). The pool reserves about 8 GiB of address space per guest (two
/// 4 GiB memory slots and their guards; 4 TiB for 512 guests, of the
/// 128 TiB a 64-bit Linux process has). A guest that needs more than a
/// limit allows fails to instantiate with an error naming the limit; a
/// guest instantiated while every slot is taken waits for one (the
/// default, [`WhenFull::Wait`]) or fails at once ([`WhenFull::Fail`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstancePool {
    /// Guests (component instances) alive at once. Default: sized from a
    /// memory budget ([`InstancePool::for_memory_budget`]).
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
    /// for a small guest), at most `tables × table_keep_resident` (1 MiB
    /// per guest of the default pool if every one of its sixteen table
    /// slots held a table this large).
    pub table_keep_resident: usize,
    /// What a guest instantiated while all [`InstancePool::guests`] slots
    /// are taken does. Default [`WhenFull::Wait`].
    pub when_full: WhenFull,
}

/// What a guest instantiated while every slot of the pool is taken does
/// ([`InstancePool::when_full`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhenFull {
    /// It waits for a slot, first come first served, until its own deadline
    /// (the end of its policy's `guest_time`, which the wait counts
    /// against; with no time limit, until a slot frees). Past the deadline
    /// it fails with [`NoSlot::WaitedPastDeadline`].
    #[default]
    Wait,
    /// It fails at once with [`NoSlot::Full`]: for hosts that would rather
    /// shed load than queue it.
    Fail,
}

/// Why a guest got no slot of the instance pool.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoSlot {
    /// Every slot was taken and the pool fails fast ([`WhenFull::Fail`]).
    #[error(
        "every one of the instance pool's {slots} guest slots is taken, and the pool fails fast when full (InstancePool::when_full)"
    )]
    Full {
        /// Slots of the pool.
        slots: u32,
    },
    /// Every slot stayed taken until the guest's deadline passed.
    #[error(
        "no slot of the instance pool's {slots} freed before the guest's deadline (guest_time {}; waited {waited_ms} ms)",
        humantime::format_duration(*.time_limit)
    )]
    WaitedPastDeadline {
        /// Slots of the pool.
        slots: u32,
        /// The guest's `guest_time`.
        time_limit: Duration,
        /// How long it waited.
        waited_ms: u64,
    },
}

/// Host memory budgeted per guest slot of the default pool. A small guest
/// waiting on a process holds far less resident (its store, instance
/// records, the touched part of its fiber stack, tables and linear memory:
/// about 0.1 MiB for the probe test guest, from the host's `VmRSS` with
/// 100 and 400 of them live); the budget leaves room for guests that fill
/// a few MiB of linear memory. A guest may hold more, up to its policy's
/// `guest_memory_bytes`: the budget sizes the pool, it limits no guest.
pub const GUEST_SLOT_BYTES: u64 = 8 << 20;

/// The fewest guests of a default pool, however small the host.
pub const MIN_DEFAULT_GUESTS: u32 = 64;

/// The most guests of a default pool, however large the host: 4 TiB of
/// address space reserved, and an engine that starts in milliseconds.
/// More guests than slots wait for one rather than fail, so a larger
/// pool buys concurrency, not correctness; an embedder sets it explicitly.
pub const MAX_DEFAULT_GUESTS: u32 = 512;

impl Default for InstancePool {
    /// A pool sized from a quarter of the host's memory
    /// ([`InstancePool::for_memory_budget`]).
    fn default() -> Self {
        Self::for_memory_budget(host_memory_bytes() / 4)
    }
}

impl InstancePool {
    /// A pool of `budget / GUEST_SLOT_BYTES` guests, at least
    /// [`MIN_DEFAULT_GUESTS`] and at most [`MAX_DEFAULT_GUESTS`], with the
    /// defaults of every other field.
    pub fn for_memory_budget(budget: u64) -> Self {
        let guests = (budget / GUEST_SLOT_BYTES)
            .clamp(u64::from(MIN_DEFAULT_GUESTS), u64::from(MAX_DEFAULT_GUESTS));
        Self::with_guests(u32::try_from(guests).unwrap_or(MAX_DEFAULT_GUESTS))
    }

    /// A pool of `guests` with the defaults of every other field.
    pub fn with_guests(guests: u32) -> Self {
        Self {
            guests,
            core_instances: guests * 64,
            memories: guests * 2,
            tables: guests * 16,
            table_elements: 100_000,
            memory_bytes: 1 << 32,
            memory_keep_resident: 0,
            table_keep_resident: 64 << 10,
            when_full: WhenFull::Wait,
        }
    }

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

/// The memory this host process may use: the physical memory, or the
/// `memory.max` of its cgroup (v2) if that is lower.
fn host_memory_bytes() -> u64 {
    // SAFETY: sysconf only reads system constants.
    let (pages, page_size) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    let physical = u64::try_from(pages)
        .unwrap_or(0)
        .saturating_mul(u64::try_from(page_size).unwrap_or(0));
    match cgroup_memory_max() {
        Some(max) if physical == 0 || max < physical => max,
        _ => physical,
    }
}

/// The `memory.max` of this process's cgroup v2, if it has a number there.
fn cgroup_memory_max() -> Option<u64> {
    let membership = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = membership.lines().find_map(|l| l.strip_prefix("0::"))?;
    let file = Path::new("/sys/fs/cgroup")
        .join(path.trim_start_matches('/'))
        .join("memory.max");
    std::fs::read_to_string(file).ok()?.trim().parse().ok()
}

/// The guest slots of a pool, handed out to guests before they are
/// instantiated so that a guest beyond the pool waits for a slot (or
/// fails fast) instead of failing inside the allocator.
#[derive(Debug, Clone)]
pub(crate) struct GuestSlots {
    free: Arc<Semaphore>,
    slots: u32,
    when_full: WhenFull,
}

/// One guest's slot; the slot frees when this drops (after the guest's
/// store).
#[derive(Debug)]
pub(crate) struct GuestSlot {
    _permit: OwnedSemaphorePermit,
}

impl GuestSlots {
    /// The slots of `pool`.
    pub(crate) fn new(pool: &InstancePool) -> Self {
        Self {
            free: Arc::new(Semaphore::new(pool.guests as usize)),
            slots: pool.guests,
            when_full: pool.when_full,
        }
    }

    /// Takes a slot: at once if one is free; otherwise, per the pool's
    /// [`WhenFull`], fails, or waits in turn until one frees or `deadline`
    /// (the guest's, `time_limit` long) passes. The wait with a
    /// deadline is timed on `core`, so any executor may await this.
    pub(crate) async fn take(
        &self,
        deadline: Deadline,
        time_limit: Duration,
        core: &tokio::runtime::Handle,
    ) -> Result<GuestSlot, NoSlot> {
        if let Ok(permit) = Arc::clone(&self.free).try_acquire_owned() {
            return Ok(GuestSlot { _permit: permit });
        }
        if self.when_full == WhenFull::Fail {
            return Err(NoSlot::Full { slots: self.slots });
        }
        let waiting = Instant::now();
        let free = Arc::clone(&self.free);
        let permit = if deadline == Deadline::NEVER {
            free.acquire_owned().await.ok()
        } else {
            let wait = deadline.timeout(free.acquire_owned());
            crate::process::core_runtime::on_core(core, wait)
                .await
                .flatten()
                .and_then(Result::ok)
        };
        permit
            .map(|permit| GuestSlot { _permit: permit })
            .ok_or(NoSlot::WaitedPastDeadline {
                slots: self.slots,
                time_limit,
                waited_ms: u64::try_from(waiting.elapsed().as_millis()).unwrap_or(u64::MAX),
            })
    }
}
