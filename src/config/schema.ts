/**
 * The config file's schema. Every key is optional: what the file leaves out keeps its default, so a ConfigMap
 * only has to say what it changes.
 */
import Type, { type Static } from 'typebox';

const NonEmpty = Type.String({ minLength: 1 });
const Quantity = Type.String({ minLength: 1, maxLength: 32 });
const oneOf = <const T extends string[]>(...values: T) => Type.Union(values.map((v) => Type.Literal(v)));

export const ConfigFileSchema = Type.Object(
  {
    sidecar: Type.Optional(
      Type.Object(
        {
          name: Type.Optional(Type.String({ pattern: '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$' })),
          image: Type.Optional(NonEmpty),
          command: Type.Optional(Type.Array(Type.String(), { minItems: 1 })),
          args: Type.Optional(Type.Array(Type.String())),
          resources: Type.Optional(
            Type.Object({ cpu: Type.Optional(Quantity), memory: Type.Optional(Quantity) }, { additionalProperties: false }),
          ),
          mountPath: Type.Optional(NonEmpty),
        },
        { additionalProperties: false },
      ),
    ),
    appMountPath: Type.Optional(NonEmpty),
    volume: Type.Optional(
      Type.Object(
        {
          name: Type.Optional(Type.String({ pattern: '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$' })),
          // Any Kubernetes volume source (`emptyDir: {medium: Memory}`, …); the API server validates its shape.
          source: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { minProperties: 1, maxProperties: 1 })),
        },
        { additionalProperties: false },
      ),
    ),
    shareProcessNamespace: Type.Optional(Type.Boolean()),
    nativeSidecar: Type.Optional(oneOf('auto', 'always', 'never')),
    classicRunToCompletion: Type.Optional(oneOf('skip', 'inject')),
    excludedNamespaces: Type.Optional(Type.Array(Type.String({ pattern: '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$' }))),
    allowedImages: Type.Optional(Type.Array(NonEmpty)),
    failure: Type.Optional(oneOf('open', 'closed')),
    podSecurity: Type.Optional(
      Type.Object({ defaultLevel: Type.Optional(oneOf('privileged', 'baseline', 'restricted')) }, { additionalProperties: false }),
    ),
  },
  { additionalProperties: false },
);

export type ConfigFile = Static<typeof ConfigFileSchema>;
