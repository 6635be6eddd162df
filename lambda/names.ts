/**
 * The AWS resource names that one region's code must know of another region's, fixed by the
 * CDK app and read by the functions: one table, shared by `lib/` and `lambda/`.
 */

/** The transfer function's name in a region (peers invoke it by name to borrow). */
export const transferFunctionName = (region: string): string => `tokenbank-transfer-${region}`;

/**
 * The rate function's role in a region: the only principal a peer's transfer function accepts.
 * IAM is global, so the data stack (deployed first) creates every region's role; each region's
 * transfer function can then name its peers' roles from its very first deployment.
 */
export const rateRoleName = (region: string): string => `tokenbank-rate-${region}`;
