// `node --import ./forbid-client-node.mjs …`: any import of @kubernetes/client-node fails to resolve, so a test
// can prove a code path never loads it (README: without cluster access the client is not even loaded).
import { register } from 'node:module';

const hooks = `
export async function resolve(specifier, context, next) {
  if (specifier === '@kubernetes/client-node' || specifier.startsWith('@kubernetes/client-node/')) {
    throw new Error('@kubernetes/client-node is forbidden in this process');
  }
  return next(specifier, context);
}
`;
register(`data:text/javascript,${encodeURIComponent(hooks)}`);
