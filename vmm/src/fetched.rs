//! File reads a program's processor started without waiting for them
//! (`PORT_STORAGE_FETCH`): the monitor reads ahead of a program that reads
//! a file in order, so the storage component serves the next piece while
//! the program works on this one. The replies wait here, by the tag the
//! monitor gave each call, until it collects them (or drops them: the
//! file changed, or the program went elsewhere).

use std::collections::HashMap;
use std::sync::Mutex;

use crate::fabric::PendingCall;

/// A started read: where its reply goes in guest memory, and the call.
pub struct Kept {
    pub reply: u64,
    pub room: u32,
    /// The storage component asked (for the warning if it is silent).
    pub node: u32,
    pub call: Result<PendingCall, String>,
}

#[derive(Default)]
pub struct Fetched {
    inner: Mutex<HashMap<u64, Kept>>,
}

impl Fetched {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Kept>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps a started read under `tag`, unless `max` are kept already or
    /// the tag is taken: then it is dropped here, and collecting the tag
    /// finds nothing (the monitor then reads in the foreground).
    pub fn keep(&self, tag: u64, kept: Kept, max: usize) -> bool {
        let mut inner = self.lock();
        if inner.len() >= max || inner.contains_key(&tag) {
            return false;
        }
        inner.insert(tag, kept);
        true
    }

    /// The read kept under `tag`, taken out.
    pub fn take(&self, tag: u64) -> Option<Kept> {
        self.lock().remove(&tag)
    }

    /// Reads kept.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept() -> Kept {
        Kept {
            reply: 0x1000,
            room: 10,
            node: 3,
            call: Err("not sent".into()),
        }
    }

    #[test]
    fn reads_are_kept_by_tag_up_to_the_most() {
        let f = Fetched::default();
        assert!(f.keep(1, kept(), 2));
        assert!(!f.keep(1, kept(), 2), "a tag in use");
        assert!(f.keep(2, kept(), 2));
        assert!(!f.keep(3, kept(), 2), "over the most");
        assert_eq!(f.take(2).map(|k| k.reply), Some(0x1000));
        assert!(f.take(2).is_none());
        assert!(f.take(3).is_none());
        assert_eq!(f.len(), 1);
    }
}
