/**
 * What a parsed YAML document means to kubectl, as the JSON it sends: go-yaml v2 rules for scalars, tags, keys
 * and merge keys, aliases expanded. Whatever kubectl would read differently from how JSON can carry it, or
 * would refuse, is refused here with a reason, so the CLI never writes a manifest that means something else.
 */
import { isAlias, isMap, isScalar, isSeq, visit, type Alias, type Document, type Node, type Pair, type Scalar } from 'yaml';
import { resolvePlain, type PlainMeaning } from './kubectl-scalars.js';
import { MAX_DEPTH } from './limits.js';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Raised inside the walk, caught per document and reported as `FILE: document N: message`. */
export class InputProblem extends Error {}

/** Work allowed for expanding aliases: every node costs 1, every string its length. */
export interface Budget {
  remaining: number;
  readonly limit: number;
}

const TAG = 'tag:yaml.org,2002:';
const MAP_TAGS = new Set([undefined, `${TAG}map`, `${TAG}set`]);
const SEQ_TAGS = new Set([undefined, `${TAG}seq`, `${TAG}omap`, `${TAG}pairs`]);

type ScalarMeaning = Exclude<PlainMeaning, { kind: 'merge' } | { kind: 'string' }> | { kind: 'string'; value: string };

function base64Text(text: string): string {
  // Go's StdEncoding skips line breaks and nothing else, and wants the padding.
  const compact = text.replace(/[\r\n]/g, '');
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(compact)) {
    throw new InputProblem('!!binary value is not valid base64');
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(compact, 'base64'));
  } catch {
    throw new InputProblem('!!binary value is not UTF-8 text; kubectl would replace its bytes, so it is refused');
  }
}

function taggedMeaning(tag: string, text: string): ScalarMeaning {
  const plain = resolvePlain(text);
  const want = (kinds: readonly string[]): ScalarMeaning => {
    if (kinds.includes(plain.kind) && plain.kind !== 'merge' && plain.kind !== 'string') return plain;
    // An explicit tag that the text does not fit is a decoding error to kubectl.
    throw new InputProblem(`cannot read ${JSON.stringify(text)} as ${tag.replace(TAG, '!!')}`);
  };
  switch (tag) {
    case '!':
    case `${TAG}str`:
    case `${TAG}timestamp`:
      return { kind: 'string', value: text };
    case `${TAG}int`:
      return want(['int']);
    case `${TAG}float`:
      return want(['int', 'float']);
    case `${TAG}bool`:
      return want(['bool']);
    case `${TAG}null`:
      return want(['null']);
    case `${TAG}binary`:
      return { kind: 'string', value: base64Text(text) };
    default:
      throw new InputProblem(`tag ${tag} is not supported (kubectl ignores or rejects it)`);
  }
}

function scalarMeaning(node: Scalar): ScalarMeaning {
  const text = String((node as Scalar & { source?: unknown }).source ?? node.value);
  if (node.tag !== undefined) return taggedMeaning(node.tag, text);
  if (node.type !== 'PLAIN') return { kind: 'string', value: text };
  const plain = resolvePlain(text);
  // A `<<` that is not a key is the string `<<` to go-yaml.
  return plain.kind === 'string' || plain.kind === 'merge' ? { kind: 'string', value: text } : plain;
}

export function isMergeKey(key: unknown): boolean {
  return isScalar(key) && key.tag === undefined && key.type === 'PLAIN' && String((key as Scalar & { source?: unknown }).source ?? key.value) === '<<';
}

/** Maps each alias to its anchor, in document order, as go-yaml does: the latest anchor before the alias. */
export function anchorTargets(doc: Document): Map<Alias, Node> {
  const anchors = new Map<string, Node>();
  const targets = new Map<Alias, Node>();
  visit(doc, {
    Node(_key, node) {
      if (isAlias(node)) {
        const target = anchors.get(node.source);
        if (target) targets.set(node, target);
      } else if (node.anchor) anchors.set(node.anchor, node);
    },
  });
  return targets;
}

/** Own data properties only: a `__proto__` key is a key like any other to kubectl. */
function setKey(target: { [key: string]: Json }, key: string, value: Json): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

function assign(target: { [key: string]: Json }, source: { [key: string]: Json }): void {
  for (const key of Object.keys(source)) setKey(target, key, source[key]!);
}

export class MeaningReader {
  private readonly expanding = new Set<Node>();

  constructor(
    private readonly targets: Map<Alias, Node>,
    private readonly budget: Budget,
  ) {}

  /** The node an alias stands for; a missing or self-containing anchor is refused. */
  target(node: Alias): Node {
    const target = this.targets.get(node);
    if (!target) throw new InputProblem(`alias *${node.source} refers to no earlier anchor in this document`);
    return target;
  }

  private spend(units: number): void {
    this.budget.remaining -= units;
    if (this.budget.remaining < 0) {
      throw new InputProblem(`aliases expand past ${this.budget.limit} nodes and characters (the limit grows with the input's size)`);
    }
  }

  read(node: unknown, depth = 0): Json {
    if (depth > MAX_DEPTH) throw new InputProblem(`nesting deeper than ${MAX_DEPTH} levels`);
    if (node === null || node === undefined) {
      this.spend(1);
      return null;
    }
    if (isAlias(node)) {
      const target = this.target(node);
      if (this.expanding.has(target)) throw new InputProblem(`alias *${node.source} refers to the node that contains it`);
      this.expanding.add(target);
      try {
        return this.read(target, depth);
      } finally {
        this.expanding.delete(target);
      }
    }
    if (isScalar(node)) return this.scalar(node);
    if (isMap(node)) {
      if (!MAP_TAGS.has(node.tag)) throw new InputProblem(`tag ${node.tag} is not supported on a mapping`);
      return this.mapping(node.items, depth);
    }
    if (isSeq(node)) {
      if (!SEQ_TAGS.has(node.tag)) throw new InputProblem(`tag ${node.tag} is not supported on a sequence`);
      this.spend(1);
      return node.items.map((item) => this.read(item, depth + 1));
    }
    throw new InputProblem('unexpected YAML node');
  }

  private scalar(node: Scalar): Json {
    const meaning = scalarMeaning(node);
    this.spend(1 + (meaning.kind === 'string' ? meaning.value.length : 0));
    switch (meaning.kind) {
      case 'string':
        return meaning.value;
      case 'null':
        return null;
      case 'bool':
        return meaning.value;
      case 'int':
        return Number(meaning.value);
      case 'float':
        if (!Number.isFinite(meaning.value)) throw new InputProblem(`${String((node as Scalar & { source?: unknown }).source)} has no JSON form (kubectl rejects it)`);
        return meaning.value;
    }
  }

  /** The JSON key kubectl makes of a YAML key (sigs.k8s.io/yaml: booleans and integers become their text). */
  key(node: unknown): string {
    const scalar = isAlias(node) ? this.target(node) : node;
    if (!isScalar(scalar)) throw new InputProblem('a map key is a collection or empty, which kubectl rejects');
    const meaning = scalarMeaning(scalar);
    this.spend(1 + (meaning.kind === 'string' ? meaning.value.length : 0));
    switch (meaning.kind) {
      case 'string':
        return meaning.value;
      case 'bool':
        return String(meaning.value);
      case 'int':
        if (meaning.value > 2n ** 63n - 1n) break;
        return meaning.value.toString();
      default:
        break;
    }
    throw new InputProblem(`map key ${JSON.stringify(String(scalar.source ?? scalar.value))} is a ${meaning.kind}, which kubectl rejects or rewrites`);
  }

  private mapping(pairs: readonly Pair[], depth: number): { [key: string]: Json } {
    this.spend(1);
    const result: { [key: string]: Json } = {};
    const explicit = new Set<string>();
    for (const pair of pairs) {
      if (isMergeKey(pair.key)) {
        assign(result, this.merged(pair.value, depth));
        continue;
      }
      const key = this.key(pair.key);
      if (explicit.has(key)) throw new InputProblem(`two keys both mean ${JSON.stringify(key)} to kubectl`);
      explicit.add(key);
      setKey(result, key, this.read(pair.value, depth + 1));
    }
    return result;
  }

  /** go-yaml v2 merges in key order (a later key wins), and earlier maps of a merged list win over later ones. */
  private merged(value: unknown, depth: number): { [key: string]: Json } {
    const resolved = isAlias(value) ? this.target(value) : value;
    const sources = isSeq(resolved) ? [...resolved.items].reverse() : [value];
    const result: { [key: string]: Json } = {};
    for (const source of sources) {
      const meaning = this.read(source, depth);
      if (meaning === null || typeof meaning !== 'object' || Array.isArray(meaning)) {
        throw new InputProblem('a merge key (<<) must refer to a mapping or a list of mappings');
      }
      assign(result, meaning);
    }
    return result;
  }
}

/**
 * The work one input may expand to: a few times its own size, so that aliases can share blocks but a small
 * file cannot become a huge one (a billion-laughs document stops here, in time and memory bounded by its size).
 */
export function newBudget(inputLength: number): Budget {
  const limit = 4 * inputLength + 262_144;
  return { remaining: limit, limit };
}
