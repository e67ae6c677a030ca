/**
 * Shared by the HTTP tests: the production composition listening over real TLS on 127.0.0.1:0, a keep-alive
 * HTTPS client that trusts our dev CA, and the kube-apiserver captures.
 */
import { Agent, request as httpsRequest } from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import type { AdmissionDeps } from '../../src/admission/respond.js';
import { defaultConfig } from '../../src/core/defaults.js';
import type { InjectorConfig } from '../../src/core/types.js';
import type { App } from '../../src/http/app.js';
import type { AdmissionMetrics } from '../../src/http/metrics.js';
import { startWebhook, type Webhook, type WebhookOptions } from '../../src/runtime/webhook.js';
import { generateDevCertificates, type CertificateBundle } from '../../src/tls/certificates.js';

/** The headers a real kube-apiserver sends (fixtures README). */
export const APISERVER_HEADERS = {
  'user-agent': 'kube-apiserver-admission',
  'content-type': 'application/json',
  accept: 'application/json, */*',
  'accept-encoding': 'gzip',
} as const;

let certificates: CertificateBundle | undefined;
/** One dev CA + serving certificate per test file (key generation is the slow part). */
export function testCertificates(): CertificateBundle {
  certificates ??= generateDevCertificates({ service: 'sidecar-injector', namespace: 'sidecar-injector' });
  return certificates;
}

/** Collects log lines written by the app, parsed. */
export class LogSink {
  readonly stream = new PassThrough();
  readonly lines: Record<string, unknown>[] = [];
  readonly raw: string[] = [];
  private rest = '';
  constructor() {
    this.stream.on('data', (chunk: Buffer) => {
      const text = this.rest + chunk.toString('utf8');
      const parts = text.split('\n');
      this.rest = parts.pop() ?? '';
      for (const line of parts) {
        if (line === '') continue;
        this.raw.push(line);
        this.lines.push(JSON.parse(line) as Record<string, unknown>);
      }
    });
  }
}

export interface TestServerOptions {
  config?: InjectorConfig;
  /** A configuration file instead of `config`, watched as production watches it. */
  configFile?: string;
  /** Cluster access (default off). */
  cluster?: WebhookOptions['cluster'];
  clusterFacts?: AdmissionDeps['clusterFacts'];
  engine?: AdmissionDeps['engine'];
  bodyLimit?: number;
  bodyBudget?: WebhookOptions['bodyBudget'];
  listener?: WebhookOptions['listener'];
  processMetrics?: boolean;
  /** The app's monotonic clock (ms); default `performance.now`. */
  now?: WebhookOptions['now'];
  /** Optional parts composed with the rest, as production's extraParts. */
  extraParts?: WebhookOptions['extraParts'];
}

export interface TestServer {
  webhook: Webhook;
  app: App;
  port: number;
  metricsPort: number;
  metrics: AdmissionMetrics;
  logs: LogSink;
  agent: Agent;
  ca: string;
  /** A request over the shared keep-alive agent. */
  send(options: SendOptions): Promise<Reply>;
  close(): Promise<void>;
}

/**
 * The production composition (src/runtime/webhook.ts) with test options: the dev certificates held in memory,
 * the configuration in memory, no cluster access, both listeners on 127.0.0.1 random ports, logs collected.
 */
export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const certs = testCertificates();
  const logs = new LogSink();
  const webhook = await startWebhook({
    host: '127.0.0.1',
    port: 0,
    metricsPort: 0,
    drainSeconds: 0,
    closeGraceMs: 1_000,
    logLevel: 'info',
    logStream: logs.stream,
    injectorNamespace: 'sidecar-injector',
    ...(options.configFile === undefined ? { config: options.config ?? defaultConfig() } : { configFile: options.configFile }),
    certificates: { kind: 'pair', pair: { cert: certs.serving.cert, key: certs.serving.key } },
    cluster: options.cluster ?? { on: false, why: 'test server' },
    processMetrics: options.processMetrics ?? false,
    ...(options.clusterFacts === undefined ? {} : { clusterFacts: options.clusterFacts }),
    ...(options.engine === undefined ? {} : { engine: options.engine }),
    ...(options.bodyLimit === undefined ? {} : { bodyLimit: options.bodyLimit }),
    ...(options.now === undefined ? {} : { now: options.now }),
    ...(options.bodyBudget === undefined ? {} : { bodyBudget: options.bodyBudget }),
    ...(options.listener === undefined ? {} : { listener: options.listener }),
    ...(options.extraParts === undefined ? {} : { extraParts: options.extraParts }),
  });
  const { port } = webhook;
  const agent = new Agent({ keepAlive: true, ca: certs.ca.cert, maxSockets: 8 });
  return {
    webhook,
    app: webhook.listeners.app,
    port,
    metricsPort: webhook.metricsPort,
    metrics: webhook.listeners.metrics,
    logs,
    agent,
    ca: certs.ca.cert,
    send: (sendOptions) => send({ agent, port, ...sendOptions }),
    close: async () => {
      agent.destroy();
      await webhook.stop('test over');
    },
  };
}

export interface SendOptions {
  method?: string;
  path?: string;
  headers?: Record<string, string | number>;
  body?: string | Buffer;
  agent?: Agent;
  port?: number;
  ca?: string;
}

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  socket: Socket;
}

/** One HTTPS request; resolves with the whole response. */
export function send(options: SendOptions & { port: number }): Promise<Reply> {
  return new Promise((resolvePromise, reject) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port: options.port,
        method: options.method ?? 'POST',
        path: options.path ?? '/mutate?timeout=10s',
        headers: options.headers ?? { ...APISERVER_HEADERS },
        ...(options.agent === undefined ? { ca: options.ca ?? testCertificates().ca.cert } : { agent: options.agent }),
        servername: 'localhost',
      },
      (res) => {
        // Captured now: once the response ends, a keep-alive agent takes the socket back and res.socket is null.
        const socket = res.socket;
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolvePromise({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
            socket,
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

export interface AdmissionAnswer {
  apiVersion: string;
  kind: string;
  response: {
    uid: string;
    allowed: boolean;
    patchType?: string;
    patch?: string;
    warnings?: string[];
    status?: { code?: number; message?: string };
  };
}

export function decodePatch(answer: AdmissionAnswer): unknown[] {
  if (answer.response.patch === undefined) return [];
  return JSON.parse(Buffer.from(answer.response.patch, 'base64').toString('utf8')) as unknown[];
}
