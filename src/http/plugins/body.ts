/**
 * Request bodies: only uncompressed `application/json` (any parameters, e.g. charset) is read, up to the body
 * limit, and parsed by `parseJsonBody`; everything else is a 415 before a byte of the body is read.
 */
import { parseJsonBody } from '../json-body.js';
import { oneLine } from '../../error-line.js';
import { DeferredBody } from '../offload.js';
import { appWide, BadRequest } from './shared.js';

/**
 * The API server never compresses what it sends; a compressed body would otherwise reach JSON.parse as bytes (a
 * misleading 400) or, sent with the header but plain, be read as if the header were not there. `identity` is
 * no encoding at all.
 */
function unsupportedEncoding(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const codings = header
    .split(',')
    .map((coding) => coding.trim().toLowerCase())
    .filter((coding) => coding !== '' && coding !== 'identity');
  return codings.length === 0 ? undefined : codings.join(', ');
}

export interface BodyOptions {
  bodyLimit: number;
  /** Bodies left unparsed for the admission worker (src/http/offload.ts), when it wants them. */
  defer?: (text: string) => boolean;
}

export const bodyPlugin = appWide<BodyOptions>((app, { bodyLimit, defer }, done) => {
  app.addHook('preParsing', (request, _reply, payload, next) => {
    // Only the one route that reads a body (POST /mutate) cares: a probe is answered whatever its headers.
    const encoding = request.method === 'POST' ? unsupportedEncoding(request.headers['content-encoding']) : undefined;
    if (encoding === undefined) {
      next(null, payload);
      return;
    }
    next(new BadRequest(`unsupported content-encoding ${JSON.stringify(oneLine(encoding, 40))}: send the body uncompressed`, 415, 'content-encoding'));
  });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit }, (_request, body, parsed) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (defer?.(text) === true) {
      parsed(null, new DeferredBody(text));
      return;
    }
    const result = parseJsonBody(text);
    if (result.ok) parsed(null, result.value);
    else parsed(new BadRequest(result.reason), undefined);
  });
  done();
});
