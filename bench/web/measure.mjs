#!/usr/bin/env node
// The web app's figures (issue 21), measured in Debian's Chromium through playwright-core
// against a running stack (bench/web/run starts one and seeds it):
//
//   home     navigation to the home feed with every card image in the viewport decoded
//            (performance.now() in the page, i.e. from navigation start); a fresh browser
//            context each time, so nothing is cached: a newcomer's first visit;
//   watch    navigation to a public video's watch page until the player has its first
//            frame (video.readyState >= HAVE_CURRENT_DATA); fresh context each time;
//   comment  a comment posted by one user (GraphQL over HTTP, timed in this process) until
//            it is in another context's comment list (a MutationObserver stamps it with
//            Date.now(): same machine, same clock).
//
//   KINO_URL=… KINO_VIDEO=<public video id> KINO_TOKEN=<access token> node bench/web/measure.mjs
//
// Prints one JSON object: for each figure the samples' median, p90 and max in ms.
import { createRequire } from 'node:module';

// playwright-core comes from web/'s dependencies (npm ci there), not a copy of its own.
const require = createRequire(new URL('../../web/package.json', import.meta.url));
const { chromium } = require('playwright-core');

const BASE = process.env.KINO_URL.replace(/\/$/, '');
const VIDEO = process.env.KINO_VIDEO;
const TOKEN = process.env.KINO_TOKEN;
const RUNS = Number(process.env.RUNS ?? 10);
const COMMENTS = Number(process.env.COMMENTS ?? 20);

const browser = await chromium.launch({
  executablePath: process.env.KINO_CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--autoplay-policy=no-user-gesture-required', '--mute-audio'],
});

function summary(samples) {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q) => s[Math.min(s.length - 1, Math.floor(s.length * q))];
  return { n: s.length, median: Math.round(at(0.5)), p90: Math.round(at(0.9)), max: Math.round(s[s.length - 1]) };
}

async function fresh(fn) {
  const context = await browser.newContext({ baseURL: BASE, viewport: { width: 1280, height: 800 } });
  try {
    return await fn(await context.newPage());
  } finally {
    await context.close();
  }
}

const home = [];
for (let i = 0; i < RUNS; i++) {
  home.push(await fresh(async (page) => {
    await page.goto('/');
    const done = await page.waitForFunction(() => {
      const visible = [...document.querySelectorAll('.card img')].filter((img) => img.getBoundingClientRect().top < innerHeight);
      return visible.length > 0 && visible.every((img) => img.complete && img.naturalWidth > 0) && performance.now();
    }, null, { polling: 'raf', timeout: 30_000 });
    return done.jsonValue();
  }));
}

const watch = [];
for (let i = 0; i < RUNS; i++) {
  watch.push(await fresh(async (page) => {
    await page.goto(`/watch/${VIDEO}`);
    const done = await page.waitForFunction(() => {
      const video = document.querySelector('video');
      return video && video.readyState >= 2 && performance.now();
    }, null, { polling: 'raf', timeout: 30_000 });
    return done.jsonValue();
  }));
}

const comment = await fresh(async (page) => {
  await page.goto(`/watch/${VIDEO}`);
  await page.waitForSelector('#comment-list', { state: 'attached', timeout: 30_000 });
  await page.evaluate(() => {
    window.__seen = {};
    new MutationObserver(() => {
      for (const el of document.querySelectorAll('.comment-body')) window.__seen[el.textContent] ??= Date.now();
    }).observe(document.body, { childList: true, subtree: true, characterData: true });
  });
  await page.waitForTimeout(1000); // the live subscription is up
  const samples = [];
  for (let i = 0; i < COMMENTS; i++) {
    const body = `bench comment ${Date.now()} ${i}`;
    const posted = Date.now();
    const response = await fetch(`${BASE}/media/graphql`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify({
        query: 'mutation($v: ID!, $b: String!) { addComment(videoId: $v, body: $b) { id } }',
        variables: { v: VIDEO, b: body },
      }),
    });
    const answer = await response.json();
    if (answer.errors) throw new Error(JSON.stringify(answer.errors));
    const seen = await page.waitForFunction((b) => window.__seen[b], body, { timeout: 10_000 });
    samples.push((await seen.jsonValue()) - posted);
    await page.waitForTimeout(200);
  }
  return samples;
});

await browser.close();
console.log(JSON.stringify({ home: summary(home), watch: summary(watch), comment: summary(comment) }));
