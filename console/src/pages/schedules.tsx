/** A channel's timed starts and stops: list, add (one-off in local time, or cron in a time zone), remove. */
import { useState } from 'preact/hooks';
import type { Api } from '../api.js';
import { ErrorText, Field } from '../components.js';
import { explain, fieldOf } from '../errors.js';
import { localTime } from '../format.js';
import { addSchedule, removeSchedule, type ScheduleView } from '../queries.js';

export function Schedules({ api, channelId, schedules, operator, onChange }: { api: Api; channelId: string; schedules: ScheduleView[]; operator: boolean; onChange: () => void }) {
  const [action, setAction] = useState<'START' | 'STOP'>('START');
  const [kind, setKind] = useState<'at' | 'cron'>('at');
  const [at, setAt] = useState('');
  const [cron, setCron] = useState('0 9 * * MON-FRI');
  const [timeZone, setTimeZone] = useState(Intl.DateTimeFormat().resolvedOptions().timeZone);
  const [error, setError] = useState<string | null>(null);
  const [errorField, setErrorField] = useState<string | null>(null);
  const fail = (err: unknown): void => {
    setError(explain(err));
    setErrorField(fieldOf(err));
  };
  const add = (): void => {
    setError(null);
    setErrorField(null);
    // datetime-local is the browser's wall clock; the API wants an instant.
    const when = at === '' ? '' : new Date(at);
    const input =
      kind === 'at'
        ? { action, at: when instanceof Date && !Number.isNaN(when.getTime()) ? when.toISOString() : at }
        : { action, cron, timeZone };
    api
      .gql(addSchedule, { id: channelId, input })
      .then(onChange)
      .catch(fail);
  };
  return (
    <section aria-labelledby="schedules-title">
      <h2 id="schedules-title">Schedules</h2>
      {schedules.length === 0 ? <p class="muted">none</p> : null}
      <ul class="schedules">
        {schedules.map((s) => (
          <li>
            {s.action} {s.cron !== null ? `“${s.cron}” in ${s.timeZone ?? 'UTC'}` : `once at ${localTime(s.at)}`} · next {localTime(s.nextRunAt)}
            {s.lastResult !== null ? ` · last: ${s.lastResult} (${localTime(s.lastRunAt)})` : ''}
            {operator ? (
              <button type="button" onClick={() => void api.gql(removeSchedule, { id: s.id }).then(onChange).catch(fail)} aria-label={`Remove schedule ${s.action} ${s.cron ?? s.at ?? ''}`}>
                Remove
              </button>
            ) : null}
          </li>
        ))}
      </ul>
      {operator ? (
        <form class="inline-form" onSubmit={(e) => (e.preventDefault(), add())}>
          <Field id="sch-action" label="Action">
            <select id="sch-action" value={action} onChange={(e) => setAction(e.currentTarget.value as 'START' | 'STOP')}>
              <option value="START">START</option>
              <option value="STOP">STOP</option>
            </select>
          </Field>
          <Field id="sch-kind" label="When">
            <select id="sch-kind" value={kind} onChange={(e) => setKind(e.currentTarget.value as 'at' | 'cron')}>
              <option value="at">once</option>
              <option value="cron">repeating (cron)</option>
            </select>
          </Field>
          {kind === 'at' ? (
            <Field id="sch-at" label="At (your time zone)" error={errorField === 'at' ? error : null}>
              <input id="sch-at" type="datetime-local" step="1" value={at} onInput={(e) => setAt(e.currentTarget.value)} />
            </Field>
          ) : (
            <>
              <Field id="sch-cron" label="Cron (min hour day month weekday)" error={errorField === 'cron' ? error : null}>
                <input id="sch-cron" value={cron} onInput={(e) => setCron(e.currentTarget.value)} />
              </Field>
              <Field id="sch-tz" label="Time zone" error={errorField === 'timeZone' ? error : null}>
                <input id="sch-tz" value={timeZone} onInput={(e) => setTimeZone(e.currentTarget.value)} />
              </Field>
            </>
          )}
          <button type="submit">Add schedule</button>
          {errorField === null || !['at', 'cron', 'timeZone'].includes(errorField) ? <ErrorText text={error} /> : null}
        </form>
      ) : null}
    </section>
  );
}
