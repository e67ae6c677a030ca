/**
 * Carries a change of meaning back into the YAML document, touching only nodes whose meaning changed: every
 * other node keeps its text, tag, quoting and comments, so it still means to kubectl what it meant before. New
 * values are created with the kubectl schema, which quotes whatever kubectl would not read as a string.
 */
import { isAlias, isMap, isScalar, isSeq, Pair, YAMLMap, YAMLSeq, type Document, type Node } from 'yaml';
import { isMergeKey, type Json, type MeaningReader } from './meaning.js';

type JsonObject = { [key: string]: Json };

function isObject(value: Json | undefined): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function sameJson(a: Json | undefined, b: Json | undefined): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((item, i) => sameJson(item, b[i]));
  if (isObject(a) && isObject(b)) {
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length && keys.every((k) => Object.hasOwn(b, k) && sameJson(a[k], b[k]));
  }
  return false;
}

function copyDecoration<T extends Node>(from: Node, to: T): T {
  to.commentBefore = from.commentBefore;
  to.comment = from.comment;
  to.spaceBefore = from.spaceBefore;
  if (from.tag !== undefined) to.tag = from.tag;
  if ((isMap(from) || isSeq(from)) && (isMap(to) || isSeq(to))) to.flow = from.flow;
  return to;
}

/**
 * A copy without anchors, aliases or merge keys, meaning the same: edits can then never leak through an alias
 * into another place, nor be hidden by a merge.
 */
export function materialize(node: unknown, reader: MeaningReader): unknown {
  if (isAlias(node)) return materialize(reader.target(node), reader);
  if (isScalar(node)) {
    const copy = node.clone() as typeof node;
    delete copy.anchor;
    return copy;
  }
  if (isSeq(node)) {
    const copy = copyDecoration(node, new YAMLSeq(node.schema));
    copy.items = node.items.map((item) => materialize(item, reader));
    return copy;
  }
  if (isMap(node)) {
    const copy = copyDecoration(node, new YAMLMap(node.schema));
    copy.items = [...flattened(node, reader).values()];
    return copy;
  }
  return node;
}

/** The pairs of a map in go-yaml's merge order: a later key, merged or not, replaces an earlier one. */
function flattened(node: YAMLMap, reader: MeaningReader): Map<string, Pair> {
  const pairs = new Map<string, Pair>();
  for (const pair of node.items) {
    if (!isMergeKey(pair.key)) {
      pairs.set(reader.key(pair.key), new Pair(materialize(pair.key, reader), materialize(pair.value, reader)));
      continue;
    }
    const value = isAlias(pair.value) ? reader.target(pair.value) : pair.value;
    const sources = isSeq(value) ? [...value.items].reverse() : [value];
    for (const source of sources) {
      const map = isAlias(source) ? reader.target(source) : source;
      if (isMap(map)) for (const [key, merged] of flattened(map, reader)) pairs.set(key, merged);
    }
  }
  return pairs;
}

/** Edits `node` (materialized) from meaning `before` to meaning `after`; returns the node to put in its place. */
export function reconcile(doc: Document, reader: MeaningReader, node: unknown, before: Json | undefined, after: Json): unknown {
  if (sameJson(before, after)) return node;
  if (isObject(before) && isObject(after) && isMap(node)) {
    node.items = node.items.filter((pair) => Object.hasOwn(after, reader.key(pair.key)));
    for (const pair of node.items) {
      const key = reader.key(pair.key);
      pair.value = reconcile(doc, reader, pair.value, before[key], after[key]!);
    }
    for (const key of Object.keys(after)) if (!Object.hasOwn(before, key)) node.items.push(doc.createPair(key, after[key]));
    return node;
  }
  if (Array.isArray(before) && Array.isArray(after) && isSeq(node)) {
    // Equal heads and tails stay; the middle is edited pairwise, so an app container that gains a mount keeps
    // its node, and an added or removed sidecar is the only item inserted or dropped.
    let head = 0;
    while (head < before.length && head < after.length && sameJson(before[head], after[head])) head++;
    let tail = 0;
    while (tail < before.length - head && tail < after.length - head && sameJson(before[before.length - 1 - tail], after[after.length - 1 - tail])) tail++;
    const oldItems = node.items.slice(head, before.length - tail);
    const middle = after.slice(head, after.length - tail).map((value, i) =>
      i < oldItems.length ? reconcile(doc, reader, oldItems[i], before[head + i], value) : doc.createNode(value),
    );
    node.items.splice(head, oldItems.length, ...middle);
    return node;
  }
  return doc.createNode(after);
}
