import { expect, registerViaApi, signIn, test, uniqueName, withOwnServer } from "./helpers";

// An administrator (granted with `server admin grant NAME` while the server is stopped: the
// SQLite file is one process's) finds an account's tab on the admin page and signs the
// account out; that tab is told at once.

test("admin: find an account's tab and sign the account out, pushed at once", async ({ browser }) => {
  await withOwnServer(browser, 2, "admin", {}, async (server, [adminContext, userContext]) => {
    const admin = uniqueName("Boss");
    const user = uniqueName("User");
    await registerViaApi(adminContext.request, admin);
    await registerViaApi(userContext.request, user);
    await server.stop();
    expect(server.runTask("admin", "grant", admin)).toContain("administrator");
    await server.start();

    const userTab = await userContext.newPage();
    await signIn(userTab, user);
    const adminTab = await adminContext.newPage();
    await signIn(adminTab, admin);
    await adminTab.getByRole("link", { name: "Your sessions" }).click();
    await adminTab.getByRole("link", { name: "Admin: every account's tabs" }).click();
    await expect(adminTab.getByRole("heading", { name: "Admin: active tabs" })).toBeVisible();
    await adminTab.getByLabel("Username contains").fill(user.toLowerCase());
    await adminTab.getByRole("button", { name: "Search" }).click();
    const rows = adminTab.locator("table.admin-tabs tbody tr");
    await expect(rows).toHaveCount(1);
    await expect(rows.first()).toContainText(user);

    await rows.first().getByRole("button", { name: "Sign out account" }).click();
    await expect(adminTab.getByRole("status")).toContainText(`${user}: 1 tab(s) signed out.`);
    await expect(rows).toHaveCount(0);
    await expect(userTab.getByText("This tab was signed out from elsewhere")).toBeVisible({ timeout: 5_000 });
  });
});

test("admin: the page says so to an account that is not an administrator", async ({ browser }) => {
  await withOwnServer(browser, 1, "not-admin", {}, async (_server, [context]) => {
    const user = uniqueName("Plain");
    await registerViaApi(context.request, user);
    const tab = await context.newPage();
    await signIn(tab, user);
    // Within the app: a reload would forget the tab's sign-in (it lives in memory only).
    await tab.evaluate(() => history.pushState({}, "", "/admin"));
    await tab.evaluate(() => window.dispatchEvent(new PopStateEvent("popstate")));
    await expect(tab.getByText("This page is for administrators.")).toBeVisible();
  });
});
