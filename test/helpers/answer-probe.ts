// test/helpers/answer-probe: what a resolver in front of svcdns would see across a lifecycle event. One UDP
// query about every millisecond, from a rotating set of source ports (so SO_REUSEPORT spreads them over every
// worker), counted by outcome from before the server exists until stop(). A resolver caches an NXDOMAIN for the
// SOA minimum, so lifecycle tests assert that some outcomes never happen; they count, they never time.

import dgram from 'node:dgram';
import { buildQuery } from './dns-client.ts';
import { HANG_DEADLINE_MS } from './deadline.ts';

export interface Outcomes {
  /** NOERROR with at least one answer record. */
  answer: number;
  /** NOERROR without one (NODATA). */
  nodata: number;
  nxdomain: number;
  servfail: number;
  /** Any other rcode (REFUSED, FORMERR...). */
  other: number;
}

const zero = (): Outcomes => ({ answer: 0, nodata: 0, nxdomain: 0, servfail: 0, other: 0 });

export class AnswerProbe {
  readonly #socks: dgram.Socket[] = [];
  readonly #query: Buffer;
  readonly #port: number;
  #timer: NodeJS.Timeout | null = null;
  #next = 0;
  #id = 0;
  /** Outcomes per phase label (set `phase` before each step of a test, for the failure message). */
  readonly byPhase = new Map<string, Outcomes>();
  phase = 'start';
  sent = 0;

  private constructor(port: number, name: string, type: string) {
    this.#port = port;
    this.#query = buildQuery(name, type, { id: 0, rd: false });
  }

  /**
   * Start sending `name type` to 127.0.0.1:`port` now (nothing needs to listen there yet): `perTick` queries
   * every millisecond, each from the next of `sourcePorts` sockets.
   */
  static async start(port: number, name: string, type = 'A', opts: { sourcePorts?: number; perTick?: number } = {}): Promise<AnswerProbe> {
    const sourcePorts = opts.sourcePorts ?? 16;
    const perTick = opts.perTick ?? 1;
    const p = new AnswerProbe(port, name, type);
    try {
      while (p.#socks.length < sourcePorts) {
        const s = dgram.createSocket('udp4');
        s.on('message', (msg) => p.#count(msg));
        s.on('error', () => {}); // nothing listening yet: ICMP errors are expected and not an outcome
        await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', () => resolve()));
        // `port` is usually a freePort() that nothing holds until the server starts: the kernel may hand it to
        // one of these sockets. That socket would then take the server's port and receive the probe's own
        // queries (each counted as a NODATA). Give the port back and take another.
        if (s.address().port === port) {
          s.close();
          continue;
        }
        p.#socks.push(s);
      }
    } catch (err) {
      p.stop();
      throw err;
    }
    p.#timer = setInterval(() => {
      for (let i = 0; i < perTick; i++) p.#send();
    }, 1);
    return p;
  }

  #send(): void {
    this.#id = (this.#id + 1) & 0xffff;
    this.#query.writeUInt16BE(this.#id, 0);
    const s = this.#socks[this.#next++ % this.#socks.length]!;
    this.sent++;
    s.send(this.#query, this.#port, '127.0.0.1', () => {});
  }

  #count(msg: Buffer): void {
    // Responses only (QR=1): a query that came back to a probe socket is not an outcome.
    if (msg.length < 12 || (msg[2]! & 0x80) === 0) return;
    let o = this.byPhase.get(this.phase);
    if (!o) this.byPhase.set(this.phase, (o = zero()));
    const rcode = msg[3]! & 0x0f;
    if (rcode === 0) {
      if (msg.readUInt16BE(6) > 0) o.answer++;
      else o.nodata++;
    } else if (rcode === 3) o.nxdomain++;
    else if (rcode === 2) o.servfail++;
    else o.other++;
  }

  /** Sum over every phase so far. */
  get total(): Outcomes {
    const t = zero();
    for (const o of this.byPhase.values()) for (const k of Object.keys(t) as (keyof Outcomes)[]) t[k] += o[k];
    return t;
  }

  /** Counts per phase, for assertion messages. */
  report(): string {
    return [...this.byPhase].map(([p, o]) => `${p}: ${JSON.stringify(o)}`).join('; ') + `; sent ${this.sent}`;
  }

  /** Resolve once `n` more answers (NOERROR with records) than now have arrived: the event "it answers". */
  async answers(n: number, what: string, timeoutMs = HANG_DEADLINE_MS): Promise<void> {
    const target = this.total.answer + n;
    const deadline = Date.now() + timeoutMs;
    while (this.total.answer < target) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${n} answers ${what}: ${this.report()}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    for (const s of this.#socks) {
      try {
        s.close();
      } catch {
        // already closed
      }
    }
  }
}
