import { ManagedPolicy, Role, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import { Construct } from "constructs";
import { callerRoleName, PEER_CALLERS, type PeerCaller } from "../../lambda/names.js";

/** Props of {@link CallerRoles}. */
export interface CallerRolesProps {
  /** Every serving region. */
  readonly regions: readonly string[];
}

const PURPOSE: Record<PeerCaller, string> = {
  rate: "borrows from",
  merge: "offers its donor gives to",
  transfer: "collects offered gives from",
};

/**
 * Every region's roles of the functions that call peers' transfer functions (rate, stream
 * merge, transfer), created once, before any region stack. IAM is global: a role made here
 * serves its region's function (which the region stack attaches its table and invoke policies
 * to), and each transfer function's resource policy can name its peers' roles on its region's
 * first deployment, when those regions' stacks do not exist yet. Only the logs policy is
 * attached here; everything a function may do is granted in its region.
 */
export class CallerRoles extends Construct {
  /** The roles, by region, then by function. */
  readonly roles: ReadonlyMap<string, ReadonlyMap<PeerCaller, Role>>;

  constructor(scope: Construct, id: string, props: CallerRolesProps) {
    super(scope, id);
    const logs = ManagedPolicy.fromAwsManagedPolicyName("service-role/AWSLambdaBasicExecutionRole");
    this.roles = new Map(
      props.regions.map((region) => [
        region,
        new Map(
          PEER_CALLERS.map((fn) => [
            fn,
            new Role(this, fn === "rate" ? region : `${fn}-${region}`, {
              roleName: callerRoleName(fn, region),
              description: `tokenbank's ${fn} function in ${region}: ${PURPOSE[fn]} its peers' transfer functions, which accept only these roles`,
              assumedBy: new ServicePrincipal("lambda.amazonaws.com"),
              managedPolicies: [logs],
            }),
          ]),
        ),
      ]),
    );
  }
}
