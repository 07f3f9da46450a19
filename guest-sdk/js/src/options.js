// Node's child_process options as a WIT `command` and `start-options`.
import { codeError } from "./errors.js";

const MODES = { pipe: "piped", overlapped: "piped", ignore: "null", inherit: "inherit" };

/** `[file, args]` checked, with `shell` run as `sh -c`. */
export function programAndArgs(file, args, options) {
  if (typeof file !== "string") {
    throw codeError("ERR_INVALID_ARG_TYPE", `The "file" argument must be of type string. Received ${typeof file}`);
  }
  if (file.length === 0) {
    throw codeError("ERR_INVALID_ARG_VALUE", "The argument 'file' cannot be empty. Received ''");
  }
  args = args ?? [];
  if (!Array.isArray(args)) {
    throw codeError("ERR_INVALID_ARG_TYPE", `The "args" argument must be an array. Received ${JSON.stringify(args)}`);
  }
  args = args.map(String);
  if (options.shell) {
    const line = [file, ...args].join(" ");
    return ["sh", ["-c", line]];
  }
  return [file, args];
}

/** The three stdio modes of `options.stdio` as the host's. */
export function stdioModes(stdio = "pipe") {
  const list = typeof stdio === "string" ? [stdio, stdio, stdio] : [...stdio];
  while (list.length < 3) list.push(undefined);
  return list.slice(0, 3).map((mode, i) => {
    if (mode === undefined || mode === null) return "piped";
    const wit = MODES[mode];
    if (wit === undefined) {
      throw codeError("ERR_INVALID_ARG_VALUE", `stdio[${i}] must be 'pipe', 'ignore' or 'inherit': a guest has no file descriptors to give, got ${String(mode)}`);
    }
    return wit;
  });
}

/** Input (string or bytes) as bytes. */
export function inputBytes(input) {
  if (input === undefined || input === null) return undefined;
  if (typeof input === "string") return new TextEncoder().encode(input);
  if (input instanceof Uint8Array) return input;
  if (ArrayBuffer.isView(input)) return new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  throw codeError("ERR_INVALID_ARG_TYPE", `The "input" argument must be a string, Uint8Array or TypedArray`);
}

/** The WIT `command`. The child's environment is `options.env` alone
 * (plus what the host's policy passes through): it starts empty. */
export function command(file, args, options, stdin) {
  const env = Object.entries(options.env ?? {}).filter(([, v]) => v !== undefined).map(([k, v]) => [k, String(v)]);
  return {
    program: file,
    args,
    env,
    cwd: options.cwd === undefined || options.cwd === null ? undefined : String(options.cwd),
    stdin,
    timeoutMs: undefined,
  };
}

/** `options.timeout` in milliseconds, or `undefined` for none. */
export function timeoutMs(options) {
  const timeout = options.timeout;
  if (timeout === undefined || timeout === null || timeout === 0) return undefined;
  if (!Number.isInteger(timeout) || timeout < 0) {
    throw codeError("ERR_OUT_OF_RANGE", `The value of "timeout" is out of range. It must be an unsigned integer. Received ${timeout}`);
  }
  return timeout;
}

/** Bytes decoded by `encoding` ('buffer' or none keeps bytes). */
export function decode(bytes, encoding) {
  if (bytes === null || bytes === undefined) return bytes;
  if (!encoding || encoding === "buffer") return bytes;
  const label = encoding === "utf8" ? "utf-8" : encoding === "latin1" || encoding === "binary" ? "latin1" : encoding;
  return new TextDecoder(label).decode(bytes);
}

/** Concatenated byte chunks. */
export function concat(chunks) {
  const total = chunks.reduce((n, c) => n + c.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}
