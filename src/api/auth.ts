/**
 * API tokens and roles. Tokens are configured as SHA-256 hashes in the file
 * named by VLIVE_TOKENS_FILE, never in clear. A presented token is hashed and
 * looked up, so the comparison never runs over the secret itself.
 *
 * Roles: viewer (queries and subscriptions) and operator (also mutations).
 * Without a tokens file the service runs in demo mode: everyone is an
 * operator, and config.ts keeps the API on loopback then.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { VliveError } from '../errors.js';

export type Role = 'viewer' | 'operator';

export interface Principal {
  readonly name: string;
  readonly role: Role;
  /**
   * Starts, stops and touches this token may make per 10 s; default 120
   * (apiLimits). A scripted client that drives many channels gets its own
   * token with a higher figure instead of raising everyone's.
   */
  readonly startStopsPer10s?: number;
}

/** Hash (hex) → principal; null in demo mode. */
export type TokenTable = ReadonlyMap<string, Principal> | null;

export const demoPrincipal: Principal = { name: 'demo', role: 'operator' };

export class TokensFileError extends Error {
  constructor(message: string) {
    super(`VLIVE_TOKENS_FILE: ${message}`);
    this.name = 'TokensFileError';
  }
}

export function loadTokens(path: string | null): TokenTable {
  if (path === null) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new TokensFileError(`cannot read ${path}: ${(err as Error).message}`);
  }
  const list = (parsed as { tokens?: unknown } | null)?.tokens;
  if (!Array.isArray(list) || list.length === 0) throw new TokensFileError('must hold {"tokens": [ … ]} with at least one token');
  const table = new Map<string, Principal>();
  list.forEach((entry: unknown, i) => {
    const e = entry as Record<string, unknown> | null;
    const name = e?.['name'];
    const role = e?.['role'];
    const sha = e?.['sha256'];
    if (typeof name !== 'string' || name === '' || name.length > 100) throw new TokensFileError(`tokens[${i}].name must be a non-empty string`);
    if (role !== 'viewer' && role !== 'operator') throw new TokensFileError(`tokens[${i}].role must be "viewer" or "operator"`);
    if (typeof sha !== 'string' || !/^[0-9a-fA-F]{64}$/.test(sha)) throw new TokensFileError(`tokens[${i}].sha256 must be 64 hex digits`);
    const limit = e?.['startStopsPer10s'];
    if (limit !== undefined && (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1)) {
      throw new TokensFileError(`tokens[${i}].startStopsPer10s must be a positive integer`);
    }
    table.set(sha.toLowerCase(), limit === undefined ? { name, role } : { name, role, startStopsPer10s: limit });
  });
  return table;
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** The principal for a credential: an `Authorization: Bearer …` value or a bare token. */
export function authenticate(tokens: TokenTable, credential: string | undefined): Principal {
  if (tokens === null) return demoPrincipal;
  if (credential === undefined || credential === '') {
    throw new VliveError('UNAUTHENTICATED', 'an API token is required: send Authorization: Bearer <token>');
  }
  const token = credential.startsWith('Bearer ') ? credential.slice('Bearer '.length).trim() : credential.trim();
  // Bounded before hashing: a token is short, a megabyte of header is not a token.
  const principal = token.length <= 512 ? tokens.get(hashToken(token)) : undefined;
  if (!principal) throw new VliveError('UNAUTHENTICATED', 'the API token is not valid');
  return principal;
}

export function requireOperator(principal: Principal): void {
  if (principal.role !== 'operator') {
    throw new VliveError('FORBIDDEN', `token "${principal.name}" has the viewer role; changes need an operator token`);
  }
}
