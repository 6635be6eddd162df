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
      meanUtilisation: number;
      minUtilisation: number;
      maxUtilisation: number;
      worstOverAdmission: number;
    }[];
    expect(row?.scenario).toBe("small-bucket");
    expect(row?.seeds).toBe(3);
    expect(row?.minUtilisation).toBeLessThanOrEqual(row?.meanUtilisation as number);
    expect(row?.meanUtilisation).toBeLessThanOrEqual(row?.maxUtilisation as number);
    expect(row?.minUtilisation).toBeGreaterThan(0.5);
    // Different seeds are different arrivals: the spread is not one run printed three times.
    expect(row?.minUtilisation).toBeLessThan(row?.maxUtilisation as number);
    expect(row?.worstOverAdmission).toBeLessThanOrEqual(0);
  });

  it("prints the spread as a table for people", async () => {
    const { stdout } = await run(["--scenario", "small-bucket", "--seeds", "2"]);
    expect(stdout).toMatch(/small-bucket.*\b2\b.*\d+\.\d\d%/);
  });

  it("refuses a seed count that is not a whole number from 1 to 1000", async () => {
    await expect(run(["--scenario", "small-bucket", "--seeds", "0"])).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringContaining("--seeds"),
    });
  });
});
