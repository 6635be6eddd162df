import { Stack, type StackProps, Validations } from "aws-cdk-lib";
import type { Construct } from "constructs";
import type { TokenbankConfig } from "../config.js";
import { BucketTable } from "../constructs/bucket-table.js";
import { CallerRoles } from "../constructs/caller-roles.js";

/** Props of {@link DataStack}. */
export interface DataStackProps extends StackProps {
  readonly config: TokenbankConfig;
}

/**
 * The stateful stack, deployed before any region's: the global table, in the first configured
 * region, replicated to the others; and every region's roles of the functions that call peers
 * (IAM is global), so that each transfer function's resource policy can name its peers' roles
 * from the start.
 */
export class DataStack extends Stack {
  readonly table: BucketTable;
  readonly callerRoles: CallerRoles;

  constructor(scope: Construct, id: string, props: DataStackProps) {
    super(scope, id, props);
    const { config } = props;
    this.table = new BucketTable(this, "Buckets", {
      tableName: config.tableName,
      replicaRegions: config.regions.slice(1),
      deletionProtection: config.deletionProtection,
    });
    this.callerRoles = new CallerRoles(this, "RateRoles", { regions: config.regions });
    Validations.of(this).acknowledge({
      id: "AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
      reason:
        "AWSLambdaBasicExecutionRole only lets the rate, merge and transfer functions write their own CloudWatch logs; their table, stream and invoke permissions are inline and least-privilege, in their region's stack",
    });
  }
}
