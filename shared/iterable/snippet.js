/*
 * cartrelay page-view snippet, served by cartrelay at /track/cartrelay.js. Paste on every
 * storefront page (the pages must be on the account's allowed_domains):
 *
 *   <script src="https://API/track/cartrelay.js" data-account="ACCOUNT" async></script>
 *
 * On a page that knows the shopper (logged in), identify the browser with a token your server
 * signs with the account's tracking secret (see docs/iterable.md, "Identity tokens"):
 *
 *   <script>window.cartrelay = window.cartrelay || []; cartrelay.push(["identify", "v1.1767225600.YW5u...."]);</script>
 *
 * On the order confirmation page, claim the order instead; cartrelay ties the browser to the
 * buyer once it holds that order, paid within a day, and only for the first browser to claim it:
 *
 *   <script>window.cartrelay = window.cartrelay || []; cartrelay.push(["order", "ORDER-ID", "buyer@example.com"]);</script>
 *
 * When the shopper's cart changes (and on the cart page), report its contents; prices are whole
 * minor units (cents), and an empty items list is an emptied cart. Carts of identified browsers
 * reach Iterable as the profile's shoppingCartItems:
 *
 *   <script>window.cartrelay = window.cartrelay || []; cartrelay.push(["cart", {currency: "USD",
 *     url: "https://shop.example.com/cart", items: [{sku: "TEE-1", name: "T-shirt", price: 1500, quantity: 2,
 *     url: "https://shop.example.com/tee", image: "https://cdn.example.com/tee.jpg"}]}]);</script>
 *
 * It sends the page URL, title and referrer with a random visitor id kept in this site's
 * localStorage (no cookie, nothing shared across sites). It sends nothing when the browser
 * asks not to be tracked (Global Privacy Control or Do Not Track), or after
 * cartrelay.push(["optOut"]). Page views of a browser never identified are dropped after 30 days.
 */
(function () {
  var script = document.currentScript;
  if (!script || navigator.globalPrivacyControl || navigator.doNotTrack === "1") return;
  var endpoint = script.getAttribute("data-endpoint");
  var account = script.getAttribute("data-account");
  if (!endpoint && account && script.src) endpoint = script.src.replace(/\/track\/cartrelay\.js(\?.*)?$/, "/track/" + account);
  if (!endpoint) return;
  var store = window.localStorage;
  if (store.getItem("cartrelay_optout") === "1") return;
  var visitor = store.getItem("cartrelay_visitor");
  if (!visitor) {
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    visitor = Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
    store.setItem("cartrelay_visitor", visitor);
  }
  var identity = null, order = null, ready = false, cart = null;
  function post(body) {
    var text = JSON.stringify(body);
    // text/plain keeps the request simple (no CORS preflight); the endpoint reads JSON anyway.
    if (!(navigator.sendBeacon && navigator.sendBeacon(endpoint, new Blob([text], { type: "text/plain" })))) {
      fetch(endpoint, { method: "POST", body: text, keepalive: true, credentials: "omit" });
    }
  }
  function send() {
    post({ visitor: visitor, url: location.href, title: document.title, referrer: document.referrer || undefined,
      identity: identity || undefined, order: order || undefined });
    if (order) {
      // The order may reach cartrelay after this page does: claim it once more a little later.
      var claim = order;
      setTimeout(function () { post({ visitor: visitor, order: claim }); }, 20000);
    }
  }
  var queued = window.cartrelay || [];
  window.cartrelay = { push: function (cmd) {
    if (cmd[0] === "identify") {
      if (typeof cmd[1] === "string" && cmd[1].indexOf("@") < 0) identity = cmd[1];
      else if (window.console) console.warn("cartrelay: identify takes a token your server signs, not an address; see docs/iterable.md");
    }
    if (cmd[0] === "order" && cmd[1] && cmd[2]) order = { id: String(cmd[1]), email: String(cmd[2]) };
    if (cmd[0] === "optOut") { store.setItem("cartrelay_optout", "1"); }
    if (cmd[0] === "cart" && cmd[1] && typeof cmd[1] === "object") {
      cart = cmd[1];
      if (ready) sendCart();
    }
  } };
  // A cart waits for the page view, so that a token the page passes later still identifies it;
  // of carts pushed before then, only the latest is sent.
  function sendCart() {
    if (cart && store.getItem("cartrelay_optout") !== "1") post({ visitor: visitor, cart: cart, identity: identity || undefined });
    cart = null;
  }
  for (var i = 0; i < queued.length; i++) window.cartrelay.push(queued[i]);
  // Wait for the page's own scripts, which may identify the shopper, before sending.
  function go() {
    if (store.getItem("cartrelay_optout") !== "1") send();
    ready = true;
    sendCart();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", go); else go();
})();
