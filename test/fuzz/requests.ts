/**
 * Request generators and oracles shared by the HTTP fuzz suites (inject() and real TLS): the kube-apiserver
 * captures, query strings, text-level damage, and what status a body must get.
 */
import fc from 'fast-check';
import { loadFixtures, type Fixture } from '../support/fixtures.js';
import {
  adversarialValue,
  applyMutations,
  hasForbiddenKey,
  insertProtoKey,
  mutationsArbitrary,
  parsedBody,
  protoInsertionArbitrary,
  serialise,
  type SentRequest,
  type Value,
} from './fuzz-support.js';

export const fixtures = loadFixtures();
export const good = fixtures.find((f) => f.file === 'create-pod.json')!;
export const JSON_TYPE = 'application/json';

// ---------------------------------------------------------------------------------------------------------------
// Oracles

const OPTIONAL_STRINGS = ['name', 'namespace', 'subResource', 'requestSubResource'] as const;

function recordOf(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

/**
 * Whether a parsed body is an AdmissionReview request the webhook must answer with 200, per the README (Endpoints) and the
 * envelope rules of src/admission/review.ts: the envelope is checked strictly, `request.object` (and everything
 * else in `request`) is left open.
 */
export function envelopeAccepted(body: unknown): boolean {
  const review = recordOf(body);
  if (review === undefined) return false;
  if (review.apiVersion !== 'admission.k8s.io/v1' && review.apiVersion !== 'admission.k8s.io/v1beta1') return false;
  if (review.kind !== 'AdmissionReview') return false;
  const request = recordOf(review.request);
  if (request === undefined) return false;
  if (typeof request.uid !== 'string' || request.uid === '') return false;
  if (typeof request.operation !== 'string' || request.operation === '') return false;
  for (const field of OPTIONAL_STRINGS) if (request[field] !== undefined && typeof request[field] !== 'string') return false;
  if (request.dryRun !== undefined && typeof request.dryRun !== 'boolean') return false;
  return true;
}

/** What must come back for a body sent as application/json to POST /mutate (within the size limit). */
export function expectedForBody(body: Buffer): { status: 200 } | { status: 400; reason: RegExp } {
  const text = body.toString('utf8');
  if (text.trim() === '') return { status: 400, reason: /empty/ };
  const parsed = parsedBody(body);
  if (!parsed.ok) return { status: 400, reason: /not valid JSON/ };
  if (hasForbiddenKey(parsed.value)) return { status: 400, reason: /forbidden "(__proto__|constructor)" key/ };
  if (!envelopeAccepted(parsed.value)) return { status: 400, reason: /./ };
  return { status: 200 };
}

// ---------------------------------------------------------------------------------------------------------------
// Generators

export const fixtureArbitrary: fc.Arbitrary<Fixture> = fc.constantFrom(...fixtures);

/** What the API server appends, or junk: the route is on the path only. */
export const queryArbitrary: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('?timeout=10s', '?timeout=30s', '', '?', '?timeout=', '?timeout=10s&timeout=5s') },
  { weight: 2, arbitrary: fc.stringMatching(/^[\x21-\x7e]{0,60}$/).map((q) => `?${q}`) },
  {
    weight: 1,
    arbitrary: fc.constantFrom('?__proto__[polluted]=1', '?constructor[prototype][polluted]=1', '?%zz', '?a=%', '?a[]=1&a[]=2', `?${'x'.repeat(8000)}`),
  },
);

export function sentJson(body: Buffer | string, query = '?timeout=10s'): SentRequest {
  return { method: 'POST', path: `/mutate${query}`, contentType: JSON_TYPE, body: Buffer.isBuffer(body) ? body : Buffer.from(body) };
}

export type TextDamage =
  | { kind: 'truncate'; at: number }
  | { kind: 'insert-bytes'; at: number; bytes: Uint8Array }
  | { kind: 'cut'; at: number; length: number }
  | { kind: 'duplicate-key'; pick: number; value: Value }
  | { kind: 'bom' }
  | { kind: 'random-bytes'; bytes: Uint8Array }
  | { kind: 'whitespace'; text: string }
  | { kind: 'escape-key'; pick: number };

export const NON_UTF8: Uint8Array[] = [
  Uint8Array.of(0xff),
  Uint8Array.of(0xfe, 0xff),
  Uint8Array.of(0xc3),
  Uint8Array.of(0xc0, 0xaf),
  Uint8Array.of(0xed, 0xa0, 0x80),
  Uint8Array.of(0xf4, 0x90, 0x80, 0x80),
  Uint8Array.of(0x00),
  Uint8Array.of(0x22),
  Uint8Array.of(0x5c),
  Uint8Array.of(0x7b),
  Uint8Array.of(0x5d),
  Uint8Array.of(0x2c),
];

export const textDamageArbitrary: fc.Arbitrary<TextDamage> = fc.oneof(
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant('insert-bytes' as const),
    at: fc.nat(),
    bytes: fc.oneof(fc.constantFrom(...NON_UTF8), fc.uint8Array({ minLength: 1, maxLength: 8 })),
  }),
  fc.record({ kind: fc.constant('cut' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 64 }) }),
  fc.record({ kind: fc.constant('duplicate-key' as const), pick: fc.nat(), value: adversarialValue() }),
  fc.constant({ kind: 'bom' as const }),
  fc.record({ kind: fc.constant('random-bytes' as const), bytes: fc.uint8Array({ maxLength: 512 }) }),
  fc.record({ kind: fc.constant('whitespace' as const), text: fc.stringMatching(/^[ \t\r\n]{0,20}$/) }),
  fc.record({ kind: fc.constant('escape-key' as const), pick: fc.nat() }),
);

/** Byte offsets of `"key":` in a JSON body (good enough for a fuzzer: a miss just makes invalid JSON). */
function keyPositions(bytes: Buffer): { index: number; key: string }[] {
  // latin1 maps bytes 1:1 to characters, so match indices are byte offsets even after non-UTF-8 damage.
  return [...bytes.toString('latin1').matchAll(/"([A-Za-z_][A-Za-z0-9_]*)":/g)].map((m) => ({ index: m.index, key: m[1]! }));
}

function splice(bytes: Buffer, at: number, remove: number, insert: Buffer | string = Buffer.alloc(0)): Buffer {
  return Buffer.concat([bytes.subarray(0, at), Buffer.from(insert), bytes.subarray(at + remove)]);
}

export function damage(bytes: Buffer, change: TextDamage): Buffer {
  switch (change.kind) {
    case 'truncate':
      return bytes.subarray(0, change.at % (bytes.length + 1));
    case 'insert-bytes':
      return splice(bytes, change.at % (bytes.length + 1), 0, Buffer.from(change.bytes));
    case 'cut':
      return splice(bytes, change.at % (bytes.length + 1), change.length);
    case 'duplicate-key': {
      const keys = keyPositions(bytes);
      const target = keys[change.pick % Math.max(1, keys.length)];
      if (target === undefined) return bytes;
      // The duplicate comes first: JSON.parse keeps the last, so both "the first wins" and "the last wins" bugs show.
      return splice(bytes, target.index, 0, `"${target.key}":${serialise(change.value)},`);
    }
    case 'bom':
      return Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), bytes]);
    case 'random-bytes':
      return Buffer.from(change.bytes);
    case 'whitespace':
      return Buffer.from(change.text);
    case 'escape-key': {
      // `"kind"` → `"\u006bind"`: the same key to JSON.parse, a different text to anything that greps.
      const keys = keyPositions(bytes);
      const target = keys[change.pick % Math.max(1, keys.length)];
      if (target === undefined) return bytes;
      const escaped = `\\u${target.key.charCodeAt(0).toString(16).padStart(4, '0')}`;
      return splice(bytes, target.index + 1, 1, escaped);
    }
  }
}

const METHODS = ['POST', 'GET', 'HEAD', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'] as const;

/**
 * One request of any kind the suites generate, with a printable content-type, method and path (what a real
 * client can put on the wire): for the real-TLS suite, where volume is lower.
 */
export function anyRequestArbitrary(): fc.Arbitrary<SentRequest> {
  const mutatedBody = (within: string[]): fc.Arbitrary<Buffer> =>
    fc
      .tuple(fixtureArbitrary, mutationsArbitrary())
      .map(([fixture, mutations]) => Buffer.from(serialise(applyMutations(JSON.parse(fixture.text) as Value, mutations, within))));
  const damagedBody = fc
    .tuple(fixtureArbitrary, fc.array(textDamageArbitrary, { minLength: 1, maxLength: 3 }))
    .map(([fixture, changes]) => changes.reduce<Buffer>((body, change) => damage(body, change), Buffer.from(fixture.text)));
  const protoBody = fc
    .tuple(fixtureArbitrary, fc.array(protoInsertionArbitrary(), { minLength: 1, maxLength: 2 }))
    .map(([fixture, insertions]) =>
      Buffer.from(serialise(insertions.reduce<Value>((root, insertion) => insertProtoKey(root, insertion), JSON.parse(fixture.text) as Value))),
    );
  const body = fc.oneof(
    { weight: 3, arbitrary: mutatedBody(['request', 'object']) },
    { weight: 3, arbitrary: mutatedBody([]) },
    { weight: 3, arbitrary: damagedBody },
    { weight: 1, arbitrary: protoBody },
    { weight: 1, arbitrary: fc.constant(Buffer.from(good.text)) },
  );
  const contentType = fc.oneof(
    { weight: 12, arbitrary: fc.constant<string | undefined>(JSON_TYPE) },
    { weight: 1, arbitrary: fc.constantFrom<string | undefined>(undefined, 'text/plain', 'application/json; charset=utf-8', 'APPLICATION/JSON', '') },
    { weight: 1, arbitrary: fc.stringMatching(/^[\x21-\x7e][\x20-\x7e]{0,30}$/) },
  );
  const method = fc.oneof({ weight: 12, arbitrary: fc.constant('POST') }, { weight: 1, arbitrary: fc.constantFrom(...METHODS) });
  const path = fc.oneof(
    { weight: 12, arbitrary: fc.constant('/mutate') },
    { weight: 1, arbitrary: fc.constantFrom('/healthz', '/readyz', '/', '/\\', '//mutate', '/mutat%65', '/mutate%00', '/%', '/../mutate') },
    { weight: 1, arbitrary: fc.stringMatching(/^\/[\x21-\x7e]{0,30}$/).filter((p) => !/[?#]/.test(p)) },
  );
  return fc.record({ body, contentType, method, path, query: queryArbitrary }).map(
    (r): SentRequest => ({ method: r.method, path: `${r.path}${r.query}`, contentType: r.contentType, body: r.body }),
  );
}
