/**
 * Parsing an admission request body. Errors are values with a one-line reason that never quotes the body: V8's
 * own JSON.parse messages include a snippet of the input, and a pod's env values are not for logs or replies.
 *
 * Prototype poisoning: JSON.parse makes `__proto__` an own property (harmless by itself), but any later
 * `Object.assign` or naive merge would turn it into a prototype. A real pod never has a `__proto__` key or a
 * `constructor` key holding an object with `prototype`, so such bodies are refused (the choice fastify's own JSON
 * parser offers as `onProtoPoisoning`/`onConstructorPoisoning: 'error'`; ours replaces that parser).
 */

export type JsonBody = { ok: true; value: unknown } | { ok: false; reason: string };

// Only bodies that could hide a forbidden key are walked: the key spelled out, or any \u escape. (One regular
// expression scans a 10 KB body about twice as fast as three substring searches.)
const SUSPICIOUS = /__proto__|constructor|\\u/;

export function parseJsonBody(text: string): JsonBody {
  // Not `trim()`: that copies the whole body to find its first character.
  if (!/\S/.test(text)) return { ok: false, reason: 'request body is empty' };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    const position = err instanceof Error ? /at position (\d+)/.exec(err.message)?.[1] : undefined;
    const where = position === undefined ? '' : ` (at byte ${position})`;
    const truncated = err instanceof Error && /end of JSON input|Unterminated/.test(err.message);
    return { ok: false, reason: `request body is not valid JSON${truncated ? ': it ends too early' : where}` };
  }
  if (SUSPICIOUS.test(text)) {
    const key = forbiddenKey(value);
    if (key !== undefined) return { ok: false, reason: `request body contains a forbidden "${key}" key` };
  }
  return { ok: true, value };
}

/** The first `__proto__` key, or `constructor` key holding an object with `prototype`, anywhere in `root`. */
export function forbiddenKey(root: unknown): string | undefined {
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const node = stack.pop();
    if (typeof node !== 'object' || node === null) continue;
    if (Array.isArray(node)) {
      for (const item of node) stack.push(item);
      continue;
    }
    if (Object.hasOwn(node, '__proto__')) return '__proto__';
    const record = node as Record<string, unknown>;
    const ctor = Object.hasOwn(node, 'constructor') ? record.constructor : undefined;
    if (typeof ctor === 'object' && ctor !== null && Object.hasOwn(ctor, 'prototype')) return 'constructor';
    for (const key of Object.keys(record)) stack.push(record[key]);
  }
  return undefined;
}
