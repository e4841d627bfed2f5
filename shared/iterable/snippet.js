/*
 * cartrelay page-view snippet. Paste on every storefront page, with your endpoint and account:
 *
 *   <script src="/path/to/snippet.js" data-endpoint="https://API/track/ACCOUNT" async></script>
 *
 * On a page that knows the shopper (logged in, order confirmation), identify the browser:
 *
 *   <script>window.cartrelay = window.cartrelay || []; cartrelay.push(["identify", "ann@example.com"]);</script>
 *
 * It sends the page URL, title and referrer with a random visitor id kept in this site's
 * localStorage (no cookie, nothing shared across sites). It sends nothing when the browser
 * asks not to be tracked (Global Privacy Control or Do Not Track), or after
 * cartrelay.push(["optOut"]). Page views of a browser never identified are dropped after 30 days.
 */
(function () {
  var script = document.currentScript;
  var endpoint = script && script.getAttribute("data-endpoint");
  if (!endpoint || navigator.globalPrivacyControl || navigator.doNotTrack === "1") return;
  var store = window.localStorage;
  if (store.getItem("cartrelay_optout") === "1") return;
  var visitor = store.getItem("cartrelay_visitor");
  if (!visitor) {
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    visitor = Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
    store.setItem("cartrelay_visitor", visitor);
  }
  var email = null;
  function send() {
    var body = JSON.stringify({ visitor: visitor, url: location.href, title: document.title,
      referrer: document.referrer || undefined, email: email || undefined });
    // text/plain keeps the request simple (no CORS preflight); the endpoint reads JSON anyway.
    if (!(navigator.sendBeacon && navigator.sendBeacon(endpoint, new Blob([body], { type: "text/plain" })))) {
      fetch(endpoint, { method: "POST", body: body, keepalive: true, credentials: "omit" });
    }
  }
  var queued = window.cartrelay || [];
  window.cartrelay = { push: function (cmd) {
    if (cmd[0] === "identify") { email = cmd[1]; }
    if (cmd[0] === "optOut") { store.setItem("cartrelay_optout", "1"); }
  } };
  for (var i = 0; i < queued.length; i++) window.cartrelay.push(queued[i]);
  // Wait for the page's own scripts, which may identify the shopper, before sending.
  function go() { if (store.getItem("cartrelay_optout") !== "1") send(); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", go); else go();
})();
