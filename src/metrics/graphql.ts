/**
 * GraphQL operation metrics as an Apollo Server plugin: a count and a
 * duration histogram per operation name and outcome. Operation names come
 * from clients, so the label is bounded: operations without a name, or that
 * never resolved (parse or validation failed), are "anonymous"; after
 * `maxOperationNames` distinct names, any new one is "other".
 */
import type { ApolloServerPlugin, BaseContext } from '@apollo/server';
import { Counter, Histogram, type Registry } from 'prom-client';

export interface GraphqlMetricsOptions {
  /** Distinct operation names kept as label values; later ones count as "other". Default 100. */
  maxOperationNames?: number;
}

/** Label values are bounded in length too: a 10 kB operation name is not a label. */
const maxNameLength = 100;

export class GraphqlMetrics {
  readonly #names = new Set<string>();
  readonly #max: number;
  readonly #operations: Counter<'operation' | 'outcome'>;
  readonly #duration: Histogram<'operation' | 'outcome'>;

  constructor(registry: Registry, options: GraphqlMetricsOptions = {}) {
    this.#max = options.maxOperationNames ?? 100;
    if (!Number.isSafeInteger(this.#max) || this.#max < 0) {
      throw new RangeError(`options.maxOperationNames must be a non-negative integer, got ${options.maxOperationNames}`);
    }
    this.#operations = new Counter({
      name: 'vlive_graphql_operations_total',
      help: 'GraphQL operations over HTTP by operation name ("anonymous" when unnamed or unresolved, "other" beyond the first 100 names) and outcome (ok, error).',
      labelNames: ['operation', 'outcome'] as const,
      registers: [registry],
    });
    this.#duration = new Histogram({
      name: 'vlive_graphql_operation_duration_seconds',
      help: 'Duration of GraphQL operations over HTTP, from request to response, seconds; labels as vlive_graphql_operations_total.',
      labelNames: ['operation', 'outcome'] as const,
      // A start waits for the origin to see the publish: seconds, not milliseconds.
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    });
  }

  /** The label value for an operation name. */
  label(name: string | null | undefined): string {
    if (name === null || name === undefined || name === '' || name.length > maxNameLength) return 'anonymous';
    if (this.#names.has(name)) return name;
    if (this.#names.size >= this.#max) return 'other';
    this.#names.add(name);
    return name;
  }

  plugin(): ApolloServerPlugin<BaseContext> {
    return {
      requestDidStart: async () => {
        const started = process.hrtime.bigint();
        let errored = false;
        let name: string | null = null;
        return {
          didResolveOperation: async (ctx) => {
            name = ctx.operationName ?? null;
          },
          didEncounterErrors: async () => {
            errored = true;
          },
          willSendResponse: async (ctx) => {
            const body = ctx.response.body;
            if (body.kind === 'single' && (body.singleResult.errors?.length ?? 0) > 0) errored = true;
            const labels = { operation: this.label(name), outcome: errored ? 'error' : 'ok' };
            this.#operations.inc(labels);
            this.#duration.observe(labels, Number(process.hrtime.bigint() - started) / 1e9);
          },
        };
      },
    };
  }
}
