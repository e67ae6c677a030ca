/**
 * The webhook's HTTP app. `buildApp` configures fastify and never listens; the composition root does that and
 * owns the process lifecycle. Each concern is a plugin (src/http/plugins/): error answers and 404/405, the drain's
 * `Connection: close`, request bodies, the probes, the admission route.
 */
import type { DestinationStream } from 'pino';
import {
  fastify,
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type RawReplyDefaultExpression,
  type RawRequestDefaultExpression,
  type RawServerDefault,
} from 'fastify';
import type { AdmissionDeps } from '../admission/respond.js';
import type { AdmissionMetrics } from './metrics.js';
import { admissionPlugin } from './plugins/admission.js';
import { bodyPlugin } from './plugins/body.js';
import { bodyBudgetPlugin } from './plugins/body-budget.js';
import { drainPlugin } from './plugins/drain.js';
import { clientErrorHandler, errorsPlugin, frameworkErrorHandler } from './plugins/errors.js';
import { probesPlugin } from './plugins/probes.js';
import { AdmissionOffload, DEFAULT_OFFLOAD_MAX_IN_FLIGHT, DEFAULT_OFFLOAD_MIN_BYTES, defaultWorkerUrl } from './offload.js';
import { createRejections } from './rejections.js';
import { serverFactory, type ListenerOptions } from './server-factory.js';

/**
 * The API server accepts objects up to 3 MiB; as JSON inside an AdmissionReview (which may carry `oldObject`
 * too) a body can be larger, hence 6 MiB. Bigger bodies get 413 without being read to the end.
 */
export const DEFAULT_BODY_LIMIT = 6 * 1024 * 1024;

/**
 * Request-body bytes held at once, and how long a request waits for room before a 503. A body costs several
 * times its size while parsed and answered (about 5× for a 3 MiB pod), so 12 MiB of bodies stays within the
 * Deployment's memory limit (bench/floods.mjs measures it): two largest bodies, or four 3 MiB pods, at once;
 * typical 10 KiB pods never wait. The wait leaves the API server's 5 s timeout room for the answer.
 */
export const DEFAULT_BODY_BUDGET = { bytes: 12 * 1024 * 1024, maxWaitMs: 2_000 } as const;

export interface AppLoggerOptions {
  level?: string;
  /** Where log lines go (default stdout). Tests pass a stream to read them. */
  stream?: DestinationStream;
}

export interface AppDeps {
  admission: AdmissionDeps;
  metrics: AdmissionMetrics;
  /** `/readyz`: 200 when true, 503 otherwise. */
  ready: () => boolean;
  /** While true (the drain after SIGTERM) every response carries `Connection: close`. */
  draining?: () => boolean;
  bodyLimit?: number;
  /** The cap on request-body bytes held at once (default `DEFAULT_BODY_BUDGET`). */
  bodyBudget?: { bytes?: number; maxWaitMs?: number };
  /** TLS, timeouts and connection cap of the server fastify wraps. */
  listener?: ListenerOptions;
  /** Structured JSON logs (pino). `false`: no logs. Default: info to stdout. */
  logger?: AppLoggerOptions | false;
  /** A monotonic clock in milliseconds (default `performance.now`). */
  now?: () => number;
  /**
   * Big bodies answered by a worker thread (src/http/offload.ts). Default: the compiled worker next to this
   * module, when there is one and the engine is the real one; `false`: every body on the event loop.
   */
  offload?: { minBytes?: number; maxInFlight?: number; workerUrl?: URL } | false;
}

function createOffload(deps: AppDeps): AdmissionOffload | undefined {
  if (deps.offload === false || deps.admission.engine !== undefined) return undefined;
  const workerUrl = deps.offload?.workerUrl ?? defaultWorkerUrl();
  if (workerUrl === undefined) return undefined;
  return new AdmissionOffload({
    workerUrl,
    minBytes: deps.offload?.minBytes ?? DEFAULT_OFFLOAD_MIN_BYTES,
    maxInFlight: deps.offload?.maxInFlight ?? DEFAULT_OFFLOAD_MAX_IN_FLIGHT,
  });
}

export type App = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger
>;

export function buildApp(deps: AppDeps): App {
  const bodyLimit = deps.bodyLimit ?? DEFAULT_BODY_LIMIT;
  const { metrics } = deps;
  const now = deps.now ?? (() => performance.now());
  const rejections = createRejections(metrics, now);
  const loggerOptions =
    deps.logger === false
      ? false
      : {
          level: deps.logger?.level ?? 'info',
          ...(deps.logger?.stream === undefined ? {} : { stream: deps.logger.stream }),
        };

  const app = fastify({
    serverFactory: serverFactory(deps.listener),
    logger: loggerOptions,
    // The per-request "incoming request"/"request completed" lines are on the hot path and say nothing the one
    // admission line does not: off. Each admission logs one line itself.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit,
    // During the drain nothing answers 503: every request that reaches us gets a real answer, marked
    // `Connection: close`. On close, idle keep-alive sockets are closed and busy ones finish their request.
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    clientErrorHandler: clientErrorHandler(rejections),
    frameworkErrors: frameworkErrorHandler(rejections),
  });

  void app.register(errorsPlugin, { rejections, bodyLimit });
  void app.register(drainPlugin, { draining: deps.draining ?? (() => false) });
  const offload = createOffload(deps);
  if (offload !== undefined) app.addHook('onClose', () => offload.close());
  void app.register(bodyPlugin, { bodyLimit, ...(offload === undefined ? {} : { defer: (text: string) => offload.wants(text) }) });
  void app.register(bodyBudgetPlugin, {
    bytes: deps.bodyBudget?.bytes ?? DEFAULT_BODY_BUDGET.bytes,
    maxWaitMs: deps.bodyBudget?.maxWaitMs ?? DEFAULT_BODY_BUDGET.maxWaitMs,
    bodyLimit,
    metrics,
  });
  void app.register(probesPlugin, { ready: deps.ready });
  void app.register(admissionPlugin, {
    admission: deps.admission,
    metrics,
    now,
    ...(offload === undefined ? {} : { offload }),
  });
  return app;
}
