/** Label and annotation keys: the public interface of the injector inside a cluster. */
export const SELECTION_LABEL = 'sidecar-injection';
export const ANNOTATION_PREFIX = 'sidecar-injector.io/';
export const STATUS_ANNOTATION = `${ANNOTATION_PREFIX}status`;
export const DEFAULT_CONTAINER_ANNOTATION = 'kubectl.kubernetes.io/default-container';
/** Namespaces that are never injected, whatever the configuration says. */
export const ALWAYS_EXCLUDED_NAMESPACES: readonly string[] = ['kube-system', 'kube-public', 'kube-node-lease'];
export const DEFAULT_INJECTOR_NAMESPACE = 'sidecar-injector';
