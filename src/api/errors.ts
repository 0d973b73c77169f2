/**
 * Turns errors into what clients see. A VliveError keeps its code and
 * message; GraphQL's own validation errors keep Apollo's codes; anything else
 * is an internal fault whose details go to the log, not to the client.
 */
import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import { unwrapResolverError } from '@apollo/server/errors';
import { VliveError } from '../errors.js';
import type { Logger } from '../log.js';

export function formatError(log: Logger) {
  return (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    const original = unwrapResolverError(error);
    if (original instanceof VliveError) {
      return {
        ...formatted,
        message: original.message,
        extensions: { code: original.code, ...(original.field ? { field: original.field } : {}) },
      };
    }
    // Apollo files every validation failure under GRAPHQL_VALIDATION_FAILED; our
    // cost rule's own code is more useful to a client, so it wins.
    const inner = error instanceof GraphQLError ? error.originalError : undefined;
    if (inner instanceof GraphQLError && inner.extensions['code'] === 'QUERY_TOO_COMPLEX') {
      return { ...formatted, extensions: { code: 'QUERY_TOO_COMPLEX' } };
    }
    const code = formatted.extensions?.['code'];
    if (typeof code === 'string' && code !== 'INTERNAL_SERVER_ERROR') {
      return { ...formatted, extensions: { code } };
    }
    log.error('internal error', { err: original instanceof Error ? (original.stack ?? original.message) : String(original) });
    return { message: 'internal server error', ...(formatted.path ? { path: formatted.path } : {}), extensions: { code: 'INTERNAL_SERVER_ERROR' } };
  };
}
