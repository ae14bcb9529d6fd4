import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RealtimeClient, type WsLike } from './wsclient';

class FakeSocket implements WsLike {
  readyState = 0;
  sent: any[] = [];
  closed: number | null = null;
  onopen: ((ev: unknown) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  send(data: string) {
    this.sent.push(JSON.parse(data));
  }
  close(code = 1000) {
    this.closed = code;
  }
  open() {
    this.readyState = 1;
    this.onopen?.({});
  }
  receive(msg: object) {
    this.onmessage?.({ data: JSON.stringify(msg) });
  }
  drop(code = 1006) {
    this.onclose?.({ code, reason: '' });
  }
}

const flush = () => new Promise((r) => setTimeout(r, 0));

describe('graphql-transport-ws client', () => {
  let sockets: FakeSocket[];
  let token: string;
  let client: RealtimeClient;
  beforeEach(() => {
    sockets = [];
    token = 't1';
    client = new RealtimeClient({
      url: () => 'ws://x/media/graphql/ws',
      connectionParams: () => ({ authorization: `Bearer ${token}` }),
      onAuthRejected: async () => {
        token = 't2';
      },
      createSocket: () => {
        const s = new FakeSocket();
        sockets.push(s);
        return s;
      },
      toError: (p) => new Error(JSON.stringify(p)),
    });
  });
  afterEach(() => vi.useRealTimers());

  it('sends the token in connection_init, subscribes after the ack, answers pings', async () => {
    const got: unknown[] = [];
    client.subscribe({ query: 'subscription { x }', variables: () => ({ a: 1 }) }, { next: (d) => got.push(d), error: () => {}, complete: () => {} });
    sockets[0].open();
    await flush();
    expect(sockets[0].sent[0]).toEqual({ type: 'connection_init', payload: { authorization: 'Bearer t1' } });
    expect(sockets[0].sent).toHaveLength(1);
    sockets[0].receive({ type: 'connection_ack' });
    expect(sockets[0].sent[1]).toEqual({ id: '1', type: 'subscribe', payload: { query: 'subscription { x }', variables: { a: 1 } } });
    sockets[0].receive({ type: 'next', id: '1', payload: { data: { x: 1 } } });
    sockets[0].receive({ type: 'ping' });
    expect(sockets[0].sent[2]).toEqual({ type: 'pong' });
    expect(got).toEqual([{ x: 1 }]);
  });

  it('resubscribes with fresh variables after a drop, and with a new token after 4403', async () => {
    vi.useFakeTimers();
    let cursor = 'c0';
    const reconnected = vi.fn();
    client.subscribe({ query: 'q', variables: () => ({ after: cursor }) }, { next: () => {}, error: () => {}, complete: () => {}, reconnected });
    sockets[0].open();
    await vi.advanceTimersByTimeAsync(0);
    sockets[0].receive({ type: 'connection_ack' });
    cursor = 'c7';
    sockets[0].drop(1006);
    await vi.advanceTimersByTimeAsync(0);
    expect(sockets).toHaveLength(2);
    sockets[1].open();
    await vi.advanceTimersByTimeAsync(0);
    sockets[1].receive({ type: 'connection_ack' });
    expect(sockets[1].sent[1].payload.variables).toEqual({ after: 'c7' });
    expect(reconnected).toHaveBeenCalledTimes(1);

    sockets[1].drop(4403);
    await vi.advanceTimersByTimeAsync(20_000);
    const last = sockets[sockets.length - 1];
    last.open();
    await vi.advanceTimersByTimeAsync(0);
    expect(last.sent[0].payload).toEqual({ authorization: 'Bearer t2' });
  });

  it('ends a subscription on error and complete, and closes the idle socket', async () => {
    const error = vi.fn();
    const complete = vi.fn();
    client.subscribe({ query: 'a' }, { next: () => {}, error, complete: () => {} });
    const stop = client.subscribe({ query: 'b' }, { next: () => {}, error: () => {}, complete });
    sockets[0].open();
    await flush();
    sockets[0].receive({ type: 'connection_ack' });
    sockets[0].receive({ type: 'error', id: '1', payload: [{ message: 'no', extensions: { code: 'NOT_FOUND' } }] });
    expect(error).toHaveBeenCalledTimes(1);
    stop();
    expect(sockets[0].sent.at(-1)).toEqual({ id: '2', type: 'complete' });
    expect(sockets[0].closed).toBe(1000);
    expect(complete).not.toHaveBeenCalled();
  });

  it('reconnects at once when the browser is back online', async () => {
    client.subscribe({ query: 'a' }, { next: () => {}, error: () => {}, complete: () => {} });
    sockets[0].open();
    await flush();
    sockets[0].receive({ type: 'connection_ack' });
    client.setOffline(true);
    expect(sockets[0].closed).toBe(4000);
    expect(sockets).toHaveLength(1);
    client.setOffline(false);
    expect(sockets).toHaveLength(2);
  });
});
