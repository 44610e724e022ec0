// Replay: streams GET /api/replay?filter=..&from=..&format=ndjson (one JSON record per line, oldest first: position,
// topic, ts, qos, retain, clientId, payload, enc) and shows the messages paced by their recorded timestamps divided by
// the chosen speed. The endpoint is part of the broker's admin API: loopback callers, or Admin:Token as a bearer token.
import { notice, query, formatTime, frameScheduler } from "/app/common.js";

const maxRows = 500;
const form = document.getElementById("replay");
const list = document.getElementById("messages");
const progress = document.getElementById("progress");
const startButton = document.getElementById("start");
const stopButton = document.getElementById("stop");
let abort = null;
let shown = 0;
let queued = [];
const draw = frameScheduler(flush);

window.iotDashboard = { page: "replay", shown: () => shown };

// Default start: an hour ago, in the local time zone the input shows.
const hourAgo = new Date(Date.now() - 3600_000);
form.time.value = new Date(hourAgo.getTime() - hourAgo.getTimezoneOffset() * 60_000).toISOString().slice(0, 19);
if (query.get("filter")) form.filter.value = query.get("filter");

form.kind.addEventListener("change", () => {
  document.getElementById("time-label").hidden = form.kind.value !== "time";
  document.getElementById("position-label").hidden = form.kind.value !== "position";
});

stopButton.addEventListener("click", () => abort?.abort());

form.addEventListener("submit", async (e) => {
  e.preventDefault();
  abort?.abort();
  const controller = new AbortController();
  abort = controller;
  const from = form.kind.value === "time"
    ? new Date(form.time.value).toISOString()
    : form.kind.value === "position" ? form.position.value.trim() : "earliest";
  const speed = Number(form.speed.value);
  const limit = Math.min(100_000, Math.max(1, Number.parseInt(form.limit.value, 10) || 1000));
  const url = `/api/replay?filter=${encodeURIComponent(form.filter.value.trim())}&from=${encodeURIComponent(from)}&limit=${limit}&format=ndjson`;
  const headers = { Accept: "application/x-ndjson" };
  const adminToken = form.adminToken.value.trim();
  if (adminToken) headers.Authorization = `Bearer ${adminToken}`;
  list.replaceChildren();
  queued = [];
  shown = 0;
  notice(null);
  startButton.disabled = true;
  stopButton.disabled = false;
  progress.textContent = "Starting…";
  try {
    const response = await fetch(url, { signal: controller.signal, headers });
    if (!response.ok) {
      progress.textContent = "Not started.";
      notice(await refusal(response), "bad");
      return;
    }
    await play(response, speed, controller.signal);
    progress.textContent = `Done: ${shown.toLocaleString()} messages replayed.`;
  } catch (err) {
    if (controller.signal.aborted) {
      progress.textContent = `Stopped after ${shown.toLocaleString()} messages.`;
    } else {
      progress.textContent = `Stopped after ${shown.toLocaleString()} messages.`;
      notice(`Replay failed: ${err.message}`, "bad");
    }
  } finally {
    if (abort === controller) {
      startButton.disabled = false;
      stopButton.disabled = true;
    }
  }
});

/** What to tell the user about a refused replay request. */
async function refusal(response) {
  let message = "";
  try {
    const text = await response.text();
    try {
      message = JSON.parse(text).error ?? text;
    } catch {
      message = text;
    }
  } catch {
    // no body
  }
  // 404 without Kafka (or on a server without the replay API at all); a missing Kafka topic also answers 404, with its name.
  if (response.status === 404 && (!message || message.includes("not configured"))) {
    return "Kafka not configured: replay reads the Kafka log, and this server has no Kafka connection (set Kafka:BootstrapServers on the broker).";
  }
  if (response.status === 401) return `The replay API needs the broker's admin token (Admin:Token): enter it above. (${message})`;
  if (response.status === 403) return `The replay API refused this browser: ${message}`;
  if (response.status === 410) return `That position is older than what Kafka still holds: ${message}`;
  return `Replay refused: HTTP ${response.status} ${message}`;
}

/** Reads NDJSON lines as they arrive; waits between messages so that recorded time passes `speed` times faster. */
async function play(response, speed, signal) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let firstRecorded = null;
  let startedAt = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let newline;
    while ((newline = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, newline).trim();
      buffer = buffer.slice(newline + 1);
      if (!line) continue;
      const parsed = JSON.parse(line);
      // A failure mid-stream is the stream's last line: {"error", "cursor"}.
      if (parsed.error) throw new Error(`${parsed.error} (stopped at ${parsed.cursor})`);
      const msg = normalize(parsed);
      if (msg.gap) {
        queued.push(msg);
        draw();
        continue;
      }
      const recorded = Date.parse(msg.ts);
      if (speed > 0 && Number.isFinite(recorded)) {
        firstRecorded ??= recorded;
        startedAt ??= performance.now();
        const due = startedAt + (recorded - firstRecorded) / speed;
        const wait = due - performance.now();
        if (wait > 0) await delay(wait, signal);
      }
      shown++;
      queued.push(msg);
      if (queued.length > maxRows) queued.splice(0, queued.length - maxRows);
      progress.textContent = `${shown.toLocaleString()} messages replayed; at ${formatTime(msg.ts)} (${new Date(msg.ts).toLocaleDateString()}).`;
      draw();
    }
  }
}

/** Accepts the field names a replay line may carry (topic, payload/data, enc, ts/timestamp, id/position). */
function normalize(line) {
  if (line.event === "gap" || line.ev === "gap" || line.gap) return { gap: line.gap ?? line };
  return {
    topic: line.topic,
    data: line.payload ?? line.data ?? "",
    enc: line.enc ?? "utf8",
    ts: line.ts ?? line.timestamp ?? line.time,
    id: line.id ?? line.position ?? (line.offset !== undefined ? `${line.partition ?? 0}:${line.offset}` : ""),
  };
}

function delay(ms, signal) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(new DOMException("stopped", "AbortError"));
    }, { once: true });
  });
}

function flush() {
  const batch = queued;
  queued = [];
  const fragment = document.createDocumentFragment();
  for (let i = batch.length - 1; i >= 0; i--) fragment.append(row(batch[i]));
  list.prepend(fragment);
  while (list.childElementCount > maxRows) list.lastElementChild.remove();
}

function row(msg) {
  const li = document.createElement("li");
  if (msg.gap) {
    li.className = "gap";
    li.textContent = `Gap: ${msg.gap.reason ?? "messages missing"}. ${msg.gap.advice ?? ""}`;
    return li;
  }
  li.dataset.id = msg.id;
  const time = document.createElement("span");
  time.textContent = formatTime(msg.ts);
  time.title = `position ${msg.id}`;
  const topic = document.createElement("span");
  topic.className = "topic";
  topic.textContent = msg.topic;
  const payload = document.createElement("span");
  payload.className = "payload";
  payload.textContent = msg.enc === "base64" ? `base64:${msg.data}` : msg.data;
  li.append(time, topic, payload);
  return li;
}
