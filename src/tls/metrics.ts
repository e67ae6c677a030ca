/**
 * Certificate metrics, registered on the app's own Registry (see src/http/metrics.ts): when the serving
 * certificate in force expires, and how its reloads went. An alert on
 * `sidecar_injector_certificate_expiry_timestamp_seconds - time() < 7 * 86400` catches a rotation that stopped.
 */
import { Counter, Gauge, type Registry } from 'prom-client';

export type ReloadResult = 'ok' | 'failed';

export interface CertificateMetrics {
  /** notAfter of the serving certificate new handshakes get, in seconds since the epoch. */
  expiry: Gauge;
  /** New serving certificates put in force (`ok`) or refused, the previous one staying (`failed`). */
  reloads: Counter<'result'>;
}

export function registerCertificateMetrics(registry: Registry): CertificateMetrics {
  const expiry = new Gauge({
    name: 'sidecar_injector_certificate_expiry_timestamp_seconds',
    help: 'Expiry (notAfter) of the serving certificate in force, in seconds since the Unix epoch',
    registers: [registry],
  });
  const reloads = new Counter({
    name: 'sidecar_injector_certificate_reloads_total',
    help: 'Serving certificate reloads, by result: ok (in force for new handshakes) or failed (previous one kept)',
    labelNames: ['result'] as const,
    registers: [registry],
  });
  // Both series exist from the start, so `increase(...{result="failed"}[1h]) > 0` works before the first failure.
  reloads.inc({ result: 'ok' }, 0);
  reloads.inc({ result: 'failed' }, 0);
  return { expiry, reloads };
}
