import { DEFAULT_INJECTOR_NAMESPACE } from '../core/labels.js';

/** What names the injector's namespace more precisely than the environment: a flag, the webhook's Service. */
export interface NamespaceHints {
  flag?: string | undefined;
  service?: string | undefined;
}

/**
 * The injector's own namespace (never injected), derived one way everywhere: the flag that names it, else the
 * namespace of the webhook's Service, else POD_NAMESPACE (the Deployment's downward API, when running in the
 * injector's pod), else the default.
 */
export function injectorNamespace(env: Readonly<Record<string, string | undefined>>, hints: NamespaceHints = {}): string {
  return hints.flag ?? hints.service ?? (env.POD_NAMESPACE?.trim() || undefined) ?? DEFAULT_INJECTOR_NAMESPACE;
}
