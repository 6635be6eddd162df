/**
 * The DynamoDB Streams handler of a region: feeds replicated peer rows and configs to the
 * merger, reporting partial-batch failures (`ReportBatchItemFailures`) by sequence number.
 */
import middy from "@middy/core";
import type { DynamoDBBatchResponse, DynamoDBRecord, DynamoDBStreamEvent } from "aws-lambda";
import {
  CONFIG_SK,
  FORECAST_PREFIX,
  type Item,
  itemToConfig,
  itemToForecast,
  itemToSlice,
  SLICE_PREFIX,
} from "../adapters/dynamodb/items.js";
import type { Change, Merger } from "../app/merger.js";
import { silentTelemetry, type Telemetry } from "../ports/telemetry.js";

/** Decodes one stream record; `undefined` for records the merger does not need. */
export function toChange(record: DynamoDBRecord, self: string): Change | undefined {
  const data = record.dynamodb;
  const id = data?.SequenceNumber ?? "";
  const sk = data?.Keys?.sk?.S ?? "";
  const key = data?.Keys?.pk?.S ?? "";
  const image = data?.NewImage as Item | undefined;
  if (sk === CONFIG_SK) {
    // A TTL deletion carries an eventName older SDKs do not know: a record without a new image is a delete.
    return image ? { id, kind: "config", config: itemToConfig(image) } : { id, kind: "config-removed", key };
  }
  if (sk.startsWith(FORECAST_PREFIX) && image) return { id, kind: "forecast", forecast: itemToForecast(image) };
  if (sk.startsWith(SLICE_PREFIX) && image) {
    const slice = itemToSlice(image);
    return slice.region === self ? undefined : { id, kind: "slice", slice };
  }
  return undefined;
}

/** Builds the stream-merge handler. */
export function makeStreamMergeHandler(deps: { merger: Merger; region: string; telemetry?: Telemetry; nowMs?: () => number }) {
  const telemetry = deps.telemetry ?? silentTelemetry;
  const nowMs = deps.nowMs ?? (() => Date.now());
  const log = (msg: string, data: Record<string, unknown>) => telemetry.log("error", msg, data);
  return middy<DynamoDBStreamEvent, DynamoDBBatchResponse>(async (event: DynamoDBStreamEvent): Promise<DynamoDBBatchResponse> => {
    const changes: Change[] = [];
    for (const record of event.Records) {
      try {
        const change = toChange(record, deps.region);
        if (change) changes.push(change);
      } catch (error) {
        // A record we cannot decode would block the shard forever: log it and move on.
        log("undecodable stream record skipped", { sequenceNumber: record.dynamodb?.SequenceNumber, error: String(error) });
      }
    }
    const before = { ...deps.merger.stats };
    const failed = await deps.merger.apply(changes);
    const after = deps.merger.stats;
    telemetry.metric("Merges", after.merges - before.merges);
    telemetry.metric("Gives", after.gives - before.gives);
    // Donor gives offered to their receivers for direct delivery (ARCHITECTURE.md §3).
    if (after.offers > before.offers) telemetry.metric("Offers", after.offers - before.offers);
    if (failed.length > 0) telemetry.metric("MergeFailures", failed.length);
    // Merge lag: how old the newest peer state in this batch was when merged (compares clocks: metrics only).
    const lags = changes.flatMap((c) => (c.kind === "slice" ? [nowMs() - Number(c.slice.heartbeatUs / 1000n)] : []));
    if (lags.length > 0) telemetry.metric("MergeLagMs", Math.max(0, Math.min(...lags)));
    return { batchItemFailures: failed.map((itemIdentifier) => ({ itemIdentifier })) };
  });
}
