/**
 * Runs a function over every pod and pod template in a stream of manifests, keeping document order and passing
 * everything else through untouched. Pure: bytes in, text and reports out.
 *
 * Each YAML document is read with kubectl's meaning (meaning.ts), the pods are changed as JSON, and only the
 * nodes whose meaning changed are rewritten (edit.ts). The output is then read back the same way and must mean
 * exactly the changed JSON; anything else is refused rather than written.
 */
import { Composer, Parser, type Document } from 'yaml';
import { decodeManifest, firstDisallowedCharacter } from './decode.js';
import { materialize, reconcile, sameJson } from './edit.js';
import { KUBECTL_YAML } from './kubectl-schema.js';
import { cstDepth, firstTooDeepDocument, MAX_DEPTH, scanJson } from './limits.js';
import { anchorTargets, InputProblem, MeaningReader, newBudget, type Budget, type Json } from './meaning.js';
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

/** `input` is the decoded input text (what `--diff` compares against). */
export type TransformResult = { ok: true; input: string; output: string; reports: ObjectReport[] } | { ok: false; error: string };

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

function describe(error: unknown): string {
  if (error instanceof InputProblem) return error.message;
  if (error instanceof RangeError) return `cannot be processed (${error.message}); nesting or size is beyond what the CLI handles`;
  return `cannot be processed (${error instanceof Error ? error.message : String(error)})`;
}

function transformJson(text: string, source: string, perPod: PodFunction): TransformResult {
  const fail = (message: string): TransformResult => ({ ok: false, error: `${source}: document 1: ${message}` });
  const scan = scanJson(text);
  if (scan.depth > MAX_DEPTH) return fail(`nesting deeper than ${MAX_DEPTH} levels`);
  if (scan.inexactInteger !== undefined) return fail(`integer ${scan.inexactInteger} cannot be carried exactly; write it as a string or in YAML`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    return fail(`not valid JSON (${error instanceof Error ? error.message : String(error)})`);
  }
  const reports: ObjectReport[] = [];
  try {
    const documents = Array.isArray(parsed) ? parsed : [parsed];
    documents.forEach((doc, index) => visit(doc, index + 1, perPod, reports));
    return { ok: true, input: text, output: `${JSON.stringify(parsed, null, 2)}\n`, reports };
  } catch (error) {
    return fail(describe(error));
  }
}

/** Parses every document, refusing one nested deeper than MAX_DEPTH before the recursive composer sees it. */
function parseDocuments(text: string): { ok: true; docs: Document.Parsed[] } | { ok: false; document: number; error: string } {
  const tooDeep = firstTooDeepDocument(text);
  if (tooDeep !== undefined) return { ok: false, document: tooDeep, error: `nesting deeper than ${MAX_DEPTH} levels` };
  const composer = new Composer(KUBECTL_YAML);
  const docs: Document.Parsed[] = [];
  let count = 0;
  for (const token of new Parser().parse(text)) {
    if (token.type === 'document' && cstDepth(token) > MAX_DEPTH) return { ok: false, document: count + 1, error: `nesting deeper than ${MAX_DEPTH} levels` };
    if (token.type === 'document') count++;
    docs.push(...composer.next(token));
  }
  docs.push(...composer.end(false, text.length));
  return { ok: true, docs };
}

/** What one document means to kubectl, refusing what kubectl would read differently or reject. */
function readDocument(doc: Document.Parsed, text: string, budget: Budget): { reader: MeaningReader; meaning: Json } {
  const problem = doc.errors[0];
  if (problem) throw new InputProblem(problem.message.split('\n')[0]);
  const [start, , end] = doc.range;
  const bad = firstDisallowedCharacter(text.slice(start, end));
  if (bad >= 0) {
    const code = text.codePointAt(start + bad)!.toString(16).toUpperCase().padStart(4, '0');
    throw new InputProblem(`control character U+${code} is not allowed in YAML (kubectl rejects it)`);
  }
  const reader = new MeaningReader(anchorTargets(doc), budget);
  return { reader, meaning: reader.read(doc.contents) };
}

/** Reads our own output back; it must mean exactly what we meant to write. */
function verifyOutput(output: string, expected: Json): void {
  const parsed = parseDocuments(output);
  // A document of comments alone reads back as no document at all, which means null like the original.
  const docs = parsed.ok && parsed.docs.length <= 1 ? parsed.docs : undefined;
  const meaning = docs?.[0] ? readDocument(docs[0], output, newBudget(output.length)).meaning : null;
  if (!docs || !sameJson(meaning, expected)) throw new InputProblem('the output would not mean what the input meant to kubectl; refusing to write it');
}

function transformDocument(doc: Document.Parsed, text: string, index: number, budget: Budget, perPod: PodFunction, reports: ObjectReport[]): string {
  const { reader, meaning } = readDocument(doc, text, budget);
  const before = structuredClone(meaning);
  if (visit(meaning, index + 1, perPod, reports)) {
    doc.contents = reconcile(doc, reader, materialize(doc.contents, reader), before, meaning) as Document.Parsed['contents'];
  }
  // The separators are written once, by the caller, so a document's own `---` marker is dropped here.
  doc.directives.docStart = null;
  const output = doc.toString({ lineWidth: 0 });
  verifyOutput(output, meaning);
  return output;
}

function transformYaml(text: string, source: string, perPod: PodFunction): TransformResult {
  const parsed = parseDocuments(text);
  if (!parsed.ok) return { ok: false, error: `${source}: document ${parsed.document}: ${parsed.error}` };
  const budget = newBudget(text.length);
  const reports: ObjectReport[] = [];
  const parts: string[] = [];
  for (const [index, doc] of parsed.docs.entries()) {
    try {
      parts.push(transformDocument(doc, text, index, budget, perPod, reports));
    } catch (error) {
      return { ok: false, error: `${source}: document ${index + 1}: ${describe(error)}` };
    }
  }
  return { ok: true, input: text, output: parts.map((p) => (p.endsWith('\n') ? p : `${p}\n`)).join('---\n'), reports };
}

/** Transforms manifests given as bytes (decoded as kubectl would) or as already decoded text. */
export function transformManifests(input: Uint8Array | string, source: string, perPod: PodFunction): TransformResult {
  let text: string;
  if (typeof input === 'string') text = input;
  else {
    const decoded = decodeManifest(input);
    if (!decoded.ok) return { ok: false, error: `${source}: ${decoded.error}` };
    text = decoded.text;
  }
  return looksLikeJson(text) ? transformJson(text, source, perPod) : transformYaml(text, source, perPod);
}
