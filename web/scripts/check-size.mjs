// Fails the build when the home page's initial JavaScript (the entry script and what
// index.html preloads) is over its budget, gzipped. hls.js and tus-js-client must stay in
// chunks loaded by their pages.
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';

const BUDGET = 200 * 1024;
const dist = new URL('../dist/', import.meta.url).pathname;
const html = readFileSync(join(dist, 'index.html'), 'utf8');
const files = [...html.matchAll(/(?:src|href)="\/(assets\/[^"]+\.js)"/g)].map((m) => m[1]);
let total = 0;
for (const f of files) {
  const code = readFileSync(join(dist, f));
  if (/Tus-Resumable|hlsManifestParsed/.test(code.toString('utf8'))) throw new Error(`${f}: hls.js or tus-js-client is on the home page`);
  const gz = gzipSync(code, { level: 9 }).length;
  total += gz;
  console.log(`  ${f}  ${(code.length / 1024).toFixed(1)} KiB, ${(gz / 1024).toFixed(1)} KiB gzipped`);
}
console.log(`home page initial JS: ${(total / 1024).toFixed(1)} KiB gzipped (budget ${BUDGET / 1024} KiB)`);
if (files.length === 0) throw new Error('no script found in dist/index.html');
if (total > BUDGET) {
  console.error('over budget');
  process.exit(1);
}
