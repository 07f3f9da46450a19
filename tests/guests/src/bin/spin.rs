//! Burns CPU forever, for deadline and fuel tests.

fn main() {
    let mut counter: u64 = 0;
    loop {
        counter = std::hint::black_box(counter.wrapping_add(1));
    }
}
