// IotRealtime browser client (ES module, no build step). Wire contract: docs/bridges.md.
//
//   import { IotRealtimeClient } from "/js/iotrealtime.js";
//   const client = new IotRealtimeClient({ baseUrl: "", token: null, transport: "auto" });
//   const sub = client.subscribe("devices/+/telemetry", (msg) => { /* {topic, data, enc, id, ts, qos, retain} */ }, { from: "earliest" });
//   sub.addEventListener("gap", (e) => console.warn(e.detail));
//   await client.publish("cmd/d1", "text", { qos: 1 });
//
// Transport "auto" opens the multiplexed WebSocket (/ws) first; if it cannot open at all it falls back to SSE (/sse,
// one EventSource per subscription). Either way it reconnects with exponential backoff (0.5 s doubling to 30 s, plus
// jitter) and resumes every subscription after the last position it delivered, so nothing is missed or repeated
// unless the server says so with a "gap" event.

const CONNECTING = 0;
const OPEN = 1;
const CLOSED = 2;

const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 30000;

/** Delay before reconnect attempt number `attempt` (0-based): 0.5 s doubling to 30 s, plus up to 25 % jitter. */
export function backoffDelay(attempt, random = Math.random) {
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * Math.pow(2, Math.min(attempt, 16)));
  return Math.round(base + random() * base * 0.25);
}

function joinUrl(baseUrl, path, params) {
  let base = baseUrl || "";
  if (base.endsWith("/")) base = base.slice(0, -1);
  const query = new URLSearchParams();
  for (const [key, value] of params) {
    if (value !== null && value !== undefined) query.append(key, value);
  }
  const q = query.toString();
  return base + path + (q ? "?" + q : "");
}

function wsUrlFor(baseUrl, path, params) {
  const http = joinUrl(baseUrl, path, params);
  const absolute = new URL(http, typeof location !== "undefined" ? location.href : "http://localhost/");
  absolute.protocol = absolute.protocol === "https:" ? "wss:" : "ws:";
  return absolute.toString();
}

/** One subscription: EventTarget with "message", "gap", "error", "open" events, plus onmessage/ongap/onerror/onopen and readyState. */
export class Subscription extends EventTarget {
  constructor(client, filter, callback, from) {
    super();
    this.filter = filter;
    this.readyState = CONNECTING;
    /** The last position delivered: a reconnect resumes after it. */
    this.lastId = null;
    this.onmessage = null;
    this.ongap = null;
    this.onerror = null;
    this.onopen = null;
    this._client = client;
    this._callback = callback;
    this._from = from || null; // "earliest", a position, or null (live)
    this._eventSource = null;
    this._retryTimer = null;
    this._attempt = 0;
  }

  static get CONNECTING() { return CONNECTING; }
  static get OPEN() { return OPEN; }
  static get CLOSED() { return CLOSED; }

  /** Where the next (re)subscription starts: after the last delivered position, else what was asked for. */
  get resumeFrom() {
    return this.lastId || this._from;
  }

  close() {
    if (this.readyState === CLOSED) return;
    this.readyState = CLOSED;
    this._client._unsubscribe(this);
  }

  _deliver(msg) {
    if (this.readyState === CLOSED) return;
    if (msg.id) this.lastId = msg.id;
    if (this._callback) {
      try { this._callback(msg); } catch (e) { setTimeout(() => { throw e; }); }
    }
    this._emit("message", msg, this.onmessage);
  }

  _gap(detail) {
    if (this.readyState === CLOSED) return;
    this._emit("gap", detail, this.ongap);
  }

  _error(detail) {
    this._emit("error", detail, this.onerror);
  }

  _opened() {
    if (this.readyState === CLOSED) return;
    this._attempt = 0;
    this.readyState = OPEN;
    this._emit("open", null, this.onopen);
  }

  _emit(type, detail, handler) {
    const event = new CustomEvent(type, { detail });
    // EventSource-like: message events carry .data too
    if (type === "message") Object.defineProperty(event, "data", { value: detail });
    this.dispatchEvent(event);
    if (typeof handler === "function") {
      try { handler.call(this, event); } catch (e) { setTimeout(() => { throw e; }); }
    }
  }
}

export class IotRealtimeClient extends EventTarget {
  /**
   * @param {{baseUrl?: string, token?: string|null, transport?: "auto"|"ws"|"sse", WebSocket?: any, EventSource?: any}} options
   */
  constructor(options = {}) {
    super();
    this.baseUrl = options.baseUrl || "";
    this.token = options.token || null;
    this._mode = options.transport || "auto";
    if (!["auto", "ws", "sse"].includes(this._mode)) throw new Error(`transport must be "auto", "ws" or "sse" (was "${this._mode}")`);
    this._WebSocket = options.WebSocket || globalThis.WebSocket;
    this._EventSource = options.EventSource || globalThis.EventSource;
    this._subs = new Set();
    this._closed = false;
    this._transport = null;
    // WebSocket state
    this._ws = null;
    this._wsEverOpened = false;
    this._wsAttempt = 0;
    this._wsTimer = null;
    this._channels = new Map(); // filter -> { filter, subs: Set<Subscription>, subscribed: bool }
    this._pending = new Map(); // req -> { resolve, reject }
    this._nextReq = 1;
    if (this._mode === "sse") this._setTransport("sse");
  }

  /** "ws" or "sse": what is in use now (null before the first connection decides). */
  get transport() {
    return this._transport;
  }

  /**
   * Subscribes to an MQTT topic filter (or "$presence").
   * @param {string} filter
   * @param {(msg: {topic: string, data: any, enc: string, id: string|null, ts: string}) => void} [onMessage]
   * @param {{from?: "earliest"|string}} [options]
   */
  subscribe(filter, onMessage, options = {}) {
    if (this._closed) throw new Error("client is closed");
    if (typeof filter !== "string" || filter.length === 0) throw new Error("filter must be a non-empty topic filter");
    const sub = new Subscription(this, filter, onMessage, options.from);
    this._subs.add(sub);
    if (this._transport === "sse") {
      this._openEventSource(sub);
    } else {
      this._wsAddSubscription(sub);
    }
    return sub;
  }

  /** Publishes through the broker (WebSocket transport only). Resolves when the broker accepted it; rejects with the reason otherwise. */
  publish(topic, data, options = {}) {
    if (this._closed) return Promise.reject(new Error("client is closed"));
    if (this._transport === "sse") return Promise.reject(new Error("publish needs the WebSocket transport; SSE is receive-only"));
    const req = "r" + this._nextReq++;
    const isBinary = data instanceof Uint8Array || data instanceof ArrayBuffer;
    const command = { op: "pub", topic, qos: options.qos ?? 0, retain: !!options.retain, req };
    if (isBinary) {
      const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
      let s = "";
      for (const b of bytes) s += String.fromCharCode(b);
      command.data = btoa(s);
      command.enc = "base64";
    } else {
      command.data = typeof data === "string" ? data : JSON.stringify(data);
    }
    return new Promise((resolve, reject) => {
      const pending = { resolve, reject, command };
      this._pending.set(req, pending);
      this._ensureWebSocket();
      if (this._ws && this._ws.readyState === 1) this._ws.send(JSON.stringify(command));
      // else sent on open
    });
  }

  close() {
    if (this._closed) return;
    this._closed = true;
    for (const sub of [...this._subs]) sub.close();
    clearTimeout(this._wsTimer);
    if (this._ws) {
      try { this._ws.close(1000, "client closed"); } catch { /* already closing */ }
      this._ws = null;
    }
    for (const pending of this._pending.values()) pending.reject(new Error("client closed"));
    this._pending.clear();
  }

  _setTransport(name) {
    if (this._transport === name) return;
    this._transport = name;
    this.dispatchEvent(new CustomEvent("transport", { detail: name }));
  }

  _unsubscribe(sub) {
    this._subs.delete(sub);
    clearTimeout(sub._retryTimer);
    if (sub._eventSource) {
      sub._eventSource.close();
      sub._eventSource = null;
    }
    const channel = this._channels.get(sub.filter);
    if (channel) {
      channel.subs.delete(sub);
      if (channel.subs.size === 0) {
        this._channels.delete(sub.filter);
        if (this._ws && this._ws.readyState === 1) this._ws.send(JSON.stringify({ op: "unsub", ch: sub.filter }));
      }
    }
  }

  // ------------------------------------------------------------------ WebSocket transport

  _wsAddSubscription(sub) {
    let channel = this._channels.get(sub.filter);
    if (!channel) {
      channel = { filter: sub.filter, subs: new Set(), subscribed: false };
      this._channels.set(sub.filter, channel);
      channel.subs.add(sub);
      if (this._ws && this._ws.readyState === 1) this._wsSendSub(channel);
    } else {
      // one channel per filter on the socket: a second subscription shares it from now on
      channel.subs.add(sub);
      if (channel.subscribed) sub._opened();
    }
    this._ensureWebSocket();
  }

  _channelResumeFrom(channel) {
    let from = null;
    for (const sub of channel.subs) {
      if (sub.lastId) return sub.lastId;
      from = from || sub._from;
    }
    return from;
  }

  _wsSendSub(channel) {
    const command = { op: "sub", ch: channel.filter };
    const from = this._channelResumeFrom(channel);
    if (from) command.from = from;
    this._ws.send(JSON.stringify(command));
  }

  _ensureWebSocket() {
    if (this._closed || this._transport === "sse" || this._ws || this._wsTimer) return;
    let socket;
    let opened = false;
    try {
      socket = new this._WebSocket(wsUrlFor(this.baseUrl, "/ws", [["token", this.token]]));
    } catch (e) {
      this._wsFailed(false);
      return;
    }
    this._ws = socket;
    socket.onopen = () => {
      opened = true;
      this._wsEverOpened = true;
      this._wsAttempt = 0;
      this._setTransport("ws");
      for (const channel of this._channels.values()) {
        channel.subscribed = false;
        this._wsSendSub(channel);
      }
      for (const pending of this._pending.values()) socket.send(JSON.stringify(pending.command));
    };
    socket.onmessage = (e) => this._wsFrame(e.data);
    socket.onclose = () => {
      if (this._ws !== socket) return;
      this._ws = null;
      this._wsFailed(opened);
    };
    socket.onerror = () => { /* onclose follows */ };
  }

  _wsFailed(wasOpen) {
    for (const pending of this._pending.values()) pending.reject(new Error("connection lost before the broker answered"));
    this._pending.clear();
    for (const channel of this._channels.values()) {
      channel.subscribed = false;
      for (const sub of channel.subs) {
        if (sub.readyState === OPEN) sub.readyState = CONNECTING;
        sub._error({ reason: "connection lost; reconnecting" });
      }
    }
    if (this._closed) return;
    if (!wasOpen && !this._wsEverOpened && this._mode === "auto" && this._EventSource) {
      // the WebSocket could not open at all (blocked by a proxy, refused): SSE from here on
      this._fallBackToSse();
      return;
    }
    const delay = backoffDelay(this._wsAttempt++);
    this._wsTimer = setTimeout(() => {
      this._wsTimer = null;
      this._ensureWebSocket();
    }, delay);
  }

  _fallBackToSse() {
    this._setTransport("sse");
    this._channels.clear();
    for (const sub of this._subs) this._openEventSource(sub);
  }

  _wsFrame(text) {
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      return;
    }
    if (frame.ev === "puback") {
      const pending = this._pending.get(frame.req);
      if (!pending) return;
      this._pending.delete(frame.req);
      if (frame.ok) pending.resolve(frame);
      else pending.reject(new Error(frame.reason || "publish refused"));
      return;
    }
    if (frame.ev === "pong") return;
    const channel = frame.ch !== undefined ? this._channels.get(frame.ch) : undefined;
    if (frame.ev === "error") {
      const targets = channel ? channel.subs : frame.ch === undefined ? this._subs : [];
      for (const sub of targets) sub._error({ reason: frame.reason });
      this.dispatchEvent(new CustomEvent("error", { detail: frame }));
      return;
    }
    if (!channel) return;
    switch (frame.ev) {
      case "subscribed":
        // sent after the replay of history, with the position the subscription now stands at
        channel.subscribed = true;
        for (const sub of channel.subs) {
          if (frame.id) sub.lastId = frame.id;
          sub._opened();
        }
        break;
      case "msg": {
        const msg = { topic: frame.topic, data: frame.data, enc: frame.enc, id: frame.id, ts: frame.ts, qos: frame.qos, retain: frame.retain };
        for (const sub of channel.subs) sub._deliver(msg);
        break;
      }
      case "gap":
        for (const sub of channel.subs) sub._gap({ reason: frame.reason, requested: frame.requested, resumedFrom: frame.resumedFrom, advice: frame.advice });
        break;
      case "presence": {
        const msg = { topic: "$presence", data: frame.data, enc: "json", id: null, ts: frame.data && frame.data.at };
        for (const sub of channel.subs) sub._deliver(msg);
        break;
      }
      default:
        break;
    }
  }

  // ------------------------------------------------------------------ SSE transport

  _openEventSource(sub) {
    if (this._closed || sub.readyState === CLOSED) return;
    const from = sub.resumeFrom;
    const params = [["topic", sub.filter], ["token", this.token]];
    if (from === "earliest") params.push(["from", "earliest"]);
    else if (from) params.push(["lastEventId", from]);
    const source = new this._EventSource(joinUrl(this.baseUrl, "/sse", params));
    sub._eventSource = source;
    source.onopen = () => {
      this._setTransport("sse");
      sub._opened();
    };
    source.addEventListener("message", (e) => {
      let data;
      try { data = JSON.parse(e.data); } catch { return; }
      sub._deliver({ topic: data.topic, data: data.payload, enc: data.enc, id: e.lastEventId || null, ts: data.ts, qos: data.qos, retain: data.retain });
    });
    source.addEventListener("gap", (e) => {
      try { sub._gap(JSON.parse(e.data)); } catch { /* malformed */ }
    });
    source.addEventListener("presence", (e) => {
      let data;
      try { data = JSON.parse(e.data); } catch { return; }
      sub._deliver({ topic: "$presence", data, enc: "json", id: null, ts: data.at });
    });
    source.onerror = () => {
      if (sub._eventSource !== source) return;
      if (sub.readyState === OPEN) sub.readyState = CONNECTING;
      sub._error({ reason: "connection lost; reconnecting" });
      // CONNECTING: the browser reconnects by itself with Last-Event-ID (after the server's retry: hint).
      // CLOSED (an HTTP error such as 401/429/503): reconnect ourselves with backoff, resuming after lastId.
      if (source.readyState === 2) {
        source.close();
        sub._eventSource = null;
        const delay = backoffDelay(sub._attempt++);
        sub._retryTimer = setTimeout(() => this._openEventSource(sub), delay);
      }
    };
  }
}

export default IotRealtimeClient;
