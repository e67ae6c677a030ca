/**
 * Shared by the fuzz suites: the case budget, JSON trees with markers for what JSON.stringify cannot build (100k-deep
 * nesting), sub-tree mutations at random paths, adversarial values, and the contract every HTTP answer must meet.
 *
 * Budget: `FUZZ_RUNS` is the total number of generated cases across the suite (default 4000, CI-sized;
 * `make fuzz` sets 100000); each property takes a share. `FUZZ_SEED` replays a run.
 */
import fastJsonPatch from 'fast-json-patch';
import type { Operation } from 'fast-json-patch';
import fc from 'fast-check';
import { expect } from 'vitest';

// ---------------------------------------------------------------------------------------------------------------
// Budget

function positiveInteger(text: string | undefined, fallback: number): number {
  const value = Number(text);
  return text !== undefined && Number.isInteger(value) && value > 0 ? value : fallback;
}

export const FUZZ_RUNS = positiveInteger(process.env.FUZZ_RUNS, 4000);
const FUZZ_SEED = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);

/** This property's number of cases: a fraction of the total, at least `min`. */
export function share(fraction: number, min: number): number {
  return Math.max(min, Math.round(FUZZ_RUNS * fraction));
}

/** A per-test timeout for `runs` cases of about `msPerCase` each (generous: the box is shared), at least 30 s. */
export function timeoutFor(runs: number, msPerCase: number): number {
  return Math.max(30_000, 20_000 + runs * msPerCase * 4);
}

export function fcParameters(runs: number): fc.Parameters<unknown> {
  return { numRuns: runs, ...(FUZZ_SEED === undefined || !Number.isFinite(FUZZ_SEED) ? {} : { seed: FUZZ_SEED }) };
}

/** Counts per property, printed once per file: the figures of a long `make fuzz` run. */
export class Tally {
  private readonly counts = new Map<string, Map<string, number>>();
  private readonly started = new Map<string, number>();
  private readonly durations = new Map<string, number>();
  private readonly notes = new Map<string, string[]>();

  /** A remark printed after the property's counts (not a case). */
  note(property: string, text: string): void {
    this.notes.set(property, [...(this.notes.get(property) ?? []), text]);
  }

  add(property: string, outcome: string): void {
    let counts = this.counts.get(property);
    if (counts === undefined) {
      counts = new Map();
      this.counts.set(property, counts);
      this.started.set(property, performance.now());
    }
    counts.set(outcome, (counts.get(outcome) ?? 0) + 1);
    this.durations.set(property, performance.now() - (this.started.get(property) ?? performance.now()));
  }

  report(file: string): string {
    const lines = [`fuzz ${file} (FUZZ_RUNS=${FUZZ_RUNS}${FUZZ_SEED === undefined ? '' : `, FUZZ_SEED=${FUZZ_SEED}`})`];
    for (const [property, counts] of this.counts) {
      const total = [...counts.values()].reduce((a, b) => a + b, 0);
      const parts = [...counts].sort((a, b) => b[1] - a[1]).map(([outcome, n]) => `${outcome}=${n}`);
      const seconds = ((this.durations.get(property) ?? 0) / 1000).toFixed(1);
      const notes = this.notes.get(property) ?? [];
      lines.push(`  ${property}: ${total} cases in ${seconds} s — ${parts.join(' ')}${notes.length > 0 ? `; ${notes.join('; ')}` : ''}`);
    }
    return lines.join('\n');
  }
}

// ---------------------------------------------------------------------------------------------------------------
// JSON trees with markers

/** Stands for nesting too deep for JSON.stringify (it overflows near 5000 levels): spliced in as text. */
export class Deep {
  constructor(
    readonly depth: number,
    readonly shape: 'array' | 'object',
  ) {}

  text(): string {
    return this.shape === 'array'
      ? `${'['.repeat(this.depth)}${']'.repeat(this.depth)}`
      : `${'{"a":'.repeat(this.depth)}{}${'}'.repeat(this.depth)}`;
  }
}

export type Value = null | boolean | number | string | Deep | Value[] | { [key: string]: Value };
export type Segment = string | number;
type Container = Value[] | { [key: string]: Value };

function isContainer(value: unknown): value is Container {
  return typeof value === 'object' && value !== null && !(value instanceof Deep);
}

/** Sets an own property even for `__proto__` (a plain assignment would change the prototype instead). */
export function setOwn(target: { [key: string]: Value }, key: string, value: Value): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/** A fresh copy (values from `fc.constant*` are shared between runs and must not be mutated). Small values only. */
export function copyValue(value: Value): Value {
  if (!isContainer(value)) return value;
  if (Array.isArray(value)) return value.map(copyValue);
  const out: { [key: string]: Value } = {};
  for (const key of Object.keys(value)) setOwn(out, key, copyValue(value[key] ?? null));
  return out;
}

/** JSON text of a tree; each Deep marker becomes its nested text. */
export function serialise(value: Value): string {
  const deep: Deep[] = [];
  const text = JSON.stringify(value, (_key, v: unknown) => {
    if (v instanceof Deep) {
      deep.push(v);
      return `@@fuzz-deep-${deep.length - 1}@@`;
    }
    return v;
  });
  if (deep.length === 0) return text;
  return text.replace(/"@@fuzz-deep-(\d+)@@"/g, (_match, index: string) => deep[Number(index)]?.text() ?? 'null');
}

/** Every path to a node (the root is `[]`), depth first; Deep markers are leaves. */
export function allPaths(root: Value): Segment[][] {
  const out: Segment[][] = [];
  const stack: { node: Value; path: Segment[] }[] = [{ node: root, path: [] }];
  while (stack.length > 0) {
    const { node, path } = stack.pop()!;
    out.push(path);
    if (!isContainer(node)) continue;
    if (Array.isArray(node)) node.forEach((child, i) => stack.push({ node: child, path: [...path, i] }));
    else for (const key of Object.keys(node)) stack.push({ node: node[key] ?? null, path: [...path, key] });
  }
  return out;
}

export function getAt(root: Value, path: readonly Segment[]): Value | undefined {
  let node: Value | undefined = root;
  for (const segment of path) {
    if (!isContainer(node)) return undefined;
    if (Array.isArray(node)) node = typeof segment === 'number' ? node[segment] : undefined;
    else node = typeof segment === 'string' && Object.hasOwn(node, segment) ? node[segment] : undefined;
  }
  return node;
}

/** Replaces the node at `path`; returns the (possibly new) root. */
export function setAt(root: Value, path: readonly Segment[], value: Value): Value {
  if (path.length === 0) return value;
  const parent = getAt(root, path.slice(0, -1));
  const last = path[path.length - 1]!;
  if (Array.isArray(parent) && typeof last === 'number') parent[last] = value;
  else if (isContainer(parent) && !Array.isArray(parent) && typeof last === 'string') setOwn(parent, last, value);
  return root;
}

export function removeAt(root: Value, path: readonly Segment[]): void {
  if (path.length === 0) return;
  const parent = getAt(root, path.slice(0, -1));
  const last = path[path.length - 1]!;
  if (Array.isArray(parent) && typeof last === 'number') parent.splice(last, 1);
  else if (isContainer(parent) && !Array.isArray(parent) && typeof last === 'string') delete parent[last];
}

export interface Mutation {
  kind: 'replace' | 'remove' | 'insert';
  /** Which node, modulo the number of nodes under the mutated sub-tree. */
  pick: number;
  /** For `insert` into an object. */
  key: string;
  value: Value;
}

/** Applies one mutation somewhere under `within`; returns the new root and the path it touched. */
export function mutate(root: Value, mutation: Mutation, within: readonly Segment[] = []): { root: Value; path: Segment[] } {
  const base = getAt(root, within);
  if (base === undefined) return { root, path: [...within] };
  const paths = allPaths(base).map((p) => [...within, ...p]);
  const path = paths[mutation.pick % paths.length]!;
  const value = copyValue(mutation.value);
  switch (mutation.kind) {
    case 'replace':
      return { root: setAt(root, path, value), path };
    case 'remove':
      // Removing the sub-tree root itself would leave nothing to fuzz: replace it with null instead.
      if (path.length <= within.length) return { root: setAt(root, path, null), path };
      removeAt(root, path);
      return { root, path };
    case 'insert': {
      const node = getAt(root, path);
      if (Array.isArray(node)) node.push(value);
      else if (isContainer(node)) setOwn(node, mutation.key, value);
      else {
        const wrapper: { [key: string]: Value } = {};
        setOwn(wrapper, mutation.key, value);
        return { root: setAt(root, path, wrapper), path };
      }
      return { root, path };
    }
  }
}

export function applyMutations(root: Value, mutations: readonly Mutation[], within: readonly Segment[] = []): Value {
  let current = root;
  for (const mutation of mutations) current = mutate(current, mutation, within).root;
  return current;
}

// ---------------------------------------------------------------------------------------------------------------
// Adversarial values

export const STATUS_ANNOTATION_KEY = 'sidecar-injector.io/status';

/** Keys worth inserting: pod and envelope fields (so types are wrong where they are read), overrides, proto keys. */
export const INTERESTING_KEYS = [
  'metadata', 'spec', 'containers', 'initContainers', 'ephemeralContainers', 'volumes', 'volumeMounts', 'mountPath',
  'name', 'image', 'annotations', 'labels', 'namespace', 'generateName', 'securityContext', 'capabilities', 'add',
  'os', 'restartPolicy', 'hostPID', 'shareProcessNamespace', 'resources', 'requests', 'limits', 'emptyDir',
  'runAsNonRoot', 'runAsUser', 'uid', 'operation', 'object', 'request', 'apiVersion', 'kind', 'dryRun', 'subResource',
  STATUS_ANNOTATION_KEY, 'sidecar-injector.io/image', 'sidecar-injector.io/app-mount-path',
  'sidecar-injector.io/native-sidecar', 'sidecar-injector.io/share-process-namespace', 'sidecar-injector.io/cpu',
  'sidecar-injector.io/memory', 'kubectl.kubernetes.io/default-container', 'sidecar-injection', 'shared-data',
  'sidecar', '', 'a/b~c', '~1', 'toString', 'valueOf', 'hasOwnProperty', 'length', '0', '-',
] as const;

export const PROTO_KEYS = ['__proto__', 'constructor', 'prototype'] as const;

/** Strings that break naive code: control characters, lone surrogates, separators, pointer escapes, paths. */
export const NASTY_STRINGS = [
  '', ' ', '\u0000', '\n', '\r\n', '\u2028', '\ud800', '\udfff', '\ufeff', '~', '~0', '~1', '/', '//', '/-', '-',
  '..', '/pod-data', '/pod-data/', '/app', '/', 'sidecar', 'shared-data', 'app', 'CREATE', 'windows', 'Never',
  'OnFailure', 'Always', 'true', 'false', '0', '-1', 'NaN', '1e309', '100m', '64Mi', 'busybox', 'busybox:1.36.1',
  'nginx@sha256:' + 'a'.repeat(64), 'enabled', 'disabled', 'restricted', 'baseline', 'privileged', '__proto__',
  'constructor', '{"version":1}', '%s%s%n', '${jndi:ldap://x}', "'; DROP TABLE pods; --", 'é', '😀', '\u202e',
] as const;

const CONSTANT_VALUES: Value[] = [
  null, true, false, 0, -0, 1, -1, 1.5, 2 ** 53, -(2 ** 63), 1e308, -1e-308, '', 'x', [], {}, [null], [[]], [{}],
  { name: null }, { name: 'sidecar' }, { name: 'app' }, { name: '' }, { name: 5 }, { name: 'app', volumeMounts: null },
  { name: 'app', volumeMounts: [{ name: 'x', mountPath: null }] }, { name: 'app', volumeMounts: [{ name: 'x' }] },
  { name: 'shared-data' }, { name: 'shared-data', emptyDir: null }, { 'sidecar-injection': 'enabled' },
];

export function nastyString(): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...NASTY_STRINGS) },
    { weight: 2, arbitrary: fc.string({ maxLength: 20 }) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 12 }) },
    { weight: 1, arbitrary: fc.nat({ max: 100_000 }).map((n) => 'x'.repeat(n)) },
  );
}

/** A valid status annotation (what an injected pod carries): makes the reinvocation path reachable. */
export function statusAnnotationText(): fc.Arbitrary<string> {
  return fc
    .record({
      mode: fc.constantFrom('classic', 'native'),
      sidecar: fc.constantFrom('sidecar', 'app', ''),
      mounted: fc.array(fc.constantFrom('app', 'web', 'sidecar', ''), { maxLength: 3 }),
      skipped: fc.array(fc.record({ container: fc.constantFrom('app', 'web'), reason: fc.string({ maxLength: 8 }) }), { maxLength: 2 }),
      mountPath: fc.constantFrom('/pod-data', '/app', '/', ''),
      level: fc.constantFrom('privileged', 'baseline', 'restricted'),
      created: fc.boolean(),
    })
    .map((s) =>
      JSON.stringify({
        version: 1,
        mode: s.mode,
        sidecar: s.sidecar,
        image: 'busybox:1.37.0',
        volume: { name: 'shared-data', created: s.created },
        mounted: s.mounted,
        skipped: s.skipped,
        mountPath: s.mountPath,
        shareProcessNamespace: true,
        defaultContainer: true,
        podSecurityLevel: s.level,
        reduced: [],
      }),
    );
}

/** Containers with a name (so a pod stays a pod) and random fields of the wrong shape. */
function containerLike(leaf: fc.Arbitrary<Value>): fc.Arbitrary<Value> {
  return fc.record(
    {
      name: fc.oneof(fc.constantFrom('app', 'web', 'sidecar', 'shared-data', ''), fc.string({ maxLength: 8 })),
      image: leaf,
      volumeMounts: fc.oneof(
        leaf,
        fc.array(fc.record({ name: fc.oneof(fc.constantFrom('shared-data', 'x'), leaf), mountPath: fc.oneof(fc.constantFrom('/pod-data', '/pod-data/', '/app'), leaf) }, { requiredKeys: [] }), { maxLength: 3 }),
      ),
      securityContext: leaf,
      restartPolicy: fc.oneof(fc.constant('Always'), leaf),
    },
    { requiredKeys: ['name'] },
  );
}

export interface ValueOptions {
  /** Deep markers (100k levels) and 1 MiB strings: off where a suite needs JSON.stringify on its inputs. */
  huge?: boolean;
}

/** Any JSON value, biased towards wrong types, nasty strings and pod-shaped pieces; optionally huge or deep. */
export function adversarialValue(options: ValueOptions = {}): fc.Arbitrary<Value> {
  const leaf: fc.Arbitrary<Value> = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...CONSTANT_VALUES) },
    { weight: 2, arbitrary: nastyString() },
    { weight: 1, arbitrary: fc.double().map((d) => (Number.isFinite(d) ? d : 0)) },
  );
  const arbitraries: fc.WeightedArbitrary<Value>[] = [
    { weight: 6, arbitrary: leaf },
    { weight: 3, arbitrary: fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<Value> },
    { weight: 2, arbitrary: containerLike(leaf) },
    { weight: 1, arbitrary: fc.array(containerLike(leaf), { maxLength: 3 }) },
    { weight: 1, arbitrary: fc.dictionary(fc.constantFrom(...INTERESTING_KEYS), leaf, { maxKeys: 4 }) },
    { weight: 1, arbitrary: statusAnnotationText() },
  ];
  if (options.huge === true) {
    arbitraries.push(
      { weight: 1, arbitrary: fc.constantFrom(1_000, 10_000, 100_000).chain((d) => fc.constantFrom(new Deep(d, 'array'), new Deep(d, 'object'))) },
      { weight: 1, arbitrary: fc.constantFrom(64 * 1024, 1024 * 1024).map((n) => 'y'.repeat(n)) },
    );
  }
  return fc.oneof(...arbitraries);
}

export function mutationArbitrary(options: ValueOptions = {}): fc.Arbitrary<Mutation> {
  return fc.record({
    kind: fc.constantFrom('replace', 'replace', 'remove', 'insert'),
    pick: fc.nat(),
    key: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...INTERESTING_KEYS) }, { weight: 1, arbitrary: fc.string({ maxLength: 10 }) }),
    value: adversarialValue(options),
  });
}

export function mutationsArbitrary(options: ValueOptions = {}, maxLength = 4): fc.Arbitrary<Mutation[]> {
  return fc.array(mutationArbitrary(options), { minLength: 1, maxLength });
}

/** Inserts `__proto__`, `constructor` or `prototype` at a random node, with a value that would pollute. */
export interface ProtoInsertion {
  key: (typeof PROTO_KEYS)[number];
  pick: number;
  value: Value;
}

export function protoInsertionArbitrary(): fc.Arbitrary<ProtoInsertion> {
  const polluting: fc.Arbitrary<Value> = fc.oneof(
    fc.constant<Value>({ polluted: true }),
    fc.constant<Value>({ prototype: { polluted: true } }),
    fc.constant<Value>({ prototype: null }),
    fc.constant<Value>({ toString: 'polluted', polluted: 'yes' }),
    fc.constant<Value>('polluted'),
    fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<Value>,
  );
  return fc.record({ key: fc.constantFrom(...PROTO_KEYS), pick: fc.nat(), value: polluting });
}

export function insertProtoKey(root: Value, insertion: ProtoInsertion, within: readonly Segment[] = []): Value {
  const base = getAt(root, within);
  if (base === undefined) return root;
  const containers = allPaths(base)
    .map((p) => [...within, ...p])
    .filter((p) => {
      const node = getAt(root, p);
      return isContainer(node) && !Array.isArray(node);
    });
  if (containers.length === 0) return root;
  const node = getAt(root, containers[insertion.pick % containers.length]!) as { [key: string]: Value };
  setOwn(node, insertion.key, copyValue(insertion.value));
  return root;
}

/**
 * What the README and json-body.ts promise to refuse, computed independently: an own `__proto__` key anywhere, or a
 * `constructor` key holding an object with an own `prototype`. Walks without recursion (inputs may be deep).
 */
export function hasForbiddenKey(root: unknown): boolean {
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const node = stack.pop();
    if (typeof node !== 'object' || node === null) continue;
    if (Array.isArray(node)) {
      for (const item of node) stack.push(item);
      continue;
    }
    const record = node as Record<string, unknown>;
    if (Object.hasOwn(record, '__proto__')) return true;
    const ctor = Object.hasOwn(record, 'constructor') ? record.constructor : undefined;
    if (typeof ctor === 'object' && ctor !== null && Object.hasOwn(ctor, 'prototype')) return true;
    for (const key of Object.keys(record)) stack.push(record[key]);
  }
  return false;
}

// ---------------------------------------------------------------------------------------------------------------
// Built-in prototypes stay clean

const PROTOTYPES = { Object: Object.prototype, Array: Array.prototype, Function: Function.prototype, String: String.prototype };

export function prototypeSnapshot(): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [name, proto] of Object.entries(PROTOTYPES)) out[name] = Reflect.ownKeys(proto).map(String).sort();
  return out;
}

export function expectPrototypesClean(before: Record<string, string[]>): void {
  expect(prototypeSnapshot()).toEqual(before);
  const probe = {} as Record<string, unknown>;
  expect(probe.polluted).toBeUndefined();
  expect(Object.getPrototypeOf(probe)).toBe(Object.prototype);
  expect(typeof probe.toString).toBe('function');
}

// ---------------------------------------------------------------------------------------------------------------
// Comparing and applying without recursion (inputs may be 100k levels deep)

export function jsonEqual(a: unknown, b: unknown): boolean {
  const stack: [unknown, unknown][] = [[a, b]];
  while (stack.length > 0) {
    const [x, y] = stack.pop()!;
    if (Object.is(x, y)) continue;
    if (typeof x !== 'object' || typeof y !== 'object' || x === null || y === null) return false;
    if (Array.isArray(x) !== Array.isArray(y)) return false;
    const xs = x as Record<string, unknown>;
    const ys = y as Record<string, unknown>;
    const keys = Object.keys(xs);
    if (keys.length !== Object.keys(ys).length) return false;
    for (const key of keys) {
      if (!Object.hasOwn(ys, key)) return false;
      stack.push([xs[key], ys[key]]);
    }
  }
  return true;
}

/**
 * Applies an RFC 6902 patch as the API server would (every path must exist) to `document`, in place. Throws
 * when an operation does not apply.
 */
export function applyInPlace(document: unknown, patch: unknown): unknown {
  expect(Array.isArray(patch), 'the patch is a JSON array').toBe(true);
  return fastJsonPatch.applyPatch(document, patch as Operation[], true, true).newDocument;
}

// ---------------------------------------------------------------------------------------------------------------
// The contract of every HTTP answer

export interface SentRequest {
  method: string;
  path: string;
  contentType: string | undefined;
  body: Buffer;
}

export interface ReceivedAnswer {
  status: number;
  headers: Record<string, string | string[] | number | undefined>;
  body: string;
}

/** The route a URL reaches: the path without query or fragment, percent-decoded as the router does. */
export function routeOf(url: string): string {
  const path = url.split(/[?#]/)[0] ?? '';
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}

const STACK_FRAME = /\n\s+at |^\s+at .+:\d+:\d+|\bat .+\.(?:ts|js|mjs):\d+/m;
const FILE_PATH = /\/work\/|\/src\/|\/dist\/|node_modules|file:\/\/|node:internal|\.ts:\d+|\.js:\d+/;

export interface AnswerSummary {
  /** `200`, `4xx`-style status, or `admission` for a well-formed review. */
  outcome: string;
  /** The decoded patch of a 200 AdmissionReview, if any. */
  patch?: unknown[];
  warnings?: string[];
}

/** The one-line `{"error":...}` body of a 4xx, never a stack trace or a file path. */
export function expectErrorBody(answer: ReceivedAnswer): string {
  expect(answer.headers['content-type'], `content-type of a ${answer.status}`).toMatch(/^application\/json/);
  expect(answer.body.trimEnd(), 'error body on one line').not.toContain('\n');
  expect(answer.body).not.toMatch(STACK_FRAME);
  expect(answer.body).not.toMatch(FILE_PATH);
  let parsed: unknown;
  expect(() => (parsed = JSON.parse(answer.body)), `error body is JSON: ${answer.body.slice(0, 200)}`).not.toThrow();
  expect(parsed).toBeTypeOf('object');
  expect(Object.keys(parsed as object)).toEqual(['error']);
  const reason = (parsed as { error: unknown }).error;
  expect(reason).toBeTypeOf('string');
  expect((reason as string).length).toBeGreaterThan(0);
  expect(reason as string).not.toMatch(/FST_|statusCode|Error:/);
  return reason as string;
}

/** The body the server saw, as the server decodes it (UTF-8 with replacement characters). */
export function parsedBody(body: Buffer): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(body.toString('utf8')) as unknown };
  } catch {
    return { ok: false };
  }
}

function record(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

/**
 * The contract: never 5xx; a 200 on POST /mutate is a well-formed AdmissionReview answering what was sent (same
 * apiVersion, uid echoed, allowed, a patch that applies to the object sent); anything else is a 4xx with a
 * one-line JSON reason. Returns what was seen, for the tallies and stricter checks.
 */
export function expectContract(sent: SentRequest, answer: ReceivedAnswer): AnswerSummary {
  expect(answer.status, `status of ${sent.method} ${sent.path.slice(0, 80)}: ${answer.body.slice(0, 200)}`).toBeGreaterThanOrEqual(200);
  expect(answer.status, `never a 5xx: ${answer.body.slice(0, 200)}`).toBeLessThan(500);
  if (answer.status >= 400) {
    if (sent.method === 'HEAD') return { outcome: String(answer.status) };
    expectErrorBody(answer);
    return { outcome: String(answer.status) };
  }
  expect(answer.status).toBe(200);
  const path = routeOf(sent.path);
  if (path !== '/mutate') {
    expect(['/healthz', '/readyz']).toContain(path);
    expect(['GET', 'HEAD']).toContain(sent.method);
    return { outcome: 'probe' };
  }
  expect(sent.method).toBe('POST');
  const essence = sent.contentType?.split(';')[0]?.trim().toLowerCase();
  expect(essence, 'only application/json reaches the handler').toBe('application/json');

  const request = parsedBody(sent.body);
  expect(request.ok, 'a 200 answers a body that is JSON').toBe(true);
  const review = record(request.ok ? request.value : undefined);
  const reviewRequest = record(review?.request);
  expect(reviewRequest, 'a 200 answers a review with a request').toBeDefined();
  const uid = reviewRequest?.uid;
  expect(typeof uid === 'string' && uid !== '', 'a 200 answers a non-empty string uid').toBe(true);

  expect(answer.headers['content-type']).toMatch(/^application\/json/);
  const parsed = JSON.parse(answer.body) as Record<string, unknown>;
  // Everything but the patch, whose base64 may spell "/src/" by chance.
  expect(JSON.stringify({ ...parsed, response: { ...record(parsed.response), patch: undefined } })).not.toMatch(FILE_PATH);
  expect(parsed.kind).toBe('AdmissionReview');
  expect(parsed.apiVersion).toBe(review?.apiVersion);
  const response = record(parsed.response);
  expect(response, 'response object').toBeDefined();
  expect(response?.uid, 'uid echoed').toBe(uid);
  expect(response?.allowed, 'allowed (failure: open)').toBe(true);
  const warnings = response?.warnings;
  if (warnings !== undefined) {
    expect(Array.isArray(warnings)).toBe(true);
    for (const warning of warnings as unknown[]) {
      expect(warning).toBeTypeOf('string');
      expect(warning as string, 'warnings are one line').not.toMatch(/[\n\r]/);
      expect(warning as string).not.toMatch(STACK_FRAME);
    }
  }
  const summary: AnswerSummary = { outcome: 'admission', ...(Array.isArray(warnings) ? { warnings: warnings as string[] } : {}) };
  if (response?.patch !== undefined) {
    expect(response.patchType).toBe('JSONPatch');
    expect(response.patch).toBeTypeOf('string');
    const patch = JSON.parse(Buffer.from(response.patch as string, 'base64').toString('utf8')) as unknown;
    expect(Array.isArray(patch) && patch.length > 0, 'a non-empty patch').toBe(true);
    // Applied to the object exactly as sent (a fresh parse: the server may not have touched it, but be sure).
    const fresh = parsedBody(sent.body);
    const object = fresh.ok ? record(record(fresh.value)?.request)?.object : undefined;
    expect(() => applyInPlace(object, patch), 'the patch applies to request.object').not.toThrow();
    summary.patch = patch as unknown[];
    summary.outcome = 'patched';
  } else {
    expect(response?.patchType).toBeUndefined();
  }
  return summary;
}
