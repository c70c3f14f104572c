// dns/server: the UDP and TCP listeners (§4.1) — one pair per listen address on the same port — feeding a
// QueryProcessor. Owns sockets, TCP framing, idle timeouts, the connection cap and graceful close. Nothing a
// client sends escapes as an exception: the processor turns failures into SERVFAIL, and socket errors are
// reported through `onError` without closing the listener.

import dgram from 'node:dgram';
import dns from 'node:dns';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { isIP, isIPv6 } from 'node:net';
import { ACL } from './acl.ts';
import { ClientAddress, Guard, type GuardConfig, type GuardCounters } from './guard.ts';

/** The client a query came from (the query log reads it): UDP's rinfo as Node hands it over, or one object per
 * TCP connection. Passing it costs nothing per query. */
export interface Peer {
  readonly address: string;
  readonly port: number;
  readonly family: string;
}

/** What the listeners call per query: a QueryProcessor (or the MeasuredProcessor around it). */
export interface QueryHandler {
  process(msg: Buffer, len: number, tcp: boolean, peer: Peer): Buffer | null;
}

export interface ListenSpec {
  readonly host: string;
  /** 0 picks a free port (the same one for UDP and TCP). */
  readonly port: number;
}

export interface DnsServerOptions {
  readonly listen: readonly ListenSpec[];
  readonly processor: QueryHandler;
  readonly tcpIdleTimeoutMs: number;
  readonly tcpMaxConnections: number;
  /** A TCP message that has started arriving must be complete within this (default 3000 ms). */
  readonly tcpMessageDeadlineMs?: number;
  /** Errors on a socket that are not the client's fault to see (EMSGSIZE, EPIPE...). Must not throw. */
  readonly onError?: (err: Error, where: string) => void;
  /** Open TCP connections changed (metrics). */
  readonly onTcpConnections?: (open: number) => void;
  /**
   * SO_REUSEPORT on every socket, so several threads can each bind the same address and the kernel spreads
   * flows between them (`workers: N`). Ports must then be explicit (not 0) for all but the first binder.
   */
  readonly reusePort?: boolean;
  /** Client ACL and UDP response rate limit (dns/guard.ts), built here so every thread applies the same. */
  readonly guard?: GuardConfig;
  readonly guardCounters?: GuardCounters;
  /** The rate limiter's clock in ms (default performance.now). */
  readonly now?: () => number;
  /** Open TCP connections one source address may hold (beyond it a new one is closed at once); default no cap. */
  readonly tcpMaxConnectionsPerSource?: number;
  /** Our EDNS UDP size, in the OPT of an ACL's REFUSED (default 1232). */
  readonly maxUdpPayloadBytes?: number;
  /**
   * SO_RCVBUF asked for each UDP socket (issue 11 #6: the kernel default, ~208 KB, drops bursts); the kernel caps
   * it at net.core.rmem_max. 0 or absent: the kernel default. What it granted is `udpReceiveBuffer`.
   */
  readonly udpReceiveBufferBytes?: number;
}

/** What the kernel granted a UDP socket's receive buffer (the size set, as Linux reports twice that). */
export interface UdpReceiveBuffer {
  readonly requestedBytes: number;
  readonly grantedBytes: number;
  /** net.core.rmem_max, the cap on what an unprivileged request gets, or null when it cannot be read. */
  readonly rmemMaxBytes: number | null;
}

export interface BoundAddress {
  readonly host: string;
  readonly port: number;
}

/** Tries to find a port free for both UDP and TCP when asked for port 0. */
const PORT_ZERO_ATTEMPTS = 20;

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string, family: number) => void;

/**
 * The UDP sockets' `lookup`: dgram resolves the address of every send through it, and the default (dns.lookup)
 * checks its arguments and defers the answer to a process.nextTick, for every answer even though the address is
 * always the IP literal a query came from. A literal is handed back at once (the send leaves in the same turn,
 * ~5 % of the CPU of a bare Node UDP loop); anything else still goes to dns.lookup. It also makes bind() to a
 * literal report 'listening' before it returns, so the listener is passed to bind() itself (#bindUdp).
 */
export function literalLookup(host: string, options: number | dns.LookupOneOptions, cb: LookupCallback): void {
  const family = isIP(host);
  if (family !== 0) cb(null, host, family);
  else if (typeof options === 'number') dns.lookup(host, options, cb); // dgram passes the socket's family: 4 or 6
  else dns.lookup(host, options, cb);
}
/** What UdpReplies sends through: a dgram socket (a recording stand-in in the unit test). */
export interface DatagramSender {
  send(msg: Buffer, port: number, address: string): void;
}

/** Answers held for one burst at most; a longer burst sends each full batch at once. */
export const UDP_BATCH_MAX = 64;

/**
 * The answers to one burst of datagrams, sent together right after it. libuv reads up to 32 datagrams per
 * readable event and runs the 'message' handler for each; an answer sent from inside the handler goes out
 * between two reads, and on a VM each such sendmsg also pays for waking the client (its reader sleeps again
 * between our answers). Held until the event loop's check phase (one setImmediate per burst, not per answer)
 * and sent back to back, a burst wakes the client about once: a bare Node loop answered 15 % more queries
 * this way (46–54k → 57–62k qps, dnsperf -c 1 -q 20, bursts of 15 on average). A lone query still leaves in
 * the same event-loop turn. Every answer buffer is the processor's own (never a scratch it rewrites), so
 * holding it is safe. A send never runs on a closed socket: close() sends what is held and drops the rest.
 * What a client sees: an answer may wait for the rest of its burst (at most 31 more datagrams read, and what
 * the check phase already queued) — microseconds for cache hits, a miss's encoding at worst. The latency
 * histogram times the processor, not this hold.
 */
export class UdpReplies {
  readonly #sock: DatagramSender;
  readonly #onError: ((err: Error, where: string) => void) | undefined;
  readonly #out: (Buffer | null)[] = new Array<Buffer | null>(UDP_BATCH_MAX).fill(null);
  readonly #port = new Uint16Array(UDP_BATCH_MAX);
  readonly #address: string[] = new Array<string>(UDP_BATCH_MAX).fill('');
  #n = 0;
  #scheduled = false;
  #closed = false;
  /** Bound once, so scheduling a flush allocates only the Immediate itself. */
  readonly #flushLater = (): void => {
    this.#scheduled = false;
    this.flush();
  };

  constructor(sock: DatagramSender, onError?: (err: Error, where: string) => void) {
    this.#sock = sock;
    this.#onError = onError;
  }

  /** Answers held now (tests). */
  get held(): number {
    return this.#n;
  }

  push(out: Buffer, port: number, address: string): void {
    // Source port 0 cannot be answered (send() throws ERR_SOCKET_BAD_PORT): dropped like any unanswerable packet.
    if (this.#closed || port === 0) return;
    const i = this.#n++;
    this.#out[i] = out;
    this.#port[i] = port;
    this.#address[i] = address;
    if (this.#n === UDP_BATCH_MAX) this.flush();
    else if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#flushLater);
    }
  }

  /** Send everything held, in arrival order. */
  flush(): void {
    const n = this.#n;
    this.#n = 0;
    for (let i = 0; i < n; i++) {
      const out = this.#out[i]!;
      this.#out[i] = null;
      try {
        this.#sock.send(out, this.#port[i]!, this.#address[i]!);
      } catch (err) {
        // No send callback (it costs a request object per answer): a send that fails later (EMSGSIZE,
        // ENOBUFS) is a lost answer like any lost datagram, and the client retries. One that throws here
        // (the socket went away under us) is reported, and the rest of the batch still goes.
        this.#onError?.(err as Error, 'udp');
      }
    }
  }

  /** Send what is held; drop whatever comes after (the socket is closing). */
  close(): void {
    this.flush();
    this.#closed = true;
  }
}

/** Largest DNS message (2-byte length prefix). */
const MAX_TCP_MESSAGE = 65_535;
/** Default per-message deadline: a message that has started arriving must be complete within this (slowloris: the
 * idle timer resets per byte). */
const TCP_MESSAGE_DEADLINE_MS = 3000;
/** Answers queued for a client that does not read: past this the connection is dropped. */
const TCP_MAX_QUEUED_BYTES = 1024 * 1024;

export class DnsServer {
  readonly #o: DnsServerOptions;
  readonly #udp: dgram.Socket[] = [];
  /** Each UDP socket's reply batch, closed (sent, then nothing more) before its socket closes. */
  readonly #replies = new Map<dgram.Socket, UdpReplies>();
  readonly #tcp: net.Server[] = [];
  /** Open connections → whether a query is partly received (close waits for it). */
  readonly #conns = new Map<net.Socket, { partial: boolean }>();
  readonly #bound: BoundAddress[] = [];
  #closing = false;
  #udpBuffer: UdpReceiveBuffer | null = null;
  /** Null when there is no ACL rule and no rate limit: the listeners then skip the address parse too. */
  #guard: Guard | null = null;
  /** Open TCP connections per source address (entries only while a connection is open: bounded by the cap). */
  readonly #perSource = new Map<string, number>();

  constructor(options: DnsServerOptions) {
    this.#o = options;
    if (options.guard) this.setGuard(options.guard);
  }

  /**
   * Apply a new ACL and rate limit (a config reload) from the next message on, on every listener and open
   * connection. The rate-limit table starts afresh.
   */
  setGuard(cfg: GuardConfig): void {
    const o = this.#o;
    const g = new Guard(cfg, o.guardCounters ?? null, o.now ?? performance.now.bind(performance), o.maxUdpPayloadBytes);
    this.#guard = g.active ? g : null;
  }

  get addresses(): readonly BoundAddress[] {
    return this.#bound;
  }

  /** The receive buffer of the first UDP socket (all are asked the same), or null before start. */
  get udpReceiveBuffer(): UdpReceiveBuffer | null {
    return this.#udpBuffer;
  }

  get openTcpConnections(): number {
    return this.#conns.size;
  }

  async start(): Promise<void> {
    try {
      for (const spec of this.#o.listen) await this.#bindPair(spec);
    } catch (err) {
      await this.close(0);
      throw err;
    }
  }

  async #bindPair(spec: ListenSpec): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const udp = await this.#bindUdp(spec.host, spec.port);
      const port = udp.address().port;
      try {
        const tcp = await this.#bindTcp(spec.host, port);
        this.#udp.push(udp);
        this.#tcp.push(tcp);
        this.#bound.push({ host: spec.host, port });
        return;
      } catch (err) {
        this.#replies.get(udp)?.close();
        this.#replies.delete(udp);
        udp.close();
        const inUse = (err as NodeJS.ErrnoException).code === 'EADDRINUSE';
        if (spec.port !== 0 || !inUse || attempt >= PORT_ZERO_ATTEMPTS) throw err;
      }
    }
  }

  #bindUdp(host: string, port: number): Promise<dgram.Socket> {
    return new Promise((resolve, reject) => {
      const sock = dgram.createSocket({
        type: isIPv6(host) ? 'udp6' : 'udp4',
        ipv6Only: isIPv6(host),
        reusePort: this.#o.reusePort === true,
        lookup: literalLookup,
      });
      const processor = this.#o.processor;
      const onError = this.#o.onError;
      const client = new ClientAddress(); // scratch: one packet at a time
      // One UdpReplies per socket: the answers to a burst of datagrams leave together after it (see there).
      const replies = new UdpReplies(sock, onError);
      sock.once('error', reject);
      sock.bind(port, host, () => {
        sock.off('error', reject);
        sock.on('error', (err) => onError?.(err, 'udp'));
        this.#udpBuffer ??= setReceiveBuffer(sock, this.#o.udpReceiveBufferBytes ?? 0);
        this.#replies.set(sock, replies);
        resolve(sock);
      });
      sock.on('message', (msg, rinfo) => {
        const guard = this.#guard;
        if (guard === null) {
          const out = processor.process(msg, msg.length, false, rinfo);
          if (out !== null) replies.push(out, rinfo.port, rinfo.address);
          return;
        }
        // ACL before any answer work; the rate limit on what the answer turned out to be (its class).
        client.set(rinfo.address);
        const a = guard.admit(msg, msg.length, client);
        let out = a === ACL.ALLOW ? processor.process(msg, msg.length, false, rinfo) : a === ACL.REFUSE ? guard.refusal(msg, msg.length) : null;
        if (out !== null && a === ACL.ALLOW) out = guard.limit(out, client);
        if (out !== null) replies.push(out, rinfo.port, rinfo.address);
      });
    });
  }

  #bindTcp(host: string, port: number): Promise<net.Server> {
    return new Promise((resolve, reject) => {
      const server = net.createServer({ noDelay: true, pauseOnConnect: false }, (sock) => this.#onConnection(sock));
      // net.Server drops connections beyond this before our handler runs (the cap of §4.1).
      server.maxConnections = this.#o.tcpMaxConnections;
      server.once('error', reject);
      server.listen({ host, port, ipv6Only: isIPv6(host), exclusive: true, reusePort: this.#o.reusePort === true }, () => {
        server.off('error', reject);
        server.on('error', (err) => this.#o.onError?.(err, 'tcp'));
        resolve(server);
      });
    });
  }

  #onConnection(sock: net.Socket): void {
    if (this.#closing) {
      sock.destroy();
      return;
    }
    const perSourceCap = this.#o.tcpMaxConnectionsPerSource ?? 0;
    const source = sock.remoteAddress ?? '';
    if (perSourceCap > 0) {
      // One client must not hold every slot of tcpMaxConnections (it would keep every other client's TCP, and
      // the TCP retry after a truncated UDP answer, out).
      const held = this.#perSource.get(source) ?? 0;
      if (held >= perSourceCap) {
        this.#o.guardCounters?.tcpPerSourceRefused();
        sock.destroy();
        return;
      }
      this.#perSource.set(source, held + 1);
      sock.once('close', () => {
        const n = (this.#perSource.get(source) ?? 1) - 1;
        if (n <= 0) this.#perSource.delete(source);
        else this.#perSource.set(source, n);
      });
    }
    let client: ClientAddress | null = null; // parsed once, when a guard first needs it
    const state = { partial: false };
    const peer: Peer = { address: sock.remoteAddress ?? '', port: sock.remotePort ?? 0, family: sock.remoteFamily ?? '' };
    this.#conns.set(sock, state);
    this.#o.onTcpConnections?.(this.#conns.size);
    sock.setTimeout(this.#o.tcpIdleTimeoutMs, () => sock.destroy());
    const deadlineMs = this.#o.tcpMessageDeadlineMs ?? TCP_MESSAGE_DEADLINE_MS;
    // Framing state, carried across chunks. A message that arrives whole inside one chunk is answered from a
    // view of that chunk; one split across chunks is copied into a buffer of its announced size (one allocation
    // per split message, each byte copied once: no concatenation per chunk, which is quadratic when dribbled).
    let lenHigh = -1; // first length byte when a chunk ended between the two, else -1
    let msgLen = -1; // announced length of the message being assembled, -1 when none
    let asm: Buffer | null = null;
    let filled = 0;
    let deadline: NodeJS.Timeout | null = null;
    const answer = (msg: Buffer, n: number): boolean => {
      // The ACL applies over TCP too; the rate limit never does (TCP is where a slipped client gets its answer).
      const guard = this.#guard;
      const a = guard === null ? ACL.ALLOW : guard.admit(msg, n, (client ??= new ClientAddress().set(source)));
      if (a === ACL.DROP) {
        // No reply, and no connection left waiting for one until the idle timeout.
        sock.destroy();
        return false;
      }
      const out = a === ACL.ALLOW ? this.#o.processor.process(msg, n, true, peer) : a === ACL.REFUSE ? guard!.refusal(msg, n) : null;
      if (out === null || out.length > MAX_TCP_MESSAGE) return true;
      const len = Buffer.allocUnsafe(2);
      len.writeUInt16BE(out.length, 0);
      sock.cork(); // length and message leave in one segment, without copying the answer
      sock.write(len);
      const flushed = sock.write(out);
      sock.uncork();
      if (!flushed) {
        // Backpressure: stop reading queries from a client that is not reading answers.
        if (sock.writableLength > TCP_MAX_QUEUED_BYTES) {
          sock.destroy();
          return false;
        }
        if (!sock.isPaused()) {
          sock.pause();
          sock.once('drain', () => sock.resume());
        }
      }
      return true;
    };
    sock.on('data', (chunk: Buffer) => {
      const end = chunk.length;
      let off = 0;
      let completed = false;
      while (off < end) {
        if (msgLen < 0) {
          // The 2-byte length prefix, possibly split across chunks.
          if (lenHigh >= 0) {
            msgLen = (lenHigh << 8) | chunk[off++]!;
            lenHigh = -1;
          } else if (end - off >= 2) {
            msgLen = chunk.readUInt16BE(off);
            off += 2;
          } else {
            lenHigh = chunk[off++]!;
            break;
          }
        }
        if (asm === null && end - off >= msgLen) {
          // Whole message inside this chunk: no copy.
          const n = msgLen;
          msgLen = -1;
          completed = true;
          if (!answer(chunk.subarray(off, off + n), n)) return;
          off += n;
          continue;
        }
        asm ??= Buffer.allocUnsafe(msgLen);
        const take = Math.min(msgLen - filled, end - off);
        chunk.copy(asm, filled, off, off + take);
        filled += take;
        off += take;
        if (filled < msgLen) break;
        const msg = asm;
        const n = msgLen;
        asm = null;
        filled = 0;
        msgLen = -1;
        completed = true;
        if (!answer(msg, n)) return;
      }
      state.partial = lenHigh >= 0 || msgLen >= 0;
      // The deadline is per message: it starts when a message starts arriving and stops when it is complete, so
      // a client pipelining over a long connection (chunks ending mid-message) is never cut off, while one that
      // dribbles a single message forever (slowloris: the idle timer resets per byte) is.
      if (deadline !== null && (completed || !state.partial)) {
        clearTimeout(deadline);
        deadline = null;
      }
      if (state.partial && deadline === null) deadline = setTimeout(() => sock.destroy(), deadlineMs);
      // While closing, a connection is ended once every complete query it sent has been answered.
      if (this.#closing && !state.partial) sock.end();
    });
    sock.on('close', () => {
      if (deadline !== null) clearTimeout(deadline);
    });
    sock.on('error', () => sock.destroy()); // a client reset is not our error
    sock.on('close', () => {
      this.#conns.delete(sock);
      this.#o.onTcpConnections?.(this.#conns.size);
    });
  }

  /**
   * Stop accepting, close UDP, let open TCP connections finish what they sent (each is ended after its last
   * answer is written), and destroy what is left after `graceMs`.
   */
  async close(graceMs = 2000): Promise<void> {
    this.#closing = true;
    // Answers already computed leave before their socket closes; nothing is sent after it.
    for (const r of this.#replies.values()) r.close();
    this.#replies.clear();
    for (const u of this.#udp) {
      try {
        u.close();
      } catch {
        // already closed
      }
    }
    const servers = this.#tcp.map((s) => new Promise<void>((r) => s.close(() => r())));
    for (const [c, st] of this.#conns) if (!st.partial) c.end();
    const deadline = setTimeout(() => {
      for (const c of this.#conns.keys()) c.destroy();
    }, graceMs);
    await Promise.all(servers);
    clearTimeout(deadline);
    this.#udp.length = 0;
    this.#tcp.length = 0;
  }
}

/** Ask for `bytes` of SO_RCVBUF (0: leave the kernel default) and read back what the kernel granted. */
function setReceiveBuffer(sock: dgram.Socket, bytes: number): UdpReceiveBuffer {
  if (bytes > 0) {
    try {
      sock.setRecvBufferSize(bytes);
    } catch {
      // Refused outright (not merely capped): the granted size below says what the socket has.
    }
  }
  let reported = 0;
  try {
    reported = sock.getRecvBufferSize();
  } catch {
    reported = 0;
  }
  let rmemMax: number | null = null;
  try {
    rmemMax = Number(readFileSync('/proc/sys/net/core/rmem_max', 'utf8').trim());
    if (!Number.isFinite(rmemMax)) rmemMax = null;
  } catch {
    rmemMax = null;
  }
  // Linux doubles a value set (room for its bookkeeping, socket(7)) and reports the doubled value; the default
  // (net.core.rmem_default) it reports as is.
  const granted = process.platform === 'linux' && bytes > 0 ? Math.floor(reported / 2) : reported;
  return { requestedBytes: bytes, grantedBytes: granted, rmemMaxBytes: rmemMax };
}
