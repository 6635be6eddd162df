/**
 * Exact fixed-point units used throughout the core.
 *
 * - Token amounts in slices are integers in **atto-tokens** (aT, 10⁻¹⁸ token). With refill
 *   rates in micro-tokens per second, shares in ppm and time in µs, the refill over any
 *   interval, `rate · share · Δt`, is then an exact integer of aT: the token arithmetic has
 *   no rounding at all. (10 years at 10⁹ tokens/s is 3·10³⁵ aT: within DynamoDB's 38 digits.)
 * - Refill rates are integers in **micro-tokens per second** (µT/s).
 * - Shares are integers in **parts per million** (ppm).
 * - Time is integer **microseconds** (µs).
 *
 * All arithmetic is `bigint`; the few roundings (display, proportional carry-over, waits)
 * go against admission.
 */

/** Millionths: µT per token, ppm per share, µs per second. */
export const MICRO = 1_000_000n;
/** Atto-tokens per token. */
export const TOKEN = 10n ** 18n;
/** A whole share, in parts per million. */
export const WHOLE_SHARE = 1_000_000n;

/** `⌊a / b⌋` for `b > 0` (also for negative `a`). */
export function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a < 0n !== b < 0n ? q - 1n : q;
}

/** `⌈a / b⌉` for `b > 0` (also for negative `a`). */
export function ceilDiv(a: bigint, b: bigint): bigint {
  return -floorDiv(-a, b);
}

/** The larger of two bigints. */
export function maxBig(a: bigint, b: bigint): bigint {
  return a > b ? a : b;
}

/** The smaller of two bigints. */
export function minBig(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}

/**
 * Converts a decimal number with at most 6 fractional digits to an exact integer count of
 * millionths, or `undefined` when it has more precision than that (or is not finite).
 *
 * @example
 * toMillionths(0.5) // 500000n
 * toMillionths(1e-7) // undefined
 */
export function toMillionths(value: number): bigint | undefined {
  if (!Number.isFinite(value)) return undefined;
  const scaled = Math.round(value * 1e6);
  if (!Number.isSafeInteger(scaled)) return undefined;
  // Accept only values that are (to double precision) an exact multiple of 1e-6.
  if (Math.abs(scaled - value * 1e6) > 1e-6 * Math.max(1, Math.abs(value))) return undefined;
  return BigInt(scaled);
}

/** Formats millionths back to a JS number (for JSON output only, never for decisions). */
export function fromMillionths(value: bigint): number {
  return Number(value) / 1e6;
}
