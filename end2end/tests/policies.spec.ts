import {
  PASSWORD,
  activeHome,
  expect,
  openLogin,
  refresh,
  registerViaApi,
  signIn,
  supersededAlert,
  test,
  uniqueName,
  withOwnServer,
} from "./helpers";

// A server of this test's own with `--policy deny-new`: a second sign-in is refused while a
// tab is active, and the person may sign that tab out explicitly.

test("deny-new: a second sign-in is refused until the person signs the other tab out", async ({ browser }) => {
  await withOwnServer(browser, 2, "deny-new", { SOLOTAB_POLICY: "deny-new" }, async (_server, [laptop, phone]) => {
    const username = uniqueName("Deny");
    await registerViaApi(laptop.request, username);
    const tabA = await laptop.newPage();
    await signIn(tabA, username);

    const tabB = await phone.newPage();
    await openLogin(tabB);
    await tabB.getByLabel("Username").fill(username);
    await tabB.getByLabel("Password").fill(PASSWORD);
    const refused = tabB.waitForResponse((r) => r.url().endsWith("/api/login"));
    await tabB.getByRole("button", { name: "Sign in", exact: true }).click();
    expect((await refused).status()).toBe(409);
    await expect(tabB.getByRole("alert")).toContainText("Your account is in use in another tab");
    // Nothing happened to the first tab.
    await activeHome(tabA, username);
    await expect(supersededAlert(tabA)).toHaveCount(0);

    // The explicit takeover: the first tab is signed out, and told at once.
    await tabB.getByRole("button", { name: "Sign out the other tab and continue" }).click();
    await activeHome(tabB, username);
    await expect(supersededAlert(tabA)).toBeVisible({ timeout: 5_000 });
  });
});

// `--policy max-tabs --max-tabs 2`: two tabs stay signed in; a third sign-in pushes the oldest
// out at once, and the other stays.
test("max-tabs 2: a third tab signs the oldest out and leaves the second alone", async ({ browser }) => {
  await withOwnServer(browser, 3, "max-tabs", { SOLOTAB_POLICY: "max-tabs", SOLOTAB_MAX_TABS: "2" }, async (_server, [laptop, phone, tablet]) => {
    const username = uniqueName("Tabs");
    await registerViaApi(laptop.request, username);
    const tabA = await laptop.newPage();
    await signIn(tabA, username);
    const tabB = await phone.newPage();
    await signIn(tabB, username);
    // Two tabs: both active.
    await activeHome(tabA, username);
    await activeHome(tabB, username);
    await expect(supersededAlert(tabA)).toHaveCount(0);

    const tabC = await tablet.newPage();
    await signIn(tabC, username);
    await activeHome(tabC, username);
    // The oldest is told at once; the second is left alone, and still works.
    await expect(supersededAlert(tabA)).toBeVisible({ timeout: 5_000 });
    await expect(supersededAlert(tabB)).toHaveCount(0);
    expect((await refresh(tabB)).status()).toBe(200);
    await expect(supersededAlert(tabB)).toHaveCount(0);
  });
});

// `--mode observe`: a roll-out. A newer sign-in would stop the older tab; here the older tab
// keeps working and is told nothing (the server only counts what it would have rejected).
test("observe mode: the older tab keeps working and sees no notice", async ({ browser }) => {
  await withOwnServer(browser, 2, "observe", { SOLOTAB_MODE: "observe" }, async (_server, [laptop, phone]) => {
    const username = uniqueName("Watch");
    await registerViaApi(laptop.request, username);
    const tabA = await laptop.newPage();
    await signIn(tabA, username);
    const tabB = await phone.newPage();
    await signIn(tabB, username);
    await activeHome(tabB, username);
    // Enforcement would have signed tab A out by now; observe mode serves it.
    await tabA.waitForTimeout(500);
    await expect(supersededAlert(tabA)).toHaveCount(0);
    expect((await refresh(tabA)).status()).toBe(200);
    await activeHome(tabA, username);
  });
});
