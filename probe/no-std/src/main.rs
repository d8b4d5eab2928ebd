//! no_std link probe for deltaseal-verify: see Cargo.toml.
#![no_std]
#![no_main]

extern crate alloc;

use core::alloc::{GlobalAlloc, Layout};
use core::panic::PanicInfo;

use deltaseal_verify::bundle::Policy;
use deltaseal_verify::patch::{ImageIoError, ImageSink, Limits, SliceImage};
use deltaseal_verify::root::TrustRoot;
use deltaseal_verify::stream::{ReadBack, StreamInstaller};

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

/// A new-image sink that keeps nothing (a device would write flash).
struct NullSink;

impl ImageSink for NullSink {
    fn write(&mut self, _buf: &[u8]) -> Result<(), ImageIoError> {
        Ok(())
    }
}

impl ReadBack for NullSink {
    fn read_back(&mut self, _offset: u64, _buf: &mut [u8]) -> Result<(), ImageIoError> {
        Err(ImageIoError::Read)
    }
}

/// C entry point: touches the verify crate so that it is linked in,
/// including the streaming installer a device runs (`stream`).
#[unsafe(no_mangle)]
pub extern "C" fn main(_argc: i32, _argv: *const *const u8) -> i32 {
    let digest = deltaseal_verify::digest::sha256(b"probe");
    let mut status = i32::from(digest[0]);
    if let Ok(root) = TrustRoot::decode_body(&[0xa0]) {
        let mut inst = StreamInstaller::new(&root, Policy::default(), Limits::mcu());
        let old: &[u8] = &[];
        // The first bytes of a SUIT envelope (tag 107), as from a radio.
        if inst
            .feed(&[0xd8, 0x6b], &mut SliceImage(old), &mut NullSink)
            .is_ok()
        {
            status = status.wrapping_add(1);
        }
        if inst.finish().is_err() {
            status = status.wrapping_add(2);
        }
    }
    status
}
