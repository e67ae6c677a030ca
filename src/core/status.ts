import type { InjectionStatus, PodSecurityLevel, SidecarMode } from './types.js';
import { POD_SECURITY_LEVELS } from './types.js';

/** The engine serialises a status, and its pre-flight check serialises the same object again to compare. */
const serialised = new WeakMap<InjectionStatus, string>();

/** Key order is fixed here so the same input always serialises to the same annotation (and the same patch). */
export function serialiseStatus(status: InjectionStatus): string {
  const known = serialised.get(status);
  if (known !== undefined) return known;
  const text = orderedJson(status);
  serialised.set(status, text);
  return text;
}

function orderedJson(status: InjectionStatus): string {
  const ordered: InjectionStatus = {
    version: 1,
    mode: status.mode,
    sidecar: status.sidecar,
    image: status.image,
    volume: { name: status.volume.name, created: status.volume.created },
    mounted: [...status.mounted],
    skipped: status.skipped.map((s) => ({ container: s.container, reason: s.reason })),
    mountPath: status.mountPath,
    shareProcessNamespace: status.shareProcessNamespace,
    defaultContainer: status.defaultContainer,
    podSecurityLevel: status.podSecurityLevel,
    reduced: [...status.reduced],
  };
  return JSON.stringify(ordered);
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === 'string');
}

/** Errors as values: an unreadable annotation still means "already injected", but uninject must refuse it. */
export function parseStatus(text: string): InjectionStatus | { error: string } {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { error: 'status annotation is not JSON' };
  }
  if (typeof raw !== 'object' || raw === null) return { error: 'status annotation is not an object' };
  const s = raw as Record<string, unknown>;
  const volume = s.volume as Record<string, unknown> | null | undefined;
  const skipped = s.skipped;
  const valid =
    s.version === 1 &&
    (s.mode === 'classic' || s.mode === 'native') &&
    typeof s.sidecar === 'string' &&
    typeof s.image === 'string' &&
    typeof volume === 'object' && volume !== null &&
    typeof volume.name === 'string' &&
    typeof volume.created === 'boolean' &&
    isStringArray(s.mounted) &&
    Array.isArray(skipped) &&
    skipped.every((k: unknown) => {
      const entry = k as Record<string, unknown> | null;
      return typeof entry === 'object' && entry !== null && typeof entry.container === 'string' && typeof entry.reason === 'string';
    }) &&
    typeof s.mountPath === 'string' &&
    typeof s.shareProcessNamespace === 'boolean' &&
    typeof s.defaultContainer === 'boolean' &&
    POD_SECURITY_LEVELS.includes(s.podSecurityLevel as PodSecurityLevel) &&
    isStringArray(s.reduced);
  if (!valid) return { error: 'status annotation does not have the expected fields' };
  return {
    version: 1,
    mode: s.mode as SidecarMode,
    sidecar: s.sidecar as string,
    image: s.image as string,
    volume: { name: volume.name as string, created: volume.created as boolean },
    mounted: s.mounted as string[],
    skipped: (skipped as { container: string; reason: string }[]).map((k) => ({ container: k.container, reason: k.reason })),
    mountPath: s.mountPath as string,
    shareProcessNamespace: s.shareProcessNamespace as boolean,
    defaultContainer: s.defaultContainer as boolean,
    podSecurityLevel: s.podSecurityLevel as PodSecurityLevel,
    reduced: s.reduced as string[],
  };
}

export function isStatusError(value: InjectionStatus | { error: string }): value is { error: string } {
  return 'error' in value;
}
