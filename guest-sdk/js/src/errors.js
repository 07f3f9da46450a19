// Errors shaped like Node's: an `Error` with a `code`, and the WIT error it
// came from as `witError`.

const CODES = {
  denied: "EACCES",
  "not-found": "ESRCH",
  invalid: "ERR_INVALID_ARG_VALUE",
  "limit-reached": "EAGAIN",
  "timed-out": "ETIMEDOUT",
  io: "EIO",
};

/** A Node-style system error for a WIT `error` value ({ tag, val }). */
export function hostError(witError, syscall, path) {
  let code = CODES[witError.tag] ?? "EIO";
  let message;
  switch (witError.tag) {
    case "denied":
      message = `${syscall} ${path} EACCES: denied by policy: ${witError.val}`;
      break;
    case "spawn-failed":
    case "invalid":
      // The OS found no file (the program, or the working directory), or
      // refused to run it.
      if (witError.val.includes("(os error 2)")) code = "ENOENT";
      else if (witError.tag === "spawn-failed") code = witError.val.includes("(os error 13)") ? "EACCES" : "EIO";
      message = `${syscall} ${path} ${code}: ${witError.tag}: ${witError.val}`;
      break;
    case "timed-out":
      message = `${syscall} ${path} ETIMEDOUT: the process ran past its timeout and was killed`;
      break;
    default:
      message = `${syscall} ${path} ${code}: ${witError.tag}: ${witError.val}`;
  }
  const error = new Error(message);
  error.code = code;
  error.errno = code;
  error.syscall = `${syscall} ${path}`;
  error.path = path;
  error.witError = witError;
  if (witError.tag === "denied") error.reason = witError.val;
  return error;
}

/** An error with a `code` and no WIT error behind it. */
export function codeError(code, message, fields = {}) {
  const error = new Error(message);
  error.code = code;
  return Object.assign(error, fields);
}
