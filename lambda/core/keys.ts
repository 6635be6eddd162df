import { ValidationError } from "./errors.js";

/** Longest bucket key accepted, in UTF-8 bytes. */
export const MAX_KEY_BYTES = 512;

// C0 controls, DEL and C1 controls.
// biome-ignore lint/suspicious/noControlCharactersInRegex: that is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * Checks a bucket key: 1–512 UTF-8 bytes, no control characters, no leading `#` (reserved).
 * @throws {ValidationError} `request.invalid_key`
 * @example assertValidKey("agent-42")
 */
export function assertValidKey(key: string, what = "key"): void {
  const bytes = new TextEncoder().encode(key).length;
  if (bytes === 0) throw new ValidationError("request.invalid_key", `${what} must not be empty`);
  if (bytes > MAX_KEY_BYTES) {
    throw new ValidationError("request.invalid_key", `${what} is ${bytes} bytes long; at most ${MAX_KEY_BYTES} are allowed`);
  }
  if (CONTROL.test(key)) throw new ValidationError("request.invalid_key", `${what} must not contain control characters`);
  if (key.startsWith("#")) {
    throw new ValidationError(
      "request.invalid_key",
      `${what} must not start with "#": tokenbank's own items (heartbeats, idempotency records) live there`,
    );
  }
}
