/** Where a running `npm start` tells the CLI how to reach it (a file in the OS temp folder). */
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** What the CLI needs to reach the local system. */
export interface LocalState {
  readonly pid: number;
  readonly dynamoEndpoint: string;
  readonly tableName: string;
  readonly regions: readonly { region: string; url: string }[];
  readonly controlUrl: string;
}

/** The state file's path. */
export const STATE_FILE = join(tmpdir(), "tokenbank-local.json");

export function writeState(state: LocalState): void {
  writeFileSync(STATE_FILE, JSON.stringify(state, null, 2));
}

/** The running local system, or undefined (no file, or its process is gone). */
export function readState(): LocalState | undefined {
  try {
    const state = JSON.parse(readFileSync(STATE_FILE, "utf8")) as LocalState;
    process.kill(state.pid, 0); // throws if the process is gone
    return state;
  } catch {
    return undefined;
  }
}

export function clearState(): void {
  rmSync(STATE_FILE, { force: true });
}
