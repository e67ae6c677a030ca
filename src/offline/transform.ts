/**
 * Runs a function over every pod and pod template in a stream of manifests, keeping document order and passing
 * everything else through untouched. Pure: text in, text and reports out.
 */
import { parseAllDocuments, stringify } from 'yaml';
import { podSites, type PodSite } from './workloads.js';
import type { PodObject } from '../core/types.js';

export type PodOutcome =
  | { outcome: 'changed'; pod: PodObject; summary: string; warnings: string[] }
  | { outcome: 'unchanged'; summary: string; warnings: string[] };

export interface ObjectReport {
  /** 1-based, as a person counts documents in a file. */
  document: number;
  object: string;
  changed: boolean;
  summary: string;
  warnings: string[];
}

export type TransformResult = { ok: true; output: string; reports: ObjectReport[] } | { ok: false; error: string };

type PodFunction = (site: PodSite) => PodOutcome;

function looksLikeJson(text: string): boolean {
  return /^\s*[{[]/.test(text);
}

function visit(object: unknown, document: number, perPod: PodFunction, reports: ObjectReport[]): boolean {
  let changed = false;
  for (const site of podSites(object)) {
    const result = perPod(site);
    if (result.outcome === 'changed') {
      site.replace(result.pod);
      changed = true;
    }
    reports.push({ document, object: site.label, changed: result.outcome === 'changed', summary: result.summary, warnings: result.warnings });
  }
  return changed;
}

function transformJson(text: string, source: string, perPod: PodFunction): TransformResult {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    return { ok: false, error: `${source}: document 1: not valid JSON (${error instanceof Error ? error.message : String(error)})` };
  }
  const reports: ObjectReport[] = [];
  const documents = Array.isArray(parsed) ? parsed : [parsed];
  documents.forEach((doc, index) => visit(doc, index + 1, perPod, reports));
  return { ok: true, output: `${JSON.stringify(parsed, null, 2)}\n`, reports };
}

function transformYaml(text: string, source: string, perPod: PodFunction): TransformResult {
  const documents = parseAllDocuments(text, { prettyErrors: false });
  if (!Array.isArray(documents)) return { ok: true, output: text, reports: [] };
  const reports: ObjectReport[] = [];
  const parts: string[] = [];
  for (const [index, doc] of documents.entries()) {
    const problem = doc.errors[0];
    if (problem) return { ok: false, error: `${source}: document ${index + 1}: ${problem.message.split('\n')[0]}` };
    const object: unknown = doc.toJS({ maxAliasCount: 100 });
    const changed = visit(object, index + 1, perPod, reports);
    // Untouched documents keep their comments and layout; changed ones are re-serialised. The separators are
    // written once, below, so a document's own `---` marker is dropped here.
    doc.directives.docStart = null;
    parts.push(changed ? stringify(object, { lineWidth: 0 }) : doc.toString({ lineWidth: 0 }));
  }
  return { ok: true, output: parts.map((p) => (p.endsWith('\n') ? p : `${p}\n`)).join('---\n'), reports };
}

export function transformManifests(text: string, source: string, perPod: PodFunction): TransformResult {
  return looksLikeJson(text) ? transformJson(text, source, perPod) : transformYaml(text, source, perPod);
}
