/** The clock port: the only source of time outside tests. */
export interface Clock {
  /** Microseconds since the Unix epoch. */
  nowUs(): bigint;
  /** Waits `ms` milliseconds. */
  sleep(ms: number): Promise<void>;
}
