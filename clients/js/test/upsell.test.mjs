// The package's behaviour against a fake window: consent, fields, batching and retries.
// Run by `npm test` (node's test runner); tests/unit/test_js_client.py runs it in `make test`.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import vm from "node:vm";

import { createUpsell } from "../dist/upsell.js";

const KEY = "upk_test";

/** A window whose fetch answers the snippet config with `consent` and records every call;
 * timers run only when the test says so. */
function fakeWindow({ consent = "not_required", shopify = undefined, collect = 202 } = {}) {
  const calls = [];
  const stored = new Map();
  const timers = [];
  const listeners = {};
  const docListeners = {};
  const w = {
    calls,
    stored,
    timers,
    fetch(url, init) {
      calls.push({ url, init });
      if (url.includes("/v1/snippet-config")) {
        return Promise.resolve({
          ok: true,
          status: 200,
          headers: { get: () => null },
          json: () => Promise.resolve({ shop_id: "s1", consent }),
        });
      }
      return Promise.resolve({
        ok: collect < 300,
        status: collect,
        headers: { get: (h) => (h === "Retry-After" ? "3" : null) },
        json: () => Promise.resolve({}),
      });
    },
    navigator: {},
    localStorage: {
      getItem: (k) => (stored.has(k) ? stored.get(k) : null),
      setItem: (k, v) => stored.set(k, v),
      removeItem: (k) => stored.delete(k),
    },
    crypto: { randomUUID: () => `id-${calls.length}-${Math.random()}`, getRandomValues: (a) => a },
    document: {
      visibilityState: "visible",
      addEventListener: (type, fn) => ((docListeners[type] ||= []).push(fn)),
    },
    addEventListener: (type, fn) => ((listeners[type] ||= []).push(fn)),
    setTimeout: (fn, ms) => timers.push({ fn, ms }) && timers.length,
    clearTimeout: () => {},
    Shopify: shopify,
    fire: (type, detail) => (docListeners[type] || []).forEach((fn) => fn({ detail })),
  };
  return w;
}

const settle = () => new Promise((resolve) => setImmediate(resolve));
const collects = (w) => w.calls.filter((c) => c.url.includes("/v1/collect"));
const sent = (w) => collects(w).flatMap((c) => JSON.parse(c.init.body).events);

function started(w) {
  const upsell = createUpsell(w);
  upsell.init({ endpoint: "https://c.example/", key: KEY, shop: "s1" });
  return upsell;
}

test("without a consent setting, events go and a click stores a visitor id", async () => {
  const w = fakeWindow();
  const upsell = started(w);
  await settle();
  upsell.view({ group: "g", variation: "a" });
  upsell.click({ group: "g", variation: "a" });
  upsell.flush();
  const events = sent(w);
  assert.deepEqual(events.map((e) => e.kind), ["banner_view", "banner_click"]);
  assert.equal(events[1].subscriber_id, w.stored.get("upsell.visitor"));
  assert.equal(collects(w)[0].url, "https://c.example/v1/collect?key=upk_test");
});

test("consent required: nothing stored and nothing sent before consent(true)", async () => {
  const w = fakeWindow({ consent: "required" });
  const upsell = started(w);
  await settle();
  upsell.view({ group: "g", variation: "a" });
  upsell.click({ group: "g", variation: "a" });
  upsell.flush();
  w.timers.forEach((t) => t.fn());
  assert.equal(collects(w).length, 0);
  assert.equal(w.stored.size, 0);
  upsell.consent(true);
  const events = sent(w);
  assert.equal(events.length, 2);
  assert.equal(JSON.parse(collects(w)[0].init.body).consent, true);
  assert.ok(w.stored.get("upsell.visitor"));
});

test("consent(false) drops what waits, sends nothing after and removes the visitor id", async () => {
  const w = fakeWindow({ consent: "required" });
  const upsell = started(w);
  await settle();
  w.stored.set("upsell.visitor", "anon-old");
  upsell.view({ group: "g", variation: "a" });
  upsell.consent(false);
  assert.equal(upsell.click({ group: "g", variation: "a" }), null);
  upsell.flush();
  assert.equal(collects(w).length, 0);
  assert.equal(w.stored.size, 0);
});

test("before the collector answers, events wait even when no consent is needed", () => {
  const w = fakeWindow();
  const upsell = started(w); // the config answer has not arrived (no settle)
  upsell.view({ group: "g", variation: "a" });
  upsell.flush();
  assert.equal(collects(w).length, 0);
});

test("Shopify's Customer Privacy API decides when present", async () => {
  let allowed = false;
  const shopify = { customerPrivacy: { analyticsProcessingAllowed: () => allowed } };
  const w = fakeWindow({ shopify });
  const upsell = started(w);
  await settle();
  upsell.click({ group: "g", variation: "a" });
  upsell.flush();
  assert.equal(collects(w).length, 0, "analyticsProcessingAllowed() false: nothing goes");
  assert.equal(w.stored.size, 0);
  allowed = true;
  w.fire("visitorConsentCollected", { analyticsAllowed: true });
  assert.equal(sent(w).length, 1);
  assert.equal(JSON.parse(collects(w)[0].init.body).consent, true);
});

test("an unknown field throws instead of vanishing (the old banner: -> banner_id)", async () => {
  const w = fakeWindow();
  const upsell = started(w);
  await settle();
  assert.throws(
    () => upsell.view({ group: "g", variation: "a", banner: "annual-20" }),
    /unknown field "banner"/,
  );
  assert.throws(() => upsell.view({ group: "g" }), /needs group, variation/);
  assert.throws(
    () => createUpsell(fakeWindow()).init({ endpoint: "e", key: "k", shop: "s", shp: 1 }),
    /unknown field "shp"/,
  );
});

test("a 503 is retried after Retry-After with the same event ids", async () => {
  const w = fakeWindow({ collect: 503 });
  const upsell = started(w);
  await settle();
  upsell.view({ group: "g", variation: "a" });
  upsell.flush();
  await settle();
  const retry = w.timers.find((t) => t.ms === 3000);
  assert.ok(retry, JSON.stringify(w.timers.map((t) => t.ms)));
  retry.fn();
  const [first, second] = collects(w).map((c) => JSON.parse(c.init.body).events[0].event_id);
  assert.equal(first, second);
});

test("the collector's /v1/upsell.js is this code, wrapped for a page", async () => {
  const source = readFileSync(new URL("../../../stream/collector/static/upsell.js", import.meta.url));
  const w = fakeWindow({ consent: "required" });
  vm.runInNewContext(source.toString(), { window: w, Uint8Array, Promise, JSON, Object, Error });
  w.upsell.init({ endpoint: "https://c.example", key: KEY, shop: "s1" });
  await settle();
  w.upsell.view({ group: "g", variation: "a" });
  w.upsell.flush();
  assert.equal(collects(w).length, 0);
  assert.throws(() => w.upsell.view({ group: "g", variation: "a", banner: "x" }), /banner/);
  w.upsell.consent(true);
  assert.equal(sent(w).length, 1);
});
