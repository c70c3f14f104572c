// Unit: the supervisor logs each state change once (§6.3): a snapshot followed in the same turn by the same error
// (other watches still failing) is one incident, not recovered-then-stale.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import pino from 'pino';
import { BackendError } from '../../src/backends/backend.ts';
import { supervisedSink } from '../../src/backends/supervisor.ts';
import { serviceKey } from '../../src/model/service.ts';
import { Store } from '../../src/store/store.ts';
import { inst, svc } from '../helpers/stack.ts';

function capture() {
  const events: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      for (const line of String(chunk).split('\n')) if (line) events.push(JSON.parse(line).event);
      cb();
    },
  });
  return { events, logger: pino({ level: 'info' }, stream) };
}
const flush = () => new Promise((r) => setImmediate(r));
const snap = () => {
  const s = svc('web', [inst('10.0.0.1', [80])]);
  return { services: new Map([[serviceKey(s.scope, s.name), s]]), defaultScope: 'default' };
};

describe('supervisor', () => {
  it('snapshot + same error in one turn while stale: no recovered/stale pair, stale-since kept', async () => {
    let t = 1000;
    const store = new Store({ now: () => t });
    store.register('c', 'consul', () => true);
    const { events, logger } = capture();
    const sink = supervisedSink('c', store, logger, () => t);
    const err = new BackendError('SVCDNS_BACKEND_HTTP', 'dc2 catalog 500');
    sink.snapshot(snap());
    sink.error(err);
    const since = store.status()[0]!.sinceMs;
    for (let i = 0; i < 5; i++) {
      t += 1000;
      sink.snapshot(snap());
      sink.error(err);
      await flush();
    }
    await flush();
    assert.deepEqual(events, ['backend_synced', 'backend_stale']);
    assert.equal(store.status()[0]!.state, 'stale');
    assert.equal(store.status()[0]!.sinceMs, since);
  });

  it('a real recovery is logged once, and a later failure again', async () => {
    const store = new Store();
    store.register('c', 'consul', () => true);
    const { events, logger } = capture();
    const sink = supervisedSink('c', store, logger, Date.now);
    sink.snapshot(snap());
    sink.error(new BackendError('SVCDNS_BACKEND_UNREACHABLE', 'refused'));
    sink.snapshot(snap());
    await flush();
    sink.error(new BackendError('SVCDNS_BACKEND_UNREACHABLE', 'refused'));
    await flush();
    assert.deepEqual(events, ['backend_synced', 'backend_stale', 'backend_recovered', 'backend_stale']);
  });
});
