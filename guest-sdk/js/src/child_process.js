// spawn, execFile and exec: children that run while the guest goes on,
// reported through events.
import { EventEmitter } from "./emitter.js";
import { call, process, codeAndSignal, MAX_READ } from "./host.js";
import { codeError } from "./errors.js";
import { command, concat, decode, programAndArgs, stdioModes, timeoutMs } from "./options.js";
import { Readable, Writable } from "./streams.js";
import { MAX_BUFFER, sendSignal } from "./sync.js";

/** How long one read waits while the pump has several things to watch. */
const POLL_MS = 20;

/** A child started by `spawn`, like Node's: `pid`, `stdin`, `stdout`,
 * `stderr`, `exitCode`, `signalCode`, `killed`, `kill(signal)`, and the
 * events 'spawn', 'exit', 'close' and 'error'. */
export class ChildProcess extends EventEmitter {
  constructor(file, args) {
    super();
    /** The operating-system process id; `undefined` if it did not start. */
    this.pid = undefined;
    /** The host's id of the process. */
    this.id = undefined;
    /** The exit code, once it exited. */
    this.exitCode = null;
    /** The name of the signal that ended it, once one did. */
    this.signalCode = null;
    /** Whether `kill` sent a signal. */
    this.killed = false;
    /** The program, and the program with its arguments. */
    this.spawnfile = file;
    this.spawnargs = [file, ...args];
    this.stdin = null;
    this.stdout = null;
    this.stderr = null;
    this.stdio = [null, null, null];
  }

  /** Sends `signal` (a name such as 'SIGTERM', the default, or a number)
   * to the child's group; false once it has ended. */
  kill(signal = "SIGTERM") {
    if (this.id === undefined || this.exitCode !== null || this.signalCode !== null) return false;
    const name = typeof signal === "number" ? { 1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 9: "SIGKILL", 10: "SIGUSR1", 12: "SIGUSR2", 15: "SIGTERM" }[signal] : signal;
    sendSignal(this.id, this.spawnfile, name);
    this.killed = true;
    return true;
  }
}

/** Reads the child's streams and notices its end, yielding to the guest's
 * other promise callbacks between rounds. */
async function pump(child, streams, deadline, killSignal) {
  await null;
  child.emit("spawn");
  let status = null;
  for (;;) {
    const open = streams.filter((s) => !s.ended);
    for (const stream of open) {
      const chunk = call("read", child.spawnfile, process.read, child.id, stream.name, stream.next, MAX_READ, BigInt(POLL_MS));
      stream.next = chunk.next;
      if (chunk.data.length > 0 && !stream.readable.destroyed) stream.readable.push(new Uint8Array(chunk.data));
      if (chunk.ended) {
        stream.ended = true;
        stream.readable.push(null);
      }
      await null;
    }
    if (status === null) {
      status = call("wait", child.spawnfile, process.wait, child.id, BigInt(open.length > 0 ? 0 : POLL_MS)) ?? null;
      if (status !== null) {
        [child.exitCode, child.signalCode] = codeAndSignal(status);
        child.emit("exit", child.exitCode, child.signalCode);
      }
    }
    if (status !== null && streams.every((s) => s.ended)) {
      child.emit("close", child.exitCode, child.signalCode);
      return;
    }
    if (deadline !== undefined && Date.now() >= deadline && status === null) {
      deadline = undefined;
      child.kill(killSignal);
    }
    await null;
  }
}

/** Like `child_process.spawn`: starts `file` with `args` and returns its
 * `ChildProcess` at once. Options: `cwd`, `env` (the child's whole
 * environment), `stdio` ('pipe', 'ignore', 'inherit' or an array of them),
 * `timeout` and `killSignal`, `shell`. A start the host refuses is
 * reported by an 'error' event, as in Node. */
export function spawn(file, args, options) {
  if (!Array.isArray(args) && args !== undefined && args !== null) [options, args] = [args, []];
  options = options ?? {};
  const [program, argv] = programAndArgs(file, args ?? [], options);
  const modes = stdioModes(options.stdio);
  const limit = timeoutMs(options);
  const child = new ChildProcess(program, argv);
  try {
    child.id = call("spawn", program, process.start, command(program, argv, options, undefined), {
      stdin: modes[0],
      stdout: modes[1],
      stderr: modes[2],
      buffering: "lossless",
      bufferBytes: undefined,
    });
  } catch (error) {
    if (error.witError === undefined) throw error;
    Promise.resolve().then(() => child.emit("error", error));
    return child;
  }
  child.pid = call("spawn", program, process.get, child.id).pid;
  const streams = [];
  if (modes[0] === "piped") child.stdin = new Writable(child.id, program);
  for (const [name, at] of [["stdout", 1], ["stderr", 2]]) {
    if (modes[at] !== "piped") continue;
    const readable = new Readable();
    child[name] = readable;
    streams.push({ name, readable, next: 0n, ended: false });
  }
  child.stdio = [child.stdin, child.stdout, child.stderr];
  const deadline = limit === undefined ? undefined : Date.now() + limit;
  pump(child, streams, deadline, options.killSignal ?? "SIGTERM").catch((error) => child.emit("error", error));
  return child;
}

/** Like `child_process.execFile`: runs `file`, collects its output (as
 * strings, unless `encoding` is 'buffer') and calls
 * `callback(error, stdout, stderr)`. Returns the `ChildProcess`. */
export function execFile(file, args, options, callback) {
  if (typeof args === "function") [callback, args, options] = [args, [], {}];
  else if (!Array.isArray(args) && args !== undefined && args !== null) [callback, options, args] = [options, args, []];
  if (typeof options === "function") [callback, options] = [options, {}];
  options = { encoding: "utf8", maxBuffer: MAX_BUFFER, killSignal: "SIGTERM", ...(options ?? {}) };
  args = args ?? [];
  const cmd = [file, ...args].join(" ");
  const limit = timeoutMs(options);
  const child = spawn(file, args, { cwd: options.cwd, env: options.env, shell: options.shell, stdio: options.stdio });
  const chunks = { stdout: [], stderr: [] };
  const sizes = { stdout: 0, stderr: 0 };
  let failure = null;
  let timedOut = false;
  let finished = false;
  const text = (name) => {
    const bytes = concat(chunks[name]).subarray(0, options.maxBuffer);
    return decode(bytes, options.encoding);
  };
  const finish = (code, signal) => {
    if (finished) return;
    finished = true;
    const [stdout, stderr] = [text("stdout"), text("stderr")];
    if (failure === null && code === 0 && signal === null) {
      callback?.(null, stdout, stderr);
      return;
    }
    const error = failure ?? new Error(`Command failed: ${cmd}\n${typeof stderr === "string" ? stderr : decode(stderr, "utf8")}`);
    if (failure === null || timedOut) {
      error.code = code;
      error.killed = child.killed;
      error.signal = signal;
    }
    error.cmd = cmd;
    error.stdout = stdout;
    error.stderr = stderr;
    callback?.(error, stdout, stderr);
  };
  for (const name of ["stdout", "stderr"]) {
    child[name]?.on("data", (chunk) => {
      sizes[name] += chunk.length;
      chunks[name].push(chunk);
      if (sizes[name] > options.maxBuffer && failure === null) {
        failure = codeError("ERR_CHILD_PROCESS_STDIO_MAXBUFFER", `${name} maxBuffer length exceeded`);
        child.kill(options.killSignal);
      }
    });
  }
  if (limit !== undefined) {
    const deadline = Date.now() + limit;
    const watch = () => {
      if (finished || child.exitCode !== null || child.signalCode !== null) return;
      if (Date.now() >= deadline) {
        timedOut = true;
        failure = failure ?? new Error(`Command failed: ${cmd}\n`);
        child.kill(options.killSignal);
        return;
      }
      Promise.resolve().then(watch);
    };
    child.once("spawn", watch);
  }
  child.on("close", finish);
  child.on("error", (error) => {
    failure = error;
    finished = true;
    callback?.(error, text("stdout"), text("stderr"));
  });
  return child;
}

/** The promise form of `execFile` (Node's `util.promisify(execFile)`):
 * resolves to `{ stdout, stderr }`, rejects with the error (carrying
 * `stdout` and `stderr`). The promise's `child` is the `ChildProcess`. */
export function execFilePromise(file, args, options) {
  let child;
  const promise = new Promise((resolve, reject) => {
    child = execFile(file, args ?? [], options ?? {}, (error, stdout, stderr) => {
      if (error) reject(Object.assign(error, { stdout, stderr }));
      else resolve({ stdout, stderr });
    });
  });
  promise.child = child;
  return promise;
}

execFile[Symbol.for("nodejs.util.promisify.custom")] = execFilePromise;

/** Like `child_process.exec`: `sh -c commandLine` (needs `sh` granted). */
export function exec(commandLine, options, callback) {
  if (typeof options === "function") [callback, options] = [options, {}];
  return execFile("sh", ["-c", commandLine], options, callback);
}
