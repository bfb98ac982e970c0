// postdesk: the agent workspace and admin pages. Hand-written; talks to /api/v1 with the
// session cookie and the page's CSRF token, and listens to /api/v1/events for live updates.
// All text from users and emails is put into the page with textContent (never innerHTML), so
// it is shown, never run. Email HTML is shown only inside a sandboxed frame.
"use strict";

const csrf = document.querySelector('meta[name="csrf-token"]').content;
const meEl = document.getElementById("me");
const me = { id: Number(meEl.dataset.userId), username: meEl.dataset.username, admin: meEl.dataset.admin === "true" };
const main = document.getElementById("main");
const sidebar = document.getElementById("sidebar");

// ---------------------------------------------------------------------------------------
// Small helpers

/** Creates an element: h("a", {href: "#", class: "x", onclick: f}, "text", child, ...). */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

class ApiError extends Error {
  constructor(status, message, data) { super(message); this.status = status; this.data = data; }
}

async function api(method, path, body) {
  const options = { method, headers: { "X-CSRF-Token": csrf, "Accept": "application/json" }, credentials: "same-origin" };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch("/api/v1" + path, options);
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
  if (response.status === 401) { location.href = "/login"; throw new ApiError(401, "Logged out"); }
  if (!response.ok) throw new ApiError(response.status, (data && data.error) || response.statusText, data);
  return data;
}

function toast(message, isError) {
  const item = h("div", { class: "item" + (isError ? " error" : "") }, message);
  document.getElementById("toast").append(item);
  setTimeout(() => item.remove(), isError ? 8000 : 4000);
}

function formatTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

function formatSize(bytes) {
  if (bytes < 1024) return bytes + " B";
  if (bytes < 1024 * 1024) return (bytes / 1024).toFixed(1) + " KB";
  return (bytes / 1024 / 1024).toFixed(1) + " MB";
}

function addr(a) {
  if (!a) return "";
  return a.name ? `${a.name} <${a.email}>` : a.email;
}

function contactLabel(c) {
  return c.name ? `${c.name} <${c.email}>` : c.email;
}

/**
 * A search snippet as nodes. The server escapes the email's text and marks each match with
 * <mark>…</mark>; it is rebuilt here from text nodes and <mark> elements only (never
 * innerHTML), so whatever an email holds is shown as text.
 */
function snippetNodes(snippet) {
  const unescape = (t) => t.replace(/&(lt|gt|quot|#39|amp);/g, (_, e) => ({ lt: "<", gt: ">", quot: "\"", "#39": "'", amp: "&" })[e]);
  const nodes = [];
  let inMark = false;
  for (const part of snippet.split(/(<mark>|<\/mark>)/)) {
    if (part === "<mark>") inMark = true;
    else if (part === "</mark>") inMark = false;
    else if (part) nodes.push(inMark ? h("mark", {}, unescape(part)) : unescape(part));
  }
  return nodes;
}

function tagChips(tags) {
  return tags && tags.length ? h("span", { class: "tag-chips" }, tags.map((t) => h("span", { class: "tag", dataset: { tag: t } }, t))) : null;
}

async function tagsInUse(refresh) {
  if (!state.tags || refresh) state.tags = (await api("GET", "/tags")).tags.map((t) => t.tag);
  return state.tags;
}

/** The <datalist> of tags in use, for an input's suggestions. */
function tagSuggestions(id, tags) {
  return h("datalist", { id }, tags.map((t) => h("option", { value: t })));
}

// ---------------------------------------------------------------------------------------
// State

const state = {
  current: null,        // the open conversation's id
  presence: new Map(),  // conversation id -> Map(user id -> {state, at}): who else is there
  presenceOf: null,     // the conversation this page reports being in
  presenceTimer: null,
  presenceSent: Promise.resolve(), // the reports, sent one after the other
  presenceTtl: 30,
  typing: false,        // whether this agent is writing in the open conversation
  typingSaid: 0,        // when "typing" was last reported
  typingTimer: null,
  replyTo: null,        // (message id, all) => aims the open composer's Reply via Email form
  canned: null,         // the canned responses of the open conversation, {conv, at, list}
  users: null,          // for /invite autocomplete
  closedQuery: "",
  search: null,         // {q, hits} of the sidebar's "Search conversations", or null
  tagFilter: "",        // the sidebar's "Filter by tag"
  tags: null,           // tags in use, for suggestions
  lastQueued: new Set(),
  lists: {},            // the workspace's lists by id (see LISTS): {items, total, next}
  invited: new Set(),   // conversations I was invited into (members besides their agent)
  departments_of_me: new Set(), // the departments I am in (whose queues I am offered)
  tagged: null,         // the sidebar's tag filter's conversations
  closed: [],           // the sidebar's closed conversations found by contact
  notice: null,         // {id, text}: shown above the open conversation (e.g. "Already taken by @bob")
};

function noticeFor(id) {
  return state.notice && state.notice.id === id ? h("p", { class: "notice", role: "alert" }, state.notice.text) : null;
}

async function users() {
  if (!state.users) state.users = (await api("GET", "/users")).users.filter((u) => u.active);
  return state.users;
}

// ---------------------------------------------------------------------------------------
// Sidebar: Queued Chats, Chats in Progress, closed search

function convLink(c) {
  // An email in it has a From that failed DMARC: marked before anyone opens it.
  const mark = c.dmarc_failed
    ? h("span", { class: "sender-mark", title: "An email in this conversation failed sender verification (DMARC): it may be forged" }, "Unverified sender")
    : null;
  return h("li", {},
    h("a", { href: `#/c/${c.id}`, "aria-current": state.current === c.id ? "page" : null, dataset: { id: c.id } },
      h("span", { class: "subject" }, c.subject || "(no subject)"),
      mark,
      h("span", { class: "who" }, contactLabel(c.contact)),
      tagChips(c.tags)));
}

// One hit of "Search conversations": the conversation and where it matched.
function hitLink(hit) {
  const c = hit.conversation;
  return h("li", {},
    h("a", { href: `#/c/${c.id}`, "aria-current": state.current === c.id ? "page" : null, dataset: { id: c.id, messageId: hit.message_id || "" } },
      h("span", { class: "subject" }, c.subject || "(no subject)"),
      h("span", { class: "who" }, contactLabel(c.contact), ` · ${c.status.replace("_", " ")}`),
      h("span", { class: "snippet" }, snippetNodes(hit.snippet))));
}

async function runSearch(q) {
  q = q.trim();
  if (!q) { state.search = null; return; }
  try {
    state.search = { q, hits: (await api("GET", `/search?q=${encodeURIComponent(q)}&limit=50`)).hits };
  } catch (err) {
    state.search = { q, hits: [], error: err.message };
  }
}

function searchSection() {
  const input = h("input", {
    type: "search", id: "search-input", placeholder: "Search conversations", "aria-label": "Search conversations",
    value: state.search ? state.search.q : "",
  });
  const form = h("form", { class: "side-search", role: "search", onsubmit: async (e) => {
    e.preventDefault();
    await runSearch(input.value);
    drawSidebar();
  } }, input);
  input.addEventListener("search", async () => { if (!input.value.trim()) { state.search = null; drawSidebar(); } });
  if (!state.search) return h("section", { class: "side-section", id: "search" }, form);
  const hits = state.search.hits;
  const results = state.search.error
    ? h("p", { class: "inline-error", role: "alert" }, state.search.error)
    : h("ul", { class: "side-list", id: "search-results", "aria-label": "Search results" },
      hits.length ? hits.map(hitLink) : h("li", { class: "none" }, "No conversations found"));
  return h("section", { class: "side-section", id: "search" }, form,
    h("h2", {}, "Search results", h("span", { class: "badge" + (hits.length ? "" : " zero") }, hits.length),
      h("button", { type: "button", class: "link", id: "search-clear", onclick: () => { state.search = null; drawSidebar(); } }, "Clear")),
    results);
}

function section(title, id, list, extra, total, more) {
  const count = total ?? list.length;
  const badge = h("span", { class: "badge" + (count ? "" : " zero"), "aria-label": `${count} conversations` }, count);
  return h("section", { class: "side-section", id },
    h("h2", {}, title, badge),
    extra || null,
    h("ul", { class: "side-list" }, list.length ? list.map(convLink) : h("li", { class: "none" }, "None")),
    more || null);
}

// The workspace's own lists. Each is fetched a page at a time from the server, which filters
// and orders it (Queued Chats oldest first, the others newest activity first) and counts all
// of it; after that, the events keep it up to date: each carries the conversation as it now
// is, and patches the lists in place instead of fetching them again.
const LISTS = [
  { id: "queued", title: "Queued Chats", query: "status=queued", queue: true, has: (c) => c.status === "queued" },
  { id: "in-progress", title: "Chats in Progress", query: "status=open&member=me", has: (c) => c.status === "open" && mine(c) },
  { id: "on-hold", title: "On Hold", query: "status=on_hold&member=me", has: (c) => c.status === "on_hold" && mine(c) },
  { id: "snoozed", title: "Snoozed", query: "status=snoozed&member=me", has: (c) => c.status === "snoozed" && mine(c), quiet: true },
];
const PAGE = 50;

/** Whether a queued conversation is, as far as this page knows, in a queue I am offered: an
 * admin's are all; an inbox without a department is everyone's; else its department must be
 * one I was in when the page loaded. (The agent who transferred a conversation to another
 * department's queue hears it go there; one added to a department since hears its queue.) */
function myQueue(c) {
  return me.admin || c.department_id === null || c.department_id === undefined || state.departments_of_me.has(c.department_id);
}

/** Whether I am a member of a conversation: its agent, or invited into it. */
function mine(c) { return c.assignee_id === me.id || state.invited.has(c.id); }

function timeOf(iso) { return iso ? Date.parse(iso) : 0; }

/** Whether `a` comes before `b` in a list. */
function sortsBefore(def, a, b) {
  const [ka, kb] = def.queue
    ? [timeOf(a.queued_at || a.created_at), timeOf(b.queued_at || b.created_at)]
    : [-timeOf(a.last_message_at), -timeOf(b.last_message_at)];
  return ka !== kb ? ka < kb : (def.queue ? a.id < b.id : a.id > b.id);
}

async function loadList(def, more) {
  const old = state.lists[def.id];
  const cursor = more && old && old.next ? `&cursor=${encodeURIComponent(old.next)}` : "";
  const page = await api("GET", `/conversations?${def.query}&limit=${PAGE}${cursor}`);
  const got = page.conversations;
  const items = more && old ? old.items.concat(got.filter((c) => !old.items.some((x) => x.id === c.id))) : got;
  state.lists[def.id] = { items, total: page.total ?? items.length, next: page.next_cursor || null };
  if (!def.queue) for (const c of got) if (c.assignee_id !== me.id) state.invited.add(c.id);
}

/** An event's conversation as it now is: moved into, within or out of each list. */
function patchLists(c) {
  for (const def of LISTS) {
    const list = state.lists[def.id];
    if (!list) continue;
    const at = list.items.findIndex((x) => x.id === c.id);
    const belongs = def.has(c);
    if (at >= 0) list.items.splice(at, 1);
    if (at >= 0 && !belongs) list.total = Math.max(0, list.total - 1);
    if (!belongs) continue;
    if (at < 0) list.total += 1;
    let i = list.items.findIndex((x) => sortsBefore(def, c, x));
    if (i < 0) {
      if (list.next) continue; // beyond the page shown: it comes with "Show more"
      i = list.items.length;
    }
    list.items.splice(i, 0, c);
  }
  // Elsewhere in the sidebar (tag filter, closed, search results) it is shown as it now is.
  for (const other of [state.tagged, state.closed]) {
    if (!other) continue;
    const at = other.findIndex((x) => x.id === c.id);
    if (at >= 0) other[at] = c;
  }
}

function listSection(def) {
  const list = state.lists[def.id] || { items: [], total: 0, next: null };
  if (def.quiet && !list.total && !list.items.length) return null;
  const more = list.next ? h("button", {
    type: "button", class: "link more", onclick: async (e) => {
      e.target.disabled = true;
      try { await loadList(def, true); } catch (err) { toast(err.message, true); }
      drawSidebar();
    },
  }, `Show more (${list.total - list.items.length} more)`) : null;
  return section(def.title, def.id, list.items, null, list.total, more);
}

/** Fetches the sidebar's lists again, then draws it. */
async function renderSidebar() {
  await Promise.all(LISTS.map((def) => loadList(def, false)));
  state.tagged = state.tagFilter
    ? (await api("GET", `/conversations?tag=${encodeURIComponent(state.tagFilter)}&limit=${PAGE}`)).conversations
    : null;
  state.closed = state.closedQuery
    ? (await api("GET", `/conversations?status=closed&contact=${encodeURIComponent(state.closedQuery)}&limit=${PAGE}`)).conversations
    : [];
  await tagsInUse().catch(() => []);
  drawSidebar();
}

/** Draws the sidebar from what is known, without fetching. */
function drawSidebar() {
  const tags = state.tags || [];
  const search = h("div", { class: "side-search" },
    h("input", {
      type: "search", placeholder: "Search closed by contact", "aria-label": "Search closed conversations by contact",
      value: state.closedQuery,
      onchange: (e) => { state.closedQuery = e.target.value.trim(); renderSidebar(); },
    }));
  const focused = document.activeElement && document.activeElement.closest("#sidebar") ? document.activeElement.getAttribute("aria-label") : null;
  const tagFilter = h("div", { class: "side-search" },
    h("input", {
      type: "search", id: "tag-filter", placeholder: "Filter by tag", "aria-label": "Filter by tag", list: "tag-filter-suggestions",
      value: state.tagFilter,
      onchange: (e) => { state.tagFilter = e.target.value.trim(); renderSidebar(); },
    }), tagSuggestions("tag-filter-suggestions", tags));
  const scroll = sidebar.scrollTop;
  sidebar.replaceChildren(
    searchSection(),
    ...LISTS.map(listSection).filter(Boolean),
    state.tagged ? section(`Tagged “${state.tagFilter}”`, "tagged", state.tagged, tagFilter) : h("section", { class: "side-section", id: "tagged" }, h("h2", {}, "Tags"), tagFilter),
    section("Closed", "closed", state.closed || [], search));
  sidebar.scrollTop = scroll;
  if (focused) { const again = sidebar.querySelector(`[aria-label="${focused}"]`); if (again) again.focus(); }
  state.lastQueued = new Set((state.lists.queued ? state.lists.queued.items : []).map((c) => c.id));
}

// ---------------------------------------------------------------------------------------
// Conversation view

function deliveryBadge(message) {
  const d = message.email && message.email.delivery;
  if (!d) return null;
  const label = { queued: "Queued", sent: "Sent", failed: "Failed", delayed: "Delayed" }[d.status] || d.status;
  const explained = d.status === "delayed" ? "The receiving mail server has not delivered it yet and is still trying" : null;
  const parts = [h("span", { class: `delivery ${d.status}`, dataset: { delivery: d.status }, title: explained }, label)];
  if (d.error) parts.push(h("span", { class: "delivery-error" }, ` ${d.error}`));
  if (d.status === "failed") {
    parts.push(" ", h("button", {
      type: "button", class: "link", onclick: async (e) => {
        e.target.disabled = true;
        try { await api("POST", `/messages/${message.id}/retry`, {}); toast("Email queued again"); }
        catch (err) { toast(err.message, true); }
        refreshConversation();
      },
    }, "Retry"));
  }
  return h("span", { class: "delivery-status" }, ...parts);
}

function attachmentList(message, conv) {
  if (!message.attachments.length) return null;
  return h("ul", { class: "attachments" }, message.attachments.map((a) => {
    const isImage = /^image\/(png|jpeg|gif|webp)$/.test(a.content_type);
    return h("li", {},
      isImage && a.inline ? h("img", { class: "inline-image", src: a.url, alt: a.filename }) : null,
      h("a", { href: a.url, download: a.filename }, a.filename),
      h("span", { class: "size" }, formatSize(a.size)));
  }),
  message.kind === "internal" && conv.status !== "closed" ? h("li", {}, h("button", {
    type: "button", class: "email", onclick: async (e) => {
      e.target.disabled = true;
      try { await api("POST", `/messages/${message.id}/send-email`, {}); toast("Sending via email…"); }
      catch (err) { toast(err.message, true); e.target.disabled = false; }
      refreshConversation();
    },
  }, "Send via Email as attachment")) : null);
}

function emailBody(message) {
  const box = h("div", { class: "email-body" });
  if (message.html) {
    let remote = false;
    let quoted = false;
    const frame = h("iframe", {
      class: "email-html", title: `Email from ${addr(message.email && message.email.from)}`,
      sandbox: "allow-same-origin allow-popups allow-popups-to-escape-sandbox", referrerpolicy: "no-referrer",
    });
    const load = () => { frame.src = `/api/v1/messages/${message.id}/body.html?remote=${remote ? 1 : 0}&quoted=${quoted ? 1 : 0}`; };
    frame.addEventListener("load", () => {
      // The content's own height (the body's: the document's is never less than the frame).
      try { frame.style.height = Math.min(2000, Math.max(40, frame.contentDocument.body.scrollHeight + 24)) + "px"; } catch (_) { /* keep default */ }
    });
    load();
    // Replies sent from postdesk are kept without the quoted email: nothing to show or hide.
    const ours = message.kind === "email_out" && message.author.type === "user";
    const controls = h("div", { class: "row" },
      !ours ? h("button", { type: "button", class: "link", onclick: (e) => { quoted = !quoted; e.target.textContent = quoted ? "Hide quoted text" : "Show quoted text"; load(); } }, "Show quoted text") : null,
      message.remote_images ? h("span", {}, " · ", h("button", {
        type: "button", class: "link", onclick: (e) => { remote = true; e.target.parentElement.replaceChildren(" · Remote images shown"); load(); },
      }, "Show remote images")) : null);
    box.append(frame, controls);
    return box;
  }
  const full = message.text || "";
  const fresh = message.reply_text;
  if (fresh !== undefined && fresh !== null && fresh.trim() !== full.trim() && fresh.trim() !== "") {
    const rest = h("pre", { class: "body-text quoted", hidden: true }, full);
    box.append(h("pre", { class: "body-text" }, fresh),
      h("button", { type: "button", class: "link", "aria-expanded": "false", onclick: (e) => {
        rest.hidden = !rest.hidden;
        e.target.setAttribute("aria-expanded", String(!rest.hidden));
        e.target.textContent = rest.hidden ? "Show quoted text" : "Hide quoted text";
      } }, "Show quoted text"), rest);
  } else {
    box.append(h("pre", { class: "body-text" }, full));
  }
  return box;
}

function authorName(message) {
  const a = message.author;
  if (a.type === "user") return a.name || a.username;
  if (a.type === "contact") return a.name || a.email;
  // An email sent from the mailbox's own client by someone who is not a postdesk user.
  const from = message.email && message.email.from;
  if (message.kind === "email_out" && from) return from.name || from.email;
  return "postdesk";
}

// The warning on an inbound email whose From failed DMARC: the domain it claims to be from
// says it did not send it.
function senderWarning(auth) {
  const domain = auth.from_domain || "its sender's domain";
  return h("div", { class: "sender-warning", role: "note" },
    h("strong", {}, "Sender not verified."),
    ` This email says it is from ${domain}, but ${domain} does not confirm it sent it `
      + `(DMARC ${auth.dmarc}; DKIM ${auth.dkim}, SPF ${auth.spf}). It may be forged: `
      + "be careful with its links, attachments and requests.");
}

function renderMessage(message, conv) {
  if (message.kind === "system") {
    return h("div", { class: "msg system", dataset: { kind: "system", id: message.id } }, `${message.text} · ${formatTime(message.created_at)}`);
  }
  const kindLabel = { email_in: "Email", email_out: "Email sent", internal: "Internal" }[message.kind];
  const head = h("div", { class: "msg-head" },
    h("span", { class: "kind" }, kindLabel),
    h("strong", {}, authorName(message)),
    h("time", { datetime: message.created_at }, formatTime(message.created_at)),
    deliveryBadge(message));
  if (message.email && conv.status !== "queued" && conv.status !== "closed") {
    const reply = (all) => () => { if (state.replyTo) state.replyTo(message.id, all); };
    head.append(h("span", { class: "reply-actions" },
      h("button", { type: "button", class: "link reply-one", onclick: reply(false) }, "Reply"), " · ",
      h("button", { type: "button", class: "link reply-all", onclick: reply(true) }, "Reply all")));
  }
  const parts = [head];
  if (message.email) {
    const e = message.email;
    const rows = [["From", addr(e.from)], ["To", e.to.map(addr).join(", ")]];
    if (e.cc && e.cc.length) rows.push(["Cc", e.cc.map(addr).join(", ")]);
    if (e.bcc && e.bcc.length) rows.push(["Bcc", e.bcc.map(addr).join(", ")]);
    rows.push(["Subject", e.subject], ["Date", formatTime(e.date || message.created_at)]);
    if (e.auth) rows.push(["Sender", `DKIM ${e.auth.dkim} · SPF ${e.auth.spf} · DMARC ${e.auth.dmarc}`]);
    if (e.auth && e.auth.dmarc === "fail") parts.push(senderWarning(e.auth));
    parts.push(h("dl", { class: "headers" }, rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])));
    parts.push(emailBody(message));
  } else if (message.text) {
    parts.push(h("pre", { class: "body-text" }, message.text));
  }
  parts.push(attachmentList(message, conv));
  return h("article", { class: `msg ${message.kind}`, dataset: { kind: message.kind, id: message.id } }, ...parts);
}

/** What of a message can change after it is shown (its delivery, what may be done with it). */
function messageSignature(message, conv) {
  const d = message.email && message.email.delivery;
  return JSON.stringify([d ? [d.status, d.error] : null, message.attachments.length, conv.status]);
}

/**
 * Brings a timeline to `messages` without rebuilding it: messages already shown stay as they
 * are (an email's frame is not reloaded, what the agent is reading does not move), new ones
 * are added, and only the parts that change (delivery status, file actions) are redrawn.
 */
function reconcileTimeline(timeline, messages, conv) {
  const wanted = new Set(messages.map((m) => String(m.id)));
  let cursor = timeline.firstElementChild;
  const skipGone = () => {
    while (cursor && !wanted.has(cursor.dataset.id)) { const next = cursor.nextElementSibling; cursor.remove(); cursor = next; }
  };
  for (const m of messages) {
    skipGone();
    const id = String(m.id);
    const sig = messageSignature(m, conv);
    let node = cursor && cursor.dataset.id === id ? cursor : timeline.querySelector(`:scope > [data-id="${id}"]`);
    if (node === cursor && node) {
      cursor = cursor.nextElementSibling;
    } else if (node) {
      timeline.insertBefore(node, cursor); // its place changed (a merge)
    } else {
      node = renderMessage(m, conv);
      node.dataset.sig = sig;
      timeline.insertBefore(node, cursor);
      continue;
    }
    if (node.dataset.sig !== sig) {
      const fresh = renderMessage(m, conv);
      for (const selector of [".delivery-status", ".reply-actions", ":scope > ul.attachments"]) {
        const was = node.querySelector(selector);
        const now = fresh.querySelector(selector);
        if (was && now) was.replaceWith(now);
        else if (was) was.remove();
        else if (now) (selector.startsWith(":scope") ? node : node.querySelector(".msg-head")).append(now);
      }
      node.dataset.sig = sig;
    }
  }
  while (cursor) { const next = cursor.nextElementSibling; if (!wanted.has(cursor.dataset.id)) cursor.remove(); cursor = next; }
}

function conversationActions(conv) {
  const actions = [];
  const button = (id, label, onclick, primary) => h("button", { type: "button", id, class: primary ? "primary" : null, onclick }, label);
  if (conv.status === "queued") actions.push(button("take", "Take it!", () => take(conv.id), true));
  if (conv.status === "open") actions.push(button("hold", "On Hold", () => act(conv.id, "hold", {}, "On Hold: it waits in your On Hold list")));
  if (conv.status === "on_hold" || conv.status === "snoozed") {
    actions.push(button("resume", "Resume", () => act(conv.id, "resume", {}, "Resumed: it is in your Chats in Progress")));
  }
  if (conv.status === "open" || conv.status === "on_hold") actions.push(button("snooze", "Snooze…", () => snoozeForm(conv)));
  if (conv.status !== "closed") actions.push(button("transfer", "Transfer…", () => transferForm(conv)));
  if (conv.status === "open" || conv.status === "on_hold") actions.push(button("close", "Close", () => closeConversation(conv)));
  if (conv.status !== "closed") actions.push(button("merge", "Merge…", () => mergeForm(conv)));
  if (conv.status === "closed") actions.push(button("reopen", "Reopen", () => reopen(conv.id)));
  return actions;
}

function statusLine(conv) {
  const label = { queued: "Queued", open: "In progress", on_hold: "On Hold", snoozed: "Snoozed", closed: "Closed" }[conv.status] || conv.status;
  const parts = [h("span", { class: `status ${conv.status}` }, label)];
  if (conv.status === "snoozed" && conv.snoozed_until) parts.push(h("span", { class: "snoozed-until" }, ` until ${formatTime(conv.snoozed_until)} or the contact's next email`));
  if (conv.merged_into_id) parts.push(" · merged into ", h("a", { href: `#/c/${conv.merged_into_id}` }, `#${conv.merged_into_id}`));
  return parts;
}

async function showConversation(id) {
  if (state.current !== id) state.notice = null;
  const opened = state.current !== id || !main.querySelector(`.timeline[data-conv="${id}"]`);
  state.current = id;
  let conv;
  let messages;
  try {
    [conv, { messages }] = await Promise.all([api("GET", `/conversations/${id}`), api("GET", `/conversations/${id}/messages`)]);
  } catch (err) {
    main.replaceChildren(noticeFor(id) || h("p", { class: "notice error", role: "alert" }, err.message));
    return;
  }
  if (state.current !== id) return;
  const header = h("div", { class: "conv-head" },
    h("h1", {}, conv.subject || "(no subject)"),
    ...statusLine(conv),
    h("div", { class: "actions" }, ...conversationActions(conv)),
    h("div", { class: "meta" }, h("a", { href: `#/contacts/${conv.contact.id}` }, contactLabel(conv.contact)), ` · started ${formatTime(conv.created_at)}`));
  const wantComposer = conv.status !== "queued" && conv.status !== "closed";
  header.append(tagsBar(conv, wantComposer));
  header.dataset.conv = id;
  // A tag being typed survives a live update of the conversation.
  const typing = main.querySelector(`.conv-head[data-conv="${id}"] #tag-input`);
  const typed = typing ? { value: typing.value, focused: document.activeElement === typing } : null;
  const atEnd = main.scrollHeight - main.scrollTop - main.clientHeight < 40;
  const oldHead = main.querySelector(`.conv-head[data-conv="${id}"]`);
  let timeline = main.querySelector(`.timeline[data-conv="${id}"]`);
  if (oldHead && timeline) {
    // A live update: the header is redrawn; the timeline, any email frame, an open form and
    // the composer (draft, focus, preview) stay, and so does what the agent is reading.
    const scroll = main.scrollTop;
    oldHead.replaceWith(header);
    const notice = document.getElementById("conv-notice");
    if (notice && !notice.querySelector("form")) notice.replaceChildren(...[noticeFor(id)].filter(Boolean));
    reconcileTimeline(timeline, messages, conv);
    const existing = main.querySelector(`.composer[data-conv="${id}"]`);
    if (existing && !wantComposer) existing.remove();
    if (!existing && wantComposer) main.append(composer(conv));
    main.scrollTop = atEnd ? main.scrollHeight : scroll;
  } else {
    timeline = h("div", { class: "timeline", role: "log", "aria-label": "Conversation", dataset: { conv: id } });
    reconcileTimeline(timeline, messages, conv);
    main.replaceChildren(header, h("div", { id: "conv-notice" }, noticeFor(id)), timeline, ...(wantComposer ? [composer(conv)] : []));
    if (opened) main.scrollTop = main.scrollHeight;
  }
  const tagInput = header.querySelector("#tag-input");
  if (typed && tagInput) { tagInput.value = typed.value; if (typed.focused) tagInput.focus(); }
  markCurrent();
}

/** An action on the open conversation (hold, resume, snooze, transfer, merge). */
async function act(id, action, body, done) {
  await perform(id, action, body, done);
  await Promise.all([renderSidebar(), refreshConversation()]);
}

/** The call of `act` without the redraw (a form in the notice area redraws once it is gone). */
async function perform(id, action, body, done) {
  try {
    await api("POST", `/conversations/${id}/${action}`, body);
    toast(done);
  } catch (err) {
    state.notice = { id, text: err.message };
  }
}

/** A small form in the conversation's notice area (never over the controls below it). */
function noticeForm(label, fields, submit, onsubmit) {
  const notice = document.getElementById("conv-notice");
  const form = h("form", { class: "notice action-form", "aria-label": label, onsubmit: async (e) => {
    e.preventDefault();
    form.querySelector("button[type=submit]").disabled = true;
    await onsubmit(form);
    form.remove();
    await Promise.all([renderSidebar(), refreshConversation()]);
  } }, ...fields, " ", h("button", { type: "submit", class: "primary" }, submit), " ",
  h("button", { type: "button", onclick: () => form.remove() }, "Cancel"));
  notice.replaceChildren(form);
  const first = form.querySelector("input, select");
  if (first) first.focus();
  return form;
}

async function transferForm(conv) {
  let departments = [];
  try { departments = (await api("GET", "/departments")).departments; } catch (_) { /* agents only */ }
  const agents = (await users()).filter((u) => u.id !== conv.assignee_id);
  const to = h("select", { name: "to", "aria-label": "Transfer to", required: true },
    h("option", { value: "" }, "Choose…"),
    departments.length ? h("optgroup", { label: "A department's queue" }, departments.map((d) => h("option", { value: `d${d.id}` }, `${d.name} queue`))) : null,
    h("optgroup", { label: "An agent" }, agents.map((u) => h("option", { value: `u${u.id}` }, `@${u.username}${u.name && u.name !== u.username ? ` · ${u.name}` : ""}`))));
  const comment = h("input", { type: "text", name: "comment", placeholder: "Why (optional, recorded in the conversation)", "aria-label": "Transfer comment", maxlength: 500 });
  noticeForm("Transfer", ["Transfer to ", to, " ", comment], "Transfer", async () => {
    const body = { comment: comment.value.trim() || null };
    if (to.value.startsWith("d")) body.department_id = Number(to.value.slice(1));
    else body.user_id = Number(to.value.slice(1));
    await perform(conv.id, "transfer", body, "Transferred");
  });
}

function snoozeForm(conv) {
  const pad = (n) => String(n).padStart(2, "0");
  const local = (d) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
  const tomorrow = new Date(); tomorrow.setDate(tomorrow.getDate() + 1); tomorrow.setHours(9, 0, 0, 0);
  const until = h("input", { type: "datetime-local", name: "until", "aria-label": "Snooze until", required: true, value: local(tomorrow), min: local(new Date()) });
  const preset = (label, minutes) => h("button", { type: "button", class: "link", onclick: () => { until.value = local(new Date(Date.now() + minutes * 60000)); } }, label);
  noticeForm("Snooze", ["Snooze until ", until, " (or until the contact writes) ", preset("1 hour", 60), " · ", preset("4 hours", 240), " · ", preset("1 week", 7 * 24 * 60)], "Snooze", async () => {
    const when = new Date(until.value);
    await perform(conv.id, "snooze", { until: when.toISOString() }, `Snoozed until ${formatTime(when.toISOString())}`);
  });
}

function mergeForm(conv) {
  const into = h("input", { type: "number", name: "into", min: 1, required: true, "aria-label": "Merge into conversation number", placeholder: "number" });
  noticeForm("Merge", [`Merge this conversation (#${conv.id}) into #`, into, " — its messages move there, and replies to either land there "], "Merge", async () => {
    const target = Number(into.value);
    await perform(conv.id, "merge", { into_id: target }, `Merged into #${target}`);
    if (!state.notice) location.hash = `#/c/${target}`;
  });
}

// The conversation's tags as chips; whoever may write to it adds and removes them (the
// server decides: a 403 or 409 is shown as it says).
function tagsBar(conv, editable) {
  const bar = h("div", { class: "tags-bar", id: "conv-tags", "aria-label": "Tags" });
  const save = async (tags) => {
    try {
      await api("PUT", `/conversations/${conv.id}/tags`, { tags });
      await tagsInUse(true).catch(() => {});
    } catch (err) { toast(err.message, true); }
    await Promise.all([renderSidebar(), refreshConversation()]);
  };
  const chips = conv.tags.map((t) => h("span", { class: "tag", dataset: { tag: t } }, t,
    editable ? h("button", { type: "button", class: "tag-remove", "aria-label": `Remove tag ${t}`, title: "Remove tag",
      onclick: () => save(conv.tags.filter((x) => x !== t)) }, "×") : null));
  bar.append(...chips);
  if (!editable) { if (!chips.length) bar.hidden = true; return bar; }
  const input = h("input", { type: "text", id: "tag-input", placeholder: "Add tag", "aria-label": "Add tag", list: "tag-input-suggestions", maxlength: 40 });
  input.addEventListener("keydown", (e) => {
    if (e.key !== "Enter") return;
    e.preventDefault();
    const tag = input.value.trim();
    input.value = "";
    if (tag) save([...conv.tags, tag]);
  });
  bar.append(input, tagSuggestions("tag-input-suggestions", state.tags || []));
  return bar;
}

function markCurrent() {
  for (const a of sidebar.querySelectorAll(".side-list a")) {
    if (Number(a.dataset.id) === state.current) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

async function take(id) {
  const button = document.getElementById("take");
  if (button) button.disabled = true;
  try {
    await api("POST", `/conversations/${id}/take`, {});
    toast("The conversation is yours");
  } catch (err) {
    state.notice = { id, text: err.message };
  }
  await Promise.all([renderSidebar(), refreshConversation()]);
}

async function reopen(id) {
  try {
    await api("POST", `/conversations/${id}/reopen`, {});
    toast("Reopened: it is in your Chats in Progress");
  } catch (err) { state.notice = { id, text: err.message }; }
  await Promise.all([renderSidebar(), refreshConversation()]);
}

function closeConversation(conv) {
  const input = h("input", { type: "text", placeholder: "Comment (optional)", "aria-label": "Closing comment" });
  noticeForm("Close", ["Close this conversation? ", input], "Close conversation", async () => {
    try {
      await api("POST", `/conversations/${conv.id}/close`, { comment: input.value || null });
      toast("Conversation closed");
    } catch (err) { toast(err.message, true); }
  });
}

// ---------------------------------------------------------------------------------------
// Composer: internal by default, Reply via Email on purpose (recipients, Markdown, the quoted
// email, a check at send time), files, slash commands, !shortcuts, a draft kept per
// conversation, and who else is here.

/** An address as a person types it: `Name <a@b>` (quoted when the name needs it) or `a@b`. */
function addressText(a) {
  if (!a.name) return a.email;
  return /[",;<>@()[\]:\\]/.test(a.name) ? `"${a.name.replace(/["\\]/g, "")}" <${a.email}>` : `${a.name} <${a.email}>`;
}

/** Splits "a@b, Name <c@d>, \"Last, First\" <e@f>" at the commas between addresses. */
function splitAddresses(value) {
  const out = [];
  let current = "";
  let quoted = false;
  let angle = false;
  for (const ch of value) {
    if (ch === '"') quoted = !quoted;
    else if (ch === "<" && !quoted) angle = true;
    else if (ch === ">" && !quoted) angle = false;
    if ((ch === "," || ch === ";") && !quoted && !angle) { if (current.trim()) out.push(current.trim()); current = ""; continue; }
    current += ch;
  }
  if (current.trim()) out.push(current.trim());
  return out;
}

/** The newest email (in or out) of a list of messages: what the agent has seen. */
function newestEmailId(messages) {
  let newest = null;
  for (const m of messages) if ((m.kind === "email_in" || m.kind === "email_out") && (newest === null || m.id > newest)) newest = m.id;
  return newest;
}

const PRESENCE_WORDS = { viewing: "is viewing", typing: "is replying…" };

/** Says who else is in the open conversation (from `presence` events, forgotten after their ttl). */
function drawPresence() {
  const bar = document.getElementById("presence");
  if (!bar) return;
  const now = Date.now();
  const here = state.presence.get(state.current) || new Map();
  const people = [...here.entries()].filter(([uid, p]) => uid !== me.id && now - p.at < state.presenceTtl * 1000);
  const byId = new Map((state.users || []).map((u) => [u.id, u]));
  bar.replaceChildren(...people.map(([uid, p], i) => {
    const u = byId.get(uid);
    return h("span", { class: `presence ${p.state}` }, i ? " · " : "", `@${u ? u.username : uid} ${PRESENCE_WORDS[p.state] || ""}`);
  }));
  bar.hidden = people.length === 0;
}

/** Tells the others where this agent is: `viewing` (repeated), `typing`, `left`. */
function reportPresence(id, presence) {
  if (id === null || id === undefined) return;
  // One report at a time, in order: a "viewing" must never overtake the "typing" after it.
  state.presenceSent = state.presenceSent
    .then(() => api("POST", `/conversations/${id}/presence`, { state: presence }))
    .catch(() => {});
}

/** Opens the presence of the conversation `id`: says `left` in the previous, repeats `viewing`. */
async function enterPresence(id) {
  if (state.presenceOf === id) return;
  if (state.presenceOf !== null) reportPresence(state.presenceOf, "left");
  state.presenceOf = id;
  state.typing = false;
  clearTimeout(state.typingTimer);
  clearInterval(state.presenceTimer);
  if (id === null) return;
  reportPresence(id, "viewing");
  state.presenceTimer = setInterval(() => {
    if (state.presenceOf === id) reportPresence(id, state.typing ? "typing" : "viewing");
    drawPresence();
  }, 10000);
  try {
    const { presence, ttl_seconds: ttl } = await api("GET", `/conversations/${id}/presence`);
    state.presenceTtl = ttl || state.presenceTtl;
    const here = new Map();
    for (const p of presence) here.set(p.user_id, { state: p.state, at: Date.now() });
    state.presence.set(id, here);
    drawPresence();
  } catch (_) { /* shown on the next event */ }
}

/** Canned responses for `!shortcut`, with their variables filled for the conversation. */
async function cannedFor(convId) {
  if (state.canned && state.canned.conv === convId && Date.now() - state.canned.at < 60000) return state.canned.list;
  const { canned_responses: list } = await api("GET", `/canned-responses?conversation_id=${convId}`);
  state.canned = { conv: convId, at: Date.now(), list };
  return list;
}

function composer(conv) {
  const text = h("textarea", {
    id: "composer-text", "aria-label": "Message (internal unless you choose Reply via Email)",
    placeholder: "Internal message to your team. Enter sends; Shift+Enter for a new line. /invite @username to bring in an agent; !shortcut inserts a canned response.",
  });
  const error = h("div", { class: "inline-error", role: "alert" });
  const preview = h("div");
  const progress = h("div", { class: "progress", hidden: true }, h("div"));
  const suggestions = h("ul", { class: "suggestions", role: "listbox", hidden: true, id: "invite-suggestions" });
  const presenceBar = h("div", { id: "presence", class: "presence-bar", role: "status", "aria-live": "polite", hidden: true });
  const file = h("input", { type: "file", hidden: true, id: "file-input", onchange: () => { if (file.files[0]) upload(conv, file.files[0], progress, error); file.value = ""; } });
  // The Reply via Email form while open: {answering, seen, fields…}; null when closed.
  let email = null;

  // The draft: saved a moment after each change, restored when the composer opens again.
  let draftTimer = null;
  function draftBody() {
    const body = { text: text.value, via: email ? "email" : "internal" };
    if (email) {
      body.to = splitAddresses(email.to.value);
      body.cc = splitAddresses(email.cc.value);
      body.bcc = splitAddresses(email.bcc.value);
      body.in_reply_to_message_id = email.answering;
      body.format = email.markdown.checked ? "markdown" : "text";
    }
    return body;
  }
  function saveDraft() {
    clearTimeout(draftTimer);
    draftTimer = setTimeout(() => {
      const body = draftBody();
      const empty = !body.text.trim() && !email;
      (empty ? api("DELETE", `/conversations/${conv.id}/draft`) : api("PUT", `/conversations/${conv.id}/draft`, body))
        .then(() => { box.dataset.draft = empty ? "" : "saved"; })
        .catch(() => {});
    }, 600);
  }
  async function restoreDraft() {
    try {
      const { draft } = await api("GET", `/conversations/${conv.id}/draft`);
      if (!draft || text.value) return;
      text.value = draft.text;
      if (draft.via === "email") {
        await openEmail(draft.in_reply_to_message_id, true, draft);
      }
      box.dataset.draft = "restored";
    } catch (_) { /* no draft */ }
  }
  function discardDraft() {
    clearTimeout(draftTimer);
    box.dataset.draft = "";
    return api("DELETE", `/conversations/${conv.id}/draft`).catch(() => {});
  }

  // Typing: the others see "is replying…" while this agent writes, and "is viewing" again
  // five seconds after the last key.
  function typed() {
    // Said again every few seconds of writing, for colleagues who opened it meanwhile.
    if (!state.typing || Date.now() - state.typingSaid > 4000) {
      state.typing = true;
      state.typingSaid = Date.now();
      reportPresence(conv.id, "typing");
    }
    clearTimeout(state.typingTimer);
    state.typingTimer = setTimeout(() => { state.typing = false; reportPresence(conv.id, "viewing"); }, 5000);
    saveDraft();
  }

  async function sendInternal() {
    const value = text.value.trim();
    error.textContent = "";
    if (!value) return;
    try {
      if (value.startsWith("/")) {
        const result = await api("POST", `/conversations/${conv.id}/commands`, { command: value });
        toast(result.message);
      } else {
        await api("POST", `/conversations/${conv.id}/messages`, { text: value, via: "internal" });
      }
      text.value = "";
      closeSuggestions();
      if (!email) discardDraft();
      refreshConversation();
    } catch (err) {
      error.textContent = err.message;
    }
  }

  /** Opens (or re-aims) the Reply via Email form at the email `answering` (null: the latest). */
  async function openEmail(answering, all, draft) {
    error.textContent = "";
    let offered;
    try {
      const query = answering ? `?in_reply_to_message_id=${answering}` : "";
      offered = await api("GET", `/conversations/${conv.id}/recipients${query}`);
    } catch (err) { error.textContent = err.message; return; }
    const { messages } = await api("GET", `/conversations/${conv.id}/messages`).catch(() => ({ messages: [] }));
    const answered = messages.find((m) => m.id === offered.in_reply_to_message_id);
    const listed = (list) => list.map(addressText).join(", ");
    const input = (id, label, value) => h("input", { type: "text", id, name: id, "aria-label": label, value, list: "reply-addresses", autocomplete: "off", oninput: saveDraft });
    const fields = {
      to: input("reply-to", "To", draft && draft.to ? draft.to.join(", ") : listed(offered.to)),
      cc: input("reply-cc", "Cc", draft && draft.cc ? draft.cc.join(", ") : (all ? listed(offered.cc) : "")),
      bcc: input("reply-bcc", "Bcc", draft && draft.bcc ? draft.bcc.join(", ") : ""),
      markdown: h("input", { type: "checkbox", id: "reply-markdown", checked: !draft || draft.format !== "text", onchange: saveDraft }),
      quote: h("input", { type: "checkbox", id: "reply-quote", checked: true }),
    };
    // Addresses to offer: everyone in the conversation's emails, then contacts as typed.
    const known = new Map();
    for (const m of messages) {
      const e = m.email;
      if (!e) continue;
      for (const a of [e.from, ...(e.to || []), ...(e.cc || [])]) if (a && a.email) known.set(a.email.toLowerCase(), a);
    }
    const datalist = h("datalist", { id: "reply-addresses" }, [...known.values()].map((a) => h("option", { value: addressText(a) })));
    let lookup = null;
    const suggestContacts = (e) => {
      const word = splitAddresses(e.target.value).pop() || "";
      clearTimeout(lookup);
      if (word.length < 2) return;
      lookup = setTimeout(async () => {
        try {
          const { contacts } = await api("GET", `/contacts?q=${encodeURIComponent(word)}&limit=8`);
          for (const c of contacts) if (!known.has(c.email.toLowerCase())) {
            known.set(c.email.toLowerCase(), c);
            datalist.append(h("option", { value: addressText(c) }));
          }
        } catch (_) { /* suggestions only */ }
      }, 250);
    };
    for (const f of [fields.to, fields.cc, fields.bcc]) f.addEventListener("input", suggestContacts);
    const send = h("button", { type: "button", class: "email", id: "send-email", onclick: () => sendEmail(false) }, "Send email");
    const collision = h("div", { id: "send-check" });
    const row = (label, control) => [h("dt", {}, h("label", { for: control.id }, label)), h("dd", {}, control)];
    const answeredLine = answered
      ? `Answering ${authorName(answered)}'s email of ${formatTime(answered.email && answered.email.date || answered.created_at)}`
      : "A new email to the contact";
    preview.replaceChildren(h("div", { class: "email-preview", role: "region", "aria-label": "Reply via Email" },
      h("strong", { id: "reply-answering" }, answeredLine),
      h("dl", { class: "headers reply-fields" }, ...row("To", fields.to), ...row("Cc", fields.cc), ...row("Bcc", fields.bcc),
        h("dt", {}, "Subject"), h("dd", {}, offered.subject)),
      datalist,
      h("div", { class: "row" },
        h("label", {}, fields.markdown, " Formatted (Markdown: **bold**, *italics*, lists, links)"),
        answered ? h("label", {}, fields.quote, " Quote the email answered") : null),
      collision,
      send, " ", h("button", { type: "button", onclick: closeEmail }, "Cancel")));
    email = { ...fields, answering: offered.in_reply_to_message_id, seen: newestEmailId(messages), send, collision };
    saveDraft();
    text.focus();
  }

  function closeEmail() {
    email = null;
    preview.replaceChildren();
    saveDraft();
  }

  /** Sends the reply; `anyway` after the agent read the emails that came in meanwhile. */
  async function sendEmail(anyway) {
    error.textContent = "";
    const value = text.value.trim();
    if (!value) { error.textContent = "Write the reply first."; text.focus(); return; }
    if (value.startsWith("/")) { error.textContent = "Commands cannot be emailed."; return; }
    const body = {
      text: text.value, via: "email",
      to: splitAddresses(email.to.value), cc: splitAddresses(email.cc.value), bcc: splitAddresses(email.bcc.value),
      format: email.markdown.checked ? "markdown" : "text",
      quote: email.quote.checked,
      seen_message_id: email.seen,
    };
    if (email.answering) body.in_reply_to_message_id = email.answering;
    if (anyway === true) delete body.seen_message_id;
    email.send.disabled = true;
    try {
      await api("POST", `/conversations/${conv.id}/messages`, body);
      text.value = "";
      email = null;
      preview.replaceChildren();
      discardDraft();
      toast("Email queued for sending");
    } catch (err) {
      if (err.status === 409 && err.data && err.data.new_messages) {
        // Someone wrote meanwhile: nothing was sent. The new emails are in the timeline now.
        const fresh = err.data.new_messages;
        email.seen = Math.max(email.seen || 0, ...fresh.map((m) => m.id));
        email.collision.replaceChildren(h("div", { class: "notice error", role: "alert" },
          h("strong", {}, `Not sent: ${fresh.length === 1 ? "a new email" : `${fresh.length} new emails`} arrived since you started. `),
          fresh.map((m) => h("div", { class: "new-email" }, `${authorName(m)}: ${(m.reply_text || m.text || "").slice(0, 160)}`)),
          h("button", { type: "button", id: "send-anyway", class: "email", onclick: () => sendEmail(true) }, "Send anyway"), " ",
          h("button", { type: "button", id: "edit-reply", onclick: () => { email.collision.replaceChildren(); text.focus(); } }, "Edit reply")));
      } else {
        error.textContent = err.message;
      }
      if (email) email.send.disabled = false;
    }
    refreshConversation();
  }

  // Autocomplete: /invite @... (agents) and !shortcut (canned responses).
  let options = [];
  let selected = 0;
  let mode = null;
  function closeSuggestions() { suggestions.hidden = true; options = []; mode = null; text.removeAttribute("aria-activedescendant"); }
  function showOptions(items, label) {
    if (!items.length) { closeSuggestions(); return; }
    options = items;
    selected = Math.min(selected, options.length - 1);
    suggestions.replaceChildren(...options.map((o, i) => h("li", {
      role: "option", id: `suggest-${i}`, "aria-selected": String(i === selected),
      onmousedown: (e) => { e.preventDefault(); pick(i); },
    }, ...label(o))));
    suggestions.hidden = false;
    text.setAttribute("aria-activedescendant", `suggest-${selected}`);
  }
  async function updateSuggestions() {
    const invite = /^\/invite\s+@?([\w.-]*)$/.exec(text.value);
    const before = text.value.slice(0, text.selectionEnd);
    const shortcut = /(^|\s)!([\w.-]*)$/.exec(before);
    if (invite) {
      mode = "invite";
      const prefix = invite[1].toLowerCase();
      const agents = (await users()).filter((u) => u.username.toLowerCase().startsWith(prefix) && u.id !== me.id).slice(0, 8);
      showOptions(agents, (u) => [`@${u.username}`, u.name && u.name !== u.username ? ` · ${u.name}` : ""]);
    } else if (shortcut) {
      mode = "canned";
      const prefix = shortcut[2].toLowerCase();
      let list = [];
      try { list = await cannedFor(conv.id); } catch (_) { /* none */ }
      const found = list.filter((c) => c.shortcut.toLowerCase().startsWith(prefix)).slice(0, 8);
      showOptions(found, (c) => [h("strong", {}, `!${c.shortcut}`), " ", h("span", { class: "muted" }, (c.filled_text || c.text).slice(0, 60))]);
    } else {
      closeSuggestions();
    }
  }
  function pick(i) {
    if (mode === "invite") {
      text.value = `/invite @${options[i].username}`;
    } else if (mode === "canned") {
      const end = text.selectionEnd;
      const before = text.value.slice(0, end).replace(/!([\w.-]*)$/, "");
      const insert = options[i].filled_text || options[i].text;
      text.value = before + insert + text.value.slice(end);
      text.selectionStart = text.selectionEnd = before.length + insert.length;
      saveDraft();
    }
    closeSuggestions();
    text.focus();
  }
  text.addEventListener("input", () => { selected = 0; updateSuggestions(); typed(); });
  text.addEventListener("keydown", (e) => {
    if (!suggestions.hidden && options.length) {
      if (e.key === "ArrowDown") { e.preventDefault(); selected = (selected + 1) % options.length; updateSuggestions(); return; }
      if (e.key === "ArrowUp") { e.preventDefault(); selected = (selected + options.length - 1) % options.length; updateSuggestions(); return; }
      const complete = mode === "invite" && text.value === `/invite @${options[selected].username}`;
      if (e.key === "Tab" || (e.key === "Enter" && !e.shiftKey && !complete)) { e.preventDefault(); pick(selected); return; }
      if (e.key === "Escape") { closeSuggestions(); return; }
    }
    // With the email form open, Enter writes a new line: the email goes with Send email.
    if (e.key === "Enter" && !e.shiftKey && !email) { e.preventDefault(); sendInternal(); }
  });

  const box = h("section", { class: "composer", "aria-label": "Composer", dataset: { conv: conv.id } },
    suggestions,
    presenceBar,
    text,
    h("div", { class: "row" },
      h("span", { class: "hint" }, h("span", { class: "mode-internal" }, "Internal"), " · only agents see it · drop a file here to upload"),
      h("button", { type: "button", onclick: () => file.click() }, "Upload file"),
      h("button", { type: "button", class: "primary", id: "send-internal", onclick: sendInternal }, "Send internal"),
      h("button", { type: "button", class: "email", id: "reply-email", onclick: () => openEmail(null, true) }, "Reply via Email…")),
    file, progress, preview, error);
  box.addEventListener("dragover", (e) => { e.preventDefault(); box.classList.add("dragging"); });
  box.addEventListener("dragleave", () => box.classList.remove("dragging"));
  box.addEventListener("drop", (e) => {
    e.preventDefault();
    box.classList.remove("dragging");
    if (e.dataTransfer.files[0]) upload(conv, e.dataTransfer.files[0], progress, error);
  });
  // Reply / Reply all on an email of the timeline aim this form at that email.
  state.replyTo = (messageId, all) => openEmail(messageId, all);
  restoreDraft();
  setTimeout(drawPresence, 0);
  return box;
}

function upload(conv, file, progress, error) {
  error.textContent = "";
  const data = new FormData();
  data.append("file", file, file.name);
  const xhr = new XMLHttpRequest();
  xhr.open("POST", `/api/v1/conversations/${conv.id}/uploads`);
  xhr.setRequestHeader("X-CSRF-Token", csrf);
  progress.hidden = false;
  const bar = progress.firstChild;
  bar.style.width = "0";
  xhr.upload.addEventListener("progress", (e) => { if (e.lengthComputable) bar.style.width = `${Math.round((e.loaded / e.total) * 100)}%`; });
  xhr.addEventListener("load", () => {
    progress.hidden = true;
    if (xhr.status >= 200 && xhr.status < 300) toast(`Uploaded ${file.name}`);
    else {
      let message = xhr.statusText;
      try { message = JSON.parse(xhr.responseText).error || message; } catch (_) { /* keep */ }
      error.textContent = `Upload failed: ${message}`;
    }
    refreshConversation();
  });
  xhr.addEventListener("error", () => { progress.hidden = true; error.textContent = "Upload failed: network error"; });
  xhr.send(data);
}

// ---------------------------------------------------------------------------------------
// Admin: Email Inboxes

function field(label, name, value, attrs) {
  return h("label", {}, label, h("input", Object.assign({ name, value: value === undefined || value === null ? "" : value }, attrs || {})));
}

function securitySelect(name, value) {
  return h("label", {}, "Security", h("select", { name },
    ["tls", "starttls", "none"].map((s) => h("option", { value: s, selected: s === value }, { tls: "TLS", starttls: "STARTTLS", none: "None (trusted network only)" }[s]))));
}

/** The sign-in choice of a server: "password", or "oauth2:<provider id>". */
function signInSelect(name, s, providers, onchange) {
  const current = s.auth === "oauth2" ? `oauth2:${s.oauth_provider_id}` : "password";
  // Not inside a <label>: the options' words would become part of its name ("Password").
  return h("div", { class: "field" }, h("span", { "aria-hidden": "true" }, "Sign-in"), h("select", { name, onchange, "aria-label": "Sign-in method" },
    h("option", { value: "password", selected: current === "password" }, "Password"),
    providers.map((p) => h("option", { value: `oauth2:${p.id}`, selected: current === `oauth2:${p.id}` }, `OAuth2 (${p.name})`))));
}

function serverFieldset(kind, s, editing, providers) {
  const prefix = kind.toLowerCase();
  const password = field("Password", `${prefix}.password`, "", { type: "password", autocomplete: "new-password", placeholder: editing && s.password_set ? "unchanged (write-only)" : "" });
  const oauthNote = h("p", { class: "hint" }, "Signs in with the inbox's OAuth2 connection (Connect on the inbox's row once saved); the username defaults to the inbox's address.");
  const showAuth = (value) => {
    const oauth = value.startsWith("oauth2:");
    password.hidden = oauth;
    oauthNote.hidden = !oauth;
  };
  const select = signInSelect(`${prefix}.auth`, s, providers, (e) => showAuth(e.target.value));
  showAuth(s.auth === "oauth2" ? "oauth2:" : "password");
  return h("fieldset", {}, h("legend", {}, `${kind} server (${kind === "IMAP" ? "to read" : "to send"})`),
    field("Host", `${prefix}.host`, s.host, { required: true }),
    field("Port", `${prefix}.port`, s.port || (kind === "IMAP" ? 993 : 587), { type: "number", min: 1, max: 65535, required: true }),
    securitySelect(`${prefix}.security`, s.security || (kind === "IMAP" ? "tls" : "starttls")),
    select,
    field("Username", `${prefix}.username`, s.username, { autocomplete: "off" }),
    password, oauthNote,
    kind === "IMAP" ? field("Mailbox", "imap.mailbox", s.mailbox || "INBOX") : null,
    kind === "IMAP" ? field("Move stored emails to folder (optional)", "imap.move_to", s.move_to || "", { placeholder: "leave empty to keep them in the mailbox" }) : null,
    kind === "IMAP" ? h("label", { class: "check" }, h("input", { type: "checkbox", name: "imap.sent_copy", checked: s.sent_mailbox !== "" }), "Keep a copy of every email sent in the Sent folder") : null,
    kind === "IMAP" ? field("Sent folder (optional)", "imap.sent_mailbox", s.sent_mailbox || "", { placeholder: "the folder the server marks as Sent" }) : null,
    h("label", { class: "check" }, h("input", { type: "checkbox", name: `${prefix}.tls_verify`, checked: s.tls_verify !== false }), "Verify the TLS certificate (turn off only for a self-signed server)"));
}

function inboxForm(inbox, providers) {
  const editing = Boolean(inbox);
  inbox = inbox || { imap: {}, smtp: {}, active: true };
  const error = h("div", { class: "inline-error", role: "alert" });
  const form = h("form", { class: "admin", onsubmit: async (e) => {
    e.preventDefault();
    const f = new FormData(form);
    const server = (p) => {
      const s = { host: f.get(`${p}.host`), port: Number(f.get(`${p}.port`)), security: f.get(`${p}.security`), username: f.get(`${p}.username`), tls_verify: f.get(`${p}.tls_verify`) === "on" };
      const auth = f.get(`${p}.auth`) || "password";
      if (auth.startsWith("oauth2:")) {
        s.auth = "oauth2";
        s.oauth_provider_id = Number(auth.slice("oauth2:".length));
      } else {
        const password = f.get(`${p}.password`);
        if (password) s.password = password;
      }
      if (p === "imap") {
        s.mailbox = f.get("imap.mailbox");
        s.move_to = f.get("imap.move_to");
        const sent = f.get("imap.sent_mailbox").trim();
        s.sent_mailbox = f.get("imap.sent_copy") !== "on" ? "" : sent || null;
      }
      return s;
    };
    const body = {
      name: f.get("name"), email: f.get("email"), sender_name: f.get("sender_name"), active: f.get("active") === "on",
      reopen_days: Number(f.get("reopen_days")), imap: server("imap"), smtp: server("smtp"),
    };
    const department = f.get("department_id");
    body.department_id = department ? Number(department) : null;
    const retention = f.get("retention_days");
    if (retention) body.retention_days = Number(retention);
    body.signature = f.get("signature");
    body.quote_history = f.get("quote_history") === "on";
    try {
      if (editing) await api("PUT", `/inboxes/${inbox.id}`, body);
      else await api("POST", "/inboxes", body);
      toast(editing ? "Inbox saved" : "Inbox created");
      location.hash = "#/admin/inboxes";
      showInboxes();
    } catch (err) { error.textContent = err.message; }
  } },
    h("h2", {}, editing ? `Edit ${inbox.name}` : "New email inbox"),
    field("Name", "name", inbox.name, { required: true }),
    field("Email address", "email", inbox.email, { type: "email", required: true }),
    field("Sender name (shown in From)", "sender_name", inbox.sender_name, { required: true }),
    h("label", {}, "Department (its conversations are offered to this department's agents)",
      h("select", { name: "department_id" }, h("option", { value: "" }, "None: every agent"),
        (state.departments || []).map((d) => h("option", { value: d.id, selected: d.id === inbox.department_id }, d.name)))),
    h("label", { class: "check" }, h("input", { type: "checkbox", name: "active", checked: inbox.active !== false }), "Active (read and send mail)"),
    field("Reopen window in days (a reply to a conversation closed longer ago opens a new, linked one)", "reopen_days", inbox.reopen_days ?? 30, { type: "number", min: 0, required: true }),
    field("Delete closed conversations after this many days (optional)", "retention_days", inbox.retention_days ?? "", { type: "number", min: 1, placeholder: "leave empty to keep them forever" }),
    h("label", {}, "Signature (Markdown; ends every Reply via Email; {{agent.name}}, {{inbox.name}}, {{contact.name}} are filled in)",
      h("textarea", { name: "signature", rows: 3, maxlength: 5000, placeholder: "Kind regards,\n{{agent.name}}, {{inbox.name}}" }, inbox.signature || "")),
    h("label", { class: "check" }, h("input", { type: "checkbox", name: "quote_history", checked: inbox.quote_history !== false }), "Quote the email answered below each reply"),
    serverFieldset("IMAP", inbox.imap, editing, providers),
    serverFieldset("SMTP", inbox.smtp, editing, providers),
    error,
    h("div", { class: "row" }, h("button", { type: "submit", class: "primary" }, editing ? "Save" : "Create inbox"), " ",
      h("a", { href: "#/admin/inboxes" }, "Cancel")));
  return form;
}

async function testConnection(inbox, out) {
  out.replaceChildren(h("span", { class: "test-result" }, "Testing…"));
  try {
    const result = await api("POST", `/inboxes/${inbox.id}/test`, {});
    const line = (name, r) => h("div", { class: `test-result ${r.ok ? "ok" : "fail"}` }, `${name}: ${r.ok ? "OK" : r.error}`);
    out.replaceChildren(line("IMAP", result.imap), line("SMTP", result.smtp));
  } catch (err) { out.replaceChildren(h("div", { class: "test-result fail" }, err.message)); }
}

/** Sends the browser to the provider to connect (or reconnect) an OAuth2 inbox. */
async function connectInbox(inbox) {
  try {
    const { authorize_url } = await api("POST", `/inboxes/${inbox.id}/oauth/start`, {});
    location.href = authorize_url;
  } catch (err) { toast(err.message, true); }
}

/** "Connect with Google" / "Reconnect", or nothing for a password inbox. */
function oauthActions(inbox) {
  const o = inbox.oauth;
  if (!o) return null;
  const name = { google: "Google", microsoft: "Microsoft" }[o.provider_kind] || o.provider_name || "the provider";
  if (inbox.status.state === "needs_reauth" && o.connected_at) {
    return h("div", { class: "oauth" },
      h("div", { class: "inline-error" }, `${name} no longer accepts postdesk's sign-in. Its words: ${o.needs_reauth || inbox.status.last_error || "none"}`),
      h("button", { type: "button", class: "primary", onclick: () => connectInbox(inbox) }, "Reconnect"));
  }
  if (!o.connected) {
    return h("div", { class: "oauth" }, h("button", { type: "button", class: "primary", onclick: () => connectInbox(inbox) }, `Connect with ${name}`));
  }
  return h("div", { class: "oauth" }, `Signed in with ${name}`, " ",
    h("button", { type: "button", onclick: () => connectInbox(inbox) }, "Reconnect"));
}

/** The OAuth2 providers (clients postdesk is registered as), with a form to add one. */
function providersSection(providers, withForm) {
  const error = h("div", { class: "inline-error", role: "alert" });
  const kind = h("select", { name: "kind", onchange: () => showKind() },
    [["google", "Google (Gmail, Google Workspace)"], ["microsoft", "Microsoft (Microsoft 365, Outlook.com)"], ["generic", "Other OAuth2 server"]].map(([v, label]) => h("option", { value: v }, label)));
  const generic = h("div", {}, field("Authorization URL", "auth_url", "", { type: "url" }), field("Token URL", "token_url", "", { type: "url" }),
    field("Scopes (separated by spaces)", "scopes", ""));
  const tenant = field("Tenant (optional: your directory's domain or id; default common)", "tenant", "");
  const showKind = () => { generic.hidden = kind.value !== "generic"; tenant.hidden = kind.value !== "microsoft"; };
  // Not "admin": that class names the one inbox or user form of a page.
  const form = h("form", { class: "provider", id: "oauth-provider-form", onsubmit: async (e) => {
    e.preventDefault();
    const f = new FormData(form);
    const body = { name: f.get("name"), kind: f.get("kind"), client_id: f.get("client_id"), client_secret: f.get("client_secret") };
    if (body.kind === "generic") {
      body.auth_url = f.get("auth_url");
      body.token_url = f.get("token_url");
      body.scopes = f.get("scopes").split(/\s+/).filter(Boolean);
    }
    if (body.kind === "microsoft" && f.get("tenant")) body.tenant = f.get("tenant");
    try {
      await api("POST", "/oauth/providers", body);
      toast("OAuth2 provider added");
      showInboxes();
    } catch (err) { error.textContent = err.message; }
  } },
    h("p", { class: "hint" }, `Register postdesk at the provider with the redirect URI ${location.origin}/api/v1/oauth/callback (docs/oauth.md says how, step by step).`),
    field("Name", "name", "", { required: true, placeholder: "e.g. Google Workspace" }),
    h("label", {}, "Kind", kind),
    field("Client ID", "client_id", "", { required: true, autocomplete: "off" }),
    field("Client secret", "client_secret", "", { type: "password", required: true, autocomplete: "new-password" }),
    tenant, generic, error,
    h("div", { class: "row" }, h("button", { type: "submit" }, "Add provider")));
  showKind();
  return h("section", { id: "oauth-providers" }, h("h2", {}, "OAuth2 providers"),
    h("p", {}, "Google and Microsoft 365 refuse passwords for IMAP and SMTP: add a provider, choose it as the sign-in of an inbox, then Connect."),
    providers.length ? h("table", { class: "grid" },
      h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Kind"), h("th", {}, "Client ID"), h("th", {}, "Scopes"), h("th", {}, "Actions"))),
      h("tbody", {}, providers.map((p) => h("tr", { dataset: { provider: p.id } },
        h("td", {}, p.name), h("td", {}, p.kind), h("td", {}, p.client_id), h("td", {}, p.scopes.join(" ")),
        h("td", {}, h("button", { type: "button", onclick: async () => {
          try { await api("DELETE", `/oauth/providers/${p.id}`); toast("Provider deleted"); showInboxes(); }
          catch (err) { toast(err.message, true); }
        } }, "Delete")))))) : null,
    // One form on the page at a time: not while an inbox is being added or edited.
    withForm ? h("details", {}, h("summary", {}, "Add an OAuth2 provider"), form) : null);
}

/** An inbox's Health cell: its reader's state, the last error, Connect or Reconnect. */
function healthCell(inbox) {
  const st = inbox.status;
  const label = { idle: "connected · idle", syncing: "connected · syncing", connecting: "connecting", error: "error", stopped: "stopped", needs_reauth: inbox.oauth && inbox.oauth.connected_at ? "needs reconnecting" : "not connected yet" }[st.state] || st.state;
  return h("td", { class: "health-cell" }, h("span", { class: `health ${st.state}` }, label),
    st.last_error && st.state !== "needs_reauth" ? h("div", { class: "inline-error" }, st.last_error) : null,
    oauthActions(inbox),
    st.backlog ? h("div", {}, `${st.backlog} waiting`) : null,
    st.quarantined ? h("div", {}, `${st.quarantined} quarantined`) : null);
}

/** An inbox's Last sync cell, with the node that reads it (several nodes on PostgreSQL). */
function lastSyncCell(inbox) {
  const reader = inbox.reader;
  return h("td", { class: "last-sync" }, inbox.status.last_sync_at ? formatTime(inbox.status.last_sync_at) : "never",
    reader ? h("div", { class: "read-by", title: `Node ${reader.node_id}` }, `Read by ${reader.hostname || "a node"} · ${reader.node_id.slice(0, 6)}`) : null);
}

/** A live inbox status on the Email Inboxes page: only the Health and Last sync cells change,
 * so a test's result, an open form or the scroll position stay; a new or removed inbox
 * redraws the page. */
async function refreshInboxHealth() {
  const { inboxes } = await api("GET", "/inboxes");
  // The admin may have gone to another page meanwhile: leave it alone.
  if (!/^#\/admin\/inboxes$/.test(location.hash)) return;
  const rows = [...main.querySelectorAll("tr[data-inbox]")];
  if (rows.length !== inboxes.length) { showInboxes(); return; }
  for (const inbox of inboxes) {
    const row = rows.find((r) => r.dataset.inbox === String(inbox.id));
    if (!row) { showInboxes(); return; }
    row.querySelector(".health-cell").replaceWith(healthCell(inbox));
    row.querySelector(".last-sync").replaceWith(lastSyncCell(inbox));
  }
}

async function showInboxes(editId) {
  state.current = null;
  markCurrent();
  const [{ inboxes }, { providers }, { departments }] = await Promise.all(
    [api("GET", "/inboxes"), api("GET", "/oauth/providers"), api("GET", "/departments")]);
  state.departments = departments;
  const rows = inboxes.map((inbox) => {
    const out = h("div");
    return h("tr", { dataset: { inbox: inbox.id } },
      h("td", {}, h("strong", {}, inbox.name), h("br"), inbox.email),
      healthCell(inbox),
      lastSyncCell(inbox),
      h("td", {}, h("a", { href: `#/admin/inboxes/${inbox.id}` }, "Edit"), " ",
        h("button", { type: "button", onclick: () => testConnection(inbox, out) }, "Test connection"), out));
  });
  const editing = editId ? inboxes.find((i) => i.id === editId) : null;
  const { quarantined } = await api("GET", "/quarantine");
  // Drawn only if the admin is still on an Email Inboxes page: a redraw that was under way
  // when they went elsewhere must not cover the page they went to.
  if (!location.hash.startsWith("#/admin/inboxes")) return;
  const byInbox = Object.fromEntries(inboxes.map((i) => [i.id, i.email]));
  const quarantine = h("section", { id: "quarantine" }, h("h2", {}, "Quarantined emails"),
    quarantined.length ? h("table", { class: "grid" },
      h("thead", {}, h("tr", {}, h("th", {}, "Inbox"), h("th", {}, "Received"), h("th", {}, "Reason"), h("th", {}, "Actions"))),
      h("tbody", {}, quarantined.map((q) => h("tr", { dataset: { raw: q.id } },
        h("td", {}, byInbox[q.inbox_id] || q.inbox_id), h("td", {}, formatTime(q.fetched_at), h("br"), formatSize(q.size)),
        h("td", {}, q.reason),
        h("td", {}, h("a", { href: `/api/v1/quarantine/${q.id}/raw`, download: `quarantined-${q.id}.eml` }, "Download"), " ",
          h("button", { type: "button", onclick: async () => {
            let said;
            try {
              const r = await api("POST", `/quarantine/${q.id}/reprocess`, {});
              said = [r.quarantined ? "Still cannot be processed; kept in quarantine" : "Processed", false];
            } catch (err) { said = [err.message, true]; }
            // The page is redrawn first, so what the notice says is what the page shows (and
            // nothing clicked after the notice is redrawn away).
            await showInboxes().catch(() => {});
            toast(...said);
          } }, "Reprocess")))))) : h("p", { class: "empty" }, "None: every email was processed."));
  main.replaceChildren(
    h("h1", {}, "Email Inboxes"),
    h("table", { class: "grid" },
      h("thead", {}, h("tr", {}, h("th", {}, "Inbox"), h("th", {}, "Health"), h("th", {}, "Last sync"), h("th", {}, "Actions"))),
      h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: 4, class: "empty" }, "No inbox yet: add one below.")))),
    editId === "new" || !inboxes.length ? inboxForm(null, providers) : editing ? inboxForm(editing, providers) : h("p", {}, h("a", { href: "#/admin/inboxes/new" }, "Add an email inbox")),
    providersSection(providers, !(editId === "new" || !inboxes.length || editing)),
    quarantine);
}

// ---------------------------------------------------------------------------------------
// Admin: Users

async function showUsers() {
  state.current = null;
  markCurrent();
  state.users = null;
  const list = (await api("GET", "/users")).users;
  const error = h("div", { class: "inline-error", role: "alert" });
  const form = h("form", { class: "admin", onsubmit: async (e) => {
    e.preventDefault();
    const f = new FormData(form);
    const roles = ["admin", "manager", "agent"].filter((r) => f.get(`role.${r}`) === "on");
    try {
      await api("POST", "/users", { username: f.get("username"), name: f.get("name"), email: f.get("email"), password: f.get("password"), roles });
      toast("User created");
      showUsers();
    } catch (err) { error.textContent = err.message; }
  } },
    h("h2", {}, "New user"),
    field("Username", "username", "", { required: true, pattern: "[A-Za-z0-9._-]+" }),
    field("Name", "name", ""),
    field("Email", "email", "", { type: "email" }),
    field("Password (at least 10 characters, hard to guess)", "password", "", { type: "password", required: true, minlength: 10, autocomplete: "new-password" }),
    h("fieldset", {}, h("legend", {}, "Roles"), ["agent", "manager", "admin"].map((r) => h("label", { class: "check" }, h("input", { type: "checkbox", name: `role.${r}`, checked: r === "agent" }), r))),
    error, h("button", { type: "submit", class: "primary" }, "Create user"));
  main.replaceChildren(
    h("h1", {}, "Users"),
    h("table", { class: "grid" },
      h("thead", {}, h("tr", {}, h("th", {}, "Username"), h("th", {}, "Name"), h("th", {}, "Roles"), h("th", {}, "Status"), h("th", {}, ""))),
      h("tbody", {}, list.map((u) => h("tr", {},
        h("td", {}, `@${u.username}`), h("td", {}, u.name), h("td", {}, u.roles.join(", ")), h("td", {}, u.active ? "active" : "deactivated"),
        h("td", {}, u.id === me.id ? null : h("button", { type: "button", onclick: async () => {
          try { await api("PATCH", `/users/${u.id}`, { active: !u.active }); showUsers(); } catch (err) { toast(err.message, true); }
        } }, u.active ? "Deactivate" : "Activate")))))),
    form);
}


// ---------------------------------------------------------------------------------------
// Departments (admins and managers): who is in each team and how its queue is handed out

const ROUTING = {
  manual: "Manual: agents click Take it!",
  round_robin: "Round robin: the next available agent in turn",
  load_balancing: "Load balancing: the available agent with the fewest open chats",
};

function departmentForm(department, agents) {
  const editing = Boolean(department);
  department = department || { name: "", agent_ids: [], routing: "manual", max_chats_per_agent: null };
  const members = new Set(department.agent_ids || []);
  const error = h("div", { class: "inline-error", role: "alert" });
  const form = h("form", { class: "admin department-form", dataset: { id: department.id || "new" }, onsubmit: async (e) => {
    e.preventDefault();
    const f = new FormData(form);
    const limit = f.get("max_chats_per_agent");
    const body = {
      name: f.get("name"), routing: f.get("routing"),
      agent_ids: agents.filter((u) => f.get(`agent.${u.id}`) === "on").map((u) => u.id),
      max_chats_per_agent: limit ? Number(limit) : null,
    };
    try {
      if (editing) await api("PUT", `/departments/${department.id}`, body);
      else await api("POST", "/departments", body);
      toast(editing ? "Department saved" : "Department created");
      showDepartments();
    } catch (err) { error.textContent = err.message; }
  } },
    h("h2", {}, editing ? `Edit ${department.name}` : "New department"),
    field("Name", "name", department.name, { required: true, maxlength: 100 }),
    h("label", {}, "Routing",
      h("select", { name: "routing" }, Object.entries(ROUTING).map(([value, label]) => h("option", { value, selected: value === department.routing }, label)))),
    field("Most open chats per agent by routing (optional)", "max_chats_per_agent", department.max_chats_per_agent ?? "", { type: "number", min: 1, placeholder: "no limit" }),
    h("fieldset", {}, h("legend", {}, "Agents"),
      agents.length ? agents.map((u) => h("label", { class: "check" },
        h("input", { type: "checkbox", name: `agent.${u.id}`, checked: members.has(u.id) }),
        `@${u.username}`, u.name && u.name !== u.username ? ` · ${u.name}` : "",
        u.availability ? h("span", { class: `availability ${u.availability}` }, ` ${AVAILABILITY[u.availability] || u.availability}`) : null))
        : h("p", { class: "empty" }, "No active agents yet")),
    error,
    h("div", { class: "row" }, h("button", { type: "submit", class: "primary" }, editing ? "Save" : "Create department"),
      editing ? [" ", h("a", { href: "#/departments" }, "Cancel")] : null));
  return form;
}

async function showDepartments(editId) {
  state.current = null;
  markCurrent();
  state.users = null;
  const [{ departments }, agents] = await Promise.all([api("GET", "/departments"), users()]);
  const name = (id) => { const u = agents.find((x) => x.id === id); return u ? `@${u.username}` : `user ${id}`; };
  const editing = editId ? departments.find((d) => d.id === editId) : null;
  main.replaceChildren(
    h("h1", {}, "Departments"),
    h("p", { class: "hint" }, "A department's queued conversations are offered only to its agents; an inbox without a department is everyone's."),
    h("table", { class: "grid", id: "departments" },
      h("thead", {}, h("tr", {}, h("th", {}, "Department"), h("th", {}, "Routing"), h("th", {}, "Limit"), h("th", {}, "Agents"), h("th", {}, ""))),
      h("tbody", {}, departments.length ? departments.map((d) => h("tr", { dataset: { id: d.id } },
        h("td", {}, d.name), h("td", {}, (ROUTING[d.routing] || d.routing).split(":")[0]),
        h("td", {}, d.max_chats_per_agent ?? "none"),
        h("td", {}, (d.agent_ids || []).map(name).join(", ") || "nobody yet"),
        h("td", {}, h("a", { href: `#/departments/${d.id}` }, "Edit"))))
        : h("tr", {}, h("td", { colspan: 5, class: "empty" }, "No departments yet")))),
    ...(editId && !editing ? [h("p", { class: "notice error", role: "alert" }, "No such department")] : []),
    departmentForm(editing, agents));
}

// ---------------------------------------------------------------------------------------
// Canned responses: `!shortcut` in the composer inserts one

const CANNED_SCOPES = { user: "Mine", department: "A department's", global: "Everyone's" };

function cannedForm(item, departments, done) {
  const editing = Boolean(item);
  item = item || { shortcut: "", text: "", scope: "user", department_id: null };
  const error = h("div", { class: "inline-error", role: "alert" });
  const department = h("select", { name: "department_id", "aria-label": "Department" },
    departments.map((d) => h("option", { value: d.id, selected: d.id === item.department_id }, d.name)));
  const scope = h("select", { name: "scope", "aria-label": "Who may use it", disabled: editing, onchange: () => { department.hidden = scope.value !== "department"; } },
    Object.entries(CANNED_SCOPES).map(([value, label]) => h("option", { value, selected: value === item.scope }, label)));
  department.hidden = item.scope !== "department";
  const form = h("form", { class: "admin canned-form", dataset: { id: item.id || "new" }, onsubmit: async (e) => {
    e.preventDefault();
    const f = new FormData(form);
    const body = { shortcut: f.get("shortcut").replace(/^!/, ""), text: f.get("text"), scope: item.scope };
    if (!editing) body.scope = scope.value;
    if (body.scope === "department") body.department_id = Number(department.value);
    try {
      if (editing) await api("PUT", `/canned-responses/${item.id}`, body);
      else await api("POST", "/canned-responses", body);
      state.canned = null;
      toast(editing ? "Canned response saved" : "Canned response added");
      done();
    } catch (err) { error.textContent = err.message; }
  } },
    h("h2", {}, editing ? `Edit !${item.shortcut}` : "New canned response"),
    field("Shortcut (type !shortcut in a reply)", "shortcut", item.shortcut, { required: true, maxlength: 40, pattern: "!?[A-Za-z0-9._\\-]+" }),
    h("label", {}, "Text ({{contact.name}}, {{contact.email}}, {{agent.name}}, {{inbox.name}} are filled in)",
      h("textarea", { name: "text", rows: 5, required: true, maxlength: 20000 }, item.text)),
    h("label", {}, "Who may use it ", scope, " ", department),
    error,
    h("div", { class: "row" }, h("button", { type: "submit", class: "primary" }, editing ? "Save" : "Add canned response"),
      editing ? [" ", h("a", { href: "#/canned" }, "Cancel")] : null));
  return form;
}

async function showCanned(editId) {
  state.current = null;
  markCurrent();
  const [{ canned_responses: list }, { departments }] = await Promise.all([
    api("GET", "/canned-responses"), api("GET", "/departments").catch(() => ({ departments: [] })),
  ]);
  const deptName = (id) => (departments.find((d) => d.id === id) || { name: `department ${id}` }).name;
  const editing = editId ? list.find((c) => c.id === editId) : null;
  const remove = async (c) => {
    if (!confirm(`Delete !${c.shortcut}?`)) return;
    try { await api("DELETE", `/canned-responses/${c.id}`); state.canned = null; toast(`!${c.shortcut} deleted`); showCanned(); }
    catch (err) { toast(err.message, true); }
  };
  main.replaceChildren(
    h("h1", {}, "Canned responses"),
    h("p", { class: "hint" }, "Type ! and the shortcut in a reply to insert one, with the contact's and your name filled in."),
    h("table", { class: "grid", id: "canned" },
      h("thead", {}, h("tr", {}, h("th", {}, "Shortcut"), h("th", {}, "Text"), h("th", {}, "For"), h("th", {}, ""))),
      h("tbody", {}, list.length ? list.map((c) => h("tr", { dataset: { id: c.id } },
        h("td", {}, h("code", {}, `!${c.shortcut}`)), h("td", { class: "canned-text" }, c.text.length > 120 ? `${c.text.slice(0, 120)}…` : c.text),
        h("td", {}, c.scope === "department" ? deptName(c.department_id) : c.scope === "global" ? "Everyone" : "Me"),
        h("td", {}, h("a", { href: `#/canned/${c.id}` }, "Edit"), " ",
          h("button", { type: "button", class: "link", onclick: () => remove(c) }, "Delete"))))
        : h("tr", {}, h("td", { colspan: 4, class: "empty" }, "No canned responses yet")))),
    ...(editId && !editing ? [h("p", { class: "notice error", role: "alert" }, "No such canned response")] : []),
    cannedForm(editing, departments, () => { location.hash = "#/canned"; showCanned(); }));
}

// ---------------------------------------------------------------------------------------
// Contacts: everyone who wrote, with their conversations

async function showContacts(q) {
  state.current = null;
  markCurrent();
  const input = h("input", { type: "search", id: "contact-search", value: q || "", placeholder: "Name or address", "aria-label": "Search contacts" });
  const list = h("tbody", {});
  const more = h("div", { class: "row" });
  const load = async (cursor) => {
    const params = new URLSearchParams({ limit: String(PAGE) });
    if (input.value.trim()) params.set("q", input.value.trim());
    if (cursor) params.set("cursor", cursor);
    const page = await api("GET", `/contacts?${params}`);
    if (!cursor) list.replaceChildren();
    list.append(...page.contacts.map((c) => h("tr", { dataset: { id: c.id } },
      h("td", {}, h("a", { href: `#/contacts/${c.id}` }, c.name || c.email)), h("td", {}, c.email),
      h("td", {}, c.conversations ?? ""))));
    if (!list.children.length) list.append(h("tr", {}, h("td", { colspan: 3, class: "empty" }, "No contacts found")));
    more.replaceChildren(page.next_cursor ? h("button", { type: "button", onclick: () => load(page.next_cursor).catch((err) => toast(err.message, true)) }, "Show more") : "");
  };
  const form = h("form", { role: "search", class: "row", onsubmit: (e) => {
    e.preventDefault();
    history.replaceState(null, "", `#/contacts${input.value.trim() ? "?q=" + encodeURIComponent(input.value.trim()) : ""}`);
    load().catch((err) => toast(err.message, true));
  } }, input, h("button", { type: "submit" }, "Search"));
  main.replaceChildren(h("h1", {}, "Contacts"), form,
    h("table", { class: "grid", id: "contacts" }, h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Address"), h("th", {}, "Conversations"))), list),
    more);
  await load();
}

async function showContact(id) {
  state.current = null;
  markCurrent();
  const contact = await api("GET", `/contacts/${id}`);
  const error = h("div", { class: "inline-error", role: "alert" });
  const name = h("input", { type: "text", name: "name", value: contact.name || "", "aria-label": "Contact name", maxlength: 200 });
  const form = h("form", { class: "row", onsubmit: async (e) => {
    e.preventDefault();
    error.textContent = "";
    try {
      await api("PATCH", `/contacts/${id}`, { name: name.value });
      toast("Contact saved");
      showContact(id);
      renderSidebar().catch(() => {}); // the lists show the contact's name
    } catch (err) { error.textContent = err.message; }
  } }, name, h("button", { type: "submit" }, "Save name"));
  const conversations = contact.conversations || [];
  main.replaceChildren(
    h("p", {}, h("a", { href: "#/contacts" }, "← Contacts")),
    h("h1", { id: "contact-name" }, contact.name || contact.email),
    h("dl", { class: "headers" }, h("dt", {}, "Address"), h("dd", {}, contact.email),
      contact.created_at ? [h("dt", {}, "First seen"), h("dd", {}, formatTime(contact.created_at))] : null),
    form, error,
    h("h2", {}, "Conversations"),
    h("ul", { class: "side-list", id: "contact-conversations" }, conversations.length
      ? conversations.map((c) => h("li", {}, h("a", { href: `#/c/${c.id}`, dataset: { id: c.id } },
        h("span", { class: "subject" }, c.subject || "(no subject)"),
        h("span", { class: "who" }, `${c.status.replace("_", " ")} · ${formatTime(c.last_message_at)}`))))
      : h("li", { class: "none" }, "None you can open")));
}

// ---------------------------------------------------------------------------------------
// Account: password, two-factor sign-in, sessions

async function showAccount() {
  state.current = null;
  markCurrent();
  const [profile, { sessions }] = await Promise.all([api("GET", "/me"), api("GET", "/me/sessions")]);
  const pwError = h("div", { class: "inline-error", role: "alert" });
  const pwForm = h("form", { class: "admin", id: "password-form", onsubmit: async (e) => {
    e.preventDefault();
    const f = new FormData(pwForm);
    try {
      await api("PUT", "/me/password", { current_password: f.get("current"), new_password: f.get("new") });
      toast("Password changed; your other sessions were signed out");
      showAccount();
    } catch (err) { pwError.textContent = err.message; }
  } },
    h("h2", {}, "Password"),
    field("Current password", "current", "", { type: "password", required: true, autocomplete: "current-password" }),
    field("New password (at least 10 characters, hard to guess)", "new", "", { type: "password", required: true, minlength: 10, autocomplete: "new-password" }),
    pwError, h("button", { type: "submit" }, "Change password"));

  const tfa = h("section", { class: "admin", id: "two-factor" }, h("h2", {}, "Two-factor sign-in"));
  const tfaError = h("div", { class: "inline-error", role: "alert" });
  if (profile.totp_enabled) {
    const pw = h("input", { type: "password", "aria-label": "Password to turn two-factor sign-in off", autocomplete: "current-password" });
    tfa.append(h("p", {}, "On: signing in asks for a code from your authenticator app."),
      h("label", {}, "Password ", pw), " ",
      h("button", { type: "button", onclick: async () => {
        try { await api("DELETE", "/me/totp", { password: pw.value }); toast("Two-factor sign-in is off"); showAccount(); }
        catch (err) { tfaError.textContent = err.message; }
      } }, "Turn off"), tfaError);
  } else {
    tfa.append(h("p", {}, profile.totp_enrolment_required
      ? "Your admin requires two-factor sign-in: set it up to continue."
      : "Off. With it on, signing in also asks for a code from an authenticator app on your phone."),
    h("button", { type: "button", class: "primary", id: "totp-start", onclick: async () => {
      try {
        const started = await api("POST", "/me/totp", {});
        const code = h("input", { id: "totp-code", inputmode: "numeric", autocomplete: "one-time-code", maxlength: 6, "aria-label": "Code from the app" });
        const confirm = h("form", { onsubmit: async (e) => {
          e.preventDefault();
          try {
            const { recovery_codes } = await api("POST", "/me/totp/confirm", { code: code.value });
            tfa.replaceChildren(h("h2", {}, "Two-factor sign-in"),
              h("p", { role: "status" }, "On. Keep these recovery codes somewhere safe: each signs you in once without your phone."),
              h("ol", { class: "recovery-codes", id: "recovery-codes" }, recovery_codes.map((c) => h("li", {}, h("code", {}, c)))),
              h("button", { type: "button", onclick: () => { location.hash = "#/"; location.reload(); } }, "Done"));
          } catch (err) { tfaError.textContent = err.message; }
        } },
          h("p", {}, "1. In your authenticator app, add an account with this key (or open the link on your phone):"),
          h("p", {}, h("code", { id: "totp-secret" }, started.secret), " ", h("a", { href: started.secret_uri }, "otpauth link")),
          h("p", {}, "2. Type the 6-digit code the app shows:"),
          h("label", {}, "Code ", code), " ", h("button", { type: "submit", class: "primary" }, "Confirm"), tfaError);
        tfa.replaceChildren(h("h2", {}, "Two-factor sign-in"), confirm);
        code.focus();
      } catch (err) { tfaError.textContent = err.message; }
    } }, "Set up two-factor sign-in"), tfaError);
  }

  const rows = sessions.map((s) => h("tr", { dataset: { session: s.id } },
    h("td", {}, s.current ? h("strong", {}, "This session") : formatTime(s.created_at)),
    h("td", {}, s.user_agent || "unknown client", h("br"), s.ip),
    h("td", {}, s.method.replace("+", " + ")),
    h("td", {}, formatTime(s.last_seen_at)),
    h("td", {}, s.current ? null : h("button", { type: "button", onclick: async () => {
      try { await api("DELETE", `/me/sessions/${s.id}`); toast("Signed out there"); showAccount(); }
      catch (err) { toast(err.message, true); }
    } }, "Sign out"))));
  main.replaceChildren(
    h("h1", {}, "Account"),
    ...(profile.totp_enrolment_required ? [h("p", { class: "notice", role: "alert" }, "Two-factor sign-in is required before you can work in postdesk.")] : []),
    tfa,
    h("section", { id: "sessions" }, h("h2", {}, "Sessions"),
      h("table", { class: "grid" },
        h("thead", {}, h("tr", {}, h("th", {}, "Started"), h("th", {}, "Where"), h("th", {}, "Signed in with"), h("th", {}, "Last active"), h("th", {}, ""))),
        h("tbody", {}, rows))),
    pwForm);
}

// ---------------------------------------------------------------------------------------
// Admin: audit log and security settings

async function showAudit() {
  state.current = null;
  markCurrent();
  const params = new URLSearchParams(location.hash.split("?")[1] || "");
  const query = new URLSearchParams();
  for (const k of ["actor", "action", "since"]) if (params.get(k)) query.set(k, params.get(k));
  const [{ entries }, security] = await Promise.all([api("GET", "/audit?" + query), api("GET", "/security")]);
  const filter = h("form", { class: "filters", onsubmit: (e) => {
    e.preventDefault();
    const f = new FormData(filter);
    const q = new URLSearchParams();
    for (const k of ["actor", "action"]) if (f.get(k)) q.set(k, f.get(k));
    location.hash = "#/admin/audit?" + q;
  } },
    h("label", {}, "Who ", h("input", { name: "actor", value: params.get("actor") || "", placeholder: "username" })), " ",
    h("label", {}, "What ", h("input", { name: "action", value: params.get("action") || "", placeholder: "e.g. sign_in, user" })), " ",
    h("button", { type: "submit" }, "Filter"), " ",
    h("a", { href: "/api/v1/audit/export?" + query, download: "postdesk-audit.csv" }, "Export CSV"));
  const require = h("select", { name: "require_totp", "aria-label": "Require two-factor sign-in" },
    [["off", "of nobody"], ["admins", "of admins"], ["everyone", "of everyone"]].map(([v, label]) =>
      h("option", { value: v, selected: security.require_totp === v }, label)));
  const securityForm = h("form", { class: "admin", id: "security-form", onsubmit: async (e) => {
    e.preventDefault();
    try { await api("PUT", "/security", { require_totp: require.value }); toast("Security settings saved"); showAudit(); }
    catch (err) { toast(err.message, true); }
  } }, h("h2", {}, "Security"), h("label", {}, "Require two-factor sign-in ", require), " ", h("button", { type: "submit" }, "Save"));
  main.replaceChildren(
    h("h1", {}, "Audit log"),
    securityForm,
    filter,
    h("table", { class: "grid", id: "audit" },
      h("thead", {}, h("tr", {}, h("th", {}, "When"), h("th", {}, "Who"), h("th", {}, "What"), h("th", {}, "On"), h("th", {}, "From"), h("th", {}, "Details"))),
      h("tbody", {}, entries.length ? entries.map((e) => h("tr", {},
        h("td", {}, formatTime(e.at)), h("td", {}, e.actor), h("td", {}, e.action), h("td", {}, e.target), h("td", {}, e.ip),
        h("td", {}, h("code", {}, JSON.stringify(e.details))))) : h("tr", {}, h("td", { colspan: 6, class: "empty" }, "Nothing recorded yet")))));
}

// ---------------------------------------------------------------------------------------
// Routing and live updates

async function route() {
  const hash = location.hash || "#/";
  let m;
  const open = /^#\/c\/(\d+)$/.exec(hash);
  enterPresence(open ? Number(open[1]) : null);
  try {
    if ((m = /^#\/c\/(\d+)$/.exec(hash))) await showConversation(Number(m[1]));
    else if (hash === "#/admin/inboxes") await showInboxes();
    else if ((m = /^#\/admin\/inboxes\/(\d+|new)$/.exec(hash))) await showInboxes(m[1] === "new" ? "new" : Number(m[1]));
    else if (hash === "#/admin/users") await showUsers();
    else if (hash === "#/departments") await showDepartments();
    else if (hash === "#/canned") await showCanned();
    else if ((m = /^#\/canned\/(\d+)$/.exec(hash))) await showCanned(Number(m[1]));
    else if ((m = /^#\/departments\/(\d+)$/.exec(hash))) await showDepartments(Number(m[1]));
    else if ((m = /^#\/contacts(?:\?q=(.*))?$/.exec(hash))) await showContacts(m[1] ? decodeURIComponent(m[1]) : "");
    else if ((m = /^#\/contacts\/(\d+)$/.exec(hash))) await showContact(Number(m[1]));
    else if (hash === "#/account") await showAccount();
    else if (/^#\/admin\/audit(\?.*)?$/.test(hash)) await showAudit();
    else {
      state.current = null;
      markCurrent();
      main.replaceChildren(h("div", { class: "empty" }, h("h1", {}, "Welcome"),
        h("p", {}, "Pick a conversation from Queued Chats and click Take it!, or continue one of your Chats in Progress.")));
    }
  } catch (err) {
    main.replaceChildren(h("p", { class: "notice error", role: "alert" }, err.message));
  }
}

let refreshTimer = null;
function refreshConversation() {
  if (state.current === null) return Promise.resolve();
  return showConversation(state.current);
}

/** A refetch soon, once for a burst of events: the sidebar's lists and/or the open conversation. */
const pending = { sidebar: false, conversation: false };
function scheduleRefresh(sidebarToo, conversationToo) {
  pending.sidebar ||= sidebarToo;
  pending.conversation ||= conversationToo;
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => {
    if (pending.sidebar) renderSidebar().catch(() => {});
    if (pending.conversation) refreshConversation();
    pending.sidebar = false;
    pending.conversation = false;
  }, 50);
}

// Every event the workspace hears (see docs/api.md, "Events").
const EVENT_KINDS = ["conversation_queued", "conversation_taken", "conversation_closed", "conversation_transferred",
  "conversation_on_hold", "conversation_snoozed", "conversation_resumed", "conversation_merged", "member_added", "message_created", "delivery_updated", "inbox_status", "user_availability", "presence", "resync"];

function listen() {
  const events = new EventSource("/api/v1/events");
  const onEvent = (e) => {
    let data = {};
    try { data = JSON.parse(e.data); } catch (_) { /* ignore */ }
    const cid = data.conversation_id;
    if (e.type === "conversation_taken" && cid === state.current && data.assignee_id !== me.id && state.lastQueued.has(cid)) {
      const who = (state.users || []).find((u) => u.id === data.assignee_id);
      state.notice = { id: cid, text: `Already taken by ${who ? "@" + who.username : "another agent"}` };
    }
    if (e.type === "inbox_status") {
      if (/^#\/admin\/inboxes$/.test(location.hash)) refreshInboxHealth().catch(() => {});
      return;
    }
    if (e.type === "presence") {
      if (!state.presence.has(cid)) state.presence.set(cid, new Map());
      if (data.state === "left") state.presence.get(cid).delete(data.user_id);
      else state.presence.get(cid).set(data.user_id, { state: data.state, at: Date.now() });
      if (cid === state.current) drawPresence();
      return;
    }
    if (e.type === "user_availability") {
      if (data.user_id === me.id) showAvailability(data.availability);
      return;
    }
    if (e.type === "member_added" && data.user_id === me.id) state.invited.add(cid);
    if (e.type === "resync") { scheduleRefresh(true, true); return; }
    // The event carries the conversation as it now is: the lists are patched, not fetched.
    // A queued one of a queue this page does not know as mine: the server says whose it is.
    const c = data.conversation;
    if (c && !(c.status === "queued" && !myQueue(c))) { patchLists(c); drawSidebar(); markCurrent(); }
    else if (cid) scheduleRefresh(true, false);
    if (cid === state.current) scheduleRefresh(false, true);
  };
  for (const kind of EVENT_KINDS) events.addEventListener(kind, onEvent);
  events.addEventListener("open", () => document.body.classList.remove("offline"));
  events.addEventListener("error", () => document.body.classList.add("offline"));
}

// ---------------------------------------------------------------------------------------
// Availability: routing gives conversations only to available agents

const AVAILABILITY = { available: "Available", away: "Away", offline: "Offline" };

function showAvailability(value) {
  const select = document.getElementById("availability");
  if (select && value) { select.value = value; select.dataset.value = value; }
}

function availabilityControl(current) {
  const select = h("select", {
    id: "availability", "aria-label": "Availability", title: "Automatic routing gives conversations only to available agents",
    onchange: async () => {
      try {
        await api("PUT", "/me/availability", { status: select.value });
        select.dataset.value = select.value;
        toast(`You are ${AVAILABILITY[select.value].toLowerCase()}`);
      } catch (err) { toast(err.message, true); select.value = select.dataset.value || "offline"; }
    },
  }, Object.entries(AVAILABILITY).map(([value, label]) => h("option", { value }, label)));
  select.value = current || "offline";
  select.dataset.value = select.value;
  meEl.before(select);
}

/** Back from connecting a mailbox at its OAuth2 provider: say how it went, once. */
function oauthOutcome() {
  const params = new URLSearchParams(location.search);
  const outcome = params.get("oauth");
  if (!outcome) return;
  toast(params.get("message") || (outcome === "connected" ? "Connected" : "Connecting failed"), outcome !== "connected");
  history.replaceState(null, "", "/" + location.hash);
}

window.addEventListener("hashchange", route);
oauthOutcome();
api("GET", "/me").then((profile) => {
  if (profile.totp_enrolment_required) {
    // Until two-factor sign-in is set up, the account page is all that answers.
    location.hash = "#/account";
    route();
    return;
  }
  state.departments_of_me = new Set(profile.departments || []);
  if (profile.availability) availabilityControl(profile.availability);
  users().catch(() => {});
  renderSidebar().catch((err) => toast(err.message, true));
  route();
  listen();
}).catch((err) => toast(err.message, true));
