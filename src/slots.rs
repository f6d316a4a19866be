//! A free list of table indexes with a high-water mark: the one allocator behind a worker's
//! connection table and its spill buffers.
//!
//! Indexes below the mark that were released are handed out again first (last released,
//! first reused); only then does the mark move up. Nothing above the mark was ever handed out,
//! so loops over a table need look at `0..high_water()` only. All-zero is the empty list, so a
//! list can live in `.bss`.

/// Free indexes of a table of `N` entries (`N` at most 65,536: indexes are stored as `u16`).
pub struct FreeList<const N: usize> {
    /// Released indexes, a stack of `free` entries.
    stack: [u16; N],
    free: usize,
    /// Indexes ever handed out: `0..fresh`.
    fresh: usize,
}

impl<const N: usize> FreeList<N> {
    /// No index handed out yet.
    pub const EMPTY: Self = {
        assert!(N <= 1 << 16, "indexes are stored as u16");
        FreeList {
            stack: [0; N],
            free: 0,
            fresh: 0,
        }
    };

    /// A free index, or `None` when all `N` are in use.
    pub fn alloc(&mut self) -> Option<usize> {
        if self.free > 0 {
            self.free -= 1;
            self.stack.get(self.free).map(|&i| i as usize) // always in bounds
        } else if self.fresh < N {
            self.fresh += 1;
            Some(self.fresh - 1)
        } else {
            None
        }
    }

    /// Returns index `i`, which `alloc` handed out and nobody uses any more.
    pub fn release(&mut self, i: usize) {
        // Always in bounds (no more are released than were handed out): no panic path.
        if let Some(top) = self.stack.get_mut(self.free) {
            *top = i as u16;
            self.free += 1;
        }
    }

    /// One past the highest index ever handed out.
    pub fn high_water(&self) -> usize {
        self.fresh
    }

    /// Indexes in use now.
    pub fn in_use(&self) -> usize {
        self.fresh - self.free
    }
}

#[cfg(test)]
mod test {
    use super::FreeList;

    #[test]
    fn reuses_the_last_released_first_then_runs_out() {
        let mut l = FreeList::<3>::EMPTY;
        assert_eq!((l.alloc(), l.alloc()), (Some(0), Some(1)));
        l.release(0);
        l.release(1);
        assert_eq!(l.in_use(), 0);
        assert_eq!(
            (l.alloc(), l.alloc(), l.alloc()),
            (Some(1), Some(0), Some(2))
        );
        assert_eq!(l.alloc(), None);
        assert_eq!((l.high_water(), l.in_use()), (3, 3));
    }
}
