// spawnSync and execFileSync: a child run to its end while the guest waits.
import { call, process, codeAndSignal, SIGNALS, MAX_READ } from "./host.js";
import { codeError } from "./errors.js";
import { command, concat, decode, inputBytes, programAndArgs, stdioModes, timeoutMs } from "./options.js";

/** Default `maxBuffer` of the sync calls and of `execFile`, as in Node. */
export const MAX_BUFFER = 1024 * 1024;

/** How long one read waits while two streams are open. */
const INTERLEAVED_WAIT_MS = 20;

/** Sends `signal` (a name) to the process `id`. */
export function sendSignal(id, file, signal) {
  const wit = SIGNALS[signal];
  if (wit === undefined) throw codeError("ERR_UNKNOWN_SIGNAL", `Unknown signal: ${signal}`);
  call("kill", file, process.sendSignal, id, wit);
}

/** Runs a child to its end: the result of `spawnSync`, bytes not decoded. */
function collect(file, args, options) {
  const [program, argv] = programAndArgs(file, args, options);
  const modes = stdioModes(options.stdio);
  let input = inputBytes(options.input);
  if (input !== undefined) modes[0] = "piped";
  const maxBuffer = options.maxBuffer ?? MAX_BUFFER;
  const killSignal = options.killSignal ?? "SIGTERM";
  const limit = timeoutMs(options);
  const deadline = limit === undefined ? undefined : Date.now() + limit;
  const result = { pid: 0, output: null, stdout: null, stderr: null, status: null, signal: null, error: undefined };
  let id;
  try {
    id = call("spawnSync", program, process.start, command(program, argv, options, undefined), {
      stdin: modes[0],
      stdout: modes[1],
      stderr: modes[2],
      buffering: "lossless",
      bufferBytes: undefined,
    });
  } catch (error) {
    result.error = error;
    return result;
  }
  result.pid = call("spawnSync", program, process.get, id).pid;
  const streams = [
    { name: "stdout", open: modes[1] === "piped", next: 0n, chunks: [], size: 0 },
    { name: "stderr", open: modes[2] === "piped", next: 0n, chunks: [], size: 0 },
  ];
  let stdinOpen = modes[0] === "piped";
  input = input ?? new Uint8Array();
  let killed = false;
  const kill = (error) => {
    if (killed) return;
    killed = true;
    result.error = error;
    sendSignal(id, program, killSignal);
  };
  while (stdinOpen || streams.some((s) => s.open)) {
    if (stdinOpen) {
      try {
        if (input.length > 0) {
          const taken = Number(process.write(id, input.subarray(0, MAX_READ), 10n));
          input = input.subarray(taken);
        }
      } catch {
        input = new Uint8Array();
      }
      if (input.length === 0) {
        try {
          process.closeStdin(id);
        } catch {
          // The child already ended.
        }
        stdinOpen = false;
      }
    }
    const open = streams.filter((s) => s.open);
    const wait = open.length > 1 || stdinOpen ? INTERLEAVED_WAIT_MS : 200;
    for (const stream of open) {
      const chunk = call("spawnSync", program, process.read, id, stream.name, stream.next, MAX_READ, BigInt(wait));
      stream.next = chunk.next;
      if (chunk.data.length > 0 && stream.size <= maxBuffer) {
        stream.chunks.push(new Uint8Array(chunk.data));
        stream.size += chunk.data.length;
        if (stream.size > maxBuffer) {
          kill(codeError("ENOBUFS", `spawnSync ${program} ENOBUFS`, { syscall: `spawnSync ${program}`, path: program }));
        }
      }
      if (chunk.ended) stream.open = false;
    }
    if (deadline !== undefined && Date.now() >= deadline) {
      kill(codeError("ETIMEDOUT", `spawnSync ${program} ETIMEDOUT`, { syscall: `spawnSync ${program}`, path: program }));
    }
  }
  let status;
  while (!status) {
    const left = deadline === undefined || killed ? undefined : BigInt(Math.max(0, deadline - Date.now()));
    status = call("spawnSync", program, process.wait, id, left);
    if (!status && deadline !== undefined) {
      kill(codeError("ETIMEDOUT", `spawnSync ${program} ETIMEDOUT`, { syscall: `spawnSync ${program}`, path: program }));
    }
  }
  [result.status, result.signal] = codeAndSignal(status);
  // The caller never sees the process: forget its record, so sync calls
  // leave no entries in the host's registry.
  try {
    process.remove(id);
  } catch {
    // Already gone.
  }
  const [out, err] = streams.map((s) => (modes[s.name === "stdout" ? 1 : 2] === "piped" ? concat(s.chunks).subarray(0, maxBuffer) : null));
  result.stdout = out;
  result.stderr = err;
  return result;
}

/** Like `child_process.spawnSync`: runs `file` with `args` to its end and
 * returns `{ pid, output, stdout, stderr, status, signal, error }`. Output
 * is a `Uint8Array` unless `options.encoding` is given. */
export function spawnSync(file, args, options) {
  if (!Array.isArray(args) && args !== undefined && args !== null) [options, args] = [args, []];
  options = options ?? {};
  const result = collect(file, args ?? [], options);
  result.stdout = decode(result.stdout, options.encoding);
  result.stderr = decode(result.stderr, options.encoding);
  result.output = [null, result.stdout, result.stderr];
  return result;
}

/** Like `child_process.execFileSync`: returns stdout; throws when the
 * child cannot start, times out, or ends other than with status 0. */
export function execFileSync(file, args, options) {
  if (!Array.isArray(args) && args !== undefined && args !== null) [options, args] = [args, []];
  options = { ...(options ?? {}) };
  const result = spawnSync(file, args ?? [], options);
  if (result.error) {
    throw Object.assign(result.error, { status: result.status, signal: result.signal, stdout: result.stdout, stderr: result.stderr, output: result.output, pid: result.pid });
  }
  if (result.status !== 0) {
    const stderr = typeof result.stderr === "string" ? result.stderr : decode(result.stderr ?? new Uint8Array(), "utf8");
    const error = new Error(`Command failed: ${[file, ...(args ?? [])].join(" ")}\n${stderr}`);
    throw Object.assign(error, { status: result.status, signal: result.signal, stdout: result.stdout, stderr: result.stderr, output: result.output, pid: result.pid });
  }
  return result.stdout;
}

/** Like `child_process.execSync`: `sh -c command` (needs `sh` granted). */
export function execSync(commandLine, options) {
  return execFileSync("sh", ["-c", commandLine], options);
}
