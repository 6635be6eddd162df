/** Paced load against local regions, recording what was admitted. */

/** One admitted request, as the client saw it. */
export interface Admitted {
  readonly region: number;
  readonly atMs: number;
}

/** Sends `perSecond` requests per second to each URL (one paced loop each) until `stop()` resolves true. */
export async function pacedLoad(
  urls: readonly string[],
  body: unknown,
  perSecond: number,
  durationMs: number,
  onResult?: (region: number, status: number) => void,
): Promise<{ admitted: Admitted[]; sent: number; startMs: number; endMs: number }> {
  const admitted: Admitted[] = [];
  let sent = 0;
  const startMs = Date.now();
  const interval = 1000 / perSecond;
  await Promise.all(
    urls.map(async (url, region) => {
      for (let i = 0; ; i++) {
        const due = startMs + i * interval;
        if (due - startMs >= durationMs) break;
        const wait = due - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        sent++;
        const res = await fetch(`${url}/rate`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(body),
        });
        await res.arrayBuffer();
        onResult?.(region, res.status);
        if (res.status === 200) admitted.push({ region, atMs: Date.now() });
      }
    }),
  );
  return { admitted, sent, startMs, endMs: Date.now() };
}
