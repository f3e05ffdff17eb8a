// Writes the collector's /v1/upsell.js (stream/collector/static/upsell.js) from this package's
// source: src/upsell.ts compiled by tsc without comments (tsconfig.snippet.json), `export`
// dropped, indentation halved, wrapped in a function that sets window.upsell. With --check it
// writes nothing and exits 1 when the committed file differs (npm test runs it, so the page's
// snippet and the npm package cannot drift apart).
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(dirname(fileURLToPath(import.meta.url)));
const target = join(here, "..", "..", "stream", "collector", "static", "upsell.js");
const version = JSON.parse(readFileSync(join(here, "package.json"), "utf8")).version;

execFileSync(process.execPath, [join(here, "node_modules", "typescript", "bin", "tsc"), "-p",
  join(here, "tsconfig.snippet.json")], { stdio: "inherit" });
const code = readFileSync(join(here, "build", "snippet", "upsell.js"), "utf8")
  .replace(/^export /gm, "")
  .replace(/^( {4})+/gm, (indent) => " ".repeat(indent.length / 2))
  .trimEnd()
  .split("\n")
  .map((line) => (line ? "  " + line : line))
  .join("\n");
const snippet = `/* upsell.js ${version} for upsell-stream: banner views and clicks from the browser,
 * consent-aware. Built from clients/js/src/upsell.ts (npm @upsell-stream/browser) by
 * clients/js/scripts/iife.mjs: edit the source, not this file. Apache-2.0. */
(function (w) {
  "use strict";
${code}
  w.upsell = createUpsell(w);
})(window);
`;
if (process.argv.includes("--check")) {
  if (readFileSync(target, "utf8") !== snippet) {
    console.error(`${target} is not built from src/upsell.ts: run npm run snippet`);
    process.exit(1);
  }
} else {
  writeFileSync(target, snippet);
  console.log(`wrote ${target} (${snippet.length} bytes)`);
}
