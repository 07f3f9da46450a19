//! Checks that its linear memory is as a fresh instance has it, then
//! leaves a marker everywhere it looked, for the instance-pool isolation
//! tests: a later guest in the same pool slot must find no marker.
//!
//! It looks at an initialised static (its data segment), a zeroed static
//! (`.bss`), and `GROWN_PAGES` pages it grows the memory by. It exits 0 if
//! all were pristine, and 2, printing what it found, if any was not.

use std::process::ExitCode;

/// What the initialised static holds in a fresh instance.
const DATA_BYTE: u8 = 0x5A;
/// What this guest leaves behind.
const MARKER: u8 = 0xC3;
/// Pages of 64 KiB the guest grows its memory by.
const GROWN_PAGES: usize = 64;
const PAGE: usize = 65_536;

static mut DATA: [u8; 8192] = [DATA_BYTE; 8192];
static mut BSS: [u8; 8192] = [0; 8192];

fn main() -> ExitCode {
    let mut dirty = Vec::new();
    // SAFETY: the guest is single-threaded, and nothing else refers to
    // these statics.
    let (data, bss) = unsafe {
        (
            &mut *std::ptr::addr_of_mut!(DATA),
            &mut *std::ptr::addr_of_mut!(BSS),
        )
    };
    if let Some(at) = data.iter().position(|&b| b != DATA_BYTE) {
        dirty.push(format!("data segment byte {at} is {:#x}", data[at]));
    }
    if let Some(at) = bss.iter().position(|&b| b != 0) {
        dirty.push(format!(".bss byte {at} is {:#x}", bss[at]));
    }
    data.fill(MARKER);
    bss.fill(MARKER);

    let old_pages = core::arch::wasm32::memory_grow(0, GROWN_PAGES);
    assert_ne!(old_pages, usize::MAX, "memory.grow failed");
    let start = old_pages * PAGE;
    // SAFETY: the pages were just added to the memory and no allocation
    // owns them.
    let grown = unsafe { std::slice::from_raw_parts_mut(start as *mut u8, GROWN_PAGES * PAGE) };
    if let Some(at) = grown.iter().position(|&b| b != 0) {
        dirty.push(format!(
            "grown memory byte {} is {:#x}",
            start + at,
            grown[at]
        ));
    }
    grown.fill(MARKER);

    if dirty.is_empty() {
        println!(
            "pristine; memory ends at {} bytes",
            start + GROWN_PAGES * PAGE
        );
        ExitCode::SUCCESS
    } else {
        println!("residue: {}", dirty.join("; "));
        ExitCode::from(2)
    }
}
