import type { InjectionContext, InjectionResult, InjectorConfig } from './types.js';

/**
 * The injection engine: decides and builds the patch for one pod. Pure: no I/O, no clock, no logger.
 * `pod` is the raw JSON object from the request (request.object).
 */
export function computeInjection(pod: unknown, config: InjectorConfig, context: InjectionContext): InjectionResult {
  void pod; void config; void context;
  throw new Error('not implemented yet');
}
