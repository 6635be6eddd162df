import { CfnOutput } from "aws-cdk-lib";
import { HttpApi, HttpMethod } from "aws-cdk-lib/aws-apigatewayv2";
import { HttpIamAuthorizer } from "aws-cdk-lib/aws-apigatewayv2-authorizers";
import { HttpLambdaIntegration } from "aws-cdk-lib/aws-apigatewayv2-integrations";
import type { IFunction } from "aws-cdk-lib/aws-lambda";
import { Construct } from "constructs";

/** Props of {@link RateApi}. */
export interface RateApiProps {
  readonly rate: IFunction;
  readonly status: IFunction;
  readonly buckets: IFunction;
  readonly health: IFunction;
  /** Require IAM (SigV4) on `/rate` and `/status` too. @default true */
  readonly iamOnDataRoutes?: boolean;
}

/**
 * The regional HTTP API (API Gateway HTTP API, payload v2): `POST /rate`, `GET /status/{key}`,
 * `GET /health`, and the admin routes `/buckets/{key}`, which always require IAM.
 */
export class RateApi extends Construct {
  readonly api: HttpApi;

  constructor(scope: Construct, id: string, props: RateApiProps) {
    super(scope, id);
    this.api = new HttpApi(this, "Api", { description: "tokenbank regional rate-limit API", createDefaultStage: true });
    const iam = new HttpIamAuthorizer();
    const dataAuth = props.iamOnDataRoutes === false ? {} : { authorizer: iam };
    const route = (path: string, methods: HttpMethod[], fn: IFunction, name: string, auth: object) =>
      this.api.addRoutes({ path, methods, integration: new HttpLambdaIntegration(name, fn), ...auth });
    route("/rate", [HttpMethod.POST], props.rate, "Rate", dataAuth);
    route("/status/{key}", [HttpMethod.GET], props.status, "Status", dataAuth);
    route("/health", [HttpMethod.GET], props.health, "Health", {});
    route("/buckets/{key}", [HttpMethod.GET, HttpMethod.PUT, HttpMethod.PATCH, HttpMethod.DELETE], props.buckets, "Buckets", {
      authorizer: iam,
    });
    new CfnOutput(this, "Url", { value: this.api.apiEndpoint, description: "Regional tokenbank endpoint" });
  }
}
