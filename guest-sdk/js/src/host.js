// The capability's calls, with WIT errors thrown as Node-style errors.
import * as process from "wasmproc:process/process@0.1.0";
import { hostError } from "./errors.js";

export { process };

/** How long one blocking read or write waits before the SDK asks again. */
export const WAIT_MS = 1000;
/** Most bytes one `read` asks for. */
export const MAX_READ = 1 << 20;

/** Calls `fn(...args)`; a WIT error is thrown as `hostError`. */
export function call(syscall, path, fn, ...args) {
  try {
    return fn(...args);
  } catch (error) {
    if (error?.payload?.tag === undefined) throw error;
    throw hostError(error.payload, syscall, path);
  }
}

const SIGNAL_NAMES = { 1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 9: "SIGKILL", 10: "SIGUSR1", 12: "SIGUSR2", 15: "SIGTERM" };

/** Signal names a guest may send, as the host's signals. */
export const SIGNALS = {
  SIGTERM: "terminate",
  SIGKILL: "kill",
  SIGINT: "interrupt",
  SIGHUP: "hangup",
  SIGQUIT: "quit",
  SIGUSR1: "user1",
  SIGUSR2: "user2",
};

/** A signal given by name or number, as its name. */
export function signalName(signal) {
  if (typeof signal === "number") return SIGNAL_NAMES[signal] ?? `signal ${signal}`;
  return signal;
}

/** A WIT exit status as Node's `[code, signal]`. */
export function codeAndSignal(status) {
  if (!status) return [null, null];
  if (status.tag === "exited") return [status.val, null];
  return [null, signalName(status.val)];
}
