/**
 * A Global Tables emulator between regions' tables in one DynamoDB Local: tails each region's
 * stream and applies each new image (or delete) to the other regions after a configurable lag
 * (with jitter), in order per link, last-writer-wins for configs, with partitions on demand.
 *
 * Replicated writes are tagged `_rep` (source region) so they are never replicated again.
 */

import type { AttributeValue } from "@aws-sdk/client-dynamodb";
import { ConditionalCheckFailedException, DeleteItemCommand, type DynamoDBClient, PutItemCommand } from "@aws-sdk/client-dynamodb";
import { CONFIG_SK } from "../lambda/adapters/dynamodb/items.js";
import type { StreamRecord, StreamTailer } from "./stream-tailer.js";

type Item = Record<string, AttributeValue>;

interface Pending {
  readonly dueMs: number;
  readonly enqueuedMs: number;
  readonly id: string;
  put?: Item | undefined;
  del?: Item | undefined; // key
}

/** One direction of replication between two regions. */
interface Link {
  readonly from: string;
  readonly to: string;
  readonly queue: Pending[];
  /** Undelivered entries by item: a newer image replaces an older one (Global Tables ships item state). */
  readonly byItem: Map<string, Pending>;
  applied: number;
  coalesced: number;
  lastDelayMs: number;
  lastDue: number;
}

/** Link statistics for `GET /replication`. */
export interface LinkStats {
  readonly from: string;
  readonly to: string;
  readonly queued: number;
  readonly applied: number;
  /** Images superseded by a newer image of the same item before delivery. */
  readonly coalesced: number;
  readonly lastDelayMs: number;
  readonly oldestQueuedMs: number;
  readonly cut: boolean;
}

/** A stream attribute value as a clean `AttributeValue` (exactly one member set), recursively. */
export function cleanValue(value: Record<string, unknown>): AttributeValue {
  for (const [type, v] of Object.entries(value)) {
    if (v === undefined || v === null) continue;
    if (type === "M") return { M: cleanItem(v as Record<string, Record<string, unknown>>) };
    if (type === "L") return { L: (v as Record<string, unknown>[]).map(cleanValue) };
    return { [type]: v } as unknown as AttributeValue;
  }
  // The Streams SDK decodes an empty map ({"M": {}}) as {}: the only memberless value we write.
  return { M: {} };
}

/** A stream image as a clean item. */
export function cleanItem(image: Record<string, Record<string, unknown>>): Item {
  return Object.fromEntries(Object.entries(image).map(([name, v]) => [name, cleanValue(v)]));
}

/** The emulator. */
export class GlobalTablesEmulator {
  private readonly links: Link[] = [];
  private readonly clients: Map<string, DynamoDBClient>;
  private readonly tableName: string;
  private readonly cut = new Set<string>();
  private lagMs: number;
  private readonly jitter: number;
  private timer: NodeJS.Timeout | undefined;
  private delivering = false;
  private running = false;
  /** The last delivery error (the record stays queued and is retried). */
  lastError: string | undefined;

  constructor(options: {
    tableName: string;
    clients: Map<string, DynamoDBClient>;
    tailers: readonly StreamTailer[];
    lagMs: number;
    jitter?: number;
  }) {
    this.tableName = options.tableName;
    this.clients = options.clients;
    this.lagMs = options.lagMs;
    this.jitter = options.jitter ?? 0.2;
    const regions = [...options.clients.keys()];
    for (const from of regions)
      for (const to of regions)
        if (from !== to) this.links.push({ from, to, queue: [], byItem: new Map(), applied: 0, coalesced: 0, lastDelayMs: 0, lastDue: 0 });
    for (const tailer of options.tailers) tailer.subscribe((records) => this.enqueue(tailer.region, records));
  }

  /** Current lag, ms. */
  get lag(): number {
    return this.lagMs;
  }

  setLag(ms: number): void {
    this.lagMs = ms;
  }

  /** Cuts a region off: nothing replicates in or out until {@link heal}. */
  partition(region: string): void {
    this.cut.add(region);
  }

  heal(): void {
    this.cut.clear();
  }

  isCut(region: string): boolean {
    return this.cut.has(region);
  }

  partitioned(): string[] {
    return [...this.cut];
  }

  start(): void {
    this.running = true;
    const tick = async () => {
      await this.deliver();
      // A stop during the delivery must not be undone by re-arming the timer.
      if (this.running) this.timer = setTimeout(tick, 10);
    };
    this.timer = setTimeout(tick, 10);
  }

  /** Stops delivering (what is queued stays queued) and waits for a delivery in progress. */
  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    while (this.delivering) await new Promise((r) => setTimeout(r, 5));
  }

  stats(): LinkStats[] {
    const now = Date.now();
    return this.links.map((l) => ({
      from: l.from,
      to: l.to,
      queued: l.queue.length,
      applied: l.applied,
      coalesced: l.coalesced,
      lastDelayMs: l.lastDelayMs,
      oldestQueuedMs: l.queue[0] ? now - l.queue[0].enqueuedMs : 0,
      cut: this.cut.has(l.from) || this.cut.has(l.to),
    }));
  }

  private enqueue(region: string, records: readonly StreamRecord[]): void {
    const now = Date.now();
    for (const record of records) {
      const raw = record.dynamodb?.NewImage as unknown as Record<string, Record<string, unknown>> | undefined;
      const image = raw ? cleanItem(raw) : undefined;
      const old = record.dynamodb?.OldImage as unknown as Item | undefined;
      // Only writes that originated in this region replicate (no echo).
      if (image ? image._rep !== undefined : old?._rep !== undefined && this.replicatedDelete(region, record)) continue;
      const keys = cleanItem(record.dynamodb?.Keys as unknown as Record<string, Record<string, unknown>>);
      const id = `${keys.pk?.S}|${keys.sk?.S}`;
      for (const link of this.links) {
        if (link.from !== region) continue;
        const waiting = link.byItem.get(id);
        if (waiting) {
          // Still undelivered: ship the newer state in its place (in order, never later).
          waiting.put = image ? { ...image, _rep: { S: region } } : undefined;
          waiting.del = image ? undefined : keys;
          link.coalesced++;
          continue;
        }
        const delay = this.lagMs * (1 + this.jitter * (2 * Math.random() - 1));
        // In order per link: never due before the previous record.
        const due = Math.max(link.lastDue, now + delay);
        link.lastDue = due;
        const entry: Pending = image
          ? { dueMs: due, enqueuedMs: now, id, put: { ...image, _rep: { S: region } } }
          : { dueMs: due, enqueuedMs: now, id, del: keys };
        link.queue.push(entry);
        link.byItem.set(id, entry);
      }
    }
  }

  /** Deletes we applied ourselves, per region, so their stream records are not replicated back. */
  private readonly ourDeletes = new Map<string, number>();

  private replicatedDelete(region: string, record: StreamRecord): boolean {
    const keys = record.dynamodb?.Keys as Item;
    const id = `${region}|${keys.pk?.S}|${keys.sk?.S}`;
    const count = this.ourDeletes.get(id) ?? 0;
    if (count === 0) return false;
    if (count === 1) this.ourDeletes.delete(id);
    else this.ourDeletes.set(id, count - 1);
    return true;
  }

  private async deliver(): Promise<void> {
    if (this.delivering) return;
    this.delivering = true;
    try {
      const now = Date.now();
      // Round-robin over the links, a few records each, so a busy link cannot starve the others.
      let progress = true;
      while (progress) {
        progress = false;
        for (const link of this.links) {
          if (this.cut.has(link.from) || this.cut.has(link.to)) continue;
          for (let n = 0; n < 8 && link.queue.length > 0 && (link.queue[0] as Pending).dueMs <= now; n++) {
            const p = link.queue[0] as Pending;
            link.byItem.delete(p.id);
            await this.apply(link.to, p);
            link.queue.shift();
            link.applied++;
            link.lastDelayMs = now - p.enqueuedMs;
            progress = true;
          }
        }
      }
    } catch (error) {
      // DynamoDB Local hiccup: the record stays queued and is retried on the next tick.
      this.lastError = String(error);
    } finally {
      this.delivering = false;
    }
  }

  private async apply(to: string, p: Pending): Promise<void> {
    const client = this.clients.get(to) as DynamoDBClient;
    if (p.put) {
      const isConfig = p.put.sk?.S === CONFIG_SK;
      try {
        await client.send(
          new PutItemCommand({
            TableName: this.tableName,
            Item: p.put,
            // Configs have many writers: last writer wins on (updatedAt, origin). Slice rows have one writer, in order.
            ...(isConfig
              ? {
                  ConditionExpression: "attribute_not_exists(pk) OR #at < :at OR (#at = :at AND #org <= :org)",
                  ExpressionAttributeNames: { "#at": "at", "#org": "org" },
                  ExpressionAttributeValues: { ":at": p.put.at as AttributeValue, ":org": p.put.org ?? { S: "" } },
                }
              : {}),
          }),
        );
      } catch (error) {
        if (!(error instanceof ConditionalCheckFailedException)) throw error;
      }
    } else if (p.del) {
      const id = `${to}|${p.del.pk?.S}|${p.del.sk?.S}`;
      this.ourDeletes.set(id, (this.ourDeletes.get(id) ?? 0) + 1);
      await client.send(
        new DeleteItemCommand({ TableName: this.tableName, Key: { pk: p.del.pk as AttributeValue, sk: p.del.sk as AttributeValue } }),
      );
    }
  }
}
