//! Benchmark guest. `bench run N PROGRAM` calls `run` N times and prints the
//! median time per call; `bench stream BYTES PROGRAM ARGS...` starts the
//! program and reads its stdout to the end, printing the throughput.
//! Timing uses the guest's monotonic clock, so it measures what a guest sees.

use std::io::Read;
use std::time::Instant;
use wasmproc_guest::Command;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("run") => run(&args[1..]),
        Some("stream") => stream(&args[1..]),
        _ => {
            eprintln!("usage: bench run N PROGRAM | bench stream PROGRAM ARGS...");
            std::process::exit(2);
        }
    }
}

fn run(args: &[String]) {
    let n: usize = args[0].parse().expect("N");
    let program = &args[1];
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        let out = Command::new(program).output().expect("run");
        samples.push(started.elapsed().as_nanos() as u64);
        assert!(out.status.success());
    }
    samples.sort_unstable();
    println!("median_ns: {}", samples[n / 2]);
}

fn stream(args: &[String]) {
    let started = Instant::now();
    let mut child = Command::new(&args[0])
        .args(&args[1..])
        .buffer_size(1 << 20)
        .spawn()
        .expect("start");
    let mut out = child.stdout.take().expect("stdout is piped by default");
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = out.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    let secs = started.elapsed().as_secs_f64();
    println!("bytes: {total}");
    println!("seconds: {secs}");
}
