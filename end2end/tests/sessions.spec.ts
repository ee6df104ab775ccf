import {
  PASSWORD,
  activeHome,
  expect,
  openLogin,
  registerViaApi,
  signIn,
  supersededAlert,
  test,
  uniqueName,
  withOwnServer,
} from "./helpers";

// "Your sessions" on a server with `--policy max-tabs --max-tabs 2`: the person sees both of
// their tabs, signs the other one out from here, and that tab is told at once.

test("your sessions: see every tab, sign the other one out, and read what happened", async ({ browser }) => {
  await withOwnServer(browser, 2, "sessions", { SOLOTAB_POLICY: "max-tabs", SOLOTAB_MAX_TABS: "2" }, async (_server, [laptop, phone]) => {
    const username = uniqueName("Mine");
    await registerViaApi(laptop.request, username);
    const laptopTab = await laptop.newPage();
    await signIn(laptopTab, username);
    const phoneTab = await phone.newPage();
    await signIn(phoneTab, username);
    await activeHome(phoneTab, username);

    await phoneTab.getByRole("link", { name: "Your sessions" }).click();
    await expect(phoneTab.getByRole("heading", { name: "Your sessions" })).toBeVisible();
    const tabs = phoneTab.locator("ul.tabs > li");
    await expect(tabs).toHaveCount(2);
    await expect(tabs.filter({ hasText: "(this tab)" })).toHaveCount(1);
    await expect(phoneTab.locator("ol.history > li")).toHaveCount(2);
    await expect(phoneTab.locator("ol.history > li").first()).toContainText("Signed in");

    // Sign the laptop's tab out from the phone: the laptop is told at once.
    const other = tabs.filter({ hasNotText: "(this tab)" });
    await other.getByRole("button", { name: "Sign out this tab" }).click();
    await expect(phoneTab.getByRole("status")).toContainText("One tab was signed out.");
    await expect(tabs).toHaveCount(1);
    await expect(laptopTab.getByText("This tab was signed out from elsewhere")).toBeVisible({
      timeout: 5_000,
    });
    await expect(laptopTab).toHaveURL(/\/login$/);
    await expect(phoneTab.locator("ol.history > li").first()).toContainText("signed out from “Your sessions”");
    // The phone is still signed in.
    await phoneTab.getByRole("link", { name: "Back to your home page" }).click();
    await activeHome(phoneTab, username);
  });
});

// Signed-in browsers, on the same max-tabs 2 server: each browser that typed the password
// may come back with "Use here". Signing one out from the other ends its tab at once, and
// that browser must type the password again.
test("your sessions: sign another browser out, and it needs the password again", async ({ browser }) => {
  await withOwnServer(browser, 2, "browsers", { SOLOTAB_POLICY: "max-tabs", SOLOTAB_MAX_TABS: "2" }, async (_server, [laptop, phone]) => {
    const username = uniqueName("Browsers");
    await registerViaApi(laptop.request, username);
    const laptopTab = await laptop.newPage();
    await signIn(laptopTab, username);
    const phoneTab = await phone.newPage();
    await signIn(phoneTab, username);

    await phoneTab.getByRole("link", { name: "Your sessions" }).click();
    const browsers = phoneTab.locator("ul.browsers > li");
    await expect(browsers).toHaveCount(2);
    const here = browsers.filter({ hasText: "(this browser)" });
    await expect(here).toHaveCount(1);
    await expect(here.getByRole("button")).toHaveCount(0);

    // While signed in, a new tab of the laptop is offered "Use here" (no password).
    const laptopSecond = await laptop.newPage();
    await openLogin(laptopSecond);
    await expect(laptopSecond.getByRole("button", { name: "Use here" })).toBeVisible();
    await laptopSecond.close();

    await browsers
      .filter({ hasNotText: "(this browser)" })
      .getByRole("button", { name: "Sign out this browser" })
      .click();
    await expect(phoneTab.getByRole("status")).toContainText("That browser was signed out (1 tab).");
    await expect(browsers).toHaveCount(1);
    await expect(laptopTab.getByText("This tab was signed out from elsewhere")).toBeVisible({
      timeout: 5_000,
    });
    // The laptop is offered the password form, not "Use here".
    await openLogin(laptopTab);
    await expect(laptopTab.getByLabel("Password")).toBeVisible();
    await expect(laptopTab.getByRole("button", { name: "Use here" })).toHaveCount(0);
    // The phone is still signed in.
    await phoneTab.getByRole("link", { name: "Back to your home page" }).click();
    await activeHome(phoneTab, username);
  });
});

// "That wasn't me": someone who knows the password signs in elsewhere; the owner's
// superseded tab takes the account back with the password and a new one, and the other
// tab is pushed out at once.
test("that wasn't me: the owner takes the account back and the intruder is signed out", async ({ browser }) => {
  await withOwnServer(browser, 2, "not-me", {}, async (_server, [owner, intruder]) => {
    const username = uniqueName("Owner");
    await registerViaApi(owner.request, username);
    const ownerTab = await owner.newPage();
    await signIn(ownerTab, username);
    const intruderTab = await intruder.newPage();
    await signIn(intruderTab, username);
    await expect(supersededAlert(ownerTab)).toBeVisible({ timeout: 5_000 });

    await ownerTab.getByRole("button", { name: "That wasn’t me" }).click();
    await ownerTab.getByLabel("Your password").fill(PASSWORD);
    await ownerTab.getByLabel("New password").fill("a brand new passphrase");
    await ownerTab.getByRole("button", { name: "Take my account back" }).click();
    await activeHome(ownerTab, username);
    await expect(intruderTab.getByText("This tab was signed out from elsewhere")).toBeVisible({
      timeout: 5_000,
    });
    // The history says so.
    await ownerTab.getByRole("link", { name: "Your sessions" }).click();
    await expect(ownerTab.locator("ol.history > li").first()).toContainText("You took the account back");
  });
});
