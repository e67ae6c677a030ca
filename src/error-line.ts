/**
 * Text as one line: runs of control characters (newlines, tabs, escapes) and the blanks around them become one
 * space, and at most `max` characters are kept, an ellipsis marking the cut. Callers that echo what a client sent
 * bound it; messages of our own keep their length.
 */
export function oneLine(text: string, max = Number.POSITIVE_INFINITY): string {
  const line = text.replace(/\s*[\u0000-\u001f\u007f]+\s*/g, ' ').trim();
  return line.length <= max ? line : `${line.slice(0, max - 1)}…`;
}

/** A thrown value as one line of text, for a log field or a one-line message on stderr. */
export function errorLine(err: unknown, max?: number): string {
  return oneLine(err instanceof Error ? err.message : String(err), max);
}
