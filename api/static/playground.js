/* OpenOps playground: vanilla JS over the public API. No framework, no build step.
 *
 * Safety: model text is never given to innerHTML. It is split into lines and inline tokens
 * and rebuilt with createElement/textContent; the only formatting rendered is **bold**, lists,
 * headings (as bold lines) and line breaks. The only links created are citations (to source
 * cards on this page) and the sources' own http(s) permalinks. */
(function () {
  "use strict";

  const AUTH_MODE = (document.querySelector('meta[name="openops-auth"]') || {}).content || "key";
  const NEEDS_KEY = AUTH_MODE !== "none";
  const $ = (sel) => document.querySelector(sel);
  const TYPE = {
    O: { icon: "#", label: "public channel" },
    P: { icon: "lock", label: "private channel" },
    D: { icon: "@", label: "direct message" },
    G: { icon: "group", label: "group message" },
  };
  // Icons as SVG built through the DOM (no emoji font needed, nothing fetched).
  const ICONS = {
    lock: [["rect", { x: 3, y: 7, width: 10, height: 7.5, rx: 1.6 }],
      ["path", { d: "M5.2 7V5.2a2.8 2.8 0 0 1 5.6 0V7", fill: "none", stroke: "currentColor",
        "stroke-width": 1.7 }]],
    group: [["circle", { cx: 5.8, cy: 5.2, r: 2.4 }],
      ["path", { d: "M1.2 13.6c0-2.7 2-4.4 4.6-4.4s4.6 1.7 4.6 4.4z" }],
      ["circle", { cx: 11.4, cy: 5.8, r: 2 }],
      ["path", { d: "M11.2 9.4c2.2 0 3.8 1.5 3.8 4.2h-3.4c0-1.7-.3-3.1-1-4z" }]],
    up: [["path", { d: "M1.5 7.2h2.7v7.3H1.5z" }],
      ["path", { d: "M5.4 7.2l2.9-5.4c1.2 0 2 .9 1.7 2.2l-.5 2.4h3.6c1 0 1.7.9 1.5 1.9l-1.2 " +
        "5c-.2.7-.8 1.2-1.5 1.2H5.4z" }]],
  };

  function icon(name, extra) {
    const NS = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(NS, "svg");
    svg.setAttribute("viewBox", "0 0 16 16");
    svg.setAttribute("width", "14");
    svg.setAttribute("height", "14");
    svg.setAttribute("fill", "currentColor");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    if (extra) svg.setAttribute("class", extra);
    for (const [tag, attrs] of ICONS[name]) {
      const el = document.createElementNS(NS, tag);
      for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
      svg.append(el);
    }
    return svg;
  }
  const TYPE_ORDER = { O: 0, P: 1, G: 2, D: 3 };
  const DIRECT = "Direct & group messages";

  const state = {
    apiKey: sessionStorage.getItem("openops.apiKey") || "",
    adminKey: sessionStorage.getItem("openops.adminKey") || "",
    users: null,
    me: null, // signed in with Mattermost: {id, username}; then the session cookie is the key
    csrf: "",
    user: null, // {username, name, position, guest}
    scope: [],
    conversationId: null,
    controller: null,
    turns: 0,
    view: "chat", // chat | profile | for
    profile: null, // the last GET/PUT /v1/profile answer for state.user
    forRuns: 0,
  };

  // ---- DOM helpers ------------------------------------------------------------------------
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") el.className = v;
      else if (k === "text") el.textContent = v;
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  function announce(msg) {
    const s = $("#status");
    s.textContent = "";
    window.setTimeout(() => { s.textContent = msg; }, 30);
  }

  function fmtTime(ms) {
    if (!ms) return "";
    const d = new Date(ms);
    const mon = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
      "Dec"][d.getUTCMonth()];
    const pad = (n) => String(n).padStart(2, "0");
    return `${d.getUTCDate()} ${mon} ${d.getUTCFullYear()}, ${pad(d.getUTCHours())}:` +
      `${pad(d.getUTCMinutes())} UTC`;
  }

  /** A meeting offset in ms as h:mm:ss (or m:ss). */
  function fmtClock(ms) {
    const t = Math.max(0, Math.floor(ms / 1000));
    const pad = (n) => String(n).padStart(2, "0");
    const hh = Math.floor(t / 3600);
    const mm = Math.floor((t % 3600) / 60);
    return (hh ? `${hh}:${pad(mm)}` : String(mm)) + `:${pad(t % 60)}`;
  }

  function typeIcon(type) {
    const t = TYPE[type] || { icon: "?", label: "channel" };
    return h("span", { class: `ico ico-${type}`, title: t.label },
      ICONS[t.icon] ? icon(t.icon) : h("span", { "aria-hidden": "true", text: t.icon }),
      h("span", { class: "sr-only", text: t.label + " " }));
  }

  // ---- API --------------------------------------------------------------------------------
  class ApiError extends Error {
    constructor(message, status) { super(message); this.status = status; }
  }

  function headers(admin) {
    const out = { "Content-Type": "application/json", Accept: "application/json" };
    if (state.me) { // the session cookie goes along by itself; changes need the CSRF token
      out["X-CSRF-Token"] = state.csrf;
      return out;
    }
    const key = admin ? (state.adminKey || state.apiKey) : state.apiKey;
    if (NEEDS_KEY && key) out.Authorization = `Bearer ${key}`;
    return out;
  }

  /** Who a request acts as: nobody to name when signed in (the server knows), else the pick. */
  function asWho() {
    return state.me ? {} : { user: state.user.username };
  }

  async function failure(resp) {
    let msg = `HTTP ${resp.status}`;
    try {
      const body = await resp.json();
      if (body && body.error) msg = body.error;
    } catch (_) { /* not JSON */ }
    if (resp.status === 401 && state.me) signedOut("Your session has ended: sign in again.");
    else if (resp.status === 401 && NEEDS_KEY) showKeys("The API key was refused: check it.");
    return new ApiError(msg, resp.status);
  }

  async function getJSON(path, admin) {
    const resp = await fetch(path, { headers: headers(admin) });
    if (!resp.ok) throw await failure(resp);
    return resp.json();
  }

  async function postJSON(path, body, signal) {
    const resp = await fetch(path, {
      method: "POST", headers: { ...headers(false), Accept: "text/event-stream" },
      body: JSON.stringify(body), signal,
    });
    if (!resp.ok) throw await failure(resp);
    return resp;
  }

  /** A JSON request (PUT, or a POST answered at once) and its JSON answer. */
  async function sendJSON(method, path, body) {
    const resp = await fetch(path, { method, headers: headers(false), body: JSON.stringify(body) });
    if (!resp.ok) throw await failure(resp);
    return resp.json();
  }

  /** Read a text/event-stream body, calling onEvent(type, data) per event (data JSON-parsed). */
  async function readSSE(resp, onEvent) {
    const reader = resp.body.getReader();
    const decoder = new TextDecoder();
    let buf = "";
    let type = "";
    let data = [];
    const line = (l) => {
      if (l === "") {
        if (data.length) {
          const raw = data.join("\n");
          let parsed = raw;
          try { parsed = JSON.parse(raw); } catch (_) { /* keep raw text */ }
          onEvent(type || "message", parsed);
        }
        type = "";
        data = [];
        return;
      }
      if (l.startsWith(":")) return;
      const i = l.indexOf(":");
      const field = i < 0 ? l : l.slice(0, i);
      let value = i < 0 ? "" : l.slice(i + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") type = value;
      else if (field === "data") data.push(value);
    };
    for (;;) {
      const { value, done } = await reader.read();
      buf += done ? decoder.decode() : decoder.decode(value, { stream: true });
      const parts = buf.split(/\r\n|\n|\r(?!$)/);
      buf = done ? "" : parts.pop();
      if (done && parts.length && parts[parts.length - 1] !== "") parts.push("");
      parts.forEach(line);
      if (done) break;
    }
  }

  // ---- keys and mode ----------------------------------------------------------------------
  function renderMode() {
    const m = $("#mode");
    m.replaceChildren();
    if (state.me) {
      m.className = "mode ok";
      m.append(h("strong", { text: "Signed in" }), ` · as @${state.me.username}`);
    } else if (!NEEDS_KEY) {
      m.className = "mode warn";
      m.append(h("strong", { text: "Local mode" }), " · no key, loopback only (--insecure-local)");
    } else if (state.apiKey) {
      m.className = "mode ok";
      m.append(h("strong", { text: "Key set" }), " · kept in this tab only");
    } else {
      m.className = "mode";
      m.append(h("strong", { text: "Key required" }), " · enter the API key");
    }
  }

  /** The key panel: the form while editing (or refused), else one line saying what is set. */
  function showKeys(message, editing) {
    const panel = $("#keys");
    panel.hidden = false;
    const open = Boolean(editing || message || !state.apiKey);
    $("#keys-form").hidden = !open;
    $("#keys-summary").hidden = open;
    $("#keys-state").textContent = `API key set${state.adminKey ? ", admin key set" : ""}.`;
    let p = panel.querySelector(".error");
    if (message) {
      if (!p) { p = h("p", { class: "error", role: "alert" }); panel.append(p); }
      p.textContent = message;
    } else if (p) p.remove();
  }

  // ---- sign-in ----------------------------------------------------------------------------
  /** Signed in with Mattermost: no keys, no user picker; the person asks as themselves. */
  function signedIn(me, csrf) {
    state.me = me;
    state.csrf = csrf;
    $("#signin").hidden = false;
    $("#signed-out").hidden = true;
    $("#signed-in").hidden = false;
    $("#signed-in-as").textContent = `Signed in as @${me.username}.`;
    $(".tagline").textContent = "Answers drawn only from what you may read.";
    $("#keys").hidden = true;
    $("#picker-select").hidden = true;
    $("#picker-text").hidden = true;
    renderMode();
    selectUser(me.username);
  }

  function signedOut(message) {
    state.me = null;
    state.csrf = "";
    $("#signin").hidden = false;
    $("#signed-out").hidden = false;
    $("#signed-in").hidden = true;
    let p = $("#signin").querySelector(".error");
    if (message) {
      if (!p) { p = h("p", { class: "error", role: "alert" }); $("#signin").append(p); }
      p.textContent = message;
    } else if (p) p.remove();
  }

  async function signOut() {
    try {
      const resp = await fetch("/auth/logout", { method: "POST", headers: headers(false) });
      if (!resp.ok) throw await failure(resp);
    } catch (err) {
      announce(`Sign-out failed: ${err.message}`);
      return;
    }
    window.location.reload();
  }

  /** Ask the server who this browser is signed in as (GET /auth/session needs no key). */
  async function loadSession() {
    try {
      const resp = await fetch("/auth/session", { headers: { Accept: "application/json" } });
      if (!resp.ok) return false;
      const s = await resp.json();
      if (s.user) { signedIn(s.user, s.csrf_token || ""); return true; }
      if (s.sign_in) signedOut(null);
    } catch (_) { /* an API without sign-in: keys as before */ }
    return false;
  }

  // ---- users ------------------------------------------------------------------------------
  async function loadUsers() {
    const select = $("#user-select");
    try {
      const body = await getJSON("/v1/users", true);
      state.users = body.users || [];
      select.replaceChildren(h("option", { value: "", text: "Choose a user…" }),
        ...state.users.map((u) => h("option", { value: u.username },
          `${u.name || u.username} (@${u.username})` + (u.position ? ` · ${u.position}` : "") +
          (u.guest ? " · guest" : ""))));
      $("#picker-select").hidden = false;
      $("#picker-text").hidden = true;
      $("#reader-list").replaceChildren(...state.users.map((u) => h("option", {
        value: u.username, label: `${u.name || u.username}${u.position ? " · " + u.position : ""}`,
      })));
    } catch (err) {
      state.users = null;
      $("#picker-select").hidden = true;
      $("#picker-text").hidden = false;
      $("#picker-hint").textContent = err.status === 403
        ? "Listing users needs the admin key; type a username instead."
        : `Could not list users (${err.message}); type a username instead.`;
    }
  }

  function renderUserCard() {
    const card = $("#user-card");
    card.replaceChildren();
    const u = state.user;
    if (!u) { card.hidden = true; return; }
    card.hidden = false;
    const initials = (u.name || u.username).split(/[\s.]+/).map((x) => x[0] || "").join("")
      .slice(0, 2).toUpperCase();
    card.append(
      h("span", { class: "avatar", "aria-hidden": "true", text: initials }),
      h("div", { class: "who" },
        h("div", { class: "name" }, u.name || u.username,
          u.guest ? h("span", { class: "badge guest", text: "guest" }) : null),
        h("div", { class: "handle", text: `@${u.username}` }),
        u.position ? h("div", { class: "position", text: u.position }) : null));
  }

  async function selectUser(username) {
    username = (username || "").trim().replace(/^@/, "");
    stopStream();
    resetConversation();
    state.scope = [];
    state.profile = null;
    $("#for-results").replaceChildren();
    $("#for-status").textContent = "";
    if (!username) {
      state.user = null;
      renderUserCard();
      renderScope(null);
      renderProfile(null);
      return;
    }
    const known = (state.users || []).find((u) => u.username === username);
    state.user = known || { username, name: "", position: "", guest: false };
    renderUserCard();
    if (state.view === "profile") loadProfile();
    else renderProfile(null);
    const box = $("#scope");
    box.replaceChildren(h("p", { class: "hint", text: "Loading…" }));
    try {
      const body = await getJSON(state.me ? "/v1/scope"
        : `/v1/scope?user=${encodeURIComponent(username)}`, false);
      if (!state.user || state.user.username !== username) return; // switched meanwhile
      state.scope = body.channels || [];
      renderScope(state.scope);
    } catch (err) {
      box.replaceChildren(h("p", { class: "error", role: "alert", text: err.message }));
      $("#scope-count").textContent = "";
      fillChannels([]);
    }
  }

  // ---- scope ------------------------------------------------------------------------------
  function groups(channels) {
    const by = new Map();
    for (const c of channels) {
      const team = c.team || DIRECT;
      if (!by.has(team)) by.set(team, []);
      by.get(team).push(c);
    }
    const names = [...by.keys()].sort((a, b) =>
      (a === DIRECT) - (b === DIRECT) || a.localeCompare(b));
    return names.map((team) => [team, by.get(team).sort((a, b) =>
      (TYPE_ORDER[a.type] ?? 9) - (TYPE_ORDER[b.type] ?? 9) || a.name.localeCompare(b.name))]);
  }

  function renderScope(channels) {
    const box = $("#scope");
    box.replaceChildren();
    $("#scope-count").textContent = channels ? String(channels.length) : "";
    fillChannels(channels || []);
    if (!channels) {
      box.append(h("p", { class: "hint", text: "Pick a user to see what they may read." }));
      return;
    }
    if (!channels.length) {
      box.append(h("p", { class: "empty-scope",
        text: "This user may read nothing: answers will find no sources." }));
      return;
    }
    for (const [team, list] of groups(channels)) {
      box.append(h("div", { class: "team" },
        h("h3", { class: "team-name" }, team, h("span", { class: "count", text: list.length })),
        h("ul", { class: "chan-list" }, list.map((c) => h("li", {},
          h("button", {
            type: "button", class: `chan chan-${c.type}`, "data-channel": c.id,
            title: `Summarise ${c.name}`,
            onclick: () => { chooseChannel(c.id); },
          }, typeIcon(c.type), h("span", { class: "chan-name", text: c.name })))))));
    }
  }

  function fillChannels(channels) {
    fillChannelSelect($("#sum-channel"), channels);
    fillChannelSelect($("#for-channel"), channels);
  }

  function fillChannelSelect(sel, channels) {
    const prev = sel.value;
    sel.replaceChildren();
    if (!channels.length) {
      sel.append(h("option", { value: "",
        text: state.user ? "No channels in scope" : "Pick a user first" }));
      sel.disabled = true;
      return;
    }
    sel.disabled = false;
    for (const [team, list] of groups(channels)) {
      sel.append(h("optgroup", { label: team },
        list.map((c) => h("option", { value: c.id, text: c.name }))));
    }
    if ([...sel.options].some((o) => o.value === prev)) sel.value = prev;
  }

  function chooseChannel(id) {
    $("#kind-channel").checked = true;
    syncKind();
    $("#sum-channel").value = id;
    $("#sum-days").focus();
  }

  // ---- rendering model text safely ---------------------------------------------------------
  const INLINE = /\*\*(.+?)\*\*|\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]/g;
  // The output guard writes Markdown: what it escaped (\[ \. \_ ...) and the character
  // references it wrote (&lt; &amp; ...) read as the characters they stand for. Text nodes only.
  const UNESCAPE = /\\([!-\/:-@[-`{-~])|&(#x[0-9a-f]{1,6}|#[0-9]{1,7}|amp|lt|gt|quot|apos);/gi;
  const NAMED = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };

  function plain(text) {
    return text.replace(UNESCAPE, (all, ch, ent) => {
      if (ch !== undefined) return ch;
      const e = ent.toLowerCase();
      if (NAMED[e]) return NAMED[e];
      const code = e.startsWith("#x") ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
      return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : all;
    });
  }

  function inline(text, ctx) {
    const out = [];
    let last = 0;
    for (const m of text.matchAll(INLINE)) {
      if (m.index > last) out.push(document.createTextNode(plain(text.slice(last, m.index))));
      if (m[1] !== undefined) out.push(h("strong", {}, inline(m[1], ctx)));
      else m[2].split(",").forEach((n) => out.push(citation(Number(n.trim()), ctx)));
      last = m.index + m[0].length;
    }
    if (last < text.length) out.push(document.createTextNode(plain(text.slice(last))));
    return out;
  }

  function citation(n, ctx) {
    const src = ctx.sources && ctx.sources.get(n);
    const label = () => [h("span", { class: "br", text: "[" }), String(n),
      h("span", { class: "br", text: "]" })];
    if (!src) return h("span", { class: "cite pending", title: `source ${n}` }, label());
    const where = [src.channel_name && `~${src.channel_name}`, src.author].filter(Boolean)
      .join(", ");
    return h("a", {
      class: "cite", href: `#${ctx.id}-s${n}`, "data-source": n,
      title: `Source ${n}${where ? ": " + where : ""}`, "aria-label": `source ${n}`,
      onclick: (ev) => { ev.preventDefault(); highlightSource(ctx.id, n); },
    }, label());
  }

  function renderRich(container, text, ctx) {
    const frag = document.createDocumentFragment();
    let para = null;
    let list = null;
    const close = () => { para = null; list = null; };
    for (const raw of text.split("\n")) {
      const lineText = raw.replace(/\s+$/, "");
      if (!lineText.trim()) { close(); continue; }
      let m;
      if ((m = lineText.match(/^\s*#{1,6}\s+(.*)$/))) {
        close();
        frag.append(h("p", { class: "heading" }, h("strong", {}, inline(m[1], ctx))));
      } else if ((m = lineText.match(/^\s*[-*•]\s+(.*)$/)) ||
                 (m = lineText.match(/^\s*(\d{1,3})[.)]\s+(.*)$/))) {
        const ordered = m.length === 3;
        const tag = ordered ? "ol" : "ul";
        if (!list || list.tagName.toLowerCase() !== tag) {
          para = null;
          list = h(tag, {});
          if (ordered && m[1] !== "1") list.setAttribute("start", m[1]);
          frag.append(list);
        }
        list.append(h("li", {}, inline(ordered ? m[2] : m[1], ctx)));
      } else if ((m = lineText.match(/^\s*_(.+)_\s*$/))) {
        close();
        frag.append(h("p", { class: "note" }, inline(m[1], ctx)));
      } else {
        list = null;
        if (!para) { para = h("p", {}); frag.append(para); } else para.append(h("br"));
        para.append(...inline(lineText.trim(), ctx));
      }
    }
    container.replaceChildren(frag);
  }

  // ---- sources ----------------------------------------------------------------------------
  function safeUrl(u) {
    if (typeof u !== "string") return null;
    try {
      const url = new URL(u);
      return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
    } catch (_) { return null; }
  }

  function excerpt(src) {
    // chunk texts start with a "Channel ~name Display (team)" line the card header already says
    return String(src.text || "").replace(/^(Channel|Group message|Direct message)\b[^\n]*\n/, "")
      .trim();
  }

  // "Alice A (@alice.a) 2026-09-21 14:13: text" -> <strong>Alice A</strong> text
  const MESSAGE_LINE = /^(.{1,80}?) \(@[\w.\-]+\) (\d{4}-\d\d-\d\d \d\d:\d\d)(?: UTC)?: ?(.*)$/;

  function excerptNodes(text) {
    const out = [];
    text.split("\n").forEach((line, i) => {
      if (i) out.push("\n");
      const m = line.match(MESSAGE_LINE);
      if (m) out.push(h("strong", { title: `${m[2]} UTC` }, m[1]), ": ", m[3]);
      else out.push(line);
    });
    return out;
  }

  function sourceCard(src, turnId) {
    const text = excerpt(src);
    const long = text.length > 320 || text.split("\n").length > 5;
    const body = h("p", { class: "src-text" + (long ? " clamped" : "") }, excerptNodes(text));
    const link = safeUrl(src.permalink);
    const by = [src.author, src.created_at ? fmtTime(src.created_at) : ""].filter(Boolean);
    const at = Number.isFinite(src.start_ms) ? h("div", { class: "src-at" },
      h("span", { class: "src-speaker", text: src.speaker || "" }),
      ` at ${fmtClock(src.start_ms)}` +
      (Number.isFinite(src.end_ms) ? `–${fmtClock(src.end_ms)}` : "")) : null;
    return h("li", { class: "src", id: `${turnId}-s${src.n}`, tabindex: "-1" },
      h("div", { class: "src-head" },
        h("span", { class: "src-n", text: src.n }),
        typeIcon(src.channel_type),
        h("span", { class: "src-where" },
          src.team_name ? h("span", { class: "src-team", text: `${src.team_name} / ` }) : null,
          src.channel_name || "(unknown channel)")),
      by.length ? h("div", { class: "src-by" },
        src.author ? h("span", { class: "src-author", text: src.author }) : null,
        src.created_at ? h("time", { class: "src-time",
          datetime: new Date(src.created_at).toISOString(), text: fmtTime(src.created_at) })
          : null) : null,
      src.file_name ? h("div", { class: "src-file", text: `File: ${src.file_name}` }) : null,
      at,
      body,
      h("div", { class: "src-actions" },
        long ? h("button", {
          type: "button", class: "link-btn", "aria-expanded": "false",
          onclick: (ev) => {
            const open = body.classList.toggle("clamped") === false;
            ev.currentTarget.setAttribute("aria-expanded", String(open));
            ev.currentTarget.textContent = open ? "Show less" : "Show all";
          },
        }, "Show all") : null,
        link ? h("a", { class: "permalink", href: link, target: "_blank",
          rel: "noopener noreferrer" }, "Open in Mattermost ↗") : null,
        src.thread_id ? h("button", {
          type: "button", class: "link-btn",
          onclick: () => summariseThreadOf(src.thread_id),
        }, "Summarise thread") : null));
  }

  function highlightSource(turnId, n) {
    const card = document.getElementById(`${turnId}-s${n}`);
    if (!card) return;
    const details = card.closest("details");
    if (details) details.open = true;
    document.querySelectorAll(".src.highlight").forEach((el) => el.classList.remove("highlight"));
    card.classList.remove("flash");
    void card.offsetWidth; // restart the flash animation
    card.classList.add("highlight", "flash");
    card.scrollIntoView({ behavior: "smooth", block: "center" });
    card.focus({ preventScroll: true });
  }

  function summariseThreadOf(threadId) {
    showView("chat");
    $("#kind-thread").checked = true;
    syncKind();
    $("#sum-thread").value = threadId;
    $(".summarise").scrollIntoView({ behavior: "smooth", block: "nearest" });
    $("#sum-go").focus();
  }

  // ---- conversation -----------------------------------------------------------------------
  function resetConversation() {
    state.conversationId = null;
    $("#turns").replaceChildren();
    $("#conv-title").textContent = "";
    $("#empty").hidden = false;
  }

  function stopStream() {
    if (state.controller) state.controller.abort();
    state.controller = null;
  }

  function setBusy(busy) {
    $("#ask-go").disabled = busy;
    $("#sum-go").disabled = busy;
    $("#stop").hidden = !busy;
  }

  function newTurn(kind, label) {
    const id = `t${++state.turns}`;
    $("#empty").hidden = true;
    const body = h("div", { class: "answer-body", "aria-busy": "true" },
      h("span", { class: "typing", "aria-label": "waiting for the answer" },
        h("i"), h("i"), h("i")));
    const foot = h("div", { class: "a-foot" });
    const sources = h("div", { class: "sources-slot" });
    const who = state.user ? `@${state.user.username}` : "";
    const li = h("li", { class: `turn turn-${kind}`, id },
      h("div", { class: "q" },
        h("span", { class: "q-who", text: kind === "summary" ? "Summary" : who }),
        h("span", { class: "q-text", text: label })),
      h("article", { class: "a", "aria-label": kind === "summary" ? "Summary" : "Answer" },
        body, foot, sources));
    $("#turns").append(li);
    const box = $("#conv-scroll");
    box.scrollTop = box.scrollHeight;
    return { id, li, body, foot, sourcesSlot: sources, text: "", sources: new Map(),
      done: null, kind };
  }

  function scheduleRender(turn) {
    if (turn.pending) return;
    turn.pending = true;
    requestAnimationFrame(() => {
      turn.pending = false;
      following(() => renderRich(turn.body, turn.text, { id: turn.id, sources: turn.sources }));
    });
  }

  /** Run a DOM update; keep the conversation pinned to its end if it was there before. */
  function following(update) {
    const box = $("#conv-scroll");
    const pinned = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
    update();
    if (pinned) box.scrollTop = box.scrollHeight;
  }

  function renderSources(turn, list) {
    turn.sources = new Map(list.map((s) => [Number(s.n), s]));
    following(() => {
      renderRich(turn.body, turn.text, { id: turn.id, sources: turn.sources });
      if (!list.length) return;
      turn.sourcesSlot.replaceChildren(h("details", { class: "sources", open: true },
        h("summary", {}, `Sources (${list.length})`),
        h("ol", { class: "src-list" }, list.map((s) => sourceCard(s, turn.id)))));
    });
  }

  function renderDone(turn, done) {
    turn.done = done;
    turn.body.setAttribute("aria-busy", "false");
    const meta = [done.model, done.scope_channels !== undefined &&
      `${done.scope_channels} channels in scope`, done.posts !== undefined &&
      `${done.posts} post${done.posts === 1 ? "" : "s"}`, done.latency_ms !== undefined &&
      `${Math.round(done.latency_ms)} ms`].filter(Boolean).join(" · ");
    const thanks = h("span", { class: "fb-status", role: "status" });
    const buttons = [["up", "Good answer"], ["down", "Bad answer"]].map(
      ([rating, label]) => h("button", {
        type: "button", class: `fb fb-${rating}`, "data-rating": rating, "aria-pressed": "false",
        "aria-label": label, title: label,
        onclick: (ev) => sendFeedback(turn, rating, ev.currentTarget, thanks),
      }, icon("up", rating === "down" ? "flip" : null)));
    turn.foot.replaceChildren(
      done.answer_id ? h("div", { class: "feedback", role: "group",
        "aria-label": "Rate this answer" }, buttons, thanks) : null,
      h("span", { class: "meta", text: meta }));
  }

  async function sendFeedback(turn, rating, button, status) {
    if (!state.user || !turn.done) return;
    const buttons = turn.foot.querySelectorAll(".fb");
    buttons.forEach((b) => { b.disabled = true; });
    try {
      const resp = await fetch("/v1/feedback", {
        method: "POST", headers: headers(false),
        body: JSON.stringify({ ...asWho(), answer_id: turn.done.answer_id, rating }),
      });
      if (!resp.ok) throw await failure(resp);
      buttons.forEach((b) => b.setAttribute("aria-pressed", String(b === button)));
      status.textContent = "Thanks, recorded.";
    } catch (err) {
      status.textContent = `Feedback failed: ${err.message}`;
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
  }

  function renderError(turn, message) {
    turn.body.setAttribute("aria-busy", "false");
    if (!turn.text) turn.body.replaceChildren();
    turn.body.append(h("p", { class: "error", role: "alert", text: message }));
  }

  async function run(turn, path, payload, onDone) {
    stopStream();
    const controller = new AbortController();
    state.controller = controller;
    setBusy(true);
    let finished = false;
    try {
      const resp = await postJSON(path, payload, controller.signal);
      await readSSE(resp, (type, data) => {
        if (type === "token") {
          turn.text += typeof data === "string" ? data : "";
          scheduleRender(turn);
        } else if (type === "sources") {
          renderSources(turn, Array.isArray(data) ? data : []);
        } else if (type === "done") {
          finished = true;
          following(() => {
            renderRich(turn.body, turn.text, { id: turn.id, sources: turn.sources });
            renderDone(turn, data || {});
          });
          onDone(data || {});
        } else if (type === "error") {
          finished = true;
          renderError(turn, (data && data.error) || "the answer failed");
        }
      });
      if (!finished) renderError(turn, "The stream ended before the answer was complete.");
      else if (turn.done) {
        announce(`${turn.kind === "summary" ? "Summary" : "Answer"} ready` +
          ` with ${turn.sources.size} source${turn.sources.size === 1 ? "" : "s"}.`);
      }
    } catch (err) {
      if (err.name === "AbortError") {
        turn.body.setAttribute("aria-busy", "false");
        if (!turn.text) turn.body.replaceChildren();
        turn.foot.replaceChildren(h("span", { class: "meta", text: "Stopped." }));
      } else {
        renderError(turn, err.message || String(err));
      }
    } finally {
      if (state.controller === controller) {
        state.controller = null;
        setBusy(false);
      }
    }
  }

  function needUser() {
    if (state.user) return false;
    announce("Pick a user first.");
    const target = $("#picker-select").hidden ? $("#user-text") : $("#user-select");
    target.focus();
    return true;
  }

  async function ask(question) {
    if (needUser()) return;
    const turn = newTurn("ask", question);
    const payload = { ...asWho(), question, stream: true };
    if (state.conversationId) payload.conversation_id = state.conversationId;
    await run(turn, "/v1/ask", payload, (done) => {
      if (done.conversation_id) {
        if (!state.conversationId) $("#conv-title").textContent = `· ${question.slice(0, 80)}`;
        state.conversationId = done.conversation_id;
      }
    });
  }

  async function summarise() {
    if (needUser()) return;
    const kind = document.querySelector('input[name="kind"]:checked').value;
    const payload = { ...asWho(), kind, stream: true };
    let label;
    if (kind === "thread") {
      const id = $("#sum-thread").value.trim();
      if (!id) { $("#sum-thread").focus(); announce("Enter a post id."); return; }
      payload.thread_id = id;
      label = `thread of post ${id}`;
    } else {
      const sel = $("#sum-channel");
      if (!sel.value) { sel.focus(); return; }
      const days = Number($("#sum-days").value) || 7;
      payload.channel_id = sel.value;
      payload.days = Math.min(Math.max(days, 1), 3650);
      const opt = sel.selectedOptions[0];
      label = `~${opt ? opt.textContent : sel.value}, last ${payload.days} days`;
    }
    stopStream();
    resetConversation(); // a summary starts a conversation; follow-ups go through Ask
    const turn = newTurn("summary", label);
    await run(turn, "/v1/summaries", payload, (done) => {
      state.conversationId = done.conversation_id || null;
      if (done.title) $("#conv-title").textContent = `· ${done.title}`;
      $("#question").placeholder = "Ask a follow-up about this summary…";
    });
  }

  function syncKind() {
    const thread = $("#kind-thread").checked;
    $("#f-thread").hidden = !thread;
    $("#f-channel").hidden = thread;
    $("#f-days").hidden = thread;
  }

  // ---- views ------------------------------------------------------------------------------
  function showView(name) {
    state.view = name;
    for (const tab of document.querySelectorAll(".view-tab")) {
      const on = tab.dataset.view === name;
      if (on) tab.setAttribute("aria-current", "page");
      else tab.removeAttribute("aria-current");
      $(`#view-${tab.dataset.view}`).hidden = !on;
    }
    if (name === "profile" && state.user && !state.profile) loadProfile();
  }

  // ---- profile ----------------------------------------------------------------------------
  const KIND_LABEL = {
    position: "position", interest: "interest", channel: "channel", authored: "wrote",
    reply: "replied", reaction: "reacted", mention: "mentioned",
  };

  async function loadProfile() {
    if (!state.user) { renderProfile(null); return; }
    const username = state.user.username;
    $("#signals").replaceChildren(h("p", { class: "hint", text: "Loading…" }));
    try {
      const body = await getJSON(state.me ? "/v1/profile"
        : `/v1/profile?user=${encodeURIComponent(username)}`, false);
      if (!state.user || state.user.username !== username) return; // switched meanwhile
      state.profile = body;
      renderProfile(body);
    } catch (err) {
      if (!state.user || state.user.username !== username) return;
      renderProfile(null);
      $("#signals").replaceChildren(h("p", { class: "error", role: "alert", text: err.message }));
    }
  }

  function renderProfile(p) {
    $("#prof-who").textContent = p ? `· @${p.user}` : "";
    $("#prof-form").hidden = !p;
    $("#sig-count").textContent = p ? String((p.signals || []).length) : "";
    if (!p) {
      $("#signals").replaceChildren(h("p", { class: "hint",
        text: state.user ? "Loading…" : "Pick a user to see their profile." }));
      return;
    }
    $("#prof-personalize").checked = Boolean(p.personalize);
    $("#prof-catchup").checked = Boolean(p.catchup);
    $("#prof-alerts").checked = Boolean(p.alerts);
    $("#prof-interests").value = p.interests || "";
    renderSignals(p.signals || []);
  }

  /** A signal's source: its http(s) permalink as a link, anything else (post:<id>,
   * ~team/channel, profile) as text. Signal texts are the posts' own words: text nodes. */
  function signalSource(source) {
    const link = safeUrl(source);
    if (link) {
      return h("a", { class: "permalink", href: link, target: "_blank",
        rel: "noopener noreferrer", title: link }, "Open post ↗");
    }
    return h("code", { class: "sig-src", text: String(source || "") });
  }

  function renderSignals(signals) {
    const box = $("#signals");
    if (!signals.length) {
      box.replaceChildren(h("p", { class: "empty-scope",
        text: "Nothing is known yet about what matters to this reader." }));
      return;
    }
    const max = Math.max(...signals.map((s) => Number(s.weight) || 0), 1);
    box.replaceChildren(h("table", { class: "sig-table" },
      h("thead", {}, h("tr", {},
        ["Kind", "Signal", "Weight", "Source"].map((t) => h("th", { scope: "col", text: t })))),
      h("tbody", {}, signals.map((sig) => {
        const w = Number(sig.weight) || 0;
        return h("tr", { class: `sig sig-${String(sig.kind).replace(/[^a-z]/g, "")}`,
          "data-kind": sig.kind },
        h("td", {}, h("span", { class: "sig-kind", text: KIND_LABEL[sig.kind] || sig.kind })),
        h("td", { class: "sig-text", text: String(sig.text || "") }),
        h("td", { class: "sig-weight" },
          h("meter", { min: 0, max, value: w, "aria-hidden": "true" }),
          h("span", { text: w.toFixed(2) })),
        h("td", { class: "sig-source" }, signalSource(sig.source)));
      }))));
  }

  async function saveProfile() {
    if (needUser()) return;
    const username = state.user.username;
    const status = $("#prof-status");
    const button = $("#prof-save");
    button.disabled = true;
    status.className = "hint";
    status.textContent = "Saving…";
    try {
      const body = await sendJSON("PUT", "/v1/profile", {
        ...asWho(), interests: $("#prof-interests").value.trim(),
        personalize: $("#prof-personalize").checked, catchup: $("#prof-catchup").checked,
        alerts: $("#prof-alerts").checked,
      });
      if (!state.user || state.user.username !== username) return;
      state.profile = body;
      renderProfile(body);
      status.textContent = "Saved.";
      announce("Profile saved.");
    } catch (err) {
      status.className = "hint error";
      status.textContent = `Not saved: ${err.message}`;
    } finally {
      button.disabled = false;
    }
  }

  // ---- summarise for two readers -----------------------------------------------------------
  const SECTION_ORDER = ["for_you", "key_points", "decisions", "action_items", "open_questions",
    "also_discussed"];

  function syncForKind() {
    const kind = document.querySelector('input[name="for-kind"]:checked').value;
    $("#for-f-channel").hidden = kind !== "channel";
    $("#for-f-days").hidden = kind !== "channel";
    $("#for-f-thread").hidden = kind !== "thread";
    $("#for-f-meeting").hidden = kind !== "meeting";
  }

  /** The request's "what" from the form, or null (and the field to fill focused). */
  function forTarget() {
    const kind = document.querySelector('input[name="for-kind"]:checked').value;
    const need = (sel, msg) => { $(sel).focus(); announce(msg); return null; };
    if (kind === "thread") {
      const id = $("#for-thread").value.trim();
      return id ? { kind, thread_id: id } : need("#for-thread", "Enter a post id.");
    }
    if (kind === "meeting") {
      const id = $("#for-file").value.trim();
      return id ? { kind, file_id: id } : need("#for-file", "Enter a transcript file id.");
    }
    const sel = $("#for-channel");
    if (!sel.value) return need("#for-channel", "Pick a channel.");
    const days = Math.min(Math.max(Number($("#for-days").value) || 7, 1), 3650);
    return { kind, channel_id: sel.value, days };
  }

  async function summariseFor() {
    if (needUser()) return;
    const target = forTarget();
    if (!target) return;
    const readers = [$("#for-a"), $("#for-b")].map((el) => el.value.trim().replace(/^@/, ""));
    const missing = readers.findIndex((r) => !r);
    if (missing >= 0) {
      $(missing ? "#for-b" : "#for-a").focus();
      announce("Name both readers.");
      return;
    }
    const run = ++state.forRuns;
    const username = state.user.username;
    const out = $("#for-results");
    const status = $("#for-status");
    $("#for-go").disabled = true;
    status.className = "hint";
    status.textContent = "Summarising…";
    out.setAttribute("aria-busy", "true");
    try {
      const body = await sendJSON("POST", "/v1/summaries", {
        ...asWho(), ...target, for: readers.map((r) => `@${r}`),
      });
      if (run !== state.forRuns || !state.user || state.user.username !== username) return;
      const list = Array.isArray(body.summaries) ? body.summaries : [];
      out.replaceChildren(...list.map((item, i) => forColumn(item, `f${run}-${i}`)));
      status.textContent = `${list.length} summar${list.length === 1 ? "y" : "ies"}, ` +
        `asked by @${username}.`;
      announce("Summaries ready.");
    } catch (err) {
      if (run !== state.forRuns) return;
      out.replaceChildren();
      status.className = "hint error";
      status.textContent = err.message || String(err);
    } finally {
      if (run === state.forRuns) {
        $("#for-go").disabled = false;
        out.setAttribute("aria-busy", "false");
      }
    }
  }

  /** One reader's column: who it is for, how it was shaped, its sections (For you first),
   * each item with its citations, the sources they point to, and where it was delivered. */
  function forColumn(item, id) {
    const summary = item.summary;
    const who = String(item.for || "");
    const delivery = h("p", { class: `delivery ${item.delivered ? "ok" : "not"}` },
      h("strong", { text: item.delivered ? "Delivered" : "Delivery" }),
      `: ${item.delivery || (item.delivered ? "sent" : "not sent")}`);
    const head = h("div", { class: "for-head" },
      h("h3", { class: "for-who" }, "For ", h("span", { text: `@${who}` })),
      summary && summary.title ? h("span", { class: "muted", text: summary.title }) : null);
    if (!summary) {
      return h("article", { class: "panel for-col", id, "data-reader": who }, head,
        h("p", { class: "error", role: "alert",
          text: item.error || "No summary for this reader." }), delivery);
    }
    const sources = new Map((summary.sources || []).map((s) => [Number(s.n), s]));
    const ctx = { id, sources };
    const p = summary.personalization || {};
    const sections = [...(summary.sections || [])].sort((a, b) =>
      rank(a.key) - rank(b.key));
    return h("article", { class: "panel for-col", id, "data-reader": who }, head,
      h("p", { class: `why ${p.applied ? "applied" : "generic"}` },
        h("span", { class: "why-tag", text: p.applied ? "Personalised" : "Generic" }),
        // the reader's own words (their interests) may be in it: text, no citations
        h("span", { class: "why-text", text: String(p.why || "") })),
      item.error ? h("p", { class: "error", role: "alert", text: item.error }) : null,
      sections.length ? sections.map((sec) => h("section", {
        class: `for-sec sec-${String(sec.key).replace(/[^a-z_]/g, "")}`, "data-key": sec.key },
      h("h4", { text: String(sec.title || sec.key) }),
      (sec.items || []).length ? null : h("p", { class: "hint", text: "None." }),
      h("ul", {}, (sec.items || []).map((it) => h("li", {},
        inline(String(it.text || ""), ctx),
        (it.sources || []).flatMap((n) => [" ", citation(Number(n), ctx)]))))))
        : h("p", { class: "empty-scope", text: "Nothing to summarise for this reader." }),
      delivery,
      sources.size ? h("details", { class: "sources" },
        h("summary", {}, `Sources (${sources.size})`),
        h("ol", { class: "src-list" }, [...sources.values()].map((s) => sourceCard(s, id))))
        : null);
  }

  function rank(key) {
    const i = SECTION_ORDER.indexOf(key);
    return i < 0 ? SECTION_ORDER.length : i;
  }

  // ---- wiring -----------------------------------------------------------------------------
  async function init() {
    renderMode();
    renderScope(null);
    syncKind();
    syncForKind();

    $("#keys-edit").addEventListener("click", () => {
      showKeys(null, true);
      $("#api-key").focus();
    });
    $("#keys-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      state.apiKey = $("#api-key").value.trim();
      state.adminKey = $("#admin-key").value.trim();
      sessionStorage.setItem("openops.apiKey", state.apiKey);
      sessionStorage.setItem("openops.adminKey", state.adminKey);
      showKeys(null);
      renderMode();
      loadUsers();
    });
    $("#signout").addEventListener("click", signOut);
    $("#user-select").addEventListener("change", (ev) => selectUser(ev.target.value));
    $("#picker-text").addEventListener("submit", (ev) => {
      ev.preventDefault();
      selectUser($("#user-text").value);
    });
    $("#ask-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const q = $("#question").value.trim();
      if (!q || state.controller) return;
      $("#question").value = "";
      ask(q);
    });
    $("#question").addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
        ev.preventDefault();
        $("#ask-form").requestSubmit();
      }
    });
    $("#stop").addEventListener("click", () => { stopStream(); $("#question").focus(); });
    $("#new-conv").addEventListener("click", () => {
      stopStream();
      resetConversation();
      $("#question").placeholder = "Ask a question (Enter to send, Shift+Enter for a new line)";
      $("#question").focus();
      announce("New conversation.");
    });
    $("#sum-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      if (!state.controller) summarise();
    });
    document.querySelectorAll('input[name="kind"]').forEach((r) =>
      r.addEventListener("change", syncKind));
    document.querySelectorAll(".view-tab").forEach((tab) =>
      tab.addEventListener("click", () => showView(tab.dataset.view)));
    $("#prof-form").addEventListener("submit", (ev) => { ev.preventDefault(); saveProfile(); });
    $("#for-form").addEventListener("submit", (ev) => { ev.preventDefault(); summariseFor(); });
    document.querySelectorAll('input[name="for-kind"]').forEach((r) =>
      r.addEventListener("change", syncForKind));

    if (await loadSession()) return;
    if (NEEDS_KEY) {
      $("#api-key").value = state.apiKey;
      $("#admin-key").value = state.adminKey;
      if (!state.apiKey) {
        showKeys(null);
        $("#picker-text").hidden = false;
        $("#picker-hint").textContent = "Enter the API key first.";
        return;
      }
      showKeys(null);
    }
    loadUsers();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
