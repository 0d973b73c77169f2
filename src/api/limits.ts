/**
 * Limits on what one client can ask of the service: query depth and size,
 * start/stop rate per token, subscriptions per connection. Each refusal has
 * its own code, so a client can tell a bad query from a busy service.
 */
import { GraphQLError, Kind, type ASTVisitor, type FragmentDefinitionNode, type SelectionSetNode, type ValidationContext } from 'graphql';
import { VliveError } from '../errors.js';

export const apiLimits = {
  /** Deepest selection nesting a query may have. */
  maxDepth: 8,
  /** Most fields a query may select, fragments expanded. */
  maxFields: 300,
  /** Starts and stops one token may make per window, unless its entry in the tokens file says otherwise. */
  startStopPerWindow: 120,
  startStopWindowMs: 10_000,
  /** Active subscriptions on one WebSocket connection. */
  maxSubscriptionsPerConnection: 20,
} as const;

/**
 * A validation rule bounding depth and field count. Fragments are expanded
 * (with a guard against cycles, which GraphQL's own rules reject anyway).
 */
export function queryCostRule(context: ValidationContext): ASTVisitor {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const def of context.getDocument().definitions) {
    if (def.kind === Kind.FRAGMENT_DEFINITION) fragments.set(def.name.value, def);
  }
  let fields = 0;
  const walk = (set: SelectionSetNode, depth: number, seen: ReadonlySet<string>): number => {
    let deepest = depth;
    for (const sel of set.selections) {
      if (sel.kind === Kind.FIELD) {
        fields += 1;
        if (sel.selectionSet) deepest = Math.max(deepest, walk(sel.selectionSet, depth + 1, seen));
      } else if (sel.kind === Kind.INLINE_FRAGMENT) {
        deepest = Math.max(deepest, walk(sel.selectionSet, depth, seen));
      } else {
        const frag = fragments.get(sel.name.value);
        if (frag && !seen.has(frag.name.value)) {
          deepest = Math.max(deepest, walk(frag.selectionSet, depth, new Set([...seen, frag.name.value])));
        }
      }
    }
    return deepest;
  };
  return {
    OperationDefinition(node) {
      fields = 0;
      const depth = walk(node.selectionSet, 1, new Set());
      if (depth > apiLimits.maxDepth) {
        context.reportError(
          new GraphQLError(`query depth ${depth} exceeds the limit of ${apiLimits.maxDepth}`, {
            nodes: [node],
            extensions: { code: 'QUERY_TOO_COMPLEX' },
          }),
        );
      } else if (fields > apiLimits.maxFields) {
        context.reportError(
          new GraphQLError(`query selects ${fields} fields, more than the limit of ${apiLimits.maxFields}`, {
            nodes: [node],
            extensions: { code: 'QUERY_TOO_COMPLEX' },
          }),
        );
      }
    },
  };
}

/** A sliding-window counter per key (the token's name). */
export class RateLimiter {
  readonly #hits = new Map<string, number[]>();

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Counts one hit for key, or throws RATE_LIMITED when the window holds `limit` (default: the limiter's) already. */
  take(key: string, what: string, limit: number = this.limit): void {
    const t = this.now();
    const recent = (this.#hits.get(key) ?? []).filter((h) => t - h < this.windowMs);
    if (recent.length >= limit) {
      this.#hits.set(key, recent);
      const retryMs = this.windowMs - (t - (recent[0] ?? t));
      throw new VliveError('RATE_LIMITED', `too many ${what}: at most ${limit} per ${this.windowMs / 1000} s; retry in ${Math.ceil(retryMs / 1000)} s`);
    }
    recent.push(t);
    this.#hits.set(key, recent);
  }
}
