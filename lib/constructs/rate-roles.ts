import { ManagedPolicy, Role, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import { Construct } from "constructs";
import { rateRoleName } from "../../lambda/names.js";

/** Props of {@link RateRoles}. */
export interface RateRolesProps {
  /** Every serving region. */
  readonly regions: readonly string[];
}

/**
 * Every region's rate-function role, created once, before any region stack. IAM is global: a
 * role made here serves its region's rate function (which the region stack attaches its table
 * and invoke policies to), and each transfer function's resource policy can name its peers'
 * roles on its region's first deployment, when those regions' stacks do not exist yet. Only
 * the logs policy is attached here; everything the function may do is granted in its region.
 */
export class RateRoles extends Construct {
  /** The roles, by region. */
  readonly roles: ReadonlyMap<string, Role>;

  constructor(scope: Construct, id: string, props: RateRolesProps) {
    super(scope, id);
    const logs = ManagedPolicy.fromAwsManagedPolicyName("service-role/AWSLambdaBasicExecutionRole");
    this.roles = new Map(
      props.regions.map((region) => [
        region,
        new Role(this, region, {
          roleName: rateRoleName(region),
          description: `tokenbank's rate function in ${region}: the only caller its peers' transfer functions accept`,
          assumedBy: new ServicePrincipal("lambda.amazonaws.com"),
          managedPolicies: [logs],
        }),
      ]),
    );
  }
}
