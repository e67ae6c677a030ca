/**
 * The selection rule, once: which pods are the injector's, from the pod's labels and its namespace's name and
 * labels. The webhook configuration's two entries encode the same rule as selectors (a test evaluates the shipped
 * YAML against this function); the engine, `check`, `repair` and the auditor call it. Pure.
 */
import { ALWAYS_EXCLUDED_NAMESPACES, SELECTION_LABEL } from './labels.js';

export type SelectionSkip = 'excluded-namespace' | 'pod-opted-out' | 'namespace-not-enabled';

export interface SelectionInput {
  namespace: string;
  /** The injector's own namespace: never injected. */
  injectorNamespace: string;
  /** The configuration's `excludedNamespaces` (added to the always-excluded ones). */
  excludedNamespaces: readonly string[];
  podLabels: Readonly<Record<string, string>>;
  /**
   * Labels of the pod's namespace. Undefined where the API server already chose the entry (the webhook without
   * cluster access): only the namespace exclusions and the pod opt-out are left to decide.
   */
  namespaceLabels?: Readonly<Record<string, string>> | undefined;
}

/** The namespaces never injected, whatever their labels. */
export function excludedNamespaceList(injectorNamespace: string, configured: readonly string[] = []): string[] {
  return [...new Set([...ALWAYS_EXCLUDED_NAMESPACES, injectorNamespace, ...configured])];
}

/**
 * Why the pod is not the injector's, or undefined when it is. Mirrors the two webhook entries: every pod of a
 * namespace labelled `enabled` unless the pod says `disabled`, or a pod labelled `enabled` in a namespace without
 * the label at all (a namespace labelled `disabled`, or anything else, blocks pod opt-in).
 */
export function selectionSkip(input: SelectionInput): SelectionSkip | undefined {
  const excluded = excludedNamespaceList(input.injectorNamespace, input.excludedNamespaces);
  return selectionSkipAmong(excluded, input.namespace, input.podLabels, input.namespaceLabels);
}

/** The same rule with the excluded namespaces already listed (what `check` knows). */
export function selectionSkipAmong(
  excluded: readonly string[],
  namespace: string,
  podLabels: Readonly<Record<string, string>>,
  namespaceLabels: Readonly<Record<string, string>> | undefined,
): SelectionSkip | undefined {
  if (excluded.includes(namespace)) return 'excluded-namespace';
  const podLabel = podLabels[SELECTION_LABEL];
  if (podLabel === 'disabled') return 'pod-opted-out';
  if (namespaceLabels !== undefined) {
    const namespaceLabel = namespaceLabels[SELECTION_LABEL];
    const selected = namespaceLabel === 'enabled' || (namespaceLabel === undefined && podLabel === 'enabled');
    if (!selected) return 'namespace-not-enabled';
  }
  return undefined;
}

/** Whether every pod of the namespace is selected unless it opts out (the namespace entry). */
export function namespaceSelected(excluded: readonly string[], namespace: string, labels: Readonly<Record<string, string>>): boolean {
  return selectionSkipAmong(excluded, namespace, {}, labels) === undefined;
}
