// The playground page: draws the emulator's chats as three phones and sends what people do
// back to the server. All state lives on the server; this file only renders it.
//
// Safety: the bot's messages echo what people type, so nothing from the server is ever
// parsed as HTML here. Messages arrive as plain text plus Telegram's entities (offsets in
// UTF-16 code units, the same units as JavaScript strings) and are built with
// createElement and textContent only. Links get an href only for http(s) addresses.
"use strict";

const views = new Map(); // phone key -> view (DOM nodes and what they currently show)
let bot = { username: "", name: "Bot" };
let timezone = "UTC"; // the practice's: times as the bot itself tells them

// --- small DOM helpers -------------------------------------------------------------------

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node[key] = value;
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

function clock(seconds) {
  return new Date(seconds * 1000).toLocaleTimeString([], {
    hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZone: timezone,
  });
}

function safeHref(url) {
  return /^https?:\/\//i.test(url) ? url : "#";
}

// --- talking to the server ---------------------------------------------------------------

async function post(view, action, body) {
  let response;
  try {
    response = await fetch(`/api/phones/${view.key}/${action}`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
  } catch (error) {
    showError(view, "The playground is not answering. Is `python -m bot playground` running?");
    return;
  }
  if (!response.ok) showError(view, await response.text());
}

function showError(view, text) {
  view.error.textContent = text;
  view.error.hidden = false;
  clearTimeout(view.errorTimer);
  view.errorTimer = setTimeout(() => { view.error.hidden = true; }, 5000);
}

const sendText = (view, text) => post(view, "send", { text });
const openLink = (view, url) => post(view, "open", { url });

// --- links -------------------------------------------------------------------------------

// A t.me or tg:// link that starts this bot (also inside a t.me/share link), else null.
function botLink(url) {
  let parsed;
  try {
    parsed = new URL(url);
  } catch (error) {
    return null;
  }
  const me = bot.username.toLowerCase();
  if (parsed.protocol === "tg:") {
    const domain = (parsed.searchParams.get("domain") || "").toLowerCase();
    return domain === me ? url : null;
  }
  if (!/^https?:$/.test(parsed.protocol) || !["t.me", "telegram.me"].includes(parsed.host)) {
    return null;
  }
  const first = parsed.pathname.replace(/^\/+/, "").split("/")[0].toLowerCase();
  if (first === "share") {
    const inner = parsed.searchParams.get("url");
    return inner ? botLink(inner) : null;
  }
  return first === me ? url : null;
}

function followLink(anchor, url) {
  const target = botLink(url);
  if (target) {
    choosePhone(anchor, target);
  } else if (/^https?:\/\//i.test(url)) {
    window.open(url, "_blank", "noopener,noreferrer");
  }
}

function choosePhone(anchor, url) {
  const box = document.getElementById("chooser");
  const hide = () => { box.hidden = true; };
  const buttons = [...views.values()].map((view) =>
    el("button", {
      type: "button",
      title: `Open the link in ${view.owner}'s Telegram`,
      onclick: () => { hide(); openLink(view, url); },
    }, view.owner));
  box.replaceChildren(
    el("p", {}, "Open this link on:"),
    ...buttons,
    el("button", { type: "button", className: "cancel", onclick: hide }, "Cancel"),
  );
  box.hidden = false;
  const r = anchor.getBoundingClientRect();
  const left = Math.min(r.left, window.innerWidth - box.offsetWidth - 8);
  box.style.left = `${Math.max(8, left) + window.scrollX}px`;
  box.style.top = `${r.bottom + 4 + window.scrollY}px`;
  box.anchor = anchor;
}

document.addEventListener("click", (event) => {
  const box = document.getElementById("chooser");
  if (!box.hidden && !box.contains(event.target) && !(box.anchor && box.anchor.contains(event.target))) {
    box.hidden = true;
  }
});

// --- message text ------------------------------------------------------------------------

const STYLE_TAGS = {
  bold: "strong",
  italic: "em",
  underline: "u",
  strikethrough: "s",
  code: "code",
  pre: "pre",
};
// Addresses Telegram would underline, and /commands a tap on which sends them (bot only).
// Bidi marks and isolates (U+200E/F, U+2066-9) around them are not part of them (a mark
// before a slash is a date's, as in "15\u200f/05\u200f/2026").
const TOKENS = /(https?:\/\/[^\s<>"'\u200e\u200f\u2066-\u2069]+|tg:\/\/[^\s<>"'\u200e\u200f\u2066-\u2069]+)|(^|[\s(\u2066-\u2068])(\/[A-Za-z0-9_]{1,32})(?=$|[\s.,;:!?)\u2069])/g;

function linkify(view, text, fromBot) {
  const out = document.createDocumentFragment();
  let last = 0;
  for (const match of text.matchAll(TOKENS)) {
    let start = match.index;
    let token;
    if (match[1]) {
      token = match[1].replace(/[.,;:!?)]+$/, "");
    } else {
      start += match[2].length;
      token = match[3];
    }
    if (!match[1] && !fromBot) continue;
    out.append(text.slice(last, start));
    if (match[1]) {
      out.append(linkNode(token, token));
    } else {
      out.append(el("span", {
        className: "command",
        role: "link",
        title: `Send ${token}`,
        onclick: () => sendText(view, token),
      }, token));
    }
    last = start + token.length;
  }
  out.append(text.slice(last));
  return out;
}

function linkNode(url, content) {
  const a = el("a", { href: safeHref(url), rel: "noopener noreferrer", target: "_blank" }, content);
  a.dataset.url = url;
  a.addEventListener("click", (event) => {
    event.preventDefault();
    followLink(a, url);
  });
  return a;
}

// Telegram's entities may nest; cut the text at every entity edge and wrap each piece in the
// elements of the entities covering it.
function richText(view, text, entities, fromBot) {
  const shown = (entities || []).filter((e) => STYLE_TAGS[e.type] || e.type === "text_link");
  const cuts = new Set([0, text.length]);
  for (const e of shown) {
    cuts.add(Math.min(text.length, e.offset));
    cuts.add(Math.min(text.length, e.offset + e.length));
  }
  const points = [...cuts].sort((a, b) => a - b);
  const out = document.createDocumentFragment();
  for (let i = 0; i + 1 < points.length; i += 1) {
    const [from, to] = [points[i], points[i + 1]];
    const covering = shown.filter((e) => e.offset <= from && e.offset + e.length >= to);
    const inLink = covering.some((e) => e.type === "text_link");
    let node = inLink ? document.createTextNode(text.slice(from, to))
      : linkify(view, text.slice(from, to), fromBot);
    for (const e of covering.reverse()) {
      node = e.type === "text_link" ? linkNode(e.url || "", node) : el(STYLE_TAGS[e.type], {}, node);
    }
    out.append(node);
  }
  return out;
}

// --- one message -------------------------------------------------------------------------

function messageNode(view, m) {
  // As in Telegram's apps, each bubble and each of its lines takes its direction from its
  // own text (dir=auto here, unicode-bidi: plaintext in the CSS): Arabic reads right to left.
  const bubble = el("div", { className: "bubble", dir: "auto" });
  if (m.photo) bubble.append(el("img", { src: m.photo, alt: "Photo from the bot" }));
  if (m.document) bubble.append(el("div", { className: "document" }, `📄 ${m.document}`));
  if (m.text) bubble.append(richText(view, m.text, m.entities, m.from_bot));
  bubble.append(el("span", { className: "meta" }, (m.edited ? "edited " : "") + clock(m.date)));
  const node = el("div", {
    className: `msg ${m.from_bot ? "bot" : "user"}`,
    dataset: { id: String(m.id), edited: String(m.edited) },
  }, bubble);
  if (m.buttons.length) {
    const keyboard = el("div", { className: "inline-keyboard" });
    m.buttons.forEach((row, r) => {
      keyboard.append(el("div", { className: "row" }, ...row.map((b, c) => {
        const button = el("button", { type: "button", className: b.kind }, b.text);
        button.addEventListener("click", () => {
          if (b.kind === "callback_data") post(view, "tap", { message_id: m.id, row: r, col: c });
          else if (b.url) followLink(button, b.url);
          else showError(view, `${b.kind} buttons do nothing in the playground`);
        });
        return button;
      })));
    });
    node.append(keyboard);
  }
  const img = bubble.querySelector("img");
  if (img) img.addEventListener("load", () => stickToBottom(view, true));
  return node;
}

function stickToBottom(view, force) {
  const chat = view.chat;
  if (force || chat.scrollHeight - chat.scrollTop - chat.clientHeight < 120) {
    chat.scrollTop = chat.scrollHeight;
  }
}

// --- a phone -----------------------------------------------------------------------------

function buildPhone(p) {
  const view = {
    key: p.key, owner: p.owner, role: p.role,
    rendered: new Map(), alertsSeen: null, commands: [], hintJson: null,
  };
  view.chat = el("div", { className: "chat", role: "log", ariaLabel: `${p.owner}'s chat` });
  view.hint = el("div", { className: "hint" });
  view.menu = el("div", { className: "menu", hidden: true });
  view.replyKeyboard = el("div", { className: "reply-keyboard", hidden: true });
  view.error = el("div", { className: "phone-error", role: "status", hidden: true });
  view.input = el("input", {
    type: "text", name: "text", placeholder: "Message", autocomplete: "off",
    ariaLabel: `Message from ${p.owner}`,
  });
  const menuButton = el("button", {
    type: "button", className: "menu-button", title: "Commands", ariaLabel: "Commands",
    onclick: () => { view.menu.hidden = !view.menu.hidden; drawMenu(view); },
  }, "/");
  const composer = el("form", {
    className: "composer",
    onsubmit: (event) => {
      event.preventDefault();
      const text = view.input.value;
      if (!text.trim()) return;
      view.input.value = "";
      view.menu.hidden = true;
      sendText(view, text);
    },
  }, menuButton, view.input, el("button", { type: "submit" }, "Send"));
  const head = el("header", { className: "phone-head" },
    el("div", { className: "avatar" }, (bot.name || "B").slice(0, 1)),
    el("div", {}, el("div", { className: "bot-name" }, bot.name),
      el("div", { className: "bot-sub" }, `bot · @${bot.username}`)));
  view.root = el("section", { className: "phone", dataset: { phone: p.key } },
    head, view.chat, view.error, view.menu, view.replyKeyboard, composer);
  const roleLabel = p.role === "practitioner" ? "practitioner" : `patient (${p.role})`;
  // Kept in sight once the hint has gone: others ask for access with this email. (A blank
  // line for the practitioner keeps the three phones level.)
  const facts = el("div", { className: "device-facts" }, p.hint
    ? [p.hint.email, p.hint.dob && `born ${p.hint.dob}`].filter(Boolean).join(" · ")
    : "\u00a0");
  document.getElementById("phones").append(el("div", { className: "device", dataset: { device: p.key } },
    el("div", { className: "device-label" }, `${p.owner} `, el("small", {}, roleLabel)),
    facts, view.root));
  views.set(p.key, view);
  return view;
}

function drawMenu(view) {
  if (view.menu.hidden) return;
  const items = view.commands.map((c) => el("button", {
    type: "button",
    onclick: () => { view.menu.hidden = true; sendText(view, `/${c.command}`); },
  }, el("span", { className: "command-name" }, `/${c.command}`), c.description));
  view.menu.replaceChildren(...(items.length ? items
    : [el("div", { className: "empty" }, "The bot has not set a command menu (setMyCommands).")]));
}

function drawHint(view, p) {
  const json = JSON.stringify([p.hint, p.messages.length === 0]);
  if (json === view.hintJson) return;
  view.hintJson = json;
  if (p.messages.length) {
    view.hint.remove();
    return;
  }
  if (p.hint) {
    view.hint.replaceChildren(
      el("p", {}, `${p.hint.name} has an invite from the practice.`),
      el("button", { type: "button", onclick: () => openLink(view, p.hint.link) },
        "Tap to open your invite link"),
      el("p", {}, "When the bot asks, type the date of birth: ", el("b", {}, p.hint.dob)),
      p.hint.email ? el("p", { className: "hint-email" }, "Portal email: ", el("b", {}, p.hint.email))
        : null,
    );
  } else if (p.role === "practitioner") {
    view.hint.replaceChildren(
      el("p", {}, `${p.owner} is registered as a practitioner and can invite patients.`),
      el("button", { type: "button", onclick: () => sendText(view, "/invite") }, "Send /invite"),
    );
  } else {
    view.hint.replaceChildren(
      el("button", { type: "button", onclick: () => sendText(view, "/start") }, "Start"),
    );
  }
  view.chat.prepend(view.hint);
}

function drawAlerts(view, alerts) {
  if (view.alertsSeen === null) view.alertsSeen = alerts.length; // not the old ones on load
  for (const a of alerts.slice(view.alertsSeen)) {
    if (a.show_alert && a.text) {
      const box = el("div", { className: "alert", role: "alertdialog" });
      box.append(el("div", {}, el("p", {}, a.text),
        el("button", { type: "button", onclick: () => box.remove() }, "OK")));
      view.root.append(box);
    } else if (a.text) {
      const toast = el("div", { className: "toast", role: "status" }, a.text);
      view.root.append(toast);
      setTimeout(() => toast.remove(), 2500);
    }
  }
  view.alertsSeen = alerts.length;
}

function drawReplyKeyboard(view, rows) {
  view.replyKeyboard.hidden = !rows;
  view.replyKeyboard.replaceChildren(...(rows || []).map((row) => el("div", { className: "row" },
    ...row.map((label) => el("button", { type: "button", onclick: () => sendText(view, label) }, label)))));
}

function drawPhone(p) {
  const view = views.get(p.key) || buildPhone(p);
  let appended = false;
  const present = new Set();
  for (const m of p.messages) {
    present.add(m.id);
    const json = JSON.stringify(m);
    const old = view.rendered.get(m.id);
    if (old && old.json === json) continue;
    const node = messageNode(view, m);
    if (old) old.node.replaceWith(node);
    else { view.chat.append(node); appended = true; }
    view.rendered.set(m.id, { json, node });
  }
  for (const [id, old] of view.rendered) {
    if (!present.has(id)) { old.node.remove(); view.rendered.delete(id); }
  }
  drawHint(view, p);
  view.commands = p.commands;
  drawMenu(view);
  drawReplyKeyboard(view, p.keyboard);
  drawAlerts(view, p.alerts);
  if (appended) stickToBottom(view, true);
}

function drawViolations(list) {
  const box = document.getElementById("violations");
  box.hidden = list.length === 0;
  if (!list.length) return;
  const plural = list.length === 1 ? "request" : "requests";
  box.replaceChildren(
    el("h2", {}, `⚠ Telegram would refuse ${list.length} ${plural} the bot made:`),
    el("ul", {}, ...list.slice(-8).map((v) => el("li", {},
      `${v.method}${v.chat ? ` to ${v.chat}` : ""}: ${v.description}`))),
  );
}

function draw(state) {
  bot = state.bot;
  timezone = state.timezone || timezone;
  for (const p of state.phones) drawPhone(p);
  drawViolations(state.violations);
}

// --- live updates ------------------------------------------------------------------------

function connect() {
  const status = document.getElementById("connection");
  const events = new EventSource("/api/events");
  events.onopen = () => { status.textContent = "live"; status.className = "connection live"; };
  events.onmessage = (event) => draw(JSON.parse(event.data));
  events.onerror = () => {
    status.textContent = "disconnected: is python -m bot playground still running?";
    status.className = "connection down";
  };
}

connect();
