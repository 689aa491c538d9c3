// Gatehouse dashboard. Plain JavaScript, no framework. Every value from the
// server is written with textContent, never as HTML: event details, user
// agents and ban reasons can be written by an attacker.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);

  if (document.body.id === "login-page") {
    const q = new URLSearchParams(location.search);
    if (q.get("failed") === "setup") $("login-setup").hidden = false;
    else if (q.has("failed")) $("login-failed").hidden = false;
    if (q.has("code")) { $("login-code").hidden = false; $("code").required = true; }
    return;
  }

  let csrf = "";
  const SVG = "http://www.w3.org/2000/svg";

  async function api(method, path, body) {
    const opts = { method, headers: {}, credentials: "same-origin" };
    if (method !== "GET") opts.headers["X-CSRF-Token"] = csrf;
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    const r = await fetch(path, opts);
    if (r.status === 401) { location.href = "/dashboard/login"; throw new Error("signed out"); }
    const data = r.status === 204 ? {} : await r.json();
    if (!r.ok) throw new Error((data && (data.detail || data.title)) || ("HTTP " + r.status));
    return data;
  }

  function showError(e) { const p = $("error"); p.textContent = String(e.message || e); p.hidden = false; }

  function cell(tr, text, cls) {
    const td = document.createElement("td");
    td.textContent = text == null ? "" : String(text);
    if (cls) td.className = cls;
    tr.appendChild(td);
    return td;
  }

  function button(label, cls, onclick) {
    const b = document.createElement("button");
    b.type = "button"; b.textContent = label; if (cls) b.className = cls;
    b.addEventListener("click", onclick);
    return b;
  }

  const fmt = (t) => t ? new Date(t).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z") : "";

  // ---- charts (inline SVG) ----
  const COLORS = ["#1f6feb", "#c62828", "#2e7d32", "#ef6c00", "#6a1b9a", "#00838f", "#5d4037", "#455a64"];

  function drawLines(svg, series, maxPoints) {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    const W = 300, H = 100, pad = 4;
    let max = 1;
    series.forEach((s) => s.values.forEach((v) => { if (v > max) max = v; }));
    const n = Math.max(maxPoints, 2);
    series.forEach((s, i) => {
      const pts = s.values.map((v, j) => {
        const x = pad + (W - 2 * pad) * (j + n - s.values.length) / (n - 1);
        const y = H - pad - (H - 2 * pad) * v / max;
        return x.toFixed(1) + "," + y.toFixed(1);
      });
      const pl = document.createElementNS(SVG, "polyline");
      pl.setAttribute("points", pts.join(" "));
      pl.setAttribute("fill", "none");
      pl.setAttribute("stroke", s.color || COLORS[i % COLORS.length]);
      pl.setAttribute("stroke-width", "1.5");
      svg.appendChild(pl);
    });
    const label = document.createElementNS(SVG, "text");
    label.setAttribute("x", "4"); label.setAttribute("y", "12"); label.setAttribute("font-size", "9"); label.setAttribute("fill", "#66707a");
    label.textContent = "max " + max;
    svg.appendChild(label);
  }

  async function loadStats() {
    const { points } = await api("GET", "/admin/v1/stats");
    const last = points.slice(-60);
    drawLines($("chart-requests"), [{ values: last.map((p) => p.requests) }, { values: last.map((p) => p.errors_5xx), color: "#c62828" }], 60);
    drawLines($("chart-limited"), [{ values: last.map((p) => p.rate_limited), color: "#ef6c00" }], 60);
    const reasons = new Set();
    last.forEach((p) => Object.keys(p.denied || {}).forEach((r) => reasons.add(r)));
    const names = Array.from(reasons).sort().slice(0, COLORS.length);
    drawLines($("chart-denials"), names.map((r, i) => ({ values: last.map((p) => (p.denied || {})[r] || 0), color: COLORS[i] })), 60);
    const legend = $("legend-denials");
    legend.textContent = "";
    names.forEach((r, i) => { const s = document.createElement("span"); s.style.color = COLORS[i]; s.textContent = "■ " + r; legend.appendChild(s); });
  }

  // ---- bans ----
  async function loadBans() {
    const { bans } = await api("GET", "/admin/v1/bans");
    const tb = $("bans").tBodies[0];
    tb.textContent = "";
    bans.forEach((b) => {
      const tr = document.createElement("tr");
      tr.dataset.banId = b.id;
      cell(tr, b.kind); cell(tr, b.value); cell(tr, b.reason); cell(tr, b.source); cell(tr, fmt(b.expires_at));
      const td = document.createElement("td");
      td.appendChild(button("Lift", "danger lift", async () => {
        try { await api("DELETE", "/admin/v1/bans/" + encodeURIComponent(b.id)); await loadBans(); } catch (e) { showError(e); }
      }));
      tr.appendChild(td);
      tb.appendChild(tr);
    });
  }

  $("ban-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      await api("POST", "/admin/v1/bans", { kind: $("ban-kind").value, value: $("ban-value").value, duration: $("ban-duration").value, reason: $("ban-reason").value });
      $("ban-value").value = "";
      await loadBans();
    } catch (e) { showError(e); }
  });

  // ---- alerts ----
  async function loadAlerts() {
    const { alerts } = await api("GET", "/admin/v1/alerts?limit=20");
    const tb = $("alerts").tBodies[0];
    tb.textContent = "";
    alerts.forEach((a) => {
      const tr = document.createElement("tr");
      const d = a.detail || {};
      cell(tr, fmt(a.time)); cell(tr, d.title); cell(tr, d.subjects, "detail");
      tb.appendChild(tr);
    });
  }

  // ---- events ----
  let eventsBefore = "";
  async function loadEvents(older) {
    const q = new URLSearchParams({ limit: "50" });
    if ($("f-type").value) q.set("type", $("f-type").value);
    if ($("f-ip").value) q.set("ip", $("f-ip").value);
    if ($("f-user").value) q.set("user_id", $("f-user").value);
    if (older && eventsBefore) q.set("before", eventsBefore);
    const page = await api("GET", "/admin/v1/events?" + q.toString());
    const tb = $("events").tBodies[0];
    if (!older) tb.textContent = "";
    page.events.forEach((e) => {
      const tr = document.createElement("tr");
      cell(tr, fmt(e.time)); cell(tr, e.type); cell(tr, e.ip); cell(tr, e.user_id);
      cell(tr, Object.entries(e.detail || {}).map(([k, v]) => k + "=" + v).join(" "), "detail");
      tb.appendChild(tr);
    });
    eventsBefore = page.next_before || "";
    $("events-older").hidden = !eventsBefore;
  }
  $("event-filter").addEventListener("submit", (ev) => { ev.preventDefault(); loadEvents(false).catch(showError); });
  $("events-older").addEventListener("click", () => loadEvents(true).catch(showError));

  // ---- users and sessions ----
  let sessionsUser = "";
  async function loadUsers() {
    const { users } = await api("GET", "/admin/v1/users?limit=100");
    const tb = $("users").tBodies[0];
    tb.textContent = "";
    users.forEach((u) => {
      const tr = document.createElement("tr");
      cell(tr, u.email); cell(tr, (u.roles || []).join(", ")); cell(tr, u.plan); cell(tr, u.locked ? "yes" : "");
      const td = document.createElement("td");
      td.appendChild(button("Sessions", "", () => loadSessions(u).catch(showError)));
      tr.appendChild(td);
      tb.appendChild(tr);
    });
  }
  async function loadSessions(u) {
    sessionsUser = u.id;
    const { sessions } = await api("GET", "/admin/v1/users/" + encodeURIComponent(u.id) + "/sessions");
    $("sessions-of").textContent = u.email;
    const tb = $("sessions-body");
    tb.textContent = "";
    sessions.forEach((s) => {
      const tr = document.createElement("tr");
      cell(tr, fmt(s.created_at)); cell(tr, fmt(s.last_used_at)); cell(tr, s.ip); cell(tr, s.user_agent, "detail");
      tb.appendChild(tr);
    });
    $("sessions").hidden = false;
  }
  $("revoke-sessions").addEventListener("click", async () => {
    if (!sessionsUser) return;
    try {
      await api("POST", "/admin/v1/users/" + encodeURIComponent(sessionsUser) + "/revoke-sessions");
      $("sessions-body").textContent = "";
    } catch (e) { showError(e); }
  });

  // ---- keys and certificate ----
  async function loadStatus() {
    const st = await api("GET", "/admin/v1/status");
    const tb = $("keys").tBodies[0];
    tb.textContent = "";
    (st.keys || []).forEach((k) => {
      const tr = document.createElement("tr");
      cell(tr, k.ID || k.id); cell(tr, k.Algorithm || k.algorithm); cell(tr, k.State || k.state); cell(tr, fmt(k.CreatedAt || k.created_at));
      tb.appendChild(tr);
    });
    const c = st.certificate;
    $("cert").textContent = c ? ("Certificate " + c.subject + " (" + (c.dns_names || []).join(", ") + ") expires " + fmt(c.not_after) +
      " — in " + Math.floor(c.expires_in_seconds / 86400) + " days") : "No certificate information.";
  }

  $("logout").addEventListener("click", async () => {
    try { await api("POST", "/dashboard/logout"); } catch (e) { /* signed out either way */ }
    location.href = "/dashboard/login";
  });

  async function start() {
    const s = await api("GET", "/admin/v1/session");
    csrf = s.csrf_token || "";
    $("who").textContent = s.email ? "Signed in as " + s.email : "";
    await Promise.all([loadStats(), loadBans(), loadAlerts(), loadEvents(false), loadUsers(), loadStatus()]);
    document.body.dataset.ready = "1";
    setInterval(() => { loadStats().catch(showError); loadBans().catch(showError); loadAlerts().catch(showError); }, 5000);
  }
  start().catch(showError);
})();
