/**
 * `npm run simulate -- --seeds N`: every scenario over seeds 1…N, with the spread. The command
 * itself, in its own process, as a user runs it.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const run = (args: string[]) => promisify(execFile)(process.execPath, ["--import", "tsx", "sim/run.ts", ...args], { cwd: process.cwd() });

describe("simulate --seeds", () => {
  it("runs a scenario over seeds 1…N and reports mean, min, max and the worst over-admission", async () => {
    const { stdout } = await run(["--scenario", "small-bucket", "--seeds", "3", "--json"]);
    const [row] = JSON.parse(stdout) as {
      scenario: string;
      seeds: number;
      "mean utilisation": string;
      min: string;
      max: string;
      "worst over-admission (any seed)": number;
    }[];
    expect(row?.scenario).toBe("small-bucket");
    expect(row?.seeds).toBe(3);
    const pct = (x: string | undefined) => Number(x?.replace("%", ""));
    expect(pct(row?.min)).toBeLessThanOrEqual(pct(row?.["mean utilisation"]));
    expect(pct(row?.["mean utilisation"])).toBeLessThanOrEqual(pct(row?.max));
    expect(pct(row?.min)).toBeGreaterThan(50);
    // Different seeds are different arrivals: the spread is not one run printed three times.
    expect(pct(row?.min)).toBeLessThan(pct(row?.max));
    expect(row?.["worst over-admission (any seed)"]).toBeLessThanOrEqual(0);
  });

  it("refuses a seed count that is not a whole number from 1 to 1000", async () => {
    await expect(run(["--scenario", "small-bucket", "--seeds", "0"])).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringContaining("--seeds"),
    });
  });
});
