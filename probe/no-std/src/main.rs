//! no_std link probe for deltaseal-verify: see Cargo.toml.
#![no_std]
#![no_main]

extern crate alloc;

use core::alloc::{GlobalAlloc, Layout};
use core::panic::PanicInfo;

/// An allocator that always fails: the probe only has to link, not run.
struct NoAlloc;

// SAFETY: returning null is always a valid (failed) allocation.
unsafe impl GlobalAlloc for NoAlloc {
    unsafe fn alloc(&self, _layout: Layout) -> *mut u8 {
        core::ptr::null_mut()
    }
    unsafe fn dealloc(&self, _ptr: *mut u8, _layout: Layout) {}
}

#[global_allocator]
static ALLOCATOR: NoAlloc = NoAlloc;

#[panic_handler]
fn panic(_info: &PanicInfo) -> ! {
    loop {}
}

/// C entry point: touches the verify crate so that it is linked in.
#[unsafe(no_mangle)]
pub extern "C" fn main(_argc: i32, _argv: *const *const u8) -> i32 {
    let digest = deltaseal_verify::digest::sha256(b"probe");
    i32::from(digest[0])
}
