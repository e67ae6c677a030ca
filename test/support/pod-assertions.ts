/** Assertions over a patched pod: what the README promises every injected pod holds. */
import fastJsonPatch from 'fast-json-patch';
import type { Operation } from 'fast-json-patch';
import { expect } from 'vitest';
import { DEFAULT_CONTAINER_ANNOTATION, STATUS_ANNOTATION } from '../../src/core/labels.js';
import { parseStatus, isStatusError } from '../../src/core/status.js';
import type { Container, InjectionStatus, PatchOperation, PodObject } from '../../src/core/types.js';

/** Applies like the API server does: every path must exist, the original is left untouched. */
export function applyToCopy(pod: unknown, patch: readonly PatchOperation[]): PodObject {
  const before = JSON.stringify(pod);
  const result = fastJsonPatch.applyPatch(structuredClone(pod), patch as Operation[], true, false).newDocument as PodObject;
  expect(JSON.stringify(pod), 'applying the patch must not mutate the original').toBe(before);
  return result;
}

export function statusOf(pod: PodObject): InjectionStatus {
  const text = pod.metadata?.annotations?.[STATUS_ANNOTATION];
  expect(text, 'status annotation').toBeTypeOf('string');
  const status = parseStatus(text!);
  if (isStatusError(status)) throw new Error(status.error);
  return status;
}

export function allContainers(pod: PodObject): Container[] {
  return [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])];
}

/** One sidecar, one shared volume, every app container mounting it except the recorded skips. */
export function expectInjectedInvariants(pod: PodObject, sidecarName = 'sidecar', volumeName = 'shared-data'): InjectionStatus {
  const status = statusOf(pod);
  const sidecars = allContainers(pod).filter((c) => c.name === sidecarName);
  expect(sidecars, 'exactly one sidecar').toHaveLength(1);
  const sidecar = sidecars[0]!;
  if (status.mode === 'native') {
    expect(pod.spec?.initContainers?.[0]?.name, 'native sidecar first among init containers').toBe(sidecarName);
    expect(sidecar.restartPolicy).toBe('Always');
  } else {
    // Last when we add it; another webhook may append containers after it later (reinvocation).
    expect(pod.spec?.containers.some((c) => c.name === sidecarName), 'classic sidecar among containers').toBe(true);
    expect(sidecar.restartPolicy).toBeUndefined();
  }
  expect(sidecar.stdin).toBe(true);
  expect(sidecar.tty).toBe(true);
  expect(sidecar.image).toMatch(/^busybox[:@]/);
  expect(sidecar.volumeMounts?.some((m) => m.name === volumeName)).toBe(true);
  expect((pod.spec?.volumes ?? []).filter((v) => v.name === volumeName), 'exactly one shared volume').toHaveLength(1);
  const skipped = new Set(status.skipped.map((s) => s.container));
  for (const app of pod.spec?.containers ?? []) {
    if (app.name === sidecarName) continue;
    const mounts = app.volumeMounts?.some((m) => m.name === volumeName) ?? false;
    expect(mounts, `app container ${app.name} mounts ${volumeName}`).toBe(!skipped.has(app.name));
  }
  const names = allContainers(pod).map((c) => c.name);
  expect(new Set(names).size, 'container names unique').toBe(names.length);
  expect(pod.metadata?.annotations?.[DEFAULT_CONTAINER_ANNOTATION]).toBeTypeOf('string');
  expect(pod.metadata?.annotations?.[DEFAULT_CONTAINER_ANNOTATION]).not.toBe(sidecarName);
  return status;
}

export function sidecarOf(pod: PodObject, sidecarName = 'sidecar'): Container {
  const found = allContainers(pod).find((c) => c.name === sidecarName);
  if (!found) throw new Error('no sidecar');
  return found;
}

/**
 * Drops empty arrays and empty annotations and metadata maps, so "absent" and "empty" compare equal: uninject cannot know
 * which of the two the pod had before injection created the array or map.
 */
export function normalise(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(normalise);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) {
    const v = normalise((value as Record<string, unknown>)[key]);
    if (Array.isArray(v) && v.length === 0) continue;
    // `shareProcessNamespace: false` is the API default; the status records only that we turned it on.
    if (key === 'shareProcessNamespace' && v === false) continue;
    if ((key === 'annotations' || key === 'metadata') && v !== null && typeof v === 'object' && Object.keys(v).length === 0) continue;
    out[key] = v;
  }
  return out;
}
