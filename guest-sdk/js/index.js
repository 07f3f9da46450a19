// The wasmproc process capability for JavaScript guests, shaped like
// `node:child_process`:
//
//   import { execFileSync } from "wasmproc";
//   const log = execFileSync("git", ["log", "-n", "1"], { encoding: "utf8" });
//
// Differences from Node are listed in README.md: the child's environment
// starts empty, there is no shell unless the host grants `sh`, output is a
// `Uint8Array` (no `Buffer`), stdio is 'pipe', 'ignore' or 'inherit' (no
// file descriptors), and a denial is an `EACCES` error whose message
// carries the host's reason.

export { ChildProcess, exec, execFile, execFilePromise, spawn } from "./src/child_process.js";
export { execFileSync, execSync, spawnSync } from "./src/sync.js";
export { processInfo, processes } from "./src/registry.js";
