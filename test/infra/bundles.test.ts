/**
 * Every Lambda entry point bundles (esbuild, as the CDK does) and initialises: a module that
 * throws at load time would crash every cold start. (Built for this machine's Node; the deployed
 * bundles target nodejs22.x with the same options.)
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { bundleFunction, FUNCTION_ENV } from "../../bench/bundle.js";

const ROOT = join(import.meta.dirname, "../..");
const entries = readdirSync(join(ROOT, "lambda/functions")).filter((f) => f.endsWith(".ts"));
const out = mkdtempSync(join(tmpdir(), "tokenbank-bundle-test-"));

describe("Lambda bundles", () => {
  it("has every entry point", () => expect(entries.length).toBeGreaterThanOrEqual(9));
  it.each(entries)(
    "%s bundles and initialises",
    async (entry) => {
      const outfile = join(out, entry.replace(/\.ts$/, ".mjs"));
      await bundleFunction(ROOT, entry, outfile);
      const env = { ...process.env, ...FUNCTION_ENV };
      const code = `const m = await import(${JSON.stringify(`file://${outfile}`)}); console.log(typeof m.handler);`;
      expect(execFileSync("node", ["--input-type=module", "-e", code], { env, encoding: "utf8" }).trim()).toBe("function");
    },
    60_000,
  );
});
