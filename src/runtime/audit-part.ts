/**
 * The missed-pods auditor as one more part of the running webhook, composed only with cluster access. Its
 * modules (and the client they need) load when it starts, so a server without cluster access never loads them.
 * Whether it audits is read from the configuration at every tick (`audit.missingSidecars`), so a reload turns it
 * on or off without a restart.
 */
import type { AuditContext } from '../core/missed-sidecar.js';
import type { Part } from './part.js';
import type { PartContext } from './webhook.js';

/** The API server gives list calls this long; an audit is not in a hurry, but a stuck call must end. */
const AUDIT_REQUEST_TIMEOUT_MS = 30_000;

export interface AuditPartOptions {
  /** Delay of the first audit after start (default: the auditor's, 30 s, so the server settles first). */
  firstDelayMs?: number;
}

export function auditPart(context: PartContext, injectorNamespace: string, options: AuditPartOptions = {}): Part {
  let inner: Part | undefined;
  const auditContext = (): AuditContext => {
    // The injector's own namespace is in the namespace cache once it has synced; until then (a promise: a read
    // through) the versions are unknown and the engine decides `nativeSidecar: auto` as classic.
    const facts = context.cluster.facts(injectorNamespace);
    if (facts instanceof Promise) return { injectorNamespace };
    return {
      injectorNamespace,
      ...(facts.apiServerVersion === undefined ? {} : { apiServerVersion: facts.apiServerVersion }),
      ...(facts.minKubeletVersion === undefined ? {} : { minKubeletVersion: facts.minKubeletVersion }),
    };
  };
  return {
    name: 'audit',
    async start() {
      const kubeConfig = context.cluster.kubeConfig();
      if (kubeConfig === undefined) return;
      const [{ createMissedPodsAuditor }, { kubeApi }] = await Promise.all([
        import('../audit/auditor.js'),
        import('../cluster/check-api.js'),
      ]);
      const log = context.log.child({ component: 'audit' });
      log.info({}, 'missed-pods audit part started (audits while audit.missingSidecars is true)');
      inner = createMissedPodsAuditor({
        api: kubeApi(kubeConfig, AUDIT_REQUEST_TIMEOUT_MS),
        config: context.config,
        context: auditContext,
        metricsRegistry: context.metrics.registry,
        log,
        ...(options.firstDelayMs === undefined ? {} : { firstDelayMs: options.firstDelayMs }),
      });
      await inner.start();
    },
    ready: () => true,
    async close() {
      await inner?.close();
    },
  };
}
