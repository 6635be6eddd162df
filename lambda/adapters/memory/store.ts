/**
 * An in-memory {@link BucketStore} with the same conditional semantics as the DynamoDB
 * adapter (built on the core's `applyTake`). For unit tests and CPU benchmarks.
 */
import type { Forecast } from "../../core/forecast.js";
import { applyRefund, type RefundPlan } from "../../core/lease.js";
import { type AdjustPlan, applyAdjust, applyTake } from "../../core/slice.js";
import type {
  BucketConfig,
  BucketStore,
  GeometryWriter,
  HistoryEntry,
  IdempotencyRecord,
  Invite,
  ScanPage,
  StoredSlice,
  TakeItem,
  TakeOutcome,
} from "../../ports/bucket-store.js";

/** In-memory store for one region (its own rows, plus peers' rows written by replication). */
export class MemoryBucketStore implements BucketStore {
  readonly region: string;
  private readonly slices = new Map<string, StoredSlice>();
  /** Peers' rows, as replication wrote them into this replica: key → region → row. */
  private readonly replicas = new Map<string, Map<string, StoredSlice>>();
  /** Called after every change to one of this region's own slice rows (replication hooks here). */
  onOwnWrite: ((row: StoredSlice) => void) | undefined;
  private readonly configs = new Map<string, BucketConfig>();
  private readonly counts: Record<string, number> = {};
  private beat: bigint | undefined;

  constructor(region = "local-1") {
    this.region = region;
  }

  private save(row: StoredSlice): void {
    this.slices.set(row.key, row);
    this.onOwnWrite?.(row);
  }

  /** Replication writes a peer's row into this replica. */
  putReplica(row: StoredSlice): void {
    if (row.region === this.region) throw new Error("replication never writes a region's own row");
    const perKey = this.replicas.get(row.key) ?? new Map<string, StoredSlice>();
    perKey.set(row.region, row);
    this.replicas.set(row.key, perKey);
  }

  private count(op: string): void {
    this.counts[op] = (this.counts[op] ?? 0) + 1;
  }

  /** This region's row of `key` as stored, without counting a call (tests). */
  peek(key: string): StoredSlice | undefined {
    return this.slices.get(key);
  }

  async getSlice(key: string): Promise<StoredSlice | undefined> {
    this.count("read");
    return this.slices.get(key);
  }

  async createSlice(slice: StoredSlice): Promise<StoredSlice> {
    this.count("create");
    const existing = this.slices.get(slice.key);
    if (existing) return existing;
    this.save(slice);
    return slice;
  }

  private readonly records = new Map<string, IdempotencyRecord>();

  async getIdempotency(id: string): Promise<IdempotencyRecord | undefined> {
    this.count("idempotency");
    return this.records.get(id);
  }

  async refund(key: string, plan: RefundPlan): Promise<boolean> {
    this.count("refund");
    const row = this.slices.get(key);
    const applied = row ? applyRefund(row, plan) : undefined;
    if (!row || !applied) {
      this.count("failed.refund");
      return false;
    }
    this.save({ ...row, mark: applied.mark, consumed: row.consumed - plan.amount, requested: row.requested - plan.amount });
    return true;
  }

  async putIdempotency(record: IdempotencyRecord): Promise<"ok" | "exists"> {
    this.count("idempotency");
    if (this.records.has(record.id)) return "exists";
    this.records.set(record.id, record);
    return "ok";
  }

  async take(items: readonly TakeItem[], record?: IdempotencyRecord): Promise<TakeOutcome> {
    this.count("take");
    if (record && this.records.has(record.id)) return { ok: false, duplicate: true, actual: items.map(() => undefined) };
    const next: StoredSlice[] = [];
    const actual: (StoredSlice | null | undefined)[] = [];
    let failed = false;
    for (const item of items) {
      const row = this.slices.get(item.key);
      const applied = row && row.frozenUntilUs === undefined ? applyTake(row, item.plan) : undefined;
      if (row && applied) {
        next.push({
          ...row,
          mark: applied.mark,
          consumed: row.consumed + item.plan.amount,
          requested: row.requested + item.plan.amount,
          heartbeatUs: item.nowUs,
        });
        actual.push(undefined);
      } else {
        failed = true;
        actual.push(row ?? null);
      }
    }
    if (failed) {
      this.count("failed.take");
      return { ok: false, actual };
    }
    for (const s of next) this.save(s);
    if (record) this.records.set(record.id, record);
    return { ok: true, slices: next };
  }

  async rewriteSlice(key: string, next: (frozen: StoredSlice) => StoredSlice): Promise<StoredSlice | undefined> {
    this.count("config");
    const row = this.slices.get(key);
    if (!row) return undefined;
    const desired = next({ ...row, version: row.version + 1, writer: "config" });
    // Like the DynamoDB adapter: the geometry changes, the counters stay as they are.
    const written: StoredSlice = {
      ...desired,
      version: row.version + 2,
      frozenUntilUs: undefined,
      consumed: row.consumed,
      requested: row.requested,
      denied: row.denied,
      heartbeatUs: row.heartbeatUs,
      lastDeniedUs: row.lastDeniedUs,
    };
    this.save(written);
    return written;
  }

  async adjustSlice(
    key: string,
    plan: AdjustPlan,
    counters: Pick<StoredSlice, "gives" | "takes" | "evicted">,
    writer: GeometryWriter,
  ): Promise<{ ok: boolean; row: StoredSlice | null }> {
    this.count(writer);
    const row = this.slices.get(key);
    if (!row) return { ok: false, row: null };
    const next = row.frozenUntilUs === undefined ? applyAdjust(row, plan) : undefined;
    if (!next) {
      this.count(`failed.${writer}`);
      return { ok: false, row };
    }
    const written: StoredSlice = { ...row, ...next, gives: counters.gives, takes: counters.takes, evicted: counters.evicted, writer };
    this.save(written);
    return { ok: true, row: written };
  }

  async cancelFreeze(key: string, version: number): Promise<void> {
    this.count("unfreeze");
    const row = this.slices.get(key);
    if (row && row.version === version) this.save({ ...row, version: version + 1, frozenUntilUs: undefined, writer: "unfreeze" });
  }

  async scanAll(): Promise<{ slices: StoredSlice[]; configs: BucketConfig[] }> {
    this.count("scan");
    const slices = [...this.slices.values(), ...[...this.replicas.values()].flatMap((m) => [...m.values()])];
    return { slices, configs: [...this.configs.values()] };
  }

  async scanPage(cursor: string | undefined, limit = Number.POSITIVE_INFINITY): Promise<ScanPage> {
    this.count("scan");
    // Every item by its identity (key, then sort key), as a DynamoDB scan returns a bucket's items
    // together; the cursor is the last item's identity, as DynamoDB's is its last key, so it is
    // stable when items go.
    type Entry = { key: string } & ({ slice: StoredSlice } | { config: BucketConfig } | { forecast: Forecast });
    const id = (i: Entry) =>
      `${i.key}\u0000${"slice" in i ? `slice#${i.slice.region}` : "config" in i ? "config" : `forecast#${i.forecast.region}`}`;
    const items: Entry[] = [
      ...[...this.slices.values(), ...[...this.replicas.values()].flatMap((m) => [...m.values()])].map((slice) => ({
        key: slice.key,
        slice,
      })),
      ...[...this.configs.values()].map((config) => ({ key: config.key, config })),
      ...[...this.predictions.values()].map((forecast) => ({ key: forecast.key, forecast })),
    ];
    items.sort((x, y) => (id(x) < id(y) ? -1 : id(x) > id(y) ? 1 : 0));
    const after = cursor === undefined ? items : items.filter((i) => id(i) > cursor);
    const page = after.slice(0, limit);
    const last = page[page.length - 1];
    const next = after.length > limit && last ? id(last) : undefined;
    return {
      slices: page.flatMap((i) => ("slice" in i ? [i.slice] : [])),
      configs: page.flatMap((i) => ("config" in i ? [i.config] : [])),
      forecasts: page.flatMap((i) => ("forecast" in i ? [i.forecast] : [])),
      cursor: next,
    };
  }

  private readonly bucketCounts = new Map<string, number>();

  async claimBucket(rule: string, max: number): Promise<number | false> {
    this.count("cap");
    const n = this.bucketCounts.get(rule) ?? 0;
    if (n >= max) return false;
    this.bucketCounts.set(rule, n + 1);
    const claim = (this.claims.get(rule) ?? 0) + 1;
    this.claims.set(rule, claim);
    return claim;
  }

  /** Claims ever counted per rule (as the DynamoDB counter's `c`). */
  private readonly claims = new Map<string, number>();

  async bucketClaims(): Promise<Map<string, number>> {
    this.count("cap");
    return new Map(this.claims);
  }

  async setBucketCounts(found: ReadonlyMap<string, number>, claimsAtStart: ReadonlyMap<string, number>): Promise<void> {
    this.count("cap");
    for (const rule of new Set([...found.keys(), ...this.claims.keys()])) {
      this.bucketCounts.set(rule, (found.get(rule) ?? 0) + (this.claims.get(rule) ?? 0) - (claimsAtStart.get(rule) ?? 0));
    }
  }

  private readonly checkpoints = new Map<string, string>();

  async getCheckpoint(job: string): Promise<string | undefined> {
    this.count("checkpoint");
    return this.checkpoints.get(job);
  }

  async putCheckpoint(job: string, cursor: string | undefined): Promise<void> {
    this.count("checkpoint");
    if (cursor === undefined) this.checkpoints.delete(job);
    else this.checkpoints.set(job, cursor);
  }

  async querySlices(key: string): Promise<StoredSlice[]> {
    this.count("query");
    const row = this.slices.get(key);
    return [...(row ? [row] : []), ...(this.replicas.get(key)?.values() ?? [])];
  }

  async recordDenied(key: string, amount: bigint, nowUs: bigint): Promise<void> {
    this.count("denied");
    const row = this.slices.get(key);
    if (row)
      this.save({
        ...row,
        requested: row.requested + amount,
        denied: row.denied + amount,
        heartbeatUs: nowUs,
        lastDeniedUs: nowUs,
      });
  }

  async putHeartbeat(nowUs: bigint): Promise<void> {
    this.count("heartbeat");
    this.beat = nowUs;
  }

  async heartbeats(): Promise<Map<string, bigint>> {
    this.count("heartbeat");
    return this.beat === undefined ? new Map() : new Map([[this.region, this.beat]]);
  }

  async deleteSlice(key: string): Promise<void> {
    this.count("delete");
    this.slices.delete(key);
  }

  async getConfig(key: string): Promise<BucketConfig | undefined> {
    this.count("config");
    return this.configs.get(key);
  }

  async putConfig(config: BucketConfig, expectedVersion: number): Promise<"ok" | "conflict"> {
    this.count("config");
    if ((this.configs.get(config.key)?.version ?? 0) !== expectedVersion) return "conflict";
    this.configs.set(config.key, config);
    return "ok";
  }

  private readonly audit: HistoryEntry[] = [];
  private readonly predictions = new Map<string, Forecast>();

  private readonly invites = new Map<string, Invite>();

  async putInvite(invite: Invite): Promise<void> {
    this.count("invite");
    this.invites.set(`${invite.key}|${invite.receiver}`, { ...invite, giver: this.region });
  }

  async getInvite(key: string, receiver: string): Promise<Invite | undefined> {
    this.count("invite");
    return this.invites.get(`${key}|${receiver}`);
  }

  async putForecast(forecast: Forecast): Promise<void> {
    this.count("forecast");
    this.predictions.set(`${forecast.key}|${forecast.region}`, forecast);
  }

  async forecasts(key: string): Promise<Forecast[]> {
    this.count("forecast");
    return [...this.predictions.values()].filter((f) => f.key === key);
  }

  async appendHistory(entry: HistoryEntry): Promise<void> {
    this.count("history");
    this.audit.push(entry);
  }

  async history(key: string): Promise<HistoryEntry[]> {
    this.count("history");
    return this.audit.filter((e) => e.key === key).sort((a, b) => a.at - b.at || a.version - b.version);
  }

  async deleteConfig(key: string): Promise<void> {
    this.count("config");
    this.configs.delete(key);
  }

  stats(): Record<string, number> {
    return { ...this.counts };
  }
}
