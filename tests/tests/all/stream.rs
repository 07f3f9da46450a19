use serde_json::json;
use std::time::{Duration, Instant};
use wasmproc_host::process::Buffering;
use wasmproc_host::process::StdioMode;
use wasmproc_host::process::Stream;
use wasmproc_host::process::block_on;
use wasmproc_host::session::CommandSpec;
use wasmproc_host::session::StartSpec;
use wasmproc_tests::harness::{ok, policy, probe, session, shared_runtime};

fn fnv1a64(data: impl IntoIterator<Item = u8>) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}")
}

fn piped_stdin() -> StartSpec {
    StartSpec {
        stdin: StdioMode::Piped,
        ..StartSpec::default()
    }
}

#[test]
fn stream_binary_roundtrip_good() {
    // Every byte value, through `cat`, read back unchanged.
    let (_m, mut ctx) = session(policy(&["cat"]));
    let data: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
    let id = ctx.start(CommandSpec::new("cat"), piped_stdin()).unwrap();
    let mut sent = 0;
    let mut received = Vec::new();
    let mut cursor = 0;
    while sent < data.len() {
        sent += block_on(ctx.write(&id, &data[sent..], 1000)).unwrap() as usize;
        let chunk = block_on(ctx.read(&id, Stream::Stdout, cursor, 1 << 20, 0)).unwrap();
        cursor = chunk.next;
        received.extend(chunk.data);
    }
    ctx.close_stdin(&id).unwrap();
    loop {
        let chunk = block_on(ctx.read(&id, Stream::Stdout, cursor, 1 << 20, 1000)).unwrap();
        cursor = chunk.next;
        received.extend(chunk.data);
        if chunk.ended {
            break;
        }
    }
    assert_eq!(received.len(), data.len());
    assert!(received == data, "bytes changed in transit");
}

#[test]
fn stream_guest_reader_100mb_good() {
    // 100 MB read by a guest through ChildStdout, hash checked.
    let size = 100_000_000u64;
    let r = probe(
        shared_runtime(),
        policy(&["head"]),
        json!([
            {"op": "start", "program": "head", "args": ["-c", size.to_string(), "/dev/zero"]},
            {"op": "read_all", "id": "$0", "stream": "stdout"},
            {"op": "wait", "id": "$0", "timeout_ms": 10000},
        ]),
    );
    let read = ok(&r[1]);
    assert_eq!(read["len"], size);
    assert_eq!(read["dropped"], 0);
    assert_eq!(
        read["fnv1a64"],
        fnv1a64(std::iter::repeat_n(0u8, size as usize))
    );
    assert_eq!(ok(&r[2]), &json!({"exited": 0}));
}

#[test]
fn stream_lossless_slow_reader_good() {
    // A 4 KiB lossless buffer and a reader that starts late: the child
    // waits on the full pipe and nothing is lost.
    let r = probe(
        shared_runtime(),
        policy(&["seq"]),
        json!([
            {"op": "start", "program": "seq", "args": ["1", "200000"], "buffer_bytes": 4096, "buffering": "lossless"},
            {"op": "sleep_ms", "ms": 500},
            {"op": "get", "id": "$0"},
            {"op": "read_all", "id": "$0", "stream": "stdout"},
            {"op": "wait", "id": "$0", "timeout_ms": 10000},
        ]),
    );
    let early = ok(&r[2]);
    assert_eq!(early["state"], "running", "seq must be blocked on the pipe");
    assert!(early["stdout_received"].as_u64().unwrap() <= 4096);
    let expected: String = (1..=200_000).map(|n| format!("{n}\n")).collect();
    let read = ok(&r[3]);
    assert_eq!(read["len"], expected.len());
    assert_eq!(read["dropped"], 0);
    assert_eq!(read["fnv1a64"], fnv1a64(expected.bytes()));
}

#[test]
fn stream_ring_dropped_ugly() {
    // A 1000-byte ring over 10 000 bytes: exactly 9 000 dropped, and the
    // newest 1 000 kept.
    let r = probe(
        shared_runtime(),
        policy(&["head"]),
        json!([
            {"op": "start", "program": "head", "args": ["-c", "10000", "/dev/zero"], "buffer_bytes": 1000, "buffering": "ring"},
            {"op": "wait", "id": "$0", "timeout_ms": 10000},
            {"op": "sleep_ms", "ms": 200},
            {"op": "read_all", "id": "$0", "stream": "stdout"},
            {"op": "get", "id": "$0"},
        ]),
    );
    let read = ok(&r[3]);
    assert_eq!(read["len"], 1000);
    assert_eq!(read["dropped"], 9000);
    let info = ok(&r[4]);
    assert_eq!(info["stdout_received"], 10000);
    assert_eq!(info["stdout_dropped"], 9000);
}

#[test]
fn stream_interleaved_echo_good() {
    // Write a line, read it back, 200 times: no deadlock.
    let (_m, mut ctx) = session(policy(&["cat"]));
    let id = ctx.start(CommandSpec::new("cat"), piped_stdin()).unwrap();
    let started = Instant::now();
    let mut cursor = 0;
    for i in 0..200 {
        let line = format!("line {i}\n");
        assert_eq!(
            block_on(ctx.write(&id, line.as_bytes(), 5000)).unwrap() as usize,
            line.len()
        );
        let mut got = Vec::new();
        while got.len() < line.len() {
            let chunk = block_on(ctx.read(&id, Stream::Stdout, cursor, 4096, 5000)).unwrap();
            assert!(!chunk.ended, "cat ended early");
            cursor = chunk.next;
            got.extend(chunk.data);
        }
        assert_eq!(got, line.as_bytes());
    }
    assert!(started.elapsed() < Duration::from_secs(30));
    block_on(ctx.kill(&id)).unwrap();
}

#[test]
fn stream_read_after_exit_ugly() {
    // After the process has exited, a read returns the tail, then
    // end-of-stream.
    let (_m, mut ctx) = session(policy(&["printf"]));
    let id = ctx
        .start(
            CommandSpec::new("printf").args(["the tail"]),
            StartSpec::default(),
        )
        .unwrap();
    assert!(block_on(ctx.wait(&id, Some(10_000))).unwrap().is_some());
    let first = block_on(ctx.read(&id, Stream::Stdout, 0, 4096, 1000)).unwrap();
    let (data, next) = if first.ended {
        (first.data, first.next)
    } else {
        let second = block_on(ctx.read(&id, Stream::Stdout, first.next, 4096, 1000)).unwrap();
        assert!(second.ended && second.data.is_empty());
        (first.data, second.next)
    };
    assert_eq!(data, b"the tail");
    let last = block_on(ctx.read(&id, Stream::Stdout, next, 4096, 0)).unwrap();
    assert!(last.ended && last.data.is_empty());
    let err = block_on(ctx.read(&id, Stream::Stderr, 0, 16, 0)).unwrap();
    assert!(err.ended && err.data.is_empty(), "stderr was empty");
}

#[test]
fn stream_close_stdin_good() {
    let (_m, mut ctx) = session(policy(&["cat"]));
    let id = ctx.start(CommandSpec::new("cat"), piped_stdin()).unwrap();
    block_on(ctx.write(&id, b"bye\n", 1000)).unwrap();
    assert_eq!(
        block_on(ctx.wait(&id, Some(200))).unwrap(),
        None,
        "cat waits for input"
    );
    ctx.close_stdin(&id).unwrap();
    assert_eq!(
        block_on(ctx.wait(&id, Some(10_000))).unwrap(),
        Some(wasmproc_host::process::Exit::Code(0))
    );
    let out = block_on(ctx.read(&id, Stream::Stdout, 0, 4096, 1000)).unwrap();
    assert_eq!(out.data, b"bye\n");
    // Writing after close is refused, not silently dropped.
    assert!(block_on(ctx.write(&id, b"more", 0)).is_err());
}

#[test]
fn stream_write_backpressure_bad() {
    // A child that never reads: writes fill the pipe and the buffer, then
    // report zero bytes taken instead of growing without bound.
    let (_m, mut ctx) = session(policy(&["sleep"]));
    let spec = StartSpec {
        stdin: StdioMode::Piped,
        buffer_bytes: Some(4096),
        buffering: Buffering::Lossless,
        ..StartSpec::default()
    };
    let id = ctx
        .start(CommandSpec::new("sleep").args(["30"]), spec)
        .unwrap();
    let block = vec![7u8; 64 * 1024];
    let mut total = 0u64;
    for _ in 0..64 {
        total += block_on(ctx.write(&id, &block, 50)).unwrap();
    }
    assert!(total < 1 << 20, "took {total} bytes with nobody reading");
    assert_eq!(block_on(ctx.write(&id, &block, 50)).unwrap(), 0);
    block_on(ctx.kill(&id)).unwrap();
}

#[test]
fn stream_read_timeout_keeps_waiting_good() {
    // A read that times out returns no bytes and not-ended; the process and
    // its record stay.
    let (_m, mut ctx) = session(policy(&["sleep"]));
    let id = ctx
        .start(CommandSpec::new("sleep").args(["30"]), piped_stdin())
        .unwrap();
    let mut cursor = 0;
    for _ in 0..3 {
        let chunk = block_on(ctx.read(&id, Stream::Stdout, cursor, 4096, 200)).unwrap();
        assert!(chunk.data.is_empty() && !chunk.ended, "{chunk:?}");
        cursor = chunk.next;
        assert_eq!(block_on(ctx.write(&id, b"x\n", 200)).unwrap(), 2);
    }
    assert_eq!(
        ctx.get(&id).unwrap().state,
        wasmproc_host::process::ProcState::Running
    );
    block_on(ctx.kill(&id)).unwrap();
}
