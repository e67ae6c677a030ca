/**
 * Turns config file text into an InjectorConfig, or one readable error naming the key. Pure: the watcher reads
 * the file, this only judges it.
 */
import { Ajv, type ErrorObject } from 'ajv';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { defaultConfig } from '../core/defaults.js';
import { isPinnedImage, PINNED_IMAGE_RULE } from '../core/image.js';
import { isValidMountPath } from '../core/overrides.js';
import { isPositiveQuantity } from '../core/quantity.js';
import { sidecarScript } from '../core/sidecar-command.js';
import type { InjectorConfig } from '../core/types.js';
import { configFileSchema, type ConfigFile } from './schema.js';

/** The continuous missed-pods audit of `serve` (src/audit/auditor.ts); off unless asked for. */
export interface AuditSettings {
  missingSidecars: boolean;
  intervalSeconds: number;
}

export const DEFAULT_AUDIT: AuditSettings = { missingSidecars: false, intervalSeconds: 300 };

/** The engine's configuration plus what only the server reads. */
export type ServerConfig = InjectorConfig & { audit: AuditSettings };

/** The audit settings of a configuration (the defaults for one built without a file). */
export function auditSettingsOf(config: InjectorConfig): AuditSettings {
  const audit = (config as Partial<ServerConfig>).audit;
  return audit === undefined ? DEFAULT_AUDIT : audit;
}

export type ConfigResult = { ok: true; config: ServerConfig } | { ok: false; error: string };

// Compiled once, on the first config read: ajv is already among fastify's dependencies and loads in ~40 ms.
let validate: ((value: unknown) => value is ConfigFile) & { errors?: ErrorObject[] | null } | undefined;

function validator(): NonNullable<typeof validate> {
  validate ??= new Ajv({ allErrors: true, strict: true }).compile<ConfigFile>(configFileSchema);
  return validate;
}

function keyName(instancePath: string): string {
  const key = instancePath.replace(/^\//, '').split('/').join('.');
  return key === '' ? '(top level)' : key;
}

/** One sentence per key, naming it: `sidecar.imagePullPolicy: unknown key`, `nativeSidecar: must be one of …`. */
function describeSchemaErrors(errors: readonly ErrorObject[]): string {
  const messages = errors.map((error) => {
    if (error.keyword === 'additionalProperties') {
      const prefix = error.instancePath === '' ? '' : `${keyName(error.instancePath)}.`;
      return `${prefix}${String(error.params.additionalProperty)}: unknown key`;
    }
    if (error.keyword === 'enum') {
      const allowed = (error.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ');
      return `${keyName(error.instancePath)}: must be one of ${allowed}`;
    }
    return `${keyName(error.instancePath)}: ${error.message ?? error.keyword}`;
  });
  return [...new Set(messages)].join('; ');
}

/** Checks the schema cannot express. */
function semanticErrors(config: InjectorConfig): string[] {
  const errors: string[] = [];
  if (!isPinnedImage(config.sidecar.image)) errors.push(`sidecar.image: ${PINNED_IMAGE_RULE}`);
  for (const [key, path] of [['sidecar.mountPath', config.sidecar.mountPath], ['appMountPath', config.appMountPath]] as const) {
    if (!isValidMountPath(path)) errors.push(`${key}: must be an absolute path without ".." or ":"`);
  }
  if (!isPositiveQuantity(config.sidecar.resources.cpu)) errors.push('sidecar.resources.cpu: not a positive CPU quantity such as 25m');
  if (!isPositiveQuantity(config.sidecar.resources.memory)) errors.push('sidecar.resources.memory: not a positive memory quantity such as 32Mi');
  config.allowedImages.forEach((pattern, index) => {
    try {
      new RegExp(pattern);
    } catch (error) {
      errors.push(`allowedImages[${index}]: not a regular expression (${error instanceof Error ? error.message : String(error)})`);
    }
  });
  return errors;
}

export function configFromFile(file: ConfigFile): ServerConfig {
  const base = defaultConfig();
  const sidecarMountPath = file.sidecar?.mountPath ?? base.sidecar.mountPath;
  return {
    sidecar: {
      name: file.sidecar?.name ?? base.sidecar.name,
      image: file.sidecar?.image ?? base.sidecar.image,
      command: file.sidecar?.command ?? base.sidecar.command,
      // The default script writes into the sidecar's mount: follow a moved mount path unless args are given.
      args: file.sidecar?.args ?? [sidecarScript(`${sidecarMountPath}/index.html`)],
      resources: {
        cpu: file.sidecar?.resources?.cpu ?? base.sidecar.resources.cpu,
        memory: file.sidecar?.resources?.memory ?? base.sidecar.resources.memory,
      },
      mountPath: sidecarMountPath,
    },
    appMountPath: file.appMountPath ?? base.appMountPath,
    volume: {
      name: file.volume?.name ?? base.volume.name,
      source: file.volume?.source ?? base.volume.source,
    },
    shareProcessNamespace: file.shareProcessNamespace ?? base.shareProcessNamespace,
    nativeSidecar: file.nativeSidecar ?? base.nativeSidecar,
    classicRunToCompletion: file.classicRunToCompletion ?? base.classicRunToCompletion,
    excludedNamespaces: file.excludedNamespaces ?? base.excludedNamespaces,
    allowedImages: file.allowedImages ?? base.allowedImages,
    failure: file.failure ?? base.failure,
    podSecurity: { defaultLevel: file.podSecurity?.defaultLevel ?? base.podSecurity.defaultLevel },
    audit: {
      missingSidecars: file.audit?.missingSidecars ?? DEFAULT_AUDIT.missingSidecars,
      intervalSeconds: file.audit?.intervalSeconds ?? DEFAULT_AUDIT.intervalSeconds,
    },
  };
}

export function parseConfig(text: string): ConfigResult {
  let raw: unknown;
  try {
    // A ConfigMap holds one document; `uniqueKeys` catches a key given twice, a classic copy-paste slip.
    raw = parseYaml(text, { uniqueKeys: true, prettyErrors: false });
  } catch (error) {
    const message = error instanceof YAMLParseError ? error.message.split('\n')[0] : String(error);
    return { ok: false, error: `not valid YAML: ${message}` };
  }
  if (raw === null || raw === undefined) raw = {};
  const check = validator();
  if (!check(raw)) return { ok: false, error: describeSchemaErrors(check.errors ?? []) };
  const config = configFromFile(raw);
  const errors = semanticErrors(config);
  return errors.length > 0 ? { ok: false, error: errors.join('; ') } : { ok: true, config };
}
