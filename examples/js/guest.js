// A wasmproc guest in JavaScript: runs, starts, lists, inspects and kills
// processes through the `wasmproc:process` capability.
//
// Usage (the arguments after `--` of `wasmproc run`):
//
//   demo                    every call below, in order (the default)
//   run PROGRAM [ARG...]    run to completion, print its stdout and status
//   start-kill PROGRAM [ARG...]
//                           start in the background, get, list, kill, get
//   list                    start two `sleep 30`, list them, kill them
//   get ID                  a snapshot of one process (a made-up id fails)
//
// Every failed call prints `error: <kind>: <detail>` and the guest exits 1.
// A WIT function returning `result<T, error>` returns `T` or throws an
// `Error` whose `payload` is the WIT `error` variant: an object
// `{ tag, val }` such as `{ tag: "denied", val: "program `rm` is not granted" }`
// (`tag` is the case name, `val` its payload, absent for `timed-out`).

import * as process from "wasmproc:process/process@0.1.0";
import { getArguments } from "wasi:cli/environment@0.2.0";

const USAGE = `usage: demo | run PROGRAM [ARG...] | start-kill PROGRAM [ARG...] | list | get ID`;

/** A failed capability call, already reported on stdout. */
class GuestError extends Error {}

/** `<kind>: <detail>` for a WIT `error` value. */
function describe(error) {
  switch (error.tag) {
    case "denied":
    case "invalid":
    case "limit-reached":
    case "spawn-failed":
    case "io":
      return `${error.tag}: ${error.val}`;
    case "not-found":
      return `not-found: ${error.val}`;
    case "timed-out":
      return "timed-out";
    default:
      return `unknown: ${JSON.stringify(error)}`;
  }
}

/** Calls a capability function; reports a WIT error and throws. */
function call(what, ...args) {
  try {
    return what(...args);
  } catch (error) {
    if (error.payload === undefined) throw error;
    console.log(`error: ${describe(error.payload)}`);
    throw new GuestError();
  }
}

function status(exit) {
  return exit ? `${exit.tag} ${exit.val}` : "running";
}

function command(program, args) {
  return { program, args, env: [], cwd: null, stdin: null, timeoutMs: null };
}

const BACKGROUND = {
  stdin: "null",
  stdout: "null",
  stderr: "null",
  buffering: "ring",
  bufferBytes: null,
};

function run(program, args) {
  const output = call(process.run, command(program, args));
  const text = new TextDecoder().decode(output.stdout);
  if (text) console.log(text.replace(/\n$/, ""));
  console.log(`status: ${status(output.status)}`);
}

function startKill(program, args) {
  const id = call(process.start, command(program, args), BACKGROUND);
  console.log(`started: ${id}`);
  let info = call(process.get, id);
  console.log(`state: ${info.state} pid: ${info.pid} program: ${info.program}`);
  console.log(`listed: ${process.list().includes(id) ? "yes" : "no"}`);
  call(process.kill, id);
  info = call(process.get, id);
  console.log(`after kill: ${info.state} ${status(info.exit)}`);
}

function listProcesses() {
  const ids = [0, 1].map(() => call(process.start, command("sleep", ["30"]), BACKGROUND));
  const listed = process.list();
  console.log(`count: ${listed.length}`);
  const tail = listed.slice(-2);
  console.log(`in start order: ${tail[0] === ids[0] && tail[1] === ids[1] ? "yes" : "no"}`);
  for (const id of ids) call(process.kill, id);
  console.log(`killed: ${ids.length}`);
}

function get(id) {
  const info = call(process.get, id);
  console.log(`state: ${info.state} pid: ${info.pid} program: ${info.program}`);
}

function ignoreGuestError(f) {
  try {
    f();
  } catch (error) {
    if (!(error instanceof GuestError)) throw error;
  }
}

function demo() {
  run("echo", ["hello from javascript"]);
  startKill("sleep", ["30"]);
  listProcesses();
  for (const program of ["rm", "no-such-program"]) {
    ignoreGuestError(() => run(program, ["-rf", "/"]));
  }
  ignoreGuestError(() => get("made-up-id"));
}

function main(argv) {
  const [verb = "demo", ...rest] = argv;
  if (verb === "demo") return demo();
  if (verb === "run" && rest.length > 0) return run(rest[0], rest.slice(1));
  if (verb === "start-kill" && rest.length > 0) return startKill(rest[0], rest.slice(1));
  if (verb === "list") return listProcesses();
  if (verb === "get" && rest.length === 1) return get(rest[0]);
  console.log(USAGE);
  throw new GuestError();
}

// The `wasi:cli/run` export (its name clashes with the `run` above, hence
// the alias): throwing makes the guest exit 1.
const run_ = {
  run() {
    main(getArguments().slice(1));
  },
};

export { run_ as run };
