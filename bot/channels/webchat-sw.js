// The web chat's service worker: shows a push notification when a message waits in the inbox,
// and brings the page forward when it is tapped. The message itself is fetched by the page.
"use strict";

self.addEventListener("install", function () { self.skipWaiting(); });
self.addEventListener("activate", function (ev) { ev.waitUntil(self.clients.claim()); });

self.addEventListener("push", function (ev) {
  var d = {};
  try { d = ev.data ? ev.data.json() : {}; } catch (e) { d = {}; }
  if (!d || typeof d !== "object") d = {};
  var title = typeof d.title === "string" && d.title ? d.title : "Tadamon · تضامن";
  var options = {body: typeof d.body === "string" ? d.body : "", tag: "tadamon-inbox", renotify: true,
                 lang: typeof d.lang === "string" ? d.lang : "", dir: d.dir === "rtl" ? "rtl" : "ltr"};
  ev.waitUntil(self.clients.matchAll({type: "window", includeUncontrolled: true}).then(function (list) {
    list.forEach(function (c) { c.postMessage({type: "inbox"}); });
    return self.registration.showNotification(title, options);
  }));
});

self.addEventListener("notificationclick", function (ev) {
  ev.notification.close();
  ev.waitUntil(self.clients.matchAll({type: "window", includeUncontrolled: true}).then(function (list) {
    for (var i = 0; i < list.length; i++) {
      if (new URL(list[i].url).origin === self.location.origin && "focus" in list[i]) {
        list[i].postMessage({type: "inbox"});
        return list[i].focus();
      }
    }
    return self.clients.openWindow("/");
  }));
});
