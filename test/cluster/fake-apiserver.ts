/**
 * A tiny stand-in for kube-apiserver, just enough for the informer glue: `/version`, list and watch of
 * namespaces and nodes (watch events replayed from the requested resourceVersion), and reading one namespace.
 * Plain HTTP on 127.0.0.1:0. It proves the glue against the client library's real HTTP, list and watch code;
 * `cluster-facts.cluster.test.ts` does the same against a real API server where one is available.
 *
 * For the missed-pods audit, `check` and `repair` it also serves pods: lists paged with `limit`/`continue`,
 * filtered by an equality label selector, as PartialObjectMetadataList when the Accept header asks for it; single
 * objects by path (`putObject`: ReplicaSets, Deployments, Jobs, ConfigMaps, a webhook configuration…), PATCH of
 * those (recorded, merged), and a dry-run pod create that a test-supplied webhook may mutate.
 *
 * For self-managed certificates it follows the API server's rules: Secrets (get, create with 409 AlreadyExists,
 * merge patch whose metadata.resourceVersion is a precondition with 409 Conflict, watch by fieldSelector
 * metadata.name with resourceVersion replay and 410 after `compact`) and one `webhookConfiguration` (get, JSON
 * patch with `test` operations answering 422 when one fails). `self-managed.cluster.test.ts` checks the same
 * against a real API server where one is available. An object put by path (`putObject`) wins over both.
 *
 * With `tls`, it serves HTTPS and asks for client certificates, as a real API server does, and records each
 * caller's credentials (`callers`): the check-api adapter is tested through it with a token and a client cert.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import fastJsonPatch, { type Operation } from 'fast-json-patch';

type Json = Record<string, unknown>;

export type Kind = 'namespaces' | 'nodes';

interface SecretWatcher {
  res: ServerResponse;
  name: string | undefined;
  namespace: string;
}

interface StoredEvent {
  rv: number;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  object: Record<string, unknown>;
}

export interface ObjectInput {
  name: string;
  labels?: Record<string, string>;
  kubeletVersion?: string;
}

/** HTTPS with client certificates asked for (not required: a token works too), as a real API server serves. */
export interface FakeApiServerTls {
  cert: string;
  key: string;
  /** CAs whose client certificates the server accepts. */
  clientCa: string[];
}

/** Who called: the method and path, and the credentials the client presented. */
export interface FakeApiCaller {
  method: string;
  path: string;
  authorization?: string | undefined;
  /** The CN of the client certificate, over HTTPS. */
  clientCn?: string | undefined;
}

export class FakeApiServer {
  private readonly server: Server;
  private rv = 100;
  private readonly objects: Record<Kind, Map<string, Record<string, unknown>>> = { namespaces: new Map(), nodes: new Map() };
  private readonly events: Record<Kind, StoredEvent[]> = { namespaces: [], nodes: [] };
  private readonly watchers: Record<Kind, Set<ServerResponse>> = { namespaces: new Set(), nodes: new Set() };
  /** Secrets, by `namespace/name`. */
  readonly secrets = new Map<string, Json>();
  private secretEvents: StoredEvent[] = [];
  private readonly secretWatchers = new Set<SecretWatcher>();
  /** The MutatingWebhookConfiguration self-managed certificates patch (JSON patch only). */
  webhookConfiguration: Json | undefined;
  /** Every request, as `METHOD path?query` (a PATCH adds its content type). */
  readonly requests: string[] = [];
  /** `/version` answers 500 while this is above 0 (counting down). */
  failVersion = 0;
  /** List requests of a kind answer 500 while above 0 (counting down). */
  failLists: Record<Kind, number> = { namespaces: 0, nodes: 0 };
  /** Reads of single namespaces answer 403. */
  forbidNamespaceReads = false;
  /** Reads of single namespaces answer after this delay. */
  namespaceReadDelayMs = 0;
  gitVersion = 'v1.33.1';
  port = 0;
  /** Pods, by `namespace/name`. */
  readonly pods = new Map<string, Record<string, unknown>>();
  /** Other objects by API path (`/apis/apps/v1/namespaces/shop/deployments/web`). */
  readonly objects2 = new Map<string, Record<string, unknown>>();
  /** Every PATCH: path, content type and body. */
  readonly patches: { path: string; contentType: string; body: unknown }[] = [];
  /** Pod lists answer 403, as RBAC without `list pods` does. */
  forbidPodLists = false;
  /** Patches answer 403. */
  forbidPatches = false;
  /** What the admission chain does to a dry-run pod (undefined: nothing, as a webhook that failed open). */
  webhook: ((pod: Record<string, unknown>, namespace: string) => Record<string, unknown>) | undefined;
  /** Bytes of response bodies sent, for the bench. */
  bytesSent = 0;

  /** Every caller, in order, with its credentials. */
  readonly callers: FakeApiCaller[] = [];
  /** Warnings the admission chain adds to a dry-run pod create (sent as `Warning: 299` headers). */
  dryRunWarnings: string[] = [];
  private readonly tls: boolean;

  constructor(options: { tls?: FakeApiServerTls } = {}) {
    const handler = (req: IncomingMessage, res: ServerResponse): void => this.handle(req, res);
    const tls = options.tls;
    this.tls = tls !== undefined;
    this.server =
      tls === undefined
        ? createServer(handler)
        : createHttpsServer({ cert: tls.cert, key: tls.key, ca: tls.clientCa, requestCert: true, rejectUnauthorized: false }, handler);
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  get url(): string {
    return `${this.tls ? 'https' : 'http'}://127.0.0.1:${this.port}`;
  }

  /** A KubeConfig for client-node pointing here. */
  kubeConfig(): KubeConfig {
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromClusterAndUser({ name: 'fake', server: this.url, skipTLSVerify: true }, { name: 'fake' });
    return kubeConfig;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  count(prefix: string): number {
    return this.requests.filter((r) => r.startsWith(prefix)).length;
  }

  /** Cuts every open watch, as a restarted API server or a broken connection would. */
  dropWatches(): void {
    for (const set of Object.values(this.watchers)) {
      for (const res of set) res.socket?.destroy();
      set.clear();
    }
    for (const watcher of this.secretWatchers) watcher.res.socket?.destroy();
    this.secretWatchers.clear();
  }

  /** Forgets old Secret events, as etcd compaction does: a watch from an older resourceVersion gets 410 Gone. */
  compact(): void {
    this.secretEvents = [];
  }

  put(kind: Kind, input: ObjectInput): void {
    const existed = this.objects[kind].has(input.name);
    const rv = ++this.rv;
    const object: Record<string, unknown> = {
      apiVersion: 'v1',
      kind: kind === 'namespaces' ? 'Namespace' : 'Node',
      metadata: {
        name: input.name,
        resourceVersion: String(rv),
        uid: `uid-${input.name}`,
        labels: { 'kubernetes.io/metadata.name': input.name, ...input.labels },
      },
      ...(kind === 'nodes'
        ? {
            status: {
              images: [{ names: ['registry.k8s.io/pause:3.10'], sizeBytes: 320_000 }],
              ...(input.kubeletVersion === undefined
                ? {}
                : {
                    nodeInfo: {
                      kubeletVersion: input.kubeletVersion,
                      architecture: 'amd64',
                      bootID: 'b',
                      containerRuntimeVersion: 'containerd://2.0.0',
                      kernelVersion: '6.1.0',
                      kubeProxyVersion: input.kubeletVersion,
                      machineID: 'm',
                      operatingSystem: 'linux',
                      osImage: 'Debian GNU/Linux 12',
                      systemUUID: 's',
                    },
                  }),
            },
          }
        : { status: { phase: 'Active' } }),
    };
    this.objects[kind].set(input.name, object);
    this.emit(kind, { rv, type: existed ? 'MODIFIED' : 'ADDED', object });
  }

  remove(kind: Kind, name: string): void {
    const object = this.objects[kind].get(name);
    if (object === undefined) return;
    this.objects[kind].delete(name);
    const rv = ++this.rv;
    const metadata = { ...(object.metadata as Record<string, unknown>), resourceVersion: String(rv) };
    this.emit(kind, { rv, type: 'DELETED', object: { ...object, metadata } });
  }

  private emit(kind: Kind, event: StoredEvent): void {
    this.events[kind].push(event);
    for (const res of this.watchers[kind]) res.write(`${JSON.stringify({ type: event.type, object: event.object })}\n`);
  }

  private json(res: ServerResponse, status: number, body: unknown, warnings: readonly string[] = []): void {
    const text = JSON.stringify(body);
    this.bytesSent += Buffer.byteLength(text);
    // As the API server sends them: one header per warning, quotes and backslashes escaped.
    const warning = warnings.map((w) => `299 - "${w.replace(/["\\]/g, (c) => `\\${c}`)}"`);
    if (warning.length > 0) res.setHeader('warning', warning);
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(text);
  }

  putPod(pod: Record<string, unknown>): void {
    const metadata = pod.metadata as { name: string; namespace: string };
    this.pods.set(`${metadata.namespace}/${metadata.name}`, pod);
  }

  putObject(path: string, object: Record<string, unknown>): void {
    this.objects2.set(path, object);
  }

  private podList(req: IncomingMessage, res: ServerResponse, url: URL, namespace: string | undefined): void {
    if (this.forbidPodLists) {
      const scope = namespace === undefined ? 'at the cluster scope' : `in the namespace "${namespace}"`;
      this.status(res, 403, 'Forbidden', `pods is forbidden: User "jane" cannot list resource "pods" in API group "" ${scope}`);
      return;
    }
    const selector = url.searchParams.get('labelSelector') ?? '';
    const matching = [...this.pods.entries()]
      .filter(([key]) => namespace === undefined || key.startsWith(`${namespace}/`))
      .filter(([, pod]) => matchesSelector(selector, ((pod.metadata as { labels?: Record<string, string> }).labels) ?? {}))
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([, pod]) => pod);
    const limit = Number(url.searchParams.get('limit') ?? '0') || matching.length;
    const offset = Number(Buffer.from(url.searchParams.get('continue') ?? '', 'base64').toString() || '0');
    const page = matching.slice(offset, offset + limit);
    const next = offset + limit < matching.length ? Buffer.from(String(offset + limit)).toString('base64') : undefined;
    const metadataOnly = (req.headers.accept ?? '').includes('as=PartialObjectMetadataList');
    this.json(res, 200, {
      apiVersion: metadataOnly ? 'meta.k8s.io/v1' : 'v1',
      kind: metadataOnly ? 'PartialObjectMetadataList' : 'PodList',
      metadata: { resourceVersion: String(this.rv), ...(next === undefined ? {} : { continue: next }) },
      items: metadataOnly ? page.map((p) => ({ apiVersion: 'meta.k8s.io/v1', kind: 'PartialObjectMetadata', metadata: p.metadata })) : page,
    });
  }

  private async readBody(req: IncomingMessage): Promise<unknown> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    return JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null');
  }

  /** Pods, single objects, patches and dry-run creates; false when the path is none of those. */
  private handleObjects(req: IncomingMessage, res: ServerResponse, url: URL): boolean {
    const path = url.pathname;
    if (req.method === 'GET' && path === '/api/v1/pods') {
      this.podList(req, res, url, undefined);
      return true;
    }
    const pods = /^\/api\/v1\/namespaces\/([^/]+)\/pods$/.exec(path);
    if (pods !== null && req.method === 'GET') {
      this.podList(req, res, url, decodeURIComponent(pods[1] ?? ''));
      return true;
    }
    if (pods !== null && req.method === 'POST') {
      const namespace = decodeURIComponent(pods[1] ?? '');
      void this.readBody(req).then((body) => {
        const pod = { ...(body as Record<string, unknown>) };
        const metadata = { ...(pod.metadata as Record<string, unknown>), namespace, name: `${String((pod.metadata as { generateName?: string }).generateName ?? 'pod-')}dry` };
        const created = { ...pod, metadata };
        this.json(res, 201, this.webhook === undefined ? created : this.webhook(created, namespace), this.dryRunWarnings);
      });
      return true;
    }
    const pod = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)$/.exec(path);
    if (pod !== null && req.method === 'GET') {
      const found = this.pods.get(`${decodeURIComponent(pod[1] ?? '')}/${decodeURIComponent(pod[2] ?? '')}`);
      if (found === undefined) this.status(res, 404, 'NotFound', `pods "${pod[2] ?? ''}" not found`);
      else this.json(res, 200, found);
      return true;
    }
    const object = this.objects2.get(path);
    if (object === undefined) {
      const objectPath = path.startsWith('/apis/') || /^\/api\/v1\/namespaces\/[^/]+\/[^/]+\/[^/]+$/.test(path);
      if (objectPath && (req.method === 'GET' || req.method === 'PATCH')) {
        this.status(res, 404, 'NotFound', `${path.split('/').at(-2) ?? ''} "${path.split('/').at(-1) ?? ''}" not found`);
        return true;
      }
      return false;
    }
    if (req.method === 'GET') {
      const metadataOnly = (req.headers.accept ?? '').includes('as=PartialObjectMetadata');
      this.json(res, 200, metadataOnly ? { apiVersion: 'meta.k8s.io/v1', kind: 'PartialObjectMetadata', metadata: object.metadata } : object);
      return true;
    }
    if (req.method === 'PATCH') {
      void this.readBody(req).then((body) => {
        if (this.forbidPatches) {
          this.status(res, 403, 'Forbidden', `User "jane" cannot patch resource at ${path}`);
          return;
        }
        this.patches.push({ path, contentType: req.headers['content-type'] ?? '', body });
        const merged = mergePatch(object, body);
        this.objects2.set(path, merged);
        this.json(res, 200, merged);
      });
      return true;
    }
    return false;
  }

  private status(res: ServerResponse, code: number, reason: string, message: string): void {
    this.json(res, code, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code });
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://fake');
    const patchType = req.method === 'PATCH' ? ` ${req.headers['content-type'] ?? ''}` : '';
    this.requests.push(`${req.method ?? ''} ${url.pathname}${url.search}${patchType}`);
    const socket = req.socket as Partial<TLSSocket>;
    const cn = this.tls ? socket.getPeerCertificate?.().subject?.CN : undefined;
    const clientCn = cn === undefined ? undefined : String(cn);
    this.callers.push({ method: req.method ?? '', path: `${url.pathname}${url.search}`, authorization: req.headers.authorization, clientCn });
    const path = url.pathname;
    if (!this.objects2.has(path) && this.handleCertificates(req, res, url)) return;
    if (this.handleObjects(req, res, url)) return;
    if (path === '/version') {
      if (this.failVersion > 0) {
        this.failVersion -= 1;
        this.status(res, 500, 'InternalError', 'version unavailable');
        return;
      }
      const [, minor] = /^v1\.(\d+)/.exec(this.gitVersion) ?? [];
      this.json(res, 200, {
        major: '1',
        minor: `${minor ?? '0'}+`,
        gitVersion: this.gitVersion,
        gitCommit: 'c',
        gitTreeState: 'clean',
        buildDate: '2026-01-01T00:00:00Z',
        goVersion: 'go1.24',
        compiler: 'gc',
        platform: 'linux/amd64',
      });
      return;
    }
    const collection = /^\/api\/v1\/(namespaces|nodes)$/.exec(path);
    if (collection !== null) {
      const kind = collection[1] as Kind;
      if (url.searchParams.get('watch') === 'true') {
        const from = Number(url.searchParams.get('resourceVersion') ?? '0');
        res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
        res.flushHeaders();
        for (const event of this.events[kind]) {
          if (event.rv > from) res.write(`${JSON.stringify({ type: event.type, object: event.object })}\n`);
        }
        this.watchers[kind].add(res);
        res.on('close', () => this.watchers[kind].delete(res));
        return;
      }
      if (this.failLists[kind] > 0) {
        this.failLists[kind] -= 1;
        this.status(res, 500, 'InternalError', `cannot list ${kind} right now`);
        return;
      }
      this.json(res, 200, {
        apiVersion: 'v1',
        kind: kind === 'namespaces' ? 'NamespaceList' : 'NodeList',
        metadata: { resourceVersion: String(this.rv) },
        items: [...this.objects[kind].values()],
      });
      return;
    }
    const one = /^\/api\/v1\/namespaces\/([^/]+)$/.exec(path);
    if (one !== null) {
      const name = decodeURIComponent(one[1] ?? '');
      const answer = (): void => {
        if (this.forbidNamespaceReads) {
          this.status(res, 403, 'Forbidden', `namespaces "${name}" is forbidden: User "system:serviceaccount:sidecar-injector:sidecar-injector" cannot get resource "namespaces"`);
          return;
        }
        const object = this.objects.namespaces.get(name);
        if (object === undefined) this.status(res, 404, 'NotFound', `namespaces "${name}" not found`);
        else this.json(res, 200, object);
      };
      if (this.namespaceReadDelayMs > 0) setTimeout(answer, this.namespaceReadDelayMs);
      else answer();
      return;
    }
    this.status(res, 404, 'NotFound', 'the server could not find the requested resource');
  }

  // -------------------------------------------------------------------------------------------------------------
  // Self-managed certificates: Secrets and the webhook configuration's JSON patch.

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
    this.emitSecret(existed ? 'MODIFIED' : 'ADDED', stored);
  }

  deleteSecret(namespace: string, name: string): void {
    const key = `${namespace}/${name}`;
    const secret = this.secrets.get(key);
    if (secret === undefined) return;
    this.secrets.delete(key);
    this.emitSecret('DELETED', this.stamp(secret));
  }

  private stamp(object: Json): Json {
    return { ...object, metadata: { ...(object.metadata as Json), resourceVersion: String(++this.rv) } };
  }

  private emitSecret(type: StoredEvent['type'], object: Json): void {
    this.secretEvents.push({ rv: this.rv, type, object });
    const metadata = object.metadata as { name: string; namespace: string };
    for (const watcher of this.secretWatchers) {
      if (watcher.namespace !== metadata.namespace) continue;
      if (watcher.name !== undefined && watcher.name !== metadata.name) continue;
      watcher.res.write(`${JSON.stringify({ type, object })}\n`);
    }
  }

  /** Secrets and the webhook configuration; false when the path is neither (or the configuration is not set). */
  private handleCertificates(req: IncomingMessage, res: ServerResponse, url: URL): boolean {
    const collection = /^\/api\/v1\/namespaces\/([^/]+)\/secrets$/.exec(url.pathname);
    if (collection !== null && req.method === 'GET' && url.searchParams.get('watch') === 'true') {
      this.watchSecrets(res, decodeURIComponent(collection[1] ?? ''), url.searchParams);
      return true;
    }
    if (collection !== null && req.method === 'POST') {
      void this.readBody(req).then((body) => this.createSecret(res, decodeURIComponent(collection[1] ?? ''), body as Json));
      return true;
    }
    const one = /^\/api\/v1\/namespaces\/([^/]+)\/secrets\/([^/]+)$/.exec(url.pathname);
    if (one !== null && (req.method === 'GET' || req.method === 'PATCH')) {
      const key = `${decodeURIComponent(one[1] ?? '')}/${decodeURIComponent(one[2] ?? '')}`;
      if (req.method === 'GET') this.answerSecret(res, key, one[2] ?? '');
      else void this.readBody(req).then((body) => this.patchSecret(req, res, key, body as Json));
      return true;
    }
    const webhook = /^\/apis\/admissionregistration\.k8s\.io\/v1\/mutatingwebhookconfigurations\/([^/]+)$/.exec(url.pathname);
    if (webhook === null || this.webhookConfiguration === undefined || (req.method !== 'GET' && req.method !== 'PATCH')) return false;
    const name = decodeURIComponent(webhook[1] ?? '');
    if ((this.webhookConfiguration.metadata as Json).name !== name) {
      this.status(res, 404, 'NotFound', `mutatingwebhookconfigurations "${name}" not found`);
    } else if (req.method === 'GET') {
      this.json(res, 200, this.webhookConfiguration);
    } else {
      void this.readBody(req).then((body) => this.patchWebhookConfiguration(req, res, body));
    }
    return true;
  }

  private createSecret(res: ServerResponse, namespace: string, secret: Json): void {
    const name = (secret.metadata as Json | undefined)?.name as string;
    if (this.secrets.has(`${namespace}/${name}`)) {
      this.status(res, 409, 'AlreadyExists', `secrets "${name}" already exists`);
      return;
    }
    this.putSecret(namespace, name, secret);
    this.json(res, 201, this.secrets.get(`${namespace}/${name}`));
  }

  private answerSecret(res: ServerResponse, key: string, name: string): void {
    const current = this.secrets.get(key);
    if (current === undefined) this.status(res, 404, 'NotFound', `secrets "${name}" not found`);
    else this.json(res, 200, current);
  }

  private patchSecret(req: IncomingMessage, res: ServerResponse, key: string, patch: Json): void {
    const current = this.secrets.get(key);
    const contentType = req.headers['content-type'] ?? '';
    if (current === undefined) {
      this.status(res, 404, 'NotFound', `secrets "${key.split('/')[1] ?? ''}" not found`);
      return;
    }
    if (!contentType.startsWith('application/merge-patch+json')) {
      this.status(res, 415, 'UnsupportedMediaType', `unexpected patch type ${contentType}`);
      return;
    }
    const wanted = (patch.metadata as Json | undefined)?.resourceVersion;
    if (wanted !== undefined && wanted !== (current.metadata as Json).resourceVersion) {
      this.status(res, 409, 'Conflict', 'Operation cannot be fulfilled on secrets: the object has been modified');
      return;
    }
    const [namespace, name] = key.split('/') as [string, string];
    this.putSecret(namespace, name, mergePatch(current, patch));
    this.json(res, 200, this.secrets.get(key));
  }

  private patchWebhookConfiguration(req: IncomingMessage, res: ServerResponse, body: unknown): void {
    const contentType = req.headers['content-type'] ?? '';
    if (!contentType.startsWith('application/json-patch+json')) {
      this.status(res, 415, 'UnsupportedMediaType', `unexpected patch type ${contentType}`);
      return;
    }
    try {
      const patched = fastJsonPatch.applyPatch(structuredClone(this.webhookConfiguration), body as Operation[], true, false).newDocument;
      this.webhookConfiguration = this.stamp(patched as Json);
    } catch (err) {
      this.status(res, 422, 'Invalid', `the server rejected our request: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    this.json(res, 200, this.webhookConfiguration);
  }

  private watchSecrets(res: ServerResponse, namespace: string, query: URLSearchParams): void {
    const name = /^metadata\.name=(.+)$/.exec(query.get('fieldSelector') ?? '')?.[1];
    const from = query.get('resourceVersion');
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    const relevant = (object: Json): boolean => {
      const metadata = object.metadata as { name: string; namespace: string };
      return metadata.namespace === namespace && (name === undefined || metadata.name === name);
    };
    if (from === null || from === '' || from === '0') {
      // No resourceVersion: the current state as synthetic ADDED events, then changes.
      for (const secret of this.secrets.values()) {
        if (relevant(secret)) res.write(`${JSON.stringify({ type: 'ADDED', object: secret })}\n`);
      }
    } else {
      const since = Number(from);
      const oldest = this.secretEvents[0]?.rv;
      if (since < this.rv && (oldest === undefined || since < oldest - 1)) {
        const status = { kind: 'Status', apiVersion: 'v1', status: 'Failure', code: 410, reason: 'Expired', message: 'too old resource version' };
        res.end(`${JSON.stringify({ type: 'ERROR', object: status })}\n`);
        return;
      }
      for (const event of this.secretEvents) {
        if (event.rv > since && relevant(event.object)) res.write(`${JSON.stringify({ type: event.type, object: event.object })}\n`);
      }
    }
    const watcher = { res, name, namespace };
    this.secretWatchers.add(watcher);
    res.on('close', () => this.secretWatchers.delete(watcher));
  }

  /** Adds an object without telling the watches: a namespace the webhook's cache cannot know yet. */
  putUnwatched(input: ObjectInput): void {
    this.objects.namespaces.set(input.name, {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: input.name, resourceVersion: String(++this.rv), labels: { 'kubernetes.io/metadata.name': input.name, ...input.labels } },
    });
  }
}

/** Equality-based selectors only (`a=b,c!=d,e`), which is all the callers send. */
function matchesSelector(selector: string, labels: Record<string, string>): boolean {
  return selector
    .split(',')
    .filter((term) => term !== '')
    .every((term) => {
      const [key, value] = term.includes('!=') ? term.split('!=') : term.split('=');
      if (value === undefined) return key !== undefined && key in labels;
      return term.includes('!=') ? labels[key ?? ''] !== value : labels[key ?? ''] === value;
    });
}

/** RFC 7386 JSON merge patch (what a strategic merge patch of maps amounts to); a patch that is no object leaves the target. */
function mergePatch(target: Json, patch: unknown): Json {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return target;
  const out: Json = { ...target };
  for (const [key, value] of Object.entries(patch as Json)) {
    if (value === null) delete out[key];
    else if (typeof value === 'object' && !Array.isArray(value)) {
      const current = out[key];
      out[key] = mergePatch(typeof current === 'object' && current !== null && !Array.isArray(current) ? (current as Json) : {}, value);
    } else out[key] = value;
  }
  return out;
}
