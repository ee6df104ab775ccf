import {
  PASSWORD,
  activeHome,
  expect,
  newContext,
  openLogin,
  refresh,
  registerViaApi,
  signIn,
  startOwnServer,
  supersededAlert,
  test,
  uniqueName,
} from "./helpers";

// A server of this test's own with `--policy deny-new`: a second sign-in is refused while a
// tab is active, and the person may sign that tab out explicitly.

test("deny-new: a second sign-in is refused until the person signs the other tab out", async ({ browser }) => {
  const server = await startOwnServer("deny-new", { SOLOTAB_POLICY: "deny-new" });
  const contexts = [];
  try {
    const username = uniqueName("Deny");
    const laptop = await newContext(browser, { baseURL: server.url });
    const phone = await newContext(browser, { baseURL: server.url });
    contexts.push(laptop, phone);
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
  } finally {
    for (const context of contexts) await context.close();
    await server.stop();
  }
});

// `--policy max-tabs --max-tabs 2`: two tabs stay signed in; a third sign-in pushes the oldest
// out at once, and the other stays.
test("max-tabs 2: a third tab signs the oldest out and leaves the second alone", async ({ browser }) => {
  const server = await startOwnServer("max-tabs", { SOLOTAB_POLICY: "max-tabs", SOLOTAB_MAX_TABS: "2" });
  const contexts = [];
  try {
    const username = uniqueName("Tabs");
    const [laptop, phone, tablet] = [
      await newContext(browser, { baseURL: server.url }),
      await newContext(browser, { baseURL: server.url }),
      await newContext(browser, { baseURL: server.url }),
    ];
    contexts.push(laptop, phone, tablet);
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
  } finally {
    for (const context of contexts) await context.close();
    await server.stop();
  }
});

// `--mode observe`: a roll-out. A newer sign-in would stop the older tab; here the older tab
// keeps working and is told nothing (the server only counts what it would have rejected).
test("observe mode: the older tab keeps working and sees no notice", async ({ browser }) => {
  const server = await startOwnServer("observe", { SOLOTAB_MODE: "observe" });
  const contexts = [];
  try {
    const username = uniqueName("Watch");
    const laptop = await newContext(browser, { baseURL: server.url });
    const phone = await newContext(browser, { baseURL: server.url });
    contexts.push(laptop, phone);
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
  } finally {
    for (const context of contexts) await context.close();
    await server.stop();
  }
});
