import type { Clock } from "../ports/clock.js";

/** The system clock (`performance.timeOrigin + performance.now()`, µs resolution, monotone within a process). */
export const systemClock: Clock = {
  nowUs: () => BigInt(Math.floor((performance.timeOrigin + performance.now()) * 1000)),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};
