// The JavaScript SDK's parity guest: Node's test-child-process-* cases
// (cases.js) run against `wasmproc`, and what a denial looks like.
//
// Usage (the arguments after `--` of `wasmproc run`):
//
//   parity DIR   every case; DIR is a directory the policy grants as a
//                working-directory root. One line a case: `case NAME: pass`,
//                `case NAME: fail: WHY` or `case NAME: difference: WHAT`.
//   denied       what a denial looks like to JavaScript code

import { getArguments } from "wasi:cli/environment@0.2.0";
import { execFileSync, spawn, spawnSync } from "../index.js";
import { CASES } from "./cases.js";

async function parity(dir) {
  const counts = { pass: 0, fail: 0, difference: 0 };
  for (const [name, fn, what] of CASES) {
    let line;
    try {
      await fn(dir);
      line = what === undefined ? "pass" : `difference: ${what}`;
    } catch (error) {
      line = `fail: ${error?.code ?? error?.name}: ${error?.message}`;
    }
    counts[line.split(":")[0]] += 1;
    console.log(`case ${name}: ${line}`);
  }
  console.log(`parity: ${counts.pass} passed, ${counts.fail} failed, ${counts.difference} deliberate differences`);
}

function describe(what, error) {
  if (!error) return `${what}: not refused`;
  return `${what}: code=${error.code} wit=${error.witError?.tag} message=${error.message}`;
}

async function denied() {
  console.log(describe("spawnSync", spawnSync("rm", ["-rf", "/tmp/x"]).error));
  let thrown;
  try {
    execFileSync("rm", ["-rf", "/tmp/x"]);
  } catch (error) {
    thrown = error;
  }
  console.log(describe("execFileSync", thrown));
  const child = spawn("rm", ["-rf", "/tmp/x"]);
  const error = await new Promise((resolve) => child.on("error", resolve));
  console.log(describe("spawn", error));
  console.log(`spawn pid: ${child.pid}`);
  console.log(describe("shell", spawnSync("echo hi", [], { shell: true }).error));
}

async function main() {
  const [verb, ...rest] = getArguments().slice(1);
  if (verb === "parity" && rest.length === 1) return parity(rest[0]);
  if (verb === "denied") return denied();
  console.log("usage: parity DIR | denied");
}

// The `wasi:cli/run` export: the promise it returns is run to its end.
export const run = {
  run() {
    return main();
  },
};
