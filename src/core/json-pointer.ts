/** RFC 6901: `~` and `/` inside a key must be escaped, in that order. */
export function escapePointerSegment(segment: string): string {
  // Most segments need nothing: skip the two replacements for them (this is on every admission's path).
  if (segment.indexOf('~') === -1 && segment.indexOf('/') === -1) return segment;
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}

export function pointer(...segments: (string | number)[]): string {
  return segments.map((s) => `/${escapePointerSegment(String(s))}`).join('');
}
