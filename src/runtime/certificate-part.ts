/**
 * The certificate source: the one owner of the serving pair in force. The HTTPS server is handed to it as it is
 * built (ListenerOptions.certificates); from then on only this part calls `setSecureContext`, for the first pair
 * and for every rotation. New handshakes get the new pair, open connections keep theirs.
 *
 * Two kinds: PEM files (cert-manager's Secret volume, `make certs`), read at start and watched; or self-managed,
 * a CA and serving certificate kept in a Secret (got or created before listening, renewed, watched).
 */
import type { FastifyBaseLogger } from 'fastify';
import { readFile } from 'node:fs/promises';
import type { Registry } from 'prom-client';
import type { KubeConfig } from '@kubernetes/client-node';
import type { EnsureOutcome } from '../cluster/certificate-secret.js';
import type { SelfManagedDeps } from '../cluster/self-managed.js';
import { errorLine } from '../error-line.js';
import type { CertificateMetrics } from '../tls/metrics.js';
import { checkPair, type TlsPair } from '../tls/pair.js';
import type { CertificateSwitch, CertificateWatchOptions, SecureContextTarget } from '../tls/reload.js';
import type { Part } from './part.js';

export type CertificateSpec =
  /** `watch`: the watcher's timings (tests). */
  | { kind: 'files'; cert: string; key: string; watch?: CertificateWatchOptions }
  /** A pair held in memory, never rotated (tests). */
  | { kind: 'pair'; pair: TlsPair }
  | { kind: 'self-managed'; namespace: string; secretName: string; webhookConfigName: string; service: string };

export interface CertificateSource extends Part {
  /** For ListenerOptions.certificates: the server as it is built. */
  attach(server: SecureContextTarget): void;
}

/** What the source needs once it starts (the logger and registry exist only once the listeners are built). */
export interface CertificateSourceDeps {
  log: FastifyBaseLogger;
  registry: Registry;
  /** Cluster access, for self-managed certificates. */
  kubeConfig: KubeConfig | undefined;
}

export function certificateSource(spec: CertificateSpec, deps: () => CertificateSourceDeps): CertificateSource {
  let log: FastifyBaseLogger | undefined;
  let server: SecureContextTarget | undefined;
  let certificates: CertificateSwitch | undefined;
  let stopWatching = (): void => {};
  let check: () => Promise<void> = () => Promise.resolve();

  const switchFor = async (initial: TlsPair, metrics: CertificateMetrics): Promise<CertificateSwitch> => {
    const { createCertificateSwitch } = await import('../tls/reload.js');
    const made = createCertificateSwitch({ initial, log: log ?? deps().log, metrics });
    if (server !== undefined) made.attach(server);
    return made;
  };

  return {
    name: 'certificates',
    attach(target) {
      server = target;
      certificates?.attach(target);
    },
    async start() {
      const { registerCertificateMetrics } = await import('../tls/metrics.js');
      const { registry, kubeConfig } = deps();
      log = deps().log.child({ component: 'tls' });
      const metrics = registerCertificateMetrics(registry);
      if (spec.kind === 'pair') {
        certificates = await switchFor(spec.pair, metrics);
        return;
      }
      if (spec.kind === 'files') {
        const initial = await readPair(spec);
        certificates = await switchFor(initial, metrics);
        const { watchCertificateFiles } = await import('../tls/reload.js');
        const watcher = watchCertificateFiles({ cert: spec.cert, key: spec.key }, certificates, spec.watch);
        stopWatching = () => watcher.close();
        check = () => watcher.check();
        return;
      }
      const started = await startSelfManaged(spec, kubeConfig, log);
      certificates = await switchFor(started.initialPair, metrics);
      const controller = started.run(certificates);
      stopWatching = () => controller.close();
      check = () => controller.reconcile();
    },
    ready: () => certificates !== undefined,
    async close() {
      stopWatching();
    },
    async reload() {
      await check().catch(() => undefined);
    },
  };
}

async function readPem(flag: string, path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(`cannot read ${flag} ${path}: ${code ?? errorLine(err)}`);
  }
}

/** The pair from the files, checked up front so the message names the file rather than an OpenSSL code. */
async function readPair(files: { cert: string; key: string }): Promise<TlsPair> {
  const pair = { cert: await readPem('--tls-cert', files.cert), key: await readPem('--tls-key', files.key) };
  const problem = tlsPairProblem(pair, files);
  if (problem !== undefined) throw new Error(problem);
  return pair;
}

export function tlsPairProblem(pair: TlsPair, files: { cert: string; key: string }): string | undefined {
  const checked = checkPair(pair);
  if (checked.ok) return undefined;
  switch (checked.part) {
    case 'certificate':
      return `--tls-cert ${files.cert} is not a PEM certificate (${checked.detail})`;
    case 'key':
      return `--tls-key ${files.key} is not a PEM private key (${checked.detail})`;
    case 'match':
      return `--tls-key ${files.key} does not belong to the certificate in --tls-cert ${files.cert}`;
  }
}

interface SelfManagedStart {
  initialPair: TlsPair;
  run(certificates: CertificateSwitch): { reconcile(): Promise<void>; close(): void };
}

/**
 * Reads or creates (and renews if due) the Secret before listening, so the server never listens, and /readyz
 * never answers, without a certificate in force.
 */
async function startSelfManaged(
  spec: Extract<CertificateSpec, { kind: 'self-managed' }>,
  kubeConfig: KubeConfig | undefined,
  log: FastifyBaseLogger,
): Promise<SelfManagedStart> {
  if (kubeConfig === undefined) throw new Error('--self-managed-certs needs cluster access');
  const { bootstrapCertificates, connectSelfManagedCertificates, runSelfManagedCertificates } = await import('../cluster/self-managed.js');
  let deps: SelfManagedDeps;
  let initial: EnsureOutcome;
  try {
    deps = await connectSelfManagedCertificates({ kubeConfig, ...spec });
    initial = await bootstrapCertificates(deps);
  } catch (err) {
    throw new Error(`cannot get or create the certificate Secret ${spec.namespace}/${spec.secretName}: ${errorLine(err)}`);
  }
  log.info({ secret: `${spec.namespace}/${spec.secretName}`, action: initial.action, reason: initial.reason }, 'self-managed certificates');
  return {
    initialPair: { cert: initial.stored.tlsCert ?? '', key: initial.stored.tlsKey ?? '' },
    run: (certificates) => runSelfManagedCertificates({ ...deps, initial, log, certificates }),
  };
}
