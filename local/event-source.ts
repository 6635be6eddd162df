/**
 * Feeds a region's stream to that region's merge handler exactly as a Lambda event source
 * mapping would: `DynamoDBStreamEvent` batches (up to `batchSize`), filter criteria that drop
 * the region's own slice rows and heartbeats, `ReportBatchItemFailures` (retry from the lowest
 * failed sequence number, with backoff), and a dead-letter count after `maxRetries`.
 */
import type { Context, DynamoDBBatchResponse, DynamoDBRecord, DynamoDBStreamEvent } from "aws-lambda";
import { HEARTBEAT_PK, SLICE_PREFIX } from "../lambda/adapters/dynamodb/items.js";
import type { StreamRecord, StreamTailer } from "./stream-tailer.js";

/** A stream handler as Lambda runs it. */
export type StreamHandler = (event: DynamoDBStreamEvent, context: Context) => Promise<DynamoDBBatchResponse | undefined>;

/** Whether a record passes the mapping's filter (the same rule as the CDK filter criteria). */
export function passesFilter(record: StreamRecord, region: string): boolean {
  const keys = record.dynamodb?.Keys;
  if (keys?.pk?.S === HEARTBEAT_PK) return false;
  const image = record.dynamodb?.NewImage;
  return !(keys?.sk?.S?.startsWith(SLICE_PREFIX) && image?.reg?.S === region);
}

/** Counters for `GET /replication`. */
export interface EventSourceStats {
  region: string;
  invocations: number;
  records: number;
  failures: number;
  retries: number;
  deadLettered: number;
  queued: number;
}

/** The event-source emulator of one region. */
export class EventSourceEmulator {
  readonly stats: EventSourceStats;
  private readonly queue: StreamRecord[] = [];
  private readonly handler: StreamHandler;
  private readonly region: string;
  private readonly batchSize: number;
  private readonly maxRetries: number;
  private running = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;

  constructor(options: { region: string; tailer: StreamTailer; handler: StreamHandler; batchSize?: number; maxRetries?: number }) {
    this.region = options.region;
    this.handler = options.handler;
    this.batchSize = options.batchSize ?? 100;
    this.maxRetries = options.maxRetries ?? 8;
    this.stats = { region: options.region, invocations: 0, records: 0, failures: 0, retries: 0, deadLettered: 0, queued: 0 };
    options.tailer.subscribe((records) => {
      for (const r of records) if (passesFilter(r, this.region)) this.queue.push(r);
      this.stats.queued = this.queue.length;
      this.wake?.();
    });
  }

  start(): void {
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.wake?.();
    await this.loop;
  }

  private async run(): Promise<void> {
    let attempt = 0;
    while (this.running) {
      if (this.queue.length === 0) {
        await new Promise<void>((resolve) => {
          this.wake = resolve;
          setTimeout(resolve, 50);
        });
        continue;
      }
      const batch = this.queue.slice(0, this.batchSize);
      const event: DynamoDBStreamEvent = { Records: batch.map((r) => this.toLambdaRecord(r)) };
      this.stats.invocations++;
      let failedFrom = -1;
      try {
        const out = await this.handler(event, {} as Context);
        const failed = new Set((out?.batchItemFailures ?? []).map((f) => f.itemIdentifier));
        failedFrom = batch.findIndex((r) => failed.has(r.dynamodb?.SequenceNumber ?? ""));
      } catch {
        failedFrom = 0; // the whole batch failed
      }
      if (failedFrom < 0) {
        this.queue.splice(0, batch.length);
        this.stats.records += batch.length;
        attempt = 0;
      } else {
        // Checkpoint before the lowest failure; retry from there.
        this.queue.splice(0, failedFrom);
        this.stats.records += failedFrom;
        this.stats.failures++;
        attempt++;
        if (attempt > this.maxRetries) {
          this.queue.shift(); // on-failure destination: dropped after logging
          this.stats.deadLettered++;
          attempt = 0;
        } else {
          this.stats.retries++;
          await new Promise((r) => setTimeout(r, Math.min(1000, 20 * 2 ** attempt)));
        }
      }
      this.stats.queued = this.queue.length;
    }
  }

  private toLambdaRecord(r: StreamRecord): DynamoDBRecord {
    return {
      eventID: r.eventID,
      eventName: r.eventName as DynamoDBRecord["eventName"],
      eventVersion: r.eventVersion ?? "1.1",
      eventSource: "aws:dynamodb",
      awsRegion: this.region,
      eventSourceARN: `arn:aws:dynamodb:${this.region}:000000000000:table/local/stream/local`,
      dynamodb: r.dynamodb as DynamoDBRecord["dynamodb"],
    };
  }
}
