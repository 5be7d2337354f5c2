// Opens a profile in speedscope (the npm package's dist/release, served
// over http by formats_test.py) in headless Chromium through puppeteer-core,
// switches to the Sandwich view, whose table lists every function by name,
// and prints {"title": ..., "text": ...} as JSON on stdout.
// Usage: node formats_view.js NODE_MODULES CHROMIUM URL
const path = require("path");
const [modules, chromium, url] = process.argv.slice(2);
const puppeteer = require(path.join(modules, "puppeteer-core"));

(async () => {
  const browser = await puppeteer.launch({
    executablePath: chromium,
    headless: true,
    // speedscope draws with WebGL: software rendering, as there is no GPU.
    args: ["--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist"],
  });
  try {
    const page = await browser.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
    await page.goto(url, { waitUntil: "networkidle0", timeout: 60000 });
    // speedscope names the page after the profile once it is imported.
    await page.waitForFunction(() => document.title.includes(" - speedscope"), { timeout: 60000 });
    await page.keyboard.press("3"); // the Sandwich view
    await new Promise((r) => setTimeout(r, 1000));
    const text = await page.evaluate(() => document.body.innerText);
    console.log(JSON.stringify({ title: await page.title(), text, errors }));
  } finally {
    await browser.close();
  }
})().catch((e) => {
  console.error(String(e));
  process.exit(1);
});
