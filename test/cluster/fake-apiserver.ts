/**
 * A tiny stand-in for kube-apiserver, just enough for the informer glue: `/version`, list and watch of
 * namespaces and nodes (watch events replayed from the requested resourceVersion), and reading one namespace.
 * Plain HTTP on 127.0.0.1:0. It proves the glue against the client library's real HTTP, list and watch code;
 * `cluster-facts.cluster.test.ts` does the same against a real API server where one is available.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Kind = 'namespaces' | 'nodes';

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

export class FakeApiServer {
  private readonly server: Server;
  private rv = 100;
  private readonly objects: Record<Kind, Map<string, Record<string, unknown>>> = { namespaces: new Map(), nodes: new Map() };
  private readonly events: Record<Kind, StoredEvent[]> = { namespaces: [], nodes: [] };
  private readonly watchers: Record<Kind, Set<ServerResponse>> = { namespaces: new Set(), nodes: new Set() };
  /** Every request, as `METHOD path?query`. */
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

  constructor() {
    this.server = createServer((req, res) => this.handle(req, res));
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
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

  private json(res: ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  }

  private status(res: ServerResponse, code: number, reason: string, message: string): void {
    this.json(res, code, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code });
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://fake');
    this.requests.push(`${req.method ?? ''} ${url.pathname}${url.search}`);
    const path = url.pathname;
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

  /** Adds an object without telling the watches: a namespace the webhook's cache cannot know yet. */
  putUnwatched(input: ObjectInput): void {
    this.objects.namespaces.set(input.name, {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: input.name, resourceVersion: String(++this.rv), labels: { 'kubernetes.io/metadata.name': input.name, ...input.labels } },
    });
  }
}
