// The live activity page of mock-akto: plain JS, no dependencies, served by the engine (works offline).
// Every value from the engine is written with textContent, never as HTML: payloads are untrusted text.
"use strict";

const ADMIN = "/__admin";
const MAX_ROWS = 500;      // rows kept in the table (oldest removed): thousands of calls never grow the page
const MAX_KEPT = 2000;     // calls kept for re-filtering
const TOKEN_KEY = "mock-akto-admin-token";

const $ = (id) => document.getElementById(id);
const state = { calls: [], seen: 0, skipped: 0, connectors: new Set(), namespaces: new Set(), selected: null };

function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

function headers(extra) {
  const h = Object.assign({}, extra || {});
  if (token()) h["authorization"] = "Bearer " + token();
  return h;
}

async function getJSON(path) {
  const response = await fetch(ADMIN + path, { headers: headers(), credentials: "same-origin" });
  if (!response.ok) throw new Error(path + ": HTTP " + response.status + " " + (await response.text()).slice(0, 200));
  return response.json();
}

// State-changing admin calls: JSON content type, same origin, the token when one is set.
async function postJSON(path, namespace) {
  const response = await fetch(ADMIN + path, {
    method: "POST", credentials: "same-origin", body: "{}",
    headers: headers({ "content-type": "application/json", "x-mock-akto-namespace": namespace }),
  });
  const text = await response.text();
  if (!response.ok) throw new Error("HTTP " + response.status + ": " + text.slice(0, 300));
  return text ? JSON.parse(text) : null;
}

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "" : String(text);
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

function timeOf(epoch) {
  const d = new Date(epoch * 1000);
  return d.toLocaleTimeString([], { hour12: false }) + "." + String(d.getMilliseconds()).padStart(3, "0");
}

function matches(call) {
  const connector = $("filter-connector").value, verdict = $("filter-verdict").value, ns = $("filter-namespace").value;
  if (connector && call.connector !== connector) return false;
  if (ns && call.namespace !== ns) return false;
  if (verdict === "fault") return Boolean(call.fault);
  if (verdict && call.verdict !== verdict) return false;
  return true;
}

function rowFor(call) {
  const tr = document.createElement("tr");
  tr.dataset.namespace = call.namespace;
  tr.dataset.seq = call.seq;
  tr.dataset.verdict = call.verdict;
  tr.className = "v-" + (call.verdict || "none") + (call.fault ? " has-fault" : "");
  cell(tr, timeOf(call.time));
  cell(tr, call.namespace);
  cell(tr, call.connector || "-");
  cell(tr, call.app);
  cell(tr, call.direction);
  cell(tr, call.verdict || "-", "verdict");
  cell(tr, call.reason, "reason");
  cell(tr, call.policy);
  cell(tr, call.latency_ms === null ? "" : call.latency_ms.toFixed(1), "num");
  cell(tr, call.fault, "fault");
  cell(tr, call.status === null ? "no answer" : call.status, "num");
  tr.addEventListener("click", () => showDetail(call.namespace, call.seq));
  return tr;
}

function addOption(select, set, value) {
  if (!value || set.has(value)) return;
  set.add(value);
  const option = document.createElement("option");
  option.value = option.textContent = value;
  select.appendChild(option);
}

function counts() {
  $("counts").textContent = state.seen + " calls seen · " + $("calls").tBodies[0].rows.length + " shown" +
    (state.skipped ? " · " + state.skipped + " dropped by the journal before they were read" : "");
}

function addCall(call) {
  state.seen += 1;
  state.calls.push(call);
  if (state.calls.length > MAX_KEPT) state.calls.splice(0, state.calls.length - MAX_KEPT);
  addOption($("filter-connector"), state.connectors, call.connector);
  if (!state.namespaces.has(call.namespace)) {
    addOption($("ctl-namespace"), new Set([...$("ctl-namespace").options].map((o) => o.value)), call.namespace);
  }
  addOption($("filter-namespace"), state.namespaces, call.namespace);
  if (!matches(call)) return;
  const body = $("calls").tBodies[0];
  body.insertBefore(rowFor(call), body.firstChild);
  while (body.rows.length > MAX_ROWS) body.deleteRow(body.rows.length - 1);
}

function redraw() {
  const body = $("calls").tBodies[0];
  body.replaceChildren();
  const shown = state.calls.filter(matches).slice(-MAX_ROWS).reverse();
  for (const call of shown) body.appendChild(rowFor(call));
  counts();
}

// -- the event stream: fetch (not EventSource) so the admin token can go in a header ---------------------

function setStatus(text, on) {
  const status = $("status");
  status.textContent = text;
  status.className = "status " + (on ? "on" : "off");
  status.dataset.state = on ? "live" : "down";
}

function handleEvent(name, data) {
  if (name === "call") addCall(JSON.parse(data));
  else if (name === "skipped") state.skipped += JSON.parse(data).count;
}

async function follow() {
  for (;;) {
    let backlog = state.seen ? 0 : 200;
    try {
      const response = await fetch(ADMIN + "/ui/events?backlog=" + backlog, { headers: headers(), credentials: "same-origin" });
      if (!response.ok) throw new Error("HTTP " + response.status + (response.status === 401 ? ": enter the admin token" : ""));
      setStatus("live", true);
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          let name = "message", data = "";
          for (const line of block.split("\n")) {
            if (line.startsWith("event: ")) name = line.slice(7);
            else if (line.startsWith("data: ")) data += line.slice(6);
          }
          if (data) handleEvent(name, data);
        }
        counts();
      }
      setStatus("stream ended, reconnecting…", false);
    } catch (error) {
      setStatus("disconnected (" + error.message + "), retrying…", false);
    }
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

// -- the detail view ----------------------------------------------------------------------------------

function showPayload(pre, text, segments) {
  pre.replaceChildren();
  if (segments) {
    for (const segment of segments) {
      if (segment.redacted_as) {
        const mark = document.createElement("mark");
        mark.textContent = segment.text;
        mark.title = "redacted as " + segment.redacted_as;
        mark.dataset.redactedAs = segment.redacted_as;
        pre.appendChild(mark);
        const token = document.createElement("span");
        token.className = "token";
        token.textContent = "→" + segment.redacted_as;
        pre.appendChild(token);
      } else {
        pre.appendChild(document.createTextNode(segment.text));
      }
    }
  } else {
    pre.textContent = text || "(none)";
  }
}

async function showDetail(namespace, seq) {
  let call;
  try {
    call = await getJSON("/ui/calls/" + encodeURIComponent(namespace) + "/" + seq);
  } catch (error) {
    $("control-result").textContent = error.message;
    return;
  }
  $("detail").hidden = false;
  $("detail-title").textContent = call.method + " " + call.path + " · #" + call.seq + " in " + call.namespace;
  const facts = $("detail-facts");
  facts.replaceChildren();
  for (const [label, value] of [["verdict", call.verdict], ["reason", call.reason], ["policy", call.policy],
                                ["fault", call.fault], ["status", call.status], ["latency ms", call.latency_ms],
                                ["connector", call.connector], ["app", call.app], ["error", call.error], ["note", call.note]]) {
    if (value === null || value === undefined || value === "") continue;
    const dt = document.createElement("dt"); dt.textContent = label;
    const dd = document.createElement("dd"); dd.textContent = String(value);
    facts.append(dt, dd);
  }
  showPayload($("detail-request"), call.request_payload, call.redactions.request);
  showPayload($("detail-response"), call.response_payload, call.redactions.response);
  $("detail-verdicts").textContent = JSON.stringify(call.verdicts, null, 2);
}

// -- controls -------------------------------------------------------------------------------------------

async function control(label, path) {
  const namespace = $("ctl-namespace").value || "default";
  const result = $("control-result");
  result.textContent = label + "…";
  try {
    await postJSON(path, namespace);
    result.textContent = label + " in namespace " + namespace + ": done";
    result.dataset.ok = "true";
  } catch (error) {
    result.textContent = label + " failed: " + error.message;
    result.dataset.ok = "false";
  }
}

function fill(select, values) {
  select.replaceChildren();
  for (const value of values) {
    const option = document.createElement("option");
    option.value = option.textContent = value;
    select.appendChild(option);
  }
}

async function loadChoices() {
  try {
    fill($("fault-preset"), await getJSON("/presets"));
    fill($("policy-preset"), await getJSON("/policies/presets"));
    const namespaces = (await getJSON("/namespaces")).map((ns) => ns.name);
    fill($("ctl-namespace"), namespaces.includes("default") ? namespaces : ["default", ...namespaces]);
  } catch (error) {
    $("control-result").textContent = "could not load the presets: " + error.message;
  }
}

function start() {
  $("token").value = token();
  $("token").addEventListener("change", () => {
    sessionStorage.setItem(TOKEN_KEY, $("token").value);
    loadChoices();
  });
  $("apply-fault").addEventListener("click", () => control("fault preset " + $("fault-preset").value,
    "/presets/" + encodeURIComponent($("fault-preset").value)));
  $("apply-policy").addEventListener("click", () => control("policy preset " + $("policy-preset").value,
    "/policies/presets/" + encodeURIComponent($("policy-preset").value)));
  $("reset").addEventListener("click", () => control("reset", "/reset"));
  for (const id of ["filter-connector", "filter-verdict", "filter-namespace"]) $(id).addEventListener("change", redraw);
  $("clear-view").addEventListener("click", () => { state.calls = []; redraw(); });
  $("close-detail").addEventListener("click", () => { $("detail").hidden = true; });
  loadChoices();
  follow();
}

start();
