/**
 * One JSON text per subscription result (src/api/shared-json.ts): every
 * message graphql-ws would write comes out byte for byte as without it, and
 * a result's data shared by many subscribers is written once. The whole path
 * through real graphql-ws sockets is fanout.test.ts's.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { SharedJson } from '../src/api/shared-json.js';

it('writes each message as JSON.stringify would, and shared data once', () => {
  const json = new SharedJson();
  let written = 0;
  const changes = [{ id: 'a', status: 'LIVING', name: 'quote " and \\ and é' }];
  // Counts how often the data is serialised: each time, JSON.stringify reads its field.
  const counted = new Proxy({ virtualLiveStatusChanges: changes }, {
    get: (target, key) => {
      if (key === 'virtualLiveStatusChanges') written++;
      return Reflect.get(target, key);
    },
  });
  const messages = [
    ...Array.from({ length: 100 }, (_, i) => ({ id: `sub-${i}`, type: 'next', payload: { data: counted } })),
    { id: '"data"', type: 'next', payload: { data: counted, errors: [{ message: 'x', extensions: { code: 'FORBIDDEN' } }] } },
    { id: 'e', type: 'error', payload: [{ message: 'bad', extensions: { code: 'BAD_USER_INPUT' } }] },
    { type: 'connection_ack' },
    { id: 'c', type: 'complete' },
    { id: 'n', type: 'next', payload: { data: null } },
  ];
  const plain = messages.map((m) => JSON.stringify(m));
  written = 0;
  const shared = messages.map((m) => json.expand(JSON.stringify(m, json.replacer)));
  assert.equal(written, 1, 'the data of 101 messages written once');
  assert.deepEqual(shared, plain);
});

it('leaves alone ids and values that look like its tokens', () => {
  const json = new SharedJson();
  const data = { x: 'vlive-json-0000' };
  for (const id of ['vlive-json-0000', '"vlive-json-', '\\u0000']) {
    const m = { id, type: 'next', payload: { data } };
    assert.equal(json.expand(JSON.stringify(m, json.replacer)), JSON.stringify(m));
  }
});
