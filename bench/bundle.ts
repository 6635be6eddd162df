/** Builds one Lambda entry point the way the CDK's NodejsFunction does (minified ESM, SDK bundled). */
import { join } from "node:path";
import { build } from "esbuild";

/** Bundles `lambda/functions/<entry>` to `outfile`, for this machine's Node. */
export async function bundleFunction(root: string, entry: string, outfile: string): Promise<void> {
  await build({
    entryPoints: [join(root, "lambda/functions", entry)],
    outfile,
    bundle: true,
    minify: true,
    format: "esm",
    platform: "node",
    target: `node${process.versions.node.split(".")[0]}`, // measured on this machine's Node; deployed for nodejs22.x
    mainFields: ["module", "main"],
    banner: { js: "import { createRequire } from 'module'; const require = createRequire(import.meta.url);" },
    logLevel: "silent",
  });
}

/** The environment every function reads at module scope, for loading a bundle outside Lambda. */
export const FUNCTION_ENV = {
  TOKENBANK_TABLE: "t",
  AWS_REGION: "us-east-1",
  TOKENBANK_REGIONS: "us-east-1,eu-central-1",
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
};
