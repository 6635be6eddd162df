/**
 * A store whose calls run only when the test says so: every call is queued, and `step(i)` runs
 * the i-th pending call (mod their number) atomically against an in-memory store. Driving the
 * queue from a fast-check sequence explores arbitrary interleavings of many instances' calls.
 */
import { MemoryBucketStore } from "../../lambda/adapters/memory/store.js";
import type { BucketStore } from "../../lambda/ports/bucket-store.js";

interface Pending {
  readonly method: string;
  run(): void;
}

/** The queue shared by every instance's view of one store. */
export class Interleaver {
  readonly inner: MemoryBucketStore;
  private readonly pending: Pending[] = [];
  /** Calls run so far, by method. */
  readonly ran: Record<string, number> = {};

  constructor(region = "local-1") {
    this.inner = new MemoryBucketStore(region);
  }

  /** A view of the store whose calls wait in the queue; `calls` counts this view's calls by method. */
  store(): BucketStore & { readonly calls: Record<string, number> } {
    const calls: Record<string, number> = {};
    return new Proxy(this.inner, {
      get: (target, name, receiver) => {
        if (name === "calls") return calls;
        const value = Reflect.get(target, name, receiver);
        if (typeof value !== "function" || name === "stats") return value;
        return (...args: unknown[]) =>
          new Promise((resolve, reject) => {
            calls[String(name)] = (calls[String(name)] ?? 0) + 1;
            this.pending.push({
              method: String(name),
              run: () => {
                (value as (...a: unknown[]) => Promise<unknown>).apply(target, args).then(resolve, reject);
              },
            });
          });
      },
    }) as unknown as BucketStore & { readonly calls: Record<string, number> };
  }

  get waiting(): number {
    return this.pending.length;
  }

  /** Runs the `choice`-th pending call (mod the queue's length); false when none waits. */
  step(choice: number): boolean {
    if (this.pending.length === 0) return false;
    const [call] = this.pending.splice(choice % this.pending.length, 1);
    if (!call) return false;
    this.ran[call.method] = (this.ran[call.method] ?? 0) + 1;
    call.run();
    return true;
  }
}

/** Lets every promise continuation that is ready run (the queued calls' callers move on). */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}
