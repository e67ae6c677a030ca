/**
 * The composition of the running webhook (src/runtime/webhook.ts), through the test harness that builds it the
 * way production does: extra parts feed /readyz, are reloaded and closed with the rest, and a part that cannot
 * start leaves nothing running.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Part } from '../../src/runtime/part.js';
import { send, startTestServer, type TestServer } from '../http/helpers.js';
import { loadFixture } from '../support/fixtures.js';

const good = loadFixture('create-pod.json');

/** A part that records what was done to it. */
function recordingPart(name: string, events: string[], options: { failStart?: boolean } = {}): Part & { isReady: boolean } {
  const part = {
    name,
    isReady: false,
    async start() {
      events.push(`start ${name}`);
      if (options.failStart === true) throw new Error(`${name} cannot start`);
    },
    ready: () => part.isReady,
    async close() {
      events.push(`close ${name}`);
    },
    async reload() {
      events.push(`reload ${name}`);
    },
  };
  return part;
}

describe('the composed webhook', () => {
  let server: TestServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('an extra part feeds /readyz, is reloaded with the others, and is closed when the webhook stops', async () => {
    const events: string[] = [];
    const extra = recordingPart('audit', events);
    server = await startTestServer({ extraParts: () => [extra] });
    expect(events).toEqual(['start audit']);
    expect((await server.send({ method: 'GET', path: '/readyz', headers: {} })).status).toBe(503);
    extra.isReady = true;
    expect((await server.send({ method: 'GET', path: '/readyz', headers: {} })).status).toBe(200);
    expect((await server.send({ body: good.text })).status).toBe(200);

    await server.webhook.reload();
    expect(events).toContain('reload audit');
    const { port } = server;
    await server.close();
    server = undefined;
    expect(events.at(-1)).toBe('close audit');
    await expect(send({ port, method: 'GET', path: '/healthz', headers: {} })).rejects.toThrow(/ECONNREFUSED/);
  });

  it('a part that cannot start fails the start and closes the parts started before it', async () => {
    const events: string[] = [];
    const first = recordingPart('first', events);
    const broken = recordingPart('broken', events, { failStart: true });
    await expect(startTestServer({ extraParts: () => [first, broken] })).rejects.toThrow('broken cannot start');
    expect(events).toEqual(['start first', 'start broken', 'close first']);
  });
});
