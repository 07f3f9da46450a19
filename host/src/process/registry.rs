//! Which processes exist, and who owns each. A guest sees only the records
//! of its own session; ended records are evicted oldest first when a new one
//! needs room.

use crate::error::CallError;
use crate::os::child::LiveToken;
use crate::process::managed::Process;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Managed processes by owner, in start order.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    by_owner: Mutex<HashMap<String, Owned>>,
}

/// One owner's records in start order, indexed by id, with their buffer
/// total and their running count kept so a start checks its quotas without
/// walking every record, and a removal costs a lookup, not a scan.
#[derive(Debug, Default)]
struct Owned {
    /// Records by start sequence number: iteration is start order.
    in_order: BTreeMap<u64, Arc<Process>>,
    /// Start sequence number of each id.
    seq_of: HashMap<String, u64>,
    next_seq: u64,
    bytes: u64,
    /// Started processes of this owner not yet reaped: one per
    /// [`LiveToken`] alive.
    running: Arc<AtomicUsize>,
}

impl Owned {
    fn push(&mut self, process: Arc<Process>) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.bytes += process.buffered_capacity();
        self.seq_of.insert(process.facts().id.clone(), seq);
        self.in_order.insert(seq, process);
    }

    fn len(&self) -> usize {
        self.in_order.len()
    }

    fn get(&self, id: &str) -> Option<&Arc<Process>> {
        self.in_order.get(self.seq_of.get(id)?)
    }

    fn remove_seq(&mut self, seq: u64) -> Option<Arc<Process>> {
        let process = self.in_order.remove(&seq)?;
        self.bytes -= process.buffered_capacity();
        self.seq_of.remove(&process.facts().id);
        Some(process)
    }

    /// The sequence number of the oldest record whose process has ended.
    fn oldest_ended(&self) -> Option<u64> {
        self.in_order
            .iter()
            .find_map(|(&seq, p)| p.try_wait().is_some().then_some(seq))
    }

    fn into_records(self) -> impl Iterator<Item = Arc<Process>> {
        self.in_order.into_values()
    }
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Owned>> {
        self.by_owner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes room for one more record of `owner` whose buffers take
    /// `bytes`: evicts the oldest ended records while the owner holds
    /// `max_entries` records or more than `max_bytes` of buffers with the
    /// new one.
    pub(crate) fn reserve(
        &self,
        owner: &str,
        max_entries: usize,
        bytes: u64,
        max_bytes: u64,
    ) -> Result<(), CallError> {
        if bytes > max_bytes {
            return Err(CallError::LimitReached(format!(
                "buffers of {bytes} bytes exceed max_buffered_bytes = {max_bytes}"
            )));
        }
        let mut map = self.lock();
        let Some(owned) = map.get_mut(owner) else {
            return Ok(());
        };
        loop {
            let held = owned.bytes;
            let over_entries = owned.len() >= max_entries;
            let over_bytes = held + bytes > max_bytes;
            if !over_entries && !over_bytes {
                return Ok(());
            }
            let Some(oldest_ended) = owned.oldest_ended() else {
                return Err(CallError::LimitReached(if over_entries {
                    format!(
                        "{} process records held, all running (max_registry_entries = {max_entries})",
                        owned.len()
                    )
                } else {
                    format!(
                        "running processes hold {held} buffer bytes; {bytes} more exceed max_buffered_bytes = {max_bytes}"
                    )
                }));
            };
            if let Some(evicted) = owned.remove_seq(oldest_ended) {
                evicted.discard();
            }
        }
    }

    /// Adds a record.
    pub(crate) fn insert(&self, process: Arc<Process>) {
        let owner = process.facts().owner.clone();
        self.lock().entry(owner).or_default().push(process);
    }

    /// The record `id` if `owner` owns it.
    pub(crate) fn get(&self, owner: &str, id: &str) -> Option<Arc<Process>> {
        self.lock().get(owner)?.get(id).cloned()
    }

    /// The ids `owner` holds, in start order.
    pub(crate) fn ids(&self, owner: &str) -> Vec<String> {
        self.lock()
            .get(owner)
            .map(|o| o.in_order.values().map(|p| p.facts().id.clone()).collect())
            .unwrap_or_default()
    }

    /// How many of `owner`'s started processes are still running (not yet
    /// reaped). Constant time, whatever the number of records.
    pub(crate) fn live(&self, owner: &str) -> usize {
        self.lock()
            .get(owner)
            .map_or(0, |o| o.running.load(Ordering::Acquire))
    }

    /// Counts one more running process of `owner` until the token drops
    /// (when the child is reaped, or the start fails).
    pub(crate) fn count_live(&self, owner: &str) -> LiveToken {
        let mut map = self.lock();
        LiveToken::count(&map.entry(owner.to_string()).or_default().running)
    }

    /// Removes an ended record.
    pub(crate) fn remove(&self, owner: &str, id: &str) -> Result<(), CallError> {
        let mut map = self.lock();
        let owned = map
            .get_mut(owner)
            .ok_or_else(|| CallError::NotFound(id.to_string()))?;
        let &seq = owned
            .seq_of
            .get(id)
            .ok_or_else(|| CallError::NotFound(id.to_string()))?;
        if owned.in_order[&seq].try_wait().is_none() {
            return Err(CallError::Invalid(format!(
                "process `{id}` is still running"
            )));
        }
        if let Some(removed) = owned.remove_seq(seq) {
            removed.discard();
        }
        Ok(())
    }

    /// Takes every record of `owner` out of the registry.
    pub(crate) fn take_owner(&self, owner: &str) -> Vec<Arc<Process>> {
        self.lock()
            .remove(owner)
            .map(|o| o.into_records().collect())
            .unwrap_or_default()
    }

    /// Takes every record out of the registry.
    pub(crate) fn take_all(&self) -> Vec<Arc<Process>> {
        self.lock()
            .drain()
            .flat_map(|(_, o)| o.into_records())
            .collect()
    }

    /// A copy of every record, for the embedding host.
    pub(crate) fn all(&self) -> Vec<Arc<Process>> {
        self.lock()
            .values()
            .flat_map(|o| o.in_order.values().cloned())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_live_count_follows_tokens_good() {
        let registry = Registry::default();
        assert_eq!(registry.live("a"), 0);
        let first = registry.count_live("a");
        let second = registry.count_live("a");
        let other = registry.count_live("b");
        assert_eq!((registry.live("a"), registry.live("b")), (2, 1));
        drop(first);
        assert_eq!(registry.live("a"), 1);
        drop((second, other));
        assert_eq!((registry.live("a"), registry.live("b")), (0, 0));
    }

    #[test]
    fn registry_live_count_after_take_owner_ugly() {
        let registry = Registry::default();
        let old = registry.count_live("a");
        registry.take_owner("a");
        assert_eq!(registry.live("a"), 0, "a taken owner starts from zero");
        let new = registry.count_live("a");
        drop(old);
        assert_eq!(
            registry.live("a"),
            1,
            "an old token never lowers the new count"
        );
        drop(new);
        assert_eq!(registry.live("a"), 0);
    }
}
