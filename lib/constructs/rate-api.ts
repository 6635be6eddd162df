import { CfnOutput, Validations } from "aws-cdk-lib";
import { AccessLogFormat } from "aws-cdk-lib/aws-apigateway";
import { HttpApi, HttpMethod, HttpStage, LogGroupLogDestination } from "aws-cdk-lib/aws-apigatewayv2";
import { HttpIamAuthorizer, HttpJwtAuthorizer } from "aws-cdk-lib/aws-apigatewayv2-authorizers";
import { HttpLambdaIntegration } from "aws-cdk-lib/aws-apigatewayv2-integrations";
import type { IFunction } from "aws-cdk-lib/aws-lambda";
import { LogGroup, RetentionDays } from "aws-cdk-lib/aws-logs";
import { Construct } from "constructs";

/** Props of {@link RateApi}. */
export interface RateApiProps {
  readonly rate: IFunction;
  readonly status: IFunction;
  readonly buckets: IFunction;
  readonly health: IFunction;
  /** Access-log retention. @default one month */
  readonly logRetention?: RetentionDays;
  /** Authorization of `/rate` and `/status`. Admin routes always require IAM. @default IAM */
  readonly dataAuth?:
    | { readonly kind: "iam" }
    | { readonly kind: "none" }
    | { readonly kind: "jwt"; readonly issuer: string; readonly audience: string[] };
}

/**
 * The regional HTTP API (API Gateway HTTP API, payload v2): `POST /rate`, `GET /status/{key}`,
 * `GET /health`, and the admin routes `/buckets/{key}`, which always require IAM.
 */
export class RateApi extends Construct {
  readonly api: HttpApi;
  readonly stage: HttpStage;

  constructor(scope: Construct, id: string, props: RateApiProps) {
    super(scope, id);
    this.api = new HttpApi(this, "Api", { description: "tokenbank regional rate-limit API", createDefaultStage: false });
    const iam = new HttpIamAuthorizer();
    const auth = props.dataAuth ?? { kind: "iam" };
    const dataAuth =
      auth.kind === "iam"
        ? { authorizer: iam }
        : auth.kind === "jwt"
          ? { authorizer: new HttpJwtAuthorizer("DataJwt", auth.issuer, { jwtAudience: auth.audience }) }
          : {};
    const route = (path: string, methods: HttpMethod[], fn: IFunction, name: string, auth: object) =>
      this.api.addRoutes({ path, methods, integration: new HttpLambdaIntegration(name, fn), ...auth });
    route("/rate", [HttpMethod.POST], props.rate, "Rate", dataAuth);
    route("/status/{key}", [HttpMethod.GET], props.status, "Status", dataAuth);
    route("/buckets/{key}/history", [HttpMethod.GET], props.buckets, "BucketHistory", { authorizer: iam });
    const [health] = route("/health", [HttpMethod.GET], props.health, "Health", {});
    const [openapi] = route("/openapi.json", [HttpMethod.GET], props.health, "OpenApi", {});
    for (const [r, why] of [
      [health, "GET /health is a liveness probe for load balancers and uptime checks; it reads nothing and returns only the region name"],
      [openapi, "GET /openapi.json is the public API contract; it reads nothing"],
    ] as const) {
      if (r) Validations.of(r).acknowledge({ id: "AwsSolutions::AwsSolutions-APIG4", reason: why });
    }
    route("/buckets/{key}", [HttpMethod.GET, HttpMethod.PUT, HttpMethod.PATCH, HttpMethod.DELETE], props.buckets, "Buckets", {
      authorizer: iam,
    });
    // The $default stage, with access logs for every request (JSON, one line each).
    const accessLogs = new LogGroup(this, "AccessLogs", { retention: props.logRetention ?? RetentionDays.ONE_MONTH });
    this.stage = new HttpStage(this, "DefaultStage", {
      httpApi: this.api,
      stageName: "$default",
      autoDeploy: true,
      accessLogSettings: {
        destination: new LogGroupLogDestination(accessLogs),
        format: AccessLogFormat.custom(
          JSON.stringify({
            requestId: "$context.requestId",
            ip: "$context.identity.sourceIp",
            caller: "$context.identity.caller",
            time: "$context.requestTime",
            route: "$context.routeKey",
            status: "$context.status",
            latencyMs: "$context.responseLatency",
            integrationError: "$context.integrationErrorMessage",
          }),
        ),
      },
    });
    new CfnOutput(this, "Url", { value: this.api.apiEndpoint, description: "Regional tokenbank endpoint" });
  }
}
