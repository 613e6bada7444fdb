/* beacon.js: what Beacon knows of this visitor, for this page (GET /v1/personalize).
 *
 *   <script async src="https://BEACON/v1/beacon.js" data-write-key="WRITE_KEY"></script>
 *
 * Reads the anonymous id analytics.js or the Snowplow tracker already set, asks
 * Beacon once, and fills the page's no-code blocks:
 *   <div data-beacon-segment="cart_abandoners" hidden>...</div>  shown to members only
 *   <div data-beacon-fallback="cart_abandoners">...</div>       hidden when that shows
 *   <span data-beacon-trait="first_name">there</span>           text set to the trait
 * and exposes `window.beacon.ready` (a Promise of the answer) and
 * `beacon.personalize({anonymousId, userId, userHash})`. It is loaded async, never
 * blocks rendering, and on any error (network, timeout, refusal) leaves the default
 * content as it is and resolves with {personalized: false, ...}.
 * A userId is used only with userHash, the HMAC your backend computes (docs/personalize.md).
 */
(function (window, document) {
  "use strict";
  var script = document.currentScript;
  var data = (script && script.dataset) || {};
  var config = window.beaconConfig || {};
  var writeKey = config.writeKey || data.writeKey || "";
  var endpoint = (config.endpoint || data.endpoint ||
    (script && script.src ? new URL(script.src, location.href).origin : "")).replace(/\/$/, "");
  var timeoutMs = Number(config.timeoutMs || data.timeoutMs || 1500);
  var DEFAULTS = {personalized: false, segments: [], traits: {}, scores: {},
    recommendations: [], persona: null, experiments: {}, verified: false};

  function stored(name) {
    try {
      var raw = window.localStorage.getItem(name);
      if (raw) { try { return JSON.parse(raw); } catch (e) { return raw; } }
    } catch (e) { /* storage blocked */ }
    var match = document.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
    if (!match) return null;
    var value = decodeURIComponent(match[1]);
    try { return JSON.parse(value); } catch (e) { return value; }
  }

  function snowplowId() {
    // The JS tracker's first-party cookie `_sp_id.<hash>`: the domain user id comes first.
    var match = document.cookie.match(/(?:^|; )_sp_id\.[^=]+=([^.;]+)/);
    return match ? decodeURIComponent(match[1]) : null;
  }

  function visitor() {
    var found = {anonymousId: null, userId: null};
    var analytics = window.analytics;
    try {
      if (analytics && typeof analytics.user === "function" && analytics.user()) {
        found.anonymousId = analytics.user().anonymousId();
        found.userId = analytics.user().id();
      }
    } catch (e) { /* not loaded yet */ }
    found.anonymousId = found.anonymousId || stored("ajs_anonymous_id") || snowplowId();
    found.userId = found.userId || stored("ajs_user_id");
    return found;
  }

  function fetchDecision(who) {
    if (!writeKey || !endpoint || !window.fetch) return Promise.resolve(DEFAULTS);
    var query = new URLSearchParams({writeKey: writeKey});
    if (who.anonymousId) query.set("anonymousId", String(who.anonymousId));
    var userHash = who.userHash || config.userHash || data.userHash;
    if (who.userId && userHash) {
      query.set("userId", String(who.userId));
      query.set("userHash", String(userHash));
    }
    // The key in the query string keeps this a simple request: no CORS preflight.
    var controller = window.AbortController ? new AbortController() : null;
    var timer = setTimeout(function () { if (controller) controller.abort(); }, timeoutMs);
    return window.fetch(endpoint + "/v1/personalize?" + query.toString(), {
      credentials: "omit", signal: controller ? controller.signal : undefined
    }).then(function (response) {
      if (!response.ok) throw new Error("personalize answered " + response.status);
      return response.json();
    }).then(function (answer) {
      return answer && typeof answer === "object" ? answer : DEFAULTS;
    }).catch(function () {
      return DEFAULTS;
    }).finally(function () { clearTimeout(timer); });
  }

  function apply(answer) {
    try {
      var segments = answer.personalized ? (answer.segments || []) : [];
      var traits = answer.personalized ? (answer.traits || {}) : {};
      var blocks = document.querySelectorAll("[data-beacon-segment]");
      var shown = {};
      for (var i = 0; i < blocks.length; i++) {
        var name = blocks[i].getAttribute("data-beacon-segment");
        var member = segments.indexOf(name) >= 0;
        blocks[i].hidden = !member;
        if (member) shown[name] = true;
      }
      var fallbacks = document.querySelectorAll("[data-beacon-fallback]");
      for (var j = 0; j < fallbacks.length; j++) {
        fallbacks[j].hidden = !!shown[fallbacks[j].getAttribute("data-beacon-fallback")];
      }
      var fields = document.querySelectorAll("[data-beacon-trait]");
      for (var k = 0; k < fields.length; k++) {
        var value = traits[fields[k].getAttribute("data-beacon-trait")];
        // Text only, never markup: a trait is what a visitor typed.
        if (value !== undefined && value !== null && typeof value !== "object") {
          fields[k].textContent = String(value);
        }
      }
      document.documentElement.setAttribute("data-beacon", answer.personalized ? "personalized" : "default");
    } catch (e) { /* the default content stays */ }
    return answer;
  }

  function whenIdentified() {
    // analytics.js sets its anonymous id as it loads: wait for it briefly, not forever.
    return new Promise(function (resolve) {
      var waited = 0;
      (function look() {
        var who = visitor();
        if (who.anonymousId || waited >= 1000) return resolve(who);
        waited += 50;
        setTimeout(look, 50);
      })();
    });
  }

  function personalize(who) {
    var lookup = who ? Promise.resolve(who) : whenIdentified();
    return lookup.then(fetchDecision).then(apply).catch(function () { return apply(DEFAULTS); });
  }

  function start() { beacon.ready = personalize(); return beacon.ready; }

  var beacon = window.beacon = window.beacon || {};
  beacon.personalize = personalize;
  beacon.refresh = start;
  beacon.defaults = DEFAULTS;
  if (document.readyState === "loading") {
    beacon.ready = new Promise(function (resolve) {
      document.addEventListener("DOMContentLoaded", function () { resolve(start()); });
    });
  } else {
    start();
  }
})(window, document);
