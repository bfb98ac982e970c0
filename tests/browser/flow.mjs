// The web app end to end in a real Chromium: two agents at once, live queue, Take it!, internal
// messages, Reply via Email, /invite, files, hostile HTML, admin pages, screenshots.
//
// Started by crates/server/tests/browser.rs, which runs a real postdesk with a real Dovecot and
// a real SMTP server and passes where they are in the environment. Every step asserts; the
// first failure ends the run with exit code 1 and a screenshot of the failing page.

import assert from "node:assert/strict";
import crypto from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { chromium } from "playwright-core";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`missing environment variable ${name}`);
  return value;
};
const BASE = env("POSTDESK_URL");
const IMAP_HOST = env("IMAP_HOST");
const IMAP_PORT = Number(env("IMAP_PORT"));
const SMTP_PORT = Number(env("SMTP_PORT"));
const MAILBOX_USER = env("MAILBOX_USER");
const MAILBOX_PASSWORD = env("MAILBOX_PASSWORD");
const SMTP_DIR = env("SMTP_DIR");
const SCREENSHOTS = env("SCREENSHOT_DIR");
const UPLOAD_FILE = env("UPLOAD_FILE");
const OIDC_ISSUER = env("OIDC_ISSUER");
const OAUTH = {
  imapPort: env("OAUTH_IMAP_PORT"), smtpPort: env("OAUTH_SMTP_PORT"), authUrl: env("OAUTH_AUTH_URL"),
  tokenUrl: env("OAUTH_TOKEN_URL"), clientId: env("OAUTH_CLIENT_ID"), clientSecret: env("OAUTH_CLIENT_SECRET"),
};
const FAILURES = process.env.FAILURE_DIR || SCREENSHOTS;
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const LIVE = 5000; // "within a second" in the product; generous here so a loaded CI machine passes

function step(name) { console.log(`--- ${name}`); }

/** A screenshot for the docs: without passing notices, the conversation scrolled to its end. */
async function shot(page, name, size) {
  if (size) await page.setViewportSize(size);
  await page.evaluate(() => {
    document.getElementById("toast")?.replaceChildren();
    const main = document.getElementById("main");
    if (main) main.scrollTop = main.scrollHeight;
  });
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`) });
  if (size) await page.setViewportSize({ width: 1280, height: 720 });
}

/** IMAP APPEND over a raw socket: how a mail server puts an email in the mailbox. */
function append(raw) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(IMAP_PORT, IMAP_HOST);
    const data = Buffer.from(raw.replace(/\r?\n/g, "\r\n"), "utf8");
    let buffer = "";
    let stage = 0;
    const quote = (s) => `"${s.replace(/["\\]/g, "\\$&")}"`;
    socket.setTimeout(10000, () => { socket.destroy(); reject(new Error("IMAP APPEND timed out")); });
    socket.on("error", reject);
    socket.on("data", (chunk) => {
      buffer += chunk.toString("utf8");
      if (stage === 0 && /^\* OK.*\r\n/m.test(buffer) && !/Waiting for authentication/.test(buffer.split("\r\n").filter(Boolean).pop())) {
        stage = 1; buffer = "";
        socket.write(`a LOGIN ${quote(MAILBOX_USER)} ${quote(MAILBOX_PASSWORD)}\r\n`);
      } else if (stage === 1 && /^a (OK|NO|BAD)/m.test(buffer)) {
        if (!/^a OK/m.test(buffer)) return reject(new Error(`IMAP LOGIN failed: ${buffer}`));
        stage = 2; buffer = "";
        socket.write(`b APPEND INBOX {${data.length}}\r\n`);
      } else if (stage === 2 && /^\+/m.test(buffer)) {
        stage = 3; buffer = "";
        socket.write(Buffer.concat([data, Buffer.from("\r\n")]));
      } else if (stage === 3 && /^b (OK|NO|BAD)/m.test(buffer)) {
        if (!/^b OK/m.test(buffer)) return reject(new Error(`IMAP APPEND failed: ${buffer}`));
        socket.end("c LOGOUT\r\n");
        resolve();
      }
    });
  });
}

function capturedCount() {
  return fs.readdirSync(SMTP_DIR).filter((f) => /^\d+\.json$/.test(f)).length;
}

async function waitForCaptured(n) {
  const start = Date.now();
  while (capturedCount() < n) {
    if (Date.now() - start > 20000) throw new Error(`expected ${n} emails at the SMTP server, ${capturedCount()} arrived`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return fs.readFileSync(path.join(SMTP_DIR, `${n}.eml`), "latin1");
}

function email({ id, from, subject, body, extra = "", html }) {
  const headers = `From: Carol Customer <${from}>\nTo: Support <${MAILBOX_USER}>\nSubject: ${subject}\nDate: Tue, 24 Nov 2026 10:00:00 +0000\nMessage-ID: <${id}>\nMIME-Version: 1.0\n${extra}`;
  if (!html) return `${headers}Content-Type: text/plain; charset=utf-8\n\n${body}\n`;
  return `${headers}Content-Type: multipart/alternative; boundary="alt"\n\n--alt\nContent-Type: text/plain; charset=utf-8\n\n${body}\n--alt\nContent-Type: text/html; charset=utf-8\n\n${html}\n--alt--\n`;
}

async function login(browser, username, password, viewport = { width: 1280, height: 720 }) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.on("dialog", (d) => { throw new Error(`unexpected dialog: ${d.message()}`); });
  page.on("pageerror", (e) => { console.error(`page error (${username}): ${e.message}`); });
  await page.goto(`${BASE}/login`);
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.locator("#queued").waitFor();
  return page;
}

/** The code an authenticator app shows for a base32 secret (RFC 6238: HMAC-SHA1, 6 digits,
 * 30 s steps), `stepsAhead` steps from now. Written here from the RFC, as a phone app would. */
function totpCode(base32, stepsAhead = 0) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const c of base32.replace(/=+$/, "").toUpperCase()) bits += alphabet.indexOf(c).toString(2).padStart(5, "0");
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(Date.now() / 1000 / 30) + stepsAhead));
  const mac = crypto.createHmac("sha1", key).update(counter).digest();
  const offset = mac[mac.length - 1] & 0xf;
  const value = (mac.readUInt32BE(offset) & 0x7fffffff) % 1000000;
  return String(value).padStart(6, "0");
}

/** The email we sent that says `text`: in its text, or in its formatted HTML's frame. */
async function emailOut(page, text) {
  const handle = await page.waitForFunction((t) => {
    for (const m of document.querySelectorAll(".msg.email_out")) {
      const frames = [...m.querySelectorAll("iframe")].map((f) => f.contentDocument?.body?.innerText || "");
      if (m.innerText.includes(t) || frames.some((body) => body.includes(t))) return m.dataset.id;
    }
    return null;
  }, text, { timeout: LIVE });
  return page.locator(`.msg.email_out[data-id="${await handle.jsonValue()}"]`);
}

const queued = (page) => page.locator("#queued .side-list a");
const inProgress = (page) => page.locator("#in-progress .side-list a");

async function main() {
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"],
  });
  const pages = [];
  try {
    step("the login page says clearly when the password is wrong");
    const loginContext = await browser.newContext({ viewport: { width: 1280, height: 720 } });
    const loginPage = await loginContext.newPage();
    const loginResponse = await loginPage.goto(`${BASE}/login`);
    const csp = loginResponse.headers()["content-security-policy"];
    assert.match(csp, /script-src 'self'/, "a CSP that forbids inline scripts");
    await loginPage.screenshot({ path: path.join(SCREENSHOTS, "login.png") });
    await loginPage.getByLabel("Username").fill("a");
    await loginPage.getByLabel("Password").fill("not-the-password");
    await loginPage.getByRole("button", { name: "Log in" }).click();
    await loginPage.getByText("Wrong username or password").waitFor();
    const cookies = await loginContext.cookies();
    assert.ok(!cookies.some((c) => c.name === "postdesk_session"), "no session after a wrong password");

    step("two agents log in at once");
    const a = await login(browser, "a", "agent-a-velvet-compass-17");
    const b = await login(browser, "b", "agent-b-velvet-compass-17");
    pages.push(a, b);
    const session = (await a.context().cookies()).find((c) => c.name === "postdesk_session");
    assert.ok(session.httpOnly, "the session cookie is HttpOnly");
    assert.equal(session.sameSite, "Lax");

    step("a state-changing call without the CSRF token is refused");
    const forged = await a.request.post(`${BASE}/api/v1/logout`, { data: {} });
    assert.equal(forged.status(), 403);

    step("an email appears in both browsers' Queued Chats without reload");
    await append(email({ id: "printer@customer.test", from: "carol@customer.test", subject: "Printer on fire", body: "My printer is on fire.\nPlease help!" }));
    await queued(a).filter({ hasText: "Printer on fire" }).waitFor({ timeout: LIVE });
    await queued(b).filter({ hasText: "Printer on fire" }).waitFor({ timeout: LIVE });
    assert.equal(await a.locator("#queued .badge").textContent(), "1");

    step("agent a takes it; it leaves b's queue live; b's click gets 'already taken'");
    await queued(b).filter({ hasText: "Printer on fire" }).click();
    await b.getByRole("button", { name: "Take it!" }).waitFor();
    await queued(a).filter({ hasText: "Printer on fire" }).click();
    await a.getByText("My printer is on fire.").waitFor();
    assert.doesNotMatch(await a.locator("#main").innerText(), /\bnull\b|undefined/, "no stray null/undefined in the page");
    await shot(a, "workspace-queued");
    await a.getByRole("button", { name: "Take it!" }).click();
    await inProgress(a).filter({ hasText: "Printer on fire" }).waitFor({ timeout: LIVE });
    await queued(b).filter({ hasText: "Printer on fire" }).waitFor({ state: "detached", timeout: LIVE });
    await b.getByText(/already taken by @a/i).waitFor({ timeout: LIVE });

    step("an internal message reaches nobody outside");
    const composer = a.getByRole("textbox", { name: /Message/ });
    await composer.fill("INTERNAL: customer is on the gold plan");
    await composer.press("Enter");
    await a.locator(".msg.internal", { hasText: "gold plan" }).waitFor({ timeout: LIVE });
    assert.equal(capturedCount(), 0, "nothing was emailed");

    step("Reply via Email shows To and Subject to check, sends, and turns 'sent' live");
    await composer.fill("We are sending a technician today.");
    await a.getByRole("button", { name: "Reply via Email…" }).click();
    const preview = a.getByRole("region", { name: "Reply via Email" });
    assert.match(await preview.getByLabel("To", { exact: true }).inputValue(), /carol@customer\.test/);
    assert.equal(await preview.getByLabel("Cc", { exact: true }).inputValue(), "");
    await preview.getByText("Re: Printer on fire").waitFor();
    await a.getByRole("button", { name: "Send email", exact: true }).click();
    const sent = await waitForCaptured(1);
    assert.match(sent, /technician today/);
    assert.doesNotMatch(sent, /gold plan/);
    await a.locator(".msg.email_out [data-delivery='sent']").waitFor({ timeout: LIVE });

    step("/invite @b with autocomplete; b gets the conversation live with its whole history");
    await composer.fill("/invite @");
    await a.getByRole("option", { name: /@b/ }).waitFor();
    await a.getByRole("option", { name: /@admin/ }).waitFor();
    await composer.pressSequentially("b");
    await a.getByRole("option", { name: /@admin/ }).waitFor({ state: "detached" });
    await composer.press("Tab");
    assert.equal(await composer.inputValue(), "/invite @b");
    await composer.press("Enter");
    await inProgress(b).filter({ hasText: "Printer on fire" }).waitFor({ timeout: LIVE });
    await inProgress(b).filter({ hasText: "Printer on fire" }).click();
    await b.locator(".msg.internal", { hasText: "gold plan" }).waitFor();
    await b.locator(".msg.email_in", { hasText: "My printer is on fire." }).waitFor();
    await emailOut(b, "technician today");

    step("unknown commands and users get an inline error");
    await composer.fill("/invite @nobody");
    await composer.press("Escape");
    await composer.press("Enter");
    await a.getByRole("alert").filter({ hasText: "@nobody" }).waitFor();
    await composer.fill("/frobnicate");
    await composer.press("Enter");
    await a.getByRole("alert").filter({ hasText: "unknown command" }).waitFor();
    await composer.fill("");

    step("an uploaded file stays internal until Send via Email as attachment");
    await a.locator("#file-input").setInputFiles(UPLOAD_FILE);
    const fileName = path.basename(UPLOAD_FILE);
    const fileMessage = a.locator(".msg.internal", { hasText: fileName });
    await fileMessage.waitFor({ timeout: LIVE });
    assert.equal(capturedCount(), 1, "an upload sends nothing by itself");
    await fileMessage.getByRole("button", { name: "Send via Email as attachment" }).click();
    const withFile = await waitForCaptured(2);
    assert.match(withFile, new RegExp(fileName.replace(/[.]/g, "\\.")));
    await a.locator(".msg.email_out", { hasText: fileName }).locator("[data-delivery='sent']").waitFor({ timeout: LIVE });
    await shot(a, "conversation", { width: 1280, height: 1100 });

    step("b sees live that a is replying in the conversation");
    await composer.fill("");
    // Five seconds after a's last key, a is "viewing" again; a new key makes it "replying".
    await a.waitForTimeout(5500);
    await b.locator("#presence", { hasText: "@a is viewing" }).waitFor({ timeout: LIVE });
    await composer.pressSequentially("Hi Carol");
    await b.locator("#presence", { hasText: "@a is replying" }).waitFor({ timeout: LIVE });

    step("a reply being written survives a move to another page, and !shortcut inserts a canned response");
    await composer.fill("");
    await composer.pressSequentially("Draft: the technician comes at ten");
    await a.waitForTimeout(1200); // the draft is saved a moment after typing stops
    const conversationUrl = a.url();
    await a.getByRole("link", { name: "Canned responses" }).click();
    await a.getByRole("heading", { name: "Canned responses" }).waitFor();
    await a.getByLabel(/Shortcut/).fill("thanks");
    await a.getByLabel(/^Text/).fill("Thank you, {{contact.name}}! We are on it.");
    await a.getByRole("button", { name: "Add canned response" }).click();
    await a.locator("#canned tr", { hasText: "!thanks" }).waitFor({ timeout: LIVE });
    await a.goto(conversationUrl);
    await a.locator(".msg.email_in", { hasText: "My printer is on fire." }).waitFor();
    await a.waitForFunction(() => document.getElementById("composer-text")?.value.includes("technician comes at ten"), null, { timeout: LIVE });
    await composer.fill("");
    await composer.pressSequentially("!tha");
    await a.getByRole("option", { name: /!thanks/ }).waitFor({ timeout: LIVE });
    await composer.press("Tab");
    assert.equal(await composer.inputValue(), "Thank you, Carol Customer! We are on it.");
    await composer.fill("");

    step("Reply all on the email with a colleague in Cc; Bcc added; a Markdown reply goes as formatted email");
    await append(email({
      id: "printer-2@customer.test", from: "carol@customer.test", subject: "Re: Printer on fire",
      body: "Dan from facilities is in Cc now.", extra: "In-Reply-To: <printer@customer.test>\nCc: Dan Partner <dan@partner.test>\n",
    }));
    const withDan = a.locator(".msg.email_in", { hasText: "Dan from facilities" });
    await withDan.waitFor({ timeout: LIVE });
    await withDan.locator("dd", { hasText: "dan@partner.test" }).waitFor();
    await withDan.getByRole("button", { name: "Reply all" }).click();
    const reply = a.getByRole("region", { name: "Reply via Email" });
    await reply.getByText(/Answering Carol Customer's email/).waitFor();
    assert.match(await reply.getByLabel("To", { exact: true }).inputValue(), /carol@customer\.test/);
    assert.match(await reply.getByLabel("Cc", { exact: true }).inputValue(), /Dan Partner <dan@partner\.test>/);
    await reply.getByLabel("Bcc", { exact: true }).fill("boss@example.org");
    assert.ok(await reply.getByLabel(/Formatted/).isChecked(), "Markdown is the default");
    await composer.fill("**Thanks**, we *will*:\n\n- unplug it\n- call Dan");
    await a.getByRole("button", { name: "Send email", exact: true }).click();
    const formatted = await waitForCaptured(3);
    assert.match(formatted, /^Cc: .*dan@partner\.test/m);
    assert.doesNotMatch(formatted, /boss@example\.org/, "Bcc never in the email");
    assert.match(formatted, /<strong>Thanks<\/strong>/);
    assert.match(formatted, /In-Reply-To: <printer-2@customer\.test>/);
    const envelope = JSON.parse(fs.readFileSync(path.join(SMTP_DIR, "3.json"), "utf8"));
    assert.deepEqual(envelope.rcpt_tos, ["carol@customer.test", "dan@partner.test", "boss@example.org"]);
    await (await emailOut(a, "unplug it")).locator("dd", { hasText: "boss@example.org" }).waitFor({ timeout: LIVE });

    step("an email that arrives while a writes stops the send; a reads it and sends anyway");
    await composer.fill("The technician is on the way.");
    await a.getByRole("button", { name: "Reply via Email…" }).click();
    await reply.getByLabel("To", { exact: true }).waitFor();
    await append(email({
      id: "printer-3@customer.test", from: "carol@customer.test", subject: "Re: Printer on fire",
      body: "Update: the fire is out.", extra: "In-Reply-To: <printer@customer.test>\n",
    }));
    await a.locator(".msg.email_in", { hasText: "the fire is out" }).waitFor({ timeout: LIVE });
    await a.getByRole("button", { name: "Send email", exact: true }).click();
    const check = a.locator("#send-check");
    await check.getByText(/Not sent: a new email arrived/).waitFor({ timeout: LIVE });
    await check.getByText(/the fire is out/).waitFor();
    await shot(a, "reply", { width: 1280, height: 1000 });
    assert.equal(capturedCount(), 3, "nothing sent while the agent had not seen the new email");
    await check.getByRole("button", { name: "Send anyway" }).click();
    const anyway = await waitForCaptured(4);
    assert.match(anyway, /technician is on the way/);

    step("a hostile HTML email is displayed without running anything");
    const hostile = `<p>Hello <b>team</b></p>
<script>window.parent.__pwned = "script"; alert("script")</script>
<img src="x" onerror="window.parent.__pwned='onerror'; alert('onerror')">
<a href="javascript:window.parent.__pwned='link'" id="evil">click me</a>
<svg onload="window.parent.__pwned='svg'"><script>alert(1)</script></svg>
<iframe src="javascript:alert(1)"></iframe>
<div style="position:fixed;top:0;left:0;width:100%;height:100%;background:red">overlay</div>
<form action="https://evil.test/"><input name="password"></form>
<img src="https://tracker.invalid/pixel.gif" alt="tracker">`;
    await append(email({ id: "hostile@customer.test", from: "mallory@customer.test", subject: "Hostile HTML", body: "plain part", html: hostile }));
    await queued(a).filter({ hasText: "Hostile HTML" }).waitFor({ timeout: LIVE });
    await queued(a).filter({ hasText: "Hostile HTML" }).click();
    await a.getByRole("heading", { name: "Hostile HTML" }).waitFor();
    const frameElement = a.locator(".msg.email_in iframe.email-html");
    await frameElement.waitFor();
    const frame = await (await frameElement.elementHandle()).contentFrame();
    await frame.getByText("Hello").waitFor();
    const inside = await frame.evaluate(() => ({
      scripts: document.querySelectorAll("script").length,
      handlers: [...document.querySelectorAll("*")].filter((el) => [...el.attributes].some((at) => at.name.startsWith("on"))).length,
      javascriptLinks: [...document.querySelectorAll("a")].filter((el) => /^\s*javascript:/i.test(el.getAttribute("href") || "")).length,
      iframes: document.querySelectorAll("iframe, form, svg").length,
      fixed: [...document.querySelectorAll("*")].filter((el) => getComputedStyle(el).position === "fixed").length,
    }));
    assert.deepEqual(inside, { scripts: 0, handlers: 0, javascriptLinks: 0, iframes: 0, fixed: 0 }, "nothing dangerous reaches the page");
    await frame.getByText("click me").click({ force: true }).catch(() => {});
    await a.waitForTimeout(300);
    assert.equal(await a.evaluate(() => window.__pwned), undefined, "no script ran");
    const remote = await frame.evaluate(() => { const img = document.querySelector('img[alt="tracker"]'); return img ? img.naturalWidth : -1; });
    assert.ok(remote <= 0, "remote images are blocked until allowed");
    await a.getByRole("button", { name: "Show remote images" }).waitFor();

    step("an email that only pretends to come from a bank is marked in Queued Chats and warned about");
    // From bank.test (DMARC p=reject, SPF only 192.0.2.1), received from another host, unsigned.
    const trace = `Return-Path: <ceo@bank.test>\nReceived: from mail.evil.test (mail.evil.test [198.51.100.7])\n\tby mx.example.test (Postfix) with ESMTPS id 4AbC\n\tfor <${MAILBOX_USER}>; Tue, 24 Nov 2026 09:59:59 +0000\n`;
    await append(trace + email({ id: "spoof@bank.test", from: "ceo@bank.test", subject: "Urgent wire transfer", body: "Pay the invoice today." }));
    const spoofed = queued(a).filter({ hasText: "Urgent wire transfer" });
    await spoofed.locator(".sender-mark", { hasText: "Unverified sender" }).waitFor({ timeout: LIVE });
    assert.equal(await queued(a).filter({ hasText: "Hostile HTML" }).locator(".sender-mark").count(), 0, "no mark on an email that does not pretend");
    await spoofed.click();
    const warning = a.locator("article.msg.email_in .sender-warning");
    await warning.filter({ hasText: "Sender not verified" }).waitFor({ timeout: LIVE });
    assert.match(await warning.textContent(), /bank\.test/, "the warning names the domain");
    await a.locator("article.msg.email_in dl.headers", { hasText: "DMARC fail" }).waitFor();
    await shot(a, "sender-warning");

    step("a broken email is quarantined, listed for admins with a reprocess action");
    await append("\u0001\u0002 not an email at all\n\n");
    step("the admin pages show the inbox's health");
    const admin = await login(browser, "admin", env("ADMIN_PASSWORD"));
    pages.push(admin);
    await admin.goto(`${BASE}/#/admin/inboxes`);
    await admin.locator("tr[data-inbox] .health").filter({ hasText: /connected/ }).waitFor({ timeout: LIVE });
    const quarantined = admin.locator("#quarantine tr[data-raw]");
    await quarantined.filter({ hasText: "Cannot parse" }).waitFor({ timeout: LIVE });
    await quarantined.getByRole("button", { name: "Reprocess" }).click();
    await admin.getByText("Still cannot be processed; kept in quarantine").waitFor({ timeout: LIVE });
    await admin.getByRole("button", { name: "Test connection" }).click();
    await admin.locator(".test-result.ok", { hasText: "IMAP: OK" }).waitFor({ timeout: LIVE });
    await admin.locator(".test-result.ok", { hasText: "SMTP: OK" }).waitFor({ timeout: LIVE });
    await shot(admin, "inboxes");

    step("an admin adds an inbox in the form; a refused login shows with the server's own text");
    await admin.getByRole("link", { name: "Add an email inbox" }).click();
    const form = admin.locator("form.admin");
    await form.getByLabel("Name", { exact: true }).fill("Sales");
    await form.getByLabel("Email address").fill("sales@example.test");
    await form.getByLabel("Sender name (shown in From)").fill("Example Sales");
    const imap = form.locator("fieldset", { hasText: "IMAP server" });
    await imap.getByLabel("Host").fill(IMAP_HOST);
    await imap.getByLabel("Port").fill(String(IMAP_PORT));
    await imap.getByLabel("Security").selectOption("none");
    await imap.getByLabel("Username").fill(MAILBOX_USER);
    await imap.getByLabel("Password").fill("a-wrong-password");
    const smtpSet = form.locator("fieldset", { hasText: "SMTP server" });
    await smtpSet.getByLabel("Host").fill(IMAP_HOST);
    await smtpSet.getByLabel("Port").fill(String(SMTP_PORT));
    await smtpSet.getByLabel("Security").selectOption("none");
    await form.getByRole("button", { name: "Create inbox" }).click();
    const sales = admin.locator("tr[data-inbox]", { hasText: "sales@example.test" });
    await sales.locator(".health.error").waitFor({ timeout: LIVE });
    await sales.getByText(/refused the login/).waitFor({ timeout: LIVE });
    await sales.getByRole("button", { name: "Test connection" }).click();
    await sales.locator(".test-result.fail", { hasText: /IMAP: .*(AUTHENTICATIONFAILED|Authentication failed)/ }).waitFor({ timeout: LIVE });
    await sales.locator(".test-result.ok", { hasText: "SMTP: OK" }).waitFor({ timeout: LIVE });
    await sales.getByRole("link", { name: "Edit" }).click();
    const passwordField = admin.locator("form.admin fieldset", { hasText: "IMAP server" }).getByLabel("Password");
    assert.equal(await passwordField.inputValue(), "", "passwords are write-only");
    assert.equal(await passwordField.getAttribute("placeholder"), "unchanged (write-only)");

    step("an admin connects a mailbox with OAuth2; revoked at the provider, it shows needs_reauth with the provider's words and Reconnect");
    {
      await admin.goto(`${BASE}/#/admin/inboxes`);
      await admin.getByText("Add an OAuth2 provider").click();
      const providerForm = admin.locator("form#oauth-provider-form");
      await providerForm.getByText(`${BASE}/api/v1/oauth/callback`).waitFor({ timeout: LIVE });
      await providerForm.getByLabel("Name").fill("Example ID");
      await providerForm.getByLabel("Kind").selectOption("generic");
      await providerForm.getByLabel("Client ID").fill(OAUTH.clientId);
      await providerForm.getByLabel("Client secret").fill(OAUTH.clientSecret);
      await providerForm.getByLabel("Authorization URL").fill(OAUTH.authUrl);
      await providerForm.getByLabel("Token URL").fill(OAUTH.tokenUrl);
      await providerForm.getByLabel("Scopes (separated by spaces)").fill("openid email mail");
      await providerForm.getByRole("button", { name: "Add provider" }).click();
      await admin.locator("#oauth-providers tr[data-provider]", { hasText: "Example ID" }).waitFor({ timeout: LIVE });
      assert.ok(!(await admin.content()).includes(OAUTH.clientSecret), "the client secret is never shown");

      await admin.getByRole("link", { name: "Add an email inbox" }).click();
      const form = admin.locator("form.admin");
      await form.getByLabel("Name", { exact: true }).fill("Ana's desk");
      await form.getByLabel("Email address").fill("ana@example.test");
      await form.getByLabel("Sender name (shown in From)").fill("Ana Support");
      for (const [legend, port] of [["IMAP server", OAUTH.imapPort], ["SMTP server", OAUTH.smtpPort]]) {
        const set = form.locator("fieldset", { hasText: legend });
        await set.getByLabel("Host").fill(IMAP_HOST);
        await set.getByLabel("Port").fill(String(port));
        await set.getByLabel("Security").selectOption("none");
        await set.getByLabel("Sign-in method").selectOption({ label: "OAuth2 (Example ID)" });
        assert.ok(await set.getByLabel("Password", { exact: true }).isHidden(), "no password with OAuth2");
      }
      await form.getByRole("button", { name: "Create inbox" }).click();
      const ana = admin.locator("tr[data-inbox]", { hasText: "ana@example.test" });
      await ana.getByText("not connected yet").waitFor({ timeout: LIVE });

      // Connect: to the provider's sign-in page and back.
      await ana.getByRole("button", { name: "Connect with Example ID" }).click();
      await admin.waitForURL((url) => url.href.startsWith(`${OIDC_ISSUER}/`), { timeout: LIVE });
      await admin.getByLabel("Email").fill("ana@example.test");
      await admin.getByLabel("Password").fill("ana-password");
      await admin.getByRole("button", { name: "Sign in" }).click();
      await admin.waitForURL((url) => url.href.startsWith(`${BASE}/`) && url.hash === "#/admin/inboxes", { timeout: LIVE });
      await admin.getByText("Connected with Example ID").waitFor({ timeout: LIVE });
      assert.equal(new URL(admin.url()).search, "", "the outcome is shown once, not kept in the address");

      // The provider revokes the grant (the test does, as the user would): the next refresh is
      // refused and the inbox says so, with the provider's words and Reconnect.
      await ana.getByText("needs reconnecting").waitFor({ timeout: 20000 });
      await ana.getByText(/grant request is invalid/).waitFor({ timeout: LIVE });
      await admin.evaluate(() => document.getElementById("toast")?.replaceChildren());
      await admin.evaluate(() => { document.getElementById("main").scrollTop = 0; });
      await admin.screenshot({ path: path.join(SCREENSHOTS, "inbox-reconnect.png") });
      await ana.getByRole("button", { name: "Reconnect" }).click();
      await admin.waitForURL((url) => url.href.startsWith(`${OIDC_ISSUER}/`) || url.hash === "#/admin/inboxes" && url.href.startsWith(`${BASE}/`), { timeout: LIVE });
      if (admin.url().startsWith(`${OIDC_ISSUER}/`)) {
        await admin.getByLabel("Email").fill("ana@example.test");
        await admin.getByLabel("Password").fill("ana-password");
        await admin.getByRole("button", { name: "Sign in" }).click();
      }
      await admin.getByText("Connected with Example ID").waitFor({ timeout: LIVE });
      await ana.locator(".health.idle, .health.syncing").waitFor({ timeout: 15000 });
      await ana.getByText("Signed in with Example ID").waitFor({ timeout: LIVE });
    }

    step("an admin creates and deactivates a user");
    await admin.goto(`${BASE}/#/admin/users`);
    await admin.getByRole("cell", { name: "@b" }).waitFor();
    const userForm = admin.locator("form.admin");
    await userForm.getByLabel("Username").fill("c");
    await userForm.getByLabel("Name", { exact: true }).fill("Agent C");
    await userForm.getByLabel("Password (at least 10 characters, hard to guess)").fill("agent-c-velvet-compass-17");
    await userForm.getByRole("button", { name: "Create user" }).click();
    const rowC = admin.locator("tr", { hasText: "@c" });
    await rowC.getByText("active").waitFor({ timeout: LIVE });
    await rowC.getByRole("button", { name: "Deactivate" }).click();
    await rowC.getByText("deactivated").waitFor({ timeout: LIVE });

    step("readable on a phone-sized screen");
    const phone = await login(browser, "b", "agent-b-velvet-compass-17", { width: 390, height: 844 });
    pages.push(phone);
    await inProgress(phone).filter({ hasText: "Printer on fire" }).click();
    await phone.locator(".msg.email_in").first().waitFor();
    const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 1, `no sideways scrolling on a phone (overflow ${overflow}px)`);
    await shot(phone, "phone");

    step("close with a comment; closed conversations are found by contact");
    await inProgress(a).filter({ hasText: "Printer on fire" }).click();
    await a.getByRole("button", { name: "Close", exact: true }).click();
    await a.getByRole("textbox", { name: "Closing comment" }).fill("technician fixed it");
    await a.getByRole("button", { name: "Close conversation" }).click();
    await a.locator(".msg.system", { hasText: "Closed by @a: technician fixed it" }).waitFor({ timeout: LIVE });
    await inProgress(a).filter({ hasText: "Printer on fire" }).waitFor({ state: "detached", timeout: LIVE });
    const search = a.getByRole("searchbox", { name: "Search closed conversations by contact" });
    await search.fill("carol@customer");
    await search.press("Enter");
    await a.locator("#closed .side-list a", { hasText: "Printer on fire" }).waitFor({ timeout: LIVE });

    step("a closed conversation is read-only until Reopen");
    await a.locator("#closed .side-list a", { hasText: "Printer on fire" }).click();
    await a.getByRole("button", { name: "Reopen" }).waitFor();
    assert.equal(await a.locator("#composer-text").count(), 0, "no composer on a closed conversation");
    await a.getByRole("button", { name: "Reopen" }).click();
    await a.locator(".msg.system", { hasText: "Reopened by @a" }).waitFor({ timeout: LIVE });
    await a.locator("#composer-text").waitFor({ timeout: LIVE });

    step("a live update keeps the reader's place: the timeline is not rebuilt, the scroll position not moved");
    await b.setViewportSize({ width: 1280, height: 420 });
    await inProgress(b).filter({ hasText: "Printer on fire" }).click();
    await b.locator(".msg.system", { hasText: "Reopened by @a" }).waitFor({ timeout: LIVE });
    const readerPlace = await b.evaluate(() => {
      const main = document.getElementById("main");
      const first = document.querySelector(".timeline > [data-id]");
      first.__shownOnce = true;
      main.scrollTop = 40;
      return { scroll: main.scrollTop, room: main.scrollHeight - main.clientHeight };
    });
    assert.ok(readerPlace.room > 120, `the conversation is longer than b's window (${readerPlace.room}px to scroll)`);
    await composer.fill("Colleague's note while b reads the history");
    await composer.press("Enter");
    await b.locator(".msg.internal", { hasText: "while b reads the history" }).waitFor({ timeout: LIVE });
    const after = await b.evaluate(() => ({
      scroll: document.getElementById("main").scrollTop,
      kept: document.querySelector(".timeline > [data-id]").__shownOnce === true,
    }));
    assert.ok(after.kept, "the messages already shown were not rebuilt");
    assert.equal(after.scroll, readerPlace.scroll, "what b was reading did not move");
    await b.setViewportSize({ width: 1280, height: 720 });

    step("an admin creates a department with round robin and puts the inbox in it");
    await admin.goto(`${BASE}/#/departments`);
    const departmentForm = admin.locator("form.department-form");
    await departmentForm.getByLabel("Name").fill("Customer Care");
    await departmentForm.locator("select[name=routing]").selectOption("round_robin");
    await departmentForm.getByRole("checkbox", { name: /@a\b/ }).check();
    await departmentForm.getByRole("checkbox", { name: /@b\b/ }).check();
    await departmentForm.getByLabel(/Most open chats per agent/).fill("5");
    await departmentForm.getByRole("button", { name: "Create department" }).click();
    const careRow = admin.locator("#departments tr", { hasText: "Customer Care" });
    await careRow.getByText("Round robin").waitFor({ timeout: LIVE });
    await careRow.getByText("@a, @b").waitFor();
    await shot(admin, "departments");
    const supportInbox = (await admin.evaluate(() => api("GET", "/inboxes"))).inboxes.find((i) => i.email === MAILBOX_USER);
    await admin.goto(`${BASE}/#/admin/inboxes/${supportInbox.id}`);
    await admin.locator("select[name=department_id]").selectOption({ label: "Customer Care" });
    await admin.getByRole("button", { name: "Save", exact: true }).click();
    await admin.getByText("Inbox saved").waitFor({ timeout: LIVE });

    step("an available agent gets a new email at once, shown live without Take it!");
    await b.getByLabel("Availability").selectOption("available");
    await b.getByText("You are available").waitFor({ timeout: LIVE });
    await append(email({ id: "invoice@customer.test", from: "carol@customer.test", subject: "Invoice question", body: "Why was I charged twice?" }));
    await inProgress(b).filter({ hasText: "Invoice question" }).waitFor({ timeout: LIVE });
    assert.equal(await queued(a).filter({ hasText: "Invoice question" }).count(), 0, "not left in anyone's queue");
    await inProgress(b).filter({ hasText: "Invoice question" }).click();
    await b.locator(".msg.system", { hasText: /Assigned to @b/ }).waitFor({ timeout: LIVE });

    step("transfer to a colleague with a comment; it moves to their Chats in Progress live");
    await b.getByRole("button", { name: "Transfer…" }).click();
    await b.getByLabel("Transfer to").selectOption({ label: "@a · Agent A" });
    await b.getByLabel("Transfer comment").fill("a knows billing");
    await b.getByRole("button", { name: "Transfer", exact: true }).click();
    await inProgress(a).filter({ hasText: "Invoice question" }).waitFor({ timeout: LIVE });
    await inProgress(b).filter({ hasText: "Invoice question" }).waitFor({ state: "detached", timeout: LIVE });
    await inProgress(a).filter({ hasText: "Invoice question" }).click();
    await a.locator(".msg.system", { hasText: "a knows billing" }).waitFor({ timeout: LIVE });

    step("On Hold has its own list; the contact's email resumes it");
    await a.getByRole("button", { name: "On Hold" }).click();
    await a.locator("#on-hold .side-list a", { hasText: "Invoice question" }).waitFor({ timeout: LIVE });
    await inProgress(a).filter({ hasText: "Invoice question" }).waitFor({ state: "detached", timeout: LIVE });
    await append(email({ id: "invoice-2@customer.test", from: "carol@customer.test", subject: "Re: Invoice question", body: "Here is the invoice number: 4711.", extra: "In-Reply-To: <invoice@customer.test>\nReferences: <invoice@customer.test>\n" }));
    await inProgress(a).filter({ hasText: "Invoice question" }).waitFor({ timeout: LIVE });
    await a.locator(".msg.email_in", { hasText: "invoice number: 4711" }).waitFor({ timeout: LIVE });

    step("snooze until a time; it leaves Chats in Progress until then, and Resume ends it early");
    await a.getByRole("button", { name: "Snooze…" }).click();
    await a.getByRole("button", { name: "1 hour" }).click();
    await a.getByRole("button", { name: "Snooze", exact: true }).click();
    await a.locator("#snoozed .side-list a", { hasText: "Invoice question" }).waitFor({ timeout: LIVE });
    await inProgress(a).filter({ hasText: "Invoice question" }).waitFor({ state: "detached", timeout: LIVE });
    await a.locator(".snoozed-until").waitFor();
    await a.getByRole("button", { name: "Resume" }).click();
    await inProgress(a).filter({ hasText: "Invoice question" }).waitFor({ timeout: LIVE });

    step("tags, and full-text search with a highlighted snippet");
    await a.locator("#tag-input").fill("billing");
    await a.locator("#tag-input").press("Enter");
    await a.locator('#conv-tags .tag[data-tag="billing"]').waitFor({ timeout: LIVE });
    const tagFilter = a.getByLabel("Filter by tag");
    await tagFilter.fill("billing");
    await tagFilter.press("Enter");
    await a.locator("#tagged .side-list a", { hasText: "Invoice question" }).waitFor({ timeout: LIVE });
    await a.locator("#search-input").fill("technician");
    await a.locator("#search-input").press("Enter");
    const hit = a.locator("ul#search-results a", { hasText: "Printer on fire" });
    await hit.waitFor({ timeout: LIVE });
    assert.match((await hit.locator(".snippet mark").first().textContent()).toLowerCase(), /technician/);
    await a.locator("#search-clear").click();

    step("a contact's page lists their conversations, and their name can be corrected");
    await inProgress(a).filter({ hasText: "Invoice question" }).click();
    await a.locator(".conv-head .meta a").click();
    const contactConversations = a.locator("#contact-conversations a");
    await contactConversations.filter({ hasText: "Invoice question" }).waitFor({ timeout: LIVE });
    await contactConversations.filter({ hasText: "Printer on fire" }).waitFor();
    await a.getByLabel("Contact name").fill("Carol C. Customer");
    await a.getByRole("button", { name: "Save name" }).click();
    await a.locator("#contact-name", { hasText: "Carol C. Customer" }).waitFor({ timeout: LIVE });
    await shot(a, "contact");
    await a.getByRole("link", { name: "Contacts", exact: true }).click();
    await a.getByLabel("Search contacts").fill("carol");
    await a.getByLabel("Search contacts").press("Enter");
    await a.locator("#contacts tr", { hasText: "Carol C. Customer" }).waitFor({ timeout: LIVE });

    step("an agent sets up two-factor sign-in, then signs in with a code");
    await a.getByRole("link", { name: "Account" }).click();
    await a.getByRole("button", { name: "Set up two-factor sign-in" }).click();
    const secret = (await a.locator("#totp-secret").textContent()).trim();
    await a.locator("#totp-code").fill(totpCode(secret));
    await a.getByRole("button", { name: "Confirm" }).click();
    await a.locator("#recovery-codes li").nth(9).waitFor({ timeout: LIVE });
    await shot(a, "two-factor");
    {
      const context = await browser.newContext({ viewport: { width: 1280, height: 720 } });
      const page = await context.newPage();
      pages.push(page);
      await page.goto(`${BASE}/login`);
      await page.getByLabel("Username").fill("a");
      await page.getByLabel("Password").fill("agent-a-velvet-compass-17");
      await page.getByRole("button", { name: "Log in" }).click();
      await page.getByText("Two-factor sign-in is on for this account").waitFor({ timeout: LIVE });
      await page.getByLabel("Username").fill("a");
      await page.getByLabel("Password").fill("agent-a-velvet-compass-17");
      // The next step's code: the current one was used to confirm, and no code works twice.
      await page.getByLabel(/Two-factor code/).fill(totpCode(secret, 1));
      await page.getByRole("button", { name: "Log in" }).click();
      await page.locator("#queued").waitFor({ timeout: LIVE });

      step("the sessions list shows both; signing the first one out ends it");
      await page.getByRole("link", { name: "Account" }).click();
      const sessionRows = page.locator("#sessions tr[data-session]");
      await sessionRows.nth(1).waitFor({ timeout: LIVE });
      await page.locator("#sessions tr", { hasText: "This session" }).waitFor();
      assert.ok((await sessionRows.filter({ hasText: "password + totp" }).count()) >= 1, "the new session signed in with a code");
      await shot(page, "sessions");
      await sessionRows.filter({ hasNotText: "This session" }).first().getByRole("button", { name: "Sign out" }).click();
      await page.getByText("Signed out there").waitFor({ timeout: LIVE });
      await a.reload();
      await a.getByLabel("Username").waitFor({ timeout: LIVE });
    }

    step("an agent signs in with single sign-on at the team's OpenID Connect provider");
    {
      const context = await browser.newContext({ viewport: { width: 1280, height: 720 } });
      const page = await context.newPage();
      pages.push(page);
      await page.goto(`${BASE}/login`);
      await page.getByRole("link", { name: "Sign in with single sign-on" }).click();
      await page.waitForURL((url) => url.href.startsWith(`${OIDC_ISSUER}/`), { timeout: LIVE });
      await page.getByLabel("Email").fill("ana@example.test");
      await page.getByLabel("Password").fill("ana-password");
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.waitForURL(`${BASE}/`, { timeout: LIVE });
      await page.locator("#queued").waitFor({ timeout: LIVE });
      assert.equal(await page.locator("#me").getAttribute("data-username"), "ana", "the user made from the verified email");
      await page.getByRole("link", { name: "Account" }).click();
      await page.locator("#sessions tr[data-session]", { hasText: "oidc" }).first().waitFor({ timeout: LIVE });
      await context.close();
      pages.pop();
    }

    step("the admin reads sign-ins and admin actions in the audit log");
    await admin.goto(`${BASE}/#/admin/audit`);
    const audit = admin.locator("#audit tbody tr");
    await audit.filter({ hasText: "user.totp_enable" }).first().waitFor({ timeout: LIVE });
    await audit.filter({ hasText: "sign_in" }).first().waitFor();
    await audit.filter({ hasText: "user.create" }).first().waitFor();
    await audit.filter({ hasText: "sign_in" }).filter({ hasText: "ana" }).first().waitFor();
    await admin.getByLabel("Who").fill("a");
    await admin.getByRole("button", { name: "Filter" }).click();
    await admin.waitForFunction(() => [...document.querySelectorAll("#audit tbody tr td:nth-child(2)")].every((td) => td.textContent === "a"));
    await shot(admin, "audit");

    step("logout ends the session");
    await b.getByRole("button", { name: "Log out" }).click();
    await b.getByLabel("Username").waitFor();
    console.log("browser flow: all steps passed");
  } catch (error) {
    for (const [i, page] of pages.entries()) {
      await page.screenshot({ path: path.join(FAILURES, `failure-${i}.png`), fullPage: true }).catch(() => {});
    }
    throw error;
  } finally {
    await browser.close();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
