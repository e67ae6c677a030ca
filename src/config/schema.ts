/**
 * The config file's schema (JSON Schema, checked with ajv) and its TypeScript shape. Every key is optional: what
 * the file leaves out keeps its default, so a ConfigMap only has to say what it changes.
 */
import type { Volume } from 'kubernetes-types/core/v1.js';
import type { PodSecurityLevel } from '../core/types.js';

export interface ConfigFile {
  sidecar?: {
    name?: string;
    image?: string;
    command?: string[];
    args?: string[];
    resources?: { cpu?: string; memory?: string };
    mountPath?: string;
  };
  appMountPath?: string;
  volume?: { name?: string; source?: Omit<Volume, 'name'> };
  shareProcessNamespace?: boolean;
  nativeSidecar?: 'auto' | 'always' | 'never';
  classicRunToCompletion?: 'skip' | 'inject';
  excludedNamespaces?: string[];
  allowedImages?: string[];
  failure?: 'open' | 'closed';
  podSecurity?: { defaultLevel?: PodSecurityLevel };
  audit?: { missingSidecars?: boolean; intervalSeconds?: number };
}

const DNS_LABEL = { type: 'string', pattern: '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$' } as const;
const NON_EMPTY = { type: 'string', minLength: 1 } as const;
const QUANTITY = { type: 'string', minLength: 1, maxLength: 32 } as const;

export const configFileSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    sidecar: {
      type: 'object',
      additionalProperties: false,
      properties: {
        name: DNS_LABEL,
        image: NON_EMPTY,
        command: { type: 'array', items: { type: 'string' }, minItems: 1 },
        args: { type: 'array', items: { type: 'string' } },
        resources: {
          type: 'object',
          additionalProperties: false,
          properties: { cpu: QUANTITY, memory: QUANTITY },
        },
        mountPath: NON_EMPTY,
      },
    },
    appMountPath: NON_EMPTY,
    volume: {
      type: 'object',
      additionalProperties: false,
      properties: {
        name: DNS_LABEL,
        // Any one Kubernetes volume source (`emptyDir: {medium: Memory}`, …); the API server validates its shape.
        source: { type: 'object', minProperties: 1, maxProperties: 1 },
      },
    },
    shareProcessNamespace: { type: 'boolean' },
    nativeSidecar: { enum: ['auto', 'always', 'never'] },
    classicRunToCompletion: { enum: ['skip', 'inject'] },
    excludedNamespaces: { type: 'array', items: DNS_LABEL },
    allowedImages: { type: 'array', items: NON_EMPTY },
    failure: { enum: ['open', 'closed'] },
    podSecurity: {
      type: 'object',
      additionalProperties: false,
      properties: { defaultLevel: { enum: ['privileged', 'baseline', 'restricted'] } },
    },
    audit: {
      type: 'object',
      additionalProperties: false,
      properties: {
        missingSidecars: { type: 'boolean' },
        // Below a minute the audit would cost more than it tells; above a day it would not warn in time.
        intervalSeconds: { type: 'integer', minimum: 60, maximum: 86400 },
      },
    },
  },
} as const;
