// Topic explorer: subscribe to any filter through the realtime client and watch messages scroll (newest first, at
// most maxRows kept, drawn once per frame); publish through mqtt.js over the broker's /mqtt WebSocket listener.
import { connectRealtime, notice, query, formatTime, payloadText, RateMeter, frameScheduler } from "/app/common.js";

const maxRows = Number.parseInt(query.get("rows") ?? "", 10) > 0 ? Number.parseInt(query.get("rows"), 10) : 500;
const list = document.getElementById("messages");
const form = document.getElementById("subscribe");
const stopButton = document.getElementById("stop");
const pause = document.getElementById("pause");
const stats = document.getElementById("stats");
const rate = new RateMeter();
let queued = [];
let client = null;
let sub = null;
let received = 0;
let filter = null;
const draw = frameScheduler(flush);

window.iotDashboard = {
  page: "explorer",
  maxRows,
  received: () => received,
  // 0 connecting, 1 open, 2 closed (EventSource-like); null before the first subscription.
  subscriptionState: () => sub?.readyState ?? null,
  // The rows on screen, newest first: what a person reads.
  rows: () => [...list.querySelectorAll("li:not(.gap)")].map((li) => ({ id: li.dataset.id, topic: li.dataset.topic, payload: li.querySelector(".payload").textContent })),
};

form.from.addEventListener("change", () => {
  document.getElementById("position-label").hidden = form.from.value !== "position";
});

form.addEventListener("submit", async (e) => {
  e.preventDefault();
  await subscribe(form.filter.value.trim(), form.from.value === "position" ? form.position.value.trim() : form.from.value);
});

stopButton.addEventListener("click", () => {
  sub?.close();
  sub = null;
  stopButton.disabled = true;
  stats.textContent = `Stopped after ${received.toLocaleString()} messages.`;
});

document.getElementById("clear").addEventListener("click", () => {
  list.replaceChildren();
  queued = [];
});

pause.addEventListener("change", () => {
  if (!pause.checked) draw();
});

async function subscribe(newFilter, from) {
  if (!newFilter) return;
  sub?.close();
  notice(null);
  try {
    client ??= await connectRealtime();
    window.iotDashboard.client = client;
  } catch (err) {
    notice(`Cannot connect: ${err.message}`, "bad");
    return;
  }
  filter = newFilter;
  received = 0;
  list.replaceChildren();
  queued = [];
  sub = client.subscribe(filter, (msg) => {
    received++;
    rate.add();
    queued.push(msg);
    // Bounded while paused or in a hidden tab: only the newest maxRows can ever be shown.
    if (queued.length > maxRows) queued.splice(0, queued.length - maxRows);
    draw();
  }, from ? { from } : {});
  sub.addEventListener("gap", (e) => {
    const gap = e.detail;
    queued.push({ gap });
    draw();
  });
  sub.addEventListener("error", (e) => {
    const reason = e.detail?.reason ?? "";
    // Lost connections are retried by the client (and resumed without loss); anything else is the server's refusal.
    if (reason.startsWith("connection lost")) stats.textContent = `Reconnecting… (${received.toLocaleString()} messages so far)`;
    else if (reason) notice(`The server refused ${filter}: ${reason}`, "bad");
  });
  sub.addEventListener("open", () => notice(null));
  stopButton.disabled = false;
  const url = new URL(location.href);
  url.searchParams.set("filter", filter);
  if (from) url.searchParams.set("from", from);
  else url.searchParams.delete("from");
  history.replaceState(null, "", url);
  flush();
}

function flush() {
  if (filter) stats.textContent = `${received.toLocaleString()} messages on ${filter}, ${rate.perSecond().toFixed(1)}/s${pause.checked ? " (display paused)" : ""}.`;
  if (pause.checked || queued.length === 0) return;
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
    li.textContent = `Gap: ${msg.gap.reason ?? "messages missing"}; resumed from ${msg.gap.resumedFrom ?? "the oldest held"}. ${msg.gap.advice ?? ""}`;
    return li;
  }
  li.dataset.id = msg.id ?? "";
  li.dataset.topic = msg.topic ?? "";
  const time = document.createElement("span");
  time.textContent = formatTime(msg.ts);
  time.title = `position ${msg.id ?? "?"}`;
  const topic = document.createElement("span");
  topic.className = "topic";
  topic.textContent = msg.topic;
  const payload = document.createElement("span");
  payload.className = "payload";
  payload.textContent = payloadText(msg);
  li.append(time, topic, payload);
  return li;
}

// ---- Publishing with mqtt.js over /mqtt ----
const connectForm = document.getElementById("mqtt-connect");
const publishForm = document.getElementById("publish");
const state = document.getElementById("mqtt-state");
const result = document.getElementById("publish-result");
let mqttClient = null;

connectForm.url.value = query.get("mqtt") ?? `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/mqtt`;
publishForm.topic.value = query.get("topic") ?? "";

function setState(text, kind) {
  state.textContent = text;
  state.className = `pill ${kind}`;
  const connected = kind === "ok";
  document.getElementById("publish-button").disabled = !connected;
  document.getElementById("mqtt-disconnect").disabled = !mqttClient;
}

connectForm.addEventListener("submit", async (e) => {
  e.preventDefault();
  mqttClient?.end(true);
  mqttClient = null;
  let mqtt;
  try {
    mqtt = (await import("/lib/mqtt.esm.js")).default;
  } catch {
    setState("mqtt.js missing", "bad");
    result.textContent = "The MQTT library (/lib/mqtt.esm.js) is missing: the server was built without npm.";
    return;
  }
  setState("connecting…", "warn");
  const options = {
    protocolVersion: 5,
    clientId: `dashboard-${crypto.randomUUID().slice(0, 8)}`,
    clean: true,
    reconnectPeriod: 0,
    connectTimeout: 10_000,
  };
  if (connectForm.username.value) options.username = connectForm.username.value;
  if (connectForm.password.value) options.password = connectForm.password.value;
  const c = mqtt.connect(connectForm.url.value.trim(), options);
  mqttClient = c;
  c.on("connect", () => setState(`connected as ${options.clientId}`, "ok"));
  c.on("error", (err) => {
    setState("refused", "bad");
    result.textContent = `MQTT connection failed: ${err.message}`;
  });
  c.on("close", () => {
    if (mqttClient === c && state.className !== "pill bad") setState("disconnected", "");
  });
});

document.getElementById("mqtt-disconnect").addEventListener("click", () => {
  mqttClient?.end();
  mqttClient = null;
  setState("disconnected", "");
});

publishForm.addEventListener("submit", (e) => {
  e.preventDefault();
  if (!mqttClient) return;
  const topic = publishForm.topic.value.trim();
  const qos = Number(publishForm.qos.value);
  result.textContent = "publishing…";
  mqttClient.publish(topic, publishForm.payload.value, { qos, retain: publishForm.retain.checked }, (err, packet) => {
    const code = packet?.reasonCode ?? 0;
    if (err) result.textContent = `Not published to ${topic}: ${err.message}`;
    else if (code >= 0x80) result.textContent = `Not published to ${topic}: the broker answered reason code 0x${code.toString(16)}${code === 0x87 ? " (not authorized)" : ""}.`;
    else result.textContent = qos === 0 ? `Sent to ${topic} (QoS 0, no acknowledgement).` : `Published to ${topic}, acknowledged by the broker.`;
  });
});

setState("disconnected", "");

// ?filter=…&from=… subscribes at once (links from other pages, bookmarks).
if (query.get("filter")) {
  form.filter.value = query.get("filter");
  const from = query.get("from") ?? "";
  if (from && from !== "earliest") {
    form.from.value = "position";
    form.position.value = from;
    document.getElementById("position-label").hidden = false;
  } else {
    form.from.value = from;
  }
  await subscribe(form.filter.value, from);
}
