// riverwatch duty console: polls /console/api/state and draws it. No framework, no build step; data goes
// into the page through textContent and attributes only, never as HTML.
"use strict";
(function () {
  const setup = JSON.parse(document.getElementById("setup").textContent);
  const T = setup.text;
  const SVG = "http://www.w3.org/2000/svg";
  let timer = null;

  function el(tag, attrs, ...kids) {
    const n = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") n.textContent = v;
      else if (k === "on") for (const [ev, fn] of Object.entries(v)) n.addEventListener(ev, fn);
      else n.setAttribute(k, v === true ? "" : String(v));
    }
    for (const k of kids) if (k !== null && k !== undefined) n.append(k);
    return n;
  }

  function pad(n) { return String(n).padStart(2, "0"); }

  function when(ns) {
    if (ns === null || ns === undefined) return "";
    const d = new Date(ns / 1e6 + setup.offset_min * 60000);
    const off = setup.offset_min;
    const sign = off < 0 ? "-" : "+";
    const a = Math.abs(off);
    return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
      `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}${sign}${pad(Math.floor(a / 60))}:${pad(a % 60)}`;
  }

  function num(x) {
    if (x === null || x === undefined || !isFinite(x)) return "";
    return Number(x).toPrecision(3).replace(/\.?0+$/, "").replace(/\.?0+e/, "e");
  }

  function named(obj, key) {
    const zh = obj[key + "_zh"];
    return setup.lang === "zh" && zh ? zh : obj[key];
  }

  function word(w) { return T[w] || w; }

  function stateWord(s) { return s === "sensor" ? T.sensor_state : word(s); }

  // -- the river schematic --------------------------------------------------------------------------------
  function river(r, incidents) {
    const placed = r.stations.filter((s) => s.km !== null);
    const kms = placed.map((s) => s.km).concat(r.dams.map((d) => d.km), r.tributaries.map((t) => t.km));
    const box = el("div", { class: "river" }, el("h3", { text: named(r, "name") }));
    if (kms.length) {
      const lo = Math.min(...kms), hi = Math.max(...kms);
      const W = 1100, H = 125, L = 110, R = 110, Y = 70;
      const x = (km) => L + (hi > lo ? ((km - lo) / (hi - lo)) * (W - L - R) : (W - L - R) / 2);
      const svg = el("svg:svg", { viewBox: `0 0 ${W} ${H}`, class: "schematic", role: "img", "aria-label": named(r, "name") });
      svg.append(el("svg:line", { x1: L - 20, y1: Y, x2: W - R + 20, y2: Y, class: "water" }));
      svg.append(el("svg:text", { x: W - R + 22, y: Y + 4, class: "flow", text: "→" }));
      // An open incident: the reach between the first and the furthest station it hit so far (its front).
      for (const inc of incidents.filter((i) => i.river === r.name && i.hits.length)) {
        const ks = inc.hits.map((h) => h.km);
        const a = x(Math.min(...ks)), b = x(Math.max(...ks));
        svg.append(el("svg:rect", { x: a - 12, y: Y - 14, width: b - a + 24, height: 28, rx: 14, class: "plume",
          "data-incident": inc.id }, el("svg:title", { text: `${inc.id} · ${named(inc, "parameter_name")}` })));
      }
      for (const t of r.tributaries) {
        svg.append(el("svg:line", { x1: x(t.km) - 25, y1: 14, x2: x(t.km), y2: Y, class: "tributary" }));
        svg.append(el("svg:text", { x: x(t.km) - 25, y: 11, class: "small", "text-anchor": "middle",
          text: named(t, "name") }));
      }
      for (const d of r.dams) {
        svg.append(el("svg:line", { x1: x(d.km), y1: Y - 10, x2: x(d.km), y2: Y + 10, class: "dam" },
          el("svg:title", { text: `${d.name} (${d.km} ${T.km})` })));
      }
      placed.forEach((s, i) => {
        const g = el("svg:g", { class: `station st-${s.state}`, "data-station": s.id, "data-state": s.state });
        g.append(el("svg:title", { text: `${named(s, "name")} · ${s.km} ${T.km} · ${stateWord(s.state)}` +
          (s.intake ? ` · ${T.intake}` : "") + (s.silenced ? ` · ${T.silenced}` : "") }));
        if (s.intake) g.append(el("svg:rect", { x: x(s.km) - 9, y: Y - 9, width: 18, height: 18 }));
        else g.append(el("svg:circle", { cx: x(s.km), cy: Y, r: 9 }));
        const up = i % 2 === 0;  // names alternate above and below the river, the km right under the marker
        g.append(el("svg:text", { x: x(s.km), y: up ? Y - 20 : Y + 44, class: "label", "text-anchor": "middle",
          text: named(s, "name") }));
        g.append(el("svg:text", { x: x(s.km), y: Y + 24, class: "small", "text-anchor": "middle",
          text: `${s.km} ${T.km}` + (s.silenced ? ` · ${T.silenced}` : "") }));
        svg.append(g);
      });
      box.append(svg);
    }
    const unplaced = r.stations.filter((s) => s.km === null);
    if (unplaced.length) {
      box.append(el("p", { class: "small" }, `${T.not_placed}: `,
        ...unplaced.map((s) => el("span", { class: `chip st-${s.state}`, "data-station": s.id, "data-state": s.state,
          text: `${named(s, "name")} (${stateWord(s.state)})` }))));
    }
    const legend = el("p", { class: "legend" },
      ...["ok", "notice", "alert", "sensor"].map((s) => el("span", { class: `chip st-${s}`, text: stateWord(s) })),
      el("span", { class: "chip intake", text: `■ ${T.intake}` }));
    box.append(legend);
    return box;
  }

  // -- alert tables ---------------------------------------------------------------------------------------
  function actionsCell(a, ended) {
    const td = el("td", { class: "actions" });
    if (setup.duty && !ended) {
      if (!a.acked_by) {
        td.append(el("button", { class: "ack", "data-alert": a.id, text: T.ack, on: { click: () => ack(a.id) } }));
      }
      td.append(el("button", { class: "silence", "data-alert": a.id, text: T.silence,
        on: { click: () => openSilence(a) } }));
    }
    return td;
  }

  function historyOf(a) {
    const rows = a.actions.map((x) => el("li", { text: `${when(x.at_ns)} ${x.by}: ${x.action}${x.detail ? " — " + x.detail : ""}` }));
    const base = [el("li", { text: `${when(a.started_ns)} ${word("started")}` })];
    if (a.resolved_ns) base.push(el("li", { text: `${when(a.resolved_ns)} ${word(a.state)}` }));
    return el("details", {}, el("summary", { text: a.id }), el("ul", {}, ...base, ...rows));
  }

  function table(alerts, ended) {
    if (!alerts.length) return el("p", { class: "none", text: T.none });
    const head = ["station", "parameter", "state", "severity", "started", "updated", "value", "limit", "peak",
      "ratio", "acked", "actions"];
    const t = el("table", {}, el("thead", {}, el("tr", {}, ...head.map((h) => el("th", { text: T[h] })))));
    const body = el("tbody");
    for (const a of alerts) {
      const u = a.unit ? ` ${a.unit}` : "";
      const flags = [a.flapping ? T.flapping : "", a.silenced ? T.silenced : ""].filter(Boolean).join(", ");
      body.append(el("tr", { "data-alert": a.id, class: `sev-${a.severity} state-${a.state}` },
        el("td", { text: named(a, "station_name") }),
        el("td", { text: named(a, "parameter_name") }),
        el("td", { class: "state", text: word(a.state) + (flags ? ` (${flags})` : "") }),
        el("td", { class: "severity", text: word(a.severity) }),
        el("td", { text: when(a.started_ns) }),
        el("td", { text: when(a.updated_ns) }),
        el("td", { class: "n", text: a.category === "sensor" ? "" : num(a.value) + u }),
        el("td", { class: "n", text: a.category === "sensor" ? "" : num(a.limit) + u }),
        el("td", { class: "n", text: a.category === "sensor" ? "" : num(a.peak_value) + u }),
        el("td", { class: "n", text: a.category === "sensor" ? "" : num(a.peak_ratio) }),
        el("td", { class: "acked", text: a.acked_by ? `${a.acked_by} ${when(a.acked_ns)}` : "" }),
        actionsCell(a, ended)));
      body.append(el("tr", { class: "history" }, el("td", { colspan: head.length }, historyOf(a))));
    }
    t.append(body);
    return t;
  }

  function list(items, render, extra) {
    if (!items.length) return el("p", { class: "none", text: T.none });
    return el("ul", {}, ...items.map((x) => el("li", {}, el("span", { text: render(x) }), extra ? extra(x) : null)));
  }

  function fill(id, node) {
    const body = document.querySelector(`#${id} .body`);
    body.replaceChildren(node);
  }

  function draw(s) {
    const stationName = {};
    for (const r of s.rivers) for (const st of r.stations) stationName[st.id] = named(st, "name");
    fill("rivers", el("div", {}, ...s.rivers.map((r) => river(r, s.incidents))));
    fill("incidents", list(s.incidents, (i) => `${i.id} · ${T.opened} ${when(i.opened_ns)} · ${T.stations_hit}: ` +
      i.hits.map((h) => `${stationName[h.station] || h.station} (${h.km} ${T.km}, ${when(h.first_ns)})`).join(", ")));
    fill("water", table(s.water, false));
    fill("sensor", table(s.sensor, false));
    fill("history", table(s.history, true));
    fill("silences", list(s.silences, (x) => `${stationName[x.station] || x.station}/${x.parameter || "*"} ` +
      `${T.until} ${when(x.until_ns)} · ${x.reason} · ${T.by} ${x.by}`, (x) => setup.duty
      ? el("button", { class: "expire", "data-silence": x.id, text: T.expire, on: { click: () => expire(x.id) } })
      : null));
    const detail = (d) => d.replace(/until=(\d{15,})/, (_, ns) => `until=${when(Number(ns))}`);
    fill("audit", list(s.audit, (x) => `${when(x.at_ns)} ${x.by}: ${x.action} ${x.subject}` +
      (x.detail ? " — " + detail(x.detail) : "")));
    const status = document.getElementById("status");
    status.textContent = `${T.updated_at} ${when(s.now_ns)}`;
    status.className = "";
    document.body.dataset.loaded = String(s.now_ns);
  }

  async function refresh() {
    clearTimeout(timer);
    try {
      const r = await fetch("/console/api/state", { credentials: "same-origin", cache: "no-store" });
      if (r.status === 401) { window.location.assign("/console/login"); return; }
      const doc = await r.json();
      if (!r.ok) throw new Error(doc.error || r.status);
      draw(doc);
    } catch (e) {
      const status = document.getElementById("status");
      status.textContent = `${T.poll_failed}: ${e.message}`;
      status.className = "error";
    }
    timer = setTimeout(refresh, setup.poll_ms);
  }

  async function post(path, body) {
    const r = await fetch(path, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": setup.csrf },
      body: JSON.stringify(body),
    });
    const doc = await r.json();
    if (!r.ok) throw new Error(doc.error || String(r.status));
    return doc;
  }

  async function ack(id) {
    try { await post("/console/api/ack", { alert: id }); } catch (e) { window.alert(e.message); }
    refresh();
  }

  async function expire(id) {
    try { await post("/console/api/silence/expire", { silence: id }); } catch (e) { window.alert(e.message); }
    refresh();
  }

  const dialog = document.getElementById("silence-dialog");
  const form = document.getElementById("silence-form");
  let target = null;

  function openSilence(a) {
    target = a;
    dialog.querySelector(".target").textContent = `${named(a, "station_name")} / ${named(a, "parameter_name")}`;
    form.querySelector(".error").textContent = "";
    dialog.showModal();
  }

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const data = new FormData(form);
    try {
      await post("/console/api/silence", { station: target.station, parameter: target.parameter,
        duration: data.get("duration"), reason: data.get("reason") });
      dialog.close();
      refresh();
    } catch (e) {
      form.querySelector(".error").textContent = e.message;
    }
  });
  form.querySelector(".cancel").addEventListener("click", () => dialog.close());

  refresh();
})();
