/**
 * Runs the `curl` lines of a document without curl: each line is split as a shell would split
 * it (single and double quotes), its `-X`, `-H`, `-d` and URL become a `fetch`, and a status
 * code in its trailing `# comment` (`# 200`, `# …: 429 …`) becomes what the answer must be.
 */

/** One curl line, parsed (or a `sleep N` line: `sleepMs`). */
export interface CurlCall {
  readonly sleepMs?: number | undefined;
  readonly line: string;
  readonly method: string;
  readonly url: string;
  readonly headers: Record<string, string>;
  readonly body: string | undefined;
  /** The status the line's comment promises, if it names one. */
  readonly expect: number | undefined;
}

function words(text: string): string[] {
  const out: string[] = [];
  let current = "";
  let quote: string | undefined;
  let started = false;
  for (const ch of text) {
    if (quote) {
      if (ch === quote) quote = undefined;
      else current += ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      started = true;
    } else if (ch === " " || ch === "\t") {
      if (started || current) out.push(current);
      current = "";
      started = false;
    } else {
      current += ch;
      started = true;
    }
  }
  if (started || current) out.push(current);
  return out;
}

/** Splits a line at its first `#` outside quotes. */
function splitComment(line: string): [string, string] {
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i] as string;
    if (quote) {
      if (ch === quote) quote = undefined;
    } else if (ch === "'" || ch === '"') quote = ch;
    else if (ch === "#" && (i === 0 || line[i - 1] === " ")) return [line.slice(0, i), line.slice(i + 1)];
  }
  return [line, ""];
}

/** The curl calls in a block of shell text (other lines are ignored). */
export function curlCalls(block: string): CurlCall[] {
  const calls: CurlCall[] = [];
  for (const raw of block.replace(/\\\n\s*/g, " ").split("\n")) {
    const [command, comment] = splitComment(raw.trim());
    const w = words(command.trim());
    if (w[0] === "sleep" && w[1] !== undefined) {
      calls.push({ line: raw.trim(), sleepMs: Number(w[1]) * 1000, method: "", url: "", headers: {}, body: undefined, expect: undefined });
      continue;
    }
    if (w[0] !== "curl") continue;
    let method: string | undefined;
    let url = "";
    let body: string | undefined;
    const headers: Record<string, string> = {};
    for (let i = 1; i < w.length; i++) {
      const a = w[i] as string;
      if (a === "-X") method = w[++i];
      else if (a === "-H") {
        const [name, ...rest] = (w[++i] ?? "").split(":");
        headers[(name ?? "").trim().toLowerCase()] = rest.join(":").trim();
      } else if (a === "-d") body = w[++i];
      else if (a === "-o" || a === "-w")
        i++; // output options with a value
      else if (a.startsWith("-"))
        continue; // -s, -i, -si: output options
      else url = a;
    }
    const status = /\b(200|201|204|400|404|409|429|503)\b/.exec(comment)?.[1];
    calls.push({
      line: raw.trim(),
      method: method ?? (body === undefined ? "GET" : "POST"),
      url,
      headers,
      body,
      expect: status ? Number(status) : undefined,
    });
  }
  return calls;
}

/** The fenced blocks of a Markdown document that follow a heading, by heading text. */
export function blockAfter(markdown: string, heading: string): string {
  const at = markdown.indexOf(heading);
  if (at < 0) throw new Error(`no heading "${heading}"`);
  const open = markdown.indexOf("```", at);
  const start = markdown.indexOf("\n", open) + 1;
  const end = markdown.indexOf("```", start);
  return markdown.slice(start, end);
}
