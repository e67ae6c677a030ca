/**
 * Per-pod overrides, read from `sidecar-injector.io/*` annotations. Each is validated on its own; a bad value is
 * ignored with a warning and the rest still apply — a typo must never cost a pod its sidecar or its admission.
 */
import { isPinnedImage, PINNED_IMAGE_RULE } from './image.js';
import { ANNOTATION_PREFIX } from './labels.js';
import { isPositiveQuantity } from './quantity.js';

export const OVERRIDE_ANNOTATIONS = {
  image: `${ANNOTATION_PREFIX}image`,
  appMountPath: `${ANNOTATION_PREFIX}app-mount-path`,
  nativeSidecar: `${ANNOTATION_PREFIX}native-sidecar`,
  shareProcessNamespace: `${ANNOTATION_PREFIX}share-process-namespace`,
  cpu: `${ANNOTATION_PREFIX}cpu`,
  memory: `${ANNOTATION_PREFIX}memory`,
} as const;

export interface PodOverrides {
  image?: string;
  appMountPath?: string;
  nativeSidecar?: boolean;
  shareProcessNamespace?: boolean;
  cpu?: string;
  memory?: string;
}

const compiledPatterns = new Map<string, RegExp | null>();

/** Patterns come from the admin's config; an invalid one matches nothing rather than throwing mid-admission. */
function compiledPattern(pattern: string): RegExp | null {
  let compiled = compiledPatterns.get(pattern);
  if (compiled === undefined) {
    try {
      compiled = new RegExp(pattern.startsWith('^') ? pattern : `^(?:${pattern})$`);
    } catch {
      compiled = null;
    }
    compiledPatterns.set(pattern, compiled);
  }
  return compiled;
}

export function imageAllowed(image: string, allowedImages: readonly string[]): boolean {
  return allowedImages.some((pattern) => compiledPattern(pattern)?.test(image) ?? false);
}

/** An absolute, clean path: no `..`, no `:` (the kubelet rejects it), not the root itself. */
export function isValidMountPath(path: string): boolean {
  return (
    path.startsWith('/') &&
    path !== '/' &&
    path.length <= 1024 &&
    !path.includes(':') &&
    !path.split('/').includes('..') &&
    !/[\0\n\r]/.test(path)
  );
}

function parseBoolean(value: string): boolean | undefined {
  if (value === 'true') return true;
  if (value === 'false') return false;
  return undefined;
}

export function readOverrides(
  annotations: Readonly<Record<string, string>>,
  allowedImages: readonly string[],
): { overrides: PodOverrides; warnings: string[] } {
  const overrides: PodOverrides = {};
  const warnings: string[] = [];
  const ignored = (key: string, why: string): void => {
    warnings.push(`annotation ${key} ignored: ${why}`);
  };

  const image = annotations[OVERRIDE_ANNOTATIONS.image];
  if (image !== undefined) {
    // The configured image must be pinned; an override is held to the same rule.
    if (!imageAllowed(image, allowedImages)) ignored(OVERRIDE_ANNOTATIONS.image, `image "${truncate(image)}" is not in allowedImages`);
    else if (!isPinnedImage(image)) ignored(OVERRIDE_ANNOTATIONS.image, `image "${truncate(image)}" ${PINNED_IMAGE_RULE}`);
    else overrides.image = image;
  }
  const mountPath = annotations[OVERRIDE_ANNOTATIONS.appMountPath];
  if (mountPath !== undefined) {
    if (isValidMountPath(mountPath)) overrides.appMountPath = mountPath;
    else ignored(OVERRIDE_ANNOTATIONS.appMountPath, `"${truncate(mountPath)}" is not an absolute path`);
  }
  const native = annotations[OVERRIDE_ANNOTATIONS.nativeSidecar];
  if (native !== undefined) {
    const parsed = parseBoolean(native);
    if (parsed === undefined) ignored(OVERRIDE_ANNOTATIONS.nativeSidecar, 'expected "true" or "false"');
    else overrides.nativeSidecar = parsed;
  }
  const share = annotations[OVERRIDE_ANNOTATIONS.shareProcessNamespace];
  if (share !== undefined) {
    const parsed = parseBoolean(share);
    if (parsed === undefined) ignored(OVERRIDE_ANNOTATIONS.shareProcessNamespace, 'expected "true" or "false"');
    else overrides.shareProcessNamespace = parsed;
  }
  const cpu = annotations[OVERRIDE_ANNOTATIONS.cpu];
  if (cpu !== undefined) {
    if (isPositiveQuantity(cpu)) overrides.cpu = cpu;
    else ignored(OVERRIDE_ANNOTATIONS.cpu, `"${truncate(cpu)}" is not a positive CPU quantity such as 50m`);
  }
  const memory = annotations[OVERRIDE_ANNOTATIONS.memory];
  if (memory !== undefined) {
    if (isPositiveQuantity(memory)) overrides.memory = memory;
    else ignored(OVERRIDE_ANNOTATIONS.memory, `"${truncate(memory)}" is not a positive memory quantity such as 64Mi`);
  }
  return { overrides, warnings };
}

function truncate(value: string): string {
  const oneLine = value.replace(/[\r\n\t]/g, ' ');
  return oneLine.length > 40 ? `${oneLine.slice(0, 40)}…` : oneLine;
}
