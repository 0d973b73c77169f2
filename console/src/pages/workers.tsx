/**
 * Workers and nodes. Neither has an event in the API, so this page (and
 * only while it is open) reads them every 2 s. A worker's CPU share is the
 * difference of its cpuSeconds between two readings; a node's is its load.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import type { Api } from '../api.js';
import { ErrorText, Table } from '../components.js';
import { explain } from '../errors.js';
import { bytes, localTime } from '../format.js';
import { workersAndNodes, type NodeRow, type WorkerRow } from '../queries.js';

export function WorkersPage({ api, grafanaUrl }: { api: Api; grafanaUrl: string | null }) {
  const [data, setData] = useState<{ workers: WorkerRow[]; nodes: NodeRow[] } | null>(null);
  const [error, setError] = useState<string | null>(null);
  // pid → the last reading, and each worker's share of a core between the last two.
  const last = useRef(new Map<number, { cpu: number; at: number }>());
  const [cpu, setCpu] = useState<ReadonlyMap<number, number>>(new Map());
  useEffect(() => {
    const load = (): void =>
      void api
        .gql<{ workers: WorkerRow[]; nodes: NodeRow[] }>(workersAndNodes)
        .then((d) => {
          const now = Date.now();
          const shares = new Map<number, number>();
          for (const w of d.workers) {
            if (w.pid === null || w.cpuSeconds === null) continue;
            const before = last.current.get(w.pid);
            if (before !== undefined && now > before.at) shares.set(w.pid, (w.cpuSeconds - before.cpu) / ((now - before.at) / 1000));
            last.current.set(w.pid, { cpu: w.cpuSeconds, at: now });
          }
          setCpu(shares);
          setData(d);
          setError(null);
        })
        .catch((err: unknown) => setError(explain(err)));
    load();
    const t = setInterval(load, 2000);
    return () => clearInterval(t);
  }, []);
  return (
    <section aria-labelledby="workers-title">
      <h1 id="workers-title">Workers and nodes</h1>
      {grafanaUrl !== null ? (
        <p>
          <a href={grafanaUrl} target="_blank" rel="noopener noreferrer">
            Open the Grafana dashboards
          </a>{' '}
          (CPU and memory per worker and per channel over time)
        </p>
      ) : (
        <p class="muted">No Grafana configured (VLIVE_GRAFANA_URL).</p>
      )}
      <ErrorText text={error} />
      <h2>Workers of this node</h2>
      <Table columns={['Worker', 'State', 'PID', 'Pipelines', 'Memory (RSS)', 'CPU', 'Restarts', 'Last error']}>
        {(data?.workers ?? []).map((w) => (
          <tr>
            <td data-label="Worker">{w.id}</td>
            <td data-label="State">{w.state}</td>
            <td data-label="PID">{w.pid ?? '—'}</td>
            <td data-label="Pipelines">{w.pipelines}</td>
            <td data-label="Memory">{bytes(w.rssBytes)}</td>
            <td data-label="CPU" class="worker-cpu">
              {w.pid !== null && cpu.has(w.pid) ? `${((cpu.get(w.pid) ?? 0) * 100).toFixed(1)} % of a core` : '—'}
            </td>
            <td data-label="Restarts">{w.restarts}</td>
            <td data-label="Last error">{w.lastError ?? '—'}</td>
          </tr>
        ))}
      </Table>
      <h2>Nodes</h2>
      <Table columns={['Node', 'Alive', 'Channels', 'Capacity', 'CPU load', 'Heartbeat', 'API']}>
        {(data?.nodes ?? []).map((n) => (
          <tr>
            <td data-label="Node">{n.name}</td>
            <td data-label="Alive">{n.alive ? 'alive' : 'DEAD: its channels are being taken over'}</td>
            <td data-label="Channels">{n.running}</td>
            <td data-label="Capacity">{n.capacity}</td>
            <td data-label="CPU load">{Math.round(n.cpuLoad * 100)} %</td>
            <td data-label="Heartbeat">{localTime(n.heartbeatAt)}</td>
            <td data-label="API">{n.apiUrl}</td>
          </tr>
        ))}
      </Table>
    </section>
  );
}
