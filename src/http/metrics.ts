/**
 * Prometheus metrics. One Registry per app (never prom-client's global one), so several apps can live in one
 * process (tests) without "metric already registered" errors. Served by a separate plain-HTTP listener.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { serverFactory } from './server-factory.js';

export interface AdmissionMetrics {
  registry: Registry;
  /** Labels: decision (injected|updated|skipped|error), reason (skip reason, `none`, or the kind of fault). */
  admissions: Counter<'decision' | 'reason'>;
  /** From the request's arrival (body reading included) to the answer. */
  duration: Histogram;
  inflight: Gauge;
  /** Request-body bytes reserved now (the memory budget, src/http/byte-budget.ts). */
  bodyBytesHeld: Gauge;
  /** Requests waiting for room in that budget. */
  waitingRequests: Gauge;
  /** Requests refused before reaching the engine (4xx; 503 when overloaded); labels: code, reason. */
  rejected: Counter<'code' | 'reason'>;
  /** Injections whose sidecar the namespace's Pod Security level reduced; label: level. */
  podSecurityReductions: Counter<'level'>;
  /** Config file reloads; label: result (ok|failed). */
  configReloads: Counter<'result'>;
}

// The engine answers in tens of microseconds for a typical pod: buckets start well below a millisecond.
const DURATION_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export interface MetricsOptions {
  /** Process metrics (CPU, memory, event loop, GC). Default true. */
  processMetrics?: boolean;
}

export function createMetrics(options: MetricsOptions = {}): AdmissionMetrics {
  const registry = new Registry();
  if (options.processMetrics !== false) collectDefaultMetrics({ register: registry });
  const admissions = new Counter({
    name: 'sidecar_injector_admissions_total',
    help: 'Admission requests answered, by decision and reason',
    labelNames: ['decision', 'reason'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'sidecar_injector_admission_duration_seconds',
    help: 'Time from receiving an admission request to answering it',
    buckets: DURATION_BUCKETS,
    registers: [registry],
  });
  const inflight = new Gauge({
    name: 'sidecar_injector_inflight_requests',
    help: 'Admission requests being received or answered',
    registers: [registry],
  });
  const bodyBytesHeld = new Gauge({
    name: 'sidecar_injector_request_body_bytes_held',
    help: 'Request-body bytes reserved by requests being read or answered (capped by the body budget)',
    registers: [registry],
  });
  const waitingRequests = new Gauge({
    name: 'sidecar_injector_requests_waiting',
    help: 'Requests waiting for room in the body budget before their body is read',
    registers: [registry],
  });
  const rejected = new Counter({
    name: 'sidecar_injector_rejected_requests_total',
    help: 'Requests refused before reaching the engine (malformed: 4xx; overloaded: 503), by status code and reason',
    labelNames: ['code', 'reason'] as const,
    registers: [registry],
  });
  const podSecurityReductions = new Counter({
    name: 'sidecar_injector_pod_security_reductions_total',
    help: 'Sidecars injected without some of their privileges because of the namespace Pod Security level',
    labelNames: ['level'] as const,
    registers: [registry],
  });
  const configReloads = new Counter({
    name: 'sidecar_injector_config_reloads_total',
    help: 'Reloads of the configuration file, by result (a failed one keeps the previous configuration)',
    labelNames: ['result'] as const,
    registers: [registry],
  });
  return { registry, admissions, duration, inflight, bodyBytesHeld, waitingRequests, rejected, podSecurityReductions, configReloads };
}

function answer(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(`${JSON.stringify({ error: body })}\n`);
}

/**
 * The metrics listener: `GET /metrics` and nothing else. A bare node:http server: it never listens by itself
 * (the composition root calls `listen`), and stays out of the admission app's hooks and logs.
 */
export function buildMetricsApp(registry: Registry): Server {
  // Scrapers are trusted but slow clients are not: the webhook listener's timeouts and connection cap, over HTTP.
  return serverFactory()((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?', 1)[0];
    if (path !== '/metrics') {
      answer(res, 404, `no route ${path ?? '/'}`);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      answer(res, 405, `method ${req.method ?? ''} not allowed on /metrics`, { allow: 'GET, HEAD' });
      return;
    }
    registry.metrics().then(
      (text) => {
        res.writeHead(200, { 'content-type': registry.contentType });
        res.end(req.method === 'HEAD' ? undefined : text);
      },
      () => answer(res, 500, 'collecting metrics failed'),
    );
  });
}
