/**
 * Accuracy metrics of a run of admissions against the ideal token-bucket bound
 * (ARCHITECTURE.md §7 definitions), exact in integers.
 */

/** One admission: when (µs) and how much (aT). */
export interface Admission {
  readonly atUs: bigint;
  readonly amount: bigint;
}

/**
 * Worst over-admission, in aT: the maximum over all windows `[t_a, t_b]` between admission
 * instants of `admitted(t_a..t_b) − capacity − rate·(t_b − t_a)`, or a value ≤ 0 if the bound
 * always held. O(n) with a running minimum. `admissions` must be sorted by time.
 *
 * @param capacity whole-bucket capacity, aT
 * @param ratePerUs whole-bucket refill, aT per µs (= µT/s · 10⁶ ppm)
 */
export function worstOverAdmission(admissions: readonly Admission[], capacity: bigint, ratePerUs: bigint): bigint {
  let worst: bigint | undefined;
  let prefix = 0n; // Σ amounts before the current admission
  let minStart: bigint | undefined; // min over a ≤ b of (S_{a−1} − rate·t_a)
  for (const { atUs, amount } of admissions) {
    const start = prefix - ratePerUs * atUs;
    if (minStart === undefined || start < minStart) minStart = start;
    prefix += amount;
    const excess = prefix - ratePerUs * atUs - minStart - capacity;
    if (worst === undefined || excess > worst) worst = excess;
  }
  return worst ?? -capacity;
}
