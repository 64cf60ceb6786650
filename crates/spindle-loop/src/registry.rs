//! A registry of live tasks: a slab of [`TaskRef`]s, so insert and remove are O(1), the owner
//! can reach every task (including idle ones, whose runnable lives inside a waker: `close()`,
//! a runtime's shutdown), and a pending task stays alive until it completes. A loop has one; a
//! stealable [`TaskSet`](crate::TaskSet) has one per shard.

use crate::task::{TaskHeader, TaskRef};

#[derive(Default)]
pub(crate) struct TaskRegistry {
    slots: Vec<Option<TaskRef>>,
    free: Vec<usize>,
    len: usize,
}

impl TaskRegistry {
    /// Stores `task` and records where in its header: `slot_of` turns the registry's index
    /// into the header's slot (a sharded owner adds its shard).
    pub(crate) fn insert(&mut self, task: TaskRef, slot_of: impl FnOnce(usize) -> usize) {
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                self.slots.push(None);
                self.slots.len() - 1
            }
        };
        task.header().set_slot(slot_of(index));
        self.slots[index] = Some(task);
        self.len += 1;
    }

    /// Removes `header`'s task from `index` and hands back the registry's reference to it.
    pub(crate) fn remove(&mut self, index: usize, header: &TaskHeader) -> Option<TaskRef> {
        let entry = self.slots.get_mut(index)?;
        if entry.as_ref().is_some_and(|t| t.id() == header.id()) {
            self.free.push(index);
            self.len -= 1;
            entry.take()
        } else {
            None
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn refs(&self) -> Vec<TaskRef> {
        self.slots.iter().flatten().cloned().collect()
    }
}
