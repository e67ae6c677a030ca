/**
 * A stand-in for kube-apiserver covering exactly what self-managed certificates use, with the API server's rules
 * for them: Secrets (get, create with 409 AlreadyExists, merge patch whose metadata.resourceVersion is a
 * precondition with 409 Conflict, delete, watch by fieldSelector metadata.name with resourceVersion replay) and one
 * MutatingWebhookConfiguration (get, JSON patch with `test` operations answering 422 when one fails). Plain HTTP on
 * 127.0.0.1:0, so the adapters run through client-node's real request, patch and watch code.
 * `self-managed.cluster.test.ts` checks the same against a real API server where one is available.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import fastJsonPatch, { type Operation } from 'fast-json-patch';

type Json = Record<string, unknown>;

interface SecretEvent {
  rv: number;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  object: Json;
}

export class FakeCertificateApiServer {
  private readonly server: Server;
  private rv = 1000;
  readonly secrets = new Map<string, Json>();
  private readonly events: SecretEvent[] = [];
  private readonly watchers = new Set<{ res: ServerResponse; name: string | undefined; namespace: string }>();
  webhookConfiguration: Json | undefined;
  /** Every request, as `METHOD path?query content-type`. */
  readonly requests: string[] = [];
  port = 0;

  constructor() {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => this.handle(req, res, Buffer.concat(chunks).toString('utf8')));
    });
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  kubeConfig(): KubeConfig {
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromClusterAndUser({ name: 'fake', server: `http://127.0.0.1:${this.port}`, skipTLSVerify: true }, { name: 'fake' });
    return kubeConfig;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  count(prefix: string): number {
    return this.requests.filter((r) => r.startsWith(prefix)).length;
  }

  dropWatches(): void {
    for (const watcher of this.watchers) watcher.res.socket?.destroy();
    this.watchers.clear();
  }

  /** Forgets old events, as etcd compaction does: a watch from an older resourceVersion gets 410 Gone. */
  compact(): void {
    this.events.splice(0);
  }

  secretData(namespace: string, name: string): Record<string, string> | undefined {
    const secret = this.secrets.get(`${namespace}/${name}`);
    if (secret === undefined) return undefined;
    const data = (secret.data ?? {}) as Record<string, string>;
    return Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
  }

  /** A write by someone else (another replica, kubectl). */
  putSecret(namespace: string, name: string, secret: Json): void {
    const key = `${namespace}/${name}`;
    const existed = this.secrets.has(key);
    const stored = this.stamp({ ...secret, metadata: { ...(secret.metadata as Json), name, namespace } });
    this.secrets.set(key, stored);
    this.emit(existed ? 'MODIFIED' : 'ADDED', stored);
  }

  deleteSecret(namespace: string, name: string): void {
    const key = `${namespace}/${name}`;
    const secret = this.secrets.get(key);
    if (secret === undefined) return;
    this.secrets.delete(key);
    this.emit('DELETED', this.stamp(secret));
  }

  private stamp(object: Json): Json {
    return { ...object, metadata: { ...(object.metadata as Json), resourceVersion: String(++this.rv) } };
  }

  private emit(type: SecretEvent['type'], object: Json): void {
    const event = { rv: this.rv, type, object };
    this.events.push(event);
    const metadata = object.metadata as { name: string; namespace: string };
    for (const watcher of this.watchers) {
      if (watcher.namespace !== metadata.namespace) continue;
      if (watcher.name !== undefined && watcher.name !== metadata.name) continue;
      watcher.res.write(`${JSON.stringify({ type, object })}\n`);
    }
  }

  private json(res: ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  }

  private status(res: ServerResponse, code: number, reason: string, message: string): void {
    this.json(res, code, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code });
  }

  private handle(req: IncomingMessage, res: ServerResponse, body: string): void {
    const url = new URL(req.url ?? '/', 'http://fake');
    const contentType = req.headers['content-type'] ?? '';
    this.requests.push(`${req.method ?? ''} ${url.pathname}${url.search} ${contentType}`.trim());
    if (this.clusterFacts(req, res, url)) return;
    const collection = /^\/api\/v1\/namespaces\/([^/]+)\/secrets$/.exec(url.pathname);
    if (collection !== null) {
      const namespace = decodeURIComponent(collection[1] ?? '');
      if (req.method === 'GET' && url.searchParams.get('watch') === 'true') {
        this.watch(res, namespace, url.searchParams);
        return;
      }
      if (req.method === 'POST') {
        const secret = JSON.parse(body) as Json;
        const name = (secret.metadata as Json | undefined)?.name as string;
        if (this.secrets.has(`${namespace}/${name}`)) {
          this.status(res, 409, 'AlreadyExists', `secrets "${name}" already exists`);
          return;
        }
        this.putSecret(namespace, name, secret);
        this.json(res, 201, this.secrets.get(`${namespace}/${name}`));
        return;
      }
    }
    const one = /^\/api\/v1\/namespaces\/([^/]+)\/secrets\/([^/]+)$/.exec(url.pathname);
    if (one !== null) {
      const key = `${decodeURIComponent(one[1] ?? '')}/${decodeURIComponent(one[2] ?? '')}`;
      const current = this.secrets.get(key);
      if (current === undefined) {
        this.status(res, 404, 'NotFound', `secrets "${one[2] ?? ''}" not found`);
        return;
      }
      if (req.method === 'GET') {
        this.json(res, 200, current);
        return;
      }
      if (req.method === 'PATCH') {
        if (!contentType.startsWith('application/merge-patch+json')) {
          this.status(res, 415, 'UnsupportedMediaType', `unexpected patch type ${contentType}`);
          return;
        }
        const patch = JSON.parse(body) as Json;
        const wanted = (patch.metadata as Json | undefined)?.resourceVersion;
        const currentVersion = (current.metadata as Json).resourceVersion;
        if (wanted !== undefined && wanted !== currentVersion) {
          this.status(res, 409, 'Conflict', 'Operation cannot be fulfilled on secrets: the object has been modified');
          return;
        }
        const merged = mergePatch(current, patch) as Json;
        const [namespace, name] = key.split('/') as [string, string];
        this.putSecret(namespace, name, merged);
        this.json(res, 200, this.secrets.get(key));
        return;
      }
    }
    const webhook = /^\/apis\/admissionregistration\.k8s\.io\/v1\/mutatingwebhookconfigurations\/([^/]+)$/.exec(url.pathname);
    if (webhook !== null) {
      const config = this.webhookConfiguration;
      const name = decodeURIComponent(webhook[1] ?? '');
      if (config === undefined || (config.metadata as Json).name !== name) {
        this.status(res, 404, 'NotFound', `mutatingwebhookconfigurations "${name}" not found`);
        return;
      }
      if (req.method === 'GET') {
        this.json(res, 200, config);
        return;
      }
      if (req.method === 'PATCH') {
        if (!contentType.startsWith('application/json-patch+json')) {
          this.status(res, 415, 'UnsupportedMediaType', `unexpected patch type ${contentType}`);
          return;
        }
        try {
          const patched = fastJsonPatch.applyPatch(structuredClone(config), JSON.parse(body) as Operation[], true, false).newDocument;
          this.webhookConfiguration = this.stamp(patched);
        } catch (err) {
          this.status(res, 422, 'Invalid', `the server rejected our request: ${err instanceof Error ? err.message : String(err)}`);
          return;
        }
        this.json(res, 200, this.webhookConfiguration);
        return;
      }
    }
    this.status(res, 404, 'NotFound', 'the server could not find the requested resource');
  }

  /**
   * Just enough for `serve`'s cluster facts to start and sync when the process runs against this fake: the
   * version, and empty lists and quiet watches of namespaces and nodes.
   */
  private clusterFacts(req: IncomingMessage, res: ServerResponse, url: URL): boolean {
    if (req.method !== 'GET') return false;
    if (url.pathname === '/version') {
      this.json(res, 200, { major: '1', minor: '33', gitVersion: 'v1.33.1', platform: 'linux/amd64' });
      return true;
    }
    const kind = /^\/api\/v1\/(namespaces|nodes)$/.exec(url.pathname)?.[1];
    if (kind === undefined) return false;
    if (url.searchParams.get('watch') === 'true') {
      res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
      res.flushHeaders();
      return true;
    }
    this.json(res, 200, {
      apiVersion: 'v1',
      kind: kind === 'namespaces' ? 'NamespaceList' : 'NodeList',
      metadata: { resourceVersion: String(this.rv) },
      items: [],
    });
    return true;
  }

  private watch(res: ServerResponse, namespace: string, query: URLSearchParams): void {
    const selector = query.get('fieldSelector') ?? '';
    const match = /^metadata\.name=(.+)$/.exec(selector);
    const name = match?.[1];
    const from = query.get('resourceVersion');
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    const relevant = (event: SecretEvent): boolean => {
      const metadata = event.object.metadata as { name: string; namespace: string };
      return metadata.namespace === namespace && (name === undefined || metadata.name === name);
    };
    if (from === null || from === '' || from === '0') {
      // No resourceVersion: the current state as synthetic ADDED events, then changes.
      for (const secret of this.secrets.values()) {
        const event: SecretEvent = { rv: this.rv, type: 'ADDED', object: secret };
        if (relevant(event)) res.write(`${JSON.stringify({ type: 'ADDED', object: secret })}\n`);
      }
    } else {
      const since = Number(from);
      const oldest = this.events[0]?.rv;
      if (since < this.rv && (oldest === undefined || since < oldest - 1)) {
        const status = { kind: 'Status', apiVersion: 'v1', status: 'Failure', code: 410, reason: 'Expired', message: 'too old resource version' };
        res.end(`${JSON.stringify({ type: 'ERROR', object: status })}\n`);
        return;
      }
      for (const event of this.events) {
        if (event.rv > since && relevant(event)) res.write(`${JSON.stringify({ type: event.type, object: event.object })}\n`);
      }
    }
    const watcher = { res, name, namespace };
    this.watchers.add(watcher);
    res.on('close', () => this.watchers.delete(watcher));
  }
}

/** RFC 7386 JSON merge patch. */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return patch;
  const out: Json = typeof target === 'object' && target !== null && !Array.isArray(target) ? { ...(target as Json) } : {};
  for (const [key, value] of Object.entries(patch as Json)) {
    if (value === null) delete out[key];
    else out[key] = mergePatch(out[key], value);
  }
  return out;
}
