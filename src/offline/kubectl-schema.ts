/**
 * A `yaml` schema whose plain-scalar rules are kubectl's (see kubectl-scalars.ts). Parsing with it gives every
 * scalar the value kubectl reads; stringifying with it quotes every string kubectl would otherwise read as a
 * boolean, null, number or merge key, and writes untouched numbers, booleans and nulls exactly as they were.
 */
import { Scalar, YAMLMap, YAMLSeq, type CollectionTag, type ParseOptions, type DocumentOptions, type SchemaOptions, type ScalarTag } from 'yaml';
import { stringTag, mapTag, seqTag } from 'yaml/util';
import { resolvePlain, type PlainMeaning } from './kubectl-scalars.js';

/** A RegExp whose `test` is kubectl's resolution: `yaml` asks tags' `test` both when parsing and when quoting. */
class Resolves extends RegExp {
  constructor(private readonly accepts: (meaning: PlainMeaning) => boolean) {
    super('(?:)');
  }
  override test(text: string): boolean {
    return this.accepts(resolvePlain(text));
  }
}

/** Keeps the source text of an untouched scalar when it still means the value held. */
function sourceOr(item: Scalar, fallback: () => string): string {
  const { source, value } = item as Scalar & { source?: string };
  if (typeof source === 'string' && item.type === Scalar.PLAIN) {
    const meaning = resolvePlain(source);
    const same =
      (meaning.kind === 'null' && value === null) ||
      (meaning.kind === 'bool' && meaning.value === value) ||
      (meaning.kind === 'int' && typeof value === 'number' && Number(meaning.value) === value) ||
      (meaning.kind === 'float' && meaning.value === value);
    if (same) return source;
  }
  return fallback();
}

function numberText(value: unknown): string {
  const n = Number(value);
  // JSON values are finite; an integer past 1e21 prints as `1e+21`, which kubectl reads as the same float.
  return Number.isInteger(n) && Math.abs(n) < 1e21 ? BigInt(n).toString() : String(n);
}

const nullTag: ScalarTag = {
  identify: (value) => value === null || value === undefined,
  default: true,
  tag: 'tag:yaml.org,2002:null',
  test: new Resolves((m) => m.kind === 'null'),
  resolve: () => new Scalar(null),
  stringify: (item) => sourceOr(item, () => 'null'),
};

const boolTag: ScalarTag = {
  identify: (value) => typeof value === 'boolean',
  default: true,
  tag: 'tag:yaml.org,2002:bool',
  test: new Resolves((m) => m.kind === 'bool'),
  resolve: (text) => {
    const meaning = resolvePlain(text);
    return new Scalar(meaning.kind === 'bool' && meaning.value);
  },
  stringify: (item) => sourceOr(item, () => (item.value ? 'true' : 'false')),
};

const intTag: ScalarTag = {
  identify: (value) => typeof value === 'number' && Number.isInteger(value),
  default: true,
  tag: 'tag:yaml.org,2002:int',
  test: new Resolves((m) => m.kind === 'int'),
  resolve: (text) => {
    const meaning = resolvePlain(text);
    return new Scalar(meaning.kind === 'int' ? Number(meaning.value) : Number.NaN);
  },
  stringify: (item) => sourceOr(item, () => numberText(item.value)),
};

const floatTag: ScalarTag = {
  identify: (value) => typeof value === 'number',
  default: true,
  tag: 'tag:yaml.org,2002:float',
  test: new Resolves((m) => m.kind === 'float'),
  resolve: (text) => {
    const meaning = resolvePlain(text);
    return new Scalar(meaning.kind === 'float' || meaning.kind === 'int' ? Number(meaning.value) : Number.NaN);
  },
  stringify: (item) => sourceOr(item, () => numberText(item.value)),
};

/** A plain `<<` key merges a mapping in go-yaml; quoting a `<<` string keeps it a key. */
const mergeTag: ScalarTag = {
  default: true,
  tag: 'tag:yaml.org,2002:merge',
  test: new Resolves((m) => m.kind === 'merge'),
  resolve: () => new Scalar('<<'),
  stringify: () => '<<',
};

/**
 * Tags kept as written: their meaning is worked out by meaning.ts (which refuses what it cannot carry), and an
 * untouched node is written back with its tag.
 */
const keptScalar = (tag: string): ScalarTag => ({ ...stringTag, default: false, identify: undefined, tag });
// Their own node classes, so that `yaml` never picks these tags for an untagged map or sequence.
class KeptMap extends YAMLMap {}
class KeptSeq extends YAMLSeq {}
const keptCollection = (tag: string, base: CollectionTag, nodeClass: typeof KeptMap | typeof KeptSeq): CollectionTag => ({
  ...base,
  default: false,
  identify: undefined,
  tag,
  nodeClass,
});

const kubectlTags = [
  nullTag,
  boolTag,
  intTag,
  floatTag,
  mergeTag,
  keptScalar('tag:yaml.org,2002:binary'),
  keptScalar('tag:yaml.org,2002:timestamp'),
  keptCollection('tag:yaml.org,2002:set', mapTag, KeptMap),
  keptCollection('tag:yaml.org,2002:omap', seqTag, KeptSeq),
  keptCollection('tag:yaml.org,2002:pairs', seqTag, KeptSeq),
];

/** Options for parsing and stringifying manifests as kubectl reads them. */
export const KUBECTL_YAML: ParseOptions & DocumentOptions & SchemaOptions = {
  schema: 'failsafe',
  customTags: (failsafe) => [...kubectlTags, ...failsafe],
  merge: false,
  prettyErrors: false,
  version: '1.1',
};
