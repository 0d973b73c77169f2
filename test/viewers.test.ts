/** The viewer book: notifications, and /stat putting right what they missed. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ViewerBook } from '../src/ondemand/viewers.js';

describe('viewer book', () => {
  it('counts players by client id; a repeated play or an unknown play_done changes nothing', () => {
    const b = new ViewerBook();
    assert.equal(b.add('ch', '7', 0), true);
    assert.equal(b.add('ch', '7', 0), false);
    assert.equal(b.add('ch', '8', 0), true);
    assert.equal(b.count('ch'), 2);
    assert.equal(b.remove('ch', '99'), false);
    assert.equal(b.remove('ch', '7'), true);
    assert.equal(b.count('ch'), 1);
    assert.equal(b.count('other'), 0);
  });

  it('takes /stat as the truth, except for a player announced moments ago', () => {
    const b = new ViewerBook();
    b.add('a', '1', 1_000); // its play_done was lost
    b.add('a', '2', 9_500); // announced; nginx lists it only after our answer
    const changed = b.reconcile(new Map([['a', []], ['b', ['5', '6']]]), 10_000, 5_000);
    assert.deepEqual(changed.sort(), ['a', 'b']);
    assert.equal(b.count('a'), 1, 'the recent announcement stays');
    assert.equal(b.count('b'), 2, 'players only /stat saw are counted');
    // Later, /stat still does not list player 2: it is gone; the channel leaves the book.
    assert.deepEqual(b.reconcile(new Map([['b', ['5', '6']]]), 20_000, 5_000), ['a']);
    assert.deepEqual(b.entries(), [['b', 2]]);
  });
});
