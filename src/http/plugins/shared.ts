/**
 * What the app's plugins share: the error a plugin throws when the request is at fault, the path of a request URL,
 * and how a plugin opts out of fastify's encapsulation. Anything a client sent is echoed through `oneLine`.
 */
import type { FastifyPluginCallback, FastifyPluginOptions } from 'fastify';
import type { RejectReason } from '../rejections.js';

/** An error whose message is safe to send back as it is (it never quotes the body). */
export class BadRequest extends Error {
  readonly statusCode: number;
  readonly reason: RejectReason;
  constructor(message: string, statusCode = 400, reason: RejectReason = 'invalid-body') {
    super(message);
    this.statusCode = statusCode;
    this.reason = reason;
  }
}

/** The path part of a request URL (no query). */
export function pathOf(url: string): string {
  const index = url.indexOf('?');
  return index === -1 ? url : url.slice(0, index);
}

/**
 * Hooks, handlers and parsers a plugin registers apply to the whole app, not only to routes the plugin itself
 * declares: fastify's documented `skip-override` marker (what the fastify-plugin package sets; one line here
 * rather than a dependency).
 */
export function appWide<Options extends FastifyPluginOptions>(plugin: FastifyPluginCallback<Options>): FastifyPluginCallback<Options> {
  Object.defineProperty(plugin, Symbol.for('skip-override'), { value: true });
  return plugin;
}
