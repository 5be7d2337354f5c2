// Drives pyflame's svg flame graph in headless Chromium through
// puppeteer-core, for tests/integration/formats_svg_test.py, which installs
// puppeteer-core, runs this and checks what it prints: one JSON object of
// what the page showed at each step. Nothing is asserted here.
//
//   node formats_svg_browser.js SVG CHROMIUM QUERY FUNCTION SCREENSHOT
//
// QUERY is typed into the search after Ctrl-F; FUNCTION names the box that
// is hovered, then clicked (zoom), then reset.
"use strict";
const fs = require("fs");
const os = require("os");
const path = require("path");
const puppeteer = require("puppeteer-core");

const [svg, chromium, query, func, screenshot] = process.argv.slice(2);

async function main() {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "pyflame-chromium-"));
  // The flags keep Chromium off the network it has no business using
  // (updates, sync, QUIC probes); --no-sandbox: the tests run as root.
  const browser = await puppeteer.launch({
    executablePath: chromium,
    headless: true,
    userDataDir: profile,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const out = {errors: [], requests: []};
  try {
    out.version = await browser.version();
    const page = await browser.newPage();
    page.on("pageerror", (e) => out.errors.push(String(e)));
    page.on("console", (m) => { if (m.type() === "error") out.errors.push(m.text()); });
    page.on("request", (r) => { if (!r.url().startsWith("file:")) out.requests.push(r.url()); });
    await page.setViewport({width: 1200, height: 900});
    await page.goto("file://" + svg, {waitUntil: "load"});

    // Ctrl-F opens our search, not the browser's.
    await page.keyboard.down("Control");
    await page.keyboard.press("KeyF");
    await page.keyboard.up("Control");
    out.focused = await page.evaluate(() => document.activeElement && document.activeElement.id);
    await page.keyboard.type(query);
    out.matched = await page.$eval("#pf-matched", (e) => e.textContent);
    out.highlighted = await page.$$eval("#pf-frames g.m title", (ts) => ts.map((t) => t.textContent));
    out.highlightFill = await page.$$eval("#pf-frames g.m rect",
                                          (rs) => rs.map((r) => getComputedStyle(r).fill));
    if (screenshot)
      await page.screenshot({path: screenshot});
    await page.keyboard.press("Escape");
    out.matchedAfterEscape = await page.$eval("#pf-matched", (e) => e.textContent);
    out.highlightedAfterEscape = await page.$$eval("#pf-frames g.m", (gs) => gs.length);

    // The widest box of FUNCTION: hover, click, reset.
    const box = async () => page.evaluate((name) => {
      let best = null;
      for (const g of document.querySelectorAll("#pf-frames > g")) {
        const r = g.querySelector("rect"), w = parseFloat(r.getAttribute("width"));
        if (g.querySelector("title").textContent.startsWith(name + " (") && (!best || w > best.w))
          best = {g, w};
      }
      if (!best) return null;
      best.g.setAttribute("id", "pf-target");
      const r = best.g.querySelector("rect");
      return {width: best.w, x: parseFloat(r.getAttribute("x")),
              label: best.g.querySelector("text").textContent,
              shown: getComputedStyle(best.g).display !== "none"};
    }, func);
    const visible = async () => page.$$eval("#pf-frames > g",
      (gs) => gs.filter((g) => getComputedStyle(g).display !== "none").length);
    out.before = await box();
    out.visibleBefore = await visible();
    if (out.before) {
      await page.hover("#pf-target");
      out.details = await page.$eval("#pf-details", (e) => e.textContent);
      await page.click("#pf-target");
      out.zoomed = await box();
      out.visibleZoomed = await visible();
      out.unzoomShown = await page.$eval("#pf-unzoom", (e) => e.getAttribute("visibility"));
      await page.click("#pf-unzoom");
      out.reset = await box();
      out.visibleReset = await visible();
    }
  } finally {
    await browser.close();
    fs.rmSync(profile, {recursive: true, force: true});
  }
  process.stdout.write(JSON.stringify(out) + "\n");
}

main().catch((e) => {
  process.stderr.write(String(e && e.stack || e) + "\n");
  process.exit(1);
});
