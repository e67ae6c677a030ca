/**
 * Bounds on what one request can put in a log line: a 1 MB `uid` (or pod name, or warning quoting a container
 * name) must not make a 1 MB line. Each string is cut at `FIELD_MAX` characters with a marker that says how much
 * was left out; lists keep their first `LIST_MAX` entries.
 */
export const FIELD_MAX = 256;
export const LIST_MAX = 20;

export function clip(text: string, max = FIELD_MAX): string {
  if (text.length <= max) return text;
  return `${text.slice(0, max)}…[${text.length - max} more characters]`;
}

export function clipOptional(text: string | undefined, max = FIELD_MAX): string | undefined {
  return text === undefined ? undefined : clip(text, max);
}

export function clipList(items: readonly string[], max = FIELD_MAX): string[] {
  const kept = items.slice(0, LIST_MAX).map((item) => clip(item, max));
  if (items.length > LIST_MAX) kept.push(`…[${items.length - LIST_MAX} more]`);
  return kept;
}
