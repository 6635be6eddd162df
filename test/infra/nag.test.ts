/** cdk-nag AwsSolutions on every stack: no unacknowledged findings; every acknowledgement carries its reason. */
import { App, type Stack, Validations } from "aws-cdk-lib";
import { AwsSolutionsChecks } from "cdk-nag";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../lib/config.js";
import { DataStack } from "../../lib/stacks/data-stack.js";
import { RegionStack } from "../../lib/stacks/region-stack.js";

const config = loadConfig((key) => ({ regions: "us-east-1,eu-central-1" })[key as "regions"]);

/** Synthesizes with the AwsSolutions pack; the findings the validation report lists, or [] if it passed. */
function findings(make: (app: App) => Stack): string[] {
  const app = new App({ context: { "aws:cdk:bundling-stacks": [] } });
  make(app);
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  try {
    app.synth();
    return [];
  } catch (error) {
    return String((error as Error).message)
      .split("\n")
      .filter((l) => /AwsSolutions-/.test(l));
  }
}

describe("cdk-nag AwsSolutions", () => {
  it.each([
    ["Data", (app: App) => new DataStack(app, "Data", { env: { region: "us-east-1" }, config })],
    ["Region", (app: App) => new RegionStack(app, "Region", { env: { region: "eu-central-1" }, config })],
  ])("%s stack has no unacknowledged findings", (_name, make) => {
    expect(findings(make)).toEqual([]);
  });
});
