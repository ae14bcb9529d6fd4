// A small graphql-transport-ws client (the protocol of the `graphql-ws` library), written
// here rather than imported because the app needs two things the library does not give:
//  - a subscription's variables are computed at every (re)subscribe, so `commentEvents`
//    resumes `after` the last cursor it saw when the socket comes back;
//  - the token is asked afresh at every connection_init, and a 4403 close (token revoked
//    or expired) renews it before reconnecting.
// It reconnects with backoff, at once when the browser comes back online, and notices a
// dead socket by pinging.

export interface Sink<T> {
  next(data: T): void;
  error(error: unknown): void;
  complete(): void;
  /** Called after the socket came back and the subscription was sent again. */
  reconnected?(): void;
}

export interface Operation {
  query: string;
  variables?: () => Record<string, unknown>;
}

export interface WsLike {
  readonly readyState: number;
  protocol?: string;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}

export interface ClientOptions {
  url: () => string;
  connectionParams: () => Promise<Record<string, unknown>> | Record<string, unknown>;
  /** Called on a 4403 close: renew the token; false when there is no session any more. */
  onAuthRejected?: () => Promise<void>;
  createSocket?: (url: string, protocol: string) => WsLike;
  /** Errors for the whole connection's subscriptions (in words). */
  toError: (payload: unknown) => unknown;
  onStatus?: (status: 'connecting' | 'connected' | 'offline') => void;
  pingIntervalMs?: number;
  pongTimeoutMs?: number;
}

interface Active {
  id: string;
  op: Operation;
  sink: Sink<unknown>;
  sent: boolean;
  everSent: boolean;
}

export class RealtimeClient {
  private socket: WsLike | null = null;
  private acked = false;
  private subs = new Map<string, Active>();
  private nextId = 1;
  private attempt = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private pingTimer: ReturnType<typeof setInterval> | null = null;
  private pongTimer: ReturnType<typeof setTimeout> | null = null;
  private generation = 0;
  private offline = false;

  constructor(private readonly opts: ClientOptions) {}

  /** Starts a subscription; the returned function ends it. */
  subscribe<T>(op: Operation, sink: Sink<T>): () => void {
    const id = String(this.nextId++);
    const active: Active = { id, op, sink: sink as Sink<unknown>, sent: false, everSent: false };
    this.subs.set(id, active);
    if (this.socket && this.acked) this.send(active);
    else this.ensureConnected();
    return () => {
      const a = this.subs.get(id);
      if (!a) return;
      this.subs.delete(id);
      if (a.sent && this.acked) this.raw({ id, type: 'complete' });
      if (this.subs.size === 0) this.closeSocket(1000, 'idle');
    };
  }

  /** Drops the socket and connects again (e.g. after signing in or out). */
  restart(): void {
    this.closeSocket(4000, 'restart');
    if (this.subs.size > 0) this.connect();
  }

  /** The browser went offline: the socket is as good as gone. */
  setOffline(offline: boolean): void {
    this.offline = offline;
    if (offline) {
      this.closeSocket(4000, 'offline');
      this.opts.onStatus?.('offline');
    } else if (this.subs.size > 0) {
      this.attempt = 0;
      this.connect();
    }
  }

  private ensureConnected(): void {
    if (!this.socket && !this.reconnectTimer && !this.offline) this.connect();
  }

  private clearTimers(): void {
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (this.pingTimer) clearInterval(this.pingTimer);
    if (this.pongTimer) clearTimeout(this.pongTimer);
    this.reconnectTimer = this.pingTimer = this.pongTimer = null;
  }

  private closeSocket(code: number, reason: string): void {
    this.generation++;
    this.clearTimers();
    const s = this.socket;
    this.socket = null;
    this.acked = false;
    for (const a of this.subs.values()) a.sent = false;
    if (s) {
      s.onopen = s.onmessage = s.onerror = null;
      s.onclose = null;
      try {
        s.close(code, reason);
      } catch {
        /* already closed */
      }
    }
  }

  private scheduleReconnect(): void {
    if (this.subs.size === 0 || this.offline) return;
    const delay = Math.min(10_000, 500 * 2 ** this.attempt) * (0.75 + Math.random() * 0.5);
    this.attempt++;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      this.connect();
    }, this.attempt === 1 ? 0 : delay);
  }

  private connect(): void {
    this.closeSocket(4000, 'reconnect');
    const generation = this.generation;
    this.opts.onStatus?.('connecting');
    const create = this.opts.createSocket ?? ((url, protocol) => new WebSocket(url, protocol) as unknown as WsLike);
    let socket: WsLike;
    try {
      socket = create(this.opts.url(), 'graphql-transport-ws');
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.socket = socket;
    socket.onopen = async () => {
      let payload: Record<string, unknown> = {};
      try {
        payload = await this.opts.connectionParams();
      } catch {
        /* anonymous */
      }
      if (generation !== this.generation) return;
      this.raw({ type: 'connection_init', payload });
    };
    socket.onmessage = (ev) => {
      if (generation !== this.generation) return;
      this.onMessage(ev.data);
    };
    socket.onclose = (ev) => {
      if (generation !== this.generation) return;
      this.socket = null;
      this.acked = false;
      this.clearTimers();
      for (const a of this.subs.values()) a.sent = false;
      this.onClosed(ev.code);
    };
    socket.onerror = () => {
      /* onclose follows */
    };
  }

  private async onClosed(code: number): Promise<void> {
    if (code === 4403 && this.opts.onAuthRejected) {
      try {
        await this.opts.onAuthRejected();
      } catch {
        /* reconnect anonymously or with whatever token is there */
      }
    }
    if (code === 4400 || code === 4406 || code === 4409 || code === 4429) {
      // Protocol errors mean a bug here; say so rather than loop forever.
      if (this.attempt > 3) {
        const err = this.opts.toError([{ message: `the live connection was refused (code ${code})` }]);
        for (const a of [...this.subs.values()]) {
          this.subs.delete(a.id);
          a.sink.error(err);
        }
        return;
      }
    }
    this.opts.onStatus?.('connecting');
    this.scheduleReconnect();
  }

  private onMessage(data: unknown): void {
    let msg: { type?: string; id?: string; payload?: unknown };
    try {
      msg = JSON.parse(String(data));
    } catch {
      return;
    }
    switch (msg.type) {
      case 'connection_ack': {
        this.acked = true;
        this.attempt = 0;
        this.opts.onStatus?.('connected');
        for (const a of this.subs.values()) {
          const again = a.everSent;
          this.send(a);
          if (again) a.sink.reconnected?.();
        }
        this.startPings();
        break;
      }
      case 'ping':
        this.raw({ type: 'pong' });
        break;
      case 'pong':
        if (this.pongTimer) clearTimeout(this.pongTimer);
        this.pongTimer = null;
        break;
      case 'next': {
        const a = msg.id ? this.subs.get(msg.id) : undefined;
        if (!a) return;
        const payload = msg.payload as { data?: unknown; errors?: unknown[] };
        if (payload?.errors?.length) {
          this.subs.delete(a.id);
          a.sink.error(this.opts.toError(payload.errors));
        } else a.sink.next(payload?.data);
        break;
      }
      case 'error': {
        const a = msg.id ? this.subs.get(msg.id) : undefined;
        if (!a) return;
        this.subs.delete(a.id);
        a.sink.error(this.opts.toError(msg.payload));
        break;
      }
      case 'complete': {
        const a = msg.id ? this.subs.get(msg.id) : undefined;
        if (!a) return;
        this.subs.delete(a.id);
        a.sink.complete();
        break;
      }
    }
  }

  private startPings(): void {
    const every = this.opts.pingIntervalMs ?? 15_000;
    const timeout = this.opts.pongTimeoutMs ?? 8_000;
    this.pingTimer = setInterval(() => {
      if (!this.socket || this.pongTimer) return;
      this.raw({ type: 'ping' });
      this.pongTimer = setTimeout(() => {
        // No answer: the connection is dead even if the socket has not noticed.
        this.pongTimer = null;
        this.closeSocket(4000, 'no pong');
        this.scheduleReconnect();
      }, timeout);
    }, every);
  }

  private send(a: Active): void {
    a.sent = true;
    a.everSent = true;
    this.raw({ id: a.id, type: 'subscribe', payload: { query: a.op.query, variables: a.op.variables?.() ?? {} } });
  }

  private raw(message: unknown): void {
    try {
      this.socket?.send(JSON.stringify(message));
    } catch {
      /* onclose follows */
    }
  }
}
