/**
 * The programme query of schema.graphql (issue #22 item 2). Any valid token
 * may read it, viewers included, like every query. The rules live in
 * src/guide/programme.ts.
 */
import type { ProgrammeGuide } from '../guide/programme.js';
import { checkId } from '../names.js';
import type { VodRegistry } from '../vods/registry.js';

export function programmeResolvers(guide: () => Pick<ProgrammeGuide, 'read'>, vods: Pick<VodRegistry, 'list'>) {
  return {
    Query: {
      programme: async (_: unknown, a: { id: string; from?: Date | null; to?: Date | null }) => {
        const { programmes } = await guide().read(checkId('id', a.id), a.from, a.to);
        // One read of the library for the whole list, not one per entry; a deleted resource is null.
        const library = new Map((await vods.list()).map((v) => [v.id, v]));
        return (programmes[0]?.entries ?? []).map((e) => ({ ...e, vodResource: e.vodResourceId === null ? null : (library.get(e.vodResourceId) ?? null) }));
      },
    },
  };
}
