import type { Clock } from "../../lambda/ports/clock.js";

/** A clock tests move by hand; `sleep` advances it. */
export class FakeClock implements Clock {
  constructor(public now = 1_700_000_000_000_000n) {}
  nowUs(): bigint {
    return this.now;
  }
  advanceMs(ms: number): void {
    this.now += BigInt(Math.round(ms * 1000));
  }
  async sleep(ms: number): Promise<void> {
    this.advanceMs(ms);
  }
}

/** A clock over `clock` whose every read costs `ms` (a job's budget runs out after so many reads). */
export function tickingClock(clock: FakeClock, ms = 1): { nowUs(): bigint; sleep(ms: number): Promise<void> } {
  return {
    nowUs: () => {
      clock.advanceMs(ms);
      return clock.nowUs();
    },
    sleep: (wait: number) => clock.sleep(wait),
  };
}
