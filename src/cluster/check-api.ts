/**
 * The I/O half of `sidecar-injector check` (and of `repair` and the missed-pods auditor), kept thin: raw JSON
 * requests to the API server with the credentials of a client-node KubeConfig, the reads and writes they make by
 * object (every API path they use is here), and a TLS handshake that collects the certificate chain a webhook
 * presents.
 *
 * Raw JSON on purpose: objects reach the diagnosis exactly as the API server sent them (a client-library model
 * would drop fields it does not know), and the `Warning` headers admission webhooks add are kept.
 * `@kubernetes/client-node` is only needed for its types here; client.ts loads it when a KubeConfig is built.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest, type RequestOptions as HttpsOptions } from 'node:https';
import { isIP } from 'node:net';
import { connect as tlsConnect, type DetailedPeerCertificate } from 'node:tls';
import type { KubeConfig } from '@kubernetes/client-node';
import type { MutatingWebhookConfiguration } from 'kubernetes-types/admissionregistration/v1.js';
import type { Namespace, Pod, Secret, Service } from 'kubernetes-types/core/v1.js';
import type { EndpointSlice } from 'kubernetes-types/discovery/v1.js';
import { errorLine } from '../error-line.js';
import { probePod, type DryRunOutcome, type Listing, type Lookup } from './check-targets.js';

export interface ApiReply {
  status: number;
  /** The parsed JSON body; the text when it is not JSON. */
  body: unknown;
  /** The texts of the `Warning: 299 - "…"` headers, in order. */
  warnings: string[];
}

export interface RequestOptions {
  /** Default `application/json`; a PartialObjectMetadataList request asks for less. */
  accept?: string;
  /** Default `application/json`; a PATCH names its patch type here. */
  contentType?: string;
}

/** What a list returns when only the metadata is wanted: names, labels, annotations, owners, no spec. */
export const METADATA_LIST_ACCEPT = 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json';
/** The same for one object. */
export const METADATA_ACCEPT = 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json';

export interface KubeApi {
  server: string;
  /** Throws on a network or TLS error; any HTTP status comes back as a reply. */
  request(method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', path: string, body?: unknown, options?: RequestOptions): Promise<ApiReply>;
}

/** The message of a Kubernetes Status body, else the HTTP status. */
export function replyMessage(reply: ApiReply): string {
  const body = reply.body;
  if (typeof body === 'object' && body !== null && 'message' in body && typeof body.message === 'string') {
    return `${body.message} (HTTP ${reply.status})`;
  }
  return `HTTP ${reply.status}`;
}

const MAX_BODY_BYTES = 64 * 1024 * 1024;

/** RFC 7234 warn-text of `299 - "text"` (Kubernetes escapes `"` and `\` inside it). */
export function parseWarningHeader(value: string): string | undefined {
  const match = /^\s*\d{3}\s+\S+\s+"((?:[^"\\]|\\.)*)"/.exec(value);
  return match?.[1]?.replace(/\\(.)/g, '$1');
}

function warningsOf(res: IncomingMessage): string[] {
  const warnings: string[] = [];
  for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) {
    if (res.rawHeaders[i]?.toLowerCase() !== 'warning') continue;
    const text = parseWarningHeader(res.rawHeaders[i + 1] ?? '');
    if (text !== undefined) warnings.push(text);
  }
  return warnings;
}

/** A KubeApi over the current context of `kubeConfig`. */
export function kubeApi(kubeConfig: KubeConfig, timeoutMs: number): KubeApi {
  const cluster = kubeConfig.getCurrentCluster();
  if (cluster === null) throw new Error('the kubeconfig has no current cluster');
  const server = cluster.server.replace(/\/+$/, '');
  return {
    server,
    async request(method, path, body, wanted = {}) {
      const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      const options: HttpsOptions = {
        method,
        headers: {
          accept: wanted.accept ?? 'application/json',
          'user-agent': 'sidecar-injector-check',
          ...(payload === undefined
            ? {}
            : { 'content-type': wanted.contentType ?? 'application/json', 'content-length': String(payload.length) }),
        },
        timeout: timeoutMs,
      };
      // Sets the agent (CA, client certificate) and the Authorization header: tokens, exec and auth providers.
      await kubeConfig.applyToHTTPSOptions(options);
      const url = new URL(`${server}${path}`);
      const send = url.protocol === 'http:' ? httpRequest : httpsRequest;
      return new Promise<ApiReply>((resolve, reject) => {
        const req = send(url, options, (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > MAX_BODY_BYTES) req.destroy(new Error(`response larger than ${MAX_BODY_BYTES} bytes`));
            else chunks.push(chunk);
          });
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: unknown = text;
            try {
              parsed = JSON.parse(text);
            } catch {
              // Not JSON (an HTML error page from a proxy): kept as text for the message.
            }
            resolve({ status: res.statusCode ?? 0, body: parsed, warnings: warningsOf(res) });
          });
          res.on('error', reject);
        });
        req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
        req.on('error', reject);
        req.end(payload);
      });
    },
  };
}

export type ChainProbe = { reached: true; chain: string[] } | { reached: false; error: string };

function toPem(der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----\n`;
}

/**
 * A TLS handshake with `host:port` (SNI `servername` unless it is an IP, as the API server does), accepting any
 * certificate: the chain is verified afterwards, against the caBundle rather than this machine's trust store.
 */
export function probeCertificateChain(host: string, port: number, servername: string, timeoutMs: number): Promise<ChainProbe> {
  return new Promise((resolve) => {
    const socket = tlsConnect({
      host,
      port,
      ...(isIP(servername) === 0 ? { servername } : {}),
      rejectUnauthorized: false,
      ALPNProtocols: ['http/1.1'],
      timeout: timeoutMs,
    });
    const finish = (outcome: ChainProbe): void => {
      socket.destroy();
      resolve(outcome);
    };
    socket.once('secureConnect', () => {
      const chain: string[] = [];
      let cert: DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
      const seen = new Set<DetailedPeerCertificate>();
      while (cert !== undefined && cert.raw !== undefined && !seen.has(cert)) {
        seen.add(cert);
        chain.push(toPem(cert.raw));
        // A self-signed root points at itself; the leaf's issuerCertificate is undefined when none was sent.
        cert = cert.issuerCertificate === cert ? undefined : cert.issuerCertificate;
      }
      finish(chain.length === 0 ? { reached: false, error: 'no certificate presented' } : { reached: true, chain });
    });
    socket.once('timeout', () => finish({ reached: false, error: `no TLS handshake within ${timeoutMs} ms` }));
    socket.once('error', (err: NodeJS.ErrnoException) => finish({ reached: false, error: err.code ?? err.message }));
  });
}

// ---------------------------------------------------------------------------------------------------------------
// The reads and writes check, repair and the auditor make, by object.

const segment = encodeURIComponent;

async function lookup<T>(api: KubeApi, path: string): Promise<Lookup<T>> {
  try {
    const reply = await api.request('GET', path);
    if (reply.status === 200) return { found: true, object: reply.body as T };
    if (reply.status === 404) return { found: false };
    return { error: replyMessage(reply) };
  } catch (err) {
    return { error: errorLine(err) };
  }
}

async function listing<T>(api: KubeApi, path: string): Promise<Listing<T>> {
  try {
    const reply = await api.request('GET', path);
    if (reply.status !== 200) return { error: replyMessage(reply) };
    const items = (reply.body as { items?: T[] | null }).items;
    return { items: items ?? [] };
  } catch (err) {
    return { error: errorLine(err) };
  }
}

/** The API server's gitVersion (undefined when it does not say); throws when it cannot be asked or refuses us. */
export async function apiServerVersion(api: KubeApi): Promise<string | undefined> {
  const reply = await api.request('GET', '/version');
  if (reply.status === 401) throw new Error(`credentials rejected: ${replyMessage(reply)}`);
  const gitVersion = (reply.body as { gitVersion?: unknown } | null)?.gitVersion;
  return reply.status === 200 && typeof gitVersion === 'string' ? gitVersion : undefined;
}

export function getWebhookConfiguration(api: KubeApi, name: string): Promise<Lookup<MutatingWebhookConfiguration>> {
  return lookup(api, `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${segment(name)}`);
}

export function getService(api: KubeApi, namespace: string, name: string): Promise<Lookup<Service>> {
  return lookup(api, `/api/v1/namespaces/${segment(namespace)}/services/${segment(name)}`);
}

/** The EndpointSlices the endpoints controller keeps for a Service (by its `kubernetes.io/service-name` label). */
export function listServiceEndpointSlices(api: KubeApi, namespace: string, service: string): Promise<Listing<EndpointSlice>> {
  const selector = segment(`kubernetes.io/service-name=${service}`);
  return listing(api, `/apis/discovery.k8s.io/v1/namespaces/${segment(namespace)}/endpointslices?labelSelector=${selector}`);
}

export function getSecret(api: KubeApi, namespace: string, name: string): Promise<Lookup<Secret>> {
  return lookup(api, `/api/v1/namespaces/${segment(namespace)}/secrets/${segment(name)}`);
}

export function listNamespaces(api: KubeApi): Promise<Listing<Namespace>> {
  return listing(api, '/api/v1/namespaces');
}

/** A server-side dry-run create of the probe pod: what the admission chain (our webhook included) made of it. */
export async function createDryRunPod(api: KubeApi, namespace: string): Promise<DryRunOutcome> {
  try {
    const reply = await api.request('POST', `/api/v1/namespaces/${segment(namespace)}/pods?dryRun=All`, probePod());
    return reply.status === 200 || reply.status === 201
      ? { namespace, status: reply.status, pod: reply.body as Pod, warnings: reply.warnings }
      : { namespace, status: reply.status, message: replyMessage(reply), warnings: reply.warnings };
  } catch (err) {
    return { namespace, error: errorLine(err) };
  }
}

/** A strategic merge patch of an apps/v1 workload (`resource`: deployments, statefulsets, daemonsets). */
export function patchAppsWorkload(api: KubeApi, resource: string, namespace: string, name: string, patch: unknown): Promise<ApiReply> {
  const path = `/apis/apps/v1/namespaces/${segment(namespace)}/${resource}/${segment(name)}`;
  return api.request('PATCH', path, patch, { contentType: 'application/strategic-merge-patch+json' });
}
