//! Allocates memory a MiB at a time until allocation fails, for memory-limit
//! tests. Exits with code 3 once it does.

use std::process::ExitCode;

const MIB: usize = 1 << 20;

fn main() -> ExitCode {
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut block = Vec::new();
        if blocks.try_reserve(1).is_err() || block.try_reserve_exact(MIB).is_err() {
            break;
        }
        // Touch every byte so the memory is really committed.
        block.resize(MIB, 0xA5);
        blocks.push(block);
        if blocks.len().is_multiple_of(16) {
            println!("allocated {} MiB", blocks.len());
        }
    }
    println!("grow failed at {} MiB", blocks.len());
    ExitCode::from(3)
}
