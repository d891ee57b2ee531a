(function () {
  "use strict";
  var API = "/chat/api/messages", SESSIONS = "/chat/api/sessions", INBOX = "/chat/api/inbox", PUSH = "/chat/api/push", MAX = 60;
  var POLL_MS = 10000; // while the page is open and shown, what was queued for the person comes in this often
  var SK = "tadamon.session", HK = "tadamon.history", LK = "tadamon.lang";
  var TOKEN = /^[A-Za-z0-9_-]{43}$/; // what the server issues: anything else is not a session
  var UI = {
    fr: {ph: "Écrivez un message…", label: "Votre message", send: "Envoyer", typing: "Tadamon écrit…",
         bell: "Être averti par une notification quand un message arrive"},
    ar: {ph: "اكتب رسالتك…", label: "رسالتك", send: "إرسال", typing: "تضامن يكتب…",
         bell: "تلقي إشعار عند وصول رسالة"}
  };
  var $ = function (id) { return document.getElementById(id); };
  var log = $("log"), form = $("form"), input = $("text"), sendBtn = $("send"), menuBtn = $("menu"), typing = $("typing"), bell = $("bell");
  var busy = false, lastPayload = null, hist = [], sid, inboxChecked = false;

  function load(k) { try { return localStorage.getItem(k); } catch (e) { return null; } }
  function store(k, v) { try { localStorage.setItem(k, v); } catch (e) { /* private mode / quota */ } }
  function newId() {
    if (window.crypto && typeof crypto.randomUUID === "function") { try { return crypto.randomUUID(); } catch (e) { /* insecure context */ } }
    var a = new Uint8Array(16), i;
    if (window.crypto && crypto.getRandomValues) crypto.getRandomValues(a);
    else for (i = 0; i < 16; i++) a[i] = Math.floor(Math.random() * 256);
    return Array.prototype.map.call(a, function (b) { return (b + 256).toString(16).slice(1); }).join("");
  }
  function el(tag, cls, text) {
    var n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text != null) n.textContent = String(text);
    return n;
  }
  function safeUrl(u) {
    if (typeof u !== "string" || !u) return null;
    try { var x = new URL(u, location.href); return (x.protocol === "http:" || x.protocol === "https:") ? x.href : null; }
    catch (e) { return null; }
  }
  function scrollEnd() { log.scrollTop = log.scrollHeight; }

  function applyLang(lang, dir) {
    lang = (typeof lang === "string" && /^[a-zA-Z]{2,3}(-[a-zA-Z0-9]{1,8})*$/.test(lang)) ? lang : "fr";
    if (dir !== "rtl" && dir !== "ltr") dir = /^(ar|he|fa|ur)\b/.test(lang) ? "rtl" : "ltr";
    document.documentElement.lang = lang;
    document.documentElement.dir = dir;
    var t = UI[lang.slice(0, 2)] || UI.fr;
    input.placeholder = t.ph; $("text-label").textContent = t.label;
    sendBtn.setAttribute("aria-label", t.send); sendBtn.title = t.send; $("typing-sr").textContent = t.typing;
    bell.setAttribute("aria-label", t.bell); bell.title = t.bell;
    store(LK, JSON.stringify({lang: lang, dir: dir}));
  }

  function renderMedia(m) {
    if (!m || typeof m !== "object") return null;
    var url = safeUrl(m.url), a;
    if (m.type === "image" && url) {
      var fig = el("figure"), img = el("img"), open = el("button", "enlarge");
      img.src = url; img.alt = m.caption ? String(m.caption) : ""; img.loading = "lazy";
      img.addEventListener("load", scrollEnd);
      open.type = "button"; open.title = "Agrandir · تكبير";
      open.addEventListener("click", function () { openViewer(url, img.alt, open); });
      open.appendChild(img);
      fig.appendChild(open);
      if (m.caption) fig.appendChild(el("figcaption", null, m.caption));
      return fig;
    }
    if (m.type === "document" && url) {
      var name = m.filename ? String(m.filename) : decodeURIComponent(url.split("?")[0].split("/").pop() || "document");
      a = el("a", "att", "📄 " + name); a.href = url; a.setAttribute("download", name);
      if (!m.caption) return a;
      // The caption says what to do with the file ("Add it to your calendar.").
      var doc = el("div", "doc");
      doc.appendChild(a);
      doc.appendChild(el("div", "cap", m.caption));
      return doc;
    }
    if (m.type === "location") {
      var lat = Number(m.latitude), lon = Number(m.longitude);
      if (!isFinite(lat) || !isFinite(lon) || Math.abs(lat) > 90 || Math.abs(lon) > 180) return null;
      a = el("a", "att", "📍 " + (m.label ? String(m.label) : lat.toFixed(5) + ", " + lon.toFixed(5)));
      a.href = "https://www.openstreetmap.org/?mlat=" + lat + "&mlon=" + lon + "#map=18/" + lat + "/" + lon;
      a.target = "_blank"; a.rel = "noopener noreferrer";
      return a;
    }
    return null;
  }

  // A picture tapped: shown full screen at its own size (a map is drawn larger than a phone
  // shows it in the chat); scroll or pinch to move around, tap it to fit it to the screen.
  function openViewer(url, alt, opener) {
    var box = el("div", "viewer"), shut = el("button", "viewer-close", "✕"), img = el("img");
    box.setAttribute("role", "dialog"); box.setAttribute("aria-modal", "true");
    if (alt) box.setAttribute("aria-label", alt);
    shut.type = "button"; shut.setAttribute("aria-label", "Fermer · إغلاق"); shut.title = "Fermer · إغلاق";
    img.src = url; img.alt = alt || "";
    function centre() { box.scrollLeft = (box.scrollWidth - box.clientWidth) / 2; box.scrollTop = (box.scrollHeight - box.clientHeight) / 2; }
    function close() { document.removeEventListener("keydown", onKey); box.remove(); if (opener) opener.focus(); }
    function onKey(ev) { if (ev.key === "Escape") close(); }
    img.addEventListener("load", centre);
    img.addEventListener("click", function () { box.classList.toggle("fit"); centre(); });
    shut.addEventListener("click", close);
    document.addEventListener("keydown", onKey);
    box.appendChild(img); box.appendChild(shut);
    document.body.appendChild(box);
    shut.focus();
  }

  // "Continue on WhatsApp / Telegram" links are made tappable; any other text stays text.
  var APP_LINK = /https:\/\/(?:wa\.me|t\.me)\/[A-Za-z0-9_]+\?(?:text|start)=[A-Za-z0-9_%]+/g;
  function para(text) {
    var p = el("p"), s = String(text), at = 0, m, a;
    APP_LINK.lastIndex = 0;
    while ((m = APP_LINK.exec(s)) !== null) {
      p.appendChild(document.createTextNode(s.slice(at, m.index)));
      a = el("a", "applink", m[0]); a.href = m[0]; a.target = "_blank"; a.rel = "noopener noreferrer";
      a.dir = "ltr";
      p.appendChild(a);
      at = m.index + m[0].length;
    }
    p.appendChild(document.createTextNode(s.slice(at)));
    return p;
  }

  // entry: {w: "user"|"bot", t: text, m: [media], c: [choices]} — plain data, never HTML
  function addBubble(e, save) {
    var b = el("div", "msg " + (e.w === "user" ? "user" : "bot"));
    b.dir = "auto";
    if (e.w !== "user") { var who = el("span", "sr", "Tadamon :"); who.dir = "ltr"; b.appendChild(who); } // own dir: ignored by dir=auto
    if (e.t) b.appendChild(para(e.t));
    (Array.isArray(e.m) ? e.m : []).forEach(function (m) { var n = renderMedia(m); if (n) b.appendChild(n); });
    if (!b.querySelector("p,figure,a")) return null;
    log.appendChild(b);
    if (save) { hist.push(e); saveHist(); }
    scrollEnd();
    return b;
  }
  function saveHist() { if (hist.length > MAX) hist = hist.slice(-MAX); store(HK, JSON.stringify(hist)); }

  function clearChoices() {
    Array.prototype.forEach.call(log.querySelectorAll(".choices"), function (n) { n.remove(); });
  }
  // The buttons of one reply, right under it: each reply keeps its own.
  function addChoices(list) {
    list = (Array.isArray(list) ? list : []).filter(function (c) { return c && c.id != null && c.label != null; });
    if (!list.length) return null;
    var row = el("div", "choices");
    row.setAttribute("role", "group");
    list.forEach(function (c) {
      var btn = el("button", null, c.label);
      btn.type = "button"; btn.dir = "auto"; btn.disabled = busy;
      btn.addEventListener("click", function () { send({choice: String(c.id)}, String(c.label)); });
      row.appendChild(btn);
    });
    log.appendChild(row);
    scrollEnd();
    return row;
  }

  function removeNotices() { Array.prototype.forEach.call(log.querySelectorAll(".notice"), function (n) { n.remove(); }); }
  function notice(text, retry) {
    removeNotices();
    var n = el("div", "notice", text);
    n.setAttribute("role", "alert"); n.dir = "auto";
    if (retry) {
      var b = el("button", null, "↻ Réessayer · أعد المحاولة");
      b.type = "button";
      b.addEventListener("click", function () { if (!busy && lastPayload) { n.remove(); post(lastPayload); } });
      n.appendChild(b);
    }
    log.appendChild(n);
    scrollEnd();
  }

  // The buttons of the last answer (the bot's messages since the person last wrote) are the
  // ones that can be tapped: shown again after a reload or a failed request.
  function showLastChoices() {
    clearChoices();
    var i = hist.length;
    while (i > 0 && hist[i - 1].w === "bot") i--;
    var shown = log.querySelectorAll(".msg"), first = shown.length - (hist.length - i);
    hist.slice(i).forEach(function (e, k) {
      if (!Array.isArray(e.c) || !e.c.length) return;
      var row = addChoices(e.c), after = shown[first + k];
      if (row && after && after.nextSibling !== row) log.insertBefore(row, after.nextSibling);
    });
    scrollEnd();
  }

  function renderReplies(replies) {
    clearChoices();
    replies.forEach(function (r) {
      if (!r || typeof r !== "object") return;
      var e = {w: "bot", t: typeof r.text === "string" ? r.text : "", m: Array.isArray(r.media) ? r.media : []};
      var choices = Array.isArray(r.choices) ? r.choices : [];
      if (choices.length) e.c = choices;
      if (addBubble(e, true) || choices.length) addChoices(choices);
    });
    saveHist();
  }

  function setBusy(b) {
    busy = b;
    input.disabled = b; sendBtn.disabled = b; menuBtn.disabled = b;
    typing.hidden = !b;
    log.setAttribute("aria-busy", b ? "true" : "false");
    Array.prototype.forEach.call(log.querySelectorAll(".choices button, .notice button"), function (n) { n.disabled = b; });
    if (b) scrollEnd();
  }

  function postJson(url, body, signal) {
    return fetch(url, {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body),
                       signal: signal, credentials: "same-origin"})
      .then(function (r) {
        return r.json().catch(function () { return null; }).then(function (d) { return {ok: r.ok, status: r.status, d: d}; });
      });
  }

  // The session is the server's: asked for once, kept in localStorage, asked for again when the
  // server no longer knows it. Resolves to {sid} or, when the server refused one, {refused: answer}.
  function session(signal) {
    if (sid) return Promise.resolve({sid: sid});
    return postJson(SESSIONS, {}, signal).then(function (res) {
      var token = res.d && res.d.session;
      if (res.status !== 201 || typeof token !== "string" || !TOKEN.test(token)) return {refused: res};
      sid = token; store(SK, sid);
      return {sid: sid};
    });
  }

  // The browser's language: the server answers a new person in it until they choose one.
  function browserLang() {
    var l = (navigator.languages && navigator.languages[0]) || navigator.language || "";
    return /^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8}){0,4}$/.test(l) ? l : null;
  }

  function exchange(payload, signal, again) {
    return session(signal).then(function (s) {
      if (!s.sid) return s.refused;
      var body = Object.assign({session: s.sid}, payload), lang = browserLang();
      if (lang) body.lang = lang;
      return postJson(API, body, signal).then(function (res) {
        if (res.status !== 401 || again) return res;
        sid = null; store(SK, ""); // unknown to the server (never issued, or erased): a new one
        return exchange(payload, signal, true);
      });
    });
  }

  function post(payload) {
    var refocus = document.activeElement === input || document.activeElement === sendBtn;
    setBusy(true);
    var ctrl = window.AbortController ? new AbortController() : null;
    var timer = ctrl ? setTimeout(function () { ctrl.abort(); }, 30000) : null;
    exchange(payload, ctrl ? ctrl.signal : undefined, false)
      .then(function (res) {
        clearTimeout(timer); setBusy(false);
        var d = (res.d && typeof res.d === "object") ? res.d : {};
        if (d.lang || d.dir) applyLang(d.lang || document.documentElement.lang, d.dir);
        if (Array.isArray(d.replies) && d.replies.length) {
          renderReplies(d.replies);
          if (!inboxChecked) { inboxChecked = true; pollInbox(); }
        } else {
          if (res.status === 429) notice("Trop de demandes, réessayez dans un instant · طلبات كثيرة، أعد المحاولة بعد قليل", true);
          else if (res.status >= 500) notice("Service indisponible, réessayez · الخدمة غير متاحة، أعد المحاولة", true);
          else if (!res.ok || !res.d) notice(typeof d.error === "string" && d.error ? d.error : "Erreur · خطأ (" + res.status + ")");
          showLastChoices();
        }
      }, function () {
        clearTimeout(timer); setBusy(false);
        notice("Connexion perdue — الاتصال مقطوع", true);
      })
      .then(function () { if (refocus) input.focus(); });
  }

  function send(payload, label) {
    if (busy) return;
    removeNotices();
    clearChoices();
    if (label) addBubble({w: "user", t: label}, true);
    // One id per message, kept on retry: the server ignores a message it has already handled.
    payload = Object.assign({id: newId()}, payload);
    lastPayload = payload;
    post(payload);
  }

  // ---- the inbox: what was queued for this person (reminders, offers, announcements) ----
  var polling = false, inboxTimer = null;
  // Each message kept for the person comes with its own buttons (a seat offer's); the buttons
  // already shown stay where they are.
  function showInbox(replies) {
    replies.forEach(function (r) {
      if (!r || typeof r !== "object") return;
      var e = {w: "bot", t: typeof r.text === "string" ? r.text : "", m: Array.isArray(r.media) ? r.media : []};
      var choices = Array.isArray(r.choices) ? r.choices : [];
      if (choices.length) e.c = choices;
      if (addBubble(e, true) || choices.length) addChoices(choices);
    });
    saveHist();
  }
  function pollInbox() {
    clearTimeout(inboxTimer);
    inboxTimer = setTimeout(pollInbox, POLL_MS);
    if (!sid || polling || busy || document.visibilityState === "hidden") return;
    polling = true;
    fetch(INBOX + "?session=" + encodeURIComponent(sid), {credentials: "same-origin", cache: "no-store"})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (d) {
        polling = false;
        if (!busy && d && Array.isArray(d.replies) && d.replies.length) showInbox(d.replies);
      }, function () { polling = false; });
  }
  document.addEventListener("visibilitychange", function () { if (document.visibilityState === "visible") pollInbox(); });

  // ---- Web Push: a notification when a message waits, if the person allows it ----
  var pushable = "serviceWorker" in navigator && "PushManager" in window && "Notification" in window && window.isSecureContext;
  function keyBytes(b64) {
    var s = atob((b64 + "===".slice((b64.length + 3) % 4)).replace(/-/g, "+").replace(/_/g, "/")), out = new Uint8Array(s.length), i;
    for (i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return out;
  }
  function belled(on) { bell.hidden = !pushable || on || Notification.permission === "denied"; }
  function keepSubscription(sub) {
    if (!sid || !sub) return Promise.resolve(false);
    return postJson(PUSH, {session: sid, subscription: sub.toJSON()}).then(function (res) { return res.status === 201; });
  }
  function subscribe() {
    return navigator.serviceWorker.ready.then(function (reg) {
      return reg.pushManager.getSubscription().then(function (sub) {
        if (sub) return sub;
        return fetch(PUSH, {credentials: "same-origin"}).then(function (r) { return r.json(); }).then(function (d) {
          return reg.pushManager.subscribe({userVisibleOnly: true, applicationServerKey: keyBytes(String(d.key))});
        });
      });
    }).then(keepSubscription);
  }
  if (pushable) {
    navigator.serviceWorker.register("/sw.js").then(function (reg) {
      return reg.pushManager.getSubscription();
    }).then(function (sub) {
      belled(!!sub);
      // This browser allowed it before: the subscription follows the current session.
      if (sub && Notification.permission === "granted") keepSubscription(sub);
    }).catch(function () { bell.hidden = true; });
    navigator.serviceWorker.addEventListener("message", function (ev) {
      if (ev.data && ev.data.type === "inbox") pollInbox();
    });
    bell.addEventListener("click", function () {
      Notification.requestPermission().then(function (p) {
        if (p !== "granted") { belled(false); return; }
        return subscribe().then(function (ok) { belled(!!ok); });
      }).catch(function () { belled(false); });
    });
  }

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var t = input.value.trim();
    if (!t || busy) return;
    input.value = "";
    send({text: t.slice(0, 1000)}, t);
  });
  menuBtn.addEventListener("click", function () { send({text: "menu"}, "menu"); });

  // ---- start-up ----
  var saved = null;
  try { saved = JSON.parse(load(LK) || "null"); } catch (e) { saved = null; }
  applyLang(saved && saved.lang, saved && saved.dir);

  var params = new URLSearchParams(location.search);
  var startPayload = (params.get("start") || "").trim().slice(0, 256);
  if (params.has("start") && window.history && history.replaceState) {
    params.delete("start");
    var qs = params.toString();
    history.replaceState(null, "", location.pathname + (qs ? "?" + qs : "") + location.hash);
  }

  sid = load(SK);
  var fresh = !sid || !TOKEN.test(sid);
  if (fresh) {
    sid = null; store(HK, "[]"); // the session comes with the first message
  } else {
    try { hist = JSON.parse(load(HK) || "[]"); } catch (e) { hist = []; }
    if (!Array.isArray(hist)) hist = [];
    hist = hist.filter(function (e) { return e && typeof e === "object" && (e.w === "user" || e.w === "bot"); }).slice(-MAX);
    hist.forEach(function (e) { addBubble(e, false); });
    if (!startPayload) showLastChoices();
  }
  if (fresh || startPayload || !hist.length) send({start: startPayload}, null);
  else { inboxChecked = true; pollInbox(); } // back on the page: what was kept meanwhile
  if (!inboxTimer) inboxTimer = setTimeout(pollInbox, POLL_MS);
})();
