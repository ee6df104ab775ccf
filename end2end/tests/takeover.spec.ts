import { mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { Page } from "@playwright/test";
import {
  OwnServer,
  PASSWORD,
  activeHome,
  connectionBanner,
  expect,
  freePort,
  newContext,
  openLogin,
  premiumBody,
  registerViaApi,
  screenshotPath,
  signIn,
  supersededAlert,
  test,
  uniqueName,
} from "./helpers";

const CHANNEL = /\/api\/channel$/;

/** Puts two screenshots side by side in one image, for the README. */
async function sideBySide(page: Page, left: Buffer, right: Buffer, path: string) {
  const img = (png: Buffer, caption: string) =>
    `<figure><figcaption>${caption}</figcaption><img src="data:image/png;base64,${png.toString("base64")}"></figure>`;
  await page.setViewportSize({ width: 1300, height: 760 });
  await page.setContent(
    `<style>body{margin:0;display:flex;gap:20px;padding:20px;background:#cfd5e1;font:600 18px system-ui}
     figure{margin:0} img{width:620px;border:1px solid #888;border-radius:6px;display:block}
     figcaption{margin-bottom:8px}</style>` +
      img(left, "Tab A: told at once, without a click") +
      img(right, "Tab B: the newer sign-in, active"),
  );
  mkdirSync(dirname(path), { recursive: true });
  await page.screenshot({ path, fullPage: true });
}

test("a newer sign-in in another tab is pushed to the older one; a reload offers Use here", async ({ browser, request }) => {
  const username = uniqueName("Push");
  await registerViaApi(request, username);
  const context = await newContext(browser, { viewport: { width: 620, height: 700 } });
  const tabA = await context.newPage();
  const tabB = await context.newPage();

  await signIn(tabA, username);
  const premiumText = await premiumBody(tabA).innerText();
  expect(premiumText).toContain("Question");
  const aRequests: string[] = [];
  tabA.on("request", (r) => aRequests.push(r.url()));

  await signIn(tabB, username);

  // A is told within 5 s with no click, no navigation and no request of its own.
  const alert = supersededAlert(tabA);
  await expect(alert).toBeVisible({ timeout: 5_000 });
  await expect(alert).toContainText(`Your account ${username} was signed in elsewhere at`);
  await expect(alert.locator(".superseded-browser")).toContainText("Chrome");
  await expect(alert.locator(".superseded-ip")).toHaveText("127.0.0.1");
  // The premium content is gone from the page, not hidden.
  await expect(tabA.locator(".premium")).toHaveCount(0);
  expect(await tabA.content()).not.toContain(premiumText);
  await expect(tabA.getByRole("button", { name: "Refresh" })).toHaveCount(0);
  // (Another tab's "taken" message may make A ask /api/me to confirm; nothing else.)
  expect(aRequests.filter((u) => !u.endsWith("/api/me"))).toEqual([]);
  await expect(premiumBody(tabB)).toContainText("Question");

  await sideBySide(
    await context.newPage(),
    await tabA.screenshot(),
    await tabB.screenshot(),
    screenshotPath("two-tabs.png"),
  );

  // B reloads: no password asked, "Use here" with the name instead.
  await tabB.reload();
  await tabB.locator("[data-device-check=done]").waitFor();
  await expect(tabB.getByText(`Your account ${username} is open in another tab`)).toBeVisible();
  await expect(tabB.getByLabel("Password")).toHaveCount(0);
  await tabB.getByRole("button", { name: "Use here" }).click();
  await activeHome(tabB, username);

  // Another device sees the password form only; once it signs in, B's browser must use
  // the password too.
  const other = await (await newContext(browser)).newPage();
  await openLogin(other);
  await expect(other.getByRole("button", { name: "Use here" })).toHaveCount(0);
  await signIn(other, username);
  await expect(supersededAlert(tabB)).toBeVisible();
  await tabB.reload();
  await tabB.locator("[data-device-check=done]").waitFor();
  await expect(tabB.getByRole("button", { name: "Use here" })).toHaveCount(0);
  await expect(tabB.getByLabel("Password")).toBeVisible();

  // Sign in again in B, sign out, reload: the password form.
  await signIn(tabB, username);
  await expect(supersededAlert(other)).toBeVisible();
  await tabB.getByRole("button", { name: "Sign out" }).click();
  await expect(tabB).toHaveURL(/\/login$/);
  await tabB.reload();
  await tabB.locator("[data-device-check=done]").waitFor();
  await expect(tabB.getByRole("button", { name: "Use here" })).toHaveCount(0);
  await expect(tabB.getByLabel("Password")).toBeVisible();
  await context.close();
});

test("tabs of one browser tell each other at once, even with the push channel down", async ({ browser, request }) => {
  const username = uniqueName("Bc");
  await registerViaApi(request, username);
  const context = await newContext(browser);
  const tabA = await context.newPage();
  const tabB = await context.newPage();
  // A's push channel never gets through: every connection it makes is closed at once, so
  // only the other tab's message can tell it.
  await tabA.routeWebSocket(CHANNEL, (ws) => ws.close({ code: 1001, reason: "cut by the test" }));
  await signIn(tabA, username);
  await signIn(tabB, username);

  const alert = supersededAlert(tabA);
  await expect(alert).toBeVisible({ timeout: 5_000 });
  // Then the server, asked over HTTP, confirms with the details of the takeover.
  await expect(alert.locator(".superseded-ip")).toHaveText("127.0.0.1");
  await expect(premiumBody(tabA)).toHaveCount(0);
  await expect(premiumBody(tabB)).toContainText("Question");
  await context.close();
});

test("a dropped push channel shows the banner, reconnects, and never signs out", async ({ page, request }) => {
  const username = uniqueName("Drop");
  await registerViaApi(request, username);
  let cutting = true;
  const connections: number[] = [];
  await page.routeWebSocket(CHANNEL, (ws) => {
    connections.push(Date.now());
    if (connections.length >= 2 && cutting) {
      ws.close({ code: 1001, reason: "network down (test)" });
      return;
    }
    ws.connectToServer();
    if (connections.length === 1) {
      // Let the first channel come up, then drop it as a network failure would.
      setTimeout(() => ws.close({ code: 1001, reason: "dropped by the test" }), 1_500);
    }
  });
  await signIn(page, username);

  await expect(connectionBanner(page)).toBeVisible({ timeout: 10_000 });
  await expect(page.getByRole("heading", { name: `Welcome, ${username}` })).toBeVisible();
  await expect(supersededAlert(page)).toHaveCount(0);

  // While the network is down, reconnects are refused and the banner stays.
  await expect.poll(() => connections.length, { timeout: 10_000 }).toBeGreaterThanOrEqual(3);
  await expect(connectionBanner(page)).toBeVisible();
  // The network comes back: the next reconnect says hello again and the banner goes.
  cutting = false;
  await expect(connectionBanner(page)).toHaveCount(0, { timeout: 20_000 });
  await activeHome(page, username);
  expect(connections.length).toBeGreaterThanOrEqual(4);

  // And the live channel works: a sign-in elsewhere is pushed.
  const other = await request.post("/api/login", { data: { username, password: PASSWORD } });
  expect(other.status()).toBe(200);
  await expect(supersededAlert(page)).toBeVisible({ timeout: 5_000 });
});

test("a server restart closes the channel, and the tab reconnects to the new process still signed in", async ({ browser }) => {
  const db = join(mkdtempSync(join(tmpdir(), "solotab-restart-")), "solotab.db");
  const server = new OwnServer(await freePort(), { SOLOTAB_DB: db });
  await server.start();
  try {
    const context = await newContext(browser, { baseURL: server.url });
    const page = await context.newPage();
    const username = uniqueName("Rst");
    await registerViaApi(context.request, username);
    await signIn(page, username);

    await server.stop();
    await expect(connectionBanner(page)).toBeVisible({ timeout: 10_000 });
    await server.start();
    await expect(connectionBanner(page)).toHaveCount(0, { timeout: 30_000 });
    await activeHome(page, username);
    await expect(supersededAlert(page)).toHaveCount(0);

    // The reconnected channel is live on the new process: a sign-in elsewhere is pushed.
    const other = await fetch(`${server.url}/api/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username, password: PASSWORD }),
    });
    expect(other.status).toBe(200);
    await expect(supersededAlert(page)).toBeVisible({ timeout: 5_000 });
    await context.close();
  } finally {
    await server.stop();
  }
});
