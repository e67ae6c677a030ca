import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import type { PodObject } from '../../src/core/types.js';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const podFixtureDir = join(repoRoot, 'test', 'fixtures', 'pods');
/** Requests exactly as a real kube-apiserver sent them (test/fixtures/kube-apiserver/README.md). */
export const apiServerFixtureDir = join(repoRoot, 'test', 'fixtures', 'kube-apiserver');

export function loadPodFixture(file: string): PodObject {
  return parse(readFileSync(join(podFixtureDir, file), 'utf8')) as PodObject;
}

export function podFixtureFiles(): string[] {
  return readdirSync(podFixtureDir).filter((f) => f.endsWith('.yaml')).sort();
}

export interface CapturedReview {
  apiVersion: string;
  kind: string;
  request: { uid: string; namespace?: string; operation: string; dryRun?: boolean; object: PodObject; [key: string]: unknown };
}

export function apiServerFixtureFiles(): string[] {
  return readdirSync(apiServerFixtureDir).filter((f) => f.endsWith('.json')).sort();
}

export function loadApiServerFixture(file: string): { raw: string; review: CapturedReview } {
  const raw = readFileSync(join(apiServerFixtureDir, file), 'utf8');
  return { raw, review: JSON.parse(raw) as CapturedReview };
}
