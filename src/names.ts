/**
 * The input rules every domain shares: a display name (channels, VOD
 * resources) and an id as the API receives it. Low in the house so that the
 * VOD library (src/vods/) and the channels (src/channels/) both use one rule
 * without importing each other. Imports only src/errors.ts.
 */
import { badInput } from './errors.js';

export const nameMaxLength = 200;
export const idMaxLength = 64;

/** A trimmed display name: not empty, at most nameMaxLength characters, no control characters. */
export function checkName(name: string): string {
  const trimmed = name.trim();
  if (trimmed === '') throw badInput('name', 'must not be empty');
  if (trimmed.length > nameMaxLength) throw badInput('name', `must be at most ${nameMaxLength} characters`);
  // Control characters have no business in a display name and break logs.
  if (/\p{Cc}/u.test(trimmed)) throw badInput('name', 'must not contain control characters');
  return trimmed;
}

/** An id as the API receives it (`field` names it in the error): 1..idMaxLength of [A-Za-z0-9_-]. */
export function checkId(field: string, id: string): string {
  if (id.length === 0 || id.length > idMaxLength || !/^[A-Za-z0-9_-]+$/.test(id)) {
    throw badInput(field, 'is not a valid id');
  }
  return id;
}
