// Cases of Node's test/parallel/test-child-process-*.js, each re-expressed
// for a guest without Node's harness and named after the file it comes
// from (in its comment). The children are small shell lines.
//
// A case resolves when `wasmproc` behaves as `node:child_process` does,
// and throws when it does not. A case registered with `difference` checks
// a deliberate difference: it resolves when wasmproc behaves as
// documented, which is not how Node behaves.

import {
  ChildProcess,
  exec,
  execFile,
  execFilePromise,
  execFileSync,
  execSync,
  spawn,
  spawnSync,
} from "../index.js";

/** `[name, fn, difference or undefined]`, in order. */
export const CASES = [];

function test(name, fn) {
  CASES.push([name, fn, undefined]);
}

function difference(name, what, fn) {
  CASES.push([name, fn, what]);
}

class Failed extends Error {}

function expect(condition, why) {
  if (!condition) throw new Failed(why);
}

function same(got, want) {
  const [g, w] = [JSON.stringify(got), JSON.stringify(want)];
  if (g !== w) throw new Failed(`got ${g}, want ${w}`);
}

function throws(fn) {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Failed("threw nothing");
}

const text = (bytes) => new TextDecoder().decode(bytes);

/** The arguments of the next `event` of `emitter`. */
function next(emitter, event) {
  return new Promise((resolve) => emitter.once(event, (...args) => resolve(args)));
}

/** `execFile` as a promise of `[error, stdout, stderr]`. */
function execFileResult(file, args, options) {
  return new Promise((resolve) => execFile(file, args, options ?? {}, (...result) => resolve(result)));
}

/** All of a child's stdout (by 'data' events) and its close arguments. */
async function collect(child) {
  let out = "";
  child.stdout.setEncoding("utf8");
  child.stdout.on("data", (chunk) => (out += chunk));
  const [code, signal] = await next(child, "close");
  return { out, code, signal };
}

// ---- execFile, exec ----

// test-child-process-execfile.js: stdout of a child that succeeds.
test("exec_file_stdout", async () => {
  const [error, stdout, stderr] = await execFileResult("echo", ["hello"]);
  same([error, stdout, stderr], [null, "hello\n", ""]);
});

// test-child-process-execfile.js: the exit code is the error's `code`.
test("exec_file_exit_code", async () => {
  const [error] = await execFileResult("sh", ["-c", "exit 42"]);
  same([error.code, error.killed, error.signal], [42, false, null]);
  expect(error.message.startsWith("Command failed: sh -c exit 42"), error.message);
});

// test-child-process-exec-stdout-stderr-data-string.js
test("exec_stdout_stderr", async () => {
  const [error, stdout, stderr] = await new Promise((resolve) => exec("echo foo; echo bar >&2", (...r) => resolve(r)));
  same([error, stdout, stderr], [null, "foo\n", "bar\n"]);
});

// test-child-process-exec-encoding.js: encoding 'buffer' gives bytes.
test("exec_file_encoding_buffer", async () => {
  const [, stdout] = await execFileResult("echo", ["bytes"], { encoding: "buffer" });
  expect(stdout instanceof Uint8Array, "stdout is bytes");
  same(text(stdout), "bytes\n");
});

// test-child-process-exec-timeout.js: the timeout kills with SIGTERM.
test("exec_file_timeout", async () => {
  const [error] = await execFileResult("sleep", ["30"], { timeout: 100 });
  same([error.killed, error.signal, error.code], [true, "SIGTERM", null]);
});

// test-child-process-exec-timeout.js: killSignal picks the signal.
test("exec_file_timeout_kill_signal", async () => {
  const [error] = await execFileResult("sleep", ["30"], { timeout: 100, killSignal: "SIGKILL" });
  same([error.killed, error.signal], [true, "SIGKILL"]);
});

// test-child-process-exec-maxbuffer.js: stdout past maxBuffer.
test("exec_maxbuffer_stdout", async () => {
  const [error, stdout] = await execFileResult("sh", ["-c", "printf '%0400d' 0"], { maxBuffer: 100 });
  same([error.code, error.message, stdout.length], ["ERR_CHILD_PROCESS_STDIO_MAXBUFFER", "stdout maxBuffer length exceeded", 100]);
});

// test-child-process-exec-maxbuffer.js: stderr past maxBuffer.
test("exec_maxbuffer_stderr", async () => {
  const [error, , stderr] = await execFileResult("sh", ["-c", "printf '%0400d' 0 >&2"], { maxBuffer: 100 });
  same([error.code, error.message, stderr.length], ["ERR_CHILD_PROCESS_STDIO_MAXBUFFER", "stderr maxBuffer length exceeded", 100]);
});

// test-child-process-exec-maxbuffer.js: output of exactly maxBuffer is fine.
test("exec_maxbuffer_at_limit", async () => {
  const [error, stdout] = await execFileResult("sh", ["-c", "printf '%0100d' 0"], { maxBuffer: 100 });
  same([error, stdout.length], [null, 100]);
});

// test-child-process-promisified.js: the promise form resolves.
test("exec_file_promisified", async () => {
  same(await execFilePromise("echo", ["foo"]), { stdout: "foo\n", stderr: "" });
});

// test-child-process-promisified.js: it rejects with the output attached.
test("exec_file_promisified_rejects", async () => {
  try {
    await execFilePromise("sh", ["-c", "echo out; echo err >&2; exit 1"]);
  } catch (error) {
    same([error.code, error.stdout, error.stderr], [1, "out\n", "err\n"]);
    return;
  }
  throw new Failed("did not reject");
});

// test-child-process-promisified.js: the promise carries the child.
test("exec_file_promisified_child", async () => {
  const promise = execFilePromise("echo", ["x"]);
  expect(promise.child instanceof ChildProcess, "promise.child is a ChildProcess");
  await promise;
});

// ---- spawnSync, execFileSync, execSync ----

// test-child-process-spawnsync.js: the status of a child that exits.
test("spawn_sync_status", async () => {
  const ret = spawnSync("sh", ["-c", "exit 7"]);
  same([ret.status, ret.signal, ret.error], [7, null, undefined]);
});

// test-child-process-spawnsync.js: stdout and output.
test("spawn_sync_stdout", async () => {
  const ret = spawnSync("echo", ["foo"]);
  same([text(ret.stdout), text(ret.stderr), ret.output[0]], ["foo\n", "", null]);
  expect(ret.output[1] === ret.stdout && ret.output[2] === ret.stderr, "output is [null, stdout, stderr]");
  expect(ret.pid > 0, "a pid");
});

// test-child-process-spawnsync-input.js: a string as stdin.
test("spawn_sync_input_string", async () => {
  same(text(spawnSync("cat", [], { input: "hello world" }).stdout), "hello world");
});

// test-child-process-spawnsync-input.js: bytes as stdin.
test("spawn_sync_input_bytes", async () => {
  const input = new Uint8Array([104, 105, 0, 255]);
  same([...spawnSync("cat", [], { input }).stdout], [104, 105, 0, 255]);
});

// test-child-process-spawnsync-input.js: encoding gives strings.
test("spawn_sync_encoding", async () => {
  const ret = spawnSync("sh", ["-c", "cat; echo err >&2"], { input: "text", encoding: "utf8" });
  same([ret.stdout, ret.stderr], ["text", "err\n"]);
});

// test-child-process-spawnsync-timeout.js
test("spawn_sync_timeout", async () => {
  const ret = spawnSync("sleep", ["30"], { timeout: 100 });
  same([ret.error?.code, ret.signal, ret.status], ["ETIMEDOUT", "SIGTERM", null]);
});

// test-child-process-spawnsync-kill-signal.js
test("spawn_sync_kill_signal", async () => {
  const ret = spawnSync("sleep", ["30"], { timeout: 100, killSignal: "SIGKILL" });
  same([ret.error?.code, ret.signal], ["ETIMEDOUT", "SIGKILL"]);
});

// test-child-process-spawnsync-maxbuf.js
test("spawn_sync_maxbuffer", async () => {
  const ret = spawnSync("sh", ["-c", "printf '%0400d' 0"], { maxBuffer: 100 });
  same([ret.error?.code, ret.stdout.length], ["ENOBUFS", 100]);
});

// test-child-process-spawnsync-env.js
test("spawn_sync_env", async () => {
  const ret = spawnSync("sh", ["-c", 'echo "$FRUIT"'], { env: { FRUIT: "bar" }, encoding: "utf8" });
  same(ret.stdout, "bar\n");
});

// test-child-process-spawnsync.js: a start that fails is `error`, ENOENT.
test("spawn_sync_enoent", async (dir) => {
  const ret = spawnSync("pwd", [], { cwd: `${dir}/does-not-exist` });
  same([ret.error?.code, ret.status], ["ENOENT", null]);
});

// test-child-process-execsync.js: execFileSync returns stdout.
test("exec_file_sync_stdout", async () => {
  same(execFileSync("echo", ["foo"], { encoding: "utf8" }), "foo\n");
});

// test-child-process-execsync.js: a failing child throws with its status.
test("exec_file_sync_throws", async () => {
  const error = throws(() => execFileSync("sh", ["-c", "echo oops >&2; exit 3"]));
  same([error.status, text(error.stderr)], [3, "oops\n"]);
  expect(error.message.startsWith("Command failed: sh -c"), error.message);
});

// test-child-process-execsync.js: execSync through the shell.
test("exec_sync", async () => {
  same(execSync('echo "$FRUIT"', { env: { FRUIT: "kiwi" }, encoding: "utf8" }), "kiwi\n");
});

// ---- spawn ----

// test-child-process-exit-code.js
test("spawn_exit_code", async () => {
  const child = spawn("sh", ["-c", "exit 23"]);
  same(await next(child, "exit"), [23, null]);
  same([child.exitCode, child.signalCode], [23, null]);
});

// test-child-process-spawn-event.js: 'spawn' comes before 'exit'.
test("spawn_event", async () => {
  const child = spawn("true");
  const seen = [];
  child.on("spawn", () => seen.push("spawn"));
  child.on("exit", () => seen.push("exit"));
  await next(child, "close");
  same(seen, ["spawn", "exit"]);
});

// test-child-process-stdout-flush.js: 'data' then 'end'.
test("spawn_stdout_data_end", async () => {
  const child = spawn("sh", ["-c", "for i in 1 2 3 4 5; do echo line$i; done"]);
  let out = "";
  let ended = false;
  child.stdout.setEncoding("utf8");
  child.stdout.on("data", (chunk) => (out += chunk));
  child.stdout.on("end", () => (ended = true));
  await next(child, "close");
  same([out, ended], ["line1\nline2\nline3\nline4\nline5\n", true]);
});

// test-child-process-stdin.js: write, end, read back.
test("spawn_stdin", async () => {
  const child = spawn("cat");
  child.stdin.write("hello");
  child.stdin.write(" world\n");
  child.stdin.end();
  const { out, code } = await collect(child);
  same([out, code], ["hello world\n", 0]);
});

// test-stream-readable-async-iterators.js, on a child's stdout.
test("spawn_stdout_async_iterator", async () => {
  const child = spawn("sh", ["-c", "echo a; echo b >&2; echo c"]);
  let out = "";
  for await (const chunk of child.stdout) out += text(chunk);
  let err = "";
  for await (const chunk of child.stderr) err += text(chunk);
  same([out, err], ["a\nc\n", "b\n"]);
});

// test-child-process-kill.js: kill() sends SIGTERM.
test("spawn_kill", async () => {
  const child = spawn("sleep", ["30"]);
  expect(child.kill(), "kill() returns true");
  same(await next(child, "exit"), [null, "SIGTERM"]);
  same([child.killed, child.exitCode, child.signalCode], [true, null, "SIGTERM"]);
});

// test-child-process-kill.js: kill('SIGKILL').
test("spawn_kill_sigkill", async () => {
  const child = spawn("sleep", ["30"]);
  child.kill("SIGKILL");
  same(await next(child, "close"), [null, "SIGKILL"]);
});

// test-child-process-kill.js: kill after the end does nothing.
test("spawn_kill_after_exit", async () => {
  const child = spawn("true");
  await next(child, "close");
  same([child.kill(), child.killed], [false, false]);
});

// test-child-process-spawn-timeout-kill-signal.js
test("spawn_timeout_kill_signal", async () => {
  const child = spawn("sleep", ["30"], { timeout: 100, killSignal: "SIGKILL" });
  same(await next(child, "exit"), [null, "SIGKILL"]);
});

// test-child-process-cwd.js: a child runs in `cwd`.
test("spawn_cwd", async (dir) => {
  const { out } = await collect(spawn("pwd", [], { cwd: dir }));
  same(out, `${dir}\n`);
});

// test-child-process-cwd.js: a missing cwd is an 'error' with ENOENT.
test("spawn_cwd_enoent", async (dir) => {
  const child = spawn("pwd", [], { cwd: `${dir}/does-not-exist` });
  const [error] = await next(child, "error");
  same([error.code, child.pid], ["ENOENT", undefined]);
});

// test-child-process-env.js: `env` reaches the child.
test("spawn_env", async () => {
  const { out } = await collect(spawn("sh", ["-c", 'echo "$FRUIT"'], { env: { FRUIT: "world" } }));
  same(out, "world\n");
});

// test-child-process-stdio.js: 'ignore' gives no stream.
test("spawn_stdio_ignore", async () => {
  const child = spawn("echo", ["dropped"], { stdio: "ignore" });
  same([child.stdin, child.stdout, child.stderr], [null, null, null]);
  same(await next(child, "close"), [0, null]);
});

// test-child-process-stdio.js: a per-stream array.
test("spawn_stdio_array", async () => {
  const child = spawn("sh", ["-c", "echo out; echo err >&2"], { stdio: ["ignore", "pipe", "ignore"] });
  same([child.stdin, child.stderr], [null, null]);
  const { out } = await collect(child);
  same(out, "out\n");
});

// test-child-process-spawn-shell.js
test("spawn_shell", async () => {
  const { out } = await collect(spawn('echo "$FRUIT"', [], { shell: true, env: { FRUIT: "bar" } }));
  same(out, "bar\n");
});

// test-child-process-spawn-typeerror.js: a bad file is refused at once.
test("spawn_typeerror", async () => {
  same(throws(() => spawn("")).code, "ERR_INVALID_ARG_VALUE");
  same(throws(() => spawn(42)).code, "ERR_INVALID_ARG_TYPE");
  same(throws(() => spawn("echo", [], { stdio: [3, "pipe", "pipe"] })).code, "ERR_INVALID_ARG_VALUE");
});

// test-child-process-pid? (the child's own $$ is `pid`)
test("spawn_pid", async () => {
  const child = spawn("sh", ["-c", "echo $$"]);
  const { out } = await collect(child);
  same(Number(out), child.pid);
});

// ---- deliberate differences ----

difference("env_starts_empty", "the environment starts empty: without `env` the child gets none of the guest's variables", async () => {
  // test-child-process-env.js (without `env` Node passes process.env on).
  // TMPDIR, the host's private temporary directory for the session's
  // programs, is the one variable the host sets.
  const ret = spawnSync("env", [], { encoding: "utf8" });
  const rest = ret.stdout.split("\n").filter((line) => line && !line.startsWith("TMPDIR="));
  same(rest.join("\n"), "");
});

difference("output_is_uint8array", "output bytes are a Uint8Array: a guest has no Buffer", async () => {
  // test-child-process-spawnsync.js (Node gives a Buffer).
  const ret = spawnSync("echo", ["x"]);
  expect(typeof Buffer === "undefined" && ret.stdout instanceof Uint8Array, "a Uint8Array");
});
