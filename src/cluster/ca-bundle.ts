/**
 * The `caBundle` of every entry of our MutatingWebhookConfiguration: what it should be (pure), and a thin
 * client-node adapter that reads the object and writes a JSON patch only when some entry differs.
 *
 * The patch touches `/webhooks/N/clientConfig/caBundle` and nothing else, each guarded by a `test` of the entry's
 * name: if the entries moved since the read, the API server refuses the whole patch (422) and we read again. A
 * GitOps tool or `kubectl apply` that wipes the caBundle is repaired at the next resync.
 */
import type { KubeConfig } from '@kubernetes/client-node';

/** One webhook entry as far as the bundle is concerned; `caBundle` is base64 as in the API. */
export interface WebhookEntryBundle {
  name: string;
  caBundle?: string;
}

export type JsonPatchOperation = { op: 'test' | 'add'; path: string; value: unknown };

export interface WebhookConfigurationApi {
  /** `mutatingwebhookconfigurations/<name>`, for logs. */
  readonly description: string;
  /** The entries, or undefined when the configuration does not exist. */
  read(): Promise<WebhookEntryBundle[] | undefined>;
  /** Applies a JSON patch; throws `PatchRejectedError` when a `test` failed or the object changed (422/409). */
  patch(operations: JsonPatchOperation[]): Promise<void>;
}

export class PatchRejectedError extends Error {}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g;

/** The certificates of a PEM text, each as its base64 body without whitespace (for comparing, not for output). */
export function pemCertificates(pem: string): string[] {
  return [...pem.matchAll(PEM_CERTIFICATE)].map((match) => (match[1] ?? '').replace(/\s+/g, ''));
}

/** The PEM text of a caBundle field (base64 of PEM); empty when absent or not base64 of anything. */
export function decodeCaBundle(caBundle: string | undefined): string {
  return caBundle === undefined ? '' : Buffer.from(caBundle, 'base64').toString('utf8');
}

function sameCertificates(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((cert, i) => cert === b[i]);
}

/**
 * The JSON patch that makes every entry's caBundle hold exactly `bundlePem` (same certificates, same order), or
 * an empty list when all already do: nothing is written then.
 */
export function caBundlePatch(entries: readonly WebhookEntryBundle[], bundlePem: string): JsonPatchOperation[] {
  const wanted = pemCertificates(bundlePem);
  if (wanted.length === 0) throw new Error('refusing to write a caBundle without a certificate');
  const value = Buffer.from(bundlePem, 'utf8').toString('base64');
  const operations: JsonPatchOperation[] = [];
  entries.forEach((entry, index) => {
    if (sameCertificates(pemCertificates(decodeCaBundle(entry.caBundle)), wanted)) return;
    operations.push(
      { op: 'test', path: `/webhooks/${index}/name`, value: entry.name },
      { op: 'add', path: `/webhooks/${index}/clientConfig/caBundle`, value },
    );
  });
  return operations;
}

/** Whether every entry's caBundle trusts `caPem` (whatever else it holds). */
export function bundleTrusts(entries: readonly WebhookEntryBundle[] | undefined, caPem: string): boolean {
  const [ca] = pemCertificates(caPem);
  if (entries === undefined || ca === undefined) return false;
  return entries.every((entry) => pemCertificates(decodeCaBundle(entry.caBundle)).includes(ca));
}

export type CaBundleSync =
  | { result: 'patched'; entries: number; changed: string[] }
  | { result: 'unchanged'; entries: number }
  | { result: 'missing' };

/** Reads the configuration and patches the entries whose caBundle differs; retries when the entries moved. */
export async function syncCaBundle(api: WebhookConfigurationApi, bundlePem: string, attempts = 3): Promise<CaBundleSync> {
  for (let attempt = 1; ; attempt++) {
    const entries = await api.read();
    if (entries === undefined) return { result: 'missing' };
    const operations = caBundlePatch(entries, bundlePem);
    if (operations.length === 0) return { result: 'unchanged', entries: entries.length };
    try {
      await api.patch(operations);
    } catch (err) {
      if (err instanceof PatchRejectedError && attempt < attempts) continue;
      throw err;
    }
    const changed = operations.filter((op) => op.op === 'test').map((op) => String(op.value));
    return { result: 'patched', entries: entries.length, changed };
  }
}

/** The HTTP status of a client-node ApiException (or of a watch error), if any. */
export function apiStatus(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const { code, statusCode } = err as { code?: unknown; statusCode?: unknown };
  if (typeof code === 'number') return code;
  if (typeof statusCode === 'number') return statusCode;
  return undefined;
}

/** The adapter over client-node (loaded here, on the self-managed path only). */
export async function kubernetesWebhookConfigurationApi(kubeConfig: KubeConfig, name: string): Promise<WebhookConfigurationApi> {
  const k8s = await import('@kubernetes/client-node');
  const api = kubeConfig.makeApiClient(k8s.AdmissionregistrationV1Api);
  const jsonPatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch);
  return {
    description: `mutatingwebhookconfigurations/${name}`,
    async read() {
      try {
        const config = await api.readMutatingWebhookConfiguration({ name });
        return (config.webhooks ?? []).map((webhook) => ({
          name: webhook.name,
          ...(webhook.clientConfig?.caBundle === undefined ? {} : { caBundle: webhook.clientConfig.caBundle }),
        }));
      } catch (err) {
        if (apiStatus(err) === 404) return undefined;
        throw err;
      }
    },
    async patch(operations) {
      try {
        await api.patchMutatingWebhookConfiguration({ name, body: operations }, jsonPatch);
      } catch (err) {
        const status = apiStatus(err);
        if (status === 422 || status === 409) throw new PatchRejectedError(`patch of ${name} rejected (${status})`);
        throw err;
      }
    },
  };
}
