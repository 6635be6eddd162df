/**
 * The AWS resource names that one region's code must know of another region's, fixed by the
 * CDK app and read by the functions: one table, shared by `lib/` and `lambda/`.
 */

/** The transfer function's name in a region (peers invoke it by name to borrow). */
export const transferFunctionName = (region: string): string => `tokenbank-transfer-${region}`;

/**
 * The functions that call a peer region's transfer function: the rate function (borrow), the
 * stream-merge function (offers after donor gives) and the transfer function itself (collecting
 * an offer). Their roles are the only principals a peer's transfer function accepts.
 */
export const PEER_CALLERS = ["rate", "merge", "transfer"] as const;

/** One of {@link PEER_CALLERS}. */
export type PeerCaller = (typeof PEER_CALLERS)[number];

/**
 * A peer caller's role in a region. IAM is global, so the data stack (deployed first) creates
 * every region's roles; each region's transfer function can then name its peers' roles from its
 * very first deployment.
 */
export const callerRoleName = (fn: PeerCaller, region: string): string => `tokenbank-${fn}-${region}`;
