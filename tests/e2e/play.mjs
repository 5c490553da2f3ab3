// Plays player-page URLs in headless Chromium and prints one JSON result on stdout.
//
// Run from web/ so playwright-core resolves from web/node_modules:
//   cd web && PLAY_CONFIG='{"cases": [{"name": "aac", "url": "http://127.0.0.1:8080/?..."}]}' \
//     node ../tests/e2e/play.mjs
//
// PLAY_CONFIG: cases (name, url), minSeconds (playback to reach, default 10), timeoutMs (per
// case, default 60000), chromium (default /usr/bin/chromium), screenshotDir (optional: a PNG of
// each page when done), allowOrigins (more origins the pages may reach, e.g. a second CDN
// pathway), endPlayback (call the page's window.stopPlayback() when done: it reports the end),
// afterSignalSeconds (see below), exercise (see below). All cases play at once, each in its own
// browser context.
// Requests to any origin but the cases' own and allowOrigins are aborted and reported.
//
// With afterSignalSeconds, each case that reaches minSeconds prints a line
// {"reached": name, "state": ..., "requests": ...} and waits for a line on stdin (the caller
// changes the world meanwhile, e.g. stops a server); then it must play afterSignalSeconds
// more (within timeoutMs), and its result has "signal": {currentTime, bufferedEnd, requests,
// errors} as of then.
//
// With exercise {switchEverySeconds, seekTo: [seconds, ...], playAfterSeekSeconds}, a case that
// reached minSeconds then switches hls.js to the next level every switchEverySeconds of wall
// time, and seeks to each of seekTo in turn, playing playAfterSeekSeconds from each; its result
// has "exercise": {switches, seeks} (the levels forced and the positions reached).
import { createRequire } from "node:module";
import { join } from "node:path";

const require = createRequire(join(process.cwd(), "package.json"));
const { chromium } = require("playwright-core");

const config = JSON.parse(process.env.PLAY_CONFIG || "{}");
const cases = config.cases || [];
const minSeconds = config.minSeconds ?? 10;
const timeoutMs = config.timeoutMs ?? 60000;
const afterSignalSeconds = config.afterSignalSeconds ?? null;
const exercise = config.exercise ?? null;
const origins = new Set([
  ...cases.map((c) => new URL(c.url).origin),
  ...(config.allowOrigins || []).map((o) => new URL(o).origin),
]);

// The whole run is bounded even if Chromium hangs: exit with what we know.
const runMs = (afterSignalSeconds === null && exercise === null ? 1 : 2) * timeoutMs + 30000;
const watchdog = setTimeout(() => {
  console.log(JSON.stringify({ error: `play.mjs gave up after ${runMs} ms` }));
  process.exit(3);
}, runMs);

// Lines on stdin, one per signal awaited (only read when afterSignalSeconds is set).
const stdinLines = [];
const stdinWaiters = [];
if (afterSignalSeconds !== null) {
  const { createInterface } = await import("node:readline");
  createInterface({ input: process.stdin }).on("line", (line) => {
    const waiter = stdinWaiters.shift();
    if (waiter) waiter(line);
    else stdinLines.push(line);
  });
}
const nextLine = () =>
  stdinLines.length ? Promise.resolve(stdinLines.shift()) : new Promise((r) => stdinWaiters.push(r));
const snapshot = (page) => page.evaluate(() => JSON.parse(JSON.stringify(window.playerState || null)));

const browser = await chromium.launch({
  executablePath: config.chromium || "/usr/bin/chromium",
  headless: true,
  timeout: 30000,
  // playwright-core starts it with a new, empty profile directory of its own.
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-proxy-server",
    // Nothing but loopback: every host name fails to resolve, IP literals are used as given.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--autoplay-policy=no-user-gesture-required",
  ],
});

async function play({ name, url }) {
  const context = await browser.newContext();
  const blocked = [];
  await context.route(
    (u) => !origins.has(u.origin),
    (route) => {
      blocked.push(route.request().url());
      return route.abort();
    },
  );
  const page = await context.newPage();
  const requests = {
    keys: 0, segments: 0, playlists: 0, steering: 0, segmentsByOrigin: {}, segmentServers: {},
    adLists: 0, adSegments: 0,
  };
  const failed = [];
  const pageErrors = [];
  page.on("request", (r) => {
    const path = new URL(r.url()).pathname;
    // Everything a session fetches is under /v1/s/{token}/: keys/{id}, {rendition}/{file}.
    // Ad breaks (cdn_edge/ads): asset lists and the ads' own segments.
    if (/^\/v1\/s\/[^/]+\/ads\/breaks\//.test(path)) requests.adLists += 1;
    if (/^\/v1\/s\/[^/]+\/ads\/\d+\/.*\/(init\.mp4|seg_\d+\.m4s)$/.test(path)) requests.adSegments += 1;
    if (/^\/v1\/s\/[^/]+\/keys\//.test(path)) requests.keys += 1;
    else if (/^\/v1\/s\/[^/]+\/[^/]+\/(init\.mp4|seg_\d+\.m4s)$/.test(path)) {
      requests.segments += 1;
      const origin = new URL(r.url()).origin;
      requests.segmentsByOrigin[origin] = (requests.segmentsByOrigin[origin] || 0) + 1;
    } else if (path.startsWith("/v1/steer/")) {
      requests.steering += 1;
      requests.steeringUrl = r.url();
    }
    if (path.endsWith("/main.m3u8") && !requests.playlistUrl) requests.playlistUrl = r.url();
    else if (path.endsWith(".m3u8")) requests.playlists += 1;
  });
  page.on("response", (r) => {
    if (r.status() >= 400) failed.push(`${r.status()} ${new URL(r.url()).pathname}`);
    if (/\/(init\.mp4|seg_\d+\.m4s)$/.test(new URL(r.url()).pathname)) {
      const server = (r.headers()["server"] || "").split("/")[0];
      requests.segmentServers[server] = (requests.segmentServers[server] || 0) + 1;
    }
  });
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  page.on("console", (m) => {
    if (m.type() === "error") pageErrors.push(`console: ${m.text()}`);
  });
  const started = Date.now();
  let outcome = "played";
  let signal = null;
  let exercised = null;
  const reach = (min) =>
    page.waitForFunction(
      (m) => {
        const s = window.playerState;
        return s && (s.fatalError || s.currentTime >= m);
      },
      min,
      { timeout: timeoutMs, polling: 250 },
    );
  try {
    await page.goto(url, { waitUntil: "load", timeout: 20000 });
    await reach(minSeconds);
    if (afterSignalSeconds !== null) {
      const reached = await snapshot(page);
      console.log(JSON.stringify({ reached: name, state: reached, requests }));
      await nextLine();
      const now = await snapshot(page);
      const bufferedEnd = await page.evaluate(() => {
        const b = document.getElementById("audio").buffered;
        return b.length ? b.end(b.length - 1) : 0;
      });
      signal = {
        currentTime: now.currentTime,
        bufferedEnd,
        requests: JSON.parse(JSON.stringify(requests)),
        errors: now.errors.length,
      };
      if (!now.fatalError) await reach(now.currentTime + afterSignalSeconds);
    }
    if (exercise !== null) exercised = await exercisePlayer(page, exercise);
    if (config.endPlayback) await page.evaluate(() => window.stopPlayback());
  } catch (e) {
    outcome = `timeout: ${String(e).split("\n")[0]}`;
  }
  let state = null;
  let media = null;
  try {
    state = await snapshot(page);
    media = await page.evaluate(() => {
      const a = document.getElementById("audio");
      return {
        paused: a.paused,
        muted: a.muted,
        readyState: a.readyState,
        volume: a.volume,
        hlsVersion: window.Hls ? window.Hls.version : null,
        mse: {
          aac: MediaSource.isTypeSupported('audio/mp4; codecs="mp4a.40.2"'),
          opus: MediaSource.isTypeSupported('audio/mp4; codecs="opus"'),
          flac: MediaSource.isTypeSupported('audio/mp4; codecs="fLaC"'),
        },
      };
    });
    if (config.screenshotDir) {
      await page.screenshot({ path: join(config.screenshotDir, `${name}.png`), fullPage: true });
    }
  } catch (e) {
    pageErrors.push(`evaluate: ${e}`);
  }
  await context.close();
  return {
    name, outcome, seconds: (Date.now() - started) / 1000,
    state, media, requests, signal, exercise: exercised, failed, pageErrors, blocked,
  };
}

// Forces a level switch every `switchEverySeconds` while playing `playAfterSeekSeconds` from
// each position of `seekTo`, as a listener dragging the seek bar on a flaky network would.
async function exercisePlayer(page, { switchEverySeconds, seekTo, playAfterSeekSeconds }) {
  const switches = [];
  const seeks = [];
  const switchNow = () => page.evaluate(() => {
    const hls = window.playerHls;
    const next = (hls.currentLevel + 1) % hls.levels.length;
    hls.nextLevel = next;  // switch at the next fragment boundary, flushing what is ahead
    return next;
  });
  // The element's own clock: playerState's lags a seek back by a timeupdate.
  const playedTo = (target) =>
    page.waitForFunction(
      (t) => {
        const a = document.getElementById("audio");
        const s = window.playerState;
        return (s && s.fatalError) || (!a.seeking && a.currentTime >= t);
      },
      target,
      { timeout: timeoutMs, polling: 250 },
    );
  const timer = setInterval(() => {
    switchNow().then((level) => switches.push(level), () => {});
  }, switchEverySeconds * 1000);
  try {
    for (const position of seekTo) {
      await page.evaluate((p) => { document.getElementById("audio").currentTime = p; }, position);
      await playedTo(position + playAfterSeekSeconds);
      seeks.push(await page.evaluate(() => document.getElementById("audio").currentTime));
    }
  } finally {
    clearInterval(timer);
  }
  return { switches, seeks };
}

let results;
try {
  results = await Promise.all(cases.map(play));
  console.log(JSON.stringify({ chromium: browser.version(), results }));
} finally {
  clearTimeout(watchdog);
  await browser.close();
}
