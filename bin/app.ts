/**
 * The tokenbank CDK app: one stateful stack with the global table (first region) and one
 * stateless stack per region. Configuration comes from CDK context (see lib/config.ts).
 *
 *   npx cdk synth
 *   npx cdk deploy --all -c regions=us-east-1,eu-central-1
 */
import { App } from "aws-cdk-lib";
import { loadConfig } from "../lib/config.js";
import { DataStack } from "../lib/stacks/data-stack.js";
import { RegionStack } from "../lib/stacks/region-stack.js";

const app = new App();
const config = loadConfig((key) => app.node.tryGetContext(key));
const account = process.env.CDK_DEFAULT_ACCOUNT;
const [home] = config.regions as [string, ...string[]];
const data = new DataStack(app, "Tokenbank-Data", { env: { account, region: home }, config });
for (const region of config.regions) {
  const stack = new RegionStack(app, `Tokenbank-${region}`, { env: { account, region }, config });
  stack.addStackDependency(data);
}
app.synth();
