/** `/healthz` (the process serves) and `/readyz` (the server wants traffic). */
import type { FastifyPluginCallback } from 'fastify';
import { StatusBody } from '../schemas.js';

export interface ProbesOptions {
  /** `/readyz`: 200 when true, 503 otherwise. */
  ready: () => boolean;
}

export const probesPlugin: FastifyPluginCallback<ProbesOptions> = (app, { ready }, done) => {
  app.get('/healthz', { schema: { response: { 200: StatusBody } } }, async () => ({ status: 'ok' }));
  app.get('/readyz', { schema: { response: { 200: StatusBody, 503: StatusBody } } }, async (_request, reply) => {
    if (ready()) return { status: 'ready' };
    return reply.code(503).send({ status: 'not ready' });
  });
  done();
};
