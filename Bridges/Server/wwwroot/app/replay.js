// Replay: streams GET /api/replay?filter=..&from=..&format=ndjson (one JSON message per line, oldest first) and shows
// the messages paced by their recorded timestamps divided by the chosen speed. 404 means Kafka is not configured.
import { authFetch, HttpError, notice, query, formatTime, frameScheduler } from "/app/common.js";

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
  const url = `/api/replay?filter=${encodeURIComponent(form.filter.value.trim())}&from=${encodeURIComponent(from)}&format=ndjson`;
  list.replaceChildren();
  queued = [];
  shown = 0;
  notice(null);
  startButton.disabled = true;
  stopButton.disabled = false;
  progress.textContent = "Starting…";
  try {
    const response = await authFetch(url, { signal: controller.signal, headers: { Accept: "application/x-ndjson" } });
    await play(response, speed, controller.signal);
    progress.textContent = `Done: ${shown.toLocaleString()} messages replayed.`;
  } catch (err) {
    if (controller.signal.aborted) {
      progress.textContent = `Stopped after ${shown.toLocaleString()} messages.`;
    } else if (err instanceof HttpError && err.status === 404) {
      progress.textContent = "Not started.";
      notice("Kafka not configured: replay reads the Kafka log, and this server has no Kafka connection (set Kafka:BootstrapServers on the broker and the bridges).", "bad");
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
      const msg = normalize(JSON.parse(line));
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
