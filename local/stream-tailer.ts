/**
 * Tails one region's DynamoDB stream in DynamoDB Local and hands every new record, in order,
 * to its subscribers. Uses a fresh `AFTER_SEQUENCE_NUMBER` iterator per poll (iterators in
 * DynamoDB Local expire quickly) and re-reads the shard list each poll.
 */
import {
  type _Record,
  DescribeStreamCommand,
  DynamoDBStreamsClient,
  GetRecordsCommand,
  GetShardIteratorCommand,
  ListStreamsCommand,
} from "@aws-sdk/client-dynamodb-streams";

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

  constructor(options: { endpoint: string; region: string; tableName: string; pollMs?: number }) {
    this.region = options.region;
    this.tableName = options.tableName;
    this.client = new DynamoDBStreamsClient({
      region: options.region,
      endpoint: options.endpoint,
      credentials: { accessKeyId: "local", secretAccessKey: "local" },
      maxAttempts: 3,
    });
    this.pollMs = options.pollMs ?? 25;
  }

  private readonly pollMs: number;

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
    const loop = async () => {
      if (!this.running) return;
      this.polling = this.poll(false).catch(() => undefined);
      await this.polling;
      if (this.running) this.timer = setTimeout(loop, this.pollMs);
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

  private async poll(skipOnly: boolean): Promise<void> {
    const desc = await this.client.send(new DescribeStreamCommand({ StreamArn: this.streamArn }));
    for (const shard of desc.StreamDescription?.Shards ?? []) {
      const shardId = shard.ShardId as string;
      const after = this.positions.get(shardId);
      const it = await this.client.send(
        new GetShardIteratorCommand({
          StreamArn: this.streamArn,
          ShardId: shardId,
          ShardIteratorType: after ? "AFTER_SEQUENCE_NUMBER" : "TRIM_HORIZON",
          SequenceNumber: after,
        }),
      );
      let iterator = it.ShardIterator;
      for (let page = 0; iterator && page < 20; page++) {
        const out = await this.client.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 1000 }));
        const records = out.Records ?? [];
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
