//! The loop's registry of live tasks: a slab, so insert and remove are O(1) and `close()` can
//! reach every task, including idle ones whose runnable lives inside a waker.

use std::sync::Arc;

use crate::task::TaskHeader;

#[derive(Default)]
pub(crate) struct TaskRegistry {
    slots: Vec<Option<Arc<TaskHeader>>>,
    free: Vec<usize>,
    len: usize,
}

impl TaskRegistry {
    pub(crate) fn insert(&mut self, header: Arc<TaskHeader>) {
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push(None);
                self.slots.len() - 1
            }
        };
        header.set_slot(slot);
        self.slots[slot] = Some(header);
        self.len += 1;
    }

    pub(crate) fn remove(&mut self, header: &TaskHeader) {
        let slot = header.slot();
        if let Some(entry) = self.slots.get_mut(slot) {
            if entry.as_ref().is_some_and(|h| h.id() == header.id()) {
                *entry = None;
                self.free.push(slot);
                self.len -= 1;
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn headers(&self) -> Vec<Arc<TaskHeader>> {
        self.slots.iter().flatten().cloned().collect()
    }
}
