import {
  PASSWORD,
  activeHome,
  allowConsole,
  expect,
  hydrated,
  newContext,
  openLogin,
  premiumBody,
  refresh,
  registerViaApi,
  signIn,
  supersededAlert,
  test,
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

test("two devices (separate browser contexts) behave the same", async ({ browser, request }) => {
  const username = uniqueName("Dev");
  await registerViaApi(request, username);
  const laptop = await (await newContext(browser)).newPage();
  const phone = await (
    await newContext(browser, {
      viewport: { width: 390, height: 844 },
      userAgent:
        "Mozilla/5.0 (Linux; Android 15; Pixel 9) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Mobile Safari/537.36",
    })
  ).newPage();

  await signIn(laptop, username);
  await signIn(phone, username);
  // Pushed: the laptop is told without any action of its own.
  await expect(supersededAlert(laptop)).toContainText("Chrome 156 on Android");
  expect((await refresh(phone)).status()).toBe(200);
  await expect(supersededAlert(phone)).toHaveCount(0);

  // And back: signing in on the laptop again supersedes the phone. The laptop's browser is
  // no longer the account's device, so it needs the password.
  await laptop.getByRole("button", { name: "Sign in here again" }).click();
  await laptop.locator("[data-device-check=done]").waitFor();
  await expect(laptop.getByRole("button", { name: "Use here" })).toHaveCount(0);
  await laptop.getByLabel("Password").fill(PASSWORD);
  await laptop.getByRole("button", { name: "Sign in", exact: true }).click();
  await activeHome(laptop, username);
  await expect(supersededAlert(phone)).toBeVisible();
});

test("client-side navigation keeps the sign-in; a reload or a new tab must ask for it", async ({ page, context, request }) => {
  const username = uniqueName("Nav");
  await registerViaApi(request, username);
  await signIn(page, username);

  await page.getByRole("link", { name: "How it works" }).click();
  await expect(page.getByRole("heading", { name: "How it works" })).toBeVisible();
  await page.getByRole("link", { name: "Home", exact: true }).click();
  await expect(page.getByRole("heading", { name: `Welcome, ${username}` })).toBeVisible();
  expect((await refresh(page)).status()).toBe(200);

  // A new tab and a reload start without the UID: they land on /login, where this browser
  // is offered "Use here" (the UID itself is never restored).
  const fresh = await context.newPage();
  await fresh.goto("/");
  await expect(fresh).toHaveURL(/\/login$/);
  await expect(fresh.getByRole("button", { name: "Use here" })).toBeVisible();

  await page.reload();
  await expect(page).toHaveURL(/\/login$/);
  await expect(page.getByRole("button", { name: "Use here" })).toBeVisible();
  await expect(page.getByRole("heading", { name: `Welcome, ${username}` })).toHaveCount(0);
});

test("the UID never reaches cookies, storage or a URL, and rides in the header", async ({ page, context, request }) => {
  const username = uniqueName("Sec");
  await registerViaApi(request, username);
  const urls: string[] = [];
  const headerUids: string[] = [];
  page.on("websocket", (ws) => urls.push(ws.url()));
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
  expect(urls.some((u) => u.endsWith("/api/channel")), "the push channel was opened").toBe(true);
  expect(new Set(headerUids)).toEqual(new Set([uid]));
  for (const url of urls) expect(url).not.toContain(uid);
  expect(page.url()).not.toContain(uid);
  const cookies = await context.cookies();
  for (const cookie of cookies) {
    expect(cookie.value).not.toContain(uid);
    expect(cookie.name).not.toContain(uid);
  }
  // The one cookie is the device's: HttpOnly, Strict, /api only, and not the UID.
  const device = cookies.find((c) => c.name === "solotab_device");
  expect(device).toMatchObject({ httpOnly: true, sameSite: "Strict", path: "/api" });
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
  // Keep the wasm from loading: the page stays server-rendered only (and its loader says so).
  await page.route("**/pkg/*.wasm", (route) => route.abort());
  allowConsole(/^Failed to fetch$/);
  const sent: string[] = [];
  page.on("request", (r) => sent.push(`${r.method()} ${r.url()}`));
  await page.goto("/login");
  const submit = page.getByRole("button", { name: "Sign in" });
  await expect(submit).toBeDisabled();
  await page.getByLabel("Username").fill("someone");
  await page.getByLabel("Password").fill("a secret password");
  await page.getByLabel("Password").press("Enter");
  await submit.click({ force: true });
  await page.waitForTimeout(500);
  expect(sent.filter((r) => !r.startsWith("GET ")), "no form was submitted").toEqual([]);
  expect(sent.filter((r) => r.includes("secret"))).toEqual([]);
  expect(page.url()).toMatch(/\/login$/);
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
  // Signing out also ends this browser's "Use here": a reload asks for the password.
  await openLogin(page);
  await expect(page.getByRole("button", { name: "Use here" })).toHaveCount(0);
  await expect(page.getByLabel("Password")).toBeVisible();
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
  await expect(supersededAlert(page)).toHaveCount(0);
  // The browser is still the account's device: the user may take it back at once.
  await expect(page.getByRole("button", { name: "Use here" })).toBeVisible();
});

test("the page's Content-Security-Policy stops an injected script", async ({ page }) => {
  const response = await page.goto("/login");
  expect(response?.headers()["content-security-policy"]).toContain("'nonce-");
  await hydrated(page);
  // A script injected without the nonce (what an XSS would add) must not run.
  allowConsole(/violates the following Content Security Policy directive/);
  const ran = await page.evaluate(async () => {
    (window as unknown as { injected?: boolean }).injected = false;
    const script = document.createElement("script");
    script.textContent = "window.injected = true";
    document.body.appendChild(script);
    await new Promise((r) => setTimeout(r, 100));
    return (window as unknown as { injected?: boolean }).injected;
  });
  expect(ran).toBe(false);
});
