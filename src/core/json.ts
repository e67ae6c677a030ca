/** Narrowing of untyped JSON, shared by every reader of objects that arrive from outside. */

/** A JSON object (not null, not an array): the shape every Kubernetes object and map has. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
