/** Loads and validates a rules file (`buckets.yaml`). */
import { readFileSync } from "node:fs";
import { parse, YAMLParseError } from "yaml";
import { ValidationError } from "../core/errors.js";
import { parseRules, type Rule } from "../core/rules.js";

/**
 * Parses rules from YAML text. Errors name the file, the rule and the field.
 * @throws {ValidationError} `config.invalid_rules`
 */
export function rulesFromYaml(text: string, source: string): Rule[] {
  return parseRules(yamlContent(text, source), source);
}

/**
 * The rules file as compact JSON, after validating it: what the CDK hands the functions
 * (`TOKENBANK_RULES_JSON`), so no Lambda bundle carries a YAML parser.
 * @throws {ValidationError} `config.invalid_rules`
 */
export function rulesYamlToJson(text: string, source: string): string {
  const content = yamlContent(text, source);
  parseRules(content, source);
  return JSON.stringify(content ?? { rules: [] });
}

function yamlContent(text: string, source: string): unknown {
  let content: unknown;
  try {
    content = parse(text);
  } catch (error) {
    if (error instanceof YAMLParseError) {
      const line = error.linePos?.[0]?.line;
      throw new ValidationError(
        "config.invalid_rules",
        `${source}${line ? `:${line}` : ""}: not valid YAML: ${error.message.split("\n")[0]}`,
      );
    }
    throw error;
  }
  return content;
}

/** Reads a rules file; a missing file means no rules. */
export function loadRulesFile(path: string): Rule[] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
  return rulesFromYaml(text, path);
}
