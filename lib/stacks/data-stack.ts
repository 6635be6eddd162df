import { Stack, type StackProps } from "aws-cdk-lib";
import type { Construct } from "constructs";
import type { TokenbankConfig } from "../config.js";
import { BucketTable } from "../constructs/bucket-table.js";

/** Props of {@link DataStack}. */
export interface DataStackProps extends StackProps {
  readonly config: TokenbankConfig;
}

/** The stateful stack: the global table, in the first configured region, replicated to the others. */
export class DataStack extends Stack {
  readonly table: BucketTable;

  constructor(scope: Construct, id: string, props: DataStackProps) {
    super(scope, id, props);
    const { config } = props;
    this.table = new BucketTable(this, "Buckets", {
      tableName: config.tableName,
      replicaRegions: config.regions.slice(1),
      deletionProtection: config.deletionProtection,
    });
  }
}
