import { expect, test, type Page } from "@playwright/test";
import { mkdirSync } from "node:fs";
import { resolve } from "node:path";
import {
  PASSWORD,
  hydrated,
  premiumBody,
  refresh,
  registerViaApi,
  signIn,
  supersededAlert,
  uniqueName,
} from "./helpers";

test("a person registers and signs in through the forms", async ({ page }) => {
  const username = uniqueName("Reg");
  await page.goto("/register");
  await hydrated(page);
  await page.getByLabel("Username").fill("ab");
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Create account" }).click();
  await expect(page.getByRole("alert")).toContainText("3 to 32 characters");

  await page.getByLabel("Username").fill(username);
  await page.getByRole("button", { name: "Create account" }).click();
  await expect(page).toHaveURL(/\/login$/);
  await expect(page.getByRole("status")).toContainText(`Account ${username} created`);
  await expect(page.getByLabel("Username")).toHaveValue(username);

  await page.getByLabel("Password").fill("not the password");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("alert")).toHaveText("Wrong username or password.");

  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("heading", { name: `Welcome, ${username}` })).toBeVisible();
  await expect(page.getByText(`Signed in as ${username}`, { exact: true })).toBeVisible();
  await expect(premiumBody(page)).toContainText("Question");
});

/** Puts two screenshots side by side in one image, for the README. */
async function sideBySide(page: Page, left: Buffer, right: Buffer, path: string) {
  const img = (png: Buffer, caption: string) =>
    `<figure><figcaption>${caption}</figcaption><img src="data:image/png;base64,${png.toString("base64")}"></figure>`;
  await page.setViewportSize({ width: 1300, height: 760 });
  await page.setContent(
    `<style>body{margin:0;display:flex;gap:20px;padding:20px;background:#cfd5e1;font:600 18px system-ui}
     figure{margin:0} img{width:620px;border:1px solid #888;border-radius:6px;display:block}
     figcaption{margin-bottom:8px}</style>` +
      img(left, "Tab A: signed in first, now superseded") +
      img(right, "Tab B: the newer sign-in, still active"),
  );
  mkdirSync(resolve(__dirname, "..", "..", "docs", "screenshots"), { recursive: true });
  await page.screenshot({ path, fullPage: true });
}

test("two tabs of one browser: the newer sign-in supersedes the older tab", async ({ browser, request }) => {
  const username = uniqueName("Tabs");
  await registerViaApi(request, username);
  const context = await browser.newContext({ viewport: { width: 620, height: 700 } });
  const tabA = await context.newPage();
  const tabB = await context.newPage();

  await signIn(tabA, username);
  await signIn(tabB, username);

  // A's next action finds out, and says when and from where.
  const answer = await refresh(tabA);
  expect(answer.status()).toBe(401);
  const alert = supersededAlert(tabA);
  await expect(alert).toBeVisible();
  await expect(alert).toBeFocused();
  await expect(alert).toContainText(`Your account ${username} was signed in elsewhere at`);
  await expect(alert.locator(".superseded-browser")).toContainText("Chrome");
  await expect(alert.locator(".superseded-ip")).toHaveText("127.0.0.1");
  await expect(tabA.getByRole("button", { name: "Refresh" })).toHaveCount(0);

  // B keeps working.
  const fine = await refresh(tabB);
  expect(fine.status()).toBe(200);
  await expect(premiumBody(tabB)).toContainText("Question");
  await expect(supersededAlert(tabB)).toHaveCount(0);

  await sideBySide(
    await context.newPage(),
    await tabA.screenshot(),
    await tabB.screenshot(),
    resolve(__dirname, "..", "..", "docs", "screenshots", "two-tabs.png"),
  );

  // "Sign in here again" leads to the login form, name filled in.
  await tabA.getByRole("button", { name: "Sign in here again" }).click();
  await expect(tabA).toHaveURL(/\/login$/);
  await expect(tabA.getByLabel("Username")).toHaveValue(username);

  // A reload forgets the UID: B lands on the login page.
  await tabB.reload();
  await expect(tabB).toHaveURL(/\/login$/);
  await expect(tabB.getByRole("heading", { name: "Sign in" })).toBeVisible();
  await context.close();
});

test("two devices (separate browser contexts) behave the same", async ({ browser, request }) => {
  const username = uniqueName("Dev");
  await registerViaApi(request, username);
  const laptop = await (await browser.newContext()).newPage();
  const phone = await (
    await browser.newContext({
      viewport: { width: 390, height: 844 },
      userAgent:
        "Mozilla/5.0 (Linux; Android 15; Pixel 9) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Mobile Safari/537.36",
    })
  ).newPage();

  await signIn(laptop, username);
  await signIn(phone, username);
  expect((await refresh(laptop)).status()).toBe(401);
  await expect(supersededAlert(laptop)).toContainText("Chrome 156 on Android");
  expect((await refresh(phone)).status()).toBe(200);
  await expect(supersededAlert(phone)).toHaveCount(0);

  // And back: signing in on the laptop again supersedes the phone.
  await laptop.getByRole("button", { name: "Sign in here again" }).click();
  await laptop.getByLabel("Password").fill(PASSWORD);
  await laptop.getByRole("button", { name: "Sign in" }).click();
  await expect(laptop.getByRole("heading", { name: `Welcome, ${username}` })).toBeVisible();
  expect((await refresh(phone)).status()).toBe(401);
  await expect(supersededAlert(phone)).toBeVisible();
});

test("client-side navigation keeps the sign-in; a reload or a new tab does not", async ({ page, context, request }) => {
  const username = uniqueName("Nav");
  await registerViaApi(request, username);
  await signIn(page, username);

  await page.getByRole("link", { name: "How it works" }).click();
  await expect(page.getByRole("heading", { name: "How it works" })).toBeVisible();
  await page.getByRole("link", { name: "Home", exact: true }).click();
  await expect(page.getByRole("heading", { name: `Welcome, ${username}` })).toBeVisible();
  expect((await refresh(page)).status()).toBe(200);

  const fresh = await context.newPage();
  await fresh.goto("/");
  await expect(fresh).toHaveURL(/\/login$/);

  await page.reload();
  await expect(page).toHaveURL(/\/login$/);
  await expect(page.getByRole("button", { name: "Sign in" })).toBeVisible();
});

test("the UID never reaches cookies, storage or a URL, and rides in the header", async ({ page, context, request }) => {
  const username = uniqueName("Sec");
  await registerViaApi(request, username);
  const urls: string[] = [];
  const headerUids: string[] = [];
  page.on("request", (r) => {
    urls.push(r.url());
    const uid = r.headers()["x-tab-uid"];
    if (uid) headerUids.push(uid);
  });

  const uid = await signIn(page, username);
  expect(uid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  await refresh(page);
  await page.getByRole("link", { name: "How it works" }).click();
  await page.getByRole("link", { name: "Home", exact: true }).click();
  await refresh(page);

  expect(headerUids.length).toBeGreaterThanOrEqual(2);
  expect(new Set(headerUids)).toEqual(new Set([uid]));
  for (const url of urls) expect(url).not.toContain(uid);
  expect(page.url()).not.toContain(uid);
  for (const cookie of await context.cookies()) {
    expect(cookie.value).not.toContain(uid);
    expect(cookie.name).not.toContain(uid);
  }
  const stored = await page.evaluate(() => {
    const dump = (s: Storage) => Object.keys(s).map((k) => k + "=" + s.getItem(k)).join(";");
    return dump(localStorage) + "|" + dump(sessionStorage) + "|" + document.cookie + "|" + history.state;
  });
  expect(stored).not.toContain(uid);
});

test("an unreachable server is not a sign-out: the tab says so and retries", async ({ page, request }) => {
  const username = uniqueName("Net");
  await registerViaApi(request, username);
  await signIn(page, username);

  await page.route("**/api/premium", (route) => route.abort("connectionrefused"));
  await page.getByRole("button", { name: "Refresh" }).click();
  await expect(page.getByRole("status").filter({ hasText: "Cannot reach the server" }).first()).toBeVisible();
  await expect(supersededAlert(page)).toHaveCount(0);
  await expect(page.getByRole("heading", { name: `Welcome, ${username}` })).toBeVisible();

  // A 5xx is the same: not a sign-out.
  await page.unroute("**/api/premium");
  await page.route("**/api/premium", (route) =>
    route.fulfill({ status: 503, contentType: "application/json", body: '{"error":"unavailable","message":"down"}' }),
  );
  await expect(page.getByText("You are still signed in in this tab; retrying")).toBeVisible();

  // When the server is back, the retry succeeds with the same UID.
  await page.unroute("**/api/premium");
  const recovered = await page.waitForResponse((r) => r.url().endsWith("/api/premium") && r.status() === 200);
  expect(recovered.ok()).toBe(true);
  await expect(page.getByText("You are still signed in in this tab; retrying")).toHaveCount(0);
  await expect(premiumBody(page)).toContainText("Question");
});

test("before the app has loaded, the login form submits nothing", async ({ page }) => {
  // Keep the wasm from loading: the page stays server-rendered only.
  await page.route("**/pkg/*.wasm", (route) => route.abort());
  await page.goto("/login");
  const submit = page.getByRole("button", { name: "Sign in" });
  await expect(submit).toBeDisabled();
  await page.getByLabel("Username").fill("someone");
  await page.getByLabel("Password").fill("a secret password");
  await page.getByLabel("Password").press("Enter");
  await page.waitForTimeout(300);
  expect(page.url()).toMatch(/\/login$/);
  expect(page.url()).not.toContain("secret");
  await expect(page.locator("body[data-hydrated]")).toHaveCount(0);
});

test("a person can sign out, and the old UID is refused by the server", async ({ page, request }) => {
  const username = uniqueName("Out");
  await registerViaApi(request, username);
  const uid = await signIn(page, username);
  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page).toHaveURL(/\/login$/);
  await expect(page.getByRole("status")).toHaveText("You signed out.");
  const answer = await request.get("/api/me", { headers: { "x-tab-uid": uid } });
  expect(answer.status()).toBe(401);
  expect((await answer.json()).error).toBe("logged_out");
});

test("a 401 code the app does not know means signed out", async ({ page, request }) => {
  const username = uniqueName("Unk");
  await registerViaApi(request, username);
  await signIn(page, username);
  await page.route("**/api/premium", (route) =>
    route.fulfill({
      status: 401,
      contentType: "application/json",
      body: '{"error":"idle_timeout","message":"A future policy ended this tab."}',
    }),
  );
  await page.getByRole("button", { name: "Refresh" }).click();
  await expect(page).toHaveURL(/\/login$/);
  await expect(page.getByRole("status")).toContainText("no longer valid");
  await expect(page.getByLabel("Username")).toHaveValue(username);
  await expect(supersededAlert(page)).toHaveCount(0);
});
