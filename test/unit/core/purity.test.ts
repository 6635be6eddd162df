/** The core is pure: no AWS, no process, no clock, no randomness (STYLE.md habit 1). */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const CORE = join(import.meta.dirname, "../../../lambda/core");
const FORBIDDEN = [
  /from "@aws-sdk\//,
  /from "aws-lambda"/,
  /from "aws-cdk-lib/,
  /from "node:/,
  /\bprocess\./,
  /Date\.now\(/,
  /new Date\(\)/,
  /Math\.random\(/,
  /performance\.now\(/,
];

describe("lambda/core purity", () => {
  const files = readdirSync(CORE).filter((f) => f.endsWith(".ts"));
  it("has files to check", () => expect(files.length).toBeGreaterThan(5));
  it.each(files)("%s imports nothing impure and reads no clock", (file) => {
    const text = readFileSync(join(CORE, file), "utf8");
    for (const pattern of FORBIDDEN) expect(text, `${file} matches ${pattern}`).not.toMatch(pattern);
    for (const [, spec] of text.matchAll(/from "([^"]+)"/g))
      expect(spec === "zod/mini" || spec?.startsWith("./"), `${file} imports ${spec}`).toBe(true);
  });
});
