/**
 * Tails one region's DynamoDB stream in DynamoDB Local and hands every new record, in order,
 * to its subscribers. Each poll continues from the previous poll's `NextShardIterator` (one call
 * per shard), falling back to a fresh `AFTER_SEQUENCE_NUMBER` iterator when it has expired, and
 * re-reads the shard list at most once a second: an idle local system must not keep DynamoDB
 * Local busy.
 */
import {
  type _Record,
  DescribeStreamCommand,
  DynamoDBStreamsClient,
  ExpiredIteratorException,
  GetRecordsCommand,
  type GetRecordsCommandOutput,
  GetShardIteratorCommand,
  ListStreamsCommand,
  TrimmedDataAccessException,
} from "@aws-sdk/client-dynamodb-streams";
import { localCredentials } from "../lambda/adapters/dynamodb/store.js";

/** A stream record as the SDK returns it. */
export type StreamRecord = _Record;

/** Receives the records of one poll, in stream order. */
export type RecordSink = (records: readonly StreamRecord[]) => void | Promise<void>;

/** Tails the stream of `tableName` in `region`. */
export class StreamTailer {
  readonly region: string;
  private readonly client: DynamoDBStreamsClient;
  private readonly tableName: string;
  private readonly sinks: RecordSink[] = [];
  private readonly positions = new Map<string, string | undefined>(); // shard → last sequence number
  private streamArn: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private polling: Promise<void> | undefined;
  /** Records seen so far. */
  seen = 0;
  /** Subscriber failures (each would lose that subscriber's records of one poll). */
  sinkErrors = 0;
  lastError: string | undefined;

  /**
   * @param options.pollMs poll period while records keep arriving (default 100 ms: each GetRecords costs DynamoDB Local as much as a write)
   * @param options.idlePollMs the period an idle stream backs off to, growing ×1.5 per empty poll (default 250 ms)
   */
  constructor(options: { endpoint: string; region: string; tableName: string; pollMs?: number; idlePollMs?: number; namespace?: string }) {
    this.region = options.region;
    this.tableName = options.tableName;
    this.client = new DynamoDBStreamsClient({
      region: options.region,
      endpoint: options.endpoint,
      credentials: localCredentials(options.namespace),
      maxAttempts: 3,
    });
    this.pollMs = options.pollMs ?? 100;
    this.idlePollMs = Math.max(this.pollMs, options.idlePollMs ?? 250);
  }

  private readonly pollMs: number;
  private readonly idlePollMs: number;

  /** Adds a subscriber. */
  subscribe(sink: RecordSink): void {
    this.sinks.push(sink);
  }

  /** Starts from the current end of the stream (older records are not replayed). */
  async start(): Promise<void> {
    this.streamArn = await this.findStream();
    // Skip what is already there: start at the latest records of each shard.
    await this.poll(true);
    this.running = true;
    let period = this.pollMs;
    const loop = async () => {
      if (!this.running) return;
      const before = this.seen;
      this.polling = this.poll(false).catch(() => undefined);
      await this.polling;
      period = this.seen > before ? this.pollMs : Math.min(this.idlePollMs, period * 1.5);
      if (this.running) this.timer = setTimeout(loop, period);
    };
    this.timer = setTimeout(loop, this.pollMs);
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    await this.polling;
    this.client.destroy();
  }

  private async findStream(): Promise<string> {
    const out = await this.client.send(new ListStreamsCommand({ TableName: this.tableName }));
    const arn = out.Streams?.[0]?.StreamArn;
    if (!arn) throw new Error(`table ${this.tableName} in ${this.region} has no stream`);
    return arn;
  }

  private shards: string[] = [];
  /** The next page of each shard, from the previous poll. */
  private readonly iterators = new Map<string, string>();
  /** Closed shards read to their end. */
  private readonly finished = new Set<string>();

  private async freshIterator(shardId: string): Promise<string | undefined> {
    const after = this.positions.get(shardId);
    const it = await this.client.send(
      new GetShardIteratorCommand({
        StreamArn: this.streamArn,
        ShardId: shardId,
        ShardIteratorType: after ? "AFTER_SEQUENCE_NUMBER" : "TRIM_HORIZON",
        SequenceNumber: after,
      }),
    );
    return it.ShardIterator;
  }

  private describedAt = Number.NEGATIVE_INFINITY;

  private async shardIds(): Promise<string[]> {
    if (Date.now() - this.describedAt >= 1000) {
      const desc = await this.client.send(new DescribeStreamCommand({ StreamArn: this.streamArn }));
      this.shards = (desc.StreamDescription?.Shards ?? []).map((s) => s.ShardId as string);
      this.describedAt = Date.now();
    }
    return this.shards;
  }

  private async poll(skipOnly: boolean): Promise<void> {
    for (const shardId of await this.shardIds()) {
      if (this.finished.has(shardId)) continue;
      let iterator = this.iterators.get(shardId) ?? (await this.freshIterator(shardId));
      for (let page = 0; iterator && page < 20; page++) {
        let out: GetRecordsCommandOutput;
        try {
          out = await this.client.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 1000 }));
        } catch (error) {
          if (!(error instanceof ExpiredIteratorException || error instanceof TrimmedDataAccessException)) throw error;
          this.iterators.delete(shardId);
          iterator = await this.freshIterator(shardId);
          continue;
        }
        const records = out.Records ?? [];
        // A closed shard's last page has no next iterator: the shard is read to its end.
        if (out.NextShardIterator) this.iterators.set(shardId, out.NextShardIterator);
        else {
          this.iterators.delete(shardId);
          this.finished.add(shardId);
        }
        if (records.length === 0) break;
        this.positions.set(shardId, records[records.length - 1]?.dynamodb?.SequenceNumber);
        if (!skipOnly) {
          this.seen += records.length;
          for (const sink of this.sinks) {
            try {
              await sink(records);
            } catch (error) {
              this.sinkErrors++;
              this.lastError = String(error);
            }
          }
        }
        iterator = out.NextShardIterator;
      }
      if (!this.positions.has(shardId)) this.positions.set(shardId, undefined);
    }
  }
}
