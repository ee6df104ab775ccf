import { expect, type APIRequestContext, type Page } from "@playwright/test";

export const PASSWORD = "correct horse battery";

/** A username no other test uses. */
export function uniqueName(prefix = "u"): string {
  return `${prefix}${Date.now().toString(36)}${Math.random().toString(36).slice(2, 7)}`;
}

/** Registers through the API (the UI's own registration has its own test). */
export async function registerViaApi(request: APIRequestContext, username: string) {
  const response = await request.post("/api/register", { data: { username, password: PASSWORD } });
  expect(response.status()).toBe(201);
}

/** Waits until the wasm has hydrated the page (the app sets data-hydrated on <body>). */
export async function hydrated(page: Page) {
  await page.locator("body[data-hydrated]").waitFor();
}

/** Signs in through the login form and waits for the home page. Returns the UID the server issued. */
export async function signIn(page: Page, username: string): Promise<string> {
  await page.goto("/login");
  await hydrated(page);
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(PASSWORD);
  const loginResponse = page.waitForResponse((r) => r.url().endsWith("/api/login"));
  await page.getByRole("button", { name: "Sign in" }).click();
  const body = await (await loginResponse).json();
  await expect(page.getByRole("heading", { name: `Welcome, ${username}` })).toBeVisible();
  await expect(premiumBody(page)).not.toHaveText("Loading…");
  return body.uid as string;
}

export function premiumBody(page: Page) {
  return page.locator(".premium-body");
}

export function supersededAlert(page: Page) {
  return page.getByRole("alert").filter({ hasText: "This tab is no longer active" });
}

/** Clicks Refresh and waits for the premium request it makes to complete. */
export async function refresh(page: Page) {
  const done = page.waitForResponse((r) => r.url().endsWith("/api/premium"));
  await page.getByRole("button", { name: "Refresh" }).click();
  return done;
}
