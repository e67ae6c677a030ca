/**
 * Request bodies: only `application/json` (any parameters, e.g. charset) is read, up to the body limit, and
 * parsed by `parseJsonBody`; everything else is a 415 before a byte of the body is read.
 */
import { parseJsonBody } from '../json-body.js';
import { appWide, BadRequest } from './shared.js';

export interface BodyOptions {
  bodyLimit: number;
}

export const bodyPlugin = appWide<BodyOptions>((app, { bodyLimit }, done) => {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit }, (_request, body, parsed) => {
    const result = parseJsonBody(typeof body === 'string' ? body : body.toString('utf8'));
    if (result.ok) parsed(null, result.value);
    else parsed(new BadRequest(result.reason), undefined);
  });
  done();
});
