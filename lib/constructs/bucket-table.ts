import { RemovalPolicy } from "aws-cdk-lib";
import { AttributeType, Billing, StreamViewType, TableV2 } from "aws-cdk-lib/aws-dynamodb";
import { Construct } from "constructs";

/** Props of {@link BucketTable}. */
export interface BucketTableProps {
  /** Table name, the same in every region. */
  readonly tableName: string;
  /** Regions other than the stack's own that get a replica. @default none */
  readonly replicaRegions?: readonly string[];
  /** Refuse deletes and retain on stack removal. @default true */
  readonly deletionProtection?: boolean;
}

/**
 * The tokenbank global table: `pk`/`sk`, on-demand, streams with new and old images (the merge
 * handler's input), TTL on `exp`, point-in-time recovery, one replica per serving region.
 */
export class BucketTable extends Construct {
  /** The table (primary replica in this stack's region). */
  readonly table: TableV2;

  constructor(scope: Construct, id: string, props: BucketTableProps) {
    super(scope, id);
    const protect = props.deletionProtection ?? true;
    this.table = new TableV2(this, "Table", {
      tableName: props.tableName,
      partitionKey: { name: "pk", type: AttributeType.STRING },
      sortKey: { name: "sk", type: AttributeType.STRING },
      billing: Billing.onDemand(),
      dynamoStream: StreamViewType.NEW_AND_OLD_IMAGES,
      timeToLiveAttribute: "exp",
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: protect,
      removalPolicy: protect ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
      replicas: (props.replicaRegions ?? []).map((region) => ({ region })),
    });
  }
}
