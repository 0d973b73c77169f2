/**
 * Validation of create and update inputs. Every limit is here, and every
 * message names the field. Nothing is written before this passes.
 */
import { badInput, notFound } from '../errors.js';
import { parsePushTarget, parseSourceUrl } from '../media/urls.js';
import type { ChannelFields, ChannelRecord, ChannelRepository } from './repository.js';

export interface CreateInput {
  name: string;
  sourceType: string;
  vodResourceId?: string | null;
  sourceUrl?: string | null;
  loop?: boolean | null;
  pushTargets?: string[] | null;
  connectTimeoutMs?: number | null;
}

export type UpdateInput = Partial<Omit<CreateInput, 'sourceType'>>;

export const limits = {
  nameMaxLength: 200,
  pushTargetsMax: 8,
  connectTimeoutMsMin: 100,
  connectTimeoutMsMax: 120_000,
  idMaxLength: 64,
} as const;

export function checkName(name: string): string {
  const trimmed = name.trim();
  if (trimmed === '') throw badInput('name', 'must not be empty');
  if (trimmed.length > limits.nameMaxLength) throw badInput('name', `must be at most ${limits.nameMaxLength} characters`);
  // Control characters have no business in a display name and break logs.
  if (/\p{Cc}/u.test(trimmed)) throw badInput('name', 'must not contain control characters');
  return trimmed;
}

export function checkId(field: string, id: string): string {
  if (id.length === 0 || id.length > limits.idMaxLength || !/^[A-Za-z0-9_-]+$/.test(id)) {
    throw badInput(field, 'is not a valid id');
  }
  return id;
}

function checkTargets(targets: string[]): string[] {
  if (targets.length > limits.pushTargetsMax) throw badInput('pushTargets', `at most ${limits.pushTargetsMax} targets`);
  for (const t of targets) parsePushTarget(t);
  return targets;
}

function checkTimeout(ms: number): number {
  if (!Number.isInteger(ms) || ms < limits.connectTimeoutMsMin || ms > limits.connectTimeoutMsMax) {
    throw badInput('connectTimeoutMs', `must be a whole number from ${limits.connectTimeoutMsMin} to ${limits.connectTimeoutMsMax}`);
  }
  return ms;
}

async function checkVod(repo: ChannelRepository, id: string): Promise<string> {
  checkId('vodResourceId', id);
  if (!(await repo.getVod(id))) throw notFound('VOD resource', id);
  return id;
}

export async function validateCreate(input: CreateInput, repo: ChannelRepository): Promise<ChannelFields> {
  const name = checkName(input.name);
  const pushTargets = checkTargets(input.pushTargets ?? []);
  const connectTimeoutMs = checkTimeout(input.connectTimeoutMs ?? 10_000);
  const loop = input.loop ?? true;
  if (input.sourceType === 'VOD') {
    if (input.sourceUrl != null) throw badInput('sourceUrl', 'must be empty for a VOD channel');
    if (input.vodResourceId == null) throw badInput('vodResourceId', 'is required for a VOD channel');
    const vodResourceId = await checkVod(repo, input.vodResourceId);
    return { name, sourceType: 'VOD', vodResourceId, sourceUrl: null, loop, connectTimeoutMs, pushTargets };
  }
  if (input.sourceType === 'ONLINE') {
    if (input.vodResourceId != null) throw badInput('vodResourceId', 'must be empty for an ONLINE channel');
    if (input.sourceUrl == null) throw badInput('sourceUrl', 'is required for an ONLINE channel');
    parseSourceUrl(input.sourceUrl);
    return { name, sourceType: 'ONLINE', vodResourceId: null, sourceUrl: input.sourceUrl, loop, connectTimeoutMs, pushTargets };
  }
  throw badInput('sourceType', 'must be VOD or ONLINE');
}

export async function validateUpdate(rec: ChannelRecord, input: UpdateInput, repo: ChannelRepository): Promise<Partial<ChannelFields>> {
  const out: Partial<ChannelFields> = {};
  if (input.name != null) out.name = checkName(input.name);
  if (input.loop != null) out.loop = input.loop;
  if (input.pushTargets != null) out.pushTargets = checkTargets(input.pushTargets);
  if (input.connectTimeoutMs != null) out.connectTimeoutMs = checkTimeout(input.connectTimeoutMs);
  if (input.vodResourceId != null) {
    if (rec.sourceType !== 'VOD') throw badInput('vodResourceId', 'only a VOD channel has a VOD resource');
    out.vodResourceId = await checkVod(repo, input.vodResourceId);
  }
  if (input.sourceUrl != null) {
    if (rec.sourceType !== 'ONLINE') throw badInput('sourceUrl', 'only an ONLINE channel has a source URL');
    parseSourceUrl(input.sourceUrl);
    out.sourceUrl = input.sourceUrl;
  }
  return out;
}
