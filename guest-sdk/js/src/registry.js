// The guest's processes as the host lists them (a wasmproc addition).
import { call, process } from "./host.js";

/** The ids of this guest's processes, running and recently ended, in
 * start order (`ChildProcess.id` is one). */
export function processes() {
  return process.list();
}

/** The host's snapshot of one of this guest's processes (a WIT
 * `process-info`); throws an `ESRCH` error for an id that is not one. */
export function processInfo(id) {
  return call("processInfo", id, process.get, id);
}
