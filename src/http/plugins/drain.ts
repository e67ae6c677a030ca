/**
 * The drain after SIGTERM, as the HTTP layer sees it: every response carries `Connection: close`, so keep-alive
 * clients reconnect through the Service, to another replica. When the drain starts is the caller's business
 * (`draining()`).
 */
import { appWide } from './shared.js';

export interface DrainOptions {
  draining: () => boolean;
}

export const drainPlugin = appWide<DrainOptions>((app, { draining }, done) => {
  // Synchronous: an async hook on every reply costs a promise per request for a header needed only when draining.
  app.addHook('onSend', (_request, reply, payload, next) => {
    if (draining()) void reply.header('connection', 'close');
    next(null, payload);
  });
  done();
});
