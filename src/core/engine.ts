/**
 * The injection engine: decides and builds the patch for one pod. Pure: no I/O, no clock, no logger — the
 * webhook, the offline CLI and `--explain` all call it with what they learned elsewhere.
 */
import { DEFAULT_CONTAINER_ANNOTATION, STATUS_ANNOTATION } from './labels.js';
import { pointer } from './json-pointer.js';
import { readOverrides, type PodOverrides } from './overrides.js';
import { annotationsOf, isWindowsPod, readPod, labelsOf, mountAtPath, mountsVolume, type InjectablePod } from './pod.js';
import { preflight } from './preflight.js';
import { selectionSkip as selectPod } from './selection.js';
import { renderSidecar } from './sidecar.js';
import { isStatusError, parseStatus, serialiseStatus } from './status.js';
import type {
  Container,
  InjectionContext,
  InjectionResult,
  InjectionStatus,
  InjectorConfig,
  PatchOperation,
  PodSecurityLevel,
  SidecarMode,
  SkipReason,
} from './types.js';
import { isAtLeast } from './versions.js';

/** Sidecar containers are on by default (and cannot be switched off) from Kubernetes 1.33. */
const NATIVE_SIDECAR_SAFE = { major: 1, minor: 33 } as const;
/** The first release with the SidecarContainers gate on by default: below it a native override is refused. */
const NATIVE_SIDECAR_MINIMUM = { major: 1, minor: 29 } as const;

function skip(reason: SkipReason, warnings: string[] = []): InjectionResult {
  return { decision: { action: 'skip', reason }, patch: [], warnings };
}

/** Why this pod is not for us, before looking at what injecting would do: the one selection rule. */
function selectionSkip(pod: InjectablePod, config: InjectorConfig, context: InjectionContext): SkipReason | undefined {
  return selectPod({
    namespace: context.namespace,
    injectorNamespace: context.injectorNamespace,
    excludedNamespaces: config.excludedNamespaces,
    podLabels: labelsOf(pod),
    namespaceLabels: context.namespaceLabels,
  });
}

function chooseMode(
  config: InjectorConfig,
  context: InjectionContext,
  overrides: PodOverrides,
  warnings: string[],
): SidecarMode {
  if (overrides.nativeSidecar !== undefined) {
    const tooOld =
      overrides.nativeSidecar &&
      context.apiServerVersion !== undefined &&
      !isAtLeast(context.apiServerVersion, NATIVE_SIDECAR_MINIMUM.major, NATIVE_SIDECAR_MINIMUM.minor);
    if (!tooOld) return overrides.nativeSidecar ? 'native' : 'classic';
    warnings.push(`native sidecar requested but the API server is ${context.apiServerVersion}; using a classic sidecar`);
  }
  if (config.nativeSidecar === 'always') return 'native';
  if (config.nativeSidecar === 'never') return 'classic';
  const { major, minor } = NATIVE_SIDECAR_SAFE;
  return isAtLeast(context.apiServerVersion, major, minor) && isAtLeast(context.minKubeletVersion, major, minor)
    ? 'native'
    : 'classic';
}

function isRunToCompletion(pod: InjectablePod): boolean {
  return pod.spec.restartPolicy === 'Never' || pod.spec.restartPolicy === 'OnFailure';
}

/** Builds patch operations that stay valid whether or not each array or map already exists. */
class PatchBuilder {
  readonly operations: PatchOperation[] = [];

  setAnnotations(pod: InjectablePod, entries: Record<string, string>): void {
    // `null` is absent (see podProblem): `add` replaces it with the whole map.
    if (pod.metadata === undefined || pod.metadata === null) {
      this.operations.push({ op: 'add', path: '/metadata', value: { annotations: entries } });
    } else if (pod.metadata.annotations === undefined || pod.metadata.annotations === null) {
      this.operations.push({ op: 'add', path: '/metadata/annotations', value: entries });
    } else {
      for (const [key, value] of Object.entries(entries)) {
        this.operations.push({ op: 'add', path: pointer('metadata', 'annotations', key), value });
      }
    }
  }

  appendTo(existing: readonly unknown[] | undefined | null, arrayPath: string, value: unknown): void {
    if (existing === undefined || existing === null) this.operations.push({ op: 'add', path: arrayPath, value: [value] });
    else this.operations.push({ op: 'add', path: `${arrayPath}/-`, value });
  }

  prependTo(existing: readonly unknown[] | undefined | null, arrayPath: string, value: unknown): void {
    if (existing === undefined || existing === null) this.operations.push({ op: 'add', path: arrayPath, value: [value] });
    else this.operations.push({ op: 'add', path: `${arrayPath}/0`, value });
  }

  set(path: string, value: unknown): void {
    this.operations.push({ op: 'add', path, value });
  }
}

interface MountPlan {
  mounted: string[];
  /** Indexes in `spec.containers` of the containers in `mounted`, in the same order. */
  indexes: number[];
  skipped: { container: string; reason: string }[];
  warnings: string[];
}

/** Which app containers get a mount of the shared volume; ones already using the path are left alone. */
function planAppMounts(
  containers: readonly Container[],
  volumeName: string,
  mountPath: string,
  alreadyDecided: ReadonlySet<string>,
): MountPlan {
  const plan: MountPlan = { mounted: [], indexes: [], skipped: [], warnings: [] };
  containers.forEach((container, index) => {
    if (alreadyDecided.has(container.name) || mountsVolume(container, volumeName)) return;
    const occupying = mountAtPath(container, mountPath);
    if (occupying) {
      const reason = `${mountPath} is already used by volume ${occupying.name}`;
      plan.skipped.push({ container: container.name, reason });
      plan.warnings.push(`container ${container.name} not given the shared volume: ${reason}`);
    } else {
      plan.mounted.push(container.name);
      plan.indexes.push(index);
    }
  });
  return plan;
}

/** One operation per planned container (a pod may carry 100,000): its index is all the path needs. */
function addMounts(builder: PatchBuilder, pod: InjectablePod, plan: MountPlan, volumeName: string, mountPath: string): void {
  for (const index of plan.indexes) {
    builder.appendTo(pod.spec.containers[index]!.volumeMounts, `/spec/containers/${index}/volumeMounts`, {
      name: volumeName,
      mountPath,
    });
  }
}

function checked(pod: InjectablePod, builder: PatchBuilder, status: InjectionStatus, result: InjectionResult): InjectionResult {
  const verdict = preflight(pod, builder.operations, status);
  if (!verdict.ok) {
    return {
      decision: { action: 'error', reason: verdict.reason },
      patch: [],
      warnings: [...result.warnings, `sidecar not injected: internal self-check failed (${verdict.reason})`],
    };
  }
  return result;
}

/** Why the pod no longer holds what its status records (sidecar, shared volume, mounts), if it does not. */
function driftFromStatus(pod: InjectablePod, status: InjectionStatus): string | undefined {
  const list = status.mode === 'native' ? (pod.spec.initContainers ?? []) : pod.spec.containers;
  const sidecars = list.filter((c) => c.name === status.sidecar);
  if (sidecars.length !== 1) return `its ${status.mode} sidecar "${status.sidecar}" is missing`;
  if ((pod.spec.volumes ?? []).filter((v) => v.name === status.volume.name).length !== 1) {
    return `its volume "${status.volume.name}" is missing`;
  }
  if (!mountsVolume(sidecars[0]!, status.volume.name)) return 'its sidecar no longer mounts the shared volume';
  const mounted = new Set(status.mounted);
  const unmounted = pod.spec.containers.find((c) => mounted.has(c.name) && !mountsVolume(c, status.volume.name));
  if (unmounted) return `container ${unmounted.name} no longer mounts the shared volume`;
  return undefined;
}

/** Reinvocation: an injected pod gets mounts only for app containers another webhook added since. */
function reinvoke(pod: InjectablePod, statusText: string): InjectionResult {
  const status = parseStatus(statusText);
  if (isStatusError(status)) {
    return skip('already-injected', [`pod carries ${STATUS_ANNOTATION} but it is unreadable (${status.error}); left unchanged`]);
  }
  // The sidecar is no app container; the drift check below looks at it.
  const decided = new Set([status.sidecar, ...status.mounted, ...status.skipped.map((s) => s.container)]);
  const plan = planAppMounts(pod.spec.containers, status.volume.name, status.mountPath, decided);
  if (plan.mounted.length === 0 && plan.skipped.length === 0) return skip('already-injected');
  const drift = driftFromStatus(pod, status);
  if (drift !== undefined) {
    // Something else changed what we added: mounting new containers onto it could only make it worse.
    return skip('already-injected', [`pod carries ${STATUS_ANNOTATION} but ${drift}; left unchanged`]);
  }

  const updated: InjectionStatus = {
    ...status,
    mounted: [...status.mounted, ...plan.mounted],
    skipped: [...status.skipped, ...plan.skipped],
  };
  const builder = new PatchBuilder();
  addMounts(builder, pod, plan, status.volume.name, status.mountPath);
  builder.set(pointer('metadata', 'annotations', STATUS_ANNOTATION), serialiseStatus(updated));
  return checked(pod, builder, updated, {
    decision: { action: 'update' },
    patch: builder.operations,
    warnings: plan.warnings,
    status: updated,
  });
}

export function computeInjection(object: unknown, config: InjectorConfig, context: InjectionContext): InjectionResult {
  if (context.operation !== 'CREATE') return skip('operation-not-create');
  const read = readPod(object);
  if (!read.ok) return skip('not-a-pod', [`not a pod the injector can read: ${read.problem}; not injected`]);
  const { pod } = read;
  const selection = selectionSkip(pod, config, context);
  if (selection) return skip(selection);
  if (isWindowsPod(pod)) return skip('windows-pod', ['Windows pod: the sidecar is not injected']);

  const annotations = annotationsOf(pod);
  const statusText = annotations[STATUS_ANNOTATION];
  if (statusText !== undefined) return reinvoke(pod, statusText);

  const sidecarName = config.sidecar.name;
  const allContainers = [...pod.spec.containers, ...(pod.spec.initContainers ?? [])];
  if (allContainers.some((c) => c.name === sidecarName)) {
    return skip('name-clash', [`pod already has a container named "${sidecarName}"; sidecar not injected`]);
  }

  const { overrides, warnings } = readOverrides(annotations, config.allowedImages);
  const mode = chooseMode(config, context, overrides, warnings);
  if (mode === 'classic' && isRunToCompletion(pod) && config.classicRunToCompletion === 'skip') {
    return skip('run-to-completion', [
      ...warnings,
      `restartPolicy ${pod.spec.restartPolicy}: a classic sidecar would keep this Job pod from completing; not injected`,
    ]);
  }

  const level: PodSecurityLevel = context.podSecurityLevel ?? config.podSecurity.defaultLevel;
  const volumeName = config.volume.name;
  const appMountPath = overrides.appMountPath ?? config.appMountPath;
  const image = overrides.image ?? config.sidecar.image;
  const builder = new PatchBuilder();

  const existingVolume = pod.spec.volumes?.find((v) => v.name === volumeName);
  if (existingVolume) warnings.push(`volume ${volumeName} already exists in the pod; reused as it is`);

  const plan = planAppMounts(pod.spec.containers, volumeName, appMountPath, new Set());
  // Not `push(...plan.warnings)`: one warning per skipped container can exceed the engine's argument limit.
  for (const warning of plan.warnings) warnings.push(warning);

  const { container: sidecar, reduced } = renderSidecar(
    config,
    {
      name: sidecarName,
      image,
      volumeName,
      cpu: overrides.cpu ?? config.sidecar.resources.cpu,
      memory: overrides.memory ?? config.sidecar.resources.memory,
      mode,
      level,
    },
    pod,
  );
  if (reduced.length > 0) warnings.push(reductionWarning(level, reduced, context.namespace));

  const wantsSharing = overrides.shareProcessNamespace ?? config.shareProcessNamespace;
  let setsSharing = false;
  if (wantsSharing && pod.spec.shareProcessNamespace !== true) {
    if (pod.spec.hostPID === true) warnings.push('hostPID pod: shareProcessNamespace not set (the two are exclusive)');
    else setsSharing = true;
  }
  const setsDefaultContainer = annotations[DEFAULT_CONTAINER_ANNOTATION] === undefined;

  const status: InjectionStatus = {
    version: 1,
    mode,
    sidecar: sidecarName,
    image,
    volume: { name: volumeName, created: existingVolume === undefined },
    mounted: plan.mounted,
    skipped: plan.skipped,
    mountPath: appMountPath,
    shareProcessNamespace: setsSharing,
    defaultContainer: setsDefaultContainer,
    podSecurityLevel: level,
    reduced,
  };

  const newAnnotations: Record<string, string> = {};
  if (setsDefaultContainer) newAnnotations[DEFAULT_CONTAINER_ANNOTATION] = pod.spec.containers[0]!.name;
  newAnnotations[STATUS_ANNOTATION] = serialiseStatus(status);
  builder.setAnnotations(pod, newAnnotations);
  if (!existingVolume) builder.appendTo(pod.spec.volumes, '/spec/volumes', { name: volumeName, ...structuredClone(config.volume.source) });
  addMounts(builder, pod, plan, volumeName, appMountPath);
  if (mode === 'native') builder.prependTo(pod.spec.initContainers, '/spec/initContainers', sidecar);
  else builder.appendTo(pod.spec.containers, '/spec/containers', sidecar);
  if (setsSharing) builder.set('/spec/shareProcessNamespace', true);

  return checked(pod, builder, status, { decision: { action: 'inject' }, patch: builder.operations, warnings, status });
}

function reductionWarning(level: PodSecurityLevel, reduced: readonly string[], namespace: string): string {
  const parts = reduced.map((r) => (r === 'root' ? `runs as user 65534` : `no ${r}`));
  const cause = level === 'privileged' ? 'pod runAsNonRoot' : `Pod Security "${level}" in ${namespace}`;
  return `sidecar reduced by ${cause}: ${parts.join(', ')}`;
}
