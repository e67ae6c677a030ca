/**
 * Turns config file text into an InjectorConfig, or one readable error naming the key. Pure: the watcher reads
 * the file, this only judges it.
 */
import Value from 'typebox/value';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { defaultConfig } from '../core/defaults.js';
import { isValidMountPath } from '../core/overrides.js';
import { sidecarScript } from '../core/sidecar-command.js';
import type { InjectorConfig } from '../core/types.js';
import { ConfigFileSchema, type ConfigFile } from './schema.js';

export type ConfigResult = { ok: true; config: InjectorConfig } | { ok: false; error: string };

interface SchemaError {
  keyword: string;
  instancePath: string;
  message: string;
  params: Record<string, unknown>;
}

function keyName(instancePath: string): string {
  const key = instancePath.replace(/^\//, '').split('/').join('.');
  return key === '' ? '(top level)' : key;
}

/** The schema library reports a union of literals as one error per literal: fold them into one sentence. */
function describeSchemaErrors(errors: readonly SchemaError[]): string {
  const messages: string[] = [];
  const allowedByPath = new Map<string, unknown[]>();
  for (const error of errors) {
    if (error.keyword === 'const') {
      const list = allowedByPath.get(error.instancePath) ?? [];
      list.push(error.params.allowedValue);
      allowedByPath.set(error.instancePath, list);
    }
  }
  for (const error of errors) {
    if (error.keyword === 'boolean' || error.keyword === 'const') continue;
    if (error.keyword === 'additionalProperties') {
      const names = (error.params.additionalProperties as string[] | undefined) ?? [];
      const prefix = error.instancePath === '' ? '' : `${keyName(error.instancePath)}.`;
      messages.push(...names.map((n) => `${prefix}${n}: unknown key`));
    } else if (error.keyword === 'anyOf' && allowedByPath.has(error.instancePath)) {
      const allowed = allowedByPath.get(error.instancePath)!.map((v) => JSON.stringify(v)).join(', ');
      messages.push(`${keyName(error.instancePath)}: must be one of ${allowed}`);
    } else {
      messages.push(`${keyName(error.instancePath)}: ${error.message}`);
    }
  }
  return [...new Set(messages)].join('; ');
}

/** Checks the schema cannot express. */
function semanticErrors(config: InjectorConfig): string[] {
  const errors: string[] = [];
  const image = config.sidecar.image;
  const tagged = /@sha256:[a-f0-9]{64}$/.test(image) || /:[\w][\w.-]{0,127}$/.test(image.split('/').at(-1) ?? '');
  if (!tagged || /:latest$/.test(image)) errors.push('sidecar.image: must be pinned to a tag or digest other than latest');
  for (const [key, path] of [['sidecar.mountPath', config.sidecar.mountPath], ['appMountPath', config.appMountPath]] as const) {
    if (!isValidMountPath(path)) errors.push(`${key}: must be an absolute path without ".." or ":"`);
  }
  if (!/^(?:\d+(?:\.\d+)?|\.\d+)m?$/.test(config.sidecar.resources.cpu)) errors.push('sidecar.resources.cpu: not a CPU quantity such as 25m');
  if (!/^(?:\d+(?:\.\d+)?|\.\d+)(?:k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/.test(config.sidecar.resources.memory)) {
    errors.push('sidecar.resources.memory: not a memory quantity such as 32Mi');
  }
  config.allowedImages.forEach((pattern, index) => {
    try {
      new RegExp(pattern);
    } catch (error) {
      errors.push(`allowedImages[${index}]: not a regular expression (${error instanceof Error ? error.message : String(error)})`);
    }
  });
  return errors;
}

export function configFromFile(file: ConfigFile): InjectorConfig {
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
      source: (file.volume?.source as InjectorConfig['volume']['source'] | undefined) ?? base.volume.source,
    },
    shareProcessNamespace: file.shareProcessNamespace ?? base.shareProcessNamespace,
    nativeSidecar: file.nativeSidecar ?? base.nativeSidecar,
    classicRunToCompletion: file.classicRunToCompletion ?? base.classicRunToCompletion,
    excludedNamespaces: file.excludedNamespaces ?? base.excludedNamespaces,
    allowedImages: file.allowedImages ?? base.allowedImages,
    failure: file.failure ?? base.failure,
    podSecurity: { defaultLevel: file.podSecurity?.defaultLevel ?? base.podSecurity.defaultLevel },
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
  if (!Value.Check(ConfigFileSchema, raw)) {
    return { ok: false, error: describeSchemaErrors([...Value.Errors(ConfigFileSchema, raw)] as SchemaError[]) };
  }
  const config = configFromFile(raw);
  const errors = semanticErrors(config);
  return errors.length > 0 ? { ok: false, error: errors.join('; ') } : { ok: true, config };
}
