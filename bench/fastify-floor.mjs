#!/usr/bin/env node
/**
 * A diagnostic, not part of `make bench`: the baseline's hand-written work (bench/baseline-server.mjs
 * `answerFor`) served by fastify instead of bare node:https — to tell the framework's cost from our own code's.
 * `--log` adds what ours does for logging: a pino child logger per request and one info line, to stdout.
 *
 * Usage: node bench/fastify-floor.mjs --tls-cert FILE --tls-key FILE [--port 0] [--log]
 * Prints `{"listening":PORT}` like the baseline; GET /healthz answers 200.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import { answerFor } from './baseline-server.mjs';

const require = createRequire(new URL('../package.json', import.meta.url));
const { fastify } = require('fastify');

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '0' },
    'tls-cert': { type: 'string' },
    'tls-key': { type: 'string' },
    log: { type: 'boolean', default: false },
  },
});

const app = fastify({
  https: { cert: readFileSync(values['tls-cert']), key: readFileSync(values['tls-key']) },
  keepAliveTimeout: 120_000,
  bodyLimit: 6 * 1024 * 1024,
  logger: values.log ? { level: 'info' } : false,
  disableRequestLogging: true,
});
app.removeAllContentTypeParsers();
app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => done(null, body));
app.get('/healthz', async () => ({ ok: true }));
app.post('/mutate', async (request, reply) => {
  const answer = answerFor(request.body);
  if (values.log) request.log.child({ uid: 'x', namespace: 'inject', pod: 'p' }).info({ decision: 'injected', durationMs: 0.1 }, 'admission');
  return reply.type('application/json').send(answer);
});
await app.listen({ host: values.host, port: Number(values.port) });
process.stdout.write(`${JSON.stringify({ listening: app.server.address().port })}\n`);
const stop = () => app.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
