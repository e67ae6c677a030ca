/**
 * Fuzzing the HTTP layer in volume through fastify's `inject()` (no sockets): malformed and adversarial bodies,
 * headers, methods, paths and query strings. Every answer meets the README's promise for bad input (Endpoints): never a
 * crash, never a 5xx, never a stack trace; a well-formed AdmissionReview (uid echoed, allowed) or a 4xx with a
 * one-line JSON reason; and the app still answers a good request afterwards. Built-in prototypes stay clean.
 */
import fc from 'fast-check';
import type { HTTPMethods } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultConfig } from '../../src/core/defaults.js';
import { buildApp, DEFAULT_BODY_LIMIT, type App } from '../../src/http/app.js';
import { createMetrics } from '../../src/http/metrics.js';
import { LogSink } from '../http/helpers.js';
import {
  allPaths,
  applyMutations,
  Deep,
  expectContract,
  expectErrorBody,
  expectPrototypesClean,
  fcParameters,
  hasForbiddenKey,
  insertProtoKey,
  mutationsArbitrary,
  protoInsertionArbitrary,
  prototypeSnapshot,
  routeOf,
  serialise,
  setAt,
  share,
  Tally,
  timeoutFor,
  type ReceivedAnswer,
  type SentRequest,
  type Value,
} from './fuzz-support.js';
import { damage, expectedForBody, fixtureArbitrary, good, JSON_TYPE, queryArbitrary, sentJson, textDamageArbitrary } from './requests.js';

const tally = new Tally();
const prototypesBefore = prototypeSnapshot();

// ---------------------------------------------------------------------------------------------------------------

describe('fuzz: HTTP layer through inject()', () => {
  let app: App;
  const logs = new LogSink();

  beforeAll(async () => {
    app = buildApp({
      admission: { config: () => defaultConfig(), injectorNamespace: 'sidecar-injector', clusterFacts: () => ({}) },
      metrics: createMetrics({ processMetrics: false }),
      ready: () => true,
      // Error level only: thousands of 400s at info would cost more than the requests. 'unhandled error' (a 5xx)
      // and 'admission failed: our own fault' are both at error level.
      logger: { level: 'error', stream: logs.stream },
    });
    await app.ready();
  });

  afterAll(async () => {
    await app?.close();
    expectPrototypesClean(prototypesBefore);
    console.log(tally.report('http (inject)'));
  });

  async function answer(sent: SentRequest): Promise<ReceivedAnswer> {
    const response = await app.inject({
      method: sent.method as HTTPMethods,
      url: sent.path,
      headers: {
        'user-agent': 'kube-apiserver-admission',
        accept: 'application/json, */*',
        ...(sent.contentType === undefined ? {} : { 'content-type': sent.contentType }),
      },
      ...(sent.method === 'GET' || sent.method === 'HEAD' ? {} : { payload: sent.body }),
    });
    return { status: response.statusCode, headers: response.headers, body: response.body };
  }

  /** The contract, and the exact status where the body decides it. */
  async function check(property: string, sent: SentRequest): Promise<ReceivedAnswer> {
    const received = await answer(sent);
    const summary = expectContract(sent, received);
    if (sent.method === 'POST' && routeOf(sent.path) === '/mutate' && sent.contentType === JSON_TYPE && sent.body.length <= DEFAULT_BODY_LIMIT) {
      const expected = expectedForBody(sent.body);
      expect(received.status, `expected ${expected.status}: ${received.body.slice(0, 200)}`).toBe(expected.status);
      if (expected.status === 400) expect(expectErrorBody(received)).toMatch(expected.reason);
    }
    tally.add(property, summary.outcome);
    return received;
  }

  async function expectStillServing(): Promise<void> {
    const received = await answer(sentJson(good.text));
    expect(received.status).toBe(200);
    const review = JSON.parse(received.body) as { response: { uid: string; patchType?: string } };
    expect(review.response.uid).toBe(good.review.request.uid);
    expect(review.response.patchType).toBe('JSONPatch');
    expect(logs.lines.filter((line) => line.msg === 'unhandled error')).toEqual([]);
    expectPrototypesClean(prototypesBefore);
  }

  function faults(): number {
    return logs.lines.filter((line) => line.msg === 'admission failed: our own fault').length;
  }

  const objectRuns = share(0.2, 200);
  it(`junk anywhere in request.object: always 200, uid echoed, allowed, a patch that applies (${objectRuns} cases)`, async () => {
    const faultsBefore = faults();
    await fc.assert(
      fc.asyncProperty(fixtureArbitrary, mutationsArbitrary(), queryArbitrary, async (fixture, mutations, query) => {
        const root = applyMutations(JSON.parse(fixture.text) as Value, mutations, ['request', 'object']);
        const received = await check('request.object junk', sentJson(serialise(root), query));
        expect(received.status === 200 || hasForbiddenKey(JSON.parse(serialise(root)))).toBe(true);
      }),
      fcParameters(objectRuns),
    );
    tally.note('request.object junk', `${faults() - faultsBefore} answered as our own fault (engine exception or failed pre-flight)`);
    await expectStillServing();
  }, timeoutFor(objectRuns, 3));

  const anywhereRuns = share(0.2, 200);
  it(`wrong types at every level of the AdmissionReview: 200 exactly when the envelope is sound, else 400 (${anywhereRuns} cases)`, async () => {
    await fc.assert(
      fc.asyncProperty(fixtureArbitrary, mutationsArbitrary(), queryArbitrary, async (fixture, mutations, query) => {
        const root = applyMutations(JSON.parse(fixture.text) as Value, mutations);
        await check('review junk', sentJson(serialise(root), query));
      }),
      fcParameters(anywhereRuns),
    );
    await expectStillServing();
  }, timeoutFor(anywhereRuns, 3));

  const textRuns = share(0.15, 150);
  it(`damaged text: truncated, non-UTF-8 bytes, cuts, duplicate keys, BOM, random bytes, escaped keys (${textRuns} cases)`, async () => {
    await fc.assert(
      fc.asyncProperty(
        fixtureArbitrary,
        fc.array(textDamageArbitrary, { minLength: 1, maxLength: 3 }),
        async (fixture, changes) => {
          let body: Buffer = Buffer.from(fixture.text);
          for (const change of changes) body = damage(body, change);
          await check('damaged text', sentJson(body));
        },
      ),
      fcParameters(textRuns),
    );
    await expectStillServing();
  }, timeoutFor(textRuns, 3));

  const protoRuns = share(0.08, 100);
  it(`__proto__ / constructor / prototype keys at random depths: refused where they could pollute, never polluting (${protoRuns} cases)`, async () => {
    await fc.assert(
      fc.asyncProperty(
        fixtureArbitrary,
        fc.array(protoInsertionArbitrary(), { minLength: 1, maxLength: 3 }),
        fc.boolean(),
        fc.boolean(),
        async (fixture, insertions, onlyInObject, unicodeEscape) => {
          let root = JSON.parse(fixture.text) as Value;
          for (const insertion of insertions) root = insertProtoKey(root, insertion, onlyInObject ? ['request', 'object'] : []);
          let text = serialise(root);
          // JSON.parse un-escapes keys: a grep for "__proto__" must not be the only defence.
          if (unicodeEscape) text = text.replaceAll('"__proto__"', '"\\u005f_proto__"').replaceAll('"constructor"', '"\\u0063onstructor"');
          const received = await check('proto keys', sentJson(text));
          const forbidden = hasForbiddenKey(JSON.parse(text));
          if (forbidden) expect(received.status).toBe(400);
          else if (onlyInObject) expect(received.status).toBe(200);
          expectPrototypesClean(prototypesBefore);
        },
      ),
      fcParameters(protoRuns),
    );
    await expectStillServing();
  }, timeoutFor(protoRuns, 3));

  const headerRuns = share(0.07, 100);
  it(`random content-types, methods, paths and query strings (${headerRuns} cases)`, async () => {
    const VALID_TYPES = ['application/json', 'application/json; charset=utf-8', 'Application/JSON', 'application/json;charset=UTF-8', 'application/json; foo=bar'];
    const INVALID_TYPES = [
      'text/plain', 'application/jsonx', 'application/json-patch+json', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x',
      '*/*', 'application/*', 'json', 'application/yaml', 'application/vnd.kubernetes.protobuf', 'text/json', 'application/json,text/plain',
    ];
    const KNOWN_PATHS = ['/mutate', '/healthz', '/readyz', '/', '/validate', '/mutate/', '/MUTATE', '//mutate', '/mutate/x', '/metrics', '/mutate;x'];
    const ROUTES: Record<string, string[]> = { '/mutate': ['POST'], '/healthz': ['GET', 'HEAD'], '/readyz': ['GET', 'HEAD'] };
    const METHODS = ['POST', 'GET', 'HEAD', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'] as const;
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          { weight: 3, arbitrary: fc.constant<'absent'>('absent') },
          { weight: 6, arbitrary: fc.constantFrom(...VALID_TYPES) },
          { weight: 4, arbitrary: fc.constantFrom(...INVALID_TYPES) },
          { weight: 3, arbitrary: fc.stringMatching(/^[\x20-\x7e]{0,40}$/) },
        ),
        fc.oneof({ weight: 6, arbitrary: fc.constant('POST') }, { weight: 2, arbitrary: fc.constantFrom(...METHODS) }),
        fc.oneof(
          { weight: 6, arbitrary: fc.constant('/mutate') },
          { weight: 2, arbitrary: fc.constantFrom(...KNOWN_PATHS) },
          // inject() resolves the URL with WHATWG rules first (`/\\` is an invalid URL to it); the TLS suite sends such paths raw.
          { weight: 1, arbitrary: fc.stringMatching(/^\/[\x21-\x7e]{0,30}$/).filter((p) => !/[?#]/.test(p) && URL.canParse(p, 'http://localhost')) },
        ),
        queryArbitrary,
        fc.constantFrom('good', 'empty', 'junk'),
        async (type, method, path, query, bodyKind) => {
          const contentType = type === 'absent' ? undefined : type;
          const body = bodyKind === 'good' ? Buffer.from(good.text) : bodyKind === 'empty' ? Buffer.alloc(0) : Buffer.from('{"kind":');
          const sent: SentRequest = { method, path: `${path}${query}`, contentType, body };
          const received = await check('headers/method/path/query', sent);
          if (!(KNOWN_PATHS as string[]).includes(path)) return;
          const allowed = ROUTES[path];
          if (allowed === undefined || !allowed.includes(method)) {
            // Path and method are judged before the body: a wrong route is 404/405 whatever the body.
            const routeStatus = allowed === undefined ? 404 : 405;
            expect(received.status).toBe(routeStatus);
            if (routeStatus === 405) expect(received.headers.allow).toBe(allowed!.join(', '));
          } else if (path === '/mutate' && bodyKind === 'good') {
            if (contentType === undefined || INVALID_TYPES.includes(contentType)) expect(received.status).toBe(415);
            else if (VALID_TYPES.includes(contentType)) expect(received.status).toBe(200);
          } else if (path !== '/mutate') {
            expect(received.status).toBe(200);
          }
        },
      ),
      fcParameters(headerRuns),
    );
    await expectStillServing();
  }, timeoutFor(headerRuns, 3));

  const hugeRuns = share(0.001, 12);
  it(`deep nesting (to 100k levels), huge strings, wide objects, bodies over the limit (${hugeRuns} cases)`, async () => {
    interface HugeCase {
      name: string;
      body: () => Buffer;
      status: number;
      reason?: RegExp;
    }
    const review = (): Value => JSON.parse(good.text) as Value;
    const objectPaths = allPaths((JSON.parse(good.text) as { request: { object: Value } }).request.object).map((p) => ['request', 'object', ...p]);
    const at = (path: (string | number)[], value: Value): Buffer => Buffer.from(serialise(setAt(review(), path, value)));
    const cases = fc.oneof(
      fc.constant<HugeCase>({ name: '100k [ unterminated', body: () => Buffer.from('['.repeat(100_000)), status: 400, reason: /not valid JSON/ }),
      fc.constant<HugeCase>({ name: '100k {"a": unterminated', body: () => Buffer.from('{"a":'.repeat(100_000)), status: 400, reason: /not valid JSON/ }),
      fc.constant<HugeCase>({ name: '1M [ closed', body: () => Buffer.from(new Deep(1_000_000, 'array').text()), status: 400, reason: /array/ }),
      fc
        .tuple(fc.nat(), fc.constantFrom(1_000, 10_000, 100_000, 500_000), fc.constantFrom<'array' | 'object'>('array', 'object'))
        .map(([pick, depth, shape]): HugeCase => ({
          name: `deep ${shape} ${depth} in request.object`,
          body: () => at(objectPaths[pick % objectPaths.length]!, new Deep(depth, shape)),
          status: 200,
        })),
      fc.constantFrom('uid', 'operation', 'namespace', 'kind').map((field): HugeCase => ({
        name: `deep array as request.${field}`,
        body: () => at(['request', field], new Deep(100_000, 'array')),
        status: field === 'kind' ? 200 : 400,
      })),
      fc.tuple(fc.nat(), fc.constantFrom(1024 * 1024, 5 * 1024 * 1024)).map(([pick, size]): HugeCase => ({
        name: `${size}-byte string in request.object`,
        body: () => at(objectPaths[pick % objectPaths.length]!, 'z'.repeat(size)),
        status: 200,
      })),
      fc.constant<HugeCase>({ name: 'huge uid', body: () => at(['request', 'uid'], 'u'.repeat(4 * 1024 * 1024)), status: 200 }),
      fc.constant<HugeCase>({
        name: '200k keys in metadata.labels',
        body: () => at(['request', 'object', 'metadata', 'labels'], Object.fromEntries(Array.from({ length: 200_000 }, (_, i) => [`k${i}`, 'v']))),
        status: 200,
      }),
      fc.constant<HugeCase>({
        name: '20k containers',
        body: () => at(['request', 'object', 'spec', 'containers'], Array.from({ length: 20_000 }, (_, i) => ({ name: `c${i}`, image: 'nginx' }))),
        status: 200,
      }),
      fc.constant<HugeCase>({
        name: 'over the body limit',
        body: () => at(['request', 'object', 'metadata', 'annotations'], { big: 'b'.repeat(DEFAULT_BODY_LIMIT) }),
        status: 413,
        reason: /exceeds the limit/,
      }),
    );
    await fc.assert(
      fc.asyncProperty(cases, async (testCase) => {
        const sent = sentJson(testCase.body());
        const received = await answer(sent);
        const summary = expectContract(sent, received);
        expect(received.status, `${testCase.name}: ${received.body.slice(0, 200)}`).toBe(testCase.status);
        if (testCase.reason !== undefined) expect(expectErrorBody(received)).toMatch(testCase.reason);
        tally.add('huge and deep', `${testCase.name}→${summary.outcome}`);
      }),
      { ...fcParameters(hugeRuns), endOnFailure: true },
    );
    await expectStillServing();
  }, timeoutFor(hugeRuns, 1_500));
});
