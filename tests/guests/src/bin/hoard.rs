//! Holds WASI handles without ever dropping them (a stdout stream each
//! round) until the host refuses one, printing the count every 1000. Tests
//! the cap on the guest's resource table.

fn main() {
    for held in 1u64.. {
        std::mem::forget(wasip2::cli::stdout::get_stdout());
        if held % 1000 == 0 {
            println!("holding {held}");
        }
    }
}
