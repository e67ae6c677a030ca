import { DEFAULT_INJECTOR_NAMESPACE } from '../core/labels.js';

/** The injector's own namespace (never injected): POD_NAMESPACE, set by the Deployment's downward API. */
export function injectorNamespace(env: Readonly<Record<string, string | undefined>>): string {
  const fromPod = env.POD_NAMESPACE?.trim();
  return fromPod === undefined || fromPod === '' ? DEFAULT_INJECTOR_NAMESPACE : fromPod;
}
