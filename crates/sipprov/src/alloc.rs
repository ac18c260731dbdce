//! The server's global allocator: mimalloc, asked through its plain API whenever that gives the
//! alignment already.
//!
//! The `mimalloc` crate's `MiMalloc` hands every Rust allocation to `mi_malloc_aligned`, and
//! mimalloc 3's aligned path costs more than its plain one even on its fast path (the alignment
//! and size tests, the free block's address tested against the alignment), and past 1 KiB, or
//! whenever the size class's page has no free block, it takes its generic aligned path:
//! `mi_good_size`, then, for a size whose class is not a power of two, an over-allocation by the
//! alignment. Counted on the provisioning path (docs/benchmarks.md, "Session 21 run"), that was
//! about 700 instructions of allocation per request, eight allocations.
//!
//! mimalloc's author gives the test for when the plain call will do
//! (<https://github.com/microsoft/mimalloc/issues/314>): an alignment of at most
//! `MI_MAX_ALIGN_SIZE` (16) that is no larger than the size. Every block mimalloc hands out is
//! aligned to its size class's granularity: one word for the one-word class, two words for
//! every class above (mimalloc's `page-queue.c`, `MI_ALIGN2W` where `MI_MAX_ALIGN_SIZE` is more
//! than a word; on 64-bit targets `alloc.c` asserts 16 of each block of 16 bytes or more). So
//! the plain calls are used up to two words' alignment (16 bytes on 64-bit targets). Anything
//! else (a tokio task's 128-byte alignment) keeps the aligned API.

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys as mi;

/// The largest alignment the plain calls give a block at least as large: two words, at most
/// mimalloc's `MI_MAX_ALIGN_SIZE` (16, `include/mimalloc/types.h`).
const PLAIN_MAX_ALIGN: usize =
    if 2 * std::mem::size_of::<usize>() < 16 { 2 * std::mem::size_of::<usize>() } else { 16 };

/// mimalloc, through `mi_malloc`/`mi_zalloc`/`mi_realloc` when those align enough (see the
/// module documentation), else through their `_aligned` forms.
pub(crate) struct MiMalloc;

/// Whether mimalloc's plain calls give `align` for a block of `size` bytes.
#[inline]
fn plain_aligns(size: usize, align: usize) -> bool {
    align <= PLAIN_MAX_ALIGN && align <= size
}

// SAFETY: every call goes to mimalloc, which returns null or a block of at least `size` bytes
// aligned as asked: the plain calls only where their blocks are known to be (`plain_aligns`),
// the aligned ones otherwise. `mi_free` takes a block of either kind.
unsafe impl GlobalAlloc for MiMalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if plain_aligns(layout.size(), layout.align()) {
            // SAFETY: a plain allocation of a non-zero size (the caller's contract).
            unsafe { mi::mi_malloc(layout.size()).cast() }
        } else {
            // SAFETY: `Layout` guarantees a power-of-two alignment.
            unsafe { mi::mi_malloc_aligned(layout.size(), layout.align()).cast() }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if plain_aligns(layout.size(), layout.align()) {
            // SAFETY: as in `alloc`.
            unsafe { mi::mi_zalloc(layout.size()).cast() }
        } else {
            // SAFETY: as in `alloc`.
            unsafe { mi::mi_zalloc_aligned(layout.size(), layout.align()).cast() }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from this allocator (the caller's contract).
        unsafe { mi::mi_free(ptr.cast::<c_void>()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // The new block must have the old alignment at the new size.
        if plain_aligns(new_size, layout.align()) {
            // SAFETY: `ptr` came from this allocator, `new_size` is non-zero (the caller's
            // contract).
            unsafe { mi::mi_realloc(ptr.cast::<c_void>(), new_size).cast() }
        } else {
            // SAFETY: as above, with `Layout`'s power-of-two alignment.
            unsafe { mi::mi_realloc_aligned(ptr.cast::<c_void>(), new_size, layout.align()).cast() }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{plain_aligns, GlobalAlloc, Layout, MiMalloc};

    /// Every size up to past 1 KiB, sizes up to 4 KiB, and sizes past mimalloc's small and medium classes, at every alignment
    /// up to 4 KiB, from every entry point: each block aligned as asked, writable to its end,
    /// and its contents kept by a reallocation.
    #[test]
    fn every_block_is_aligned_as_asked() {
        let sizes = (1..=1100).chain((1101..=4096).step_by(53)).chain([8191, 8192, 12_000, 70_000, 300_000, 5 << 20]);
        for size in sizes {
            for align in (0..=12).map(|shift| 1usize << shift) {
                let layout = Layout::from_size_align(size, align).unwrap();
                // Several at once, so that blocks come from different places in their page.
                let mut blocks = Vec::new();
                for zeroed in [false, true, false] {
                    // SAFETY: a non-zero size; freed below with the same layout.
                    let p = unsafe {
                        if zeroed {
                            MiMalloc.alloc_zeroed(layout)
                        } else {
                            MiMalloc.alloc(layout)
                        }
                    };
                    assert!(!p.is_null(), "{size} {align}");
                    assert_eq!(
                        p as usize % align,
                        0,
                        "size {size}, align {align}, plain {}",
                        plain_aligns(size, align)
                    );
                    // SAFETY: the block holds `size` bytes.
                    unsafe {
                        if zeroed {
                            assert!(std::slice::from_raw_parts(p, size).iter().all(|&b| b == 0));
                        }
                        p.write_bytes(0xa5, size);
                    }
                    blocks.push(p);
                }
                for p in blocks {
                    let grown = size * 3 / 2 + 1;
                    // SAFETY: `p` came from `MiMalloc` with `layout`; `grown` is non-zero.
                    let q = unsafe { MiMalloc.realloc(p, layout, grown) };
                    assert!(!q.is_null());
                    assert_eq!(q as usize % align, 0, "realloc to {grown}, align {align}");
                    // SAFETY: the first `size` bytes were copied over; the block holds `grown`.
                    unsafe {
                        assert!(std::slice::from_raw_parts(q, size).iter().all(|&b| b == 0xa5));
                        MiMalloc.dealloc(q, Layout::from_size_align(grown, align).unwrap());
                    }
                }
            }
        }
    }
}
