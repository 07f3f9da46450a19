// A child's streams: readable ones with on('data'), on('end') and async
// iteration; a writable stdin with write() and end().
import { EventEmitter } from "./emitter.js";
import { call, process, MAX_READ, WAIT_MS } from "./host.js";

/** A piped output stream of a child: emits 'data' (a `Uint8Array`, or a
 * string after `setEncoding`), then 'end' and 'close'; async-iterable.
 * Chunks that arrive while nothing listens or iterates are kept for a
 * later iteration. */
export class Readable extends EventEmitter {
  #decoder = null;
  #queue = [];
  #waiting = [];

  constructor() {
    super();
    /** Whether every byte has been delivered. */
    this.readableEnded = false;
    /** Whether the stream was destroyed. */
    this.destroyed = false;
  }

  /** Delivers 'data' as strings in `encoding` from now on. */
  setEncoding(encoding) {
    const label = encoding === "utf8" ? "utf-8" : encoding;
    this.#decoder = new TextDecoder(label);
    return this;
  }

  /** Called by the child's pump with new bytes. */
  push(bytes) {
    if (bytes === null) {
      const rest = this.#decoder ? this.#decoder.decode() : "";
      if (rest) this.#deliver(rest);
      this.readableEnded = true;
      this.emit("end");
      this.emit("close");
      for (const resolve of this.#waiting.splice(0)) resolve({ done: true, value: undefined });
      return;
    }
    this.#deliver(this.#decoder ? this.#decoder.decode(bytes, { stream: true }) : bytes);
  }

  #deliver(chunk) {
    if (chunk.length === 0) return;
    const waiter = this.#waiting.shift();
    if (waiter) waiter({ done: false, value: chunk });
    else if (this.listenerCount("data") === 0) this.#queue.push(chunk);
    this.emit("data", chunk);
  }

  /** Stops delivering; the child keeps running. */
  destroy() {
    this.destroyed = true;
    return this;
  }

  /** Chunks in order, until the stream ends. */
  [Symbol.asyncIterator]() {
    return {
      next: () => {
        if (this.#queue.length > 0) return Promise.resolve({ done: false, value: this.#queue.shift() });
        if (this.readableEnded) return Promise.resolve({ done: true, value: undefined });
        return new Promise((resolve) => this.#waiting.push(resolve));
      },
      return: () => Promise.resolve({ done: true, value: undefined }),
      [Symbol.asyncIterator]() {
        return this;
      },
    };
  }
}

/** A child's piped stdin: `write` hands bytes to the host, `end` closes
 * it once they are delivered. */
export class Writable extends EventEmitter {
  #id;
  #file;

  constructor(id, file) {
    super();
    this.#id = id;
    this.#file = file;
    /** Whether `end` was called. */
    this.writableEnded = false;
  }

  /** Writes a string (in `encoding`, utf-8) or bytes; `callback` runs once
   * the host took them. Returns true. */
  write(chunk, encoding, callback) {
    if (typeof encoding === "function") [callback, encoding] = [encoding, undefined];
    let bytes = typeof chunk === "string" ? new TextEncoder().encode(chunk) : chunk;
    let error = null;
    try {
      if (this.writableEnded) throw Object.assign(new Error("write after end"), { code: "ERR_STREAM_WRITE_AFTER_END" });
      while (bytes.length > 0) {
        const taken = Number(call("write", this.#file, process.write, this.#id, bytes.subarray(0, MAX_READ), BigInt(WAIT_MS)));
        bytes = bytes.subarray(taken);
      }
    } catch (e) {
      error = e;
    }
    if (callback) Promise.resolve().then(() => callback(error));
    else if (error && error.code !== "EIO" && error.code !== "ERR_INVALID_ARG_VALUE") Promise.resolve().then(() => this.emit("error", error));
    return true;
  }

  /** Writes `chunk` if given, then closes stdin. */
  end(chunk, encoding, callback) {
    if (typeof chunk === "function") [callback, chunk] = [chunk, undefined];
    if (chunk !== undefined && chunk !== null) this.write(chunk, encoding);
    if (!this.writableEnded) {
      this.writableEnded = true;
      try {
        process.closeStdin(this.#id);
      } catch {
        // The child already ended.
      }
      Promise.resolve().then(() => {
        this.emit("finish");
        this.emit("close");
        callback?.();
      });
    }
    return this;
  }
}
