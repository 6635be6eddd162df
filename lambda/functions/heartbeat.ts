/** Scheduled entry point: writes this region's heartbeat (peers use it to detect a silent region). */
import { readEnv, storeFor } from "../adapters/env.js";
import { systemClock } from "../adapters/system-clock.js";

const env = readEnv();
const store = storeFor(env);

export const handler = async (): Promise<{ region: string; at: string }> => {
  const now = systemClock.nowUs();
  await store.putHeartbeat(now);
  return { region: env.region, at: new Date(Number(now / 1000n)).toISOString() };
};
