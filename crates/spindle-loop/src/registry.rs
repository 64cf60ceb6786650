//! The loop's registry of live tasks: a slab of [`TaskRef`]s, so insert and remove are O(1),
//! `close()` can reach every task (including idle ones, whose runnable lives inside a waker), and
//! a pending task stays alive until it completes or the loop closes.

use crate::task::{TaskHeader, TaskRef};

#[derive(Default)]
pub(crate) struct TaskRegistry {
    slots: Vec<Option<TaskRef>>,
    free: Vec<usize>,
    len: usize,
}

impl TaskRegistry {
    pub(crate) fn insert(&mut self, task: TaskRef) {
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push(None);
                self.slots.len() - 1
            }
        };
        task.header().set_slot(slot);
        self.slots[slot] = Some(task);
        self.len += 1;
    }

    /// Removes the task and hands back the registry's reference to it.
    pub(crate) fn remove(&mut self, header: &TaskHeader) -> Option<TaskRef> {
        let slot = header.slot();
        let entry = self.slots.get_mut(slot)?;
        if entry.as_ref().is_some_and(|t| t.id() == header.id()) {
            self.free.push(slot);
            self.len -= 1;
            entry.take()
        } else {
            None
        }
    }

    pub(crate) fn get(&self, slot: usize) -> Option<&TaskRef> {
        self.slots.get(slot)?.as_ref()
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
