/**
 * Bucket key templates: literal text with `{{ .Key }}` (the request body's `key`) and
 * `{{ .Request.Header.NAME }}` (a request header, case-insensitive) placeholders. A placeholder
 * may end in `| sha256`: the value is replaced by the SHA-256 of its UTF-8 bytes, 64 lower-case
 * hex digits, so that a credential (an API key, a token) never becomes a bucket key in the clear.
 *
 * @example
 * const t = parseTemplate("agent-{{ .Request.Header.X-API-Key | sha256 }}");
 * renderTemplate(t, { headers: { "x-api-key": "abc" } });
 * // { ok: true, key: "agent-ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" }
 */
import { sha256Hex } from "./sha256.js";

/** One piece of a parsed template. */
export type TemplatePart =
  | { readonly kind: "text"; readonly text: string }
  | { readonly kind: "key"; readonly hash: boolean }
  | { readonly kind: "header"; readonly name: string; readonly hash: boolean };

/** A parsed template. */
export interface Template {
  readonly source: string;
  readonly parts: readonly TemplatePart[];
  /** Whether the template uses `{{ .Key }}`. */
  readonly usesKey: boolean;
}

/** What a template renders from. Header names must be lower-case. */
export interface TemplateInput {
  readonly key?: string | undefined;
  readonly headers: Readonly<Record<string, string | undefined>>;
}

/** A rendering: the key, or what was missing. */
export type Rendering = { readonly ok: true; readonly key: string } | { readonly ok: false; readonly missing: string };

const PLACEHOLDER = /\{\{\s*([^}]*?)\s*\}\}/g;
const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;

/**
 * Parses a template.
 * @throws {Error} naming the bad placeholder, for the caller to wrap with the rule's name.
 */
export function parseTemplate(source: string): Template {
  const parts: TemplatePart[] = [];
  let last = 0;
  for (const match of source.matchAll(PLACEHOLDER)) {
    const [whole, inner = ""] = match;
    if (match.index > last) parts.push({ kind: "text", text: source.slice(last, match.index) });
    last = match.index + whole.length;
    const [expr = "", ...filters] = inner.split("|").map((x) => x.trim());
    for (const f of filters) if (f !== "sha256") throw new Error(`unknown filter "${f}" in "${whole}" (the one filter is sha256)`);
    if (filters.length > 1) throw new Error(`"${whole}" applies sha256 twice`);
    const hash = filters.length === 1;
    if (expr === ".Key") {
      parts.push({ kind: "key", hash });
    } else if (expr.startsWith(".Request.Header.") && HEADER_NAME.test(expr.slice(16))) {
      parts.push({ kind: "header", name: expr.slice(16).toLowerCase(), hash });
    } else {
      throw new Error(`unknown placeholder "${whole}" (use {{ .Key }} or {{ .Request.Header.NAME }}, optionally | sha256)`);
    }
  }
  const rest = source.slice(last);
  if (rest.includes("{{") || rest.includes("}}")) throw new Error(`unbalanced "{{" or "}}" in "${source}"`);
  if (rest.length > 0) parts.push({ kind: "text", text: rest });
  return { source, parts, usesKey: parts.some((p) => p.kind === "key") };
}

/** Renders a template, or says which input was missing (a header name, or `key`). */
export function renderTemplate(t: Template, input: TemplateInput): Rendering {
  let key = "";
  for (const part of t.parts) {
    if (part.kind === "text") {
      key += part.text;
    } else if (part.kind === "key") {
      if (input.key === undefined) return { ok: false, missing: "key" };
      key += part.hash ? sha256Hex(input.key) : input.key;
    } else {
      const value = input.headers[part.name];
      if (value === undefined || value === "") return { ok: false, missing: part.name };
      key += part.hash ? sha256Hex(value) : value;
    }
  }
  return { ok: true, key };
}
