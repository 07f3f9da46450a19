//! A guest that never touches the process capability, so its component does
//! not import it.

fn main() {
    println!("plain guest");
}
