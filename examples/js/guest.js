// A wasmproc guest in JavaScript: runs, starts, lists, inspects and kills
// processes with the `wasmproc` SDK, shaped like `node:child_process`.
//
// Usage (the arguments after `--` of `wasmproc run`):
//
//   demo                    every call below, in order (the default)
//   run PROGRAM [ARG...]    run to completion, print its stdout and status
//   start-kill PROGRAM [ARG...]
//                           start in the background, inspect, list, kill
//   list                    start two `sleep 30`, list them, kill them
//   get ID                  a snapshot of one process (a made-up id fails)
//
// Every failed call prints `error: <kind>: <detail>` (the WIT error the
// host returned, which every error of the SDK keeps as `witError`) and the
// guest exits 1.

import { processInfo, processes, spawn, spawnSync } from "wasmproc";
import { getArguments } from "wasi:cli/environment@0.2.0";

const USAGE = `usage: demo | run PROGRAM [ARG...] | start-kill PROGRAM [ARG...] | list | get ID`;

/** A failed call, already reported on stdout. */
class GuestError extends Error {}

/** Prints `error: <kind>: <detail>` for an error of the SDK. */
function report(error) {
  const wit = error.witError;
  if (wit === undefined) throw error;
  console.log(wit.val === undefined ? `error: ${wit.tag}` : `error: ${wit.tag}: ${wit.val}`);
  return new GuestError();
}

const SIGNAL_NUMBERS = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGUSR1: 10, SIGUSR2: 12, SIGTERM: 15 };

function status(code, signal) {
  return signal === null ? `exited ${code}` : `signaled ${SIGNAL_NUMBERS[signal] ?? signal}`;
}

function run(program, args) {
  const result = spawnSync(program, args, { encoding: "utf8" });
  if (result.error) throw report(result.error);
  if (result.stdout) console.log(result.stdout.replace(/\n$/, ""));
  console.log(`status: ${status(result.status, result.signal)}`);
}

/** Starts `program` with no streams; resolves to the child once it has
 * started, rejects (reported) if the host refused it. */
function start(program, args) {
  const child = spawn(program, args, { stdio: "ignore" });
  return new Promise((resolve, reject) => {
    child.on("spawn", () => resolve(child));
    child.on("error", (error) => reject(report(error)));
  });
}

async function startKill(program, args) {
  const child = await start(program, args);
  console.log(`started: ${child.id}`);
  const info = processInfo(child.id);
  console.log(`state: ${info.state} pid: ${child.pid} program: ${info.program}`);
  console.log(`listed: ${processes().includes(child.id) ? "yes" : "no"}`);
  const exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve([code, signal])));
  child.kill();
  const [code, signal] = await exited;
  console.log(`after kill: ${processInfo(child.id).state} ${status(code, signal)}`);
}

async function listProcesses() {
  const children = [await start("sleep", ["30"]), await start("sleep", ["30"])];
  const listed = processes();
  console.log(`count: ${listed.length}`);
  const tail = listed.slice(-2);
  console.log(`in start order: ${tail[0] === children[0].id && tail[1] === children[1].id ? "yes" : "no"}`);
  const exits = children.map((child) => new Promise((resolve) => child.on("exit", resolve)));
  for (const child of children) child.kill();
  await Promise.all(exits);
  console.log(`killed: ${children.length}`);
}

function get(id) {
  let info;
  try {
    info = processInfo(id);
  } catch (error) {
    throw report(error);
  }
  console.log(`state: ${info.state} pid: ${info.pid} program: ${info.program}`);
}

async function ignoreGuestError(f) {
  try {
    await f();
  } catch (error) {
    if (!(error instanceof GuestError)) throw error;
  }
}

async function demo() {
  run("echo", ["hello from javascript"]);
  await startKill("sleep", ["30"]);
  await listProcesses();
  for (const program of ["rm", "no-such-program"]) {
    await ignoreGuestError(() => run(program, ["-rf", "/"]));
  }
  await ignoreGuestError(() => get("made-up-id"));
}

async function main(argv) {
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
// the alias). The promise it returns is run to its end; a rejection makes
// the guest exit 1.
const run_ = {
  run() {
    return main(getArguments().slice(1));
  },
};

export { run_ as run };
