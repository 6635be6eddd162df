/**
 * Bucket key templates: literal text with `{{ .Key }}` (the request body's `key`) and
 * `{{ .Request.Header.NAME }}` (a request header, case-insensitive) placeholders.
 *
 * @example
 * const t = parseTemplate("agent-api-key-{{ .Request.Header.X-API-Key }}");
 * renderTemplate(t, { headers: { "x-api-key": "abc" } }); // { ok: true, key: "agent-api-key-abc" }
 */

/** One piece of a parsed template. */
export type TemplatePart =
  | { readonly kind: "text"; readonly text: string }
  | { readonly kind: "key" }
  | { readonly kind: "header"; readonly name: string };

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
    const [whole, expr = ""] = match;
    if (match.index > last) parts.push({ kind: "text", text: source.slice(last, match.index) });
    last = match.index + whole.length;
    if (expr === ".Key") {
      parts.push({ kind: "key" });
    } else if (expr.startsWith(".Request.Header.") && HEADER_NAME.test(expr.slice(16))) {
      parts.push({ kind: "header", name: expr.slice(16).toLowerCase() });
    } else {
      throw new Error(`unknown placeholder "${whole}" (use {{ .Key }} or {{ .Request.Header.NAME }})`);
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
      key += input.key;
    } else {
      const value = input.headers[part.name];
      if (value === undefined || value === "") return { ok: false, missing: part.name };
      key += value;
    }
  }
  return { ok: true, key };
}
