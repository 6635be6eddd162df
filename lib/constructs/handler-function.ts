import { resolve } from "node:path";
import { Duration } from "aws-cdk-lib";
import type { IRole } from "aws-cdk-lib/aws-iam";
import { Architecture, LoggingFormat, Runtime } from "aws-cdk-lib/aws-lambda";
import { NodejsFunction, OutputFormat } from "aws-cdk-lib/aws-lambda-nodejs";
import { LogGroup, type RetentionDays } from "aws-cdk-lib/aws-logs";
import { Construct } from "constructs";

/** Props of {@link HandlerFunction}. */
export interface HandlerFunctionProps {
  /** Entry module under `lambda/functions/`, without extension (e.g. `rate`). */
  readonly entry: string;
  /** Environment variables. */
  readonly environment: Record<string, string>;
  /** Log retention. */
  readonly logRetention: RetentionDays;
  /** Memory, MB. @default 512 */
  readonly memorySize?: number;
  /** A fixed function name (only where other regions must find it). @default generated */
  readonly functionName?: string;
  /** Function timeout, seconds. @default 5 */
  readonly timeoutSeconds?: number;
  /** An execution role made elsewhere (it must carry the logs policy). @default a new role */
  readonly role?: IRole;
}

const ROOT = resolve(import.meta.dirname, "../..");

/**
 * One tokenbank Lambda: Node.js 22 on arm64, bundled by the local esbuild (no Docker),
 * minified ESM, JSON logs into its own log group.
 */
export class HandlerFunction extends Construct {
  readonly fn: NodejsFunction;

  constructor(scope: Construct, id: string, props: HandlerFunctionProps) {
    super(scope, id);
    const logGroup = new LogGroup(this, "Logs", { retention: props.logRetention });
    this.fn = new NodejsFunction(this, "Function", {
      entry: resolve(ROOT, "lambda/functions", `${props.entry}.ts`),
      projectRoot: ROOT,
      depsLockFilePath: resolve(ROOT, "package-lock.json"),
      runtime: Runtime.NODEJS_22_X,
      architecture: Architecture.ARM_64,
      memorySize: props.memorySize ?? 512,
      ...(props.functionName ? { functionName: props.functionName } : {}),
      ...(props.role ? { role: props.role } : {}),
      timeout: Duration.seconds(props.timeoutSeconds ?? 5),
      environment: { NODE_OPTIONS: "--enable-source-maps", ...props.environment },
      loggingFormat: LoggingFormat.JSON,
      logGroup,
      bundling: {
        format: OutputFormat.ESM,
        minify: true,
        sourceMap: true,
        target: "node22",
        mainFields: ["module", "main"],
        // Some CommonJS dependencies call require(); give the ESM bundle one.
        banner: "import { createRequire } from 'module'; const require = createRequire(import.meta.url);",
        forceDockerBundling: false,
        // Pinned SDK versions, and a faster cold start than loading the runtime's SDK as loose files.
        bundleAwsSDK: true,
      },
    });
  }
}
