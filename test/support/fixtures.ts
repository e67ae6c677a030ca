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

/** Just enough of the request side to read a capture in tests. */
export interface AdmissionReviewJson {
  apiVersion: string;
  kind: string;
  request: { uid: string; namespace?: string; operation?: string; dryRun?: boolean; object: Record<string, unknown>; [key: string]: unknown };
}

/** One capture: its file name, its bytes as the API server sent them, and the parsed review. */
export interface Fixture {
  file: string;
  text: string;
  review: AdmissionReviewJson;
}

export function loadFixtures(): Fixture[] {
  return readdirSync(apiServerFixtureDir)
    .filter((file) => file.endsWith('.json'))
    .sort()
    .map((file) => {
      const text = readFileSync(join(apiServerFixtureDir, file), 'utf8');
      return { file, text, review: JSON.parse(text) as AdmissionReviewJson };
    });
}

export function loadFixture(file: string): Fixture {
  const fixture = loadFixtures().find((f) => f.file === file);
  if (fixture === undefined) throw new Error(`no fixture ${file}`);
  return fixture;
}
