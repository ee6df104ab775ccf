import {
  expect,
  refresh,
  registerViaApi,
  signIn,
  test,
  uniqueName,
  withOwnServer,
} from "./helpers";

// A server of this test's own with `--absolute-timeout 4s`: a tab is told, by itself, when
// its sign-in ends, and lands on the login page saying why.

test("absolute timeout: the tab is told its sign-in expired and must sign in again", async ({ browser }) => {
  await withOwnServer(browser, 1, "timeout", { SOLOTAB_ABSOLUTE_TIMEOUT: "4s" }, async (_server, [context]) => {
    const username = uniqueName("Exp");
    await registerViaApi(context.request, username);
    const page = await context.newPage();
    await signIn(page, username);
    await expect(page.getByText("Your sign-in in this tab has expired")).toBeVisible({ timeout: 10_000 });
    await expect(page).toHaveURL(/\/login$/);
    await expect(page.locator(".premium")).toHaveCount(0);
  });
});

// `--idle-timeout 4s` (with two tabs allowed): a tab in use stays signed in past the
// timeout; left alone, it is told (its open push channel is not use) and lands on the login
// page saying why, while "Your sessions" in a tab still in use lists it as timed out.
test("idle timeout: a tab in use stays, a tab left alone is told it expired", async ({ browser }) => {
  const settings = { SOLOTAB_IDLE_TIMEOUT: "4s", SOLOTAB_POLICY: "max-tabs", SOLOTAB_MAX_TABS: "2" };
  await withOwnServer(browser, 1, "idle", settings, async (_server, [context]) => {
    const username = uniqueName("Idle");
    await registerViaApi(context.request, username);
    const page = await context.newPage();
    await signIn(page, username);
    // Used every 1.5 s for 6 s: longer than the timeout, and still signed in.
    for (let i = 0; i < 4; i++) {
      await page.waitForTimeout(1_500);
      expect((await refresh(page)).status()).toBe(200);
    }
    // A second tab, kept in use while the first is left alone.
    const other = await context.newPage();
    await signIn(other, username);
    const expired = page.getByText("has expired after 4 seconds without activity");
    for (let i = 0; i < 12 && !(await expired.isVisible()); i++) {
      expect((await refresh(other)).status()).toBe(200);
      await other.waitForTimeout(1_000);
    }
    await expect(expired).toBeVisible();
    await expect(page).toHaveURL(/\/login$/);

    await other.getByRole("link", { name: "Your sessions" }).click();
    const tabs = other.locator("ul.tabs > li");
    await expect(tabs).toHaveCount(2);
    await expect(tabs.filter({ hasText: "Timed out" })).toHaveCount(1);
    await expect(tabs.filter({ hasText: "(this tab)" })).not.toContainText("Timed out");
  });
});
